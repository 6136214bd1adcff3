//! Failure throttling: too many failed authentications from one source IP, or bad
//! signatures for one partner, and further attempts get 429 with `Retry-After` until the
//! window ends. API Gateway's stage throttling (template) is the global backstop; this
//! stops a guesser from making every wrong attempt cost a query.
//!
//! Only failures are written: one `UpdateItem ADD` on a TTL'd counter per fixed window,
//! shared by every function instance. Successful calls never touch the table. The
//! counter answers with the new count; past the limit the instance remembers the block
//! in memory until the window ends, so further attempts on it are refused without any
//! AWS call (another instance learns it on its first failure there).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use time::OffsetDateTime;

use crate::store::{StoreError, Table, keys};

/// What a counter counts, and for whom.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Failed authentications (any scheme) from a source IP.
    SourceIp(String),
    /// Payloads with a bad signature for a partner (its token was right).
    PartnerSignatures(String),
    /// Failed password sign-ins for an email (the admin page's lockout).
    AdminLogin(String),
}

impl Scope {
    fn key(&self) -> String {
        match self {
            Scope::SourceIp(ip) => format!("IP#{ip}"),
            Scope::PartnerSignatures(partner) => format!("SIGNATURES#{partner}"),
            Scope::AdminLogin(email) => format!("LOGIN#{}", crate::secrets::token_hash(email)),
        }
    }
}

/// Limits per window (`AUTH_FAILURE_LIMIT`, `SIGNATURE_FAILURE_LIMIT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub window: Duration,
    pub auth_failures_per_ip: u64,
    pub bad_signatures_per_partner: u64,
    pub logins_per_email: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(300),
            auth_failures_per_ip: 20,
            bad_signatures_per_partner: 50,
            logins_per_email: 5,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Throttle {
    table: Table,
    limits: Limits,
    /// Blocks this instance knows of: scope -> end of its window (unix seconds).
    blocked: Arc<Mutex<HashMap<Scope, i64>>>,
}

impl Throttle {
    pub fn new(table: Table, limits: Limits) -> Self {
        Self {
            table,
            limits,
            blocked: Arc::default(),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn limit(&self, scope: &Scope) -> u64 {
        match scope {
            Scope::SourceIp(_) => self.limits.auth_failures_per_ip,
            Scope::PartnerSignatures(_) => self.limits.bad_signatures_per_partner,
            Scope::AdminLogin(_) => self.limits.logins_per_email,
        }
    }

    /// How long `scope` must wait, if this instance knows it is blocked. No AWS call.
    pub fn blocked(&self, scope: &Scope, now: OffsetDateTime) -> Option<Duration> {
        let now = now.unix_timestamp();
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        blocked.retain(|_, until| *until > now);
        let until = *blocked.get(scope)?;
        Some(Duration::from_secs(
            u64::try_from(until - now).unwrap_or(1).max(1),
        ))
    }

    /// Counts a failure; past the limit returns how long `scope` must wait. A counter
    /// that cannot be written lets the failure through as an ordinary 401 (logged).
    pub async fn failed(&self, scope: &Scope, now: OffsetDateTime) -> Option<Duration> {
        let window = self.limits.window.as_secs().max(1) as i64;
        let start = now.unix_timestamp().div_euclid(window) * window;
        let end = start + window;
        let count = match self.count(scope, start, end).await {
            Ok(count) => count,
            Err(e) => {
                tracing::warn!(error = %e, "the failure counter could not be written");
                return None;
            }
        };
        if count <= self.limit(scope) {
            return None;
        }
        tracing::warn!(scope = ?scope, count, "failure limit reached; refusing until the window ends");
        self.blocked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(scope.clone(), end);
        self.blocked(scope, now)
    }

    async fn count(&self, scope: &Scope, start: i64, end: i64) -> Result<u64, StoreError> {
        let keys = keys::throttle(&scope.key(), start);
        let out = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
            .set_key(Some(keys.primary()))
            .update_expression(
                "ADD #failures :one SET expires_at = if_not_exists(expires_at, :expires)",
            )
            .expression_attribute_names("#failures", "failures")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            // Kept a while past the window: DynamoDB's TTL deletes lazily anyway.
            .expression_attribute_values(":expires", AttributeValue::N((end + 3600).to_string()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(out
            .attributes
            .and_then(|a| a.get("failures").cloned())
            .and_then(|v| v.as_n().ok().and_then(|n| n.parse().ok()))
            .unwrap_or(0))
    }
}
