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
    #[error("the payload's {0} claim is not a whole number of seconds since 1970")]
    InvalidTime(&'static str),
    #[error("the payload's exp lies before its iat")]
    ExpiresBeforeIssued,
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
    ) -> Result<Claims, PayloadError> {
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
        // Every time claim is checked below, against our own clock and without overflow.
        validation.set_required_spec_claims::<&str>(&[]);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;

        let mut last = PayloadError::BadSignature;
        for key in candidates {
            let Ok(decoding) = DecodingKey::from_rsa_pem(key.public_key_pem.as_bytes()) else {
                continue;
            };
            // The claims' own JSON text is kept: numbers (money) stay exact decimals.
            match jsonwebtoken::decode::<Box<serde_json::value::RawValue>>(
                jwt,
                &decoding,
                &validation,
            ) {
                Ok(data) => {
                    let json = data.claims.get().to_owned();
                    let value: serde_json::Value = serde_json::from_str(&json)
                        .map_err(|e| PayloadError::Malformed(e.to_string()))?;
                    let map = self.check_times(value, now)?;
                    return Ok(Claims { map, json });
                }
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
        // In i128, so no claim (i64::MAX, i64::MIN, ±2^62) can overflow the checks: in
        // release builds an i64 overflow would wrap and let `iat = i64::MIN` through.
        let now = i128::from(now.unix_timestamp());
        let skew = i128::from(self.clock_skew.as_secs());
        let max = i128::from(self.max_lifetime.as_secs());
        let number = |name: &'static str| -> Result<Option<i128>, PayloadError> {
            match claims.get(name) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(value) => value
                    .as_i64()
                    .map(|n| Some(i128::from(n)))
                    .ok_or(PayloadError::InvalidTime(name)),
            }
        };
        let exp = number("exp")?.ok_or(PayloadError::MissingExpiry)?;
        if exp + skew < now {
            return Err(PayloadError::Expired);
        }
        if number("nbf")?.is_some_and(|nbf| nbf > now + skew) {
            return Err(PayloadError::NotYetValid);
        }
        let issued = match number("iat")? {
            Some(iat) if iat > now + skew => return Err(PayloadError::IssuedInFuture),
            Some(iat) if iat > exp => return Err(PayloadError::ExpiresBeforeIssued),
            Some(iat) => iat,
            None => now,
        };
        let lifetime = exp - issued;
        if lifetime > max + skew {
            return Err(PayloadError::LifetimeTooLong {
                lifetime_secs: i64::try_from(lifetime).unwrap_or(i64::MAX),
                max_secs: self.max_lifetime.as_secs(),
            });
        }
        Ok(claims)
    }
}

/// Verified claims: as a JSON object, and as the JSON text that was signed (parsed
/// into a DTO from the text, so numbers keep every digit).
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    map: serde_json::Map<String, serde_json::Value>,
    json: String,
}

impl std::ops::Deref for Claims {
    type Target = serde_json::Map<String, serde_json::Value>;

    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl Claims {
    /// The claims in canonical form without the time claims (`iat`, `exp`, `nbf`,
    /// `jti`): the same request signed twice has the same hash.
    pub fn content_hash(&self) -> String {
        let mut content = self.map.clone();
        for name in ["iat", "exp", "nbf", "jti"] {
            content.remove(name);
        }
        crate::store::canonical_hash(&serde_json::Value::Object(content))
    }
}

/// Parses verified claims into a DTO (from the signed text: numbers stay exact).
pub fn claims_into<T: DeserializeOwned>(claims: &Claims) -> Result<T, serde_json::Error> {
    serde_json::from_str(&claims.json)
}

/// What makes a signed payload the one it is, whatever text carries it: its signature's
/// bytes (RS512 is deterministic, and the signature covers header and claims). Single
/// use is keyed by this, never by the text as received: the verifier trims whitespace and
/// a decoder may ignore a last character's unused bits, so many texts are one payload.
/// `None` for text with no decodable signature (which never verifies).
pub fn signature_identity(jwt: &str) -> Option<String> {
    use base64::{
        Engine,
        alphabet::URL_SAFE,
        engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
    };
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &URL_SAFE,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let signature = jwt.trim().rsplit('.').next()?;
    let bytes = LENIENT.decode(signature).ok().filter(|b| !b.is_empty())?;
    Some(format!("sig:{}", URL_SAFE_NO_PAD_ENCODE.encode(bytes)))
}

const URL_SAFE_NO_PAD_ENCODE: base64::engine::GeneralPurpose =
    base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The `alg` named in a JWT header, read without trusting it.
fn jwt_alg(jwt: &str) -> Option<String> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let header = jwt.split('.').next()?;
    let bytes = URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("alg")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    #[test]
    fn one_signature_is_one_identity_whatever_text_carries_it() {
        let jwt = sign(json!({"shop": "a.example", "iat": 1, "exp": 2}));
        let id = signature_identity(&jwt).unwrap();
        let (head, signature) = jwt.rsplit_once('.').unwrap();
        let last = signature.chars().last().unwrap();
        // A 512-byte signature: 683 base64 characters, the last carrying 2 unused bits.
        let sibling = base64::alphabet::URL_SAFE
            .as_str()
            .chars()
            .find(|c| {
                *c != last && {
                    let index = |c: char| base64::alphabet::URL_SAFE.as_str().find(c).unwrap();
                    index(*c) >> 2 == index(last) >> 2
                }
            })
            .unwrap();
        let variant = format!("{head}.{}{sibling}", &signature[..signature.len() - 1]);
        for text in [
            format!(" {jwt}"),
            format!("{jwt} "),
            format!("{jwt}\n"),
            format!("\t{jwt}\r\n"),
            format!("{jwt}=="),
            variant,
        ] {
            assert_eq!(
                signature_identity(&text).as_deref(),
                Some(id.as_str()),
                "{text:?}"
            );
        }
        let other = sign(json!({"shop": "b.example", "iat": 1, "exp": 2}));
        assert_ne!(signature_identity(&other), Some(id));
        assert_eq!(signature_identity("a.b."), None);
        assert_eq!(signature_identity("a.b.!!!"), None);
    }

    const KEY_A: &str = include_str!("../../tests/fixtures/keys/partner-a.key");
    const PUB_A: &str = include_str!("../../tests/fixtures/keys/partner-a.key.pub");
    const KEY_B: &str = include_str!("../../tests/fixtures/keys/partner-b.key");
    const PUB_B: &str = include_str!("../../tests/fixtures/keys/partner-b.key.pub");

    fn key(kid: &str, pem: &str) -> PartnerKey {
        PartnerKey {
            kid: kid.into(),
            public_key_pem: pem.into(),
            added_at: String::new(),
        }
    }

    fn verifier() -> PayloadVerifier {
        PayloadVerifier::new(Duration::from_secs(3600), Duration::from_secs(60))
    }

    fn now() -> OffsetDateTime {
        crate::clock::now()
    }

    fn sign_with(header: Header, private_pem: &str, claims: serde_json::Value) -> String {
        let key = EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    }

    fn sign(claims: serde_json::Value) -> String {
        sign_with(Header::new(Algorithm::RS512), KEY_A, claims)
    }

    fn fresh_claims() -> serde_json::Value {
        let t = now().unix_timestamp();
        json!({"url": "my-shop.com", "iat": t, "exp": t + 3600})
    }

    #[test]
    fn accepts_rs512_signed_by_the_registered_key() {
        let claims = verifier()
            .verify(&sign(fresh_claims()), &[key("key-1", PUB_A)], now())
            .unwrap();
        assert_eq!(claims["url"], "my-shop.com");
    }

    #[test]
    fn rejects_another_partners_key() {
        let jwt = sign_with(Header::new(Algorithm::RS512), KEY_B, fresh_claims());
        assert_eq!(
            verifier().verify(&jwt, &[key("key-1", PUB_A)], now()),
            Err(PayloadError::BadSignature)
        );
    }

    #[test]
    fn rotation_finds_the_key_by_kid_or_by_trying_each() {
        let keys = [key("key-1", PUB_A), key("key-2", PUB_B)];
        let mut header = Header::new(Algorithm::RS512);
        header.kid = Some("key-2".into());
        assert!(
            verifier()
                .verify(&sign_with(header, KEY_B, fresh_claims()), &keys, now())
                .is_ok()
        );
        let no_kid = sign_with(Header::new(Algorithm::RS512), KEY_B, fresh_claims());
        assert!(verifier().verify(&no_kid, &keys, now()).is_ok());
    }

    #[test]
    fn rejects_alg_none() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(fresh_claims().to_string());
        let jwt = format!("{header}.{body}.");
        assert!(matches!(
            verifier().verify(&jwt, &[key("key-1", PUB_A)], now()),
            Err(PayloadError::WrongAlgorithm(_))
        ));
    }

    #[test]
    fn rejects_hs512_signed_with_the_public_key_as_secret() {
        let key_hs = EncodingKey::from_secret(PUB_A.as_bytes());
        let jwt =
            jsonwebtoken::encode(&Header::new(Algorithm::HS512), &fresh_claims(), &key_hs).unwrap();
        assert!(matches!(
            verifier().verify(&jwt, &[key("key-1", PUB_A)], now()),
            Err(PayloadError::WrongAlgorithm(_))
        ));
    }

    #[test]
    fn rejects_other_rsa_algorithms() {
        let jwt = sign_with(Header::new(Algorithm::RS256), KEY_A, fresh_claims());
        assert!(matches!(
            verifier().verify(&jwt, &[key("key-1", PUB_A)], now()),
            Err(PayloadError::WrongAlgorithm(_))
        ));
    }

    #[test]
    fn requires_exp_and_refuses_expired_payloads() {
        let t = now().unix_timestamp();
        let keys = [key("key-1", PUB_A)];
        assert_eq!(
            verifier().verify(&sign(json!({"iat": t})), &keys, now()),
            Err(PayloadError::MissingExpiry)
        );
        let expired = sign(json!({"iat": t - 7200, "exp": t - 3600}));
        assert_eq!(
            verifier().verify(&expired, &keys, now()),
            Err(PayloadError::Expired)
        );
        // Within the clock skew an expiry just passed is still accepted.
        let just = sign(json!({"iat": t - 3600, "exp": t - 30}));
        assert!(verifier().verify(&just, &keys, now()).is_ok());
    }

    #[test]
    fn refuses_payloads_that_live_too_long() {
        let t = now().unix_timestamp();
        let keys = [key("key-1", PUB_A)];
        let long = sign(json!({"iat": t, "exp": t + 2 * 3600}));
        assert!(matches!(
            verifier().verify(&long, &keys, now()),
            Err(PayloadError::LifetimeTooLong { .. })
        ));
        // Without iat, the remaining lifetime counts.
        let far = sign(json!({"exp": t + 2 * 3600}));
        assert!(matches!(
            verifier().verify(&far, &keys, now()),
            Err(PayloadError::LifetimeTooLong { .. })
        ));
        let future = sign(json!({"iat": t + 600, "exp": t + 1200}));
        assert_eq!(
            verifier().verify(&future, &keys, now()),
            Err(PayloadError::IssuedInFuture)
        );
    }

    #[test]
    fn extreme_times_are_refused_without_overflow() {
        let t = now().unix_timestamp();
        let keys = [key("key-1", PUB_A)];
        let check = |claims: serde_json::Value| verifier().verify(&sign(claims), &keys, now());
        assert!(matches!(
            check(json!({"exp": i64::MAX})),
            Err(PayloadError::LifetimeTooLong { .. })
        ));
        assert!(matches!(
            check(json!({"iat": i64::MIN, "exp": t + 60})),
            Err(PayloadError::LifetimeTooLong { .. })
        ));
        assert!(matches!(
            check(json!({"iat": i64::MIN, "exp": i64::MAX})),
            Err(PayloadError::LifetimeTooLong { .. })
        ));
        assert_eq!(check(json!({"exp": i64::MIN})), Err(PayloadError::Expired));
        assert_eq!(
            check(json!({"iat": -(1_i64 << 62), "exp": 1_i64 << 62})),
            Err(PayloadError::LifetimeTooLong {
                lifetime_secs: i64::MAX,
                max_secs: 3600
            })
        );
        assert_eq!(
            check(json!({"iat": t, "exp": t + 60, "nbf": i64::MAX})),
            Err(PayloadError::NotYetValid)
        );
        assert_eq!(
            check(json!({"iat": t + 30, "exp": t})),
            Err(PayloadError::ExpiresBeforeIssued)
        );
        assert_eq!(
            check(json!({"iat": t, "exp": 1.7e9})),
            Err(PayloadError::InvalidTime("exp"))
        );
        assert_eq!(
            check(json!({"iat": "now", "exp": t + 60})),
            Err(PayloadError::InvalidTime("iat"))
        );
        assert_eq!(
            check(json!({"exp": u64::MAX})),
            Err(PayloadError::InvalidTime("exp"))
        );
    }

    #[test]
    fn rejects_garbage() {
        let keys = [key("key-1", PUB_A)];
        assert!(matches!(
            verifier().verify("not a jwt", &keys, now()),
            Err(PayloadError::Malformed(_))
        ));
        assert!(matches!(
            verifier().verify("", &keys, now()),
            Err(PayloadError::Malformed(_))
        ));
    }
}
