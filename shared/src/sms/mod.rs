//! Loyalty SMS (contract `loyalty-sms-gateway.txt`): a loyalty client is a **site** (an
//! account of a partner); its members, keyed by mobile number, subscribe through the
//! site's SMS gateway; loyalty actions become SMS **jobs** (one per action id), which the
//! cron-scheduled `sms-trigger` sends (`send`). Everything of a site lives in its
//! account's partition, so account cleanup removes it.

pub mod gateway;
pub mod quiet;
pub mod segments;
pub mod send;

use std::collections::BTreeMap;

use base64::{Engine, engine::general_purpose::STANDARD};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::{
    accounts::Account,
    clock,
    domain::{
        AccountId, AccountKind, AccountStatus, BillingOwner, CountryCode, ExternalId, ParseError,
        PartnerId, PhoneE164,
    },
    secrets::{SecretError, SecretSealer, random_token, token_hash, token_matches},
    store::{
        Applied, Inbound, Keys, Planned, Query, Record, StoreError, Tx, TxError, UnitOfWork,
        keys::{self, Due},
        ledger::canonical_hash,
    },
};

use quiet::SendingHours;

/// The longest SMS text a template may render (10 concatenated segments).
pub const MAX_SMS_CHARS: usize = 1530;
/// The longest action type name and template.
const MAX_ACTION_CHARS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tx(#[from] TxError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("{field}: {error}")]
    Invalid {
        field: &'static str,
        error: ParseError,
    },
    #[error("the site is not activated for SMS")]
    NotActivated,
    #[error("no such site")]
    UnknownSite,
    #[error("no such SMS job")]
    UnknownJob,
}

impl SmsError {
    pub fn invalid(field: &'static str, error: ParseError) -> Self {
        SmsError::Invalid { field, error }
    }
}

/// The site's SMS gateway settings (the contract's "Activate Attentive from the
/// dashboard"). Tokens are sealed with KMS and never shown again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activation {
    pub active: bool,
    pub sign_up_source_id: String,
    /// The app's bearer token (subscriptions API), sealed.
    pub app_token_sealed: String,
    /// The legacy messages token, sealed.
    pub messages_token_sealed: String,
    pub default_country: CountryCode,
    /// The site's IANA time zone, for members without one.
    pub time_zone: String,
    pub sending_hours: SendingHours,
    /// SMS per second this site may send (a token bucket in the send job).
    pub rate_per_second: u32,
    pub updated_at: String,
}

/// A loyalty client's site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsSite {
    pub site_id: u64,
    pub account_id: AccountId,
    pub partner_id: PartnerId,
    pub name: String,
    pub loyalty_token_hash: String,
    /// The secret the gateway signs its unsubscribe notifications with (Standard
    /// Webhooks), sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret_sealed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<Activation>,
    /// SMS text per action type, with `{{field}}` placeholders from the action.
    #[serde(default)]
    pub templates: BTreeMap<String, String>,
    /// The shop (of the same partner) whose usage the site's SMS count in, as
    /// `textMessages` segments (`hub-admin bill-site --site ID --shop my-shop.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billed_shop: Option<AccountId>,
    pub created_at: String,
    pub updated_at: String,
    pub revision: u64,
}

impl Record for SmsSite {
    fn keys(&self) -> Keys {
        keys::sms_site(self.account_id)
            .with_gsi1(keys::SMS_SITES_GSI1PK, format!("{:012}", self.site_id))
    }
}

impl crate::store::Revisioned for SmsSite {
    fn revision(&self) -> u64 {
        self.revision
    }
    fn set_revision(&mut self, revision: u64) {
        self.revision = revision;
    }
    fn set_updated_at(&mut self, at: String) {
        self.updated_at = at;
    }
}

/// National numbers of a site that did not say otherwise are read as US ones (the
/// contract's samples are).
pub fn default_country() -> CountryCode {
    CountryCode::parse("US").unwrap_or_else(|_| unreachable!("US is a country"))
}

impl SmsSite {
    /// The country national numbers are read in.
    pub fn country(&self) -> CountryCode {
        self.activation
            .as_ref()
            .map_or_else(default_country, |a| a.default_country)
    }

    pub fn is_active(&self) -> bool {
        self.activation.as_ref().is_some_and(|a| a.active)
    }

    fn record_name(&self) -> String {
        format!("sms-site:{}", self.site_id)
    }
}

/// The access token the contract describes: base64 of the JSON array
/// `[loyaltyToken, siteId]`.
pub fn access_token(loyalty_token: &str, site_id: u64) -> String {
    STANDARD.encode(serde_json::json!([loyalty_token, site_id.to_string()]).to_string())
}

/// The loyalty token and site id in an access token (the site id as a string or a
/// number, standard or URL-safe base64, padded or not).
pub fn parse_access_token(token: &str) -> Option<(String, u64)> {
    let token = token.trim();
    let bytes = STANDARD
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(token))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token))
        .ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    let [loyalty, site] = value.as_array()?.as_slice() else {
        return None;
    };
    let site = match site {
        Value::String(s) => s.trim().parse().ok()?,
        Value::Number(n) => n.as_u64()?,
        _ => return None,
    };
    Some((loyalty.as_str()?.to_owned(), site))
}

/// A site to change: by id (read first), or as its caller read it (the site's API reads
/// it to authenticate), so the change needs no second read.
#[derive(Debug, Clone, Copy)]
pub enum SiteToChange<'a> {
    Id(u64),
    Read(&'a SmsSite),
}

impl SiteToChange<'_> {
    pub fn site_id(&self) -> u64 {
        match self {
            SiteToChange::Id(id) => *id,
            SiteToChange::Read(site) => site.site_id,
        }
    }
}

impl From<u64> for SiteToChange<'_> {
    fn from(id: u64) -> Self {
        SiteToChange::Id(id)
    }
}

impl<'a> From<&'a SmsSite> for SiteToChange<'a> {
    fn from(site: &'a SmsSite) -> Self {
        SiteToChange::Read(site)
    }
}

/// What registering a site answers (the loyalty token is shown once).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredSite {
    pub site_id: u64,
    pub account_id: AccountId,
    pub loyalty_token: String,
    pub access_token: String,
    /// For the gateway's unsubscribe notifications (shown once).
    pub webhook_secret: String,
    /// Where the gateway sends them.
    pub webhook_path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    Subscribed,
    Unsubscribed,
}

/// A member of a site, by mobile number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsMember {
    pub account_id: AccountId,
    pub site_id: u64,
    pub phone: PhoneE164,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub status: MemberStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// The gateway's TEXT eligibility and when it was asked (cached). Always written
    /// (null when unknown), so a [`Table::merge`](crate::store::Table::merge) of the
    /// member clears a stale answer; `email` and `time_zone` are kept when not given.
    #[serde(default)]
    pub eligible: Option<bool>,
    #[serde(default)]
    pub eligibility_checked_at: Option<String>,
    pub updated_at: String,
}

impl SmsMember {
    /// The member as of now; `None` email or time zone: not given.
    pub fn new(
        site: &SmsSite,
        phone: &PhoneE164,
        email: Option<String>,
        status: MemberStatus,
        eligible: Option<bool>,
        time_zone: Option<String>,
    ) -> Self {
        let now = clock::sortable(clock::now());
        SmsMember {
            account_id: site.account_id,
            site_id: site.site_id,
            phone: phone.clone(),
            email,
            status,
            time_zone,
            eligible,
            eligibility_checked_at: eligible.map(|_| now.clone()),
            updated_at: now,
        }
    }
}

impl Record for SmsMember {
    fn keys(&self) -> Keys {
        keys::sms_member(self.account_id, self.phone.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for its due time.
    Pending,
    /// Claimed by a run that is calling the gateway.
    Sending,
    Sent,
    /// Not sent, for a reason that is final (`reason`).
    Skipped,
    /// Left for an operator (`reason`): the outcome is unknown or the gateway refused.
    Parked,
}

/// One SMS to send for one loyalty action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsJob {
    pub account_id: AccountId,
    pub partner_id: PartnerId,
    pub site_id: u64,
    pub action_id: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
    pub phone: PhoneE164,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// The rendered text (empty when the action type has no template).
    pub body: String,
    pub status: JobStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub attempts: u32,
    /// When it is due (pending), or until when its claim holds (sending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_answer: Option<Value>,
    pub created_at: String,
    pub updated_at: String,
    pub revision: u64,
}

impl Record for SmsJob {
    fn keys(&self) -> Keys {
        let keys = keys::sms_job(self.account_id, &self.action_id).with_gsi1(
            keys::sms_member_jobs_gsi1pk(self.site_id, self.phone.as_str()),
            format!("{}#{}", self.created_at, self.action_id),
        );
        match (self.status, &self.due_at) {
            (JobStatus::Pending | JobStatus::Sending, Some(at)) => {
                keys.due_in_shard(Due::Sms, &self.site_id.to_string(), at.clone())
            }
            (JobStatus::Parked, _) => keys.due(Due::SmsParked, self.updated_at.clone()),
            _ => keys,
        }
    }
}

impl SmsJob {
    /// The next revision of this job, as of `now`.
    fn next(&self, now: OffsetDateTime) -> Self {
        let mut next = self.clone();
        next.revision += 1;
        next.updated_at = clock::sortable(now);
        next
    }

    /// What a client sees of a job.
    pub fn view(&self) -> JobView {
        JobView {
            action_id: self.action_id.clone(),
            site_id: self.site_id,
            action: self.action.clone(),
            status: self.status,
            reason: self.reason.clone(),
            attempts: self.attempts,
            due_at: self.due_at.clone(),
            sent_at: self.sent_at.clone(),
            created_at: self.created_at.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub action_id: String,
    pub site_id: u64,
    pub action: String,
    pub status: JobStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
    pub created_at: String,
}

/// A loyalty action as it arrives (HTTP or EventBridge), parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct LoyaltyAction {
    pub action_id: String,
    pub action: String,
    pub member_id: Option<String>,
    pub phone: PhoneE164,
    pub email: Option<String>,
    pub time_zone: Option<String>,
    /// Every field of the action, for the template's placeholders.
    pub fields: serde_json::Map<String, Value>,
    /// The hash that makes redeliveries of this action recognisable.
    pub body_hash: String,
}

/// A short identifier: 1..=128 printable ASCII characters without spaces.
fn identifier(value: &str, max: usize) -> Result<String, ParseError> {
    let value = value.trim();
    if value.is_empty() || value.len() > max {
        return Err(ParseError::new(format!("must be 1 to {max} characters")));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ParseError::new("must be printable ASCII without spaces"));
    }
    Ok(value.to_owned())
}

pub fn parse_action_type(value: &str) -> Result<String, ParseError> {
    identifier(value, MAX_ACTION_CHARS)
}

impl LoyaltyAction {
    /// Parses an action's JSON (`{actionId, memberId, email, phone, action, points,
    /// balance, occurredAt, timeZone?, ...}`); the phone in the site's country.
    pub fn parse(body: &Value, country: CountryCode) -> Result<Self, SmsError> {
        let object = body
            .as_object()
            .ok_or_else(|| SmsError::invalid("body", ParseError::new("must be a JSON object")))?;
        let text = |field: &'static str| -> Result<Option<String>, SmsError> {
            match object.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Number(n)) => Ok(Some(n.to_string())),
                Some(_) => Err(SmsError::invalid(
                    field,
                    ParseError::new("must be a string"),
                )),
            }
        };
        let required = |field: &'static str| -> Result<String, SmsError> {
            text(field)?.ok_or_else(|| SmsError::invalid(field, ParseError::new("is required")))
        };
        let action_id = identifier(&required("actionId")?, 128)
            .map_err(|e| SmsError::invalid("actionId", e))?;
        let action =
            parse_action_type(&required("action")?).map_err(|e| SmsError::invalid("action", e))?;
        let phone = PhoneE164::parse(&required("phone")?, country)
            .map_err(|e| SmsError::invalid("phone", e))?;
        let member_id = text("memberId")?
            .map(|m| identifier(&m, 128))
            .transpose()
            .map_err(|e| SmsError::invalid("memberId", e))?;
        let email = text("email")?
            .map(|e| crate::domain::Email::parse(&e).map(|e| e.as_str().to_owned()))
            .transpose()
            .map_err(|e| SmsError::invalid("email", e))?;
        let time_zone = text("timeZone")?
            .map(|z| quiet::parse_time_zone(&z))
            .transpose()
            .map_err(|e| SmsError::invalid("timeZone", e))?;
        if let Some(at) = text("occurredAt")? {
            clock::parse_rfc3339(&at).ok_or_else(|| {
                SmsError::invalid("occurredAt", ParseError::new("must be an RFC 3339 time"))
            })?;
        }
        for field in ["points", "balance"] {
            if let Some(value) = object.get(field)
                && !(value.is_number() || value.is_null())
            {
                return Err(SmsError::invalid(
                    field,
                    ParseError::new("must be a number"),
                ));
            }
        }
        Ok(Self {
            action_id,
            action,
            member_id,
            phone,
            email,
            time_zone,
            fields: object.clone(),
            body_hash: canonical_hash(body),
        })
    }
}

/// Fills `{{field}}` placeholders from the action (numbers as written, missing as "").
pub fn render(template: &str, fields: &serde_json::Map<String, Value>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = after[..close].trim();
        match fields.get(name) {
            Some(Value::String(s)) => out.push_str(s),
            Some(Value::Number(n)) => out.push_str(&n.to_string()),
            Some(Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
            _ => {}
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

/// SMS segments a text takes: GSM-7 when every character is in the basic set, else UCS-2.
pub fn segments(text: &str) -> u32 {
    const GSM7: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
    const GSM7_EXTENDED: &str = "^{}\\[~]|€\u{c}";
    let gsm = text
        .chars()
        .all(|c| GSM7.contains(c) || GSM7_EXTENDED.contains(c));
    let units: usize = if gsm {
        text.chars()
            .map(|c| if GSM7_EXTENDED.contains(c) { 2 } else { 1 })
            .sum()
    } else {
        text.encode_utf16().count()
    };
    let (single, part) = if gsm { (160, 153) } else { (70, 67) };
    if units <= single {
        1
    } else {
        units.div_ceil(part) as u32
    }
}

/// The activation as a client sends it, parsed.
#[derive(Debug, Clone)]
pub struct ActivationRequest {
    pub sign_up_source_id: String,
    pub app_token: String,
    pub messages_token: String,
    pub default_country: CountryCode,
    pub time_zone: String,
    pub sending_hours: SendingHours,
    pub rate_per_second: u32,
}

/// What a client sees of an activation (never the tokens).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationView {
    pub site_id: u64,
    pub active: bool,
    pub sign_up_source_id: String,
    pub default_country: String,
    pub time_zone: String,
    pub quiet_hours: QuietHoursView,
    pub rate_per_second: u32,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QuietHoursView {
    /// Sending starts (local time).
    pub start: String,
    /// Sending ends (local time).
    pub end: String,
}

impl ActivationView {
    pub fn of(site: &SmsSite) -> Option<Self> {
        let a = site.activation.as_ref()?;
        Some(Self {
            site_id: site.site_id,
            active: a.active,
            sign_up_source_id: a.sign_up_source_id.clone(),
            default_country: a.default_country.as_str().to_owned(),
            time_zone: a.time_zone.clone(),
            quiet_hours: QuietHoursView {
                start: quiet::format_clock(a.sending_hours.start),
                end: quiet::format_clock(a.sending_hours.end),
            },
            rate_per_second: a.rate_per_second,
            updated_at: a.updated_at.clone(),
        })
    }
}

/// The gateway tokens of an active site, opened.
#[derive(Clone)]
pub struct OpenTokens {
    pub app_token: String,
    pub messages_token: String,
}

impl std::fmt::Debug for OpenTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpenTokens(..)")
    }
}

#[derive(Clone, Debug)]
pub struct Sms {
    uow: UnitOfWork,
    sealer: SecretSealer,
    /// How long a member's gateway eligibility is trusted.
    pub eligibility_ttl: std::time::Duration,
}

impl Sms {
    pub fn new(
        uow: UnitOfWork,
        sealer: SecretSealer,
        eligibility_ttl: std::time::Duration,
    ) -> Self {
        Self {
            uow,
            sealer,
            eligibility_ttl,
        }
    }

    pub fn uow(&self) -> &UnitOfWork {
        &self.uow
    }

    /// A new site for `partner`: its account (kind `sms_site`) and the site record, with
    /// a site id from the `SMS_SITE` counter and a new loyalty token.
    pub async fn register_site(
        &self,
        partner: PartnerId,
        name: &str,
    ) -> Result<RegisteredSite, SmsError> {
        let name = crate::domain::free_text(name)
            .map_err(|e| SmsError::invalid("name", e))?
            .ok_or_else(|| SmsError::invalid("name", ParseError::new("is required")))?;
        let site_id = 100_000 + self.uow.table().next_counter("SMS_SITE").await?;
        let account_id = AccountId::for_sms_site(site_id);
        let loyalty_token = random_token("lt");
        let webhook_secret = crate::webhooks::new_secret();
        let webhook_secret_sealed = self
            .sealer
            .seal(
                &webhook_secret,
                &format!("sms-site:{site_id}"),
                "webhook_secret",
            )
            .await?;
        let now = clock::sortable(clock::now());
        let account = Account {
            id: account_id,
            partner_id: partner,
            kind: AccountKind::SmsSite,
            external_id: ExternalId::parse(&site_id.to_string())
                .map_err(|e| SmsError::invalid("siteId", e))?,
            status: AccountStatus::Active,
            shop: None,
            credentials: None,
            billing: BillingOwner::Hub,
            pages: Vec::new(),
            running: true,
            paused_intervals: Vec::new(),
            access_token_hash: None,
            created_at: now.clone(),
            updated_at: now.clone(),
        };
        let site = SmsSite {
            site_id,
            account_id,
            partner_id: partner,
            name,
            loyalty_token_hash: token_hash(&loyalty_token),
            webhook_secret_sealed: Some(webhook_secret_sealed),
            activation: None,
            templates: BTreeMap::new(),
            billed_shop: None,
            created_at: now.clone(),
            updated_at: now,
            revision: 1,
        };
        self.uow
            .apply(|| async {
                let mut tx = Tx::new();
                tx.put_new(&account)?.put_new(&site)?;
                Ok::<_, SmsError>(Planned::new(tx, ()))
            })
            .await?;
        Ok(RegisteredSite {
            site_id,
            account_id,
            access_token: access_token(&loyalty_token, site_id),
            loyalty_token,
            webhook_secret,
            webhook_path: format!("/api/3.0/sms/gateway/{site_id}/unsubscribes"),
        })
    }

    pub async fn site(&self, site_id: u64) -> Result<Option<SmsSite>, SmsError> {
        Ok(self
            .uow
            .table()
            .get(&keys::sms_site(AccountId::for_sms_site(site_id)))
            .await?)
    }

    /// The site an access token opens (`None`: not a token of any site).
    pub async fn site_by_access_token(&self, token: &str) -> Result<Option<SmsSite>, SmsError> {
        let Some((loyalty, site_id)) = parse_access_token(token) else {
            return Ok(None);
        };
        Ok(self
            .site(site_id)
            .await?
            .filter(|site| token_matches(&loyalty, &site.loyalty_token_hash)))
    }

    /// Every site (the send job visits each one's due shard).
    pub async fn sites(&self) -> Result<Vec<SmsSite>, SmsError> {
        Ok(self
            .uow
            .table()
            .query_all(&Query::gsi1(keys::SMS_SITES_GSI1PK))
            .await?)
    }

    /// Writes a new revision of a site, planned from the site as its caller read it (the
    /// site's own API authenticated by reading it) or from a fresh read.
    async fn update_site<F>(&self, site: SiteToChange<'_>, change: F) -> Result<SmsSite, SmsError>
    where
        F: Fn(&mut SmsSite) -> Result<(), SmsError>,
    {
        let (site_id, read_already) = match site {
            SiteToChange::Id(id) => (id, None),
            SiteToChange::Read(site) => (site.site_id, Some(site.clone())),
        };
        self.uow
            .update_from(
                read_already,
                || async { self.site(site_id).await?.ok_or(SmsError::UnknownSite) },
                |site| change(site).map(|()| true),
            )
            .await
    }

    /// Activates (or re-activates with new settings) the site's gateway.
    pub async fn activate(
        &self,
        site: impl Into<SiteToChange<'_>>,
        request: ActivationRequest,
    ) -> Result<SmsSite, SmsError> {
        let site = site.into();
        let record = format!("sms-site:{}", site.site_id());
        let app = self
            .sealer
            .seal(&request.app_token, &record, "app_token")
            .await?;
        let messages = self
            .sealer
            .seal(&request.messages_token, &record, "messages_token")
            .await?;
        let activation = Activation {
            active: true,
            sign_up_source_id: request.sign_up_source_id,
            app_token_sealed: app,
            messages_token_sealed: messages,
            default_country: request.default_country,
            time_zone: request.time_zone,
            sending_hours: request.sending_hours,
            rate_per_second: request.rate_per_second,
            updated_at: clock::sortable(clock::now()),
        };
        self.update_site(site, |site| {
            site.activation = Some(activation.clone());
            Ok(())
        })
        .await
    }

    /// Stops every send of the site at once (its due jobs are skipped as `deactivated`).
    pub async fn deactivate(&self, site: impl Into<SiteToChange<'_>>) -> Result<SmsSite, SmsError> {
        self.update_site(site.into(), |site| {
            let activation = site.activation.as_mut().ok_or(SmsError::NotActivated)?;
            activation.active = false;
            activation.updated_at = clock::sortable(clock::now());
            Ok(())
        })
        .await
    }

    /// Counts the site's SMS in a shop's usage (`textMessages`), or no longer (`None`).
    /// The shop must be the site's partner's.
    pub async fn bill_to_shop(
        &self,
        site_id: u64,
        shop: Option<&crate::domain::ShopDomain>,
    ) -> Result<SmsSite, SmsError> {
        let shop = match shop {
            None => None,
            Some(domain) => {
                let id = AccountId::for_shop(domain);
                let account: Option<Account> = self
                    .uow
                    .table()
                    .get(&crate::store::keys::account(id))
                    .await?;
                let site = self.site(site_id).await?.ok_or(SmsError::UnknownSite)?;
                if account.is_none_or(|a| a.partner_id != site.partner_id) {
                    return Err(SmsError::invalid(
                        "shop",
                        ParseError::new("is not a shop of the site's partner"),
                    ));
                }
                Some(id)
            }
        };
        self.update_site(SiteToChange::Id(site_id), |site| {
            site.billed_shop = shop;
            Ok(())
        })
        .await
    }

    /// Sets (or with `None` removes) the template of an action type.
    pub async fn set_template(
        &self,
        site: impl Into<SiteToChange<'_>>,
        action: &str,
        template: Option<&str>,
    ) -> Result<SmsSite, SmsError> {
        let action = parse_action_type(action).map_err(|e| SmsError::invalid("action", e))?;
        let template = match template {
            None => None,
            Some(t) if t.trim().is_empty() || t.chars().count() > MAX_SMS_CHARS => {
                return Err(SmsError::invalid(
                    "template",
                    ParseError::new(format!("must be 1 to {MAX_SMS_CHARS} characters")),
                ));
            }
            Some(t) => Some(t.to_owned()),
        };
        self.update_site(site.into(), |site| {
            match &template {
                Some(t) => site.templates.insert(action.clone(), t.clone()),
                None => site.templates.remove(&action),
            };
            Ok(())
        })
        .await
    }

    /// The site's gateway tokens, opened (only where they are used).
    pub async fn open_tokens(&self, site: &SmsSite) -> Result<OpenTokens, SmsError> {
        let activation = site.activation.as_ref().ok_or(SmsError::NotActivated)?;
        Ok(OpenTokens {
            app_token: self.open_app_token(site).await?,
            messages_token: self
                .sealer
                .open(
                    &activation.messages_token_sealed,
                    &site.record_name(),
                    "messages_token",
                )
                .await?,
        })
    }

    /// The app's token alone (the subscriptions API): one KMS call, for the site's
    /// subscribe, eligibility and unsubscribe requests.
    pub async fn open_app_token(&self, site: &SmsSite) -> Result<String, SmsError> {
        let activation = site.activation.as_ref().ok_or(SmsError::NotActivated)?;
        Ok(self
            .sealer
            .open(
                &activation.app_token_sealed,
                &site.record_name(),
                "app_token",
            )
            .await?)
    }

    /// Whether a gateway notification carries the site's Standard Webhooks signature.
    pub async fn verify_webhook(
        &self,
        site: &SmsSite,
        headers: [Option<&str>; 3],
        body: &[u8],
    ) -> Result<bool, SmsError> {
        let Some(sealed) = &site.webhook_secret_sealed else {
            return Ok(false);
        };
        let secret = self
            .sealer
            .open(sealed, &site.record_name(), "webhook_secret")
            .await?;
        let [id, timestamp, signature] = headers;
        Ok(crate::webhooks::verify(
            &secret,
            id,
            timestamp,
            signature,
            body,
            clock::now().unix_timestamp(),
        )
        .is_ok())
    }

    pub async fn member(
        &self,
        site: &SmsSite,
        phone: &PhoneE164,
    ) -> Result<Option<SmsMember>, SmsError> {
        Ok(self
            .uow
            .table()
            .get(&keys::sms_member(site.account_id, phone.as_str()))
            .await?)
    }

    /// Records a member's subscription state (after the gateway answered); `email` and
    /// `time_zone` replace the stored ones when given.
    pub async fn set_member(
        &self,
        site: &SmsSite,
        phone: &PhoneE164,
        email: Option<String>,
        status: MemberStatus,
        eligible: Option<bool>,
        time_zone: Option<String>,
    ) -> Result<SmsMember, SmsError> {
        // One write, no read: the stored email and time zone stay when not given.
        let member = SmsMember::new(site, phone, email, status, eligible, time_zone);
        Ok(self.uow.table().merge(&member).await?)
    }

    /// Records the gateway's TEXT eligibility answer for the send job, in one write and
    /// no read: a known member keeps its status; one the hub did not know is recorded
    /// (as subscribed) only when TEXT is eligible. `None`: nothing recorded.
    pub async fn record_eligibility(
        &self,
        site: &SmsSite,
        phone: &PhoneE164,
        email: Option<String>,
        eligible: bool,
    ) -> Result<Option<SmsMember>, SmsError> {
        let member = SmsMember::new(
            site,
            phone,
            email,
            MemberStatus::Subscribed,
            Some(eligible),
            None,
        );
        Ok(self
            .uow
            .table()
            .merge_with(&member, &["status"], !eligible)
            .await?)
    }

    /// [`set_member`](Self::set_member) with the member already read (`previous`): one
    /// write, no read.
    #[allow(clippy::too_many_arguments)]
    pub async fn put_member(
        &self,
        site: &SmsSite,
        phone: &PhoneE164,
        previous: Option<&SmsMember>,
        email: Option<String>,
        status: MemberStatus,
        eligible: Option<bool>,
        time_zone: Option<String>,
    ) -> Result<SmsMember, SmsError> {
        let mut member = SmsMember::new(site, phone, email, status, eligible, time_zone);
        if let Some(previous) = previous {
            member.email = member.email.or_else(|| previous.email.clone());
            member.time_zone = member.time_zone.or_else(|| previous.time_zone.clone());
        }
        self.uow.table().put(&member).await?;
        Ok(member)
    }

    /// Accepts a loyalty action: one job per action id (the ledger answers a redelivery
    /// with the first answer; the same id with another body is refused). An action type
    /// without a template is recorded as skipped (`no_template`), never sent.
    pub async fn accept_action(
        &self,
        site: &SmsSite,
        action: &LoyaltyAction,
    ) -> Result<Applied<JobView>, SmsError> {
        let inbound = Inbound::new(
            format!("sms-action:{}", site.site_id),
            action.action_id.clone(),
            "sms.action",
            action.body_hash.clone(),
        );
        let now = clock::now();
        let at = clock::sortable(now);
        let template = site.templates.get(&action.action);
        let body = template
            .map(|t| render(t, &action.fields))
            .unwrap_or_default();
        let (status, reason) = match template {
            None => (JobStatus::Skipped, Some("no_template".to_owned())),
            Some(_) if body.trim().is_empty() => {
                (JobStatus::Skipped, Some("empty_text".to_owned()))
            }
            Some(_) if body.chars().count() > MAX_SMS_CHARS => {
                (JobStatus::Skipped, Some("text_too_long".to_owned()))
            }
            Some(_) => (JobStatus::Pending, None),
        };
        let job = SmsJob {
            account_id: site.account_id,
            partner_id: site.partner_id,
            site_id: site.site_id,
            action_id: action.action_id.clone(),
            action: action.action.clone(),
            member_id: action.member_id.clone(),
            phone: action.phone.clone(),
            email: action.email.clone(),
            time_zone: action.time_zone.clone(),
            body,
            status,
            reason,
            attempts: 0,
            due_at: (status == JobStatus::Pending).then(|| at.clone()),
            sent_at: None,
            gateway_answer: None,
            created_at: at.clone(),
            updated_at: at,
            revision: 1,
        };
        self.uow
            .apply_inbound(&inbound, Some(site.account_id), || async {
                let mut tx = Tx::new();
                tx.put_new(&job)?;
                Ok::<_, SmsError>(Planned::new(tx, job.view()))
            })
            .await
    }

    pub async fn job(&self, site: &SmsSite, action_id: &str) -> Result<Option<SmsJob>, SmsError> {
        Ok(self
            .uow
            .table()
            .get(&keys::sms_job(site.account_id, action_id))
            .await?)
    }

    /// A member's SMS jobs, oldest first (their SMS timeline).
    pub async fn member_jobs(
        &self,
        site: &SmsSite,
        phone: &PhoneE164,
    ) -> Result<Vec<SmsJob>, SmsError> {
        Ok(self
            .uow
            .table()
            .query_all(&Query::gsi1(keys::sms_member_jobs_gsi1pk(
                site.site_id,
                phone.as_str(),
            )))
            .await?)
    }

    /// Jobs parked for an operator, oldest first.
    pub async fn parked(&self) -> Result<Vec<SmsJob>, SmsError> {
        Ok(self
            .uow
            .table()
            .query_all(&Query::due(Due::SmsParked, "9999"))
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_tokens_are_base64_of_the_token_and_site_id() {
        let token = access_token("lt_abc", 100_001);
        assert_eq!(
            String::from_utf8(STANDARD.decode(&token).unwrap()).unwrap(),
            r#"["lt_abc","100001"]"#
        );
        assert_eq!(parse_access_token(&token), Some(("lt_abc".into(), 100_001)));
        let numeric = STANDARD.encode(r#"["lt_abc", 100001]"#);
        assert_eq!(
            parse_access_token(&numeric),
            Some(("lt_abc".into(), 100_001))
        );
        for bad in [
            "",
            "not base64!",
            &STANDARD.encode("{}"),
            &STANDARD.encode(r#"["a"]"#),
        ] {
            assert_eq!(parse_access_token(bad), None, "{bad}");
        }
    }

    #[test]
    fn templates_fill_placeholders_from_the_action() {
        let fields = serde_json::json!({"points": 120, "balance": 860, "tier": "Gold"});
        let fields = fields.as_object().unwrap();
        assert_eq!(
            render(
                "You earned {{points}} points ({{ balance }} in all), {{tier}}{{missing}}!",
                fields
            ),
            "You earned 120 points (860 in all), Gold!"
        );
        assert_eq!(render("unclosed {{points", fields), "unclosed {{points");
    }

    #[test]
    fn segments_count_gsm_and_unicode() {
        assert_eq!(segments("Hello check the test message please7"), 1);
        assert_eq!(segments(&"a".repeat(160)), 1);
        assert_eq!(segments(&"a".repeat(161)), 2);
        assert_eq!(segments(&"€".repeat(80)), 1);
        assert_eq!(segments(&"€".repeat(81)), 2);
        assert_eq!(segments(&"ă".repeat(70)), 1);
        assert_eq!(segments(&"ă".repeat(71)), 2);
    }

    #[test]
    fn actions_parse_or_name_the_field() {
        let us = CountryCode::parse("US").unwrap();
        let good = serde_json::json!({"actionId": "a-1", "memberId": "m-9", "email": "test@gmail.com",
            "phone": "7707651750", "action": "points_earned", "points": 50, "balance": 300,
            "occurredAt": "2026-11-24T10:00:00Z", "timeZone": "America/New_York"});
        let action = LoyaltyAction::parse(&good, us).unwrap();
        assert_eq!(action.phone.as_str(), "+17707651750");
        for (field, bad) in [
            (
                "actionId",
                serde_json::json!({"action": "x", "phone": "7707651750"}),
            ),
            (
                "phone",
                serde_json::json!({"actionId": "a", "action": "x", "phone": "12"}),
            ),
            (
                "action",
                serde_json::json!({"actionId": "a", "action": "has space", "phone": "7707651750"}),
            ),
            (
                "timeZone",
                serde_json::json!({"actionId": "a", "action": "x", "phone": "7707651750", "timeZone": "Nowhere"}),
            ),
            (
                "points",
                serde_json::json!({"actionId": "a", "action": "x", "phone": "7707651750", "points": "many"}),
            ),
            (
                "occurredAt",
                serde_json::json!({"actionId": "a", "action": "x", "phone": "7707651750", "occurredAt": "yesterday"}),
            ),
        ] {
            match LoyaltyAction::parse(&bad, us) {
                Err(SmsError::Invalid { field: f, .. }) => assert_eq!(f, field, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
