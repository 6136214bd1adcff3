//! An account's timeline: every hub event about the account, in order, once.

use serde::{Deserialize, Serialize};

use crate::{
    clock,
    domain::{AccountId, EventId},
    events::HubEvent,
    store::{Keys, Query, Record, StoreError, Table, keys},
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub account_id: AccountId,
    pub event_id: EventId,
    pub event_type: String,
    pub occurred_at: String,
    /// The event's data as JSON text.
    pub data: String,
}

impl TimelineEntry {
    pub fn of(account: AccountId, event: &HubEvent) -> Self {
        Self {
            account_id: account,
            event_id: event.event_id,
            event_type: event.detail_type().to_owned(),
            occurred_at: clock::sortable(event.occurred_at),
            data: event.data().to_string(),
        }
    }
}

impl Record for TimelineEntry {
    fn keys(&self) -> Keys {
        keys::timeline(self.account_id, &self.occurred_at, self.event_id)
    }
}

#[derive(Clone, Debug)]
pub struct Timeline {
    table: Table,
}

/// Whether an append wrote a new entry or found the event already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    New,
    Duplicate,
}

impl Timeline {
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    /// Appends an event to its account's timeline. The key is derived from the event,
    /// so a redelivered event finds its entry and writes nothing.
    pub async fn append(
        &self,
        account: AccountId,
        event: &HubEvent,
    ) -> Result<Appended, StoreError> {
        let entry = TimelineEntry::of(account, event);
        match self.table.put_new(&entry).await {
            Ok(()) => Ok(Appended::New),
            Err(StoreError::ConditionFailed) => Ok(Appended::Duplicate),
            Err(e) => Err(e),
        }
    }

    /// The account's newest `limit` entries, newest first (one page, however long the
    /// timeline).
    pub async fn latest(
        &self,
        account: AccountId,
        limit: usize,
    ) -> Result<Vec<TimelineEntry>, StoreError> {
        let query = Query::partition(keys::account_partition(account))
            .sort_begins_with(keys::TIMELINE_PREFIX)
            .descending();
        Ok(self.table.query_page(&query, limit, None).await?.0)
    }

    pub async fn list(&self, account: AccountId) -> Result<Vec<TimelineEntry>, StoreError> {
        self.table
            .query_all(
                &Query::partition(keys::account_partition(account))
                    .sort_begins_with(keys::TIMELINE_PREFIX),
            )
            .await
    }
}
