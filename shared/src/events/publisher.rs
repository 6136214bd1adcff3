//! Puts events on EventBridge: calls of at most 10 entries and 256 KB, failed entries
//! retried.

use std::time::Duration;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::{EventError, OutboxEvent};
use crate::domain::EventId;

/// The `source` of every event the hub puts on its own bus.
pub const HUB_EVENT_SOURCE: &str = "partner-hub";
/// `PutEvents` takes at most 10 entries per call.
pub const MAX_ENTRIES_PER_PUT: usize = 10;
/// ... and at most 256 KB per call, all entries together.
pub const MAX_PUT_BYTES: usize = 256 * 1024;

/// An entry's size as EventBridge counts it: source, detail-type and detail in UTF-8
/// bytes (plus 14 for a time and each resource ARN, which the hub never sets).
pub fn entry_size(source: &str, detail_type: &str, detail: &str) -> usize {
    source.len() + detail_type.len() + detail.len()
}

/// Splits events into `PutEvents` calls: at most 10 entries and 256 KB each, in order.
/// An event too large for any call gets one of its own (and fails there, visibly).
fn put_batches<'a, 'e>(records: &'a [&'e OutboxEvent]) -> Vec<&'a [&'e OutboxEvent]> {
    let mut batches = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, record) in records.iter().enumerate() {
        let size = record.size();
        if i > start && (i - start == MAX_ENTRIES_PER_PUT || bytes + size > MAX_PUT_BYTES) {
            batches.push(&records[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < records.len() {
        batches.push(&records[start..]);
    }
    batches
}
const PUBLISH_ATTEMPTS: u32 = 4;

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
    /// fail after the retries are left out (the relay has their records delivered again).
    pub async fn publish(&self, events: &[&OutboxEvent]) -> Result<Vec<EventId>, EventError> {
        let mut accepted = Vec::with_capacity(events.len());
        let mut last_error = None;
        for chunk in put_batches(events) {
            let mut pending: Vec<&OutboxEvent> = chunk.to_vec();
            for attempt in 0..PUBLISH_ATTEMPTS {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                }
                let entries = pending
                    .iter()
                    .map(|event| {
                        PutEventsRequestEntry::builder()
                            .event_bus_name(&self.bus_name)
                            .time(envelope_time())
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

    /// Puts one event as it is (source included): replaying a dead letter. Returns the
    /// id EventBridge gave it (the envelope's `id`).
    pub async fn put_one(
        &self,
        source: &str,
        detail_type: &str,
        detail: &str,
    ) -> Result<String, EventError> {
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .time(envelope_time())
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
        let entry = out.entries.unwrap_or_default().into_iter().next();
        match entry {
            Some(e) if e.error_code.is_none() => Ok(e.event_id.unwrap_or_default()),
            Some(e) => Err(EventError::EventBridge(e.error_code.unwrap_or_default())),
            None => Err(EventError::EventBridge(
                "PutEvents answered no entry".into(),
            )),
        }
    }
}

/// The envelope's `time`: now on the hub's clock (what EventBridge would stamp on AWS;
/// the stand-in's moved clock otherwise disagrees with the detail's `occurredAt`).
fn envelope_time() -> aws_sdk_eventbridge::primitives::DateTime {
    let now = crate::clock::now();
    aws_sdk_eventbridge::primitives::DateTime::from_secs(now.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(detail_bytes: usize) -> OutboxEvent {
        OutboxEvent {
            event_id: EventId::random(),
            detail_type: "x".into(),
            detail: "d".repeat(detail_bytes),
        }
    }

    #[test]
    fn batches_hold_at_most_ten_entries_and_256_kb() {
        let small: Vec<_> = (0..25).map(|_| record(10)).collect();
        let small: Vec<&OutboxEvent> = small.iter().collect();
        let sizes: Vec<usize> = put_batches(&small).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [10, 10, 5]);

        let big: Vec<_> = (0..5).map(|_| record(100 * 1024)).collect();
        let big: Vec<&OutboxEvent> = big.iter().collect();
        let batches = put_batches(&big);
        assert_eq!(
            batches.iter().map(|b| b.len()).collect::<Vec<_>>(),
            [2, 2, 1]
        );
        for batch in &batches {
            let bytes: usize = batch
                .iter()
                .map(|r| entry_size(HUB_EVENT_SOURCE, &r.detail_type, &r.detail))
                .sum();
            assert!(bytes <= MAX_PUT_BYTES, "{bytes}");
        }
        assert!(put_batches(&[]).is_empty());
        let (huge, small) = (record(300 * 1024), record(1));
        let alone = [&huge, &small];
        assert_eq!(
            put_batches(&alone)
                .iter()
                .map(|b| b.len())
                .collect::<Vec<_>>(),
            [1, 1]
        );
    }
}
