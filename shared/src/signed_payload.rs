//! Signed payloads: JWTs a partner signs with its private key (RS512, pinned), verified
//! with the public key it registered. `exp` is required and a lifetime longer than the
//! configured maximum is refused, so a leaked payload is only replayable briefly.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::partners::PartnerKey;

/// The only algorithm the signed-payload contract accepts.
pub const PAYLOAD_ALGORITHM: Algorithm = Algorithm::RS512;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PayloadError {
    #[error("the payload is not a JWT: {0}")]
    Malformed(String),
    #[error("payloads must be signed with RS512; this one uses {0}")]
    WrongAlgorithm(String),
    #[error("the payload's signature does not verify with the partner's registered public key")]
    BadSignature,
    #[error("the payload has no exp claim; payloads must expire")]
    MissingExpiry,
    #[error("the payload has expired")]
    Expired,
    #[error("the payload is not valid yet")]
    NotYetValid,
    #[error("the payload lives {lifetime_secs}s; at most {max_secs}s are accepted")]
    LifetimeTooLong { lifetime_secs: i64, max_secs: u64 },
    #[error("the payload's iat lies in the future")]
    IssuedInFuture,
    #[error("the payload's claims are not a JSON object")]
    NotAnObject,
}

#[derive(Debug, Clone)]
pub struct PayloadVerifier {
    max_lifetime: Duration,
    clock_skew: Duration,
}

impl PayloadVerifier {
    pub fn new(max_lifetime: Duration, clock_skew: Duration) -> Self {
        Self {
            max_lifetime,
            clock_skew,
        }
    }

    /// Verifies the JWT with the partner's keys and returns its claims as JSON; the caller
    /// parses them into its own DTO, so a bad field is reported by name.
    pub fn verify(
        &self,
        jwt: &str,
        keys: &[PartnerKey],
        now: OffsetDateTime,
    ) -> Result<serde_json::Map<String, serde_json::Value>, PayloadError> {
        let jwt = jwt.trim();
        let header = jsonwebtoken::decode_header(jwt).map_err(|e| match e.kind() {
            // `alg: none` and other algorithms the library does not know land here.
            ErrorKind::Json(_) if jwt_alg(jwt).is_some() => {
                PayloadError::WrongAlgorithm(jwt_alg(jwt).unwrap_or_default())
            }
            _ => PayloadError::Malformed(e.to_string()),
        })?;
        if header.alg != PAYLOAD_ALGORITHM {
            return Err(PayloadError::WrongAlgorithm(format!("{:?}", header.alg)));
        }
        let candidates: Vec<&PartnerKey> = match &header.kid {
            Some(kid) if keys.iter().any(|k| &k.kid == kid) => {
                keys.iter().filter(|k| &k.kid == kid).collect()
            }
            _ => keys.iter().collect(),
        };
        let mut validation = Validation::new(PAYLOAD_ALGORITHM);
        validation.set_required_spec_claims(&["exp"]);
        validation.validate_exp = false; // checked below against our own clock
        validation.validate_nbf = false;
        validation.validate_aud = false;

        let mut last = PayloadError::BadSignature;
        for key in candidates {
            let Ok(decoding) = DecodingKey::from_rsa_pem(key.public_key_pem.as_bytes()) else {
                continue;
            };
            match jsonwebtoken::decode::<serde_json::Value>(jwt, &decoding, &validation) {
                Ok(data) => return self.check_times(data.claims, now),
                Err(e) => {
                    last = match e.kind() {
                        ErrorKind::InvalidSignature | ErrorKind::InvalidRsaKey(_) => {
                            PayloadError::BadSignature
                        }
                        ErrorKind::MissingRequiredClaim(_) => PayloadError::MissingExpiry,
                        ErrorKind::InvalidAlgorithm => {
                            PayloadError::WrongAlgorithm(format!("{:?}", header.alg))
                        }
                        _ => PayloadError::Malformed(e.to_string()),
                    };
                    if last != PayloadError::BadSignature {
                        return Err(last);
                    }
                }
            }
        }
        Err(last)
    }

    fn check_times(
        &self,
        claims: serde_json::Value,
        now: OffsetDateTime,
    ) -> Result<serde_json::Map<String, serde_json::Value>, PayloadError> {
        let serde_json::Value::Object(claims) = claims else {
            return Err(PayloadError::NotAnObject);
        };
        let now = now.unix_timestamp();
        let skew = self.clock_skew.as_secs() as i64;
        let max = self.max_lifetime.as_secs() as i64;
        let number = |name: &str| claims.get(name).and_then(serde_json::Value::as_i64);
        let exp = number("exp").ok_or(PayloadError::MissingExpiry)?;
        if exp + skew < now {
            return Err(PayloadError::Expired);
        }
        if number("nbf").is_some_and(|nbf| nbf > now + skew) {
            return Err(PayloadError::NotYetValid);
        }
        let issued = match number("iat") {
            Some(iat) if iat > now + skew => return Err(PayloadError::IssuedInFuture),
            Some(iat) => iat,
            None => now,
        };
        let lifetime = exp - issued;
        if lifetime > max + skew {
            return Err(PayloadError::LifetimeTooLong {
                lifetime_secs: lifetime,
                max_secs: self.max_lifetime.as_secs(),
            });
        }
        Ok(claims)
    }
}

/// Parses verified claims into a DTO.
pub fn claims_into<T: DeserializeOwned>(
    claims: serde_json::Map<String, serde_json::Value>,
) -> Result<T, serde_json::Error> {
    serde_json::from_value(serde_json::Value::Object(claims))
}

/// The `alg` named in a JWT header, read without trusting it.
fn jwt_alg(jwt: &str) -> Option<String> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let header = jwt.split('.').next()?;
    let bytes = URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("alg")?.as_str().map(str::to_owned)
}
