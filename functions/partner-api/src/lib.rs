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
    partners::Partner,
    plans::ContractPlan,
    runtime::Function,
    signed_payload::claims_into,
    usage,
};

pub use shared::http::auth::PARTNER_TOKEN_HEADER;
pub use wire::{
    ConfirmClaims, ConfirmResponse, DomainResponse, ProvisionClaims, RunningClaims, ShopClaims,
    ShopState, SignedBody, StatementClaims, StatementResponse,
};

pub const NAME: &str = "partner-api";
pub const DOMAINS_PATH: &str = "/api/v0/partners/domains";
pub const PLANS_PATH: &str = "/api/v0/partners/subscriptions";
pub const CONFIRM_PATH: &str = "/api/v0/partners/domains/subscriptions/confirm";
pub const STATEMENT_PATH: &str = "/api/v0/partners/domains/statement";

pub fn function() -> Function {
    Function::http(NAME, router)
}

/// The routes this function serves (the template routes the same paths to it).
pub fn router(hub: Arc<Hub>) -> Router {
    with_fallbacks(
        Router::new()
            .route(DOMAINS_PATH, post(provision_domain).put(set_running))
            .route(PLANS_PATH, post(list_plans))
            .route(CONFIRM_PATH, post(confirm_plans))
            .route(STATEMENT_PATH, post(statement)),
    )
    .with_state(hub)
}

/// The claims of a signed request body, verified with the partner's keys.
async fn signed<T: serde::de::DeserializeOwned>(
    hub: &Hub,
    partner: &Partner,
    body: Result<AnyJson<SignedBody>, ApiError>,
) -> Result<T, ApiError> {
    signed_with_hash(hub, partner, body)
        .await
        .map(|(claims, _)| claims)
}

/// [`signed`], and the claims' content hash (time claims left out).
async fn signed_with_hash<T: serde::de::DeserializeOwned>(
    hub: &Hub,
    partner: &Partner,
    body: Result<AnyJson<SignedBody>, ApiError>,
) -> Result<(T, String), ApiError> {
    let AnyJson(body) = body?;
    let claims = verified_claims(hub, partner, &body.jwt()?).await?;
    let parsed = claims_into(&claims).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_payload",
            e.to_string(),
        )
        .with_field("payload")
    })?;
    Ok((parsed, claims.content_hash()))
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "a stored value could not be answered");
    ApiError::internal()
}

/// `POST /api/v0/partners/domains/subscriptions/confirm`: the shop's plans and first
/// billing period (step 3).
async fn confirm_plans(
    State(hub): State<Arc<Hub>>,
    PartnerAuth(partner): PartnerAuth,
    body: Result<AnyJson<SignedBody>, ApiError>,
) -> Result<Json<ConfirmResponse>, ApiError> {
    let (claims, hash): (ConfirmClaims, String) = signed_with_hash(&hub, &partner, body).await?;
    let domain = claims.shop()?;
    let confirmation = claims.confirmation(hash)?;
    // The shop's check and what confirming reads go out together (the shop's id
    // follows from its domain); nothing is written unless the shop is the partner's.
    let (shop, reads) = tokio::try_join!(
        async { Ok::<_, ApiError>(hub.accounts.shop_of(partner.id, &domain).await?) },
        async {
            let account = shared::domain::AccountId::for_shop(&domain);
            Ok(hub
                .billing
                .confirmation_reads(account, &confirmation)
                .await?)
        },
    )?;
    let selection = hub
        .billing
        .confirm(partner.id, shop.id, confirmation, reads)
        .await?;
    ConfirmResponse::of(&selection).map(Json).map_err(internal)
}

/// `POST /api/v0/partners/domains/statement`: a billing period's statement from the
/// usage records sent for it, by the contract's invoice rule (§5.1).
async fn statement(
    State(hub): State<Arc<Hub>>,
    PartnerAuth(partner): PartnerAuth,
    body: Result<AnyJson<SignedBody>, ApiError>,
) -> Result<Json<StatementResponse>, ApiError> {
    let claims: StatementClaims = signed(&hub, &partner, body).await?;
    let domain = claims.shop()?;
    // The shop's check and its selection in one round trip (its id follows from the
    // domain); the selection is answered only if the shop is the partner's.
    let (shop, selection) = tokio::try_join!(
        async { Ok::<_, ApiError>(hub.accounts.shop_of(partner.id, &domain).await?) },
        async {
            let account = shared::domain::AccountId::for_shop(&domain);
            Ok(hub.billing.selection(account).await?)
        },
    )?;
    let selection = selection.ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "no_confirmed_plans",
            "the shop has no confirmed subscriptions (step 3) and so no billing period",
        )
    })?;
    let period = claims.period(&selection.period)?;
    let (first, last) = usage::period_days(&period);
    let records = usage::records_between(&hub.table, shop.id, first, last)
        .await
        .map_err(internal)?;
    let cap = |p: &Option<shared::domain::Price>| p.as_ref().map(|p| p.amount());
    let statement = usage::statement(
        &records,
        period.trial_ends_at,
        cap(&period.fixed_price_cap_usd),
        cap(&period.dynamic_price_cap_usd),
    );
    Ok(Json(StatementResponse::of(&domain, &period, &statement)))
}

/// `PUT /api/v0/partners/domains`: pause (`running: false`) or resume a shop.
async fn set_running(
    State(hub): State<Arc<Hub>>,
    PartnerAuth(partner): PartnerAuth,
    body: Result<AnyJson<SignedBody>, ApiError>,
) -> Result<Json<ShopState>, ApiError> {
    let claims: RunningClaims = signed(&hub, &partner, body).await?;
    let (domain, running) = (claims.shop()?, claims.running()?);
    let account = hub
        .accounts
        .set_running(partner.id, &domain, running)
        .await?;
    Ok(Json(ShopState::of(&domain, &account)))
}

/// `POST /api/v0/partners/subscriptions`: the plans a shop may choose from (step 2).
async fn list_plans(
    State(hub): State<Arc<Hub>>,
    PartnerAuth(partner): PartnerAuth,
    body: Result<AnyJson<SignedBody>, ApiError>,
) -> Result<Json<Vec<ContractPlan>>, ApiError> {
    let claims: ShopClaims = signed(&hub, &partner, body).await?;
    let domain = claims.shop()?;
    let (_, plans) = tokio::try_join!(
        async { Ok::<_, ApiError>(hub.accounts.shop_of(partner.id, &domain).await?) },
        async { Ok(hub.plans.list().await?) },
    )?;
    plans
        .iter()
        .map(|plan| ContractPlan::from_spec(&plan.spec))
        .collect::<Result<Vec<_>, _>>()
        .map(Json)
        .map_err(internal)
}

/// `POST /api/v0/partners/domains`: provision a shop account.
async fn provision_domain(
    State(hub): State<Arc<Hub>>,
    PartnerAuth(partner): PartnerAuth,
    body: Result<AnyJson<SignedBody>, ApiError>,
) -> Result<(StatusCode, Json<DomainResponse>), ApiError> {
    let claims: ProvisionClaims = signed(&hub, &partner, body).await?;
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
