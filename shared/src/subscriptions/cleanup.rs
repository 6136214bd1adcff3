//! Cancelled accounts past their effective date: every key family the account owns is
//! removed as `store::keys::FAMILIES` says, and a tombstone with the cancellation facts
//! remains. Bulk deletes are paginated batch writes; the tombstone, the job's removal
//! and `account.deleted` are one transaction.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{SubscriptionError, Subscriptions};
use crate::{
    clock,
    domain::{AccountId, ExternalId, PartnerId},
    events::{AccountDeleted, EventPayload, HubEvent},
    store::{
        Keys, Planned, Query, Record, Tx,
        keys::{self, Due},
    },
};

/// Work due: delete a cancelled account's data once its effective date passed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CleanupJob {
    pub account_id: AccountId,
    pub due_at: String,
}

impl Record for CleanupJob {
    fn keys(&self) -> Keys {
        keys::cleanup_job(self.account_id).due(Due::Cleanup, self.due_at.clone())
    }
}

/// What remains of a deleted account: the cancellation facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    pub account_id: AccountId,
    pub partner_id: PartnerId,
    pub external_id: ExternalId,
    /// The tier (or product) that was cancelled.
    pub tier: String,
    pub effective_date: String,
    pub cancellation_received_at: String,
    pub deleted_at: String,
    pub items_deleted: usize,
}

impl Record for Tombstone {
    fn keys(&self) -> Keys {
        keys::tombstone(self.account_id)
    }
}

/// A report of one cleanup run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CleanupReport {
    pub due: usize,
    pub deleted_accounts: usize,
}

impl Subscriptions {
    pub async fn tombstone(
        &self,
        account: AccountId,
    ) -> Result<Option<Tombstone>, SubscriptionError> {
        Ok(self.table().get(&keys::tombstone(account)).await?)
    }

    /// Deletes the data of every cancelled account whose effective date has passed.
    pub async fn cleanup_due(
        &self,
        now: OffsetDateTime,
    ) -> Result<CleanupReport, SubscriptionError> {
        let due: Vec<CleanupJob> = self
            .table()
            .query_all(&Query::due(Due::Cleanup, clock::sortable(now)))
            .await?;
        let mut report = CleanupReport {
            due: due.len(),
            deleted_accounts: 0,
        };
        for job in due {
            self.take_effect(job.account_id, now).await?;
            if self.delete_account_data(job.account_id, now).await? {
                report.deleted_accounts += 1;
            }
        }
        Ok(report)
    }

    /// Deletes everything stored for the account and leaves a tombstone.
    pub(super) async fn delete_account_data(
        &self,
        account_id: AccountId,
        now: OffsetDateTime,
    ) -> Result<bool, SubscriptionError> {
        let table = self.table();
        let Some(plan) = self.plan(account_id).await? else {
            // Already deleted (a repeated run): just clear the job.
            table.delete(&keys::cleanup_job(account_id)).await?;
            return Ok(false);
        };
        // Cleanup::ListedOnSubscription, then the two partitions.
        if let Some(installation) = &plan.installation {
            for key in [&installation.widget_key, &installation.search_key] {
                table.delete(&keys::widget_key(key)).await?;
            }
        }
        let mut deleted = table
            .delete_partition(&keys::analytics_partition(account_id))
            .await?;
        deleted += table
            .delete_partition(&keys::account_partition(account_id))
            .await?;
        let at = clock::sortable(now);
        let tombstone = Tombstone {
            account_id,
            partner_id: plan.partner_id,
            external_id: plan.customer_id.clone(),
            tier: plan.terms.label().to_owned(),
            effective_date: plan
                .cancellation_effective_at
                .clone()
                .unwrap_or_else(|| at.clone()),
            cancellation_received_at: plan
                .cancellation_requested_at
                .clone()
                .unwrap_or_else(|| at.clone()),
            deleted_at: at,
            items_deleted: deleted,
        };
        let event = HubEvent::new(EventPayload::AccountDeleted(AccountDeleted {
            customer_id: plan.customer_id.to_string(),
            items_deleted: deleted,
        }))
        .for_account(account_id, plan.partner_id);
        let (tombstone, event) = (&tombstone, &event);
        self.uow
            .apply(move || async move {
                let mut tx = Tx::new();
                tx.put(tombstone)?
                    .delete(keys::cleanup_job(account_id))
                    .event(event.clone());
                Ok::<_, SubscriptionError>(Planned::new(tx, ()))
            })
            .await?;
        Ok(true)
    }
}
