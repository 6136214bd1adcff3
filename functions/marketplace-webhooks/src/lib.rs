//! The marketplace callback (`marketplace-webhooks.txt`): a marketplace posts its users'
//! lifecycle events to `POST /etvas-events`, authenticated with its key as
//! `Authorization: Bearer <key>`. The wire format is in `wire`; the domain logic in
//! `shared::marketplace`.

pub mod wire;

use std::sync::Arc;

use axum::{Json, Router, body::Bytes, extract::State, http::StatusCode, routing::post};
use serde_json::Value;
use shared::{
    Hub, clock,
    http::{ApiError, auth::MarketplaceAuth, parse_json, with_fallbacks},
    runtime::Function,
};

pub const NAME: &str = "marketplace-webhooks";
/// The path the contract names for the callback.
pub const EVENTS_PATH: &str = "/etvas-events";

pub fn function() -> Function {
    Function::http(NAME, router)
}

/// The routes this function serves (the template routes the same path to it).
pub fn router(hub: Arc<Hub>) -> Router {
    with_fallbacks(Router::new().route(EVENTS_PATH, post(receive_event))).with_state(hub)
}

async fn receive_event(
    State(hub): State<Arc<Hub>>,
    MarketplaceAuth(marketplace): MarketplaceAuth,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let event = wire::parse_event(&body)?;
    let value: Value = parse_json(&body)?;
    let outcome = hub
        .marketplaces
        .handle(&marketplace, &event, &wire::body_hash(&value), clock::now())
        .await?
        .into_inner();
    Ok((StatusCode::OK, Json(wire::response(&event, &outcome))))
}
