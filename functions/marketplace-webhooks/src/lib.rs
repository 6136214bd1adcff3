//! The marketplace callback (`marketplace-webhooks.txt`): a marketplace posts its users'
//! lifecycle events to `POST /etvas-events`, authenticated with its key as
//! `Authorization: Bearer <key>`. The logic lives in `shared::marketplace`.

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    routing::post,
};
use shared::{
    Hub, clock,
    http::{ApiError, with_fallbacks},
    marketplace::Marketplaces,
    partners::{PartnerError, PartnerKind},
};

/// The path the contract names for the callback.
pub const EVENTS_PATH: &str = "/etvas-events";

#[derive(Clone)]
struct AppState {
    hub: Arc<Hub>,
    marketplaces: Marketplaces,
}

/// The routes this function serves (the template routes the same path to it).
pub fn router(hub: Arc<Hub>) -> Router {
    let marketplaces = Marketplaces::new(
        hub.table.clone(),
        hub.outbox.clone(),
        hub.config.suspension_grace,
    );
    with_fallbacks(Router::new().route(EVENTS_PATH, post(receive_event)))
        .with_state(AppState { hub, marketplaces })
}

/// The bearer key of an `Authorization` header (scheme case-insensitive).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

async fn receive_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let marketplace = state
        .hub
        .partners
        .authenticate_kind(bearer_token(&headers), PartnerKind::Marketplace)
        .await
        .map_err(|e| match e {
            PartnerError::MissingToken => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing_marketplace_key",
                "send your marketplace key as Authorization: Bearer <key>",
            )
            .with_field("Authorization"),
            PartnerError::UnknownToken => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_marketplace_key",
                "the marketplace key is not valid",
            )
            .with_field("Authorization"),
            other => other.into(),
        })?;
    let response = state
        .marketplaces
        .handle(&marketplace, &body, clock::now())
        .await?;
    Ok((StatusCode::OK, Json(response)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bearer_keys_only() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, "Bearer mk_abc".parse().unwrap());
        assert_eq!(bearer_token(&headers), Some("mk_abc"));
        headers.insert(header::AUTHORIZATION, "bearer  mk_abc ".parse().unwrap());
        assert_eq!(bearer_token(&headers), Some("mk_abc"));
        headers.insert(header::AUTHORIZATION, "Basic bWs6YWJj".parse().unwrap());
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(bearer_token(&headers), None);
    }
}
