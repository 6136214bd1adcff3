//! The signed-payload partner API (`partner-api-signed-payloads.txt`): partners call
//! with their token in `x-rlv-partner-token` and a JWT payload signed RS512.

mod provision;

use std::sync::Arc;

use axum::{Router, routing::post};
use shared::{Hub, http::with_fallbacks};

pub use provision::{DomainResponse, ProvisionClaims};

/// The header that carries a partner's token.
pub const PARTNER_TOKEN_HEADER: &str = "x-rlv-partner-token";

/// The routes this function serves (the template routes the same paths to it).
pub fn router(hub: Arc<Hub>) -> Router {
    with_fallbacks(Router::new().route(
        "/api/v0/partners/domains",
        post(provision::provision_domain),
    ))
    .with_state(hub)
}
