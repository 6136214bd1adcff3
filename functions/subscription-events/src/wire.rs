//! The EventBridge contract's wire format (`subscription-events-eventbridge.md`): the
//! Create Subscription and Cancellation details, parsed into domain requests, and the
//! envelope's identity for the idempotency ledger.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::Deserialize;
use serde_json::Value;
use shared::{
    clock,
    domain::{ExternalId, MAX_URL_BYTES, ParseError, PartnerId, free_text},
    store::{Inbound, canonical_hash},
    subscriptions::{CancelSubscription, CreateSubscription, Subscriptions, TierCatalog},
};

/// A detail that can never be processed as sent, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl std::fmt::Display) -> Invalid {
    Invalid {
        field,
        message: message.to_string(),
    }
}

#[derive(Debug, Deserialize)]
struct CreateSubscriptionWire {
    tier: Option<Value>,
    contract_length: Option<Value>,
    id: Option<Value>,
    website: Option<Value>,
    template: Option<Value>,
    company_name: Option<Value>,
}

fn text_field(field: &'static str, value: Option<Value>) -> Result<String, Invalid> {
    match value {
        Some(Value::String(s)) => free_text(&s)
            .map_err(|e| invalid(field, e))?
            .ok_or_else(|| invalid(field, "must not be empty")),
        None | Some(Value::Null) => Err(invalid(field, "is required")),
        Some(_) => Err(invalid(field, "must be a string")),
    }
}

/// A website as the contract sends it: an absolute http(s) URL with a host.
pub fn parse_website(value: &str) -> Result<String, ParseError> {
    if value.trim().len() > MAX_URL_BYTES {
        return Err(ParseError::new(format!(
            "must be at most {MAX_URL_BYTES} bytes"
        )));
    }
    let url = url::Url::parse(value.trim())
        .map_err(|e| ParseError::new(format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ParseError::new("must be an http or https URL"));
    }
    match url.host_str() {
        Some(host) if host.contains('.') => Ok(url.to_string()),
        _ => Err(ParseError::new("must name a public host")),
    }
}

/// The Create Subscription detail, parsed; the tier must be in the catalog.
pub fn create_subscription(
    detail: &Value,
    catalog: &TierCatalog,
) -> Result<CreateSubscription, Invalid> {
    let wire: CreateSubscriptionWire = serde_json::from_value(detail.clone())
        .map_err(|e| invalid("detail", format!("is not an object: {e}")))?;
    let customer = ExternalId::parse(&text_field("id", wire.id)?).map_err(|e| invalid("id", e))?;
    let tier = text_field("tier", wire.tier)?;
    if catalog.products(&tier).is_none() {
        return Err(invalid(
            "tier",
            format!(
                "unknown tier '{tier}' (known: {})",
                catalog.tiers().join(", ")
            ),
        ));
    }
    let contract_length_months = match wire.contract_length {
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|m| (1..=120).contains(m))
            .and_then(|m| u32::try_from(m).ok())
            .ok_or_else(|| {
                invalid(
                    "contract_length",
                    "must be a whole number of months, 1 to 120",
                )
            })?,
        None | Some(Value::Null) => return Err(invalid("contract_length", "is required")),
        Some(_) => return Err(invalid("contract_length", "must be a number of months")),
    };
    let website = match wire.website {
        Some(Value::String(s)) => parse_website(&s).map_err(|e| invalid("website", e))?,
        other => text_field("website", other)?,
    };
    Ok(CreateSubscription {
        customer,
        tier,
        contract_length_months,
        website,
        template: text_field("template", wire.template)?,
        company_name: text_field("company_name", wire.company_name)?,
    })
}

/// The Cancellation detail, parsed: `effective_date` is ISO-8601 (a date-time with any
/// offset, or a date at midnight UTC).
pub fn cancellation(detail: &Value) -> Result<CancelSubscription, Invalid> {
    let customer = ExternalId::parse(&text_field("id", detail.get("id").cloned())?)
        .map_err(|e| invalid("id", e))?;
    let raw = text_field("effective_date", detail.get("effective_date").cloned())?;
    let effective_date = clock::parse_iso8601(&raw).ok_or_else(|| {
        invalid(
            "effective_date",
            format!("'{raw}' is not an ISO-8601 date or date-time"),
        )
    })?;
    Ok(CancelSubscription {
        customer,
        effective_date,
    })
}

/// The envelope as a ledger entry: its id is the message id; source, detail-type and
/// detail make its content (EventBridge redelivers the same envelope).
pub fn inbound(partner: PartnerId, event: &EventBridgeEvent<Value>) -> Result<Inbound, Invalid> {
    let id = event
        .id
        .as_deref()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| invalid("id", "the envelope has no id"))?;
    let content = serde_json::json!({
        "source": event.source,
        "detail-type": event.detail_type,
        "detail": event.detail,
    });
    Ok(Inbound::new(
        Subscriptions::ledger_scope(partner),
        id,
        event.detail_type.clone(),
        canonical_hash(&content),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({"tier": "growth", "contract_length": 12, "id": "cust-1", "website": "https://customer-site.com",
               "template": "existing_or_custom_template", "company_name": "Customer Name"})
    }

    #[test]
    fn parses_the_contract_sample() {
        let parsed = create_subscription(&sample(), &TierCatalog::default()).unwrap();
        assert_eq!(parsed.customer.as_str(), "cust-1");
        assert_eq!(parsed.contract_length_months, 12);
        assert_eq!(parsed.website, "https://customer-site.com/");
    }

    #[test]
    fn refuses_bad_details_naming_the_field() {
        let catalog = TierCatalog::default();
        let cases = [
            ("tier", json!("platinum")),
            ("website", json!("customer-site")),
            ("website", json!("ftp://customer-site.com")),
            ("contract_length", json!(0)),
            ("contract_length", json!("12")),
            ("id", json!("")),
            ("company_name", json!(null)),
        ];
        for (field, value) in cases {
            let mut detail = sample();
            detail[field] = value.clone();
            match create_subscription(&detail, &catalog) {
                Err(Invalid { field: f, .. }) => assert_eq!(f, field, "{value}"),
                other => panic!("{field}={value}: {other:?}"),
            }
        }
        assert!(create_subscription(&json!([1]), &catalog).is_err());
    }

    #[test]
    fn effective_dates_are_iso_8601_with_any_offset() {
        let c = cancellation(&json!({"id": "c", "effective_date": "2026-12-01T00:00:00-05:00"}))
            .unwrap();
        assert_eq!(
            clock::sortable(c.effective_date),
            "2026-12-01T05:00:00.000000Z"
        );
        let d = cancellation(&json!({"id": "c", "effective_date": "2026-12-01"})).unwrap();
        assert_eq!(
            clock::sortable(d.effective_date),
            "2026-12-01T00:00:00.000000Z"
        );
        assert!(cancellation(&json!({"id": "c", "effective_date": "next week"})).is_err());
        assert!(cancellation(&json!({"id": "c"})).is_err());
    }

    #[test]
    fn the_ledger_identity_is_the_envelope_id_and_its_content() {
        let envelope = |tier: &str| -> EventBridgeEvent<Value> {
            serde_json::from_value(
                json!({"version": "0", "id": "env-1", "detail-type": "Create Subscription",
                "source": "partner.a", "account": "111122223333", "time": "2026-01-01T00:00:00Z",
                "region": "us-east-1", "resources": [], "detail": {"tier": tier}}),
            )
            .unwrap()
        };
        let partner = PartnerId::random();
        let a = inbound(partner, &envelope("starter")).unwrap();
        assert_eq!(a.message_id, "env-1");
        assert_eq!(a, inbound(partner, &envelope("starter")).unwrap());
        assert_ne!(
            a.body_hash,
            inbound(partner, &envelope("growth")).unwrap().body_hash
        );
    }
}
