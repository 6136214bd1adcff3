//! The subscription lifecycle a partner drives over EventBridge
//! (`subscription-events-eventbridge.md`): Create Subscription provisions (or upgrades)
//! a customer's account, QA approval answers with Ready for Installation on the
//! partner's bus, and Cancellation stops the account at once and deletes its data once
//! the effective date has passed, leaving a tombstone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{
    accounts::{Account, AccountKind, BillingOwner, account_keys},
    clock,
    domain::{AccountId, AccountStatus, ExternalId, ParseError, PartnerId},
    events::{EventError, HubEvent, Outbox},
    partners::PartnerRoute,
    secrets::random_token,
    store::{Keys, Query, Record, StoreError, Table},
};

/// `detail-type`s of the contract's events.
pub const CREATE_SUBSCRIPTION: &str = "Create Subscription";
pub const READY_FOR_INSTALLATION: &str = "Ready for Installation";
pub const CANCELLATION: &str = "Cancellation";

/// Hub events of this lifecycle.
pub const SUBSCRIPTION_CREATED: &str = "subscription.created";
pub const SUBSCRIPTION_UPGRADED: &str = "subscription.upgraded";
pub const INSTALLATION_READY: &str = "installation.ready";
pub const SUBSCRIPTION_CANCELLED: &str = "subscription.cancelled";
pub const ACCOUNT_DELETED: &str = "account.deleted";

const DUE_KIND_CLEANUP: &str = "CLEANUP";
/// How long the ledger remembers an envelope id (EventBridge retries for at most 24 h).
const LEDGER_TTL_SECONDS: i64 = 7 * 86_400;

#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    /// The event can never be processed as sent: park it.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("no customer {0} for this partner")]
    UnknownCustomer(String),
    #[error("no account {0}")]
    UnknownAccount(AccountId),
    #[error("the account is cancelled")]
    Cancelled,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Event(#[from] EventError),
}

impl SubscriptionError {
    /// Whether retrying could help (storage or the bus), as opposed to bad input.
    pub fn is_transient(&self) -> bool {
        match self {
            SubscriptionError::Store(e) => e.is_transient(),
            SubscriptionError::Event(_) => true,
            _ => false,
        }
    }

    fn invalid(field: &'static str, err: impl std::fmt::Display) -> Self {
        SubscriptionError::Invalid {
            field,
            message: err.to_string(),
        }
    }
}

/// Which products each tier gets. Configurable with `TIER_PRODUCTS` (a JSON object of
/// tier -> product list); the default is [`TierCatalog::default`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierCatalog(pub BTreeMap<String, Vec<String>>);

impl Default for TierCatalog {
    fn default() -> Self {
        let tier = |products: &[&str]| products.iter().map(|p| (*p).to_owned()).collect();
        Self(BTreeMap::from([
            ("starter".to_owned(), tier(&["widget"])),
            ("growth".to_owned(), tier(&["widget", "search"])),
            (
                "enterprise".to_owned(),
                tier(&["widget", "search", "lead_capture", "scheduling"]),
            ),
        ]))
    }
}

impl TierCatalog {
    pub fn from_json(text: &str) -> Result<Self, String> {
        let catalog: BTreeMap<String, Vec<String>> = serde_json::from_str(text)
            .map_err(|e| format!("TIER_PRODUCTS is not a JSON object of lists: {e}"))?;
        if catalog.is_empty() {
            return Err("TIER_PRODUCTS names no tier".into());
        }
        Ok(Self(catalog))
    }

    pub fn products(&self, tier: &str) -> Option<&[String]> {
        self.0.get(tier).map(Vec::as_slice)
    }
}

/// The Create Subscription detail, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSubscription {
    pub customer: ExternalId,
    pub tier: String,
    pub contract_length_months: u32,
    pub website: String,
    pub template: String,
    pub company_name: String,
}

#[derive(Debug, Deserialize)]
struct CreateSubscriptionWire {
    tier: Option<serde_json::Value>,
    contract_length: Option<serde_json::Value>,
    id: Option<serde_json::Value>,
    website: Option<serde_json::Value>,
    template: Option<serde_json::Value>,
    company_name: Option<serde_json::Value>,
}

fn text_field(
    field: &'static str,
    value: Option<serde_json::Value>,
) -> Result<String, SubscriptionError> {
    match value {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        Some(serde_json::Value::String(_)) => {
            Err(SubscriptionError::invalid(field, "must not be empty"))
        }
        None | Some(serde_json::Value::Null) => {
            Err(SubscriptionError::invalid(field, "is required"))
        }
        Some(_) => Err(SubscriptionError::invalid(field, "must be a string")),
    }
}

/// A website as the contract sends it: an absolute http(s) URL with a host.
pub fn parse_website(value: &str) -> Result<String, ParseError> {
    let url =
        url::Url::parse(value.trim()).map_err(|e| ParseError(format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ParseError("must be an http or https URL".into()));
    }
    match url.host_str() {
        Some(host) if host.contains('.') => Ok(url.to_string()),
        _ => Err(ParseError("must name a public host".into())),
    }
}

impl CreateSubscription {
    pub fn parse(
        detail: &serde_json::Value,
        catalog: &TierCatalog,
    ) -> Result<Self, SubscriptionError> {
        let wire: CreateSubscriptionWire = serde_json::from_value(detail.clone())
            .map_err(|e| SubscriptionError::invalid("detail", format!("is not an object: {e}")))?;
        let customer = ExternalId::parse(&text_field("id", wire.id)?)
            .map_err(|e| SubscriptionError::invalid("id", e))?;
        let tier = text_field("tier", wire.tier)?;
        if catalog.products(&tier).is_none() {
            let known: Vec<&str> = catalog.0.keys().map(String::as_str).collect();
            return Err(SubscriptionError::invalid(
                "tier",
                format!("unknown tier '{tier}' (known: {})", known.join(", ")),
            ));
        }
        let contract_length_months = match wire.contract_length {
            Some(serde_json::Value::Number(n)) => n
                .as_u64()
                .filter(|m| (1..=120).contains(m))
                .map(|m| m as u32)
                .ok_or_else(|| {
                    SubscriptionError::invalid(
                        "contract_length",
                        "must be a whole number of months, 1 to 120",
                    )
                })?,
            None | Some(serde_json::Value::Null) => {
                return Err(SubscriptionError::invalid("contract_length", "is required"));
            }
            Some(_) => {
                return Err(SubscriptionError::invalid(
                    "contract_length",
                    "must be a number of months",
                ));
            }
        };
        let website = parse_website(&text_field("website", wire.website)?)
            .map_err(|e| SubscriptionError::invalid("website", e))?;
        Ok(Self {
            customer,
            tier,
            contract_length_months,
            website,
            template: text_field("template", wire.template)?,
            company_name: text_field("company_name", wire.company_name)?,
        })
    }
}

/// The Cancellation detail, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelSubscription {
    pub customer: ExternalId,
    pub effective_date: OffsetDateTime,
}

impl CancelSubscription {
    pub fn parse(detail: &serde_json::Value) -> Result<Self, SubscriptionError> {
        let customer = ExternalId::parse(&text_field("id", detail.get("id").cloned())?)
            .map_err(|e| SubscriptionError::invalid("id", e))?;
        let raw = text_field("effective_date", detail.get("effective_date").cloned())?;
        let effective_date = parse_iso8601(&raw).ok_or_else(|| {
            SubscriptionError::invalid(
                "effective_date",
                format!("'{raw}' is not an ISO-8601 date or date-time"),
            )
        })?;
        Ok(Self {
            customer,
            effective_date,
        })
    }
}

/// ISO-8601 as partners send it: a full RFC 3339 date-time (any offset), or a date
/// (midnight UTC).
pub fn parse_iso8601(value: &str) -> Option<OffsetDateTime> {
    if let Some(at) = clock::parse_rfc3339(value) {
        return Some(at);
    }
    let date = time::Date::parse(
        value,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    Some(date.midnight().assume_utc())
}

/// A customer's plan: what the partner bought, the installation keys, QA and
/// cancellation state. Kept beside the account record (`SK=PLAN`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerPlan {
    pub account_id: AccountId,
    pub partner_id: PartnerId,
    pub external_id: ExternalId,
    pub tier: String,
    pub products: Vec<String>,
    pub contract_length_months: u32,
    pub website: String,
    pub template: String,
    pub company_name: String,
    /// Public keys the installed widget and search carry (they are in the page).
    pub widget_key: String,
    pub search_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation: Option<CancellationFacts>,
    /// Optimistic-concurrency counter: every write expects the revision it read.
    pub revision: u64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancellationFacts {
    pub effective_date: String,
    pub received_at: String,
}

impl Record for CustomerPlan {
    fn keys(&self) -> Keys {
        plan_keys(self.account_id)
    }
}

pub fn plan_keys(account: AccountId) -> Keys {
    Keys::new(format!("ACCOUNT#{account}"), "PLAN")
}

impl CustomerPlan {
    pub fn has(&self, product: &str) -> bool {
        self.products.iter().any(|p| p == product)
    }
}

/// Finds an account by a widget or search key (the ingestion route's credential).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WidgetKeyRecord {
    pub key: String,
    pub account_id: AccountId,
    pub partner_id: PartnerId,
}

impl Record for WidgetKeyRecord {
    fn keys(&self) -> Keys {
        widget_key_keys(&self.key)
    }
}

pub fn widget_key_keys(key: &str) -> Keys {
    Keys::new(format!("WIDGET_KEY#{key}"), "WIDGET_KEY")
}

/// The idempotency ledger: an envelope id the hub already processed.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SeenEvent {
    partner_id: PartnerId,
    envelope_id: String,
    detail_type: String,
    received_at: String,
    expires_at: i64,
}

impl Record for SeenEvent {
    fn keys(&self) -> Keys {
        Keys::new(
            format!("PARTNER_EVENT#{}#{}", self.partner_id, self.envelope_id),
            "EVENT",
        )
    }
}

/// Work due: delete a cancelled account's data once its effective date passed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CleanupJob {
    pub account_id: AccountId,
    pub due_at: String,
}

impl Record for CleanupJob {
    fn keys(&self) -> Keys {
        Keys::new(format!("CLEANUP#{}", self.account_id), "CLEANUP")
            .due(DUE_KIND_CLEANUP, self.due_at.clone())
    }
}

/// What remains of a deleted account: the cancellation facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    pub account_id: AccountId,
    pub partner_id: PartnerId,
    pub external_id: ExternalId,
    pub tier: String,
    pub effective_date: String,
    pub cancellation_received_at: String,
    pub deleted_at: String,
    pub items_deleted: usize,
}

impl Record for Tombstone {
    fn keys(&self) -> Keys {
        Keys::new(format!("TOMBSTONE#{}", self.account_id), "TOMBSTONE")
    }
}

/// What a handled event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Upgraded,
    Unchanged,
    /// The same envelope id was processed before.
    Redelivered,
    Cancelled,
}

/// The Ready for Installation detail the hub sends to the partner's bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyForInstallation {
    pub id: String,
    pub widget_snippet: String,
    pub widget_key: String,
    pub search_snippet: String,
    pub search_key: String,
}

impl ReadyForInstallation {
    /// Installable script tags that load the hub's widget script with their key.
    pub fn for_plan(plan: &CustomerPlan, public_base_url: &str) -> Self {
        let base = public_base_url.trim_end_matches('/');
        let tag = |channel: &str, key: &str| {
            format!(
                r#"<script async src="{base}/widget.js" data-channel="{channel}" data-key="{key}" data-endpoint="{base}/api/v0/widget/events"></script>"#
            )
        };
        let search = plan.has("search");
        Self {
            id: plan.external_id.as_str().to_owned(),
            widget_snippet: tag("widget", &plan.widget_key),
            widget_key: plan.widget_key.clone(),
            search_snippet: if search {
                tag("search", &plan.search_key)
            } else {
                String::new()
            },
            search_key: if search {
                plan.search_key.clone()
            } else {
                String::new()
            },
        }
    }
}

#[derive(Clone, Debug)]
pub struct Subscriptions {
    table: Table,
    outbox: Outbox,
    catalog: TierCatalog,
    auto_approve: bool,
}

/// A report of one cleanup run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CleanupReport {
    pub due: usize,
    pub deleted_accounts: usize,
}

impl Subscriptions {
    pub fn new(table: Table, outbox: Outbox, catalog: TierCatalog, auto_approve: bool) -> Self {
        Self {
            table,
            outbox,
            catalog,
            auto_approve,
        }
    }

    pub fn catalog(&self) -> &TierCatalog {
        &self.catalog
    }

    pub async fn plan(
        &self,
        account: AccountId,
    ) -> Result<Option<CustomerPlan>, SubscriptionError> {
        Ok(self.table.get(&plan_keys(account)).await?)
    }

    pub async fn widget_key(
        &self,
        key: &str,
    ) -> Result<Option<WidgetKeyRecord>, SubscriptionError> {
        Ok(self.table.get(&widget_key_keys(key)).await?)
    }

    pub async fn tombstone(
        &self,
        account: AccountId,
    ) -> Result<Option<Tombstone>, SubscriptionError> {
        Ok(self
            .table
            .get(&Keys::new(format!("TOMBSTONE#{account}"), "TOMBSTONE"))
            .await?)
    }

    fn ledger(route: &PartnerRoute, envelope_id: &str, detail_type: &str) -> SeenEvent {
        let now = clock::now();
        SeenEvent {
            partner_id: route.partner_id,
            envelope_id: envelope_id.to_owned(),
            detail_type: detail_type.to_owned(),
            received_at: clock::sortable(now),
            expires_at: now.unix_timestamp() + LEDGER_TTL_SECONDS,
        }
    }

    /// Runs a transaction whose last write is the ledger entry; a lost ledger condition
    /// means this envelope was processed already.
    async fn commit(
        &self,
        mut writes: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
        ledger: &SeenEvent,
        events: &[HubEvent],
    ) -> Result<bool, SubscriptionError> {
        let mut staged = Vec::new();
        for event in events {
            let (record, write) = self.outbox.stage(event)?;
            staged.push(record);
            writes.push(write);
        }
        let ledger_index = writes.len();
        writes.push(self.table.put_in_transaction(ledger, true)?);
        match self.table.transact(writes).await {
            Ok(()) => {
                self.outbox.publish_committed(&staged).await;
                Ok(true)
            }
            Err(StoreError::TransactionConditionFailed { index }) if index == ledger_index => {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Create Subscription: a new customer is provisioned, a known one with another tier
    /// upgraded; a redelivered envelope changes nothing.
    pub async fn create_or_upgrade(
        &self,
        route: &PartnerRoute,
        envelope_id: &str,
        request: CreateSubscription,
    ) -> Result<Outcome, SubscriptionError> {
        let account_id = AccountId::for_external(route.partner_id, &request.customer);
        let ledger = Self::ledger(route, envelope_id, CREATE_SUBSCRIPTION);
        let products = self
            .catalog
            .products(&request.tier)
            .unwrap_or_default()
            .to_vec();
        let now = clock::sortable(clock::now());
        let existing: Option<CustomerPlan> = self.table.get(&plan_keys(account_id)).await?;
        let account: Option<Account> = self.table.get(&account_keys(account_id)).await?;
        let event_data = |tier: &str, products: &[String]| serde_json::json!({"customerId": request.customer, "tier": tier, "products": products, "website": request.website});

        match (existing, account) {
            (Some(plan), Some(account)) if account.status != AccountStatus::Cancelled => {
                if plan.tier == request.tier {
                    let done = self.commit(Vec::new(), &ledger, &[]).await?;
                    return Ok(if done {
                        Outcome::Unchanged
                    } else {
                        Outcome::Redelivered
                    });
                }
                let previous_tier = plan.tier.clone();
                let upgraded = CustomerPlan {
                    tier: request.tier.clone(),
                    products: products.clone(),
                    contract_length_months: request.contract_length_months,
                    website: request.website.clone(),
                    template: request.template.clone(),
                    company_name: request.company_name.clone(),
                    revision: plan.revision + 1,
                    updated_at: now,
                    ..plan.clone()
                };
                let mut data = event_data(&request.tier, &products);
                data["previousTier"] = previous_tier.into();
                let event = HubEvent::new(SUBSCRIPTION_UPGRADED, data)
                    .for_account(account_id, route.partner_id);
                let writes = vec![
                    self.table
                        .put_revision_in_transaction(&upgraded, Some(plan.revision))?,
                ];
                let done = self.commit(writes, &ledger, &[event]).await?;
                Ok(if done {
                    Outcome::Upgraded
                } else {
                    Outcome::Redelivered
                })
            }
            (_, Some(account)) if account.status != AccountStatus::Cancelled => {
                Err(SubscriptionError::invalid(
                    "id",
                    "this customer's account was not provisioned by a subscription",
                ))
            }
            // Cancelled, data not yet deleted: a new subscription waits for the cleanup.
            (_, Some(_)) => Err(SubscriptionError::Cancelled),
            (_, None) => {
                // New customer (or one whose earlier account was cancelled and deleted).
                let approved_at = self.auto_approve.then(|| now.clone());
                let plan = CustomerPlan {
                    account_id,
                    partner_id: route.partner_id,
                    external_id: request.customer.clone(),
                    tier: request.tier.clone(),
                    products: products.clone(),
                    contract_length_months: request.contract_length_months,
                    website: request.website.clone(),
                    template: request.template.clone(),
                    company_name: request.company_name.clone(),
                    widget_key: random_token("wk_"),
                    search_key: random_token("sk_pub_"),
                    approved_at: approved_at.clone(),
                    cancellation: None,
                    revision: 1,
                    created_at: now.clone(),
                    updated_at: now.clone(),
                };
                let account = Account {
                    id: account_id,
                    partner_id: route.partner_id,
                    kind: AccountKind::Customer,
                    external_id: request.customer.clone(),
                    status: if approved_at.is_some() {
                        AccountStatus::Active
                    } else {
                        AccountStatus::Provisioning
                    },
                    shop: None,
                    credentials: None,
                    billing: BillingOwner::Partner,
                    pages: Vec::new(),
                    created_at: now.clone(),
                    updated_at: now.clone(),
                };
                let mut events = vec![
                    HubEvent::new(
                        crate::accounts::ACCOUNT_PROVISIONED,
                        serde_json::json!({"kind": "customer", "externalId": request.customer, "status": account.status, "name": request.company_name}),
                    )
                    .for_account(account_id, route.partner_id),
                    HubEvent::new(SUBSCRIPTION_CREATED, event_data(&request.tier, &products))
                        .for_account(account_id, route.partner_id),
                ];
                if approved_at.is_some() {
                    events.push(ready_event(&plan));
                }
                let writes = vec![
                    self.table.put_in_transaction(&account, true)?,
                    self.table.put_revision_in_transaction(&plan, None)?,
                    self.table.put_in_transaction(
                        &WidgetKeyRecord {
                            key: plan.widget_key.clone(),
                            account_id,
                            partner_id: route.partner_id,
                        },
                        true,
                    )?,
                    self.table.put_in_transaction(
                        &WidgetKeyRecord {
                            key: plan.search_key.clone(),
                            account_id,
                            partner_id: route.partner_id,
                        },
                        true,
                    )?,
                ];
                match self.commit(writes, &ledger, &events).await {
                    Ok(true) => Ok(Outcome::Created),
                    Ok(false) => Ok(Outcome::Redelivered),
                    // A concurrent Create for the same customer won: let the retry see it.
                    Err(SubscriptionError::Store(StoreError::TransactionConditionFailed {
                        ..
                    })) => Err(StoreError::TransactionConflict.into()),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// QA passed: the account goes live and Ready for Installation is sent (once).
    pub async fn approve(&self, account_id: AccountId) -> Result<bool, SubscriptionError> {
        let plan = self
            .plan(account_id)
            .await?
            .ok_or(SubscriptionError::UnknownAccount(account_id))?;
        let mut account: Account = self
            .table
            .get(&account_keys(account_id))
            .await?
            .ok_or(SubscriptionError::UnknownAccount(account_id))?;
        if account.status == AccountStatus::Cancelled {
            return Err(SubscriptionError::Cancelled);
        }
        if plan.approved_at.is_some() {
            return Ok(false);
        }
        let now = clock::sortable(clock::now());
        let approved = CustomerPlan {
            approved_at: Some(now.clone()),
            revision: plan.revision + 1,
            updated_at: now.clone(),
            ..plan.clone()
        };
        account.status = AccountStatus::Active;
        account.updated_at = now;
        let event = ready_event(&approved);
        let (staged, stage) = self.outbox.stage(&event)?;
        let writes = vec![
            self.table
                .put_revision_in_transaction(&approved, Some(plan.revision))?,
            self.table.put_in_transaction(&account, false)?,
            stage,
        ];
        self.table.transact(writes).await?;
        self.outbox.publish_committed(&[staged]).await;
        Ok(true)
    }

    /// Cancellation: the account stops at once; its data is deleted once the effective
    /// date passed (at once when it already has).
    pub async fn cancel(
        &self,
        route: &PartnerRoute,
        envelope_id: &str,
        request: CancelSubscription,
    ) -> Result<Outcome, SubscriptionError> {
        let account_id = AccountId::for_external(route.partner_id, &request.customer);
        let plan = self
            .plan(account_id)
            .await?
            .ok_or_else(|| SubscriptionError::UnknownCustomer(request.customer.to_string()))?;
        let mut account: Account = self
            .table
            .get(&account_keys(account_id))
            .await?
            .ok_or_else(|| SubscriptionError::UnknownCustomer(request.customer.to_string()))?;
        let ledger = Self::ledger(route, envelope_id, CANCELLATION);
        let now = clock::now();
        let effective = clock::sortable(request.effective_date);
        let cancelled = CustomerPlan {
            cancellation: Some(CancellationFacts {
                effective_date: effective.clone(),
                received_at: clock::sortable(now),
            }),
            revision: plan.revision + 1,
            updated_at: clock::sortable(now),
            ..plan.clone()
        };
        account.status = AccountStatus::Cancelled;
        account.updated_at = clock::sortable(now);
        let event = HubEvent::new(
            SUBSCRIPTION_CANCELLED,
            serde_json::json!({"customerId": request.customer, "effectiveDate": effective}),
        )
        .for_account(account_id, route.partner_id);
        // Removing the keys stops the widget's reports at once.
        let writes = vec![
            self.table
                .put_revision_in_transaction(&cancelled, Some(plan.revision))?,
            self.table.put_in_transaction(&account, false)?,
            self.table.put_in_transaction(
                &CleanupJob {
                    account_id,
                    due_at: effective,
                },
                false,
            )?,
            self.table
                .delete_in_transaction(&widget_key_keys(&plan.widget_key))?,
            self.table
                .delete_in_transaction(&widget_key_keys(&plan.search_key))?,
        ];
        if !self.commit(writes, &ledger, &[event]).await? {
            return Ok(Outcome::Redelivered);
        }
        if request.effective_date <= now {
            self.delete_account_data(account_id, now).await?;
        }
        Ok(Outcome::Cancelled)
    }

    /// Deletes the data of every cancelled account whose effective date has passed.
    pub async fn cleanup_due(
        &self,
        now: OffsetDateTime,
    ) -> Result<CleanupReport, SubscriptionError> {
        let due: Vec<CleanupJob> = self
            .table
            .query_all(&Query::due(DUE_KIND_CLEANUP, clock::sortable(now)))
            .await?;
        let mut report = CleanupReport {
            due: due.len(),
            deleted_accounts: 0,
        };
        for job in due {
            if self.delete_account_data(job.account_id, now).await? {
                report.deleted_accounts += 1;
            }
        }
        Ok(report)
    }

    /// Deletes everything stored for the account and leaves a tombstone.
    async fn delete_account_data(
        &self,
        account_id: AccountId,
        now: OffsetDateTime,
    ) -> Result<bool, SubscriptionError> {
        let job_keys = CleanupJob {
            account_id,
            due_at: String::new(),
        }
        .keys();
        let Some(plan) = self.plan(account_id).await? else {
            // Already deleted (a repeated run): just clear the job.
            self.table.delete(&job_keys).await?;
            return Ok(false);
        };
        let cancellation = plan.cancellation.clone().unwrap_or(CancellationFacts {
            effective_date: clock::sortable(now),
            received_at: clock::sortable(now),
        });
        for key in [&plan.widget_key, &plan.search_key] {
            self.table.delete(&widget_key_keys(key)).await?;
        }
        let mut deleted =
            crate::analytics::delete_account_analytics(&self.table, account_id).await?;
        deleted += self
            .table
            .delete_partition(&format!("ACCOUNT#{account_id}"))
            .await?;
        let tombstone = Tombstone {
            account_id,
            partner_id: plan.partner_id,
            external_id: plan.external_id.clone(),
            tier: plan.tier.clone(),
            effective_date: cancellation.effective_date,
            cancellation_received_at: cancellation.received_at,
            deleted_at: clock::sortable(now),
            items_deleted: deleted,
        };
        let event = HubEvent::new(
            ACCOUNT_DELETED,
            serde_json::json!({"customerId": plan.external_id, "itemsDeleted": deleted}),
        )
        .for_account(account_id, plan.partner_id);
        let (staged, stage) = self.outbox.stage(&event)?;
        self.table
            .transact(vec![
                self.table.put_in_transaction(&tombstone, false)?,
                self.table.delete_in_transaction(&job_keys)?,
                stage,
            ])
            .await?;
        self.outbox.publish_committed(&[staged]).await;
        Ok(true)
    }
}

fn ready_event(plan: &CustomerPlan) -> HubEvent {
    HubEvent::new(
        INSTALLATION_READY,
        serde_json::json!({"customerId": plan.external_id}),
    )
    .for_account(plan.account_id, plan.partner_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> serde_json::Value {
        json!({"tier": "growth", "contract_length": 12, "id": "cust-1", "website": "https://customer-site.com",
               "template": "existing_or_custom_template", "company_name": "Customer Name"})
    }

    #[test]
    fn parses_the_contract_sample() {
        let parsed = CreateSubscription::parse(&sample(), &TierCatalog::default()).unwrap();
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
            match CreateSubscription::parse(&detail, &catalog) {
                Err(SubscriptionError::Invalid { field: f, .. }) => assert_eq!(f, field, "{value}"),
                other => panic!("{field}={value}: {other:?}"),
            }
        }
        assert!(CreateSubscription::parse(&json!([1]), &catalog).is_err());
    }

    #[test]
    fn effective_dates_are_iso_8601_with_any_offset() {
        let c = CancelSubscription::parse(
            &json!({"id": "c", "effective_date": "2026-12-01T00:00:00-05:00"}),
        )
        .unwrap();
        assert_eq!(
            clock::sortable(c.effective_date),
            "2026-12-01T05:00:00.000000Z"
        );
        let d =
            CancelSubscription::parse(&json!({"id": "c", "effective_date": "2026-12-01"})).unwrap();
        assert_eq!(
            clock::sortable(d.effective_date),
            "2026-12-01T00:00:00.000000Z"
        );
        assert!(
            CancelSubscription::parse(&json!({"id": "c", "effective_date": "next week"})).is_err()
        );
        assert!(CancelSubscription::parse(&json!({"id": "c"})).is_err());
    }

    #[test]
    fn tier_catalog_is_configurable() {
        let catalog = TierCatalog::from_json(r#"{"basic": ["widget"]}"#).unwrap();
        assert_eq!(catalog.products("basic").unwrap(), ["widget"]);
        assert!(TierCatalog::from_json("{}").is_err());
        assert!(TierCatalog::from_json("[]").is_err());
    }

    #[test]
    fn snippets_are_script_tags_carrying_their_keys() {
        let plan = CustomerPlan {
            account_id: AccountId::random(),
            partner_id: PartnerId::random(),
            external_id: ExternalId::parse("cust-1").unwrap(),
            tier: "starter".into(),
            products: vec!["widget".into()],
            contract_length_months: 1,
            website: "https://a.com/".into(),
            template: "t".into(),
            company_name: "A".into(),
            widget_key: "wk_1".into(),
            search_key: "sk_pub_1".into(),
            approved_at: None,
            cancellation: None,
            revision: 1,
            created_at: String::new(),
            updated_at: String::new(),
        };
        let ready = ReadyForInstallation::for_plan(&plan, "https://hub.example/");
        assert!(ready.widget_snippet.starts_with("<script"));
        assert!(ready.widget_snippet.contains(r#"data-key="wk_1""#));
        assert!(
            ready
                .widget_snippet
                .contains(r#"src="https://hub.example/widget.js""#)
        );
        assert_eq!(ready.search_key, "", "starter has no search");
        let growth = CustomerPlan {
            products: vec!["widget".into(), "search".into()],
            ..plan
        };
        let ready = ReadyForInstallation::for_plan(&growth, "https://hub.example");
        assert!(ready.search_snippet.contains(r#"data-key="sk_pub_1""#));
    }
}
