//! Puts events on EventBridge: chunks of at most 10 entries, failed entries retried.

use std::time::Duration;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::{EventError, OutboxRecord};
use crate::domain::EventId;

/// The `source` of every event the hub puts on its own bus.
pub const HUB_EVENT_SOURCE: &str = "partner-hub";
/// `PutEvents` takes at most 10 entries per call.
pub const MAX_ENTRIES_PER_PUT: usize = 10;
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
