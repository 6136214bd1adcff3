//! The stand-in's clock: the hub's "now" for everything this stand-in runs, read with
//! `GET /_local/clock` and moved forward with `POST /_local/clock`, firing on the way the
//! schedules that fall due, in time order, each run finished before the next.
//!
//! Advancing steps from one instant at which something is due to the next:
//! - a schedule that declares no due work (`usage-records`' daily cron) fires at every
//!   occurrence;
//! - a schedule that polls due work (`Function::polls`: account-cleanup, billing-periods,
//!   connection-refresh, marketplace-suspensions, outbound-deliveries, sms-trigger) fires
//!   only at its first occurrence at or after an item of its kinds falls due in the
//!   table's `DueIndex`; the runs in between would find nothing due and are skipped. An
//!   item already due when the schedule last fired does not make it fire again (it was
//!   offered once: what a run leaves is taken by the next run that fires).
//!
//! Events the runs publish are delivered by the stream and rule pollers as they are at
//! any time: asynchronously, at the clock's time when they arrive.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use aws_sdk_dynamodb::types::AttributeValue;
use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
use serde::Deserialize;
use shared::{clock::Clock, http::ApiError};
use time::OffsetDateTime;

use crate::schedules::{LocalSchedule, Timer};

/// The stand-in's clock and what it fires.
#[derive(Clone)]
pub struct LocalClock {
    pub clock: Clock,
    schedules: Arc<Vec<(LocalSchedule, Timer)>>,
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
    /// One advance at a time: two would fire the same runs twice.
    advancing: Arc<tokio::sync::Mutex<()>>,
}

/// A schedule run fired on the way.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Fired {
    pub schedule: String,
    pub at: String,
}

/// Where a move goes.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    By(Duration),
    At(OffsetDateTime),
}

/// The longest move at once: ten years of runs.
const MAX_MOVE: time::Duration = time::Duration::days(3660);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Move {
    advance: Option<String>,
    set: Option<String>,
}

impl LocalClock {
    pub fn new(
        clock: Clock,
        schedules: &[LocalSchedule],
        dynamodb: aws_sdk_dynamodb::Client,
        table: String,
    ) -> Result<Self, String> {
        let schedules = schedules
            .iter()
            .map(|s| Ok((s.clone(), Timer::parse(&s.expression)?)))
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self {
            clock,
            schedules: Arc::new(schedules),
            dynamodb,
            table,
            advancing: Arc::default(),
        })
    }

    pub fn router(self) -> Router {
        Router::new()
            .route("/_local/clock", get(read).post(move_clock))
            .with_state(self)
    }

    /// Moves the clock to `target`, firing every run due on the way (see the module).
    pub async fn advance_to(&self, target: OffsetDateTime) -> Result<Vec<Fired>, String> {
        self.advance(Target::At(target)).await
    }

    /// Moves the clock as `target` says, computed once no other move is under way (so
    /// two moves at once are one after the other, and a refused one changes nothing).
    pub async fn advance(&self, target: Target) -> Result<Vec<Fired>, String> {
        let _one_at_a_time = self.advancing.lock().await;
        let now = self.clock.now();
        let target = match target {
            Target::By(by) => shared::clock::checked_add(now, by)
                .ok_or("advance: past the end of the hub's time range")?,
            Target::At(at) if at < now => {
                return Err(format!(
                    "set: {} is earlier than the clock's now ({}): the clock only moves forward",
                    shared::clock::sortable(at),
                    shared::clock::sortable(now)
                ));
            }
            Target::At(at) => at,
        };
        if target - now > MAX_MOVE {
            return Err(format!(
                "a move of more than {} days at once is refused (each day fires its runs; move in steps)",
                MAX_MOVE.whole_days()
            ));
        }
        let mut fired = Vec::new();
        let mut last_fired: BTreeMap<String, OffsetDateTime> = BTreeMap::new();
        loop {
            let now = self.clock.now();
            let due = self.earliest_due(&last_fired).await?;
            let mut next: Option<(OffsetDateTime, Vec<&LocalSchedule>)> = None;
            for (schedule, timer) in self.schedules.iter() {
                let Some(at) = next_run(schedule, timer, now, &due) else {
                    continue;
                };
                if at > target {
                    continue;
                }
                match &mut next {
                    Some((earliest, list)) if at == *earliest => list.push(schedule),
                    Some((earliest, _)) if at > *earliest => {}
                    _ => next = Some((at, vec![schedule])),
                }
            }
            let Some((at, runs)) = next else { break };
            self.clock.move_at_least_to(at);
            for schedule in runs {
                let result = self
                    .clock
                    .scope(shared::runtime::invoke_guarded(
                        &schedule.invoke,
                        crate::schedules::scheduled_event(&schedule.name),
                    ))
                    .await;
                if let Err(error) = result {
                    // As on AWS: the run failed; its retries and destination are the
                    // timer's business, the clock goes on.
                    tracing::warn!(schedule = %schedule.name, %error, "a run fired by the clock failed");
                }
                last_fired.insert(schedule.name.clone(), at);
                fired.push(Fired {
                    schedule: schedule.name.clone(),
                    at: shared::clock::sortable(at),
                });
            }
        }
        self.clock.move_at_least_to(target);
        Ok(fired)
    }

    /// The earliest `DueAt` per due kind (`SMS#<site>` counts as `SMS`) among the items
    /// that fell due after the schedule polling them last fired in this advance.
    async fn earliest_due(
        &self,
        last_fired: &BTreeMap<String, OffsetDateTime>,
    ) -> Result<BTreeMap<String, OffsetDateTime>, String> {
        // Each polling kind's "since": the last firing of the schedules polling it.
        let mut since: BTreeMap<&'static str, Option<OffsetDateTime>> = BTreeMap::new();
        for (schedule, _) in self.schedules.iter() {
            for kind in schedule.polls {
                since.insert(kind.as_str(), last_fired.get(&schedule.name).copied());
            }
        }
        let mut earliest: BTreeMap<String, OffsetDateTime> = BTreeMap::new();
        if since.is_empty() {
            return Ok(earliest);
        }
        // The stand-in's own look at the sparse index (never a function's path).
        let mut start = None;
        loop {
            let page = self
                .dynamodb
                .scan()
                .table_name(&self.table)
                .index_name(shared::store::keys::DUE_INDEX)
                .projection_expression("DuePK, DueAt")
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "reading the due index: {}",
                        aws_sdk_dynamodb::error::DisplayErrorContext(e)
                    )
                })?;
            for item in page.items() {
                let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(at))) =
                    (item.get("DuePK"), item.get("DueAt"))
                else {
                    continue;
                };
                let kind = pk.split('#').next().unwrap_or(pk);
                let Some(after) = since.get(kind) else {
                    continue;
                };
                let Some(at) = shared::clock::parse_rfc3339(at) else {
                    continue;
                };
                if after.is_some_and(|after| at <= after) {
                    continue;
                }
                let entry = earliest.entry(kind.to_owned()).or_insert(at);
                if at < *entry {
                    *entry = at;
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(earliest);
            }
        }
    }
}

/// When `schedule` next runs after `now`: its next occurrence, or for a schedule polling
/// due work, its first occurrence at or after the earliest of that work (none: never).
fn next_run(
    schedule: &LocalSchedule,
    timer: &Timer,
    now: OffsetDateTime,
    due: &BTreeMap<String, OffsetDateTime>,
) -> Option<OffsetDateTime> {
    if schedule.polls.is_empty() {
        return timer.next_after(now);
    }
    let earliest = schedule
        .polls
        .iter()
        .filter_map(|kind| due.get(kind.as_str()))
        .min()?;
    if *earliest <= now {
        return timer.next_after(now);
    }
    // An occurrence exactly when the work falls due takes it.
    timer.next_after(*earliest - time::Duration::MICROSECOND)
}

/// `invoke` with the stand-in's clock as its "now", whichever task calls it.
pub fn scoped_invoke(clock: &Clock, invoke: crate::functions::Invoke) -> crate::functions::Invoke {
    let clock = clock.clone();
    Arc::new(move |event| {
        let (clock, invoke) = (clock.clone(), invoke.clone());
        Box::pin(async move { clock.scope(invoke(event)).await })
    })
}

/// `router` with the stand-in's clock as the "now" of every request it serves.
pub fn scoped_router(clock: &Clock, router: Router) -> Router {
    let clock = clock.clone();
    router.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let clock = clock.clone();
            async move { clock.scope(next.run(request)).await }
        },
    ))
}

async fn read(State(clock): State<LocalClock>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "now": shared::clock::sortable(clock.clock.now()) }))
}

async fn move_clock(
    State(clock): State<LocalClock>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let invalid = |message: String| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_clock_move",
            message,
        )
    };
    let request: Move = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .filter(serde_json::Value::is_object)
        .and_then(|value| serde_json::from_value(value).ok())
        .ok_or_else(|| {
            invalid(
                "expected a JSON object {\"advance\": \"<n>s|m|h|d\"} or {\"set\": \"<RFC 3339>\"}"
                    .to_owned(),
            )
        })?;
    let target = match (request.advance.as_deref(), request.set.as_deref()) {
        (Some(by), None) => Target::By(parse_advance(by).ok_or_else(|| {
            invalid(format!(
                "advance: '{by}' is not <n>s, <n>m, <n>h or <n>d (a whole, positive number)"
            ))
        })?),
        (None, Some(at)) => Target::At(shared::clock::parse_rfc3339(at).ok_or_else(|| {
            invalid(format!(
                "set: '{at}' is not an RFC 3339 time in the years 0001-9999"
            ))
        })?),
        _ => {
            return Err(invalid(
                "give exactly one of \"advance\" and \"set\"".to_owned(),
            ));
        }
    };
    // Its own task: a client that goes away does not cut the runs short halfway.
    let moving = clock.clone();
    let fired = tokio::spawn(async move { moving.advance(target).await })
        .await
        .map_err(|e| invalid(format!("the move failed: {e}")))?
        .map_err(invalid)?;
    Ok(Json(serde_json::json!({
        "now": shared::clock::sortable(clock.clock.now()),
        "fired": fired,
    })))
}

/// `90s`, `15m`, `36h`, `365d`.
pub fn parse_advance(text: &str) -> Option<Duration> {
    let unit = text.chars().last()?;
    let digits = &text[..text.len() - unit.len_utf8()];
    // ASCII digits only: no sign, space or other script's digits.
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let count: u64 = digits.parse().ok()?;
    let seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    (count > 0).then_some(Duration::from_secs(count.checked_mul(seconds)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advances_are_whole_positive_counts_of_a_unit() {
        assert_eq!(parse_advance("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_advance("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_advance("36h"), Some(Duration::from_secs(129_600)));
        assert_eq!(parse_advance("365d"), Some(Duration::from_secs(31_536_000)));
        for bad in [
            "",
            "d",
            "0d",
            "-1d",
            "1.5d",
            "1w",
            "1 d",
            "18446744073709551615d",
        ] {
            assert_eq!(parse_advance(bad), None, "{bad}");
        }
    }
}
