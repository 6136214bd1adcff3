//! The signed-payload partner API (`partner-api-signed-payloads.txt`): partners call
//! with their token in `x-rlv-partner-token` and a JWT payload signed RS512. The wire
//! format is in `wire`; the domain in `shared::accounts`.

mod wire;

use std::sync::Arc;

use axum::{Json, Router, extract::State, http::StatusCode, routing::post};
use shared::{
    Hub,
    http::{
        AnyJson, ApiError,
        auth::{PartnerAuth, verified_claims},
        with_fallbacks,
    },
    runtime::Function,
    signed_payload::claims_into,
};

pub use shared::http::auth::PARTNER_TOKEN_HEADER;
pub use wire::{DomainResponse, ProvisionClaims, SignedBody};

pub const NAME: &str = "partner-api";
pub const DOMAINS_PATH: &str = "/api/v0/partners/domains";

pub fn function() -> Function {
    Function::http(NAME, router)
}

/// The routes this function serves (the template routes the same paths to it).
pub fn router(hub: Arc<Hub>) -> Router {
    with_fallbacks(Router::new().route(DOMAINS_PATH, post(provision_domain))).with_state(hub)
}

/// `POST /api/v0/partners/domains`: provision a shop account.
async fn provision_domain(
    State(hub): State<Arc<Hub>>,
    PartnerAuth(partner): PartnerAuth,
    body: Result<AnyJson<SignedBody>, ApiError>,
) -> Result<(StatusCode, Json<DomainResponse>), ApiError> {
    let AnyJson(body) = body?;
    let claims = verified_claims(&hub, &partner, &body.jwt()?).await?;
    let claims: ProvisionClaims = claims_into(claims).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_payload",
            e.to_string(),
        )
    })?;
    let profile = claims.parse()?;
    let shop = hub.accounts.provision_shop(&partner, profile).await?;
    let status = if shop.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    tracing::info!(
        partner = %partner.id,
        account = %shop.account.id,
        created = shop.created,
        "shop provisioned"
    );
    Ok((status, Json(DomainResponse::from_provisioned(shop)?)))
}
