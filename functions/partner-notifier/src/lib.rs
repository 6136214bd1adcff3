//! Answers partners on their own bus: on the hub's `installation.ready` it sends the
//! contract's Ready for Installation event (id, snippets, keys) to the bus ARN the
//! partner registered. Delivery is at least once (the event id is stable); a partner
//! without a registered bus, or an account that is gone, is parked as a dead letter.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use shared::{
    Hub,
    events::{EventPublisher, HUB_EVENT_SOURCE, HubEvent},
    subscriptions::{INSTALLATION_READY, READY_FOR_INSTALLATION, ReadyForInstallation},
};

pub const HANDLER_NAME: &str = "partner-notifier";

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("transient failure; the event will be retried: {0}")]
    Transient(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notified {
    Sent,
    Ignored,
    DeadLettered,
}

pub async fn handle(
    hub: &Hub,
    event: EventBridgeEvent<serde_json::Value>,
) -> Result<Notified, NotifyError> {
    let transient = |e: &dyn std::fmt::Display| NotifyError::Transient(e.to_string());
    let raw = serde_json::to_value(&event).unwrap_or(serde_json::Value::Null);
    let park = |reason: String| {
        let raw = &raw;
        async move {
            hub.dead_letters
                .park(HANDLER_NAME, &reason, raw)
                .await
                .map_err(|e| NotifyError::Transient(e.to_string()))?;
            Ok(Notified::DeadLettered)
        }
    };
    let detail: HubEvent = match serde_json::from_value(event.detail.clone()) {
        Ok(detail) => detail,
        Err(e) => return park(format!("detail is not a hub event: {e}")).await,
    };
    if detail.event_type != INSTALLATION_READY {
        return Ok(Notified::Ignored);
    }
    let (Some(account), Some(partner_id)) = (detail.account_id, detail.partner_id) else {
        return park("installation.ready without account or partner".into()).await;
    };
    let Some(plan) = hub
        .subscriptions
        .plan(account)
        .await
        .map_err(|e| transient(&e))?
    else {
        return park(format!(
            "account {account} has no plan (cancelled and deleted?)"
        ))
        .await;
    };
    let partner = hub
        .partners
        .get(partner_id)
        .await
        .map_err(|e| transient(&e))?;
    let Some(route) = partner.and_then(|p| p.event_route) else {
        return park(format!("partner {partner_id} has no registered event bus")).await;
    };
    let ready = ReadyForInstallation::for_plan(&plan, &hub.config.public_base_url);
    let detail = serde_json::to_string(&ready).map_err(|e| transient(&e))?;
    EventPublisher::new(hub.outbox.publisher.client(), &route.bus_arn)
        .put_one(HUB_EVENT_SOURCE, READY_FOR_INSTALLATION, &detail)
        .await
        .map_err(|e| transient(&e))?;
    tracing::info!(%account, partner = %partner_id, "Ready for Installation sent");
    Ok(Notified::Sent)
}
