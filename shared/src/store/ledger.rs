//! The one idempotency ledger for every inbound message (EventBridge envelopes,
//! marketplace events, and later webhooks and SMS actions): the message id, the hash of
//! its body in canonical form and the outcome it got. Same id + same body: the stored
//! outcome, nothing changes. Same id + another body: refused (`TxError::Reused`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::domain::AccountId;

use super::{Keys, Record, keys};

/// How long the ledger remembers a message id. EventBridge retries for at most 24 h;
/// marketplaces redeliver for days at most.
pub const LEDGER_TTL_SECONDS: i64 = 30 * 86_400;

/// An inbound message to record with the change it causes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// Whose ids these are (`marketplace:<id>`, `partner-events:<id>`, ...).
    pub scope: String,
    pub message_id: String,
    /// What kind of message it was (an event type), for operators.
    pub kind: String,
    /// [`canonical_hash`] of the parts of the body that make it this message.
    pub body_hash: String,
}

impl Inbound {
    pub fn new(
        scope: impl Into<String>,
        message_id: impl Into<String>,
        kind: impl Into<String>,
        body_hash: impl Into<String>,
    ) -> Self {
        Self {
            scope: scope.into(),
            message_id: message_id.into(),
            kind: kind.into(),
            body_hash: body_hash.into(),
        }
    }

    pub fn keys(&self) -> Keys {
        keys::ledger(&self.scope, &self.message_id)
    }
}

/// A ledger entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub scope: String,
    pub message_id: String,
    pub kind: String,
    pub body_hash: String,
    /// The outcome the message got, JSON text (answered again to a redelivery).
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<AccountId>,
    pub recorded_at: String,
    /// TTL attribute: DynamoDB deletes the entry after this (epoch seconds).
    pub expires_at: i64,
}

impl Record for LedgerEntry {
    fn keys(&self) -> Keys {
        keys::ledger(&self.scope, &self.message_id)
    }
}

/// SHA-256 (hex) of a JSON value in canonical form: object keys sorted, no whitespace.
/// Callers remove what may differ between deliveries of one message first.
pub fn canonical_hash(value: &Value) -> String {
    let mut text = String::new();
    write_canonical(value, &mut text);
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_hash_ignores_key_order_and_whitespace_only() {
        let a = json!({"b": 1, "a": {"y": [1, 2], "x": "s"}});
        let b: Value = serde_json::from_str(r#"{ "a": {"x":"s", "y":[1,2]}, "b":1 }"#).unwrap();
        assert_eq!(canonical_hash(&a), canonical_hash(&b));
        assert_ne!(
            canonical_hash(&a),
            canonical_hash(&json!({"b": 2, "a": {"y": [1, 2], "x": "s"}}))
        );
        assert_ne!(
            canonical_hash(&json!({"a": [1, 2]})),
            canonical_hash(&json!({"a": [2, 1]}))
        );
    }
}
