//! The daily usage job (cron 02:00 UTC): every shop's closed days priced into usage
//! records with its confirmed plans, stored once, each day's records sent to the
//! partner as `POST <base>/releva/webhooks/usageRecords` by `outbound-deliveries`
//! (see `shared::usage` for the pricing and the invoice rule).

use shared::{
    Hub, clock,
    runtime::{Failure, Function},
    usage::meter::{MeterReport, UsageMeter},
};

pub const NAME: &str = "usage-records";

pub fn function() -> Function {
    Function::event(NAME, |hub, event| Box::pin(handle(hub, event)))
}

pub async fn handle(hub: &Hub, _schedule: serde_json::Value) -> Result<MeterReport, Failure> {
    handle_at(hub, clock::now()).await
}

/// The same, as of `now` (tests move the clock forward).
pub async fn handle_at(hub: &Hub, now: time::OffsetDateTime) -> Result<MeterReport, Failure> {
    let report = UsageMeter::new(hub.uow.clone())
        .meter_closed_days(now)
        .await
        .map_err(|e| Failure::Retry(e.to_string()))?;
    tracing::info!(
        shops = report.shops,
        days = report.days_metered,
        records = report.records,
        webhooks = report.webhooks,
        "usage metered"
    );
    Ok(report)
}
