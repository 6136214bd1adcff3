//! Who is calling: one extractor per authentication scheme, each answering the hub's
//! JSON 401 before the handler runs (and before the body is read).
//!
//! | extractor         | scheme                                                     |
//! |-------------------|------------------------------------------------------------|
//! | [`PartnerAuth`]   | an integrator's token in `x-rlv-partner-token` (or `Authorization: Bearer`) |
//! | [`MarketplaceAuth`] | a marketplace's key as `Authorization: Bearer <key>`     |

use std::sync::Arc;

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, StatusCode, header, request::Parts},
};

use super::ApiError;
use crate::{
    Hub,
    partners::{Partner, PartnerError, PartnerKind},
};

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
        let partner = hub
            .partners
            .authenticate_kind(token, PartnerKind::Integrator)
            .await?;
        Ok(Self(partner))
    }
}

/// A marketplace, authenticated by its key as a bearer token.
pub struct MarketplaceAuth(pub Partner);

impl FromRequestParts<Arc<Hub>> for MarketplaceAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, hub: &Arc<Hub>) -> Result<Self, ApiError> {
        let partner = hub
            .partners
            .authenticate_kind(bearer_token(&parts.headers), PartnerKind::Marketplace)
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
        Ok(Self(partner))
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
