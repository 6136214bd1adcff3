//! The marketplace callback's wire format (`marketplace-webhooks.txt`), parsed into
//! domain values at the edge, and the canonical body hash of the idempotency ledger.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, value::RawValue};
use sha2::{Digest, Sha256};

use super::MarketplaceError;
use crate::domain::{Email, ExternalId};

/// The event types the contract names. `user.delete` has no sample in the contract; the
/// hub accepts the same envelope as the other user events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "user.create")]
    UserCreate,
    #[serde(rename = "user.update")]
    UserUpdate,
    #[serde(rename = "user.delete")]
    UserDelete,
    #[serde(rename = "product.purchase")]
    ProductPurchase,
    #[serde(rename = "product.cancel")]
    ProductCancel,
    #[serde(rename = "product.suspend")]
    ProductSuspend,
    #[serde(rename = "product.resume")]
    ProductResume,
}

impl EventType {
    pub const ALL: [EventType; 7] = [
        EventType::UserCreate,
        EventType::UserUpdate,
        EventType::UserDelete,
        EventType::ProductPurchase,
        EventType::ProductCancel,
        EventType::ProductSuspend,
        EventType::ProductResume,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            EventType::UserCreate => "user.create",
            EventType::UserUpdate => "user.update",
            EventType::UserDelete => "user.delete",
            EventType::ProductPurchase => "product.purchase",
            EventType::ProductCancel => "product.cancel",
            EventType::ProductSuspend => "product.suspend",
            EventType::ProductResume => "product.resume",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == value)
    }

    pub fn is_product(&self) -> bool {
        self.as_str().starts_with("product.")
    }
}

/// A price as the exact decimal text the marketplace sent (`123.45`), never an `f64`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Price(String);

impl Price {
    const MAX_LEN: usize = 32;

    /// A non-negative decimal without exponent: `123`, `123.45`, `0.5`. Accepts the
    /// JSON number's own text or a JSON string holding one.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let text = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(text)
            .trim();
        let (int, frac) = match text.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (text, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if text.len() > Self::MAX_LEN || !digits(int) || frac.is_some_and(|f| !digits(f)) {
            return Err("must be a non-negative decimal number such as 123.45".into());
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The user's personal data (`data.user`), kept apart from the account so erasure is
/// one overwrite. Every field is optional: the contract marks none as required.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salutation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(
        rename = "region/state",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub region_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// `data.webIdentity` (`status`, `verificationId`), kept as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_identity: Option<WebIdentity>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebIdentity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_id: Option<String>,
}

/// `data.product`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductInfo {
    /// The marketplace's product id.
    pub id: ExternalId,
    /// The hub's product id as the marketplace echoes it (`p-…`), if it sent one.
    pub partner_id: Option<String>,
    pub name: Option<String>,
    pub price: Option<Price>,
    pub price_type: Option<String>,
    pub price_interval: Option<String>,
}

/// What an event carries besides its envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    User(UserProfile),
    Product(ProductInfo),
    None,
}

/// A marketplace event, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketplaceEvent {
    /// `event.id`, echoed in the response and the idempotency key.
    pub id: ExternalId,
    pub event_type: EventType,
    /// `user.id`: the marketplace's user id.
    pub user_id: ExternalId,
    /// `user.partnerId`: the hub's user id (`u-…`) as the marketplace echoes it.
    pub user_partner_id: Option<String>,
    pub payload: Payload,
}

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

fn invalid(field: &str, message: impl Into<String>) -> MarketplaceError {
    MarketplaceError::InvalidField {
        field: field.to_owned(),
        message: message.into(),
    }
}

fn missing(field: &str) -> MarketplaceError {
    MarketplaceError::MissingField(field.to_owned())
}

/// An optional string field (null and absent are the same).
fn opt_string(field: &str, value: &Option<Value>) -> Result<Option<String>, MarketplaceError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(_) => Err(invalid(field, format!("{field} must be a string"))),
    }
}

fn required_id(field: &str, value: &Option<Value>) -> Result<ExternalId, MarketplaceError> {
    let text = opt_string(field, value)?.ok_or_else(|| missing(field))?;
    ExternalId::parse(&text).map_err(|e| invalid(field, format!("{field} {e}")))
}

impl MarketplaceEvent {
    /// Parses a request body. `event.timestamp` and `user.auth` are not used: the
    /// marketplace's auth token is for the service partner's own login, not the hub's.
    pub fn parse(body: &[u8]) -> Result<Self, MarketplaceError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(MarketplaceError::MalformedJson(
                "the request body is empty".into(),
            ));
        }
        let wire: WireEnvelope = serde_json::from_slice(body).map_err(|e| {
            if e.is_data() {
                MarketplaceError::InvalidBody(e.to_string())
            } else {
                MarketplaceError::MalformedJson(e.to_string())
            }
        })?;
        let event = wire.event.ok_or_else(|| missing("event"))?;
        let id = required_id("event.id", &event.id)?;
        let type_text =
            opt_string("event.type", &event.event_type)?.ok_or_else(|| missing("event.type"))?;
        let event_type =
            EventType::parse(&type_text).ok_or(MarketplaceError::UnknownEventType(type_text))?;
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
        Ok(Self {
            id,
            event_type,
            user_id,
            user_partner_id,
            payload,
        })
    }
}

fn parse_profile(
    mut fields: Map<String, Value>,
    web_identity: Option<Value>,
) -> Result<UserProfile, MarketplaceError> {
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

fn parse_product(
    product: WireProduct,
    event_type: EventType,
) -> Result<ProductInfo, MarketplaceError> {
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

/// SHA-256 (hex) of the body in canonical form (object keys sorted, no whitespace),
/// without `user.auth` and `event.timestamp`: a redelivery may carry a fresh auth token
/// and timestamp and is still the same event.
pub fn canonical_hash(body: &Value) -> String {
    let mut body = body.clone();
    if let Some(user) = body.get_mut("user").and_then(Value::as_object_mut) {
        user.remove("auth");
    }
    if let Some(event) = body.get_mut("event").and_then(Value::as_object_mut) {
        event.remove("timestamp");
    }
    let mut text = String::new();
    write_canonical(&body, &mut text);
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
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
        assert_eq!(canonical_hash(&a), canonical_hash(&b));
        let reordered: Value = serde_json::from_str(
            r#"{"data": {"product": {"priceInterval": "MONTHLY", "priceType": "SUBSCRIPTION",
                "price": 123.45, "name": "SicurNET", "id": "ecc8f6f0"}},
               "user": {"partnerId": "u-1", "id": "52f3d719"},
               "event": {"type": "product.purchase", "id": "5fa30c48-7c7f-4440-bbc6-fdd927e7dc48"}}"#,
        )
        .unwrap();
        assert_eq!(canonical_hash(&a), canonical_hash(&reordered));
        let mut c = purchase();
        c["data"]["product"]["price"] = json!(99);
        assert_ne!(canonical_hash(&a), canonical_hash(&c));
    }

    #[test]
    fn price_keeps_the_exact_decimal_text() {
        let body = r#"{"event": {"id": "e1", "type": "product.purchase"}, "user": {"id": "u1"},
            "data": {"product": {"id": "p1", "price": 0.30000000000000004, "priceType": "ONE_TIME"}}}"#;
        let event = MarketplaceEvent::parse(body.as_bytes()).unwrap();
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
        let event = MarketplaceEvent::parse(purchase().to_string().as_bytes()).unwrap();
        assert_eq!(event.event_type, EventType::ProductPurchase);
        assert_eq!(event.user_partner_id.as_deref(), Some("u-1"));
        let mut no_price = purchase();
        no_price["data"]["product"]
            .as_object_mut()
            .unwrap()
            .remove("price");
        match MarketplaceEvent::parse(no_price.to_string().as_bytes()) {
            Err(MarketplaceError::MissingField(f)) => assert_eq!(f, "data.product.price"),
            other => panic!("{other:?}"),
        }
        let mut unknown = purchase();
        unknown["event"]["type"] = json!("product.refund");
        assert!(matches!(
            MarketplaceEvent::parse(unknown.to_string().as_bytes()),
            Err(MarketplaceError::UnknownEventType(_))
        ));
        assert!(matches!(
            MarketplaceEvent::parse(b"{nope"),
            Err(MarketplaceError::MalformedJson(_))
        ));
        let user = json!({"event": {"id": "e", "type": "user.create"}, "user": {"id": "u", "partnerId": null},
            "data": {"user": {"email": "john@doe.com", "region/state": "Brandenburg", "dateOfBirth": "1990-12-21"}}});
        let event = MarketplaceEvent::parse(user.to_string().as_bytes()).unwrap();
        let Payload::User(profile) = event.payload else {
            panic!("a user event")
        };
        assert_eq!(profile.region_state.as_deref(), Some("Brandenburg"));
        let bad_email = json!({"event": {"id": "e", "type": "user.update"}, "user": {"id": "u"},
            "data": {"user": {"email": "not an email"}}});
        assert!(matches!(
            MarketplaceEvent::parse(bad_email.to_string().as_bytes()),
            Err(MarketplaceError::InvalidField { .. })
        ));
    }
}
