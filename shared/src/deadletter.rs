//! Dead letters: events a handler can never process (bad input) are parked here, where
//! operators list them (`hub-admin dead-letters`) and replay them once fixed; the
//! handler then returns success so no retry storm follows.

use serde::{Deserialize, Serialize};

use crate::{
    clock,
    secrets::random_hex16,
    store::{Keys, Query, Record, StoreError, Table, keys},
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub id: String,
    /// The function that could not process it.
    pub handler: String,
    pub reason: String,
    /// The event exactly as received, JSON text.
    pub payload: String,
    pub parked_at: String,
}

impl Record for DeadLetter {
    fn keys(&self) -> Keys {
        keys::dead_letter(&self.parked_at, &self.id)
    }
}

#[derive(Clone, Debug)]
pub struct DeadLetters {
    table: Table,
}

impl DeadLetters {
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    pub async fn park(
        &self,
        handler: &str,
        reason: &str,
        payload: &serde_json::Value,
    ) -> Result<DeadLetter, StoreError> {
        let letter = DeadLetter {
            id: random_hex16(),
            handler: handler.to_owned(),
            reason: reason.to_owned(),
            payload: payload.to_string(),
            parked_at: clock::sortable(clock::now()),
        };
        tracing::warn!(handler, reason, id = %letter.id, "event parked as dead letter");
        self.table.put_new(&letter).await?;
        crate::metrics::count(crate::metrics::DEAD_LETTERS_PARKED, handler);
        Ok(letter)
    }

    pub async fn list(&self) -> Result<Vec<DeadLetter>, StoreError> {
        self.table
            .query_all(&Query::partition(keys::DEAD_LETTER_PK))
            .await
    }

    /// Puts a parked EventBridge event back on the bus it came from (`bus_for` picks it
    /// by the event's source), as it was received (its cause fixed), and removes the
    /// letter. Returns false when there is no such letter.
    pub async fn replay(
        &self,
        id: &str,
        bus_for: impl Fn(&str) -> Option<crate::events::EventPublisher>,
    ) -> Result<bool, crate::events::EventError> {
        let letters = self.list().await?;
        let Some(letter) = letters.iter().find(|l| l.id == id) else {
            return Ok(false);
        };
        let event: serde_json::Value = serde_json::from_str(&letter.payload)?;
        let field = |name: &str| {
            event
                .get(name)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let detail = event
            .get("detail")
            .cloned()
            .unwrap_or(serde_json::json!({}))
            .to_string();
        let source = field("source");
        let publisher = bus_for(&source).ok_or_else(|| {
            crate::events::EventError::EventBridge(format!("no bus takes events from {source}"))
        })?;
        publisher
            .put_one(&source, &field("detail-type"), &detail)
            .await?;
        self.remove(letter).await?;
        Ok(true)
    }

    /// Removes a letter after it was replayed.
    pub async fn remove(&self, letter: &DeadLetter) -> Result<(), StoreError> {
        self.table.delete(&letter.keys()).await
    }
}
