//! The billing-period schedule: every shop whose billing period ended (found through the
//! sparse due index, never a scan) starts its next one, with a `billing_period.started`
//! event (see `shared::billing` for how the next period is computed).

use serde::Serialize;
use shared::{
    Hub, clock,
    runtime::{Failure, Function},
};

pub const NAME: &str = "billing-periods";

pub fn function() -> Function {
    Function::event(NAME, |hub, event| Box::pin(handle(hub, event)))
        .polling(&[shared::store::keys::Due::BillingPeriod])
}

#[derive(Debug, Serialize)]
pub struct RolloverReport {
    pub periods_started: usize,
}

pub async fn handle(hub: &Hub, _schedule: serde_json::Value) -> Result<RolloverReport, Failure> {
    handle_at(hub, clock::now()).await
}

/// The same, as of `now` (tests move the clock forward).
pub async fn handle_at(hub: &Hub, now: time::OffsetDateTime) -> Result<RolloverReport, Failure> {
    let periods_started = hub
        .billing
        .roll_over_due(now)
        .await
        .map_err(|e| Failure::Retry(e.to_string()))?;
    if periods_started > 0 {
        tracing::info!(periods_started, "billing periods rolled over");
    }
    Ok(RolloverReport { periods_started })
}
