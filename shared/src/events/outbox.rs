//! The transactional outbox: the unit of work (`store::tx`) writes an outbox item per
//! event in the transaction that changes state; the items are published right after and
//! deleted once EventBridge took them. A scheduled sweep publishes what a crash left
//! behind, so no event is lost and none is published for a change that did not commit.
//! Consumers are idempotent (events carry a stable `eventId`): a sweep may publish twice.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{EventError, EventPublisher, HubEvent};
use crate::{
    clock,
    domain::EventId,
    store::{
        Keys, Query, Record, Table,
        keys::{self, Due},
    },
};

/// An event waiting in the outbox. The detail is kept as JSON text so it is published
/// exactly as it was committed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxRecord {
    pub event_id: EventId,
    pub detail_type: String,
    pub detail: String,
    pub staged_at: String,
}

impl Record for OutboxRecord {
    fn keys(&self) -> Keys {
        keys::outbox(self.event_id).due(Due::Outbox, self.staged_at.clone())
    }
}

impl OutboxRecord {
    pub fn from_event(event: &HubEvent) -> Result<Self, EventError> {
        Ok(Self {
            event_id: event.event_id,
            detail_type: event.detail_type().to_owned(),
            detail: serde_json::to_string(event)?,
            staged_at: clock::sortable(event.occurred_at),
        })
    }
}

/// What a sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub found: usize,
    pub published: usize,
}

/// Stages events with a state change and publishes them once it committed.
#[derive(Clone, Debug)]
pub struct Outbox {
    table: Table,
    pub publisher: EventPublisher,
}

impl Outbox {
    /// Outbox items younger than this are left to the request that wrote them.
    pub const SWEEP_GRACE: Duration = Duration::from_secs(30);

    pub fn new(table: Table, publisher: EventPublisher) -> Self {
        Self { table, publisher }
    }

    /// Publishes committed events and clears them from the outbox. Failures are logged,
    /// not returned: the change is committed and the sweep will publish what is left.
    pub async fn publish_committed(&self, records: &[OutboxRecord]) {
        if let Err(err) = self.try_publish(records).await {
            tracing::warn!(error = %err, "publishing after commit failed; the sweep will retry");
        }
    }

    async fn try_publish(&self, records: &[OutboxRecord]) -> Result<usize, EventError> {
        let accepted = self.publisher.publish(records).await?;
        let published: Vec<_> = records
            .iter()
            .filter(|r| accepted.contains(&r.event_id))
            .map(Record::keys)
            .collect();
        self.table.delete_many(&published).await?;
        Ok(accepted.len())
    }

    /// Publishes every outbox item older than the grace period.
    pub async fn sweep(&self, now: OffsetDateTime) -> Result<SweepReport, EventError> {
        self.sweep_older_than(now, Self::SWEEP_GRACE).await
    }

    pub async fn sweep_older_than(
        &self,
        now: OffsetDateTime,
        grace: Duration,
    ) -> Result<SweepReport, EventError> {
        let until = clock::sortable(now - grace);
        let due: Vec<OutboxRecord> = self
            .table
            .query_all(&Query::due(Due::Outbox, until))
            .await?;
        let published = if due.is_empty() {
            0
        } else {
            self.try_publish(&due).await?
        };
        Ok(SweepReport {
            found: due.len(),
            published,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{AccountDeleted, EventPayload};

    #[test]
    fn outbox_items_are_due_from_when_they_were_staged() {
        let event = HubEvent::new(EventPayload::AccountDeleted(AccountDeleted {
            customer_id: "c".into(),
            items_deleted: 1,
        }));
        let record = OutboxRecord::from_event(&event).unwrap();
        let keys = record.keys();
        assert_eq!(keys.due_pk.as_deref(), Some("OUTBOX"));
        assert_eq!(
            keys.due_at.as_deref(),
            Some(clock::sortable(event.occurred_at).as_str())
        );
        assert_eq!(record.detail_type, "account.deleted");
    }
}
