//! The signed-payload contract's wire format: the request body carrying the JWT, the
//! provisioning claims (parsed field by field into domain types) and the response.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use shared::{
    accounts::{Account, Page, PausedInterval, ProvisionedShop, ShopProfile},
    billing::{BillingPeriod, Confirmation, MAX_TRIAL_DAYS, Selection},
    clock,
    domain::{
        CurrencyCode, Email, Locale, ParseError, Platform, Price, ShopDomain, ShopName, TzOffset,
    },
    http::ApiError,
    plans::ContractPlan,
    usage::Statement,
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

/// The confirm call's claims (step 3). The fixed cap is accepted under the example's
/// `fixedPriceAmountUSD`, the table's `frixedPriceCapUSD` and the corrected
/// `fixedPriceCapUSD`; two of them with different values are refused.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmClaims {
    shop: Option<serde_json::Value>,
    start: Option<serde_json::Value>,
    end: Option<serde_json::Value>,
    trial_days: Option<serde_json::Value>,
    subscription_ids: Option<serde_json::Value>,
    #[serde(rename = "dynamicPriceCapUSD")]
    dynamic_cap: Option<Box<RawValue>>,
    #[serde(rename = "fixedPriceCapUSD")]
    fixed_cap: Option<Box<RawValue>>,
    #[serde(rename = "frixedPriceCapUSD")]
    frixed_cap: Option<Box<RawValue>>,
    #[serde(rename = "fixedPriceAmountUSD")]
    fixed_amount: Option<Box<RawValue>>,
}

/// The most plans one confirmation may name.
const MAX_SUBSCRIPTION_IDS: usize = 100;

impl ConfirmClaims {
    pub fn shop(&self) -> Result<ShopDomain, ApiError> {
        field("shop", &self.shop, ShopDomain::parse)
    }

    /// Everything but the shop, checked field by field; `claims_hash` identifies the
    /// request (see `Claims::content_hash`).
    pub fn confirmation(&self, claims_hash: String) -> Result<Confirmation, ApiError> {
        let date = |name: &str, value: &Option<serde_json::Value>| {
            field(name, value, |s| {
                clock::parse_iso8601(s.trim()).ok_or_else(|| {
                    ParseError::new(
                        "must be an ISO-8601 date-time (or date) in the years 0001-9999",
                    )
                })
            })
        };
        let start = date("start", &self.start)?;
        let end = date("end", &self.end)?;
        let trial_days = match &self.trial_days {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| *n <= MAX_TRIAL_DAYS)
                    .ok_or_else(|| {
                        ApiError::invalid_field(
                            "trialDays",
                            ParseError::new(format!(
                                "must be a whole number of days, 0 to {MAX_TRIAL_DAYS}"
                            )),
                        )
                    })?,
            ),
        };
        let ids = match &self.subscription_ids {
            None | Some(serde_json::Value::Null) => {
                return Err(ApiError::missing_field("subscriptionIds"));
            }
            Some(serde_json::Value::Array(items)) if !items.is_empty() && items.len() <= MAX_SUBSCRIPTION_IDS => items
                .iter()
                .map(|item| item.as_u64().and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0))
                .collect::<Option<Vec<u32>>>(),
            Some(_) => None,
        }
        .ok_or_else(|| {
            ApiError::invalid_field(
                "subscriptionIds",
                ParseError::new(format!(
                    "must be an array of 1 to {MAX_SUBSCRIPTION_IDS} subscription ids (positive integers)"
                )),
            )
        })?;
        let mut plan_ids: Vec<u32> = Vec::with_capacity(ids.len());
        for id in ids {
            if !plan_ids.contains(&id) {
                plan_ids.push(id);
            }
        }
        let cap = |name: &str, raw: &Option<Box<RawValue>>| -> Result<Option<Price>, ApiError> {
            match raw.as_deref().map(RawValue::get) {
                None | Some("null") => Ok(None),
                Some(text) => Price::parse(text)
                    .map(Some)
                    .map_err(|e| ApiError::invalid_field(name, e)),
            }
        };
        let mut fixed: Option<(&str, Price)> = None;
        for (name, raw) in [
            ("fixedPriceCapUSD", &self.fixed_cap),
            ("frixedPriceCapUSD", &self.frixed_cap),
            ("fixedPriceAmountUSD", &self.fixed_amount),
        ] {
            if let Some(value) = cap(name, raw)? {
                match &fixed {
                    Some((first, seen)) if seen.amount() != value.amount() => {
                        return Err(ApiError::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "conflicting_fields",
                            format!("{first} and {name} name different fixed price caps"),
                        )
                        .with_field(name));
                    }
                    Some(_) => {}
                    None => fixed = Some((name, value)),
                }
            }
        }
        Ok(Confirmation {
            plan_ids,
            start,
            end,
            trial_days,
            dynamic_price_cap_usd: cap("dynamicPriceCapUSD", &self.dynamic_cap)?,
            fixed_price_cap_usd: fixed.map(|(_, price)| price),
            claims_hash,
        })
    }
}

/// The confirm answer: the plans as listed, and the billing period.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmResponse {
    pub subscriptions: Vec<ContractPlan>,
    pub billing_period: BillingPeriodBody,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BillingPeriodBody {
    pub start: String,
    pub end: String,
    pub trial_days: u32,
    pub trial_ends_at: String,
    #[serde(rename = "dynamicPriceCapUSD")]
    pub dynamic_price_cap_usd: Option<Box<RawValue>>,
    #[serde(rename = "fixedPriceCapUSD")]
    pub fixed_price_cap_usd: Option<Box<RawValue>>,
}

impl ConfirmResponse {
    pub fn of(selection: &Selection) -> Result<Self, serde_json::Error> {
        let period = &selection.period;
        let number = |p: &Option<Price>| p.as_ref().map(Price::to_json_number).transpose();
        Ok(Self {
            subscriptions: selection
                .plans
                .iter()
                .map(|plan| ContractPlan::from_spec(&plan.spec))
                .collect::<Result<_, _>>()?,
            billing_period: BillingPeriodBody {
                start: clock::rfc3339_millis(period.start),
                end: clock::rfc3339_millis(period.end),
                trial_days: period.trial_days,
                trial_ends_at: clock::rfc3339_millis(period.trial_ends_at),
                dynamic_price_cap_usd: number(&period.dynamic_price_cap_usd)?,
                fixed_price_cap_usd: number(&period.fixed_price_cap_usd)?,
            },
        })
    }
}

/// The pause/resume call's claims (the appendix): `{shop, running}`.
#[derive(Debug, Deserialize)]
pub struct RunningClaims {
    shop: Option<serde_json::Value>,
    running: Option<serde_json::Value>,
}

impl RunningClaims {
    pub fn shop(&self) -> Result<ShopDomain, ApiError> {
        field("shop", &self.shop, ShopDomain::parse)
    }

    pub fn running(&self) -> Result<bool, ApiError> {
        match &self.running {
            Some(serde_json::Value::Bool(b)) => Ok(*b),
            None | Some(serde_json::Value::Null) => Err(ApiError::missing_field("running")),
            Some(_) => Err(ApiError::invalid_field(
                "running",
                ParseError::new("must be true or false"),
            )),
        }
    }
}

/// A shop's integration state (the pause/resume answer).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShopState {
    pub shop: String,
    pub running: bool,
    /// When it was paused (most recent last); `to` is absent while it still is.
    pub paused_intervals: Vec<PausedInterval>,
}

impl ShopState {
    pub fn of(domain: &ShopDomain, account: &Account) -> Self {
        Self {
            shop: domain.as_str().to_owned(),
            running: account.running,
            paused_intervals: account.paused_intervals.clone(),
        }
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

/// The statement call's claims: `{shop, period?: {start, end}}`; without a period, the
/// shop's current billing period.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct StatementClaims {
    pub shop: Option<serde_json::Value>,
    pub period: Option<serde_json::Value>,
}

/// The longest period a statement covers.
const MAX_STATEMENT_DAYS: i64 = 400;

impl StatementClaims {
    pub fn shop(&self) -> Result<ShopDomain, ApiError> {
        field("shop", &self.shop, ShopDomain::parse)
    }

    /// The period asked for, or `current` when none is.
    pub fn period(&self, current: &BillingPeriod) -> Result<BillingPeriod, ApiError> {
        let object = match &self.period {
            None | Some(serde_json::Value::Null) => return Ok(current.clone()),
            Some(serde_json::Value::Object(object)) => object,
            Some(_) => {
                return Err(ApiError::invalid_field(
                    "period",
                    ParseError::new("must be an object {start, end} of ISO-8601 date-times"),
                ));
            }
        };
        let date = |name: &str| {
            field(&format!("period.{name}"), &object.get(name).cloned(), |s| {
                clock::parse_iso8601(s.trim()).ok_or_else(|| {
                    ParseError::new(
                        "must be an ISO-8601 date-time (or date) in the years 0001-9999",
                    )
                })
            })
        };
        let (start, end) = (date("start")?, date("end")?);
        if end <= start || (end - start).whole_days() > MAX_STATEMENT_DAYS {
            return Err(ApiError::invalid_field(
                "period.end",
                ParseError::new(format!(
                    "must be after period.start, at most {MAX_STATEMENT_DAYS} days later"
                )),
            ));
        }
        Ok(BillingPeriod {
            start,
            end,
            ..current.clone()
        })
    }
}

/// A period's statement by the contract's invoice rule (§5.1).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatementResponse {
    pub shop: String,
    pub billing_period: StatementPeriod,
    pub line_items: Vec<StatementLineItem>,
    #[serde(rename = "fixedPriceTotalUSD")]
    pub fixed_price_total_usd: String,
    #[serde(rename = "dynamicPriceTotalUSD")]
    pub dynamic_price_total_usd: String,
    #[serde(rename = "fixedPriceCapUSD", skip_serializing_if = "Option::is_none")]
    pub fixed_price_cap_usd: Option<String>,
    #[serde(rename = "dynamicPriceCapUSD", skip_serializing_if = "Option::is_none")]
    pub dynamic_price_cap_usd: Option<String>,
    pub fixed_price_capped: bool,
    pub dynamic_price_capped: bool,
    #[serde(rename = "totalUSD")]
    pub total_usd: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatementPeriod {
    pub start: String,
    pub end: String,
    pub trial_ends_at: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatementLineItem {
    pub reference: String,
    #[serde(rename = "type")]
    pub usage_type: String,
    pub preaggregated: bool,
    pub unit_price: String,
    pub amount: String,
    pub billable_amount: String,
    pub total_price: String,
    /// How many usage records the line counts.
    pub records: usize,
}

impl StatementResponse {
    pub fn of(shop: &ShopDomain, period: &BillingPeriod, statement: &Statement) -> Self {
        Self {
            shop: shop.as_str().to_owned(),
            billing_period: StatementPeriod {
                start: clock::rfc3339_millis(period.start),
                end: clock::rfc3339_millis(period.end),
                trial_ends_at: clock::rfc3339_millis(period.trial_ends_at),
            },
            line_items: statement
                .lines
                .iter()
                .map(|l| StatementLineItem {
                    reference: l.reference.clone(),
                    usage_type: l.usage_type.clone(),
                    preaggregated: l.preaggregated,
                    unit_price: l.unit_price.to_string(),
                    amount: l.amount.to_string(),
                    billable_amount: l.billable_amount.to_string(),
                    total_price: l.total_price.to_string(),
                    records: l.records,
                })
                .collect(),
            fixed_price_total_usd: statement.fixed_total.to_string(),
            dynamic_price_total_usd: statement.dynamic_total.to_string(),
            fixed_price_cap_usd: period
                .fixed_price_cap_usd
                .as_ref()
                .map(|p| p.as_str().to_owned()),
            dynamic_price_cap_usd: period
                .dynamic_price_cap_usd
                .as_ref()
                .map(|p| p.as_str().to_owned()),
            fixed_price_capped: statement.fixed_capped,
            dynamic_price_capped: statement.dynamic_capped,
            total_usd: statement.total.to_string(),
        }
    }
}
