//! The catalog of hub events: one enum, each variant a `detail-type` with its typed
//! payload, so one name never carries two payloads. Each type has a sample and a JSON
//! Schema in `events/hub/`, checked by the tests.

use serde::{Deserialize, Serialize};

use crate::domain::{
    AccountKind, AccountStatus, BillingOwner, ExternalId, Platform, Price, ShopDomain,
    SubscriptionId, SubscriptionStatus,
    subscription::{Change, Subscription, Terms},
};

macro_rules! catalog {
    ($( $(#[$doc:meta])* $variant:ident($payload:ty) = $name:literal, )*) => {
        /// Every hub event: `type` is the detail-type, `data` the payload.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type", content = "data")]
        pub enum EventPayload {
            $( $(#[$doc])* #[serde(rename = $name)] $variant($payload), )*
        }

        impl EventPayload {
            /// Every detail-type of the catalog.
            pub const TYPES: &'static [&'static str] = &[$($name),*];

            pub fn detail_type(&self) -> &'static str {
                match self {
                    $( EventPayload::$variant(_) => $name, )*
                }
            }
        }
    };
}

catalog! {
    /// A shop, customer or sub-account was created.
    AccountProvisioned(AccountProvisioned) = "account.provisioned",
    /// A cancelled account's data was deleted; a tombstone remains.
    AccountDeleted(AccountDeleted) = "account.deleted",
    /// A marketplace user became a customer.
    CustomerCreated(CustomerChanged) = "customer.created",
    CustomerUpdated(CustomerChanged) = "customer.updated",
    /// A customer's personal data was erased.
    CustomerErased(CustomerChanged) = "customer.erased",
    /// QA passed: the partner gets Ready for Installation.
    InstallationReady(InstallationReady) = "installation.ready",
    SubscriptionCreated(SubscriptionSnapshot) = "subscription.created",
    SubscriptionUpgraded(SubscriptionSnapshot) = "subscription.upgraded",
    /// The same tier with other details (contract length, website, template, company).
    SubscriptionUpdated(SubscriptionSnapshot) = "subscription.updated",
    /// A cancellation was received; the subscription works until `effectiveDate`.
    SubscriptionCancellationScheduled(SubscriptionSnapshot) = "subscription.cancellation_scheduled",
    /// A pending cancellation was withdrawn (a Create Subscription before its date).
    SubscriptionReinstated(SubscriptionSnapshot) = "subscription.reinstated",
    SubscriptionPurchased(SubscriptionSnapshot) = "subscription.purchased",
    SubscriptionPaymentFailed(SubscriptionSnapshot) = "subscription.payment_failed",
    SubscriptionSuspended(SubscriptionSnapshot) = "subscription.suspended",
    SubscriptionResumed(SubscriptionSnapshot) = "subscription.resumed",
    SubscriptionCancelled(SubscriptionSnapshot) = "subscription.cancelled",
    /// A shop confirmed its plan selection and first billing period (signed-payload
    /// contract, step 3); `replaced` when it replaces an earlier selection.
    PlansConfirmed(PlansConfirmed) = "plans.confirmed",
    /// A shop's next billing period started (the previous one ended).
    BillingPeriodStarted(BillingPeriodSnapshot) = "billing_period.started",
    /// The partner paused the shop's integrations: no usage accrues until resumed.
    ShopPaused(ShopRunning) = "shop.paused",
    ShopResumed(ShopRunning) = "shop.resumed",
    /// A loyalty SMS went out through the site's SMS gateway (billed as `textMessages`).
    SmsSent(SmsSent) = "sms.sent",
    /// For operators: a partner's webhook endpoint failed every attempt for five days and
    /// is disabled (`hub-admin enable-webhook` turns it back on and can replay).
    PartnerWebhookDisabled(PartnerWebhookDisabled) = "partner.webhook_disabled",
    /// One attempt of a webhook about the account (the shop's delivery log): what was
    /// sent, how the partner answered and what happens next. Never a secret.
    WebhookAttempted(WebhookAttempted) = "webhook.attempted",
    /// A change of the shop's subscriptions was asked of the partner (contract 5.2).
    SubscriptionChangeRequested(SubscriptionChangeRequested) = "subscription_change.requested",
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAttempted {
    pub delivery_id: String,
    /// `webhook.usage_records`, `webhook.subscription_change_request`, ...
    pub kind: String,
    pub attempt: u32,
    /// `delivered`, `retrying` or `failed`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Why it failed, with the start of the partner's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionChangeRequested {
    pub request_id: String,
    pub subscription_ids: Vec<u32>,
    /// Why: `asked on the admin page by <email>` or `<reference> reached a higher tier`.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerWebhookDisabled {
    pub base_url: String,
    pub failing_since: String,
    pub last_failure: String,
}

/// One SMS sent for a loyalty action (no phone number, no text: the job keeps those).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SmsSent {
    pub site_id: u64,
    pub action_id: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
    /// SMS segments the text takes (160 GSM-7 characters, or 70 UCS-2, per segment;
    /// 153/67 when concatenated).
    pub segments: u32,
    /// The shop whose usage the segments count in (`textMessages`), if the site has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billed_shop: Option<crate::domain::AccountId>,
}

/// A billing period as events and the confirm answer show it (dates as the contract
/// writes them, caps as exact decimals).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BillingPeriodSnapshot {
    pub start: String,
    pub end: String,
    pub trial_days: u32,
    pub trial_ends_at: String,
    #[serde(
        rename = "dynamicPriceCapUSD",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dynamic_price_cap_usd: Option<Price>,
    #[serde(
        rename = "fixedPriceCapUSD",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub fixed_price_cap_usd: Option<Price>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlansConfirmed {
    pub subscription_ids: Vec<u32>,
    /// The version of each plan, in the same order.
    pub plan_versions: Vec<u32>,
    pub billing_period: BillingPeriodSnapshot,
    pub replaced: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShopRunning {
    pub shop: ShopDomain,
    pub running: bool,
}

impl EventPayload {
    /// The payload alone, as the detail's `data`.
    pub fn data(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut tagged)) => {
                tagged.remove("data").unwrap_or(serde_json::Value::Null)
            }
            _ => serde_json::Value::Null,
        }
    }

    /// The event a subscription change emits (approval emits `installation.ready`).
    pub fn for_change(change: Change, snapshot: SubscriptionSnapshot) -> Option<Self> {
        Some(match change {
            Change::Approved => return None,
            Change::Upgraded => EventPayload::SubscriptionUpgraded(snapshot),
            Change::Updated => EventPayload::SubscriptionUpdated(snapshot),
            Change::CancellationScheduled => {
                EventPayload::SubscriptionCancellationScheduled(snapshot)
            }
            Change::Reinstated => EventPayload::SubscriptionReinstated(snapshot),
            Change::Cancelled => EventPayload::SubscriptionCancelled(snapshot),
            Change::PaymentFailed => EventPayload::SubscriptionPaymentFailed(snapshot),
            Change::Suspended => EventPayload::SubscriptionSuspended(snapshot),
            Change::Resumed => EventPayload::SubscriptionResumed(snapshot),
            Change::Purchased => EventPayload::SubscriptionPurchased(snapshot),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountProvisioned {
    pub kind: AccountKind,
    pub external_id: ExternalId,
    pub status: AccountStatus,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shop: Option<ShopDomain>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountDeleted {
    pub customer_id: String,
    pub items_deleted: usize,
}

/// A customer record changed; no personal data (timelines keep events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerChanged {
    pub external_id: ExternalId,
    pub billing: BillingOwner,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallationReady {
    pub customer_id: String,
}

/// A subscription as it is after the change (no personal data, no secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionSnapshot {
    pub subscription_id: SubscriptionId,
    pub customer_id: ExternalId,
    pub status: SubscriptionStatus,
    pub billing: BillingOwner,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub products: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<ExternalId>,
    /// The hub's product id as a marketplace sees it (`p-…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_partner_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_date: Option<String>,
}

impl SubscriptionSnapshot {
    pub fn of(sub: &Subscription) -> Self {
        let mut snapshot = Self {
            subscription_id: sub.id,
            customer_id: sub.customer_id.clone(),
            status: sub.status,
            billing: sub.billing,
            tier: None,
            products: Vec::new(),
            website: sub.installation.as_ref().map(|i| i.website.clone()),
            previous_tier: None,
            product_id: None,
            product_partner_id: None,
            name: None,
            price: None,
            price_type: None,
            price_interval: None,
            suspend_at: sub.suspend_at.clone(),
            effective_date: sub.cancellation_effective_at.clone(),
        };
        match &sub.terms {
            Terms::Tier { tier, products, .. } => {
                snapshot.tier = Some(tier.clone());
                snapshot.products = products.clone();
            }
            Terms::Product {
                product_id,
                name,
                price,
                price_type,
                price_interval,
            } => {
                snapshot.product_id = Some(product_id.clone());
                snapshot.product_partner_id = Some(sub.id.partner_id());
                snapshot.name = name.clone();
                snapshot.price = Some(price.clone());
                snapshot.price_type = Some(price_type.clone());
                snapshot.price_interval = price_interval.clone();
            }
        }
        snapshot
    }
}
