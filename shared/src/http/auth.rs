//! Who is calling: one extractor per authentication scheme, each answering the hub's
//! JSON 401 before the handler runs (and before the body is read).
//!
//! | extractor         | scheme                                                     |
//! |-------------------|------------------------------------------------------------|
//! | [`PartnerAuth`]   | an integrator's token in `x-rlv-partner-token` (or `Authorization: Bearer`) |
//! | [`MarketplaceAuth`] | a marketplace's key as `Authorization: Bearer <key>`     |
//! | [`SiteAuth`]      | a loyalty site's access token (base64 of `[loyaltyToken, siteId]`) as `Authorization: Bearer` |
//! | [`EmbedAuth`]     | the embed API's ES256 tokens as `Authorization: JWT <token>` (or `Bearer`): a partner's, or a sub-account's |
//! | [`AnalyticsAuth`] | an integrator's analytics key in `x-rlv-analytics-key` (never the partner token: it travels in SSO links) |

use std::sync::Arc;

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, StatusCode, header, request::Parts},
};

use super::ApiError;
use crate::{
    Hub, clock,
    partners::{Partner, PartnerError, PartnerKind},
    signed_payload::PayloadError,
    throttle::Scope,
};

/// The caller's address as API Gateway saw it: `requestContext.http.sourceIp`, which
/// `lambda_http` puts in the request's extensions (the stand-in puts the same there).
/// Never `X-Forwarded-For`, which the caller writes.
pub fn source_ip(parts: &Parts) -> String {
    match parts
        .extensions
        .get::<lambda_http::request::RequestContext>()
    {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone(),
        _ => None,
    }
    .unwrap_or_else(|| "unknown".to_owned())
}

/// Runs an authentication throttled per source IP: refused at once (429) while the IP
/// is blocked, and every 401 counted as a failure.
async fn throttled<T>(
    hub: &Hub,
    parts: &Parts,
    auth: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    throttled_for(hub, Scope::SourceIp(source_ip(parts)), auth).await
}

async fn throttled_for<T>(
    hub: &Hub,
    scope: Scope,
    auth: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let now = clock::now();
    if let Some(wait) = hub.throttle.blocked(&scope, now) {
        return Err(ApiError::too_many_failures(wait));
    }
    match auth.await {
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            match hub.throttle.failed(&scope, now).await {
                Some(wait) => Err(ApiError::too_many_failures(wait)),
                None => Err(e),
            }
        }
        other => other,
    }
}

/// A partner's signed payload, verified with its keys: its claims. Bad signatures are
/// counted per partner (its token was right, so someone holds it): past the limit bad
/// signatures get 429 until the window ends. A correctly signed payload is never refused
/// by that counter: the partner token is in every SSO link a shop user sees, so strangers
/// can fill it, and only the private key makes a good signature.
pub async fn verified_claims(
    hub: &Hub,
    partner: &Partner,
    jwt: &str,
) -> Result<crate::signed_payload::Claims, ApiError> {
    let scope = Scope::PartnerSignatures(partner.id.to_string());
    let now = clock::now();
    match hub.payloads.verify(jwt, &partner.keys, now) {
        Err(PayloadError::BadSignature) => {
            if let Some(wait) = hub.throttle.blocked(&scope, now) {
                return Err(ApiError::too_many_failures(wait));
            }
            match hub.throttle.failed(&scope, now).await {
                Some(wait) => Err(ApiError::too_many_failures(wait)),
                None => Err(PayloadError::BadSignature.into()),
            }
        }
        other => Ok(other?),
    }
}

/// The header that carries a partner's token (signed-payload contract).
pub const PARTNER_TOKEN_HEADER: &str = "x-rlv-partner-token";

/// The bearer token of an `Authorization` header (scheme case-insensitive).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The integrator a partner token belongs to, throttled like every authentication (for
/// routes that carry the token elsewhere than in a header, e.g. SSO links).
pub async fn partner_by_token(hub: &Hub, parts: &Parts, token: &str) -> Result<Partner, ApiError> {
    let auth = async {
        Ok(hub
            .partners
            .authenticate_kind(Some(token), PartnerKind::Integrator)
            .await?)
    };
    throttled(hub, parts, auth).await
}

/// An integrator partner, authenticated by its partner token.
pub struct PartnerAuth(pub Partner);

impl FromRequestParts<Arc<Hub>> for PartnerAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, hub: &Arc<Hub>) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(PARTNER_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .or_else(|| bearer_token(&parts.headers));
        let auth = async {
            Ok(hub
                .partners
                .authenticate_kind(token, PartnerKind::Integrator)
                .await?)
        };
        throttled(hub, parts, auth).await.map(Self)
    }
}

/// The header that carries a partner's analytics key.
pub const ANALYTICS_KEY_HEADER: &str = "x-rlv-analytics-key";

/// An integrator reading analytics, authenticated by its analytics key.
pub struct AnalyticsAuth(pub Partner);

impl FromRequestParts<Arc<Hub>> for AnalyticsAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, hub: &Arc<Hub>) -> Result<Self, ApiError> {
        let key = parts
            .headers
            .get(ANALYTICS_KEY_HEADER)
            .and_then(|v| v.to_str().ok());
        let auth = hub.partners.authenticate_analytics(key);
        let auth = async {
            auth.await.map_err(|e| match e {
                PartnerError::MissingAnalyticsKey => ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "missing_analytics_key",
                    "send your analytics key in the x-rlv-analytics-key header; the partner \
                     token alone does not read analytics (it travels in SSO links)",
                )
                .with_field(ANALYTICS_KEY_HEADER),
                PartnerError::UnknownAnalyticsKey => ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_analytics_key",
                    "the analytics key is not valid",
                )
                .with_field(ANALYTICS_KEY_HEADER),
                other => other.into(),
            })
        };
        throttled(hub, parts, auth).await.map(Self)
    }
}

/// The headers a shop's front-end integration authenticates with.
pub const ACCESS_TOKEN_HEADER: &str = "x-rlv-access-token";
pub const PAGE_TOKEN_HEADER: &str = "x-rlv-page-token";

/// A shop's front-end integration, on a route with a `{shop}` path parameter:
/// authenticated by the shop's `accessToken` (`x-rlv-access-token`) or one of its page
/// tokens (`x-rlv-page-token`). A paused shop is refused (403 `shop_paused`): pausing
/// stops its integrations.
pub struct ShopAuth(pub crate::accounts::Account);

#[derive(serde::Deserialize)]
struct ShopParam {
    shop: String,
}

impl FromRequestParts<Arc<Hub>> for ShopAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, hub: &Arc<Hub>) -> Result<Self, ApiError> {
        let super::Path(ShopParam { shop }) =
            super::Path::<ShopParam>::from_request_parts(parts, hub).await?;
        let domain = crate::domain::ShopDomain::parse(&shop)
            .map_err(|e| ApiError::invalid_field("shop", e))?;
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let (access, page) = (header(ACCESS_TOKEN_HEADER), header(PAGE_TOKEN_HEADER));
        let auth = async {
            if access.is_none() && page.is_none() {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "missing_shop_token",
                    "send the shop's accessToken (x-rlv-access-token) or a page token (x-rlv-page-token)",
                ));
            }
            let account = hub
                .accounts
                .get(crate::domain::AccountId::for_shop(&domain))
                .await?
                .filter(|account| {
                    let by_access = access
                        .zip(account.access_token_hash.as_deref())
                        .is_some_and(|(token, hash)| crate::secrets::token_matches(token, hash));
                    let by_page = page.is_some_and(|token| {
                        account.pages.iter().any(|p| {
                            crate::secrets::token_matches(
                                token,
                                &crate::secrets::token_hash(&p.token),
                            )
                        })
                    });
                    by_access || by_page
                })
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "invalid_shop_token",
                        "the token is not one of this shop's",
                    )
                })?;
            Ok(account)
        };
        let account = throttled(hub, parts, auth).await?;
        if !account.running {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "shop_paused",
                "the shop's integrations are paused by its partner",
            ));
        }
        Ok(Self(account))
    }
}

/// A marketplace, authenticated by its key as a bearer token.
pub struct MarketplaceAuth(pub Partner);

impl FromRequestParts<Arc<Hub>> for MarketplaceAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, hub: &Arc<Hub>) -> Result<Self, ApiError> {
        let auth = hub
            .partners
            .authenticate_kind(bearer_token(&parts.headers), PartnerKind::Marketplace);
        let auth = async {
            auth.await.map_err(|e| match e {
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
            })
        };
        throttled(hub, parts, auth).await.map(Self)
    }
}

/// A loyalty site (SMS contract), by its access token as `Authorization: Bearer`: the
/// loyalty token inside is compared with the stored hash in constant time.
#[cfg(feature = "sms")]
pub struct SiteAuth(pub crate::sms::SmsSite);

#[cfg(feature = "sms")]
impl<S> FromRequestParts<S> for SiteAuth
where
    S: Send + Sync,
    Arc<Hub>: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let hub: Arc<Hub> = axum::extract::FromRef::from_ref(state);
        let hub = &hub;
        let token = bearer_token(&parts.headers).map(str::to_owned);
        let auth = async {
            let Some(token) = token else {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "missing_access_token",
                    "send the site's access token as Authorization: Bearer <access token>",
                )
                .with_field("Authorization"));
            };
            hub.sms
                .site_by_access_token(&token)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "a site could not be read");
                    ApiError::internal()
                })?
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "invalid_access_token",
                        "the access token is not a site's (base64 of [loyaltyToken, siteId])",
                    )
                    .with_field("Authorization")
                })
        };
        throttled(hub, parts, auth).await.map(Self)
    }
}

/// An authenticated caller (`A`, any of this module's extractors) of a route that seals
/// secrets: the process's sealing data key is made ready beside the caller's read, so
/// the seal costs no round trip of its own when the key is new or expired.
pub struct Sealing<A>(pub A);

impl<S, A> FromRequestParts<S> for Sealing<A>
where
    S: Send + Sync,
    A: FromRequestParts<S, Rejection = ApiError> + Send,
    Arc<Hub>: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let hub: Arc<Hub> = axum::extract::FromRef::from_ref(state);
        let (caller, prepared) = tokio::join!(
            A::from_request_parts(parts, state),
            hub.accounts.sealer().prepare()
        );
        if let Err(e) = prepared {
            // The seal itself will try again (and fail clearly if KMS is down).
            tracing::warn!(error = %e, "the sealing key could not be made ready");
        }
        caller.map(Self)
    }
}

/// The partner an embed API request was authenticated for, recorded for the CORS layer
/// (a browser origin is answered only for the partner it is registered to).
#[cfg(feature = "embed")]
#[derive(Clone, Default, Debug)]
pub struct EmbedCallerSlot(pub Arc<std::sync::OnceLock<crate::domain::PartnerId>>);

/// The token of `Authorization: JWT <token>` (the embed contract's scheme) or `Bearer`.
#[cfg(feature = "embed")]
pub fn embed_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("jwt") || scheme.eq_ignore_ascii_case("bearer"))
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(feature = "embed")]
async fn embed_caller<S>(parts: &Parts, state: &S) -> Result<crate::embed::Caller, ApiError>
where
    Arc<Hub>: axum::extract::FromRef<S>,
{
    let hub: Arc<Hub> = axum::extract::FromRef::from_ref(state);
    let token = embed_token(&parts.headers).map(str::to_owned);
    let auth = async {
        let Some(token) = token else {
            return Err(missing_embed_token());
        };
        Ok(hub.embed.authenticate(&token).await?)
    };
    let caller = throttled(&hub, parts, auth).await?;
    if let Some(slot) = parts.extensions.get::<EmbedCallerSlot>() {
        let _ = slot.0.set(caller.partner_id());
    }
    Ok(caller)
}

#[cfg(feature = "embed")]
fn missing_embed_token() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "missing_token",
        "send your token as Authorization: JWT <token>",
    )
    .with_field("Authorization")
}

#[cfg(feature = "embed")]
fn wrong_token(wanted: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "wrong_token",
        format!("this route takes {wanted}"),
    )
    .with_field("Authorization")
}

/// Which embed token a route admits: the partner's ([`Partner`]), a tenant's
/// ([`crate::embed::SubAccount`]) or either ([`crate::embed::Caller`]).
#[cfg(feature = "embed")]
pub trait EmbedCallerKind: Sized {
    fn admit(caller: crate::embed::Caller) -> Result<Self, ApiError>;
}

#[cfg(feature = "embed")]
impl EmbedCallerKind for Partner {
    fn admit(caller: crate::embed::Caller) -> Result<Self, ApiError> {
        match caller {
            crate::embed::Caller::Partner(partner) => Ok(*partner),
            crate::embed::Caller::Tenant(_) => {
                Err(wrong_token("the partner token, not a sub-account's token"))
            }
        }
    }
}

#[cfg(feature = "embed")]
impl EmbedCallerKind for crate::embed::SubAccount {
    fn admit(caller: crate::embed::Caller) -> Result<Self, ApiError> {
        match caller {
            crate::embed::Caller::Tenant(sub) => Ok(*sub),
            crate::embed::Caller::Partner(_) => Err(wrong_token(
                "a sub-account's token (GET /api/subaccount/{id}/token), not the partner token",
            )),
        }
    }
}

#[cfg(feature = "embed")]
impl EmbedCallerKind for crate::embed::Caller {
    fn admit(caller: crate::embed::Caller) -> Result<Self, ApiError> {
        Ok(caller)
    }
}

/// A caller of the embed API, by its token (`Authorization: JWT <token>`), of the kind
/// the route admits: `EmbedAuth<Partner>`, `EmbedAuth<SubAccount>` or `EmbedAuth<Caller>`.
#[cfg(feature = "embed")]
pub struct EmbedAuth<T>(pub T);

#[cfg(feature = "embed")]
impl<S, T> FromRequestParts<S> for EmbedAuth<T>
where
    S: Send + Sync,
    T: EmbedCallerKind,
    Arc<Hub>: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        T::admit(embed_caller(parts, state).await?).map(Self)
    }
}

/// A sub-account's token (`Authorization: JWT <token>`) whose signature, audience and
/// expiry checked out, its sub-account not read yet: a route that reads more sends its
/// first reads [`beside`](TenantToken::beside) that read (one round trip), and uses
/// them only if the token holds.
#[cfg(feature = "embed")]
pub struct TenantToken {
    hub: Arc<Hub>,
    claims: crate::embed::EmbedClaims,
    scope: Scope,
    slot: Option<EmbedCallerSlot>,
    pub account_id: crate::domain::AccountId,
}

#[cfg(feature = "embed")]
impl TenantToken {
    /// The token's sub-account (checked as [`EmbedAuth`] checks it) and what `reads`
    /// read, read together; the token's refusal comes first.
    pub async fn beside<T, E>(
        self,
        reads: impl Future<Output = Result<T, E>>,
    ) -> Result<(crate::embed::SubAccount, T), ApiError>
    where
        ApiError: From<E>,
    {
        let hub = self.hub.clone();
        let check = throttled_for(&hub, self.scope.clone(), async {
            let caller = hub.embed.caller_of(&self.claims).await?;
            crate::embed::SubAccount::admit(caller)
        });
        let (sub, read) = tokio::join!(check, reads);
        let sub = sub?;
        if let Some(slot) = &self.slot {
            let _ = slot.0.set(sub.partner_id);
        }
        Ok((sub, read?))
    }
}

#[cfg(feature = "embed")]
impl<S> FromRequestParts<S> for TenantToken
where
    S: Send + Sync,
    Arc<Hub>: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let hub: Arc<Hub> = axum::extract::FromRef::from_ref(state);
        let token = embed_token(&parts.headers).map(str::to_owned);
        let verify = async {
            let Some(token) = token else {
                return Err(missing_embed_token());
            };
            let claims = hub.embed.verify_token(&token).await?;
            let subject = claims
                .subject()
                .map_err(|e| crate::embed::EmbedError::Unauthorized(e.to_string()))?;
            match subject {
                crate::embed::Subject::SubAccount { partner, number } => Ok((
                    claims,
                    crate::domain::AccountId::for_sub_account(partner, number),
                )),
                crate::embed::Subject::Partner(_) => Err(wrong_token(
                    "a sub-account's token (GET /api/subaccount/{id}/token), not the partner token",
                )),
            }
        };
        let (claims, account_id) = throttled(&hub, parts, verify).await?;
        Ok(Self {
            hub: hub.clone(),
            claims,
            scope: Scope::SourceIp(source_ip(parts)),
            slot: parts.extensions.get::<EmbedCallerSlot>().cloned(),
            account_id,
        })
    }
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
