//! The scheduled sweep: publishes the outbox events a crash left behind.

use shared::{
    Hub, clock,
    events::{EventError, SweepReport},
};

pub async fn handle(hub: &Hub, _event: serde_json::Value) -> Result<SweepReport, EventError> {
    let report = hub.outbox.sweep(clock::now()).await?;
    if report.found > 0 {
        tracing::info!(
            found = report.found,
            published = report.published,
            "outbox swept"
        );
    }
    Ok(report)
}
