//! The cron-scheduled SMS send job (the loyalty contract's "CRON job to complete the
//! trigger mechanism"): every run sends what is due through each site's gateway, within
//! its time budget (`SMS_RUN_BUDGET_SECONDS`, below the function's timeout); the rest
//! stays due for the next run. See `shared::sms::send` for the claim and at-most-once
//! rules.

use std::time::Instant;

use shared::{
    Hub, clock,
    outbound::{OutboundClient, OutboundConfig},
    runtime::{Failure, Function},
    sms::{
        gateway::Gateway,
        send::{SendReport, Sender},
    },
};
use time::OffsetDateTime;

pub const NAME: &str = "sms-trigger";

pub fn function() -> Function {
    Function::event_with(NAME, sender, |hub, sender, schedule| {
        Box::pin(handle(hub, sender, schedule))
    })
    .polling(&[shared::store::keys::Due::Sms])
}

/// The sender and its gateway client, built once when the function starts.
pub fn sender(hub: &Hub) -> Result<Sender, String> {
    let client = OutboundClient::new(OutboundConfig::from_config(&hub.config)?)?;
    Ok(Sender::new(
        hub.sms.clone(),
        Gateway::new(client, &hub.config.sms_gateway_url),
    ))
}

pub async fn handle(
    hub: &Hub,
    sender: &Sender,
    _schedule: serde_json::Value,
) -> Result<SendReport, Failure> {
    handle_at(hub, sender, clock::now()).await
}

/// One run as of `now` (tests move the clock).
pub async fn handle_at(
    hub: &Hub,
    sender: &Sender,
    now: OffsetDateTime,
) -> Result<SendReport, Failure> {
    let deadline = Instant::now() + hub.config.sms_run_budget;
    let report = sender
        .run(now, deadline)
        .await
        .map_err(|e| Failure::Retry(e.to_string()))?;
    if report.due > 0 {
        tracing::info!(
            due = report.due,
            sent = report.sent,
            skipped = report.skipped,
            deferred = report.deferred,
            parked = report.parked,
            taken_elsewhere = report.taken_elsewhere,
            left_for_next_run = report.left_for_next_run,
            "SMS run"
        );
    }
    Ok(report)
}
