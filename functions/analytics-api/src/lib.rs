//! Analytics: the installed widget reports sessions and queries (authenticated by its
//! widget or search key); partners read a per-customer summary in the contract's
//! Example Response shape. Also serves the widget script the snippets load.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use shared::{
    Hub,
    analytics::{PageView, WidgetReport, WidgetSummary, normalise_query},
    clock,
    domain::{AccountId, ExternalId, ParseError},
    http::{
        AnyJson, ApiError, Path, Query,
        auth::{AnalyticsAuth, ShopAuth},
    },
    runtime::Function,
};

pub const NAME: &str = "analytics-api";

pub fn function() -> Function {
    Function::http(NAME, router)
}

pub const WIDGET_EVENTS_PATH: &str = "/api/v0/widget/events";
pub const ANALYTICS_PATH: &str = "/api/v0/partners/customers/{customer_id}/analytics";
/// A shop's front-end integration reports its page views here.
pub const TRACK_PATH: &str = "/api/v0/shops/{shop}/track";
const WIDGET_SCRIPT: &str = include_str!("widget.js");

pub fn router(hub: Arc<Hub>) -> Router {
    shared::http::with_fallbacks(
        Router::new()
            .route(WIDGET_EVENTS_PATH, post(report).options(preflight))
            .route("/widget.js", get(widget_script))
            .route(ANALYTICS_PATH, get(summary))
            .route(TRACK_PATH, post(track).options(preflight)),
    )
    .with_state(hub)
}

/// The widget posts from shops' pages: any origin may report.
fn cors(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(
            "content-type, x-widget-key, x-rlv-access-token, x-rlv-page-token",
        ),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    response
}

async fn preflight() -> Response {
    cors(StatusCode::NO_CONTENT.into_response())
}

async fn widget_script() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        WIDGET_SCRIPT,
    )
        .into_response()
}

/// A page view as the shop's front-end integration sends it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackBody {
    user_id: Option<String>,
}

/// `POST /api/v0/shops/{shop}/track`: one page view of the shop (202), counted per day
/// with the day's active users; refused while the shop is paused.
async fn track(
    State(hub): State<Arc<Hub>>,
    shop: Result<ShopAuth, ApiError>,
    body: Result<AnyJson<TrackBody>, ApiError>,
) -> Response {
    let recorded = async {
        let ShopAuth(account) = shop?;
        let AnyJson(body) = body?;
        let view = PageView {
            user_id: id_field("userId", body.user_id)?,
            at: clock::now(),
        };
        hub.analytics.record_page_view(account.id, &view).await?;
        Ok::<_, ApiError>(())
    };
    cors(match recorded.await {
        Ok(()) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"accepted": true})),
        )
            .into_response(),
        Err(e) => e.into_response(),
    })
}

/// A widget report as sent.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportBody {
    key: Option<String>,
    user_id: Option<String>,
    session_id: Option<String>,
    query: Option<String>,
    content_found: Option<bool>,
}

fn id_field(field: &str, value: Option<String>) -> Result<String, ApiError> {
    match value.map(|v| v.trim().to_owned()) {
        None => Err(ApiError::missing_field(field)),
        Some(v) if v.is_empty() || v.len() > 256 => Err(ApiError::invalid_field(
            field,
            ParseError::new("must be 1 to 256 characters"),
        )),
        Some(v) => Ok(v),
    }
}

async fn report(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    body: Result<AnyJson<ReportBody>, ApiError>,
) -> Response {
    cors(match record_report(&hub, &headers, body).await {
        Ok(()) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"accepted": true})),
        )
            .into_response(),
        Err(e) => e.into_response(),
    })
}

async fn record_report(
    hub: &Hub,
    headers: &HeaderMap,
    body: Result<AnyJson<ReportBody>, ApiError>,
) -> Result<(), ApiError> {
    let AnyJson(body) = body?;
    let key = headers
        .get("x-widget-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(body.key)
        .filter(|k| !k.trim().is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing_widget_key",
                "send the widget's key (x-widget-key or key)",
            )
        })?;
    // Keys are removed when an account is cancelled: its reports stop at once.
    let owner = hub
        .subscriptions
        .widget_key(key.trim())
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_widget_key",
                "the widget key is not valid (or its account was cancelled)",
            )
        })?;
    let user_id = id_field("userId", body.user_id)?;
    let session_id = id_field("sessionId", body.session_id)?;
    let query = match body.query {
        None => None,
        Some(q) => {
            let normalised = normalise_query(&q);
            if normalised.is_empty() {
                return Err(ApiError::invalid_field(
                    "query",
                    ParseError::new("must not be empty"),
                ));
            }
            let found = body
                .content_found
                .ok_or_else(|| ApiError::missing_field("contentFound"))?;
            Some((normalised, found))
        }
    };
    let report = WidgetReport {
        user_id,
        session_id,
        query,
        at: clock::now(),
    };
    hub.analytics.record(owner.account_id, &report).await?;
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RangeParams {
    start_date: Option<String>,
    end_date: Option<String>,
}

/// The contract's Example Response.
#[derive(Debug, Serialize, Deserialize)]
pub struct AnalyticsResponse {
    pub partner_id: String,
    #[serde(rename = "startDate")]
    pub start_date: String,
    #[serde(rename = "endDate")]
    pub end_date: String,
    pub widget: WidgetSummary,
}

fn date_param(
    field: &str,
    value: Option<String>,
) -> Result<(String, time::OffsetDateTime), ApiError> {
    let raw = value
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| ApiError::missing_field(field))?;
    let at = clock::parse_iso8601(raw.trim()).ok_or_else(|| {
        ApiError::invalid_field(
            field,
            ParseError::new(format!("'{raw}' is not an ISO-8601 date-time")),
        )
    })?;
    Ok((raw, at))
}

async fn summary(
    State(hub): State<Arc<Hub>>,
    AnalyticsAuth(partner): AnalyticsAuth,
    Path(customer_id): Path<String>,
    Query(params): Query<RangeParams>,
) -> Result<Json<AnalyticsResponse>, ApiError> {
    let (start_raw, start) = date_param("startDate", params.start_date)?;
    let (end_raw, end) = date_param("endDate", params.end_date)?;
    let customer =
        ExternalId::parse(&customer_id).map_err(|e| ApiError::invalid_field("customerId", e))?;
    let account = AccountId::for_external(partner.id, &customer);
    // The customer's check and the summary's reads go out together; the summary is
    // answered only for a customer of the partner's.
    let (plan, widget) = tokio::try_join!(
        async { Ok::<_, ApiError>(hub.subscriptions.plan(account).await?) },
        async { Ok(hub.analytics.summary(account, start, end).await?) },
    )?;
    if plan.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_customer",
            format!("no customer {customer_id} for this partner"),
        ));
    }
    Ok(Json(AnalyticsResponse {
        partner_id: partner.id.to_string(),
        start_date: start_raw,
        end_date: end_raw,
        widget,
    }))
}
