//! Runs the template's schedules on their timers — `rate(...)` every period, `cron(...)`
//! at the minutes it names (UTC) — and any schedule on demand through
//! `POST /_local/schedules/{name}`.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    routing::{get, post},
};
use shared::http::ApiError;
use tokio::sync::watch;

use crate::functions::Invoke;

#[derive(Clone)]
pub struct LocalSchedule {
    /// `<FunctionLogicalId>.<EventName>`.
    pub name: String,
    pub expression: String,
    /// The due work its function looks for (see `clock`): none fires it at every
    /// occurrence.
    pub polls: &'static [shared::store::keys::Due],
    pub invoke: Invoke,
    /// Where a run that fails its retries goes (Scheduler invokes asynchronously).
    pub on_failure: crate::failures::OnFailure,
}

/// When a schedule fires.
#[derive(Debug, Clone)]
pub enum Timer {
    Rate(Duration),
    Cron(crate::cron::Cron),
}

impl Timer {
    pub fn parse(expression: &str) -> Result<Self, String> {
        if expression.trim().starts_with("cron(") {
            return crate::cron::Cron::parse(expression).map(Timer::Cron);
        }
        rate_interval(expression)
            .map(Timer::Rate)
            .ok_or_else(|| format!("'{expression}' is neither rate(...) nor cron(...)"))
    }

    /// Its first occurrence after `now` (a rate's occurrences are whole periods since the
    /// Unix epoch).
    pub fn next_after(&self, now: time::OffsetDateTime) -> Option<time::OffsetDateTime> {
        match self {
            Timer::Rate(period) => {
                let period = i128::from(u64::try_from(period.as_micros()).ok()?.max(1));
                let micros = now.unix_timestamp_nanos() / 1000;
                let next = (micros.div_euclid(period) + 1) * period;
                time::OffsetDateTime::from_unix_timestamp_nanos(next * 1000).ok()
            }
            Timer::Cron(cron) => cron.next_after(now),
        }
    }

    /// How long from `now` until it fires next.
    fn wait(&self, now: time::OffsetDateTime) -> Option<Duration> {
        match self {
            Timer::Rate(period) => Some(*period),
            Timer::Cron(cron) => {
                let next = cron.next_after(now)?;
                Some(Duration::from_secs_f64(
                    (next - now).as_seconds_f64().max(0.0),
                ))
            }
        }
    }
}

/// The time as the timers see it (the stand-in's clock; tests shift it).
pub type Clock = Arc<dyn Fn() -> time::OffsetDateTime + Send + Sync>;

pub fn of(clock: &shared::clock::Clock) -> Clock {
    let clock = clock.clone();
    Arc::new(move || clock.now())
}

/// Parses `rate(N minute|minutes|hour|hours|day|days)`.
pub fn rate_interval(expression: &str) -> Option<Duration> {
    let inner = expression.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (count, unit) = inner.trim().split_once(' ')?;
    let count: u64 = count.parse().ok()?;
    let seconds = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    (count > 0).then(|| Duration::from_secs(count * seconds))
}

/// The event a scheduled invocation receives (shaped like EventBridge Scheduler's).
pub fn scheduled_event(name: &str) -> serde_json::Value {
    serde_json::json!({
        "version": "0",
        "id": uuid_like(),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "time": shared::clock::sortable(shared::clock::now()),
        "region": "us-east-1",
        "resources": [format!("local:schedule/{name}")],
        "detail": {}
    })
}

fn uuid_like() -> String {
    shared::secrets::random_hex16()
}

/// Fires the schedule on its timer until shutdown; a failed run is logged, and the
/// timer goes on.
pub async fn run_timer(
    schedule: LocalSchedule,
    timer: Timer,
    mut shutdown: watch::Receiver<bool>,
    clock: Clock,
) {
    loop {
        let Some(wait) = timer.wait(clock()) else {
            tracing::info!(schedule = %schedule.name, "the schedule never fires again");
            return;
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => run_scheduled(&schedule).await,
            _ = shutdown.changed() => return,
        }
    }
}

/// One timer-fired run: attempted as Lambda attempts an asynchronous invocation (the
/// first and two retries), then recorded at the function's on-failure destination.
async fn run_scheduled(schedule: &LocalSchedule) {
    let event = scheduled_event(&schedule.name);
    let mut last = String::new();
    for attempt in 1..=crate::rules::MAX_RECEIVES as u32 {
        match shared::runtime::invoke_guarded(&schedule.invoke, event.clone()).await {
            Ok(_) => return,
            Err(error) => {
                tracing::warn!(schedule = %schedule.name, attempt, %error, "scheduled run failed");
                last = error;
            }
        }
    }
    if let Err(e) = schedule
        .on_failure
        .record(&event, &last, crate::rules::MAX_RECEIVES as u32)
        .await
    {
        tracing::error!(schedule = %schedule.name, error = %e, "recording the failed run failed");
    }
}

type Schedules = Arc<BTreeMap<String, LocalSchedule>>;

/// `GET /_local/schedules` lists them; `POST /_local/schedules/{name}` fires one now.
pub fn admin_router(schedules: Vec<LocalSchedule>) -> Router {
    let schedules: Schedules =
        Arc::new(schedules.into_iter().map(|s| (s.name.clone(), s)).collect());
    Router::new()
        .route("/_local/schedules", get(list))
        .route("/_local/schedules/{name}", post(fire))
        .with_state(schedules)
}

async fn list(State(schedules): State<Schedules>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "schedules": schedules.values().map(|s| serde_json::json!({"name": s.name, "expression": s.expression})).collect::<Vec<_>>()
    }))
}

async fn fire(
    State(schedules): State<Schedules>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let schedule = schedules
        .values()
        .find(|s| s.name == name || s.name.ends_with(&format!(".{name}")))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_schedule",
                format!("no schedule named {name}"),
            )
        })?;
    match shared::runtime::invoke_guarded(&schedule.invoke, scheduled_event(&schedule.name)).await {
        Ok(result) => Ok(Json(
            serde_json::json!({"schedule": schedule.name, "result": result}),
        )),
        Err(error) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "schedule_failed",
            error,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rate_expressions() {
        assert_eq!(
            rate_interval("rate(1 minute)"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            rate_interval("rate(5 minutes)"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            rate_interval("rate(2 hours)"),
            Some(Duration::from_secs(7200))
        );
        assert_eq!(rate_interval("cron(0 12 * * ? *)"), None);
        assert_eq!(rate_interval("rate(0 minutes)"), None);
        assert!(Timer::parse("cron(0 12 * * ? *)").is_ok());
        assert!(Timer::parse("every day").is_err());
    }

    #[tokio::test]
    async fn a_cron_schedule_fires_on_its_timer() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let fired = Arc::new(AtomicUsize::new(0));
        let counter = fired.clone();
        let schedule = LocalSchedule {
            name: "Test.EveryMinute".into(),
            expression: "cron(* * * * ? *)".into(),
            polls: &[],
            invoke: Arc::new(move |event| {
                let counter = counter.clone();
                Box::pin(async move {
                    assert_eq!(event["source"], "aws.scheduler");
                    counter.fetch_add(1, Ordering::SeqCst);
                    Ok(serde_json::Value::Null)
                })
            }),
            on_failure: crate::failures::OnFailure {
                sqs: aws_sdk_sqs::Client::from_conf(
                    aws_sdk_sqs::Config::builder()
                        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
                        .build(),
                ),
                queue_url: None,
                function: "test".into(),
            },
        };
        // A clock 300 ms before a minute boundary, so the real timer fires promptly.
        let start = std::time::Instant::now();
        let base = shared::clock::parse_rfc3339("2026-11-23T10:15:59.700Z").unwrap();
        let clock: Clock = Arc::new(move || base + start.elapsed());
        let timer = Timer::parse(&schedule.expression).unwrap();
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run_timer(schedule, timer, stopped, clock));
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(
            fired.load(Ordering::SeqCst),
            1,
            "fired at 10:16:00, not before"
        );
        stop.send(true).unwrap();
        task.await.unwrap();
    }
}
