//! The connection-refresh schedule: every embed connection whose OAuth2 access token is
//! due for a refresh (found through the sparse due index, never a scan) is refreshed at
//! its provider's token endpoint. A refused refresh marks the connection
//! `needs_reauth` (the end-customer must authorize again); a provider that is down is
//! tried again later, with a growing wait, and after five failures also `needs_reauth`.

use shared::{
    Hub, clock,
    embed::connections::RefreshReport,
    outbound::{OutboundClient, OutboundConfig},
    runtime::{Failure, Function},
};

pub const NAME: &str = "connection-refresh";

pub fn function() -> Function {
    Function::event_with(NAME, outbound, |hub, outbound, schedule| {
        Box::pin(handle(hub, outbound, schedule))
    })
    .polling(&[shared::store::keys::Due::OAuthRefresh])
}

/// The outbound client, built once when the function starts.
pub fn outbound(hub: &Hub) -> Result<OutboundClient, String> {
    OutboundClient::new(OutboundConfig::from_config(&hub.config)?)
}

pub async fn handle(
    hub: &Hub,
    outbound: &OutboundClient,
    _schedule: serde_json::Value,
) -> Result<RefreshReport, Failure> {
    handle_at(hub, outbound, clock::now()).await
}

/// The same, as of `now` (tests move the clock forward).
pub async fn handle_at(
    hub: &Hub,
    outbound: &OutboundClient,
    now: time::OffsetDateTime,
) -> Result<RefreshReport, Failure> {
    let report = hub
        .embed
        .refresh_due(now, outbound)
        .await
        .map_err(|e| Failure::Retry(e.to_string()))?;
    if report.due > 0 {
        tracing::info!(
            due = report.due,
            refreshed = report.refreshed,
            retried = report.retried,
            needs_reauth = report.needs_reauth,
            "connection tokens refreshed"
        );
    }
    Ok(report)
}
