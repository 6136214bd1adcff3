//! The scheduled suspension run: subscriptions whose payment failed and whose grace
//! period (`SUSPENSION_GRACE_DAYS`) ended lose access, found through the due index.

use shared::{
    Hub, clock,
    marketplace::{MarketplaceError, SuspensionReport},
    runtime::{Failure, Function},
};
use time::OffsetDateTime;

pub const NAME: &str = "marketplace-suspensions";

pub fn function() -> Function {
    Function::event(NAME, |hub, event| Box::pin(handle(hub, event)))
        .polling(&[shared::store::keys::Due::Suspension])
}

pub async fn handle(hub: &Hub, _schedule: serde_json::Value) -> Result<SuspensionReport, Failure> {
    handle_at(hub, clock::now())
        .await
        .map_err(|e| Failure::Retry(e.to_string()))
}

/// Suspends what is due at `now` (tests pass a time past the grace period).
pub async fn handle_at(
    hub: &Hub,
    now: OffsetDateTime,
) -> Result<SuspensionReport, MarketplaceError> {
    let report = hub.marketplaces.suspend_due(now).await?;
    if report.due > 0 {
        tracing::info!(
            due = report.due,
            suspended = report.suspended,
            skipped = report.skipped,
            "marketplace suspensions run"
        );
    }
    Ok(report)
}
