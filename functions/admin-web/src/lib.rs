//! The admin page (signed-payload contract, step 4): partners' SSO links sign a shop's
//! stakeholders in; the page shows the user's shops with their state, plans, billing
//! period and recent events. Server-rendered HTML (`html`); errors a person meets are
//! HTML pages too, never JSON.

mod html;

use std::sync::Arc;

use axum::{
    Form, Router,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use shared::{
    Hub,
    admin::{SESSION_SECONDS, Session, SsoRequest},
    clock,
    domain::{Email, ShopDomain, free_text},
    http::{ApiError, Path, auth::partner_by_token, with_fallbacks},
    runtime::Function,
    signed_payload::{PayloadVerifier, claims_into},
};

pub const NAME: &str = "admin-web";
pub const SSO_PATH: &str = "/api/admin/users/partnerSignin/{partner_token}/{payload}";
pub const SESSION_COOKIE: &str = "hub_session";

pub fn function() -> Function {
    Function::http(NAME, router)
}

struct AdminWeb {
    hub: Arc<Hub>,
    /// SSO links live briefly (`SSO_LINK_LIFETIME_SECONDS`): they are in URLs.
    links: PayloadVerifier,
}

pub fn router(hub: Arc<Hub>) -> Router {
    let links = PayloadVerifier::new(hub.config.sso_link_lifetime, hub.config.clock_skew);
    with_fallbacks(
        Router::new()
            .route(SSO_PATH, get(sso))
            .route("/admin", get(page))
            .route("/admin/logout", post(logout)),
    )
    .with_state(Arc::new(AdminWeb { hub, links }))
}

/// An error page a person can read.
struct PageError(StatusCode, String);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError(e.status, e.message)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        html::error_page(self.0, &self.1)
    }
}

#[derive(Deserialize)]
struct SsoParams {
    partner_token: String,
    payload: String,
}

#[derive(Deserialize)]
struct SsoClaims {
    shop: Option<String>,
    user: Option<SsoUser>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SsoUser {
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
}

fn refused(status: StatusCode, message: &str) -> PageError {
    PageError(status, message.to_owned())
}

/// `GET /api/admin/users/partnerSignin/{partnerToken}/{payload}`: signs the link's user
/// in (302 to `/admin` with the session cookie), creating the user and granting the
/// shop as needed. A bad, expired, replayed or foreign link gets an error page.
async fn sso(
    State(web): State<Arc<AdminWeb>>,
    parts: Parts,
    Path(params): Path<SsoParams>,
) -> Result<Response, PageError> {
    let hub = &web.hub;
    let partner = partner_by_token(hub, &parts, &params.partner_token).await?;
    let now = clock::now();
    let claims = web
        .links
        .verify(&params.payload, &partner.keys, now)
        .map_err(|e| {
            refused(
                StatusCode::UNAUTHORIZED,
                &format!("This sign-in link is not valid: {e}."),
            )
        })?;
    let link_expires_at = claims.get("exp").and_then(|v| v.as_i64()).unwrap_or(0);
    let parsed: SsoClaims = claims_into(&claims).map_err(|_| {
        refused(
            StatusCode::BAD_REQUEST,
            "This sign-in link's content is not valid.",
        )
    })?;
    let bad = |what: &str| {
        refused(
            StatusCode::BAD_REQUEST,
            &format!("This sign-in link has no valid {what}."),
        )
    };
    let domain = parsed
        .shop
        .as_deref()
        .and_then(|s| ShopDomain::parse(s).ok())
        .ok_or_else(|| bad("shop"))?;
    let user = parsed.user.ok_or_else(|| bad("user"))?;
    let email = user
        .email
        .as_deref()
        .and_then(|e| Email::parse(e).ok())
        .ok_or_else(|| bad("user email"))?;
    let name = |value: Option<String>| {
        value
            .and_then(|v| free_text(&v).ok().flatten())
            .unwrap_or_default()
    };
    let shop = hub
        .accounts
        .shop_of(partner.id, &domain)
        .await
        .map_err(|_| {
            refused(
                StatusCode::NOT_FOUND,
                "This sign-in link names a shop that is not there.",
            )
        })?;
    let request = SsoRequest {
        partner: partner.id,
        shop: shop.id,
        email: email.clone(),
        first_name: name(user.first_name),
        last_name: name(user.last_name),
        link: params.payload.clone(),
        link_expires_at,
    };
    let signed_in = hub
        .admin
        .sign_in(&request, now)
        .await
        .map_err(|e| match e {
            shared::admin::AdminError::LinkUsed => refused(
                StatusCode::GONE,
                "This sign-in link was already used. Ask for a new one where you found it.",
            ),
            other => {
                tracing::error!(error = %other, "sign-in failed");
                refused(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Signing in failed; please try the link again.",
                )
            }
        })?;
    if let Some(token) = &signed_in.confirm_token {
        welcome(hub, &parts.headers, &email, &request.first_name, token).await;
    }
    let cookie = format!(
        "{SESSION_COOKIE}={}; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age={SESSION_SECONDS}",
        signed_in.session_token
    );
    let mut response = (StatusCode::FOUND, [(header::LOCATION, "/admin")]).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie)
            .map_err(|_| refused(StatusCode::INTERNAL_SERVER_ERROR, "Signing in failed."))?,
    );
    Ok(response)
}

/// The welcome email with the link that confirms the account and sets a password. A
/// failure is logged: the user is signed in already, and the next link tries again.
async fn welcome(hub: &Hub, headers: &HeaderMap, to: &Email, first_name: &str, token: &str) {
    let Some(mailer) = &hub.mailer else {
        tracing::warn!("no SENDER_EMAIL: the welcome email was not sent");
        return;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if host.starts_with("127.0.0.1") || host.starts_with("localhost") {
        "http"
    } else {
        "https"
    };
    let email = shared::email::Email {
        to: to.as_str().to_owned(),
        subject: "Welcome to your shop's admin page".into(),
        text: format!(
            "Hello {first_name},\n\nyou can now see your shop's plans and activity. Confirm your account and set a password here:\n\n{scheme}://{host}/admin/confirm/{token}\n\nThe link works for 7 days.\n"
        ),
    };
    if let Err(e) = mailer.send(&email).await {
        tracing::error!(error = %e, "the welcome email was not sent");
    }
}

/// The session a request's cookie opens, if any.
async fn session_of(hub: &Hub, headers: &HeaderMap) -> Option<(Session, shared::admin::AdminUser)> {
    let token = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())?;
    hub.admin.session(&token, clock::now()).await.ok().flatten()
}

/// `GET /admin`: the signed-in user's shops.
async fn page(State(web): State<Arc<AdminWeb>>, headers: HeaderMap) -> Result<Response, PageError> {
    let hub = &web.hub;
    let Some((session, user)) = session_of(hub, &headers).await else {
        return Err(refused(
            StatusCode::UNAUTHORIZED,
            "You are not signed in. Use the link in your partner's portal.",
        ));
    };
    let mut shops = Vec::new();
    for id in &user.shops {
        let Ok(Some(account)) = hub.accounts.get(*id).await else {
            continue;
        };
        // A session shows only its partner's shops.
        if account.partner_id != session.partner_id {
            continue;
        }
        let selection = hub.billing.selection(*id).await.ok().flatten();
        let mut events = hub.timeline.list(*id).await.unwrap_or_default();
        events.reverse();
        events.truncate(10);
        shops.push(html::ShopView {
            account,
            selection,
            events,
        });
    }
    Ok(html::admin_page(&user, &session, &shops))
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf: Option<String>,
}

/// `POST /admin/logout`: ends the session (the form's CSRF token must match it).
async fn logout(
    State(web): State<Arc<AdminWeb>>,
    headers: HeaderMap,
    form: Result<Form<LogoutForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let Some((session, _)) = session_of(&web.hub, &headers).await else {
        return Err(refused(StatusCode::UNAUTHORIZED, "You are not signed in."));
    };
    let csrf = form.ok().and_then(|Form(f)| f.csrf).unwrap_or_default();
    if !shared::secrets::token_matches(&csrf, &shared::secrets::token_hash(&session.csrf)) {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "This form has expired; reload the page and try again.",
        ));
    }
    web.hub.admin.sign_out(&session).await.map_err(|_| {
        refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "Signing out failed; please try again.",
        )
    })?;
    let mut response = html::message_page(StatusCode::OK, "Signed out", "You are signed out.");
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("hub_session=; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age=0"),
    );
    Ok(response)
}
