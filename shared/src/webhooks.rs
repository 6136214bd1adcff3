//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): the signed content
//! is `{webhook-id}.{webhook-timestamp}.{body}`, HMAC-SHA256 with the secret's bytes
//! (`whsec_<base64>`), sent as `webhook-signature: v1,<base64>` (several, space
//! separated, while a secret rotates). Used for webhooks the hub receives (the SMS
//! gateway's unsubscribe notifications) and, later, the ones it sends.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// How far a timestamp may be from now (replays of old messages are refused).
pub const TOLERANCE_SECONDS: i64 = 5 * 60;
const PREFIX: &str = "whsec_";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("webhook-timestamp is not within 5 minutes of now")]
    Stale,
    #[error("no webhook-signature matches")]
    BadSignature,
    #[error("not a webhook secret")]
    BadSecret,
}

/// A new random secret, as `whsec_<base64 of 32 bytes>`.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{PREFIX}{}", STANDARD.encode(bytes))
}

fn key(secret: &str) -> Result<Vec<u8>, WebhookError> {
    STANDARD
        .decode(secret.strip_prefix(PREFIX).unwrap_or(secret))
        .map_err(|_| WebhookError::BadSecret)
}

fn mac(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `webhook-signature` value for a message.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, WebhookError> {
    let tag = mac(&key(secret)?, id, &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    Ok(format!("v1,{}", STANDARD.encode(tag)))
}

/// Checks a received message: the headers' values, its body, the time now (unix).
pub fn verify(
    secret: &str,
    id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), WebhookError> {
    let id = id.ok_or(WebhookError::Missing(ID_HEADER))?;
    let timestamp = timestamp.ok_or(WebhookError::Missing(TIMESTAMP_HEADER))?;
    let signatures = signatures.ok_or(WebhookError::Missing(SIGNATURE_HEADER))?;
    let at: i64 = timestamp.trim().parse().map_err(|_| WebhookError::Stale)?;
    if (now - at).abs() > TOLERANCE_SECONDS {
        return Err(WebhookError::Stale);
    }
    let key = key(secret)?;
    let matches = signatures
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|s| STANDARD.decode(s).ok())
        // `verify_slice` compares in constant time.
        .any(|tag| {
            mac(&key, id, timestamp.trim(), body)
                .verify_slice(&tag)
                .is_ok()
        });
    if matches {
        Ok(())
    } else {
        Err(WebhookError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_webhooks_example_verifies() {
        // The specification's test vector.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let signature = sign(secret, id, 1614265330, body).unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let ok = |sig: &str, now: i64| {
            verify(secret, Some(id), Some("1614265330"), Some(sig), body, now)
        };
        assert_eq!(ok(&signature, 1614265330 + 60), Ok(()));
        assert_eq!(ok(&format!("v1,bm9wZQ== {signature}"), 1614265330), Ok(()));
        assert_eq!(ok(&signature, 1614265330 + 301), Err(WebhookError::Stale));
        assert_eq!(
            ok("v1,bm9wZQ==", 1614265330),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify(
                secret,
                Some(id),
                Some("1614265330"),
                Some(&signature),
                b"{}",
                1614265330
            ),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify(secret, None, Some("1"), Some(&signature), body, 1),
            Err(WebhookError::Missing(ID_HEADER))
        );
    }
}
