//! The scheduled suspension run: subscriptions whose payment failed and whose grace
//! period (`SUSPENSION_GRACE_DAYS`) ended lose access, found through the due index.

use shared::{
    Hub, clock,
    marketplace::{MarketplaceError, Marketplaces, SuspensionReport},
};
use time::OffsetDateTime;

pub async fn handle(
    hub: &Hub,
    _event: serde_json::Value,
) -> Result<SuspensionReport, MarketplaceError> {
    handle_at(hub, clock::now()).await
}

/// Suspends what is due at `now` (tests pass a time past the grace period).
pub async fn handle_at(
    hub: &Hub,
    now: OffsetDateTime,
) -> Result<SuspensionReport, MarketplaceError> {
    let marketplaces = Marketplaces::new(
        hub.table.clone(),
        hub.outbox.clone(),
        hub.config.suspension_grace,
    );
    let report = marketplaces.suspend_due(now).await?;
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
