//! Loyalty actions over EventBridge: a partner puts `Loyalty Action` events on the hub's
//! ingress bus (`detail`: the action as `POST /api/3.0/sms/actions` takes it, plus
//! `siteId`). The partner is the envelope's `source`, sent from an account it bound to
//! that source; the site must be that partner's. The same action id again makes no
//! second job. An event that can never become a job (unknown source or site, another
//! partner's site, a bad field, an action id reused with another body) is parked by the
//! runner with the reason; storage failures are retried.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde_json::Value;
use shared::{
    Hub,
    runtime::{Failure, Function},
    sms::{JobView, LoyaltyAction, SmsError},
    store::TxError,
};

pub const NAME: &str = "sms-actions";
pub const LOYALTY_ACTION: &str = "Loyalty Action";

pub fn function() -> Function {
    Function::event(NAME, |hub, event| Box::pin(handle(hub, event)))
}

fn failure(e: SmsError) -> Failure {
    match e {
        SmsError::Invalid { .. } | SmsError::Tx(TxError::Reused { .. }) => {
            Failure::Park(e.to_string())
        }
        other => Failure::Retry(other.to_string()),
    }
}

pub async fn handle(hub: &Hub, event: EventBridgeEvent<Value>) -> Result<JobView, Failure> {
    let route =
        shared::ingress::sending_partner(hub, &event.source, event.account.as_deref()).await?;
    let site_id = match &event.detail["siteId"] {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| Failure::Park("detail.siteId: a site id is required".into()))?;
    let site = hub
        .sms
        .site(site_id)
        .await
        .map_err(failure)?
        .filter(|site| site.partner_id == route.partner_id)
        .ok_or_else(|| Failure::Park(format!("site {site_id} is not one of this partner's")))?;
    let action = LoyaltyAction::parse(&event.detail, site.country()).map_err(failure)?;
    let applied = hub
        .sms
        .accept_action(&site, &action)
        .await
        .map_err(failure)?;
    Ok(applied.into_inner())
}
