//! The marketplace callback's wire format (`marketplace-webhooks.txt`): the event
//! envelope parsed into a domain `MarketplaceEvent` at the edge, the body's identity for
//! the idempotency ledger, and the contract's response shapes.

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json, value::RawValue};
use shared::{
    domain::{Email, ExternalId, Price, free_text},
    http::{ApiError, parse_json},
    marketplace::{
        EventType, MarketplaceEvent, MarketplaceOutcome, Payload, ProductInfo, UserProfile,
        WebIdentity,
    },
    store::canonical_hash,
};

#[derive(Debug, Deserialize)]
struct WireEnvelope {
    event: Option<WireEvent>,
    user: Option<WireUser>,
    data: Option<WireData>,
}

#[derive(Debug, Deserialize)]
struct WireEvent {
    id: Option<Value>,
    #[serde(rename = "type")]
    event_type: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireUser {
    id: Option<Value>,
    partner_id: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireData {
    user: Option<Map<String, Value>>,
    web_identity: Option<Value>,
    product: Option<WireProduct>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireProduct {
    id: Option<Value>,
    partner_id: Option<Value>,
    name: Option<Value>,
    price: Option<Box<RawValue>>,
    price_type: Option<Value>,
    price_interval: Option<Value>,
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message).with_field(field)
}

fn missing(field: &str) -> ApiError {
    ApiError::missing_field(field)
}

/// An optional string field (null and absent are the same).
fn opt_string(field: &str, value: &Option<Value>) -> Result<Option<String>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => free_text(s).map_err(|e| invalid(field, format!("{field} {e}"))),
        Some(_) => Err(invalid(field, format!("{field} must be a string"))),
    }
}

fn required_id(field: &str, value: &Option<Value>) -> Result<ExternalId, ApiError> {
    let text = opt_string(field, value)?.ok_or_else(|| missing(field))?;
    ExternalId::parse(&text).map_err(|e| invalid(field, format!("{field} {e}")))
}

/// Parses a request body. `event.timestamp` and `user.auth` are not used: the
/// marketplace's auth token is for the service partner's own login, not the hub's.
pub fn parse_event(body: &[u8]) -> Result<MarketplaceEvent, ApiError> {
    let wire: WireEnvelope = parse_json(body)?;
    let event = wire.event.ok_or_else(|| missing("event"))?;
    let id = required_id("event.id", &event.id)?;
    let type_text =
        opt_string("event.type", &event.event_type)?.ok_or_else(|| missing("event.type"))?;
    let event_type = EventType::parse(&type_text).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_event_type",
            format!("unknown event type {type_text}"),
        )
        .with_field("event.type")
    })?;
    let user = wire.user.ok_or_else(|| missing("user"))?;
    let user_id = required_id("user.id", &user.id)?;
    let user_partner_id = opt_string("user.partnerId", &user.partner_id)?;
    let payload = match event_type {
        EventType::UserCreate | EventType::UserUpdate => {
            let data = wire.data.ok_or_else(|| missing("data"))?;
            let fields = data.user.ok_or_else(|| missing("data.user"))?;
            Payload::User(parse_profile(fields, data.web_identity)?)
        }
        EventType::UserDelete => Payload::None,
        _ => {
            let data = wire.data.ok_or_else(|| missing("data"))?;
            let product = data.product.ok_or_else(|| missing("data.product"))?;
            Payload::Product(parse_product(product, event_type)?)
        }
    };
    Ok(MarketplaceEvent {
        id,
        event_type,
        user_id,
        user_partner_id,
        payload,
    })
}

fn parse_profile(
    mut fields: Map<String, Value>,
    web_identity: Option<Value>,
) -> Result<UserProfile, ApiError> {
    let mut take = |name: &str| opt_string(&format!("data.user.{name}"), &fields.remove(name));
    let mut profile = UserProfile {
        salutation: take("salutation")?,
        first_name: take("firstName")?,
        last_name: take("lastName")?,
        email: None,
        phone: take("phone")?,
        date_of_birth: take("dateOfBirth")?,
        address1: take("address1")?,
        address2: take("address2")?,
        city: take("city")?,
        // The contract's key; `region` and `state` are accepted as well.
        region_state: match take("region/state")? {
            Some(v) => Some(v),
            None => match take("region")? {
                Some(v) => Some(v),
                None => take("state")?,
            },
        },
        country: take("country")?,
        postal_code: take("postalCode")?,
        web_identity: None,
    };
    if let Some(email) = take("email")? {
        profile.email = Some(
            Email::parse(&email).map_err(|e| invalid("data.user.email", format!("email {e}")))?,
        );
    }
    if let Some(dob) = &profile.date_of_birth {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        time::Date::parse(dob, format).map_err(|_| {
            invalid(
                "data.user.dateOfBirth",
                "dateOfBirth must be a date as YYYY-MM-DD",
            )
        })?;
    }
    profile.web_identity = match web_identity {
        None | Some(Value::Null) => None,
        Some(Value::Object(mut w)) => Some(WebIdentity {
            status: opt_string("data.webIdentity.status", &w.remove("status"))?,
            verification_id: opt_string(
                "data.webIdentity.verificationId",
                &w.remove("verificationId"),
            )?,
        }),
        Some(_) => {
            return Err(invalid("data.webIdentity", "webIdentity must be an object"));
        }
    };
    Ok(profile)
}

fn parse_product(product: WireProduct, event_type: EventType) -> Result<ProductInfo, ApiError> {
    let price = match product.price.as_deref().map(RawValue::get) {
        None | Some("null") => None,
        Some(text) => Some(
            Price::parse(text).map_err(|e| invalid("data.product.price", format!("price {e}")))?,
        ),
    };
    let info = ProductInfo {
        id: required_id("data.product.id", &product.id)?,
        partner_id: opt_string("data.product.partnerId", &product.partner_id)?,
        name: opt_string("data.product.name", &product.name)?,
        price,
        price_type: opt_string("data.product.priceType", &product.price_type)?,
        price_interval: opt_string("data.product.priceInterval", &product.price_interval)?,
    };
    if event_type == EventType::ProductPurchase {
        if info.price.is_none() {
            return Err(missing("data.product.price"));
        }
        if info.price_type.is_none() {
            return Err(missing("data.product.priceType"));
        }
    }
    Ok(info)
}

/// The ledger's hash of a body: canonical form without `user.auth` and
/// `event.timestamp`, since a redelivery may carry a fresh auth token and timestamp and
/// is still the same event.
pub fn body_hash(body: &Value) -> String {
    let mut body = body.clone();
    if let Some(user) = body.get_mut("user").and_then(Value::as_object_mut) {
        user.remove("auth");
    }
    if let Some(event) = body.get_mut("event").and_then(Value::as_object_mut) {
        event.remove("timestamp");
    }
    canonical_hash(&body)
}

/// The contract's response to an accepted event (the same for a redelivery).
pub fn response(event: &MarketplaceEvent, outcome: &MarketplaceOutcome) -> Value {
    let user = json!({"id": event.user_id, "partnerId": outcome.user_partner_id});
    let event_ref = json!({"id": event.id});
    match &event.payload {
        Payload::Product(product) => json!({
            "status": 200,
            "event": event_ref,
            "user": user,
            "data": {"product": {"id": product.id, "partnerId": outcome.product_partner_id}},
        }),
        _ => json!({
            "status": 200,
            "event": event_ref,
            "data": {"user": user},
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn purchase() -> Value {
        json!({
            "event": {"id": "5fa30c48-7c7f-4440-bbc6-fdd927e7dc48", "type": "product.purchase", "timestamp": 19786584376u64},
            "user": {"id": "52f3d719", "partnerId": "u-1", "auth": {"token": "378aee42", "expires": 2086584376u64}},
            "data": {"product": {"id": "ecc8f6f0", "name": "SicurNET", "price": 123.45,
                                 "priceType": "SUBSCRIPTION", "priceInterval": "MONTHLY"}}
        })
    }

    #[test]
    fn canonical_hash_ignores_auth_timestamp_and_key_order() {
        let a = purchase();
        let mut b = purchase();
        b["user"]["auth"] = json!({"token": "another", "expires": 1});
        b["event"]["timestamp"] = json!(1);
        assert_eq!(body_hash(&a), body_hash(&b));
        let reordered: Value = serde_json::from_str(
            r#"{"data": {"product": {"priceInterval": "MONTHLY", "priceType": "SUBSCRIPTION",
                "price": 123.45, "name": "SicurNET", "id": "ecc8f6f0"}},
               "user": {"partnerId": "u-1", "id": "52f3d719"},
               "event": {"type": "product.purchase", "id": "5fa30c48-7c7f-4440-bbc6-fdd927e7dc48"}}"#,
        )
        .unwrap();
        assert_eq!(body_hash(&a), body_hash(&reordered));
        let mut c = purchase();
        c["data"]["product"]["price"] = json!(99);
        assert_ne!(body_hash(&a), body_hash(&c));
    }

    #[test]
    fn price_keeps_the_exact_decimal_text() {
        let body = r#"{"event": {"id": "e1", "type": "product.purchase"}, "user": {"id": "u1"},
            "data": {"product": {"id": "p1", "price": 0.30000000000000004, "priceType": "ONE_TIME"}}}"#;
        let event = parse_event(body.as_bytes()).unwrap();
        let Payload::Product(product) = event.payload else {
            panic!("a product event")
        };
        assert_eq!(product.price.unwrap().as_str(), "0.30000000000000004");
        assert_eq!(Price::parse("123.45").unwrap().as_str(), "123.45");
        assert_eq!(Price::parse("\"19.90\"").unwrap().as_str(), "19.90");
        for bad in ["-1", "1e3", "1.", ".5", "abc", "true", ""] {
            assert!(Price::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_the_contract_samples_fields_and_names_missing_ones() {
        let event = parse_event(purchase().to_string().as_bytes()).unwrap();
        assert_eq!(event.event_type, EventType::ProductPurchase);
        assert_eq!(event.user_partner_id.as_deref(), Some("u-1"));
        let mut no_price = purchase();
        no_price["data"]["product"]
            .as_object_mut()
            .unwrap()
            .remove("price");
        let err = parse_event(no_price.to_string().as_bytes()).unwrap_err();
        assert_eq!(
            (err.code, err.field.as_deref()),
            ("missing_field", Some("data.product.price"))
        );
        let mut unknown = purchase();
        unknown["event"]["type"] = json!("product.refund");
        assert_eq!(
            parse_event(unknown.to_string().as_bytes())
                .unwrap_err()
                .code,
            "unknown_event_type"
        );
        assert_eq!(parse_event(b"{nope").unwrap_err().code, "malformed_json");
        let user = json!({"event": {"id": "e", "type": "user.create"}, "user": {"id": "u", "partnerId": null},
            "data": {"user": {"email": "john@doe.com", "region/state": "Brandenburg", "dateOfBirth": "1990-12-21"}}});
        let event = parse_event(user.to_string().as_bytes()).unwrap();
        let Payload::User(profile) = event.payload else {
            panic!("a user event")
        };
        assert_eq!(profile.region_state.as_deref(), Some("Brandenburg"));
        let bad_email = json!({"event": {"id": "e", "type": "user.update"}, "user": {"id": "u"},
            "data": {"user": {"email": "not an email"}}});
        assert_eq!(
            parse_event(bad_email.to_string().as_bytes())
                .unwrap_err()
                .field
                .as_deref(),
            Some("data.user.email")
        );
    }
}
