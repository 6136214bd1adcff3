//! Consumes the hub's events (routed by the template's rule) and appends each to its
//! account's timeline. Redelivered events change nothing; an event that is not a hub
//! event of the catalog is parked by the runner.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::Serialize;
use shared::{
    Hub,
    events::HubEvent,
    runtime::{Failure, Function},
    timeline::Appended,
};

pub const NAME: &str = "account-timeline";

pub fn function() -> Function {
    Function::event(NAME, |hub, event| Box::pin(handle(hub, event)))
}

/// What happened to one delivered event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Outcome {
    Appended,
    Duplicate,
    /// Not about an account: nothing to record.
    Ignored,
}

pub async fn handle(hub: &Hub, event: EventBridgeEvent<HubEvent>) -> Result<Outcome, Failure> {
    let detail = event.detail;
    let Some(account) = detail.account_id else {
        return Ok(Outcome::Ignored);
    };
    match hub.timeline.append(account, &detail).await {
        Ok(Appended::New) => Ok(Outcome::Appended),
        Ok(Appended::Duplicate) => Ok(Outcome::Duplicate),
        Err(e) => Err(Failure::Retry(e.to_string())),
    }
}
