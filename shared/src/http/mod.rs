//! The edge of every HTTP function: the one place where errors become statuses (every
//! module error, and axum's own rejections, map to `{"error":{"code","message","field"}}`
//! here), the auth extractors of each scheme (`auth`) and extractors whose rejections
//! are that same JSON error (`extract`).

pub mod auth;
mod extract;

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;

pub use extract::{AnyJson, Path, Query, parse_json};

use crate::{
    accounts::AccountError,
    domain::ParseError,
    marketplace::MarketplaceError,
    partners::PartnerError,
    signed_payload::PayloadError,
    store::{StoreError, TxError},
};

/// An error as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Sent as `Retry-After` (whole seconds).
    pub retry_after: Option<std::time::Duration>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
    field: Option<&'a str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// Too many failures: 429 with `Retry-After`.
    pub fn too_many_failures(wait: std::time::Duration) -> Self {
        let mut err = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_failures",
            format!(
                "too many failed attempts; retry in {} seconds",
                wait.as_secs().max(1)
            ),
        );
        err.retry_after = Some(wait);
        err
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// A field a module refused: 422 `invalid_field` naming it.
    pub fn invalid(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        let field = field.into();
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            format!("{field} {message}"),
        )
        .with_field(field)
    }

    /// A field that failed to parse.
    pub fn invalid_field(field: &str, err: ParseError) -> Self {
        Self::invalid(field, err)
    }

    pub fn missing_field(field: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_field",
            format!("{field} is required"),
        )
        .with_field(field)
    }

    /// What the request would store or publish exceeds a service limit.
    fn too_large(message: String) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
    }

    /// The 500 every failure the client cannot fix gets (log the cause first).
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the hub could not complete the request; it is safe to retry",
        )
    }

    fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the hub is busy; retry the request",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(wait) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(wait.as_secs().max(1)),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::TransactionConflict => ApiError::unavailable(),
            StoreError::ItemTooLarge { .. } => ApiError::too_large(err.to_string()),
            other => {
                tracing::error!(error = %other, "storage failure");
                ApiError::internal()
            }
        }
    }
}

impl From<TxError> for ApiError {
    fn from(err: TxError) -> Self {
        match err {
            TxError::Store(e) => e.into(),
            TxError::Conflict => ApiError::unavailable(),
            TxError::TooLarge { .. } | TxError::EventTooLarge { .. } => {
                ApiError::too_large(err.to_string())
            }
            TxError::Reused { message_id } => ApiError::new(
                StatusCode::CONFLICT,
                "event_id_reused",
                format!("the id {message_id} was already used for a different message"),
            ),
            other => {
                tracing::error!(error = %other, "transaction failed");
                ApiError::internal()
            }
        }
    }
}

#[cfg(feature = "sms")]
impl From<crate::sms::SmsError> for ApiError {
    fn from(err: crate::sms::SmsError) -> Self {
        use crate::sms::SmsError;
        match err {
            SmsError::Store(e) => e.into(),
            SmsError::Tx(e) => e.into(),
            SmsError::Invalid { field, error } => ApiError::invalid_field(field, error),
            SmsError::NotActivated => ApiError::new(
                StatusCode::CONFLICT,
                "sms_not_activated",
                "activate the site's SMS gateway first (PUT /api/3.0/sms/activation)",
            ),
            SmsError::UnknownSite => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_site", "no such site")
            }
            SmsError::UnknownJob => ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_action",
                "no SMS job for this action id",
            ),
            other => {
                tracing::error!(error = %other, "SMS request failed");
                ApiError::internal()
            }
        }
    }
}

#[cfg(feature = "embed")]
impl From<crate::embed::EmbedError> for ApiError {
    fn from(err: crate::embed::EmbedError) -> Self {
        use crate::embed::EmbedError;
        match err {
            EmbedError::Store(e) => e.into(),
            EmbedError::Tx(e) => e.into(),
            EmbedError::Invalid { field, message } => ApiError::invalid(field, message),
            EmbedError::Missing(field) => ApiError::missing_field(&field),
            EmbedError::UnknownSubAccount => ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_subaccount",
                "no such sub-account for this partner",
            ),
            EmbedError::UnknownConnection => ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_server",
                "no such connection (server) in this sub-account",
            ),
            EmbedError::ExternalIdTaken { number } => ApiError::new(
                StatusCode::CONFLICT,
                "external_id_taken",
                format!(
                    "sub-account {number} already has this external_id with other details; \
                     change it with PUT /api/subaccount/{number}"
                ),
            )
            .with_field("external_id"),
            EmbedError::Unauthorized(_) => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the token is not valid, has expired or was revoked",
            )
            .with_field("Authorization"),
            EmbedError::NoOAuthClient(id) => ApiError::new(
                StatusCode::CONFLICT,
                "oauth_not_configured",
                format!("connector {id} has no OAuth2 client in this deployment yet"),
            )
            .with_field("servertype_id"),
            EmbedError::OAuthFlow(why) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_oauth_state", why)
            }
            EmbedError::OriginTaken(origin) => ApiError::new(
                StatusCode::CONFLICT,
                "origin_taken",
                format!("{origin} is registered to another partner"),
            ),
            other => {
                tracing::error!(error = %other, "embed request failed");
                ApiError::internal()
            }
        }
    }
}

/// What the SMS gateway's failure means to the caller: 503 with `Retry-After` when it
/// was busy or down (429, 5xx, unreachable), 422 with the gateway's reason when it
/// refused the request.
#[cfg(feature = "sms")]
pub fn gateway_error(err: crate::outbound::OutboundError) -> ApiError {
    use crate::outbound::OutboundError;
    match err {
        OutboundError::Retryable {
            reason,
            retry_after,
            ..
        } => {
            let mut e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "gateway_unavailable",
                format!("the SMS gateway did not answer ({reason}); retry later"),
            );
            e.retry_after = Some(retry_after.unwrap_or(std::time::Duration::from_secs(30)));
            e
        }
        OutboundError::Rejected { status, excerpt } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "gateway_rejected",
            format!("the SMS gateway refused the request with {status}: {excerpt}"),
        ),
        OutboundError::Refused(why) => {
            tracing::error!(%why, "the SMS gateway URL is refused");
            ApiError::internal()
        }
    }
}

impl From<PartnerError> for ApiError {
    fn from(err: PartnerError) -> Self {
        match err {
            PartnerError::MissingToken => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing_partner_token",
                "send your partner token in the x-rlv-partner-token header",
            ),
            PartnerError::UnknownToken => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_partner_token",
                "the partner token is not valid",
            ),
            PartnerError::Store(e) => e.into(),
            PartnerError::Tx(e) => e.into(),
            other => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_partner",
                other.to_string(),
            ),
        }
    }
}

impl From<PayloadError> for ApiError {
    fn from(err: PayloadError) -> Self {
        let code = match &err {
            PayloadError::Malformed(_) | PayloadError::NotAnObject => "malformed_payload",
            PayloadError::WrongAlgorithm(_) => "unsupported_algorithm",
            PayloadError::BadSignature => "invalid_signature",
            PayloadError::MissingExpiry => "missing_expiry",
            PayloadError::InvalidTime(_) | PayloadError::ExpiresBeforeIssued => {
                "invalid_time_claim"
            }
            PayloadError::Expired => "payload_expired",
            PayloadError::NotYetValid | PayloadError::IssuedInFuture => "payload_not_yet_valid",
            PayloadError::LifetimeTooLong { .. } => "payload_lifetime_too_long",
        };
        let status = match &err {
            PayloadError::Malformed(_)
            | PayloadError::NotAnObject
            | PayloadError::InvalidTime(_)
            | PayloadError::ExpiresBeforeIssued => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNAUTHORIZED,
        };
        ApiError::new(status, code, err.to_string()).with_field("payload")
    }
}

impl From<crate::subscriptions::SubscriptionError> for ApiError {
    fn from(err: crate::subscriptions::SubscriptionError) -> Self {
        use crate::subscriptions::SubscriptionError as E;
        match err {
            E::Invalid { field, message } => ApiError::invalid(field, message),
            E::UnknownCustomer(_) | E::UnknownAccount(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_customer", err.to_string())
            }
            E::Cancelled => ApiError::new(StatusCode::GONE, "account_cancelled", err.to_string()),
            E::Store(e) => e.into(),
            E::Tx(e) => e.into(),
        }
    }
}

impl From<crate::analytics::AnalyticsError> for ApiError {
    fn from(err: crate::analytics::AnalyticsError) -> Self {
        match err {
            crate::analytics::AnalyticsError::Invalid { field, message } => {
                ApiError::invalid(field, message)
            }
            crate::analytics::AnalyticsError::Store(e) => e.into(),
        }
    }
}

impl From<crate::billing::BillingError> for ApiError {
    fn from(err: crate::billing::BillingError) -> Self {
        use crate::billing::BillingError as E;
        match err {
            E::Invalid { field, message } => ApiError::invalid(field, message),
            E::Plan(e) => e.into(),
            E::Store(e) => e.into(),
            E::Tx(e) => e.into(),
        }
    }
}

impl From<crate::plans::PlanError> for ApiError {
    fn from(err: crate::plans::PlanError) -> Self {
        use crate::plans::PlanError as E;
        match err {
            E::Invalid { field, message } => ApiError::invalid(field, message),
            E::Unknown(id) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_subscription",
                format!("no subscription with id {id}"),
            )
            .with_field("subscriptionIds"),
            E::Store(e) => e.into(),
            E::Tx(e) => e.into(),
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(err: AccountError) -> Self {
        match err {
            AccountError::ShopTaken(domain) => ApiError::new(
                StatusCode::CONFLICT,
                "shop_taken",
                format!("the shop {domain} is registered by another partner"),
            )
            .with_field("url"),
            AccountError::UnknownShop(domain) => ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_shop",
                format!("no shop {domain} for this partner"),
            )
            .with_field("shop"),
            AccountError::Store(e) => e.into(),
            AccountError::Tx(e) => e.into(),
            other => {
                tracing::error!(error = %other, "account operation failed");
                ApiError::internal()
            }
        }
    }
}

impl From<MarketplaceError> for ApiError {
    fn from(err: MarketplaceError) -> Self {
        use MarketplaceError as E;
        let message = err.to_string();
        let (status, code, field) = match err {
            E::UserPartnerIdMismatch { .. } => (
                StatusCode::CONFLICT,
                "user_partner_id_mismatch",
                "user.partnerId",
            ),
            E::ProductPartnerIdMismatch { .. } => (
                StatusCode::CONFLICT,
                "product_partner_id_mismatch",
                "data.product.partnerId",
            ),
            E::UnknownUser(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unknown_user", "user.id"),
            E::UnknownProduct(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_product",
                "data.product.id",
            ),
            E::UserDeleted(_) => (StatusCode::CONFLICT, "user_deleted", "user.id"),
            E::SubscriptionCancelled(_) => (
                StatusCode::CONFLICT,
                "subscription_cancelled",
                "data.product.id",
            ),
            E::IncompletePurchase => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "missing_field",
                "data.product.price",
            ),
            E::Tx(TxError::Reused { .. }) => (StatusCode::CONFLICT, "event_id_reused", "event.id"),
            E::Store(e) => return e.into(),
            E::Tx(e) => return e.into(),
        };
        ApiError::new(status, code, message).with_field(field)
    }
}

/// For routes that do not exist.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// For routes that exist with other methods.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}

/// The largest request body any route reads. The contracts' bodies are a few KB; this
/// bounds what a hostile client can make a function buffer and parse, far below API
/// Gateway's 10 MB and Lambda's 6 MB payload limits.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Every HTTP function's outer layers, on Lambda and in the stand-in alike (both reach a
/// router only through [`crate::runtime::Function::bind`]):
/// - a panic in a handler is logged and answered with the JSON 500, and the next request
///   is served as usual (the release profile unwinds so that this can catch it);
/// - a body over [`MAX_BODY_BYTES`] is a JSON 413;
/// - any error axum answers in plain text gets the hub's JSON error body;
/// - every log line of the request carries its request id and route key (never the
///   path: the signed-payload contract's SSO links carry secrets in it).
pub fn edge(router: axum::Router) -> axum::Router {
    router
        .layer(axum::middleware::map_response(json_error_bodies))
        .layer(axum::middleware::from_fn(request_span))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
}

async fn request_span(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use tracing::Instrument as _;
    let api = match request
        .extensions()
        .get::<lambda_http::request::RequestContext>()
    {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) => {
            (ctx.request_id.clone(), ctx.route_key.clone())
        }
        _ => (None, None),
    };
    let lambda = request
        .extensions()
        .get::<lambda_http::Context>()
        .map(|ctx| ctx.request_id.clone());
    let span = tracing::info_span!(
        "request",
        request_id = lambda.or(api.0).unwrap_or_default(),
        route = api.1.unwrap_or_default(),
    );
    next.run(request).instrument(span).await
}

fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = crate::runtime::panic_message(&*panic);
    tracing::error!(panic = %message, "a request handler panicked");
    ApiError::internal().into_response()
}

async fn json_error_bodies(response: Response) -> Response {
    let status = response.status();
    // Only axum's own plain-text (or empty) errors: JSON errors and the HTML pages a
    // handler renders for people stay as they are.
    let plain = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return response;
    }
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::BAD_REQUEST => "bad_request",
        s if s.is_server_error() => "internal_error",
        _ => "request_refused",
    };
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            format!("the request body is larger than {MAX_BODY_BYTES} bytes")
        }
        s => s
            .canonical_reason()
            .unwrap_or("the request was refused")
            .to_owned(),
    };
    let mut json = ApiError::new(status, code, message).into_response();
    // Keep headers such as Retry-After or Allow.
    for (name, value) in response.headers() {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            json.headers_mut().insert(name.clone(), value.clone());
        }
    }
    json
}

/// Adds the JSON 404/405 fallbacks to a router.
pub fn with_fallbacks<S: Clone + Send + Sync + 'static>(
    router: axum::Router<S>,
) -> axum::Router<S> {
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{body::Body, routing::post};
    use tower::ServiceExt;

    async fn call(router: &axum::Router, body: Vec<u8>) -> (StatusCode, serde_json::Value) {
        let request = axum::http::Request::post("/x")
            .body(Body::from(body))
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn the_edge_answers_panics_and_oversized_bodies_with_json() {
        let router = edge(
            axum::Router::new()
                .route(
                    "/x",
                    post(|body: axum::body::Bytes| async move {
                        assert!(body != "boom", "the handler blew up");
                        "ok"
                    }),
                )
                .route(
                    "/y",
                    post(|AnyJson(v): AnyJson<serde_json::Value>| async { Json(v) }),
                ),
        );
        let (status, body) = call(&router, b"boom".to_vec()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["code"], "internal_error");
        // The router goes on serving.
        let ok = router
            .clone()
            .oneshot(
                axum::http::Request::post("/x")
                    .body(Body::from("fine"))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        // Raw `Bytes` rejects in plain text; the edge gives it the JSON body.
        let (status, body) = call(&router, vec![b'a'; MAX_BODY_BYTES + 1]).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["error"]["code"], "body_too_large");
        let request = axum::http::Request::post("/y")
            .body(Body::from(vec![b' '; MAX_BODY_BYTES + 1]))
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn payload_errors_are_unauthorized_except_malformed() {
        let e: ApiError = PayloadError::BadSignature.into();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        let e: ApiError = PayloadError::Malformed("x".into()).into();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }
}
