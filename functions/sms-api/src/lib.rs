//! The loyalty SMS contract's site API (`loyalty-sms-gateway.txt`): every route
//! authenticates the site by its access token (`Authorization: Bearer`, base64 of
//! `[loyaltyToken, siteId]`). A site activates its SMS gateway, keeps a template per
//! loyalty action type, subscribes and unsubscribes members through the gateway (whose
//! answers are passed on as it wrote them), and posts loyalty actions, which become SMS
//! jobs for the cron-scheduled `sms-trigger`.

mod segments;
mod wire;

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use serde_json::{Value, json};
use shared::{
    Hub,
    domain::{CountryCode, PhoneE164},
    http::{
        AnyJson, ApiError, Path, Query,
        auth::{Sealing, SiteAuth},
        gateway_error, with_fallbacks,
    },
    outbound::{OutboundClient, OutboundConfig},
    runtime::Function,
    sms::{
        ActivationView, JobView, LoyaltyAction, MemberStatus, SmsSite,
        gateway::{Gateway, GatewayUser, text_eligible},
    },
};

pub const NAME: &str = "sms-api";
pub const ACTIVATION_PATH: &str = "/api/3.0/sms/activation";
pub const TEMPLATES_PATH: &str = "/api/3.0/sms/templates";
pub const TEMPLATE_PATH: &str = "/api/3.0/sms/templates/{action}";
pub const SUBSCRIPTIONS_PATH: &str = "/api/3.0/sms/subscriptions";
pub const UNSUBSCRIBE_PATH: &str = "/api/3.0/sms/subscriptions/unsubscribe";
pub const ACTIONS_PATH: &str = "/api/3.0/sms/actions";
pub const ACTION_PATH: &str = "/api/3.0/sms/actions/{action_id}";
pub const MEMBER_MESSAGES_PATH: &str = "/api/3.0/sms/members/{phone}/messages";
pub const GATEWAY_UNSUBSCRIBES_PATH: &str = "/api/3.0/sms/gateway/{site_id}/unsubscribes";
pub const SEGMENTS_PATH: &str = "/api/3.0/segment";
pub const SEGMENT_PATH: &str = "/api/3.0/segment/{segment_id}";
pub const SEGMENT_EXPORT_PATH: &str = "/api/3.0/segment/{segment_id}/members.csv";

pub fn function() -> Function {
    Function::http(NAME, router)
}

#[derive(Clone)]
pub(crate) struct SmsApi {
    hub: Arc<Hub>,
    /// `Err`: the outbound client could not be built (its configuration); gateway
    /// routes answer 500 and say so in the log.
    gateway: Result<Gateway, String>,
}

pub fn router(hub: Arc<Hub>) -> Router {
    let gateway = OutboundConfig::from_config(&hub.config)
        .and_then(OutboundClient::new)
        .map(|client| Gateway::new(client, &hub.config.sms_gateway_url));
    if let Err(e) = &gateway {
        tracing::error!(error = %e, "the SMS gateway client could not be built");
    }
    with_fallbacks(
        Router::new()
            .route(
                ACTIVATION_PATH,
                get(activation).put(activate).delete(deactivate),
            )
            .route(TEMPLATES_PATH, get(templates))
            .route(TEMPLATE_PATH, put(set_template).delete(remove_template))
            .route(SUBSCRIPTIONS_PATH, post(subscribe).get(eligibility))
            .route(UNSUBSCRIBE_PATH, post(unsubscribe))
            .route(ACTIONS_PATH, post(accept_action))
            .route(ACTION_PATH, get(action_job))
            .route(MEMBER_MESSAGES_PATH, get(member_messages))
            .route(GATEWAY_UNSUBSCRIBES_PATH, post(gateway_unsubscribed))
            .route(SEGMENTS_PATH, post(segments::create).get(segments::list))
            .route(SEGMENT_PATH, get(segments::get_one))
            .route(SEGMENT_EXPORT_PATH, get(segments::export)),
    )
    .with_state(SmsApi { hub, gateway })
}

impl axum::extract::FromRef<SmsApi> for Arc<Hub> {
    fn from_ref(api: &SmsApi) -> Self {
        api.hub.clone()
    }
}

impl SmsApi {
    fn gateway(&self) -> Result<&Gateway, ApiError> {
        self.gateway.as_ref().map_err(|e| {
            tracing::error!(error = %e, "no SMS gateway client");
            ApiError::internal()
        })
    }
}

fn activation_view(site: &SmsSite) -> Result<Json<ActivationView>, ApiError> {
    ActivationView::of(site)
        .map(Json)
        .ok_or_else(|| shared::sms::SmsError::NotActivated.into())
}

/// `GET /api/3.0/sms/activation`: the site's gateway settings (never its tokens).
async fn activation(SiteAuth(site): SiteAuth) -> Result<Json<ActivationView>, ApiError> {
    activation_view(&site)
}

/// `PUT /api/3.0/sms/activation`: activates the gateway (or changes its settings).
async fn activate(
    State(api): State<SmsApi>,
    Sealing(SiteAuth(site)): Sealing<SiteAuth>,
    body: Result<AnyJson<Value>, ApiError>,
) -> Result<Json<ActivationView>, ApiError> {
    let AnyJson(body) = body?;
    let request = wire::activation(&body)?;
    let site = api.hub.sms.activate(&site, request).await?;
    activation_view(&site)
}

/// `DELETE /api/3.0/sms/activation`: stops every send of the site at once.
async fn deactivate(
    State(api): State<SmsApi>,
    SiteAuth(site): SiteAuth,
) -> Result<Json<ActivationView>, ApiError> {
    let site = api.hub.sms.deactivate(&site).await?;
    activation_view(&site)
}

/// `GET /api/3.0/sms/templates`: `{templates: {action: text}}`.
async fn templates(SiteAuth(site): SiteAuth) -> Json<Value> {
    Json(json!({ "templates": site.templates }))
}

#[derive(serde::Deserialize)]
struct ActionParam {
    action: String,
}

/// `PUT /api/3.0/sms/templates/{action}` with `{template}`.
async fn set_template(
    State(api): State<SmsApi>,
    SiteAuth(site): SiteAuth,
    Path(ActionParam { action }): Path<ActionParam>,
    body: Result<AnyJson<Value>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let AnyJson(body) = body?;
    let template = match body.get("template") {
        Some(Value::String(t)) => t.clone(),
        Some(_) => return Err(ApiError::invalid("template", "must be a string")),
        None => return Err(ApiError::missing_field("template")),
    };
    let site = api
        .hub
        .sms
        .set_template(&site, &action, Some(&template))
        .await?;
    Ok(Json(json!({ "templates": site.templates })))
}

/// `DELETE /api/3.0/sms/templates/{action}`: actions of that type are recorded, not sent.
async fn remove_template(
    State(api): State<SmsApi>,
    SiteAuth(site): SiteAuth,
    Path(ActionParam { action }): Path<ActionParam>,
) -> Result<Json<Value>, ApiError> {
    let site = api.hub.sms.set_template(&site, &action, None).await?;
    Ok(Json(json!({ "templates": site.templates })))
}

/// The site's activation, or 409 `sms_not_activated`.
fn active(site: &SmsSite) -> Result<&shared::sms::Activation, ApiError> {
    site.activation
        .as_ref()
        .filter(|a| a.active)
        .ok_or_else(|| shared::sms::SmsError::NotActivated.into())
}

/// `POST /api/3.0/sms/subscriptions` `{phone, email}`: the gateway's subscribe call with
/// the site's sign-up source id; its answer as it wrote it.
async fn subscribe(
    State(api): State<SmsApi>,
    SiteAuth(site): SiteAuth,
    body: Result<AnyJson<Value>, ApiError>,
) -> Result<Response, ApiError> {
    let AnyJson(body) = body?;
    let activation = active(&site)?;
    let (phone, email) = wire::member(&body, activation.default_country)?;
    let time_zone = wire::time_zone(&body)?;
    let app_token = api.hub.sms.open_app_token(&site).await?;
    let user = gateway_user(&phone, &email, activation.default_country);
    let answer = api
        .gateway()?
        .subscribe(&app_token, &user, &activation.sign_up_source_id)
        .await
        .map_err(gateway_error)?;
    api.hub
        .sms
        .set_member(
            &site,
            &phone,
            email,
            MemberStatus::Subscribed,
            None,
            time_zone,
        )
        .await?;
    Ok(Json(answer).into_response())
}

fn gateway_user(phone: &PhoneE164, email: &Option<String>, country: CountryCode) -> GatewayUser {
    GatewayUser {
        phone: phone.for_gateway(country),
        email: email.clone(),
    }
}

#[derive(serde::Deserialize)]
struct EligibilityQuery {
    phone: Option<String>,
    email: Option<String>,
}

/// `GET /api/3.0/sms/subscriptions?phone=&email=`: the gateway's eligibility answer.
async fn eligibility(
    State(api): State<SmsApi>,
    SiteAuth(site): SiteAuth,
    Query(query): Query<EligibilityQuery>,
) -> Result<Json<Value>, ApiError> {
    let activation = active(&site)?;
    let body = json!({ "phone": query.phone, "email": query.email });
    let (phone, email) = wire::member(&body, activation.default_country)?;
    let app_token = api.hub.sms.open_app_token(&site).await?;
    let user = gateway_user(&phone, &email, activation.default_country);
    let answer = api
        .gateway()?
        .eligibility(&app_token, &user)
        .await
        .map_err(gateway_error)?;
    api.hub
        .sms
        .record_eligibility(&site, &phone, email, text_eligible(&answer))
        .await?;
    Ok(Json(answer))
}

/// `POST /api/3.0/sms/subscriptions/unsubscribe` `{phone, email}`: the gateway's
/// unsubscribe call (TEXT and EMAIL); the member gets no more SMS from this moment.
async fn unsubscribe(
    State(api): State<SmsApi>,
    SiteAuth(site): SiteAuth,
    body: Result<AnyJson<Value>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let AnyJson(body) = body?;
    let activation = active(&site)?;
    let (phone, email) = wire::member(&body, activation.default_country)?;
    // Locally first: even if the gateway call fails, nothing more is sent.
    api.hub
        .sms
        .set_member(
            &site,
            &phone,
            email.clone(),
            MemberStatus::Unsubscribed,
            Some(false),
            None,
        )
        .await?;
    let app_token = api.hub.sms.open_app_token(&site).await?;
    let user = gateway_user(&phone, &email, activation.default_country);
    let answer = api
        .gateway()?
        .unsubscribe(&app_token, &user)
        .await
        .map_err(gateway_error)?;
    Ok(Json(answer))
}

/// `POST /api/3.0/sms/actions`: a loyalty action; 202 with its SMS job (200 with the
/// same job when the action id was accepted before with the same body; 409 with another).
async fn accept_action(
    State(api): State<SmsApi>,
    SiteAuth(site): SiteAuth,
    body: Result<AnyJson<Value>, ApiError>,
) -> Result<Response, ApiError> {
    let AnyJson(body) = body?;
    let country = site.country();
    let action = LoyaltyAction::parse(&body, country)?;
    let applied = api.hub.sms.accept_action(&site, &action).await?;
    let status = if applied.is_duplicate() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(applied.into_inner())).into_response())
}

#[derive(serde::Deserialize)]
struct ActionIdParam {
    action_id: String,
}

/// `GET /api/3.0/sms/actions/{actionId}`: what became of an action's SMS.
async fn action_job(
    State(api): State<SmsApi>,
    SiteAuth(site): SiteAuth,
    Path(ActionIdParam { action_id }): Path<ActionIdParam>,
) -> Result<Json<JobView>, ApiError> {
    let job = api
        .hub
        .sms
        .job(&site, &action_id)
        .await?
        .ok_or(shared::sms::SmsError::UnknownJob)?;
    Ok(Json(job.view()))
}

#[derive(serde::Deserialize)]
struct PhoneParam {
    phone: String,
}

/// `GET /api/3.0/sms/members/{phone}/messages`: the member's SMS timeline, oldest first.
async fn member_messages(
    State(api): State<SmsApi>,
    SiteAuth(site): SiteAuth,
    Path(PhoneParam { phone }): Path<PhoneParam>,
) -> Result<Json<Value>, ApiError> {
    let country = site.country();
    let phone =
        PhoneE164::parse(&phone, country).map_err(|e| ApiError::invalid_field("phone", e))?;
    let jobs: Vec<JobView> = api
        .hub
        .sms
        .member_jobs(&site, &phone)
        .await?
        .iter()
        .map(|j| j.view())
        .collect();
    Ok(Json(json!({ "phone": phone, "messages": jobs })))
}

#[derive(serde::Deserialize)]
struct SiteIdParam {
    site_id: String,
}

/// `POST /api/3.0/sms/gateway/{siteId}/unsubscribes`: the gateway tells the hub a member
/// texted STOP (`{phone, email?}`), signed with the site's webhook secret (Standard
/// Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`). The member gets no
/// more SMS from this moment.
async fn gateway_unsubscribed(
    State(api): State<SmsApi>,
    Path(SiteIdParam { site_id }): Path<SiteIdParam>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let refused = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
            "the notification is not signed with this site's webhook secret (Standard Webhooks), or is older than 5 minutes",
        )
    };
    let site = match site_id.trim().parse::<u64>() {
        Ok(id) => api.hub.sms.site(id).await?,
        Err(_) => None,
    }
    .ok_or_else(refused)?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signed = [
        header(shared::webhooks::ID_HEADER),
        header(shared::webhooks::TIMESTAMP_HEADER),
        header(shared::webhooks::SIGNATURE_HEADER),
    ];
    if !api.hub.sms.verify_webhook(&site, signed, &body).await? {
        return Err(refused());
    }
    let body: Value = shared::http::parse_json(&body)?;
    let country = site.country();
    let (phone, email) = wire::member(&body, country)?;
    api.hub
        .sms
        .set_member(
            &site,
            &phone,
            email,
            MemberStatus::Unsubscribed,
            Some(false),
            None,
        )
        .await?;
    Ok(Json(json!({ "phone": phone, "status": "unsubscribed" })))
}
