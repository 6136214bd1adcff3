//! Consumes the hub's events (routed by the template's rule) and appends each to its
//! account's timeline. Redelivered events change nothing; events that can never be
//! processed are parked as dead letters and acknowledged.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use shared::{Hub, events::HubEvent, store::StoreError, timeline::Appended};

pub const HANDLER_NAME: &str = "account-timeline";

#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    /// Retry: the table was unavailable.
    #[error("storage failed; the event will be retried: {0}")]
    Transient(#[from] StoreError),
}

/// What happened to one delivered event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Appended,
    Duplicate,
    /// Not about an account: nothing to record.
    Ignored,
    DeadLettered,
}

pub async fn handle(
    hub: &Hub,
    event: EventBridgeEvent<serde_json::Value>,
) -> Result<Outcome, TimelineError> {
    let detail: HubEvent = match serde_json::from_value(event.detail.clone()) {
        Ok(detail) => detail,
        Err(e) => {
            let raw = serde_json::to_value(&event).unwrap_or(serde_json::Value::Null);
            hub.dead_letters
                .park(
                    HANDLER_NAME,
                    &format!("detail is not a hub event: {e}"),
                    &raw,
                )
                .await?;
            return Ok(Outcome::DeadLettered);
        }
    };
    let Some(account) = detail.account_id else {
        return Ok(Outcome::Ignored);
    };
    Ok(match hub.timeline.append(account, &detail).await? {
        Appended::New => Outcome::Appended,
        Appended::Duplicate => Outcome::Duplicate,
    })
}
