//! The transactional outbox, published from the table's stream.
//!
//! The unit of work (`store::tx`) writes one outbox item per committed change, holding
//! that change's events in order, in the same transaction that changes state. Nothing is
//! published on the request path: the table's DynamoDB stream carries each new outbox
//! item (INSERT records of `OUTBOX#` keys, filtered by the event source mapping) to the
//! `outbox-relay` function, which puts the events on the bus ([`Outbox::relay`]).
//!
//! - **Nothing lost:** the item is in the stream if and only if the transaction
//!   committed. A batch the relay cannot publish is retried from the first record not
//!   fully published (partial batch responses), so order is kept; after the retries its
//!   stream coordinates go to the dead-letter queue, and the items themselves stay in the
//!   table for [`OUTBOX_RETENTION`], where `hub-admin republish-events` puts them on the
//!   bus again ([`Outbox::republish`]).
//! - **Nothing extra:** a cancelled transaction writes no item, so no event is published
//!   for a change that did not commit. Consumers are idempotent by `eventId`: a record
//!   redelivered by the stream or republished by an operator changes nothing.
//! - One item per change (not one per event): a change's events share one stream record
//!   and stay in order, and a change costs one transaction action however many events.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{EventError, EventPublisher, HUB_EVENT_SOURCE, HubEvent, MAX_PUT_BYTES, entry_size};
use crate::{
    clock,
    domain::EventId,
    store::{
        Keys, Query, Record, Table,
        keys::{self, Due},
    },
};

/// How long outbox items stay in the table (TTL) after the change: longer than the
/// stream's 24 hours, so events the relay could not publish can still be republished.
pub const OUTBOX_RETENTION: Duration = Duration::from_secs(3 * 24 * 3600);
/// The most event bytes one outbox item holds: DynamoDB items are at most 400 KB.
pub const MAX_OUTBOX_BYTES: usize = 350 * 1024;

/// One event of a change, as it will be put on the bus. The detail is kept as JSON text
/// so it is published exactly as it was committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEvent {
    pub event_id: EventId,
    pub detail_type: String,
    pub detail: String,
}

impl OutboxEvent {
    pub fn from_event(event: &HubEvent) -> Result<Self, EventError> {
        Ok(Self {
            event_id: event.event_id,
            detail_type: event.detail_type().to_owned(),
            detail: serde_json::to_string(event)?,
        })
    }

    /// Its size as `PutEvents` counts it.
    pub fn size(&self) -> usize {
        entry_size(HUB_EVENT_SOURCE, &self.detail_type, &self.detail)
    }
}

/// The events of one committed change: one item, one stream record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxRecord {
    /// The id of the change's first event.
    pub id: EventId,
    pub events: Vec<OutboxEvent>,
    pub staged_at: String,
    /// TTL (epoch seconds): DynamoDB deletes the item after [`OUTBOX_RETENTION`].
    pub expires_at: i64,
}

impl Record for OutboxRecord {
    fn keys(&self) -> Keys {
        // In the due index by time, so an operator can republish a window of changes.
        keys::outbox(self.id).due(Due::Outbox, self.staged_at.clone())
    }
}

/// An event or a change too large to be stored or published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    pub bytes: usize,
    pub limit: usize,
}

impl OutboxRecord {
    /// The outbox item of a change's events (`None` for a change without events).
    pub fn stage(events: &[HubEvent]) -> Result<Option<Result<Self, TooLarge>>, EventError> {
        let Some(first) = events.first() else {
            return Ok(None);
        };
        let events = events
            .iter()
            .map(OutboxEvent::from_event)
            .collect::<Result<Vec<_>, _>>()?;
        // Refused before commit: an event no call could carry would never be published.
        if let Some(bytes) = events
            .iter()
            .map(OutboxEvent::size)
            .find(|b| *b > MAX_PUT_BYTES)
        {
            return Ok(Some(Err(TooLarge {
                bytes,
                limit: MAX_PUT_BYTES,
            })));
        }
        let bytes: usize = events.iter().map(OutboxEvent::size).sum();
        if bytes > MAX_OUTBOX_BYTES {
            return Ok(Some(Err(TooLarge {
                bytes,
                limit: MAX_OUTBOX_BYTES,
            })));
        }
        let now = clock::now();
        Ok(Some(Ok(Self {
            id: first.event_id,
            events,
            staged_at: clock::sortable(first.occurred_at),
            expires_at: (now + OUTBOX_RETENTION).unix_timestamp(),
        })))
    }
}

/// What one relay call did. `published_records` counts the records, from the first,
/// whose events are all on the bus: the rest must be delivered again, in order.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayReport {
    pub records: usize,
    pub events: usize,
    pub published_records: usize,
}

impl RelayReport {
    pub fn complete(&self) -> bool {
        self.published_records == self.records
    }
}

/// Puts outbox items' events on the bus (the relay), and republishes a window of them.
#[derive(Clone, Debug)]
pub struct Outbox {
    table: Table,
    pub publisher: EventPublisher,
}

impl Outbox {
    pub fn new(table: Table, publisher: EventPublisher) -> Self {
        Self { table, publisher }
    }

    /// Publishes the records' events in order (ten per `PutEvents`, failed entries
    /// retried). An error only when nothing could be published.
    pub async fn relay(&self, records: &[OutboxRecord]) -> Result<RelayReport, EventError> {
        let events: Vec<&OutboxEvent> = records.iter().flat_map(|r| &r.events).collect();
        let accepted = self.publisher.publish(&events).await?;
        let published_records = records
            .iter()
            .take_while(|r| r.events.iter().all(|e| accepted.contains(&e.event_id)))
            .count();
        Ok(RelayReport {
            records: records.len(),
            events: events.len(),
            published_records,
        })
    }

    /// Puts the events of changes staged in `[from, to)` on the bus again (after the
    /// relay failed past its retries). Consumers are idempotent, so a window that
    /// overlaps published events only redelivers them.
    pub async fn republish(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<RelayReport, EventError> {
        let records: Vec<OutboxRecord> = self
            .table
            .query_all(
                &Query::due(Due::Outbox, clock::sortable(to))
                    .sort_between(clock::sortable(from), clock::sortable(to)),
            )
            .await?;
        if records.is_empty() {
            return Ok(RelayReport::default());
        }
        self.relay(&records).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{AccountDeleted, EventPayload};

    fn deleted() -> HubEvent {
        HubEvent::new(EventPayload::AccountDeleted(AccountDeleted {
            customer_id: "c".into(),
            items_deleted: 1,
        }))
    }

    #[test]
    fn a_change_is_one_item_due_from_its_first_event_and_kept_three_days() {
        let events = [deleted(), deleted()];
        let record = OutboxRecord::stage(&events).unwrap().unwrap().unwrap();
        assert_eq!(record.id, events[0].event_id);
        assert_eq!(record.events.len(), 2);
        assert_eq!(record.events[1].event_id, events[1].event_id);
        assert_eq!(record.events[0].detail_type, "account.deleted");
        let keys = record.keys();
        assert_eq!(keys.pk, format!("OUTBOX#{}", events[0].event_id));
        assert_eq!(keys.due_pk.as_deref(), Some("OUTBOX"));
        assert_eq!(
            keys.due_at.as_deref(),
            Some(clock::sortable(events[0].occurred_at).as_str())
        );
        let ttl = record.expires_at - clock::now().unix_timestamp();
        assert!((3 * 24 * 3600 - 5..=3 * 24 * 3600).contains(&ttl), "{ttl}");
        assert!(OutboxRecord::stage(&[]).unwrap().is_none());
    }

    #[test]
    fn an_event_or_a_change_too_large_is_refused() {
        let mut big = deleted();
        big.payload = EventPayload::AccountDeleted(AccountDeleted {
            customer_id: "x".repeat(MAX_PUT_BYTES),
            items_deleted: 1,
        });
        let refused = OutboxRecord::stage(&[big]).unwrap().unwrap().unwrap_err();
        assert_eq!(refused.limit, MAX_PUT_BYTES);

        let mut half = deleted();
        half.payload = EventPayload::AccountDeleted(AccountDeleted {
            customer_id: "x".repeat(200 * 1024),
            items_deleted: 1,
        });
        let refused = OutboxRecord::stage(&[half.clone(), half])
            .unwrap()
            .unwrap()
            .unwrap_err();
        assert_eq!(refused.limit, MAX_OUTBOX_BYTES);
    }
}
