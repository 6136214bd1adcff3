//! The subscription lifecycle a partner drives over EventBridge
//! (`subscription-events-eventbridge.md`), in domain terms: Create Subscription
//! provisions (or upgrades) a customer's account with a tier plan, QA approval emits
//! `installation.ready`, and Cancellation stops the account at once and deletes its
//! data once the effective date has passed (`cleanup`). The contract's wire format
//! lives in the `subscription-events` and `partner-notifier` functions.

mod catalog;
mod cleanup;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use catalog::TierCatalog;
pub use cleanup::{CleanupJob, CleanupReport, Tombstone};

use crate::{
    accounts::Account,
    clock,
    domain::{
        AccountId, AccountKind, AccountStatus, BillingOwner, ExternalId, PartnerId, SubscriptionId,
        SubscriptionStatus,
        subscription::{Change, Command, Installation, Refused, Subscription, Terms},
    },
    events::{AccountProvisioned, EventPayload, HubEvent, InstallationReady, SubscriptionSnapshot},
    partners::PartnerRoute,
    secrets::random_token,
    store::{Inbound, Keys, Planned, Record, StoreError, Table, Tx, TxError, UnitOfWork, keys},
};

#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    /// The request can never be processed as sent.
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
    Tx(#[from] TxError),
}

impl SubscriptionError {
    /// Whether retrying could help (storage or the bus), as opposed to bad input.
    pub fn is_transient(&self) -> bool {
        match self {
            SubscriptionError::Store(e) => e.is_transient(),
            SubscriptionError::Tx(e) => e.is_transient(),
            _ => false,
        }
    }

    pub fn invalid(field: &'static str, err: impl std::fmt::Display) -> Self {
        SubscriptionError::Invalid {
            field,
            message: err.to_string(),
        }
    }
}

impl From<Refused> for SubscriptionError {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::Cancelled => SubscriptionError::Cancelled,
        }
    }
}

/// A Create Subscription request in domain terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSubscription {
    pub customer: ExternalId,
    pub tier: String,
    pub contract_length_months: u32,
    /// An absolute http(s) URL.
    pub website: String,
    pub template: String,
    pub company_name: String,
}

/// A Cancellation request in domain terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelSubscription {
    pub customer: ExternalId,
    pub effective_date: OffsetDateTime,
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
        keys::widget_key(&self.key)
    }
}

/// What a handled event did (stored in the ledger, answered again on redelivery).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Created,
    Upgraded,
    /// The same tier with other details.
    Updated,
    /// A pending cancellation was withdrawn.
    Reinstated,
    Unchanged,
    /// A future-dated cancellation was recorded.
    CancellationScheduled,
    /// The same envelope id was processed before.
    Redelivered,
    Cancelled,
}

fn outcome(applied: crate::store::Applied<Outcome>) -> Outcome {
    if applied.is_duplicate() {
        Outcome::Redelivered
    } else {
        applied.into_inner()
    }
}

#[derive(Clone, Debug)]
pub struct Subscriptions {
    uow: UnitOfWork,
    catalog: TierCatalog,
    auto_approve: bool,
}

impl Subscriptions {
    pub fn new(uow: UnitOfWork, catalog: TierCatalog, auto_approve: bool) -> Self {
        Self {
            uow,
            catalog,
            auto_approve,
        }
    }

    fn table(&self) -> &Table {
        self.uow.table()
    }

    pub fn catalog(&self) -> &TierCatalog {
        &self.catalog
    }

    /// A customer's tier plan.
    pub async fn plan(
        &self,
        account: AccountId,
    ) -> Result<Option<Subscription>, SubscriptionError> {
        Ok(self
            .table()
            .get(&keys::subscription(
                account,
                SubscriptionId::for_plan(account),
            ))
            .await?)
    }

    /// A customer's plan and account, read together.
    async fn plan_and_account(
        &self,
        account_id: AccountId,
    ) -> Result<(Option<Subscription>, Option<Account>), SubscriptionError> {
        let account_key = keys::account(account_id);
        Ok(tokio::try_join!(self.plan(account_id), async {
            Ok(self.table().get::<Account>(&account_key).await?)
        })?)
    }

    pub async fn widget_key(
        &self,
        key: &str,
    ) -> Result<Option<WidgetKeyRecord>, SubscriptionError> {
        Ok(self.table().get(&keys::widget_key(key)).await?)
    }

    /// The ledger scope of a partner's EventBridge envelope ids.
    pub fn ledger_scope(partner: PartnerId) -> String {
        format!("partner-events:{partner}")
    }

    /// Create Subscription: a new customer is provisioned, a known one with another tier
    /// upgraded; a redelivered envelope changes nothing.
    pub async fn create_or_upgrade(
        &self,
        route: &PartnerRoute,
        inbound: &Inbound,
        request: CreateSubscription,
    ) -> Result<Outcome, SubscriptionError> {
        let account_id = AccountId::for_external(route.partner_id, &request.customer);
        let applied = self
            .uow
            .apply_inbound(inbound, Some(account_id), || {
                self.plan_create(route.partner_id, &request, account_id)
            })
            .await?;
        Ok(outcome(applied))
    }

    async fn plan_create(
        &self,
        partner_id: PartnerId,
        request: &CreateSubscription,
        account_id: AccountId,
    ) -> Result<Planned<Outcome>, SubscriptionError> {
        let products = self
            .catalog
            .products(&request.tier)
            .ok_or_else(|| {
                SubscriptionError::invalid(
                    "tier",
                    format!(
                        "unknown tier '{}' (known: {})",
                        request.tier,
                        self.catalog.tiers().join(", ")
                    ),
                )
            })?
            .to_vec();
        let terms = Terms::Tier {
            tier: request.tier.clone(),
            products,
            contract_length_months: request.contract_length_months,
        };
        let now = clock::sortable(clock::now());
        let (plan, account) = self.plan_and_account(account_id).await?;
        match (plan, account) {
            (Some(plan), Some(account)) if account.status != AccountStatus::Cancelled => {
                self.plan_change(partner_id, request, plan, terms, &now)
            }
            (_, Some(account)) if account.status != AccountStatus::Cancelled => {
                Err(SubscriptionError::invalid(
                    "id",
                    "this customer's account was not provisioned by a subscription",
                ))
            }
            // Cancelled, data not yet deleted: a new subscription waits for the cleanup.
            (_, Some(_)) => Err(SubscriptionError::Cancelled),
            // New customer (or one whose earlier account was cancelled and deleted).
            (_, None) => self.plan_new_customer(partner_id, request, account_id, terms, now),
        }
    }

    /// Create Subscription for a known customer: withdraws a pending cancellation, and
    /// upgrades (another tier) or updates (the same tier, other details) the plan. An
    /// upgrade that adds channels to a live plan sends Ready for Installation again, with
    /// every key (a plan waiting for QA gets it on approval).
    fn plan_change(
        &self,
        partner_id: PartnerId,
        request: &CreateSubscription,
        plan: Subscription,
        terms: Terms,
        now: &str,
    ) -> Result<Planned<Outcome>, SubscriptionError> {
        let account_id = plan.account_id;
        let mut tx = Tx::new();
        let mut current = plan.clone();
        let mut changes = Vec::new();
        if let Some((reinstated, change)) = current.apply(Command::Reinstate, now)? {
            tx.delete(keys::cleanup_job(account_id));
            current = reinstated;
            changes.push(change);
        }
        let installation = current.installation.clone().map(|installed| Installation {
            website: request.website.clone(),
            template: request.template.clone(),
            company_name: request.company_name.clone(),
            ..installed
        });
        let command = Command::ChangeTerms {
            terms,
            installation,
        };
        if let Some((changed, change)) = current.apply(command, now)? {
            current = changed;
            changes.push(change);
        }
        if changes.is_empty() {
            return Ok(Planned::nothing(Outcome::Unchanged));
        }
        tx.put_revision(&current, Some(plan.revision))?;
        let event = |payload| HubEvent::new(payload).for_account(account_id, partner_id);
        for change in &changes {
            let mut snapshot = SubscriptionSnapshot::of(&current);
            if *change == Change::Upgraded {
                snapshot.previous_tier = plan.tier().map(str::to_owned);
            }
            if let Some(payload) = EventPayload::for_change(*change, snapshot) {
                tx.event(event(payload));
            }
        }
        let added_channels = current.products().iter().any(|p| !plan.has(p));
        if changes.contains(&Change::Upgraded)
            && added_channels
            && current.status == SubscriptionStatus::Active
        {
            tx.event(ready_event(&current));
        }
        let outcome = if changes.contains(&Change::Upgraded) {
            Outcome::Upgraded
        } else if changes.contains(&Change::Updated) {
            Outcome::Updated
        } else {
            Outcome::Reinstated
        };
        Ok(Planned::new(tx, outcome))
    }

    fn plan_new_customer(
        &self,
        partner_id: PartnerId,
        request: &CreateSubscription,
        account_id: AccountId,
        terms: Terms,
        now: String,
    ) -> Result<Planned<Outcome>, SubscriptionError> {
        let approved_at = self.auto_approve.then(|| now.clone());
        let status = if approved_at.is_some() {
            SubscriptionStatus::Active
        } else {
            SubscriptionStatus::PendingApproval
        };
        let mut plan = Subscription::new(
            SubscriptionId::for_plan(account_id),
            account_id,
            partner_id,
            request.customer.clone(),
            BillingOwner::Partner,
            terms,
            &now,
        )
        .with_status(status);
        plan.approved_at = approved_at.clone();
        plan.installation = Some(Installation {
            website: request.website.clone(),
            template: request.template.clone(),
            company_name: request.company_name.clone(),
            widget_key: random_token("wk_"),
            search_key: random_token("sk_pub_"),
        });
        let account = Account {
            id: account_id,
            partner_id,
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
            running: true,
            paused_intervals: Vec::new(),
            access_token_hash: None,
            created_at: now.clone(),
            updated_at: now,
        };
        let event = |payload| HubEvent::new(payload).for_account(account_id, partner_id);
        let mut tx = Tx::new();
        tx.put_new(&account)?
            .put_revision(&plan, None)?
            .event(event(EventPayload::AccountProvisioned(
                AccountProvisioned {
                    kind: AccountKind::Customer,
                    external_id: request.customer.clone(),
                    status: account.status,
                    name: request.company_name.clone(),
                    shop: None,
                    platform: None,
                },
            )))
            .event(event(EventPayload::SubscriptionCreated(
                SubscriptionSnapshot::of(&plan),
            )));
        if approved_at.is_some() {
            tx.event(ready_event(&plan));
        }
        if let Some(installation) = &plan.installation {
            for key in [&installation.widget_key, &installation.search_key] {
                tx.put_new(&WidgetKeyRecord {
                    key: key.clone(),
                    account_id,
                    partner_id,
                })?;
            }
        }
        Ok(Planned::new(tx, Outcome::Created))
    }

    /// QA passed: the account goes live and Ready for Installation is sent (once).
    pub async fn approve(&self, account_id: AccountId) -> Result<bool, SubscriptionError> {
        self.uow.apply(|| self.plan_approve(account_id)).await
    }

    async fn plan_approve(
        &self,
        account_id: AccountId,
    ) -> Result<Planned<bool>, SubscriptionError> {
        let (Some(plan), Some(mut account)) = self.plan_and_account(account_id).await? else {
            return Err(SubscriptionError::UnknownAccount(account_id));
        };
        let now = clock::sortable(clock::now());
        let Some((approved, _)) = plan.apply(Command::Approve, &now)? else {
            return Ok(Planned::nothing(false));
        };
        account.status = AccountStatus::Active;
        account.updated_at = now;
        let mut tx = Tx::new();
        tx.put_revision(&approved, Some(plan.revision))?
            .put(&account)?
            .event(ready_event(&approved));
        Ok(Planned::new(tx, true))
    }

    /// Cancellation: recorded at once; the customer keeps working until the effective
    /// date, when the account is cancelled, its keys stop and its data is deleted (at
    /// once when the date has passed; otherwise by the `account-cleanup` schedule).
    pub async fn cancel(
        &self,
        route: &PartnerRoute,
        inbound: &Inbound,
        request: CancelSubscription,
    ) -> Result<Outcome, SubscriptionError> {
        let account_id = AccountId::for_external(route.partner_id, &request.customer);
        let now = clock::now();
        let applied = self
            .uow
            .apply_inbound(inbound, Some(account_id), || {
                self.plan_cancel(&request, account_id, now)
            })
            .await?;
        let done = outcome(applied);
        if done == Outcome::Cancelled {
            self.delete_account_data(account_id, now).await?;
        }
        Ok(done)
    }

    async fn plan_cancel(
        &self,
        request: &CancelSubscription,
        account_id: AccountId,
        now: OffsetDateTime,
    ) -> Result<Planned<Outcome>, SubscriptionError> {
        let (Some(plan), Some(account)) = self.plan_and_account(account_id).await? else {
            return Err(SubscriptionError::UnknownCustomer(
                request.customer.to_string(),
            ));
        };
        let at = clock::sortable(now);
        let effective = clock::sortable(request.effective_date);
        if request.effective_date <= now {
            return Ok(match cancel_now(&plan, account, &effective, &at)? {
                Some(tx) => Planned::new(tx, Outcome::Cancelled),
                None => Planned::nothing(Outcome::Unchanged),
            });
        }
        let command = Command::ScheduleCancel {
            effective_at: effective.clone(),
        };
        let Some((pending, change)) = plan.apply(command, &at)? else {
            return Ok(Planned::nothing(Outcome::Unchanged));
        };
        let mut tx = Tx::new();
        tx.put_revision(&pending, Some(plan.revision))?
            .put(&CleanupJob {
                account_id,
                due_at: effective,
            })?;
        if let Some(payload) = EventPayload::for_change(change, SubscriptionSnapshot::of(&pending))
        {
            tx.event(HubEvent::new(payload).for_account(account_id, plan.partner_id));
        }
        Ok(Planned::new(tx, Outcome::CancellationScheduled))
    }

    /// A cancellation whose effective date has come: the plan and the account become
    /// cancelled and the keys stop working (the data is deleted right after).
    pub(super) async fn take_effect(
        &self,
        account_id: AccountId,
        now: OffsetDateTime,
    ) -> Result<(), SubscriptionError> {
        let at = clock::sortable(now);
        self.uow
            .apply(|| async {
                let (Some(plan), Some(account)) = self.plan_and_account(account_id).await? else {
                    return Ok(Planned::nothing(()));
                };
                let effective = plan
                    .cancellation_effective_at
                    .clone()
                    .unwrap_or_else(|| at.clone());
                Ok(match cancel_now(&plan, account, &effective, &at)? {
                    Some(tx) => Planned::new(tx, ()),
                    None => Planned::nothing(()),
                })
            })
            .await
    }
}

/// The writes that cancel a plan now: the plan and its account cancelled, the widget and
/// search keys removed (reports stop at once), the cleanup due now, and the event.
fn cancel_now(
    plan: &Subscription,
    mut account: Account,
    effective: &str,
    at: &str,
) -> Result<Option<Tx>, SubscriptionError> {
    let command = Command::Cancel {
        effective_at: effective.to_owned(),
    };
    let Some((cancelled, change)) = plan.apply(command, at)? else {
        return Ok(None);
    };
    account.status = AccountStatus::Cancelled;
    account.updated_at = at.to_owned();
    let mut tx = Tx::new();
    tx.put_revision(&cancelled, Some(plan.revision))?
        .put(&account)?
        .put(&CleanupJob {
            account_id: plan.account_id,
            due_at: at.to_owned(),
        })?;
    if let Some(installation) = &plan.installation {
        tx.delete(keys::widget_key(&installation.widget_key))
            .delete(keys::widget_key(&installation.search_key));
    }
    if let Some(payload) = EventPayload::for_change(change, SubscriptionSnapshot::of(&cancelled)) {
        tx.event(HubEvent::new(payload).for_account(plan.account_id, plan.partner_id));
    }
    Ok(Some(tx))
}

fn ready_event(plan: &Subscription) -> HubEvent {
    HubEvent::new(EventPayload::InstallationReady(InstallationReady {
        customer_id: plan.customer_id.to_string(),
    }))
    .for_account(plan.account_id, plan.partner_id)
}
