//! Partners' subscription events (`subscription-events-eventbridge.md`): Create
//! Subscription and Cancellation, put by partners on the hub's bus. The partner is
//! identified by the envelope's `source`, never by its `account`. An event that can never
//! be processed (unregistered source, bad detail, unknown customer) is parked as a dead
//! letter and acknowledged; storage failures are returned so EventBridge retries.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use shared::{
    Hub,
    subscriptions::{
        CANCELLATION, CREATE_SUBSCRIPTION, CancelSubscription, CreateSubscription, Outcome,
        SubscriptionError,
    },
};

pub const HANDLER_NAME: &str = "subscription-events";

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("transient failure; the event will be retried: {0}")]
    Transient(String),
}

/// What happened to one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    Done(Outcome),
    DeadLettered,
}

pub async fn handle(
    hub: &Hub,
    event: EventBridgeEvent<serde_json::Value>,
) -> Result<Handled, HandlerError> {
    match process(hub, &event).await {
        Ok(outcome) => {
            tracing::info!(source = %event.source, detail_type = %event.detail_type, ?outcome, "subscription event handled");
            Ok(Handled::Done(outcome))
        }
        Err(Failure::Retry(reason)) => Err(HandlerError::Transient(reason)),
        Err(Failure::Park(reason)) => {
            let raw = serde_json::to_value(&event).unwrap_or(serde_json::Value::Null);
            hub.dead_letters
                .park(HANDLER_NAME, &reason, &raw)
                .await
                .map_err(|e| HandlerError::Transient(e.to_string()))?;
            Ok(Handled::DeadLettered)
        }
    }
}

enum Failure {
    Retry(String),
    Park(String),
}

impl From<SubscriptionError> for Failure {
    fn from(err: SubscriptionError) -> Self {
        if err.is_transient() {
            Failure::Retry(err.to_string())
        } else {
            Failure::Park(err.to_string())
        }
    }
}

async fn process(
    hub: &Hub,
    event: &EventBridgeEvent<serde_json::Value>,
) -> Result<Outcome, Failure> {
    let route = hub
        .partners
        .route_for_source(&event.source)
        .await
        .map_err(|e| Failure::Retry(e.to_string()))?
        .ok_or_else(|| {
            Failure::Park(format!(
                "source '{}' is not registered to any partner",
                event.source
            ))
        })?;
    let envelope_id = event
        .id
        .as_deref()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| Failure::Park("the envelope has no id".into()))?;
    let subscriptions = &hub.subscriptions;
    match event.detail_type.as_str() {
        CREATE_SUBSCRIPTION => {
            let request = CreateSubscription::parse(&event.detail, subscriptions.catalog())?;
            Ok(subscriptions
                .create_or_upgrade(&route, envelope_id, request)
                .await?)
        }
        CANCELLATION => {
            let request = CancelSubscription::parse(&event.detail)?;
            Ok(subscriptions.cancel(&route, envelope_id, request).await?)
        }
        other => Err(Failure::Park(format!(
            "detail-type '{other}' is not handled here"
        ))),
    }
}
