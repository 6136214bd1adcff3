//! One subscription model for every contract: what a customer bought (a tier through
//! EventBridge, a product through a marketplace, a plan through the signed-payload
//! API), who bills it, and where it is in its life. [`transition`] is the state machine
//! alone, a pure function; [`Subscription::apply`] applies a command with its
//! timestamps.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AccountId, BillingOwner, ExternalId, PartnerId, Price};
use crate::store::{
    Keys, Record,
    keys::{self, Due},
};

/// Namespace of the deterministic subscription ids (UUIDv5).
const SUBSCRIPTION_NAMESPACE: Uuid = Uuid::from_u128(0x8f3c_51d2_6b0e_4a9f_b7c4_1e2d_9a60_f35b);

/// A subscription's id, derived from what it is for, so creating one is a conditional put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SubscriptionId(Uuid);

impl SubscriptionId {
    /// A marketplace product the account's user purchased.
    pub fn for_product(account: AccountId, product: &ExternalId) -> Self {
        Self(Uuid::new_v5(
            &SUBSCRIPTION_NAMESPACE,
            format!("marketplace-product:{account}:{}", product.as_str()).as_bytes(),
        ))
    }

    /// The one tier plan of a partner's customer (EventBridge contract).
    pub fn for_plan(account: AccountId) -> Self {
        Self(Uuid::new_v5(
            &SUBSCRIPTION_NAMESPACE,
            format!("tier-plan:{account}").as_bytes(),
        ))
    }

    /// The hub's product id as a marketplace sees it: `p-<id without dashes>`.
    pub fn partner_id(&self) -> String {
        format!("p-{}", self.0.simple())
    }
}

impl fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// Bought, waiting for QA before it goes live.
    PendingApproval,
    /// Delivered.
    Active,
    /// Payment could not be collected; still delivered until `suspend_at`.
    PaymentFailed,
    /// Access stopped for non-payment; resuming payment restores it.
    Suspended,
    Cancelled,
}

/// What was bought.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Terms {
    /// A tier and the products it includes.
    Tier {
        tier: String,
        products: Vec<String>,
        contract_length_months: u32,
    },
    /// A marketplace product at the marketplace's price.
    Product {
        product_id: ExternalId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        price: Price,
        price_type: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        price_interval: Option<String>,
    },
}

impl Terms {
    /// Whether two terms are the same offering (the same tier, the same product).
    pub fn same_offering(&self, other: &Terms) -> bool {
        match (self, other) {
            (Terms::Tier { tier: a, .. }, Terms::Tier { tier: b, .. }) => a == b,
            (Terms::Product { product_id: a, .. }, Terms::Product { product_id: b, .. }) => a == b,
            _ => false,
        }
    }

    /// The tier or product bought, for people and tombstones.
    pub fn label(&self) -> &str {
        match self {
            Terms::Tier { tier, .. } => tier,
            Terms::Product { product_id, .. } => product_id.as_str(),
        }
    }
}

/// Where and how the bought products are installed (the EventBridge contract's fields
/// and the public keys the installed widget and search carry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installation {
    pub website: String,
    pub template: String,
    pub company_name: String,
    pub widget_key: String,
    pub search_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub account_id: AccountId,
    /// The partner or marketplace that sold it.
    pub partner_id: PartnerId,
    /// The seller's id for the customer.
    pub customer_id: ExternalId,
    pub billing: BillingOwner,
    pub terms: Terms,
    pub status: SubscriptionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installation: Option<Installation>,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<String>,
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
    /// When a cancellation takes effect: until then the subscription keeps working (a
    /// pending cancellation); then it is cancelled and the account's data deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_effective_at: Option<String>,
    /// When the cancellation was received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_requested_at: Option<String>,
    /// Optimistic-concurrency counter: every write expects the revision it read.
    pub revision: u64,
    pub created_at: String,
    pub updated_at: String,
}

impl Record for Subscription {
    fn keys(&self) -> Keys {
        let keys = keys::subscription(self.account_id, self.id);
        match (&self.status, &self.suspend_at) {
            (SubscriptionStatus::PaymentFailed, Some(at)) => keys.due(Due::Suspension, at.clone()),
            _ => keys,
        }
    }
}

/// What can happen to a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// QA passed.
    Approve,
    /// Another offering for the same subscription (an upgrade); installation details
    /// are updated, its keys kept.
    ChangeTerms {
        terms: Terms,
        installation: Option<Installation>,
    },
    /// Cancel now.
    Cancel {
        effective_at: String,
    },
    /// Cancel at a future date; the subscription keeps working until then.
    ScheduleCancel {
        effective_at: String,
    },
    /// Withdraw a pending cancellation.
    Reinstate,
    PaymentFailed {
        suspend_at: String,
    },
    /// The grace period after a failed payment ended.
    Suspend,
    /// Payment resumed.
    Resume,
    /// Bought again after a cancellation.
    Purchase {
        terms: Terms,
    },
}

/// What a command changed; each is one `subscription.*` hub event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Approved,
    /// Another offering (tier or product).
    Upgraded,
    /// The same offering with other details (contract length, installation details).
    Updated,
    CancellationScheduled,
    /// A pending cancellation was withdrawn.
    Reinstated,
    Cancelled,
    PaymentFailed,
    Suspended,
    Resumed,
    Purchased,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the subscription is cancelled")]
    Cancelled,
}

/// The state machine: the status a command leads to and what changed; `None` when the
/// command changes nothing in this status (a repeat), an error when it cannot apply.
pub fn transition(
    status: SubscriptionStatus,
    command: &Command,
) -> Result<Option<(SubscriptionStatus, Change)>, Refused> {
    use SubscriptionStatus as S;
    let cancelled = status == S::Cancelled;
    Ok(match command {
        Command::Approve if cancelled => return Err(Refused::Cancelled),
        Command::Approve => (status == S::PendingApproval).then_some((S::Active, Change::Approved)),
        Command::ChangeTerms { .. } if cancelled => return Err(Refused::Cancelled),
        Command::ChangeTerms { .. } => Some((status, Change::Upgraded)),
        Command::Cancel { .. } => (!cancelled).then_some((S::Cancelled, Change::Cancelled)),
        Command::ScheduleCancel { .. } => {
            (!cancelled).then_some((status, Change::CancellationScheduled))
        }
        Command::Reinstate if cancelled => return Err(Refused::Cancelled),
        Command::Reinstate => Some((status, Change::Reinstated)),
        Command::PaymentFailed { .. } if cancelled => return Err(Refused::Cancelled),
        // A repeated failure keeps the first failure's grace period.
        Command::PaymentFailed { .. } => {
            (status == S::Active).then_some((S::PaymentFailed, Change::PaymentFailed))
        }
        Command::Suspend => {
            (status == S::PaymentFailed).then_some((S::Suspended, Change::Suspended))
        }
        Command::Resume if cancelled => return Err(Refused::Cancelled),
        Command::Resume => matches!(status, S::PaymentFailed | S::Suspended)
            .then_some((S::Active, Change::Resumed)),
        Command::Purchase { .. } => cancelled.then_some((S::Active, Change::Purchased)),
    })
}

impl Subscription {
    /// A new, active subscription (revision 1) started at `now` (sortable timestamp).
    pub fn new(
        id: SubscriptionId,
        account_id: AccountId,
        partner_id: PartnerId,
        customer_id: ExternalId,
        billing: BillingOwner,
        terms: Terms,
        now: &str,
    ) -> Self {
        let status = SubscriptionStatus::Active;
        Self {
            id,
            account_id,
            partner_id,
            customer_id,
            billing,
            terms,
            status,
            installation: None,
            started_at: now.to_owned(),
            approved_at: None,
            payment_failed_at: None,
            suspend_at: None,
            suspended_at: None,
            resumed_at: None,
            cancelled_at: None,
            cancellation_effective_at: None,
            cancellation_requested_at: None,
            revision: 1,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
        }
    }

    pub fn with_status(mut self, status: SubscriptionStatus) -> Self {
        self.status = status;
        self
    }

    /// Applies a command at `now` (sortable timestamp): the next version of the record
    /// (revision + 1) and what changed, or `None` when nothing does.
    pub fn apply(&self, command: Command, now: &str) -> Result<Option<(Self, Change)>, Refused> {
        let Some((status, mut change)) = transition(self.status, &command)? else {
            return Ok(None);
        };
        let mut next = self.clone();
        next.status = status;
        let at = Some(now.to_owned());
        match command {
            Command::Approve => next.approved_at = at,
            Command::ChangeTerms {
                terms,
                installation,
            } => {
                if terms.same_offering(&self.terms) {
                    change = Change::Updated;
                }
                next.terms = terms;
                if let (Some(current), Some(new)) = (&mut next.installation, installation) {
                    // The installed keys stay: the customer's pages carry them.
                    current.website = new.website;
                    current.template = new.template;
                    current.company_name = new.company_name;
                }
                if next.terms == self.terms && next.installation == self.installation {
                    return Ok(None);
                }
            }
            Command::Cancel { effective_at } => {
                next.cancelled_at = at.clone();
                next.cancellation_effective_at = Some(effective_at);
                next.cancellation_requested_at = self.cancellation_requested_at.clone().or(at);
                next.suspend_at = None;
            }
            Command::ScheduleCancel { effective_at } => {
                if self.cancellation_effective_at.as_deref() == Some(effective_at.as_str()) {
                    return Ok(None);
                }
                next.cancellation_effective_at = Some(effective_at);
                next.cancellation_requested_at = at;
            }
            Command::Reinstate => {
                if self.cancellation_effective_at.is_none() {
                    return Ok(None);
                }
                next.cancellation_effective_at = None;
                next.cancellation_requested_at = None;
            }
            Command::PaymentFailed { suspend_at } => {
                next.payment_failed_at = at;
                next.suspend_at = Some(suspend_at);
            }
            Command::Suspend => {
                next.suspended_at = at;
                next.suspend_at = None;
            }
            Command::Resume => {
                next.resumed_at = at;
                next.payment_failed_at = None;
                next.suspend_at = None;
            }
            Command::Purchase { terms } => {
                next.terms = terms;
                next.started_at = now.to_owned();
                next.payment_failed_at = None;
                next.suspend_at = None;
                next.suspended_at = None;
                next.resumed_at = None;
                next.cancelled_at = None;
                next.cancellation_effective_at = None;
                next.cancellation_requested_at = None;
            }
        }
        next.revision += 1;
        next.updated_at = now.to_owned();
        Ok(Some((next, change)))
    }

    /// The tier bought, for tier plans.
    pub fn tier(&self) -> Option<&str> {
        match &self.terms {
            Terms::Tier { tier, .. } => Some(tier),
            Terms::Product { .. } => None,
        }
    }

    /// The products the subscription includes (a tier's, or the one product).
    pub fn products(&self) -> Vec<String> {
        match &self.terms {
            Terms::Tier { products, .. } => products.clone(),
            Terms::Product { product_id, .. } => vec![product_id.to_string()],
        }
    }

    pub fn has(&self, product: &str) -> bool {
        self.products().iter().any(|p| p == product)
    }

    /// Whether a cancellation is pending (received, not yet in effect).
    pub fn cancellation_pending(&self) -> bool {
        self.status != SubscriptionStatus::Cancelled && self.cancellation_effective_at.is_some()
    }

    /// Whether the customer has access to what was bought now.
    pub fn has_access(&self) -> bool {
        matches!(
            self.status,
            SubscriptionStatus::Active | SubscriptionStatus::PaymentFailed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SubscriptionStatus as S;

    const ALL: [S; 5] = [
        S::PendingApproval,
        S::Active,
        S::PaymentFailed,
        S::Suspended,
        S::Cancelled,
    ];

    fn commands() -> Vec<Command> {
        let terms = Terms::Tier {
            tier: "growth".into(),
            products: vec![],
            contract_length_months: 1,
        };
        vec![
            Command::Approve,
            Command::ChangeTerms {
                terms: terms.clone(),
                installation: None,
            },
            Command::Cancel {
                effective_at: "t".into(),
            },
            Command::ScheduleCancel {
                effective_at: "t".into(),
            },
            Command::Reinstate,
            Command::PaymentFailed {
                suspend_at: "t".into(),
            },
            Command::Suspend,
            Command::Resume,
            Command::Purchase { terms },
        ]
    }

    #[test]
    fn the_whole_transition_table() {
        use Change as C;
        let expected = |status: S, command: &Command| -> Result<Option<(S, C)>, Refused> {
            Ok(match (status, command) {
                (
                    S::Cancelled,
                    Command::Cancel { .. } | Command::ScheduleCancel { .. } | Command::Suspend,
                ) => None,
                (S::Cancelled, Command::Purchase { .. }) => Some((S::Active, C::Purchased)),
                (S::Cancelled, _) => return Err(Refused::Cancelled),
                (_, Command::Purchase { .. }) => None,
                (S::PendingApproval, Command::Approve) => Some((S::Active, C::Approved)),
                (_, Command::Approve) => None,
                (s, Command::ChangeTerms { .. }) => Some((s, C::Upgraded)),
                (_, Command::Cancel { .. }) => Some((S::Cancelled, C::Cancelled)),
                (s, Command::ScheduleCancel { .. }) => Some((s, C::CancellationScheduled)),
                (s, Command::Reinstate) => Some((s, C::Reinstated)),
                (S::Active, Command::PaymentFailed { .. }) => {
                    Some((S::PaymentFailed, C::PaymentFailed))
                }
                (_, Command::PaymentFailed { .. }) => None,
                (S::PaymentFailed, Command::Suspend) => Some((S::Suspended, C::Suspended)),
                (_, Command::Suspend) => None,
                (S::PaymentFailed | S::Suspended, Command::Resume) => Some((S::Active, C::Resumed)),
                (_, Command::Resume) => None,
            })
        };
        let mut checked = 0;
        for status in ALL {
            for command in commands() {
                assert_eq!(
                    transition(status, &command),
                    expected(status, &command),
                    "{status:?} + {command:?}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 45);
    }

    fn marketplace_sub(status: S) -> Subscription {
        let account = AccountId::random();
        let product = ExternalId::parse("p").unwrap();
        let terms = Terms::Product {
            product_id: product.clone(),
            name: None,
            price: Price::parse("1.00").unwrap(),
            price_type: "SUBSCRIPTION".into(),
            price_interval: Some("MONTHLY".into()),
        };
        Subscription::new(
            SubscriptionId::for_product(account, &product),
            account,
            PartnerId::random(),
            ExternalId::parse("u").unwrap(),
            BillingOwner::Marketplace,
            terms,
            "t0",
        )
        .with_status(status)
    }

    #[test]
    fn a_failed_payment_is_due_for_suspension_until_resumed() {
        let active = marketplace_sub(S::Active);
        assert_eq!(active.keys().due_pk, None);
        let (failed, change) = active
            .apply(
                Command::PaymentFailed {
                    suspend_at: "2026-03-08T10:00:00.000000Z".into(),
                },
                "t1",
            )
            .unwrap()
            .unwrap();
        assert_eq!(change, Change::PaymentFailed);
        assert_eq!(failed.revision, 2);
        assert!(failed.has_access());
        assert_eq!(failed.keys().due_pk.as_deref(), Some("SUSPENSION"));
        assert_eq!(
            failed.keys().due_at.as_deref(),
            Some("2026-03-08T10:00:00.000000Z")
        );
        let (suspended, _) = failed.apply(Command::Suspend, "t2").unwrap().unwrap();
        assert!(!suspended.has_access());
        assert_eq!(suspended.keys().due_pk, None, "leaves the due index");
        let (resumed, _) = suspended.apply(Command::Resume, "t3").unwrap().unwrap();
        assert_eq!(resumed.status, S::Active);
        assert_eq!(resumed.payment_failed_at, None);
    }

    #[test]
    fn the_same_tier_again_changes_nothing_and_upgrades_keep_the_keys() {
        let mut plan = marketplace_sub(S::Active);
        plan.terms = Terms::Tier {
            tier: "starter".into(),
            products: vec!["widget".into()],
            contract_length_months: 12,
        };
        plan.installation = Some(Installation {
            website: "https://a.com/".into(),
            template: "t".into(),
            company_name: "A".into(),
            widget_key: "wk_1".into(),
            search_key: "sk_1".into(),
        });
        let same = Command::ChangeTerms {
            terms: plan.terms.clone(),
            installation: None,
        };
        assert_eq!(plan.apply(same, "t1").unwrap(), None);
        // The same tier with other details is an update.
        let mut moved_site = plan.installation.clone().unwrap();
        moved_site.website = "https://moved.com/".into();
        let (updated, change) = plan
            .apply(
                Command::ChangeTerms {
                    terms: Terms::Tier {
                        tier: "starter".into(),
                        products: vec!["widget".into()],
                        contract_length_months: 24,
                    },
                    installation: Some(moved_site),
                },
                "t1",
            )
            .unwrap()
            .unwrap();
        assert_eq!(change, Change::Updated);
        assert_eq!(
            updated.installation.as_ref().unwrap().website,
            "https://moved.com/"
        );
        let growth = Terms::Tier {
            tier: "growth".into(),
            products: vec!["widget".into(), "search".into()],
            contract_length_months: 12,
        };
        let mut moved = plan.installation.clone().unwrap();
        moved.website = "https://b.com/".into();
        moved.widget_key = "ignored".into();
        let (upgraded, change) = plan
            .apply(
                Command::ChangeTerms {
                    terms: growth,
                    installation: Some(moved),
                },
                "t1",
            )
            .unwrap()
            .unwrap();
        assert_eq!(change, Change::Upgraded);
        assert!(upgraded.has("search"));
        let installation = upgraded.installation.unwrap();
        assert_eq!(installation.website, "https://b.com/");
        assert_eq!(installation.widget_key, "wk_1");
    }

    #[test]
    fn a_scheduled_cancellation_keeps_working_until_it_is_withdrawn_or_takes_effect() {
        let plan = marketplace_sub(S::Active);
        let schedule = |at: &str| Command::ScheduleCancel {
            effective_at: at.into(),
        };
        let (pending, change) = plan.apply(schedule("t9"), "t1").unwrap().unwrap();
        assert_eq!(change, Change::CancellationScheduled);
        assert!(pending.cancellation_pending() && pending.has_access());
        assert_eq!(
            pending.apply(schedule("t9"), "t2").unwrap(),
            None,
            "a repeat"
        );
        let (reinstated, change) = pending.apply(Command::Reinstate, "t2").unwrap().unwrap();
        assert_eq!(change, Change::Reinstated);
        assert!(!reinstated.cancellation_pending());
        assert_eq!(reinstated.apply(Command::Reinstate, "t3").unwrap(), None);
        let (cancelled, _) = pending
            .apply(
                Command::Cancel {
                    effective_at: "t9".into(),
                },
                "t9",
            )
            .unwrap()
            .unwrap();
        assert!(!cancelled.has_access() && !cancelled.cancellation_pending());
        assert_eq!(cancelled.cancellation_requested_at.as_deref(), Some("t1"));
        assert_eq!(
            cancelled.apply(Command::Reinstate, "t10"),
            Err(Refused::Cancelled)
        );
    }
}
