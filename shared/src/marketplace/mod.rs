//! Marketplace webhooks (`marketplace-webhooks.txt`) in domain terms: the hub is the
//! service partner and a marketplace (a `Partner` of kind `Marketplace`) tells it about
//! its users and their purchases. The wire format lives in `marketplace-webhooks`.
//!
//! - a marketplace user is a `Customer` account of the marketplace (id derived from the
//!   marketplace and its user id, so creation is a conditional put), billed by the
//!   marketplace; its personal data lives in a separate profile record;
//! - a purchase is a `Subscription` (the one subscription model) under the account, id
//!   derived from the account and the marketplace's product id;
//! - every change, its hub events and the ledger entry are one unit of work.

mod command;
mod profile;

use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

pub use command::{EventType, MarketplaceEvent, MarketplaceOutcome, Payload, ProductInfo};
pub use profile::{CustomerProfile, UserProfile, WebIdentity};

use crate::{
    accounts::Account,
    clock,
    domain::{
        AccountId, AccountKind, AccountStatus, BillingOwner, PartnerId, SubscriptionId,
        subscription::{Command, Refused, Subscription, Terms},
    },
    events::{CustomerChanged, EventPayload, HubEvent, SubscriptionSnapshot},
    partners::Partner,
    store::{
        Applied, Inbound, Planned, Query, StoreError, Table, Tx, TxError, UnitOfWork,
        keys::{self, Due},
    },
};

#[derive(Debug, thiserror::Error)]
pub enum MarketplaceError {
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
    #[error("a purchase needs a price and a price type")]
    IncompletePurchase,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tx(#[from] TxError),
}

/// The hub's user id as the marketplace sees it: `u-<account id without dashes>`.
pub fn user_partner_id(account: AccountId) -> String {
    format!("u-{}", account.as_uuid().simple())
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
    /// Changed by another request meanwhile (e.g. resumed).
    pub skipped: usize,
}

/// The marketplace callback's domain logic.
#[derive(Clone, Debug)]
pub struct Marketplaces {
    uow: UnitOfWork,
    grace: Duration,
}

impl Marketplaces {
    pub fn new(uow: UnitOfWork, grace: Duration) -> Self {
        Self { uow, grace }
    }

    fn table(&self) -> &Table {
        self.uow.table()
    }

    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// The ledger scope of a marketplace's event ids.
    pub fn ledger_scope(marketplace: PartnerId) -> String {
        format!("marketplace:{marketplace}")
    }

    /// Applies one event from `marketplace`. `body_hash` identifies the event's content
    /// for the idempotency ledger (see `store::ledger`).
    pub async fn handle(
        &self,
        marketplace: &Partner,
        event: &MarketplaceEvent,
        body_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Applied<MarketplaceOutcome>, MarketplaceError> {
        let account_id = AccountId::for_external(marketplace.id, &event.user_id);
        let inbound = Inbound::new(
            Self::ledger_scope(marketplace.id),
            event.id.as_str(),
            event.event_type.as_str(),
            body_hash,
        );
        let applied = self
            .uow
            .apply_inbound(&inbound, Some(account_id), || {
                self.plan(marketplace.id, event, account_id, now)
            })
            .await?;
        if let Applied::Committed(_) = &applied {
            tracing::info!(
                marketplace = %marketplace.id,
                account = %account_id,
                event_type = event.event_type.as_str(),
                "marketplace event applied"
            );
        }
        Ok(applied)
    }

    async fn plan(
        &self,
        marketplace_id: PartnerId,
        event: &MarketplaceEvent,
        account_id: AccountId,
        now: OffsetDateTime,
    ) -> Result<Planned<MarketplaceOutcome>, MarketplaceError> {
        let user_id = user_partner_id(account_id);
        if let Some(got) = &event.user_partner_id
            && *got != user_id
        {
            return Err(MarketplaceError::UserPartnerIdMismatch {
                expected: user_id,
                got: got.clone(),
            });
        }
        let (account_key, profile_key) = (keys::account(account_id), keys::profile(account_id));
        // A product event's subscription is read with the account and the profile (its
        // key follows from the event): one round trip.
        let product_key = match &event.payload {
            Payload::Product(product) => Some(keys::subscription(
                account_id,
                SubscriptionId::for_product(account_id, &product.id),
            )),
            _ => None,
        };
        let (account, profile, existing) = tokio::try_join!(
            self.table().get::<Account>(&account_key),
            self.table().get::<CustomerProfile>(&profile_key),
            async {
                match &product_key {
                    Some(key) => self.table().get::<Subscription>(key).await,
                    None => Ok(None),
                }
            },
        )?;
        let erased = profile.as_ref().is_some_and(|p| p.erased_at.is_some());
        let mut tx = Tx::new();
        let hub_event = |payload| HubEvent::new(payload).for_account(account_id, marketplace_id);
        let mut outcome = MarketplaceOutcome {
            user_partner_id: user_id,
            product_partner_id: None,
        };
        let at = clock::sortable(now);
        let customer = CustomerChanged {
            external_id: event.user_id.clone(),
            billing: BillingOwner::Marketplace,
        };

        match (&event.payload, event.event_type) {
            (Payload::Product(product), _) => {
                if account.is_none() {
                    return Err(MarketplaceError::UnknownUser(event.user_id.to_string()));
                }
                let id = SubscriptionId::for_product(account_id, &product.id);
                outcome.product_partner_id = Some(id.partner_id());
                if let Some(got) = &product.partner_id
                    && *got != id.partner_id()
                {
                    return Err(MarketplaceError::ProductPartnerIdMismatch {
                        expected: id.partner_id(),
                        got: got.clone(),
                    });
                }
                let changed = self.product_change(
                    event,
                    product,
                    existing.as_ref(),
                    (account_id, marketplace_id),
                    erased,
                    now,
                )?;
                if let Some((next, change)) = changed {
                    tx.put_revision(&next, existing.as_ref().map(|s| s.revision))?;
                    if let Some(payload) =
                        EventPayload::for_change(change, SubscriptionSnapshot::of(&next))
                    {
                        tx.event(hub_event(payload));
                    }
                }
            }
            (Payload::User(new_profile), EventType::UserCreate | EventType::UserUpdate) => {
                if erased {
                    return Err(MarketplaceError::UserDeleted(event.user_id.to_string()));
                }
                let created = match account {
                    None if event.event_type == EventType::UserCreate => {
                        let account = Account {
                            id: account_id,
                            partner_id: marketplace_id,
                            kind: AccountKind::Customer,
                            external_id: event.user_id.clone(),
                            status: AccountStatus::Active,
                            shop: None,
                            credentials: None,
                            billing: BillingOwner::Marketplace,
                            pages: Vec::new(),
                            running: true,
                            paused_intervals: Vec::new(),
                            access_token_hash: None,
                            created_at: at.clone(),
                            updated_at: at.clone(),
                        };
                        tx.put_new(&account)?
                            .event(hub_event(EventPayload::CustomerCreated(customer.clone())));
                        true
                    }
                    None => return Err(MarketplaceError::UnknownUser(event.user_id.to_string())),
                    Some(_) => false,
                };
                let unchanged = profile
                    .as_ref()
                    .is_some_and(|p| p.profile.as_ref() == Some(new_profile));
                if !unchanged {
                    let next = CustomerProfile {
                        account_id,
                        marketplace_id,
                        profile: Some(new_profile.clone()),
                        erased_at: None,
                        updated_at: at,
                        revision: profile.as_ref().map_or(1, |p| p.revision + 1),
                    };
                    tx.put_revision(&next, profile.as_ref().map(|p| p.revision))?;
                    if !created {
                        tx.event(hub_event(EventPayload::CustomerUpdated(customer)));
                    }
                }
            }
            (_, EventType::UserDelete) => {
                if account.is_none() {
                    return Err(MarketplaceError::UnknownUser(event.user_id.to_string()));
                }
                if !erased {
                    let tombstone = CustomerProfile {
                        account_id,
                        marketplace_id,
                        profile: None,
                        erased_at: Some(at.clone()),
                        updated_at: at,
                        revision: profile.as_ref().map_or(1, |p| p.revision + 1),
                    };
                    tx.put_revision(&tombstone, profile.as_ref().map(|p| p.revision))?
                        .event(hub_event(EventPayload::CustomerErased(customer)));
                }
            }
            // The parser pairs user events with user payloads; anything else is refused.
            _ => return Err(MarketplaceError::UnknownUser(event.user_id.to_string())),
        }
        Ok(Planned::new(tx, outcome))
    }

    /// The subscription a product event leads to: `None` when it changes nothing.
    fn product_change(
        &self,
        event: &MarketplaceEvent,
        product: &ProductInfo,
        existing: Option<&Subscription>,
        (account_id, marketplace_id): (AccountId, PartnerId),
        erased: bool,
        now: OffsetDateTime,
    ) -> Result<Option<(Subscription, crate::domain::subscription::Change)>, MarketplaceError> {
        use crate::domain::subscription::Change;
        let at = clock::sortable(now);
        let product_name = || product.id.to_string();
        let command = match event.event_type {
            EventType::ProductPurchase => {
                if erased {
                    return Err(MarketplaceError::UserDeleted(event.user_id.to_string()));
                }
                let terms = product_terms(product)?;
                let Some(current) = existing else {
                    let new = Subscription::new(
                        SubscriptionId::for_product(account_id, &product.id),
                        account_id,
                        marketplace_id,
                        event.user_id.clone(),
                        BillingOwner::Marketplace,
                        terms,
                        &at,
                    );
                    return Ok(Some((new, Change::Purchased)));
                };
                // Refused never: a purchase applies to any status.
                return Ok(current
                    .apply(Command::Purchase { terms }, &at)
                    .unwrap_or(None));
            }
            EventType::ProductCancel => Command::Cancel {
                effective_at: at.clone(),
            },
            EventType::ProductSuspend => Command::PaymentFailed {
                suspend_at: clock::sortable(suspension_due(now, self.grace)),
            },
            EventType::ProductResume => Command::Resume,
            _ => return Ok(None),
        };
        let current = existing.ok_or_else(|| MarketplaceError::UnknownProduct(product_name()))?;
        current
            .apply(command, &at)
            .map_err(|refused| match refused {
                Refused::Cancelled => MarketplaceError::SubscriptionCancelled(product_name()),
            })
    }

    /// Suspends the subscriptions whose grace period ended at or before `now`.
    pub async fn suspend_due(
        &self,
        now: OffsetDateTime,
    ) -> Result<SuspensionReport, MarketplaceError> {
        let due: Vec<Subscription> = self
            .table()
            .query_all(&Query::due(Due::Suspension, clock::sortable(now)))
            .await?;
        let mut report = SuspensionReport {
            due: due.len(),
            ..SuspensionReport::default()
        };
        for found in due {
            let keys = &keys::subscription(found.account_id, found.id);
            let suspended = self
                .uow
                .apply(move || async move {
                    let Some(current) = self.table().get::<Subscription>(keys).await? else {
                        return Ok::<_, MarketplaceError>(Planned::nothing(false));
                    };
                    let at = clock::sortable(now);
                    let Ok(Some((next, change))) = current.apply(Command::Suspend, &at) else {
                        return Ok(Planned::nothing(false));
                    };
                    let mut tx = Tx::new();
                    tx.put_revision(&next, Some(current.revision))?;
                    if let Some(payload) =
                        EventPayload::for_change(change, SubscriptionSnapshot::of(&next))
                    {
                        tx.event(
                            HubEvent::new(payload).for_account(next.account_id, next.partner_id),
                        );
                    }
                    Ok(Planned::new(tx, true))
                })
                .await?;
            if suspended {
                report.suspended += 1;
            } else {
                report.skipped += 1;
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
            .table()
            .query_all(
                &Query::partition(keys::account_partition(account))
                    .sort_begins_with(keys::SUBSCRIPTION_PREFIX),
            )
            .await?)
    }

    pub async fn profile(
        &self,
        account: AccountId,
    ) -> Result<Option<CustomerProfile>, MarketplaceError> {
        Ok(self.table().get(&keys::profile(account)).await?)
    }
}

fn product_terms(product: &ProductInfo) -> Result<Terms, MarketplaceError> {
    let (Some(price), Some(price_type)) = (&product.price, &product.price_type) else {
        return Err(MarketplaceError::IncompletePurchase);
    };
    Ok(Terms::Product {
        product_id: product.id.clone(),
        name: product.name.clone(),
        price: price.clone(),
        price_type: price_type.clone(),
        price_interval: product.price_interval.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ExternalId;

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
}
