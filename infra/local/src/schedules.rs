//! Runs the template's schedules: `rate(...)` expressions on a timer, and any schedule
//! on demand through `POST /_local/schedules/{name}`.

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
    pub invoke: Invoke,
}

/// Parses `rate(N minute|minutes|hour|hours|day|days)`; `cron(...)` runs only on demand.
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

pub async fn run_timer(
    schedule: LocalSchedule,
    period: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if let Err(error) = (schedule.invoke)(scheduled_event(&schedule.name)).await {
                    tracing::warn!(schedule = %schedule.name, %error, "scheduled run failed");
                }
            }
            _ = shutdown.changed() => return,
        }
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
    match (schedule.invoke)(scheduled_event(&schedule.name)).await {
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
    }
}
