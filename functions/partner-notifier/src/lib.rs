//! Answers partners on their own bus: on the hub's `installation.ready` it sends the
//! contract's Ready for Installation event (id, snippets, keys) to the bus ARN the
//! partner registered. Delivery is at least once (the event id is stable); a partner
//! without a registered bus, or an account that is gone, is parked by the runner.

pub mod wire;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::Serialize;
use shared::{
    Hub,
    events::{EventPayload, EventPublisher, HUB_EVENT_SOURCE, HubEvent},
    runtime::{Failure, Function},
};

pub use wire::{READY_FOR_INSTALLATION, ReadyForInstallation};

pub const NAME: &str = "partner-notifier";

pub fn function() -> Function {
    Function::event_with(NAME, public_base_url, |hub, base, event| {
        Box::pin(handle(hub, base, event))
    })
}

/// Where the snippets load the widget from: required, so a stack without it fails at
/// init instead of sending partners snippets that point nowhere.
fn public_base_url(hub: &Hub) -> Result<String, String> {
    hub.config
        .public_base_url
        .clone()
        .ok_or_else(|| "PUBLIC_BASE_URL is not set: where do the snippets load from?".to_owned())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Notified {
    Sent,
    Ignored,
}

pub async fn handle(
    hub: &Hub,
    public_base_url: &str,
    event: EventBridgeEvent<HubEvent>,
) -> Result<Notified, Failure> {
    let retry = |e: &dyn std::fmt::Display| Failure::Retry(e.to_string());
    let detail = event.detail;
    let EventPayload::InstallationReady(_) = detail.payload else {
        return Ok(Notified::Ignored);
    };
    let (Some(account), Some(partner_id)) = (detail.account_id, detail.partner_id) else {
        return Err(Failure::Park(
            "installation.ready without account or partner".into(),
        ));
    };
    // The plan and the partner's bus are read together (the bus from the process's
    // partner cache when warm).
    let (plan, partner) = tokio::join!(
        hub.subscriptions.plan(account),
        hub.partners.get_cached(partner_id),
    );
    let plan = plan.map_err(|e| retry(&e))?.ok_or_else(|| {
        Failure::Park(format!(
            "account {account} has no plan (cancelled and deleted?)"
        ))
    })?;
    // Keys go only to the partner that owns the account.
    if plan.partner_id != partner_id {
        return Err(Failure::Park(format!(
            "account {account} does not belong to partner {partner_id}"
        )));
    }
    let route = partner
        .map_err(|e| retry(&e))?
        .and_then(|p| p.event_route)
        .ok_or_else(|| {
            Failure::Park(format!("partner {partner_id} has no registered event bus"))
        })?;
    let ready = ReadyForInstallation::for_plan(&plan, public_base_url);
    let detail = serde_json::to_string(&ready).map_err(|e| retry(&e))?;
    EventPublisher::new(hub.outbox.publisher.client(), &route.bus_arn)
        .put_one(HUB_EVENT_SOURCE, READY_FOR_INSTALLATION, &detail)
        .await
        .map_err(|e| retry(&e))?;
    tracing::info!(%account, partner = %partner_id, "Ready for Installation sent");
    Ok(Notified::Sent)
}
