//! The hub's events: the transactional outbox and the EventBridge publisher.
//!
//! A state change and the events it causes are written in one transaction (an outbox
//! item per event), published right after, and the outbox item deleted once EventBridge
//! took the event. A scheduled sweep publishes what a crash left behind, so no event is
//! lost and none is published for a change that did not commit. Consumers are idempotent
//! (events carry a stable `eventId`): a sweep may publish an event twice.

use std::time::Duration;

use aws_sdk_dynamodb::types::TransactWriteItem;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{
    clock,
    domain::{AccountId, EventId, PartnerId},
    store::{Keys, Query, Record, StoreError, Table},
};

/// The `source` of every event the hub puts on its own bus.
pub const HUB_EVENT_SOURCE: &str = "partner-hub";
/// `PutEvents` takes at most 10 entries per call.
pub const MAX_ENTRIES_PER_PUT: usize = 10;
const DUE_KIND_OUTBOX: &str = "OUTBOX";
const PUBLISH_ATTEMPTS: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("EventBridge request failed: {0}")]
    EventBridge(String),
    #[error("event could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The detail of every hub event (`detail` of the EventBridge envelope).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HubEvent {
    pub event_id: EventId,
    /// Same as the envelope's `detail-type`, e.g. `account.provisioned`.
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<AccountId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_id: Option<PartnerId>,
    #[serde(default)]
    pub data: serde_json::Value,
}

impl HubEvent {
    pub fn new(event_type: &str, data: serde_json::Value) -> Self {
        Self {
            event_id: EventId::random(),
            event_type: event_type.to_owned(),
            occurred_at: clock::now(),
            account_id: None,
            partner_id: None,
            data,
        }
    }

    pub fn for_account(mut self, account: AccountId, partner: PartnerId) -> Self {
        self.account_id = Some(account);
        self.partner_id = Some(partner);
        self
    }
}

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
        Keys::new(format!("OUTBOX#{}", self.event_id), "OUTBOX")
            .due(DUE_KIND_OUTBOX, self.staged_at.clone())
    }
}

impl OutboxRecord {
    pub fn from_event(event: &HubEvent) -> Result<Self, EventError> {
        Ok(Self {
            event_id: event.event_id,
            detail_type: event.event_type.clone(),
            detail: serde_json::to_string(event)?,
            staged_at: clock::sortable(event.occurred_at),
        })
    }
}

/// Puts events on the hub's bus: chunks of at most 10, failed entries retried.
#[derive(Clone, Debug)]
pub struct EventPublisher {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
}

impl EventPublisher {
    pub fn new(client: aws_sdk_eventbridge::Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
        }
    }

    /// Publishes the events; returns the ids EventBridge accepted. Entries that still
    /// fail after the retries are left out (their outbox items stay for the sweep).
    pub async fn publish(&self, events: &[OutboxRecord]) -> Result<Vec<EventId>, EventError> {
        let mut accepted = Vec::with_capacity(events.len());
        let mut last_error = None;
        for chunk in events.chunks(MAX_ENTRIES_PER_PUT) {
            let mut pending: Vec<&OutboxRecord> = chunk.iter().collect();
            for attempt in 0..PUBLISH_ATTEMPTS {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                }
                let entries = pending
                    .iter()
                    .map(|event| {
                        PutEventsRequestEntry::builder()
                            .event_bus_name(&self.bus_name)
                            .source(HUB_EVENT_SOURCE)
                            .detail_type(&event.detail_type)
                            .detail(&event.detail)
                            .build()
                    })
                    .collect();
                let out = match self
                    .client
                    .put_events()
                    .set_entries(Some(entries))
                    .send()
                    .await
                {
                    Ok(out) => out,
                    Err(err) => {
                        let err = aws_sdk_eventbridge::error::DisplayErrorContext(err).to_string();
                        tracing::warn!(attempt, error = %err, "PutEvents failed");
                        last_error = Some(err);
                        continue;
                    }
                };
                // Result entries are positional: entry i answers request entry i.
                let results = out.entries.unwrap_or_default();
                let mut failed = Vec::new();
                for (i, event) in pending.iter().enumerate() {
                    match results.get(i) {
                        Some(r) if r.error_code.is_none() && r.event_id.is_some() => {
                            accepted.push(event.event_id)
                        }
                        r => {
                            tracing::warn!(
                                attempt,
                                event_id = %event.event_id,
                                code = r.and_then(|r| r.error_code.as_deref()),
                                "PutEvents entry failed"
                            );
                            failed.push(*event);
                        }
                    }
                }
                pending = failed;
                if pending.is_empty() {
                    break;
                }
            }
        }
        if let Some(err) = last_error.filter(|_| accepted.is_empty() && !events.is_empty()) {
            return Err(EventError::EventBridge(err));
        }
        Ok(accepted)
    }
}

impl EventPublisher {
    /// The EventBridge client, for publishing to other buses (partners').
    pub fn client(&self) -> aws_sdk_eventbridge::Client {
        self.client.clone()
    }

    /// Puts one event as it is (source included): replaying a dead letter.
    pub async fn put_one(
        &self,
        source: &str,
        detail_type: &str,
        detail: &str,
    ) -> Result<(), EventError> {
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(source)
            .detail_type(detail_type)
            .detail(detail)
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| {
                EventError::EventBridge(
                    aws_sdk_eventbridge::error::DisplayErrorContext(e).to_string(),
                )
            })?;
        match out
            .entries
            .unwrap_or_default()
            .first()
            .and_then(|e| e.error_code.clone())
        {
            Some(code) => Err(EventError::EventBridge(code)),
            None => Ok(()),
        }
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

    /// The transaction write that stages an event beside the state change causing it.
    pub fn stage(&self, event: &HubEvent) -> Result<(OutboxRecord, TransactWriteItem), EventError> {
        let record = OutboxRecord::from_event(event)?;
        let write = self.table.put_in_transaction(&record, true)?;
        Ok((record, write))
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
        for record in records.iter().filter(|r| accepted.contains(&r.event_id)) {
            self.table.delete(&record.keys()).await?;
        }
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
            .query_all(&Query::due(DUE_KIND_OUTBOX, until))
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

    #[test]
    fn hub_event_detail_uses_camel_case_and_type() {
        let event = HubEvent::new("account.provisioned", serde_json::json!({"shop": "a.com"}))
            .for_account(AccountId::random(), PartnerId::random());
        let json = serde_json::to_value(&event).unwrap();
        for field in [
            "eventId",
            "type",
            "occurredAt",
            "accountId",
            "partnerId",
            "data",
        ] {
            assert!(json.get(field).is_some(), "missing {field}");
        }
        let back: HubEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn outbox_items_are_due_from_when_they_were_staged() {
        let event = HubEvent::new("account.provisioned", serde_json::json!({}));
        let record = OutboxRecord::from_event(&event).unwrap();
        let keys = record.keys();
        assert_eq!(keys.due_pk.as_deref(), Some("OUTBOX"));
        assert_eq!(
            keys.due_at.as_deref(),
            Some(clock::sortable(event.occurred_at).as_str())
        );
    }
}
