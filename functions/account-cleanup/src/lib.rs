//! The scheduled cleanup: deletes the data of cancelled accounts whose effective date
//! has passed (found through the sparse due index), leaving a tombstone.

use shared::{
    Hub, clock,
    subscriptions::{CleanupReport, SubscriptionError},
};

pub async fn handle(
    hub: &Hub,
    _event: serde_json::Value,
) -> Result<CleanupReport, SubscriptionError> {
    handle_at(hub, clock::now()).await
}

/// The same, as of `now` (tests move the clock forward).
pub async fn handle_at(
    hub: &Hub,
    now: time::OffsetDateTime,
) -> Result<CleanupReport, SubscriptionError> {
    let report = hub.subscriptions.cleanup_due(now).await?;
    if report.due > 0 {
        tracing::info!(
            due = report.due,
            deleted = report.deleted_accounts,
            "cancelled accounts cleaned up"
        );
    }
    Ok(report)
}
