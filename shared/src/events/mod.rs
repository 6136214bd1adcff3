//! The hub's events: the typed catalog (`catalog`, one enum: detail-type + payload),
//! the transactional outbox and the EventBridge publisher.

mod catalog;
mod outbox;
mod publisher;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use catalog::{
    AccountDeleted, AccountProvisioned, BillingPeriodSnapshot, CustomerChanged, EventPayload,
    InstallationReady, PartnerWebhookDisabled, PlansConfirmed, ShopRunning, SmsSent,
    SubscriptionChangeRequested, SubscriptionSnapshot, WebhookAttempted,
};
pub use outbox::{
    MAX_OUTBOX_BYTES, OUTBOX_RETENTION, Outbox, OutboxEvent, OutboxRecord, RelayReport, TooLarge,
};
pub use publisher::{
    EventPublisher, HUB_EVENT_SOURCE, MAX_ENTRIES_PER_PUT, MAX_PUT_BYTES, entry_size,
};

use crate::{
    clock,
    domain::{AccountId, EventId, PartnerId},
    store::StoreError,
};

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("EventBridge request failed: {0}")]
    EventBridge(String),
    #[error("event could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The detail of every hub event (`detail` of the EventBridge envelope): `type` is the
/// envelope's `detail-type`, `data` its typed payload (see [`EventPayload`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HubEvent {
    pub event_id: EventId,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<AccountId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_id: Option<PartnerId>,
    #[serde(flatten)]
    pub payload: EventPayload,
}

impl HubEvent {
    pub fn new(payload: EventPayload) -> Self {
        Self {
            event_id: EventId::random(),
            occurred_at: clock::now(),
            account_id: None,
            partner_id: None,
            payload,
        }
    }

    pub fn for_account(mut self, account: AccountId, partner: PartnerId) -> Self {
        self.account_id = Some(account);
        self.partner_id = Some(partner);
        self
    }

    /// The envelope's `detail-type` (and the detail's `type`).
    pub fn detail_type(&self) -> &'static str {
        self.payload.detail_type()
    }

    /// The payload as JSON (`data`).
    pub fn data(&self) -> serde_json::Value {
        self.payload.data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_event_detail_uses_camel_case_type_and_data() {
        let event = HubEvent::new(EventPayload::InstallationReady(InstallationReady {
            customer_id: "c-1".into(),
        }))
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
        assert_eq!(json["type"], "installation.ready");
        assert_eq!(json["data"]["customerId"], "c-1");
        let back: HubEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn an_unknown_type_or_a_payload_of_another_type_is_refused() {
        let event = HubEvent::new(EventPayload::InstallationReady(InstallationReady {
            customer_id: "c-1".into(),
        }));
        let mut json = serde_json::to_value(&event).unwrap();
        json["type"] = "account.unknown".into();
        assert!(serde_json::from_value::<HubEvent>(json.clone()).is_err());
        json["type"] = "account.deleted".into();
        assert!(serde_json::from_value::<HubEvent>(json).is_err());
    }
}
