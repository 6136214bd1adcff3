//! The scheduled sender of outbound deliveries (partners' webhooks): every delivery due
//! in the sparse `DueIndex` is attempted once per run; failures are rescheduled or left
//! `failed` for operators (see `shared::outbound::delivery`). The only function that
//! links the outbound HTTPS client.

use shared::{
    Hub, clock,
    outbound::{
        OutboundClient, OutboundConfig,
        delivery::{Deliveries, DeliveryError, DeliveryReport},
    },
    runtime::{Failure, Function},
};
use time::OffsetDateTime;

pub const NAME: &str = "outbound-deliveries";

pub fn function() -> Function {
    Function::event_with(NAME, init, |hub, deliveries, schedule| {
        Box::pin(handle(hub, deliveries, schedule))
    })
    .polling(&[shared::store::keys::Due::Delivery])
}

/// The outbound client and the queue, built once when the function starts.
fn init(hub: &Hub) -> Result<Deliveries, String> {
    let config = OutboundConfig::from_config(&hub.config)?;
    Ok(
        Deliveries::new(hub.uow.clone(), OutboundClient::new(config)?).with_signer(
            shared::partner_webhooks::WebhookSigner::new(hub.table.clone(), hub.accounts.clone()),
        ),
    )
}

pub async fn handle(
    _hub: &Hub,
    deliveries: &Deliveries,
    _schedule: serde_json::Value,
) -> Result<DeliveryReport, Failure> {
    handle_at(deliveries, clock::now())
        .await
        .map_err(|e| Failure::Retry(e.to_string()))
}

/// Attempts what is due at `now` (tests move the clock forward).
pub async fn handle_at(
    deliveries: &Deliveries,
    now: OffsetDateTime,
) -> Result<DeliveryReport, DeliveryError> {
    let report = deliveries.deliver_due(now).await?;
    if report.due > 0 {
        tracing::info!(
            due = report.due,
            delivered = report.delivered,
            retrying = report.retrying,
            failed = report.failed,
            "outbound deliveries run"
        );
    }
    Ok(report)
}
