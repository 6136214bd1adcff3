//! The scheduled cleanup: deletes the data of cancelled accounts whose effective date
//! has passed (found through the sparse due index), leaving a tombstone.

use shared::{
    Hub, clock,
    runtime::{Failure, Function},
    subscriptions::{CleanupReport, SubscriptionError},
};

pub const NAME: &str = "account-cleanup";

pub fn function() -> Function {
    Function::event(NAME, |hub, event| Box::pin(handle(hub, event)))
        .polling(&[shared::store::keys::Due::Cleanup])
}

pub async fn handle(hub: &Hub, _schedule: serde_json::Value) -> Result<CleanupReport, Failure> {
    handle_at(hub, clock::now())
        .await
        .map_err(|e| Failure::Retry(e.to_string()))
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
