//! Consumes the hub's events (routed by the template's rule) and appends each to its
//! account's timeline. Redelivered events change nothing; an event that is not a hub
//! event of the catalog is parked by the runner. An `sms.sent` billed to a shop also
//! counts its segments in the shop's day (`textMessages` usage), in the same write. An
//! `account.deleted` purges what is left of the account's partition instead (a deleted
//! embed sub-account's connections, logs and timeline): a timeline nobody can see.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::Serialize;
use shared::{
    Hub, analytics, clock,
    events::{EventPayload, HubEvent},
    runtime::{Failure, Function},
    store::{Tx, keys},
    timeline::{Appended, TimelineEntry},
    usage,
};

pub const NAME: &str = "account-timeline";

pub fn function() -> Function {
    Function::event(NAME, |hub, event| Box::pin(handle(hub, event)))
}

/// What happened to one delivered event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Outcome {
    Appended,
    Duplicate,
    /// Not about an account: nothing to record.
    Ignored,
    /// The account was deleted: its partition's items were deleted.
    Purged,
}

pub async fn handle(hub: &Hub, event: EventBridgeEvent<HubEvent>) -> Result<Outcome, Failure> {
    let detail = event.detail;
    let Some(account) = detail.account_id else {
        return Ok(Outcome::Ignored);
    };
    if let EventPayload::AccountDeleted(_) = &detail.payload {
        // (Only the hub puts hub events on its bus: the deleting transaction sent this.)
        // An account created again under the same id (a customer who subscribed anew
        // right after the cleanup) keeps its partition.
        return match hub
            .table
            .purge_partition_unless(
                &keys::account_partition(account),
                &keys::account(account).sk,
            )
            .await
        {
            Ok(Some(_)) => Ok(Outcome::Purged),
            Ok(None) => Ok(Outcome::Ignored),
            Err(e) => Err(Failure::Retry(e.to_string())),
        };
    }
    // An SMS billed to a shop counts in the shop's usage with its timeline entry, in
    // one transaction: a redelivered event finds the entry and counts nothing again.
    if let EventPayload::SmsSent(sent) = &detail.payload
        && let Some(shop) = sent.billed_shop
    {
        let mut tx = Tx::new();
        tx.put_new(&TimelineEntry::of(account, &detail))
            .map_err(|e| Failure::Retry(e.to_string()))?;
        let day = usage::counting_day(detail.occurred_at, clock::now());
        analytics::count_text_messages(&mut tx, shop, day, u64::from(sent.segments));
        return match hub.uow.commit_once(tx).await {
            Ok(true) => Ok(Outcome::Appended),
            Ok(false) => Ok(Outcome::Duplicate),
            Err(e) => Err(Failure::Retry(e.to_string())),
        };
    }
    match hub.timeline.append(account, &detail).await {
        Ok(Appended::New) => Ok(Outcome::Appended),
        Ok(Appended::Duplicate) => Ok(Outcome::Duplicate),
        Err(e) => Err(Failure::Retry(e.to_string())),
    }
}
