//! Configuration from the environment variables that `infra/template.yaml` sets (the
//! local stand-in sets the same names).

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The hub's single DynamoDB table.
    pub table_name: String,
    /// The hub's own EventBridge bus (internal: no other account may put events on it).
    pub event_bus_name: String,
    /// The bus partners put their events on (`INGRESS_BUS_NAME`).
    pub ingress_bus_name: Option<String>,
    /// The KMS key that seals secrets the hub must show again.
    pub kms_key_id: String,
    /// The longest lifetime (`exp` - `iat`) a signed payload may have.
    pub max_payload_lifetime: Duration,
    /// The longest lifetime of an SSO link's payload (`SSO_LINK_LIFETIME_SECONDS`,
    /// default 300): the link is in a URL, so it lives briefly and works once.
    pub sso_link_lifetime: Duration,
    /// The address the hub's emails come from (`SENDER_EMAIL`).
    pub sender_email: Option<String>,
    /// Tolerated clock difference between a partner and the hub.
    pub clock_skew: Duration,
    /// How long a marketplace subscription keeps access after a failed payment.
    pub suspension_grace: Duration,
    /// Which products each subscription tier gets (`TIER_PRODUCTS`, JSON).
    pub tier_catalog: crate::subscriptions::TierCatalog,
    /// Skip manual QA: a new subscription is approved and answered at once (`AUTO_APPROVE`).
    pub auto_approve: bool,
    /// Where the hub's public routes are served (`PUBLIC_BASE_URL`): installation snippets
    /// load the widget script from here. Only partner-notifier needs it (the template
    /// gives it the API's URL when the `PublicBaseUrl` parameter is empty).
    pub public_base_url: Option<String>,
    /// The stand-in's recorder of outbound calls (`OUTBOUND_RECORDER_URL`); never set on
    /// AWS, where calls go to their URLs.
    pub outbound_recorder_url: Option<String>,
    /// Timeout of each outbound call (`OUTBOUND_TIMEOUT_SECONDS`, default 10).
    pub outbound_timeout: Duration,
    /// Timeout of each AWS operation, retries included (`AWS_TIMEOUT_SECONDS`, default 5).
    pub aws_timeout: Duration,
    /// Failures tolerated per window before 429 (`AUTH_FAILURE_LIMIT` per source IP,
    /// `SIGNATURE_FAILURE_LIMIT` per partner, `FAILURE_WINDOW_SECONDS`).
    pub throttle: crate::throttle::Limits,
    /// The SMS gateway's API (`SMS_GATEWAY_URL`, the documented host by default); a
    /// deployment setting, never a site's.
    pub sms_gateway_url: String,
    /// How long a member's gateway eligibility is trusted (`SMS_ELIGIBILITY_TTL_SECONDS`).
    pub sms_eligibility_ttl: Duration,
    /// How long a warm function trusts a partner it found by token
    /// (`PARTNER_CACHE_SECONDS`, 0 by default: every call reads; the template sets it).
    pub partner_cache: Duration,
    /// How long one send run takes new work (`SMS_RUN_BUDGET_SECONDS`), below the
    /// function's timeout.
    pub sms_run_budget: Duration,
    /// The KMS keys (ECC NIST P-256) that sign embed tokens (`EMBED_SIGNING_KEY_IDS`,
    /// comma-separated): the first signs, all verify (rotation).
    pub embed_signing_key_ids: Vec<String>,
    /// A tenant token's lifetime unless issued with `expire=false`
    /// (`EMBED_TOKEN_LIFETIME_SECONDS`, default 3600).
    pub embed_token_lifetime: Duration,
}

impl Config {
    pub const DEFAULT_MAX_PAYLOAD_LIFETIME: Duration = Duration::from_secs(3600);
    pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);
    /// Every AWS call gives up after this long (all its attempts together), so a stalled
    /// dependency fails fast instead of hanging until the Lambda timeout.
    pub const DEFAULT_AWS_TIMEOUT: Duration = Duration::from_secs(5);
    /// No duration setting may exceed ten years.
    pub const MAX_SETTING: Duration = Duration::from_secs(3650 * 86_400);
    pub const DEFAULT_SUSPENSION_GRACE_DAYS: u64 = 7;
    pub const DEFAULT_OUTBOUND_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DEFAULT_SMS_GATEWAY_URL: &'static str = "https://api.attentivemobile.com";

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| {
            get(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or(ConfigError::Missing(name))
        };
        // A duration in whole `unit`s, at most `max` (so no setting can overflow later
        // arithmetic on times).
        let duration = |name: &'static str, default: Duration, unit: (u64, &str), max: Duration| {
            let Some(v) = get(name).filter(|v| !v.trim().is_empty()) else {
                return Ok(default);
            };
            let (secs_per_unit, unit_name) = unit;
            v.trim()
                .parse::<u64>()
                .ok()
                .and_then(|n| n.checked_mul(secs_per_unit))
                .map(Duration::from_secs)
                .filter(|d| *d <= max)
                .ok_or(ConfigError::Invalid {
                    name,
                    reason: format!(
                        "expected whole {unit_name}, at most {}",
                        max.as_secs() / secs_per_unit
                    ),
                })
        };
        let seconds = |name, default| duration(name, default, (1, "seconds"), Self::MAX_SETTING);
        Ok(Self {
            table_name: required("TABLE_NAME")?,
            event_bus_name: required("EVENT_BUS_NAME")?,
            ingress_bus_name: get("INGRESS_BUS_NAME")
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty()),
            kms_key_id: required("KMS_KEY_ID")?,
            max_payload_lifetime: seconds(
                "MAX_PAYLOAD_LIFETIME_SECONDS",
                Self::DEFAULT_MAX_PAYLOAD_LIFETIME,
            )?,
            clock_skew: seconds("CLOCK_SKEW_SECONDS", Self::DEFAULT_CLOCK_SKEW)?,
            sso_link_lifetime: seconds("SSO_LINK_LIFETIME_SECONDS", Duration::from_secs(3600))?,
            sender_email: get("SENDER_EMAIL")
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty()),
            suspension_grace: duration(
                "SUSPENSION_GRACE_DAYS",
                Duration::from_secs(Self::DEFAULT_SUSPENSION_GRACE_DAYS * 86_400),
                (86_400, "days"),
                Self::MAX_SETTING,
            )?,
            aws_timeout: seconds("AWS_TIMEOUT_SECONDS", Self::DEFAULT_AWS_TIMEOUT)?,
            throttle: {
                let defaults = crate::throttle::Limits::default();
                let count = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
                    match get(name).filter(|v| !v.trim().is_empty()) {
                        None => Ok(default),
                        Some(v) => v.trim().parse::<u64>().ok().filter(|n| *n >= 1).ok_or(
                            ConfigError::Invalid {
                                name,
                                reason: "expected a whole number, at least 1".into(),
                            },
                        ),
                    }
                };
                crate::throttle::Limits {
                    window: duration(
                        "FAILURE_WINDOW_SECONDS",
                        defaults.window,
                        (1, "seconds"),
                        Duration::from_secs(86_400),
                    )?,
                    auth_failures_per_ip: count(
                        "AUTH_FAILURE_LIMIT",
                        defaults.auth_failures_per_ip,
                    )?,
                    bad_signatures_per_partner: count(
                        "SIGNATURE_FAILURE_LIMIT",
                        defaults.bad_signatures_per_partner,
                    )?,
                    logins_per_email: count("LOGIN_FAILURE_LIMIT", defaults.logins_per_email)?,
                }
            },
            tier_catalog: match get("TIER_PRODUCTS").filter(|v| !v.trim().is_empty()) {
                None => crate::subscriptions::TierCatalog::default(),
                Some(v) => crate::subscriptions::TierCatalog::from_json(&v).map_err(|reason| {
                    ConfigError::Invalid {
                        name: "TIER_PRODUCTS",
                        reason,
                    }
                })?,
            },
            auto_approve: match get("AUTO_APPROVE").map(|v| v.trim().to_ascii_lowercase()) {
                None => false,
                Some(v) if v.is_empty() || v == "false" => false,
                Some(v) if v == "true" => true,
                Some(v) => {
                    return Err(ConfigError::Invalid {
                        name: "AUTO_APPROVE",
                        reason: format!("expected true or false, got {v}"),
                    });
                }
            },
            public_base_url: get("PUBLIC_BASE_URL")
                .map(|v| v.trim().trim_end_matches('/').to_owned())
                .filter(|v| !v.is_empty()),
            outbound_recorder_url: get("OUTBOUND_RECORDER_URL")
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty()),
            outbound_timeout: seconds("OUTBOUND_TIMEOUT_SECONDS", Self::DEFAULT_OUTBOUND_TIMEOUT)?,
            sms_gateway_url: get("SMS_GATEWAY_URL")
                .map(|v| v.trim().trim_end_matches('/').to_owned())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| Self::DEFAULT_SMS_GATEWAY_URL.to_owned()),
            sms_eligibility_ttl: seconds("SMS_ELIGIBILITY_TTL_SECONDS", Duration::from_secs(3600))?,
            partner_cache: seconds("PARTNER_CACHE_SECONDS", Duration::ZERO)?,
            sms_run_budget: duration(
                "SMS_RUN_BUDGET_SECONDS",
                Duration::from_secs(240),
                (1, "seconds"),
                Duration::from_secs(900),
            )?,
            embed_signing_key_ids: get("EMBED_SIGNING_KEY_IDS")
                .unwrap_or_default()
                .split(',')
                .map(|id| id.trim().to_owned())
                .filter(|id| !id.is_empty())
                .collect(),
            embed_token_lifetime: duration(
                "EMBED_TOKEN_LIFETIME_SECONDS",
                Duration::from_secs(3600),
                (1, "seconds"),
                Duration::from_secs(30 * 86_400),
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn reads_required_and_defaults() {
        let config = Config::from_lookup(lookup(&[
            ("TABLE_NAME", "t"),
            ("EVENT_BUS_NAME", "b"),
            ("KMS_KEY_ID", "k"),
        ]))
        .unwrap();
        assert_eq!(config.table_name, "t");
        assert_eq!(config.max_payload_lifetime, Duration::from_secs(3600));
        assert_eq!(config.clock_skew, Duration::from_secs(60));
    }

    #[test]
    fn missing_and_invalid_values_are_named() {
        let err = Config::from_lookup(lookup(&[("TABLE_NAME", "t")])).unwrap_err();
        assert!(err.to_string().contains("EVENT_BUS_NAME"));
        let err = Config::from_lookup(lookup(&[
            ("TABLE_NAME", "t"),
            ("EVENT_BUS_NAME", "b"),
            ("KMS_KEY_ID", "k"),
            ("MAX_PAYLOAD_LIFETIME_SECONDS", "an hour"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("MAX_PAYLOAD_LIFETIME_SECONDS"));
    }

    #[test]
    fn subscription_settings_are_parsed() {
        let base = [
            ("TABLE_NAME", "t"),
            ("EVENT_BUS_NAME", "b"),
            ("KMS_KEY_ID", "k"),
        ];
        let config = Config::from_lookup(lookup(&base)).unwrap();
        assert!(!config.auto_approve);
        assert_eq!(
            config.tier_catalog.products("growth").unwrap(),
            ["widget", "search"]
        );
        assert_eq!(config.public_base_url, None);
        let mut with = base.to_vec();
        with.extend([
            ("AUTO_APPROVE", "true"),
            ("TIER_PRODUCTS", r#"{"basic": ["widget"]}"#),
            ("PUBLIC_BASE_URL", "https://hub.example.com/"),
        ]);
        let config = Config::from_lookup(lookup(&with)).unwrap();
        assert!(config.auto_approve);
        assert!(config.tier_catalog.products("growth").is_none());
        assert_eq!(
            config.public_base_url.as_deref(),
            Some("https://hub.example.com")
        );
        let mut bad = base.to_vec();
        bad.push(("AUTO_APPROVE", "yes"));
        assert!(
            Config::from_lookup(lookup(&bad))
                .unwrap_err()
                .to_string()
                .contains("AUTO_APPROVE")
        );
        let mut bad = base.to_vec();
        bad.push(("TIER_PRODUCTS", "[1]"));
        assert!(
            Config::from_lookup(lookup(&bad))
                .unwrap_err()
                .to_string()
                .contains("TIER_PRODUCTS")
        );
    }
}
