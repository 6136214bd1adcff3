//! Marketplace webhooks (`marketplace-webhooks.txt`): the hub is the service partner and
//! a marketplace (a `Partner` of kind `Marketplace`) posts its users' lifecycle events.
//!
//! - a marketplace user is a `Customer` account of the marketplace (id derived from the
//!   marketplace and its user id, so creation is a conditional put), billed by the
//!   marketplace; its personal data lives in a separate profile record so that erasure
//!   is one overwrite;
//! - a purchase is a subscription record under the account, id derived from the account
//!   and the marketplace's product id;
//! - every change, the hub events it causes (outbox) and the idempotency ledger entry
//!   are one transaction; a redelivered event id answers the stored response.
//!
//! Keys (each access pattern one request):
//!
//! | access pattern                         | key                                                   |
//! |----------------------------------------|-------------------------------------------------------|
//! | a marketplace user's personal data     | `PK=ACCOUNT#<id>`, `SK=PROFILE`                       |
//! | a subscription by account + product    | `PK=ACCOUNT#<id>`, `SK=SUBSCRIPTION#<subscription id>` |
//! | an account's subscriptions             | `PK=ACCOUNT#<id>`, `SK` begins with `SUBSCRIPTION#`   |
//! | suspensions that are due               | sparse `DueIndex` `DuePK=SUSPENSION`, `DueAt<=now`    |
//! | a marketplace event id (ledger)        | `PK=MARKETPLACE_EVENT#<marketplace id>#<event id>`, `SK=EVENT` |

pub mod wire;

use std::{fmt, time::Duration};

use aws_sdk_dynamodb::types::TransactWriteItem;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

pub use wire::{
    EventType, MarketplaceEvent, Payload, Price, ProductInfo, UserProfile, WebIdentity,
    canonical_hash,
};

use crate::{
    accounts::{Account, AccountKind, BillingOwner, account_keys},
    clock,
    domain::{AccountId, AccountStatus, ExternalId, PartnerId},
    events::{EventError, HubEvent, Outbox},
    partners::Partner,
    store::{Keys, Query, Record, StoreError, Table},
};

/// The kind of due work a failed payment schedules (sparse `DueIndex`).
pub const DUE_KIND_SUSPENSION: &str = "SUSPENSION";

pub const CUSTOMER_CREATED: &str = "customer.created";
pub const CUSTOMER_UPDATED: &str = "customer.updated";
pub const CUSTOMER_ERASED: &str = "customer.erased";
pub const SUBSCRIPTION_PURCHASED: &str = "subscription.purchased";
pub const SUBSCRIPTION_CANCELLED: &str = "subscription.cancelled";
pub const SUBSCRIPTION_PAYMENT_FAILED: &str = "subscription.payment_failed";
pub const SUBSCRIPTION_RESUMED: &str = "subscription.resumed";
pub const SUBSCRIPTION_SUSPENDED: &str = "subscription.suspended";

/// How often a change retries after losing a race (a revision check or a conflict).
const CONFLICT_RETRIES: usize = 5;

/// Namespace of the deterministic subscription ids (UUIDv5).
const SUBSCRIPTION_NAMESPACE: Uuid = Uuid::from_u128(0x8f3c_51d2_6b0e_4a9f_b7c4_1e2d_9a60_f35b);

#[derive(Debug, thiserror::Error)]
pub enum MarketplaceError {
    #[error("the request body is not JSON: {0}")]
    MalformedJson(String),
    #[error("the request body does not have the event envelope's shape: {0}")]
    InvalidBody(String),
    #[error("{0} is required")]
    MissingField(String),
    #[error("{message}")]
    InvalidField { field: String, message: String },
    #[error("unknown event type {0}")]
    UnknownEventType(String),
    #[error("user.partnerId {got} is not this user's hub id {expected}")]
    UserPartnerIdMismatch { expected: String, got: String },
    #[error("data.product.partnerId {got} is not this product's hub id {expected}")]
    ProductPartnerIdMismatch { expected: String, got: String },
    #[error("the user {0} is not known to the hub: send user.create first")]
    UnknownUser(String),
    #[error("the user has not purchased the product {0}: send product.purchase first")]
    UnknownProduct(String),
    #[error("the user {0} was deleted; its personal data is erased")]
    UserDeleted(String),
    #[error("the subscription to the product {0} is cancelled")]
    SubscriptionCancelled(String),
    #[error("the event id {0} was already used for a different event")]
    EventIdReused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Event(#[from] EventError),
}

/// A subscription's id: derived from the account and the marketplace's product id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SubscriptionId(Uuid);

impl SubscriptionId {
    pub fn for_product(account: AccountId, product: &ExternalId) -> Self {
        Self(Uuid::new_v5(
            &SUBSCRIPTION_NAMESPACE,
            format!("marketplace-product:{account}:{}", product.as_str()).as_bytes(),
        ))
    }

    /// The hub's product id as the marketplace sees it: `p-<id without dashes>`.
    pub fn partner_id(&self) -> String {
        format!("p-{}", self.0.simple())
    }
}

impl fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The hub's user id as the marketplace sees it: `u-<account id without dashes>`.
pub fn user_partner_id(account: AccountId) -> String {
    format!("u-{}", account.as_uuid().simple())
}

/// A marketplace user's personal data; `profile: None` with `erased_at` is the
/// anonymized tombstone `user.delete` leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerProfile {
    pub account_id: AccountId,
    pub marketplace_id: PartnerId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<UserProfile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased_at: Option<String>,
    pub updated_at: String,
    pub revision: u64,
}

impl Record for CustomerProfile {
    fn keys(&self) -> Keys {
        profile_keys(self.account_id)
    }
}

pub fn profile_keys(account: AccountId) -> Keys {
    Keys::new(format!("ACCOUNT#{account}"), "PROFILE")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// Delivered.
    Active,
    /// The marketplace could not collect payment; still delivered until `suspend_at`.
    PaymentFailed,
    /// Access stopped for non-payment; `product.resume` restores it.
    Suspended,
    Cancelled,
}

/// A product a marketplace user purchased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub account_id: AccountId,
    pub marketplace_id: PartnerId,
    /// The marketplace's product id.
    pub product_id: ExternalId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Exact decimal text, as the marketplace sent it.
    pub price: Price,
    pub price_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_interval: Option<String>,
    pub status: SubscriptionStatus,
    pub purchased_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_failed_at: Option<String>,
    /// When access stops unless payment resumes first (due while `payment_failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<String>,
    pub updated_at: String,
    pub revision: u64,
}

impl Record for Subscription {
    fn keys(&self) -> Keys {
        let keys = subscription_keys(self.account_id, self.id);
        match (&self.status, &self.suspend_at) {
            (SubscriptionStatus::PaymentFailed, Some(at)) => {
                keys.due(DUE_KIND_SUSPENSION, at.clone())
            }
            _ => keys,
        }
    }
}

impl Subscription {
    /// Whether the user has access to the product now.
    pub fn has_access(&self) -> bool {
        matches!(
            self.status,
            SubscriptionStatus::Active | SubscriptionStatus::PaymentFailed
        )
    }
}

pub fn subscription_keys(account: AccountId, id: SubscriptionId) -> Keys {
    Keys::new(format!("ACCOUNT#{account}"), format!("SUBSCRIPTION#{id}"))
}

/// The idempotency ledger: one entry per marketplace event id, with the hash of the
/// canonical body and the exact response it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub marketplace_id: PartnerId,
    pub event_id: ExternalId,
    pub event_type: String,
    pub body_hash: String,
    /// The response body as JSON text.
    pub response: String,
    pub account_id: AccountId,
    pub recorded_at: String,
}

impl Record for LedgerEntry {
    fn keys(&self) -> Keys {
        ledger_keys(self.marketplace_id, &self.event_id)
    }
}

pub fn ledger_keys(marketplace: PartnerId, event: &ExternalId) -> Keys {
    Keys::new(
        format!("MARKETPLACE_EVENT#{marketplace}#{}", event.as_str()),
        "EVENT",
    )
}

/// When a subscription whose payment failed at `failed_at` loses access.
pub fn suspension_due(failed_at: OffsetDateTime, grace: Duration) -> OffsetDateTime {
    failed_at + grace
}

/// What a scheduled suspension run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SuspensionReport {
    pub due: usize,
    pub suspended: usize,
    /// Changed by another request meanwhile (e.g. resumed); the next run sees them again.
    pub skipped: usize,
}

/// The writes, events and response one marketplace event results in.
struct Plan {
    writes: Vec<TransactWriteItem>,
    events: Vec<HubEvent>,
    response: Value,
}

/// The marketplace callback's domain logic.
#[derive(Clone, Debug)]
pub struct Marketplaces {
    table: Table,
    outbox: Outbox,
    grace: Duration,
}

impl Marketplaces {
    pub fn new(table: Table, outbox: Outbox, grace: Duration) -> Self {
        Self {
            table,
            outbox,
            grace,
        }
    }

    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// Handles one request body from `marketplace`; returns the response body.
    pub async fn handle(
        &self,
        marketplace: &Partner,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<Value, MarketplaceError> {
        let event = MarketplaceEvent::parse(body)?;
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| MarketplaceError::MalformedJson(e.to_string()))?;
        let hash = canonical_hash(&value);
        let ledger = ledger_keys(marketplace.id, &event.id);
        if let Some(entry) = self.table.get::<LedgerEntry>(&ledger).await? {
            return replay(entry, &hash);
        }
        let account_id = AccountId::for_external(marketplace.id, &event.user_id);
        if let Some(got) = &event.user_partner_id {
            let expected = user_partner_id(account_id);
            if *got != expected {
                return Err(MarketplaceError::UserPartnerIdMismatch {
                    expected,
                    got: got.clone(),
                });
            }
        }
        for _ in 0..CONFLICT_RETRIES {
            let plan = self.plan(marketplace, &event, account_id, now).await?;
            let mut writes = plan.writes;
            let mut staged = Vec::with_capacity(plan.events.len());
            for hub_event in &plan.events {
                let (record, write) = self.outbox.stage(hub_event)?;
                staged.push(record);
                writes.push(write);
            }
            let ledger_index = writes.len();
            let entry = LedgerEntry {
                marketplace_id: marketplace.id,
                event_id: event.id.clone(),
                event_type: event.event_type.as_str().to_owned(),
                body_hash: hash.clone(),
                response: plan.response.to_string(),
                account_id,
                recorded_at: clock::sortable(now),
            };
            writes.push(self.table.put_in_transaction(&entry, true)?);
            match self.table.transact(writes).await {
                Ok(()) => {
                    if !staged.is_empty() {
                        self.outbox.publish_committed(&staged).await;
                    }
                    tracing::info!(
                        marketplace = %marketplace.id,
                        account = %account_id,
                        event_type = event.event_type.as_str(),
                        changes = staged.len(),
                        "marketplace event applied"
                    );
                    return Ok(plan.response);
                }
                // Another delivery of the same event id committed first.
                Err(StoreError::TransactionConditionFailed { index }) if index == ledger_index => {
                    if let Some(entry) = self.table.get::<LedgerEntry>(&ledger).await? {
                        return replay(entry, &hash);
                    }
                }
                // Another event changed the same records: plan again from fresh reads.
                Err(StoreError::TransactionConditionFailed { .. })
                | Err(StoreError::TransactionConflict) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::TransactionConflict.into())
    }

    async fn plan(
        &self,
        marketplace: &Partner,
        event: &MarketplaceEvent,
        account_id: AccountId,
        now: OffsetDateTime,
    ) -> Result<Plan, MarketplaceError> {
        let at = clock::sortable(now);
        let user = json!({"id": event.user_id, "partnerId": user_partner_id(account_id)});
        let event_ref = json!({"id": event.id});
        let mut writes = Vec::new();
        let mut events = Vec::new();
        let hub_event = |kind: &str, data: Value| {
            HubEvent::new(kind, data).for_account(account_id, marketplace.id)
        };
        let (account_key, profile_key) = (account_keys(account_id), profile_keys(account_id));
        let (account, profile) = tokio::try_join!(
            self.table.get::<Account>(&account_key),
            self.table.get::<CustomerProfile>(&profile_key),
        )?;
        let unknown_user = || MarketplaceError::UnknownUser(event.user_id.to_string());
        let erased = profile.as_ref().is_some_and(|p| p.erased_at.is_some());

        if let Payload::Product(product) = &event.payload {
            if account.is_none() {
                return Err(unknown_user());
            }
            let sub_id = SubscriptionId::for_product(account_id, &product.id);
            if let Some(got) = &product.partner_id
                && *got != sub_id.partner_id()
            {
                return Err(MarketplaceError::ProductPartnerIdMismatch {
                    expected: sub_id.partner_id(),
                    got: got.clone(),
                });
            }
            let existing: Option<Subscription> = self
                .table
                .get(&subscription_keys(account_id, sub_id))
                .await?;
            let change = self.product_change(
                event,
                product,
                existing,
                (account_id, marketplace.id),
                erased,
                now,
            )?;
            if let Some((next, expected_revision, kind)) = change {
                writes.push(
                    self.table
                        .put_revision_in_transaction(&next, expected_revision)?,
                );
                events.push(hub_event(kind, subscription_event_data(&next)));
            }
            let response = json!({
                "status": 200,
                "event": event_ref,
                "user": user,
                "data": {"product": {"id": product.id, "partnerId": sub_id.partner_id()}},
            });
            return Ok(Plan {
                writes,
                events,
                response,
            });
        }

        let customer_data = json!({"externalId": event.user_id, "billing": "marketplace"});
        match (&event.payload, event.event_type) {
            (Payload::User(new_profile), EventType::UserCreate | EventType::UserUpdate) => {
                if erased {
                    return Err(MarketplaceError::UserDeleted(event.user_id.to_string()));
                }
                match account {
                    None if event.event_type == EventType::UserCreate => {
                        let account = Account {
                            id: account_id,
                            partner_id: marketplace.id,
                            kind: AccountKind::Customer,
                            external_id: event.user_id.clone(),
                            status: AccountStatus::Active,
                            shop: None,
                            credentials: None,
                            billing: BillingOwner::Marketplace,
                            pages: Vec::new(),
                            created_at: at.clone(),
                            updated_at: at.clone(),
                        };
                        writes.push(self.table.put_in_transaction(&account, true)?);
                        events.push(hub_event(CUSTOMER_CREATED, customer_data.clone()));
                    }
                    None => return Err(unknown_user()),
                    Some(_) => {}
                }
                let unchanged = profile
                    .as_ref()
                    .is_some_and(|p| p.profile.as_ref() == Some(new_profile));
                if !unchanged {
                    let next = CustomerProfile {
                        account_id,
                        marketplace_id: marketplace.id,
                        profile: Some(new_profile.clone()),
                        erased_at: None,
                        updated_at: at.clone(),
                        revision: profile.as_ref().map_or(1, |p| p.revision + 1),
                    };
                    writes.push(self.table.put_revision_in_transaction(
                        &next,
                        profile.as_ref().map(|p| p.revision),
                    )?);
                    if events.is_empty() {
                        events.push(hub_event(CUSTOMER_UPDATED, customer_data.clone()));
                    }
                }
            }
            (_, EventType::UserDelete) => {
                if account.is_none() {
                    return Err(unknown_user());
                }
                if !erased {
                    let tombstone = CustomerProfile {
                        account_id,
                        marketplace_id: marketplace.id,
                        profile: None,
                        erased_at: Some(at.clone()),
                        updated_at: at.clone(),
                        revision: profile.as_ref().map_or(1, |p| p.revision + 1),
                    };
                    writes.push(self.table.put_revision_in_transaction(
                        &tombstone,
                        profile.as_ref().map(|p| p.revision),
                    )?);
                    events.push(hub_event(CUSTOMER_ERASED, customer_data));
                }
            }
            _ => unreachable!("the parser pairs user events with user payloads"),
        }
        Ok(Plan {
            writes,
            events,
            response: json!({
                "status": 200,
                "event": event_ref,
                "data": {"user": user},
            }),
        })
    }

    /// The subscription a product event leads to: `None` when it changes nothing.
    #[allow(clippy::type_complexity)]
    fn product_change(
        &self,
        event: &MarketplaceEvent,
        product: &ProductInfo,
        existing: Option<Subscription>,
        (account_id, marketplace_id): (AccountId, PartnerId),
        erased: bool,
        now: OffsetDateTime,
    ) -> Result<Option<(Subscription, Option<u64>, &'static str)>, MarketplaceError> {
        use SubscriptionStatus as S;
        let id = SubscriptionId::for_product(account_id, &product.id);
        let at = clock::sortable(now);
        let product_name = || product.id.to_string();
        if event.event_type == EventType::ProductPurchase {
            if erased {
                return Err(MarketplaceError::UserDeleted(event.user_id.to_string()));
            }
            if existing.as_ref().is_some_and(|s| s.status != S::Cancelled) {
                return Ok(None); // already purchased
            }
            let expected = existing.as_ref().map(|s| s.revision);
            let next = Subscription {
                id,
                account_id,
                marketplace_id,
                product_id: product.id.clone(),
                name: product.name.clone(),
                price: product.price.clone().expect("checked by the parser"),
                price_type: product.price_type.clone().expect("checked by the parser"),
                price_interval: product.price_interval.clone(),
                status: S::Active,
                purchased_at: at.clone(),
                payment_failed_at: None,
                suspend_at: None,
                suspended_at: None,
                resumed_at: None,
                cancelled_at: None,
                updated_at: at,
                revision: expected.map_or(1, |v| v + 1),
            };
            return Ok(Some((next, expected, SUBSCRIPTION_PURCHASED)));
        }
        let current = existing.ok_or_else(|| MarketplaceError::UnknownProduct(product_name()))?;
        let mut next = current.clone();
        next.revision += 1;
        next.updated_at = at.clone();
        let kind = match (event.event_type, current.status) {
            (EventType::ProductCancel, S::Cancelled) => return Ok(None),
            (EventType::ProductCancel, _) => {
                next.status = S::Cancelled;
                next.cancelled_at = Some(at);
                next.suspend_at = None;
                SUBSCRIPTION_CANCELLED
            }
            (_, S::Cancelled) => {
                return Err(MarketplaceError::SubscriptionCancelled(product_name()));
            }
            (EventType::ProductSuspend, S::Active) => {
                next.status = S::PaymentFailed;
                next.payment_failed_at = Some(at);
                next.suspend_at = Some(clock::sortable(suspension_due(now, self.grace)));
                SUBSCRIPTION_PAYMENT_FAILED
            }
            // Already recorded: the first failure's grace period stands.
            (EventType::ProductSuspend, _) => return Ok(None),
            (EventType::ProductResume, S::PaymentFailed | S::Suspended) => {
                next.status = S::Active;
                next.resumed_at = Some(at);
                next.payment_failed_at = None;
                next.suspend_at = None;
                SUBSCRIPTION_RESUMED
            }
            (EventType::ProductResume, _) => return Ok(None),
            _ => unreachable!("only product events reach here"),
        };
        Ok(Some((next, Some(current.revision), kind)))
    }

    /// Suspends the subscriptions whose grace period ended at or before `now`.
    pub async fn suspend_due(
        &self,
        now: OffsetDateTime,
    ) -> Result<SuspensionReport, MarketplaceError> {
        let due: Vec<Subscription> = self
            .table
            .query_all(&Query::due(DUE_KIND_SUSPENSION, clock::sortable(now)))
            .await?;
        let mut report = SuspensionReport {
            due: due.len(),
            ..SuspensionReport::default()
        };
        for current in due {
            if current.status != SubscriptionStatus::PaymentFailed {
                report.skipped += 1;
                continue;
            }
            let at = clock::sortable(now);
            let mut next = current.clone();
            next.status = SubscriptionStatus::Suspended;
            next.suspended_at = Some(at.clone());
            next.suspend_at = None; // leaves the due index in the same write
            next.updated_at = at;
            next.revision += 1;
            let event = HubEvent::new(SUBSCRIPTION_SUSPENDED, subscription_event_data(&next))
                .for_account(next.account_id, next.marketplace_id);
            let (staged, stage_write) = self.outbox.stage(&event)?;
            let writes = vec![
                self.table
                    .put_revision_in_transaction(&next, Some(current.revision))?,
                stage_write,
            ];
            match self.table.transact(writes).await {
                Ok(()) => {
                    self.outbox.publish_committed(&[staged]).await;
                    report.suspended += 1;
                }
                Err(StoreError::TransactionConditionFailed { .. })
                | Err(StoreError::TransactionConflict) => report.skipped += 1,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(report)
    }

    /// An account's subscriptions.
    pub async fn subscriptions(
        &self,
        account: AccountId,
    ) -> Result<Vec<Subscription>, MarketplaceError> {
        Ok(self
            .table
            .query_all(
                &Query::partition(format!("ACCOUNT#{account}")).sort_begins_with("SUBSCRIPTION#"),
            )
            .await?)
    }

    pub async fn profile(
        &self,
        account: AccountId,
    ) -> Result<Option<CustomerProfile>, MarketplaceError> {
        Ok(self.table.get(&profile_keys(account)).await?)
    }
}

fn replay(entry: LedgerEntry, hash: &str) -> Result<Value, MarketplaceError> {
    if entry.body_hash != hash {
        return Err(MarketplaceError::EventIdReused(entry.event_id.to_string()));
    }
    serde_json::from_str(&entry.response).map_err(|e| EventError::Encode(e).into())
}

/// The data of a `subscription.*` hub event (no personal data: the timeline keeps it).
fn subscription_event_data(sub: &Subscription) -> Value {
    json!({
        "subscriptionId": sub.id,
        "productPartnerId": sub.id.partner_id(),
        "productId": sub.product_id,
        "name": sub.name,
        "price": sub.price,
        "priceType": sub.price_type,
        "priceInterval": sub.price_interval,
        "status": sub.status,
        "billing": "marketplace",
        "suspendAt": sub.suspend_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suspension_is_due_after_the_grace_period() {
        let failed = clock::parse_rfc3339("2026-03-01T10:00:00Z").unwrap();
        let due = suspension_due(failed, Duration::from_secs(7 * 86_400));
        assert_eq!(clock::sortable(due), "2026-03-08T10:00:00.000000Z");
    }

    #[test]
    fn partner_ids_are_prefixed_uuids_without_dashes() {
        let account =
            AccountId::for_external(PartnerId::random(), &ExternalId::parse("52f3d719").unwrap());
        let user = user_partner_id(account);
        assert!(user.starts_with("u-") && user.len() == 34);
        assert!(!user[2..].contains('-'));
        let product = ExternalId::parse("ecc8f6f0").unwrap();
        let a = SubscriptionId::for_product(account, &product);
        assert_eq!(a, SubscriptionId::for_product(account, &product));
        assert!(a.partner_id().starts_with("p-") && !a.partner_id()[2..].contains('-'));
    }

    #[test]
    fn only_payment_failed_subscriptions_are_in_the_due_index() {
        let product = ExternalId::parse("p").unwrap();
        let account = AccountId::random();
        let mut sub = Subscription {
            id: SubscriptionId::for_product(account, &product),
            account_id: account,
            marketplace_id: PartnerId::random(),
            product_id: product,
            name: None,
            price: Price::parse("1.00").unwrap(),
            price_type: "SUBSCRIPTION".into(),
            price_interval: Some("MONTHLY".into()),
            status: SubscriptionStatus::PaymentFailed,
            purchased_at: "t".into(),
            payment_failed_at: Some("t".into()),
            suspend_at: Some("2026-03-08T10:00:00.000000Z".into()),
            suspended_at: None,
            resumed_at: None,
            cancelled_at: None,
            updated_at: "t".into(),
            revision: 1,
        };
        assert_eq!(sub.keys().due_pk.as_deref(), Some(DUE_KIND_SUSPENSION));
        sub.status = SubscriptionStatus::Suspended;
        assert_eq!(sub.keys().due_pk, None);
    }
}
