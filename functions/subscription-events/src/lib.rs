//! Partners' subscription events (`subscription-events-eventbridge.md`): Create
//! Subscription and Cancellation, put by partners on the hub's ingress bus. The partner
//! is identified by the envelope's `source`, and the envelope's `account` (stamped by
//! EventBridge, unforgeable) must be one the partner bound to that source. An event that
//! can never be processed (unregistered source, a source sent from another account, bad
//! detail, unknown customer, an envelope id reused with another content) is parked by
//! the runner and changes nothing; storage failures are retried.

pub mod wire;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde_json::Value;
use shared::{
    Hub,
    runtime::{Failure, Function},
    subscriptions::{Outcome, SubscriptionError},
};

pub const NAME: &str = "subscription-events";
/// `detail-type`s of the contract's events.
pub const CREATE_SUBSCRIPTION: &str = "Create Subscription";
pub const CANCELLATION: &str = "Cancellation";

pub fn function() -> Function {
    Function::event(NAME, |hub, event| Box::pin(handle(hub, event)))
}

fn failure(err: SubscriptionError) -> Failure {
    let transient = err.is_transient();
    Failure::classify(err, transient)
}

pub async fn handle(hub: &Hub, event: EventBridgeEvent<Value>) -> Result<Outcome, Failure> {
    let route =
        shared::ingress::sending_partner(hub, &event.source, event.account.as_deref()).await?;
    let park = |e: wire::Invalid| Failure::Park(e.to_string());
    let inbound = wire::inbound(route.partner_id, &event).map_err(park)?;
    let subscriptions = &hub.subscriptions;
    let outcome = match event.detail_type.as_str() {
        CREATE_SUBSCRIPTION => {
            let request =
                wire::create_subscription(&event.detail, subscriptions.catalog()).map_err(park)?;
            subscriptions
                .create_or_upgrade(&route, &inbound, request)
                .await
        }
        CANCELLATION => {
            let request = wire::cancellation(&event.detail).map_err(park)?;
            subscriptions.cancel(&route, &inbound, request).await
        }
        other => {
            return Err(Failure::Park(format!(
                "detail-type '{other}' is not handled here"
            )));
        }
    }
    .map_err(failure)?;
    tracing::info!(source = %event.source, detail_type = %event.detail_type, ?outcome, "subscription event handled");
    Ok(outcome)
}
