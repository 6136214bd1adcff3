//! The signed-payload contract's wire format: the request body carrying the JWT, the
//! provisioning claims (parsed field by field into domain types) and the response.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::{
    accounts::{Page, ProvisionedShop, ShopProfile},
    domain::{CurrencyCode, Email, Locale, ParseError, Platform, ShopDomain, ShopName, TzOffset},
    http::ApiError,
};

/// The request body: `{"payload": "<JWT>"}`.
#[derive(Debug, Deserialize)]
pub struct SignedBody {
    payload: Option<serde_json::Value>,
}

impl SignedBody {
    /// The JWT, or a 422 naming `payload`.
    pub fn jwt(self) -> Result<String, ApiError> {
        match self.payload {
            Some(serde_json::Value::String(jwt)) => Ok(jwt),
            None | Some(serde_json::Value::Null) => Err(ApiError::missing_field("payload")),
            Some(_) => Err(ApiError::invalid_field(
                "payload",
                ParseError::new("must be a string: the signed JWT"),
            )),
        }
    }
}

/// The claims of the provisioning payload, as sent (strings checked field by field).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionClaims {
    pub url: Option<serde_json::Value>,
    pub name: Option<serde_json::Value>,
    pub currency_code: Option<serde_json::Value>,
    pub contact_email: Option<serde_json::Value>,
    pub timezone_offset: Option<serde_json::Value>,
    pub locale: Option<serde_json::Value>,
    pub platform: Option<serde_json::Value>,
}

impl ProvisionClaims {
    /// Parses every field into its domain type; the first bad field is named.
    pub fn parse(&self) -> Result<ShopProfile, ApiError> {
        Ok(ShopProfile {
            domain: field("url", &self.url, ShopDomain::parse)?,
            name: field("name", &self.name, ShopName::parse)?,
            currency_code: field("currencyCode", &self.currency_code, CurrencyCode::parse)?,
            contact_email: field("contactEmail", &self.contact_email, Email::parse)?,
            timezone_offset: field("timezoneOffset", &self.timezone_offset, TzOffset::parse)?,
            locale: field("locale", &self.locale, Locale::parse)?,
            platform: field("platform", &self.platform, Platform::parse)?,
        })
    }
}

/// Claims that name a shop: `{shop}` (plans, and the start of the other calls).
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ShopClaims {
    pub shop: Option<serde_json::Value>,
}

impl ShopClaims {
    pub fn shop(&self) -> Result<ShopDomain, ApiError> {
        field("shop", &self.shop, ShopDomain::parse)
    }
}

fn field<T>(
    name: &str,
    value: &Option<serde_json::Value>,
    parse: impl Fn(&str) -> Result<T, ParseError>,
) -> Result<T, ApiError> {
    match value {
        None | Some(serde_json::Value::Null) => Err(ApiError::missing_field(name)),
        Some(serde_json::Value::String(s)) => {
            parse(s).map_err(|e| ApiError::invalid_field(name, e))
        }
        Some(_) => Err(ApiError::invalid_field(
            name,
            ParseError("must be a string".into()),
        )),
    }
}

/// The response: `{"domain": {...}}`, the same for 201 and 200.
#[derive(Debug, Serialize, Deserialize)]
pub struct DomainResponse {
    pub domain: DomainBody,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainBody {
    pub id: String,
    pub url: String,
    pub name: String,
    pub currency_code: String,
    pub contact_email: String,
    pub timezone_offset: String,
    pub locale: String,
    pub platform: String,
    pub status: String,
    pub external_id: String,
    pub access_token: String,
    pub secret_key: String,
    pub pages: Vec<Page>,
    pub created_at: String,
}

impl DomainResponse {
    pub fn from_provisioned(shop: ProvisionedShop) -> Result<Self, ApiError> {
        let account = shop.account;
        let profile = account.shop.ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "not_a_shop",
                "this account is not a shop",
            )
        })?;
        Ok(Self {
            domain: DomainBody {
                id: account.id.to_string(),
                url: profile.domain.as_str().to_owned(),
                name: profile.name.as_str().to_owned(),
                currency_code: profile.currency_code.as_str().to_owned(),
                contact_email: profile.contact_email.as_str().to_owned(),
                timezone_offset: profile.timezone_offset.as_str().to_owned(),
                locale: profile.locale.as_str().to_owned(),
                platform: profile.platform.as_str().to_owned(),
                status: account.status.to_string(),
                external_id: account.external_id.as_str().to_owned(),
                access_token: shop.credentials.access_token,
                secret_key: shop.credentials.secret_key,
                pages: account.pages,
                created_at: account.created_at,
            },
        })
    }
}
