//! The scheduled sweep: publishes the outbox events a crash left behind.

use shared::{
    Hub, clock,
    events::SweepReport,
    runtime::{Failure, Function},
};

pub const NAME: &str = "outbox-sweep";

pub fn function() -> Function {
    Function::event(NAME, |hub, event| Box::pin(handle(hub, event)))
}

pub async fn handle(hub: &Hub, _schedule: serde_json::Value) -> Result<SweepReport, Failure> {
    let report = hub
        .outbox
        .sweep(clock::now())
        .await
        .map_err(|e| Failure::Retry(e.to_string()))?;
    if report.found > 0 {
        tracing::info!(
            found = report.found,
            published = report.published,
            "outbox swept"
        );
    }
    Ok(report)
}
