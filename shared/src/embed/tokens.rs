//! The embed API's tokens: ES256 JWTs the hub signs with a KMS asymmetric key (ECC
//! NIST P-256, `kms:Sign`; the private key never leaves KMS), checked locally against
//! the key's public half (one `kms:GetPublicKey` per key and process), and revocable at
//! once: every token carries its subject's token version (`ver`), which a revocation
//! bumps, so checking a token costs the one `GetItem` that reads its subject.
//!
//! Keys rotate by configuration (`EMBED_SIGNING_KEY_IDS`, comma-separated): the first
//! key signs, every listed key verifies, and the header's `kid` (a digest of the KMS key
//! id, not the id itself) says which.

use std::{collections::HashMap, sync::Arc};

use aws_sdk_kms::{
    Client,
    primitives::Blob,
    types::{MessageType, SigningAlgorithmSpec},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use p256::pkcs8::DecodePublicKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::domain::PartnerId;

/// `iss` of every embed token.
pub const ISSUER: &str = "partner-hub";
/// `aud` of every embed token: only the embed API accepts them.
pub const AUDIENCE: &str = "embed-api";
/// Clock difference tolerated on `exp` and `iat`.
const LEEWAY_SECONDS: u64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Anything wrong with the token itself: the caller gets 401 and no detail.
    #[error("the token is not valid: {0}")]
    Invalid(String),
    #[error("no embed signing key is configured (EMBED_SIGNING_KEY_IDS)")]
    NoSigningKey,
    #[error("KMS request failed: {0}")]
    Kms(String),
}

/// Who a token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A partner, server-side (never expires; revoked by bumping the partner's version).
    Partner(PartnerId),
    /// One sub-account (tenant) of a partner, by its number.
    SubAccount { partner: PartnerId, number: u64 },
}

impl Subject {
    fn sub(&self) -> String {
        match self {
            Subject::Partner(id) => format!("partner:{id}"),
            Subject::SubAccount { number, .. } => format!("subaccount:{number}"),
        }
    }

    pub fn partner(&self) -> PartnerId {
        match self {
            Subject::Partner(id) | Subject::SubAccount { partner: id, .. } => *id,
        }
    }
}

/// The claims of an embed token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbedClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    /// The partner the subject belongs to.
    pub pid: PartnerId,
    /// The sub-account's number (tenant tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sa: Option<u64>,
    /// The subject's token version when it was issued.
    pub ver: u64,
    pub iat: i64,
    /// Required, except on tokens issued with `expire=false` (`nexp: true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nexp: bool,
    pub jti: String,
}

impl EmbedClaims {
    /// The subject, when `sub`, `pid` and `sa` agree.
    pub fn subject(&self) -> Result<Subject, TokenError> {
        let subject = match self.sa {
            Some(number) => Subject::SubAccount {
                partner: self.pid,
                number,
            },
            None => Subject::Partner(self.pid),
        };
        if subject.sub() != self.sub {
            return Err(TokenError::Invalid("sub does not match its subject".into()));
        }
        Ok(subject)
    }
}

/// A token as issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub token: String,
    /// Unix seconds; `None` for a non-expiring token.
    pub expires_at: Option<i64>,
}

/// Signs and checks embed tokens.
#[derive(Clone, Debug)]
pub struct EmbedKeys {
    kms: Client,
    /// KMS key ids, the signing one first.
    key_ids: Vec<String>,
    /// Public keys by `kid`, fetched once per process.
    public: Arc<HashMap<String, (String, OnceCell<DecodingKey>)>>,
}

/// The `kid` of a KMS key: a digest, so tokens do not name the key's ARN.
pub fn kid_of(key_id: &str) -> String {
    hex::encode(&Sha256::digest(key_id.as_bytes())[..8])
}

impl EmbedKeys {
    pub fn new(kms: Client, key_ids: &[String]) -> Self {
        let public = key_ids
            .iter()
            .map(|id| (kid_of(id), (id.clone(), OnceCell::new())))
            .collect();
        Self {
            kms,
            key_ids: key_ids.to_vec(),
            public: Arc::new(public),
        }
    }

    /// Issues a token for `subject` at `version`; `lifetime: None` never expires.
    pub async fn issue(
        &self,
        subject: Subject,
        version: u64,
        lifetime: Option<std::time::Duration>,
        now: time::OffsetDateTime,
    ) -> Result<IssuedToken, TokenError> {
        let key_id = self.key_ids.first().ok_or(TokenError::NoSigningKey)?;
        let iat = now.unix_timestamp();
        let exp = lifetime.map(|l| iat.saturating_add(l.as_secs().min(i64::MAX as u64) as i64));
        let claims = EmbedClaims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: subject.sub(),
            pid: subject.partner(),
            sa: match subject {
                Subject::SubAccount { number, .. } => Some(number),
                Subject::Partner(_) => None,
            },
            ver: version,
            iat,
            exp,
            nexp: exp.is_none(),
            jti: crate::secrets::random_hex16(),
        };
        let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": kid_of(key_id)});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(
                serde_json::to_vec(&claims).map_err(|e| TokenError::Invalid(e.to_string()))?
            )
        );
        let out = self
            .kms
            .sign()
            .key_id(key_id)
            .message(Blob::new(signing_input.as_bytes()))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|e| TokenError::Kms(aws_sdk_kms::error::DisplayErrorContext(e).to_string()))?;
        let der = out
            .signature
            .ok_or_else(|| TokenError::Kms("KMS returned no signature".into()))?;
        let signature = jws_signature(der.as_ref())?;
        Ok(IssuedToken {
            token: format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)),
            expires_at: exp,
        })
    }

    /// The token's claims, if the hub signed it with a configured key, it is an ES256
    /// embed token, and it has not expired. (The subject's version is the caller's
    /// check: it needs the subject's record.)
    pub async fn verify(&self, token: &str) -> Result<EmbedClaims, TokenError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
        if header.alg != Algorithm::ES256 {
            return Err(TokenError::Invalid(format!("alg {:?}", header.alg)));
        }
        let kid = header
            .kid
            .ok_or_else(|| TokenError::Invalid("no kid".into()))?;
        let (key_id, cell) = self
            .public
            .get(&kid)
            .ok_or_else(|| TokenError::Invalid("unknown kid".into()))?;
        let key = cell.get_or_try_init(|| self.public_key(key_id)).await?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        let claims = jsonwebtoken::decode::<EmbedClaims>(token, key, &validation)
            .map_err(|e| TokenError::Invalid(e.to_string()))?
            .claims;
        // jsonwebtoken checks `exp` when present; it may be absent only where the
        // token says it was issued not to expire.
        if claims.exp.is_none() && !claims.nexp {
            return Err(TokenError::Invalid("exp is required".into()));
        }
        claims.subject()?;
        Ok(claims)
    }

    async fn public_key(&self, key_id: &str) -> Result<DecodingKey, TokenError> {
        let out = self
            .kms
            .get_public_key()
            .key_id(key_id)
            .send()
            .await
            .map_err(|e| TokenError::Kms(aws_sdk_kms::error::DisplayErrorContext(e).to_string()))?;
        let der = out
            .public_key
            .ok_or_else(|| TokenError::Kms("KMS returned no public key".into()))?;
        let key = p256::PublicKey::from_public_key_der(der.as_ref())
            .map_err(|e| TokenError::Kms(format!("not a P-256 public key: {e}")))?;
        let point = p256::EncodedPoint::from(key);
        Ok(DecodingKey::from_ec_der(point.as_bytes()))
    }
}

/// KMS answers ECDSA signatures in DER (`SEQUENCE { r, s }`); JWS wants `r ‖ s`, 32
/// bytes each (RFC 7518 §3.4).
pub fn jws_signature(der: &[u8]) -> Result<[u8; 64], TokenError> {
    let signature = p256::ecdsa::Signature::from_der(der)
        .map_err(|e| TokenError::Kms(format!("KMS signature is not DER ECDSA: {e}")))?;
    let mut out = [0u8; 64];
    out.copy_from_slice(&signature.to_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_signatures_become_r_and_s() {
        use p256::ecdsa::{SigningKey, signature::Signer};
        let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let signature: p256::ecdsa::Signature = key.sign(b"message");
        let der = signature.to_der();
        let jws = jws_signature(der.as_bytes()).unwrap();
        assert_eq!(&jws[..], &signature.to_bytes()[..]);
        assert!(jws_signature(b"\x30\x02\x01").is_err());
    }

    #[test]
    fn the_subject_must_match_sub() {
        let pid = PartnerId::random();
        let mut claims = EmbedClaims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: "subaccount:7".into(),
            pid,
            sa: Some(7),
            ver: 0,
            iat: 0,
            exp: None,
            nexp: true,
            jti: "j".into(),
        };
        assert_eq!(
            claims.subject().unwrap(),
            Subject::SubAccount {
                partner: pid,
                number: 7
            }
        );
        claims.sa = Some(8);
        assert!(claims.subject().is_err());
        claims.sa = None;
        assert!(claims.subject().is_err());
        claims.sub = format!("partner:{pid}");
        assert_eq!(claims.subject().unwrap(), Subject::Partner(pid));
    }

    #[test]
    fn kids_do_not_name_the_key() {
        let kid = kid_of("arn:aws:kms:us-east-1:111122223333:key/abc");
        assert_eq!(kid.len(), 16);
        assert!(!kid.contains("abc"));
    }
}
