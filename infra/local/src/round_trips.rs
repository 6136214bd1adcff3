//! The AWS round trips of every HTTP request and event the stand-in hands a function
//! (`shared::round_trips` counts them), kept for `GET /_local/round-trips` and, when
//! `HUB_ROUND_TRIPS_FILE` names a file, appended to it as JSON lines for
//! `hub-bench round-trips`.
//!
//! A function's first invocation is *cold*: its process-wide caches (partners by token,
//! data keys) are empty, as in a new Lambda execution environment; later ones are warm.

use std::{
    collections::{BTreeMap, HashSet},
    io::Write,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use axum::{Json, Router, routing::get};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::round_trips::Measured;

use crate::functions::Invoke;

/// One measured invocation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// The function's binary.
    pub function: String,
    /// `METHOD /route/{param}` for HTTP, `event <detail-type>`, `stream` or `schedule`.
    pub operation: String,
    /// The HTTP status, or `ok` / `error` for an event.
    pub outcome: String,
    pub cold: bool,
    pub calls: Vec<String>,
    pub round_trips: usize,
}

#[derive(Clone, Default)]
pub struct RoundTripLog {
    inner: Arc<Mutex<Log>>,
    file: Option<PathBuf>,
}

#[derive(Default)]
struct Log {
    samples: Vec<Sample>,
    invoked: HashSet<String>,
}

/// Samples kept in memory (the file keeps them all).
const KEPT: usize = 10_000;

impl RoundTripLog {
    /// Appends to `HUB_ROUND_TRIPS_FILE` when it is set.
    pub fn from_env() -> Self {
        Self {
            inner: Arc::default(),
            file: std::env::var_os("HUB_ROUND_TRIPS_FILE")
                .filter(|f| !f.is_empty())
                .map(PathBuf::from),
        }
    }

    pub fn record(&self, function: &str, operation: String, outcome: String, measured: Measured) {
        let sample = {
            let mut log = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            let cold = log.invoked.insert(function.to_owned());
            let sample = Sample {
                function: function.to_owned(),
                operation,
                outcome,
                cold,
                calls: measured.calls,
                round_trips: measured.round_trips,
            };
            if log.samples.len() < KEPT {
                log.samples.push(sample.clone());
            }
            sample
        };
        if let Some(path) = &self.file {
            // One write per line, appended: test processes share the file.
            let line = format!("{}\n", serde_json::to_string(&sample).unwrap_or_default());
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut file| file.write_all(line.as_bytes()));
            if let Err(e) = written {
                tracing::warn!(file = %path.display(), error = %e, "cannot append a round-trip sample");
            }
        }
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .samples
            .clone()
    }

    /// `GET /_local/round-trips`: every sample so far.
    pub fn router(self) -> Router {
        Router::new().route(
            "/_local/round-trips",
            get(move || {
                let log = self.clone();
                async move { Json(log.samples()) }
            }),
        )
    }

    /// The function's event entry point, measured.
    pub fn measured_invoke(&self, function: &str, invoke: Invoke) -> Invoke {
        let log = self.clone();
        let function = function.to_owned();
        std::sync::Arc::new(move |event: Value| {
            let (log, function, invoke) = (log.clone(), function.clone(), invoke.clone());
            Box::pin(async move {
                let operation = event_operation(&event);
                let (result, measured) = shared::round_trips::measure(invoke(event)).await;
                let outcome = if result.is_ok() { "ok" } else { "error" };
                log.record(&function, operation, outcome.to_owned(), measured);
                result
            })
        })
    }
}

/// What kind of invocation an event is: an EventBridge event by its detail-type, a
/// stream batch, or a schedule's tick.
fn event_operation(event: &Value) -> String {
    if let Some(detail_type) = event.get("detail-type").and_then(Value::as_str) {
        if event.get("source").and_then(Value::as_str) == Some("aws.scheduler")
            || detail_type == "Scheduled Event"
        {
            return "schedule".to_owned();
        }
        return format!("event {detail_type}");
    }
    if event.get("Records").is_some() {
        return "stream".to_owned();
    }
    "schedule".to_owned()
}

/// One row: an operation's round trips, cold and warm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub operation: String,
    pub function: String,
    pub samples: usize,
    /// Round trips of cold invocations (max), when one was seen.
    pub cold: Option<usize>,
    pub warm_median: Option<usize>,
    pub warm_max: Option<usize>,
    /// The calls of the warm invocation with the median round trips.
    pub typical_calls: Vec<String>,
    /// The goal for warm invocations, if the operation has one.
    pub goal: Option<usize>,
}

impl Row {
    pub fn meets_goal(&self) -> Option<bool> {
        Some(self.warm_median? <= self.goal?)
    }
}

fn succeeded(sample: &Sample) -> bool {
    match sample.outcome.parse::<u16>() {
        Ok(status) => status < 400,
        Err(_) => sample.outcome == "ok",
    }
}

/// The goals (README, "AWS round trips"): provisioning a new shop in 3 and a repeat in 2; every other
/// route and every event handler in 2; scheduled jobs work in batches and have none.
fn goal(operation: &str) -> Option<usize> {
    match operation {
        "schedule" => None,
        // A new shop in 3 (its partner's first call reads the partner); a repeat in 2
        // (`provisioning_takes_three_round_trips_cold_and_a_repeat_at_most_two`).
        "POST /api/v0/partners/domains" => Some(3),
        _ => Some(2),
    }
}

pub fn summarise(samples: &[Sample]) -> Vec<Row> {
    let mut groups: BTreeMap<(String, String), Vec<&Sample>> = BTreeMap::new();
    for sample in samples.iter().filter(|s| succeeded(s)) {
        groups
            .entry((sample.operation.clone(), sample.function.clone()))
            .or_default()
            .push(sample);
    }
    groups
        .into_iter()
        .map(|((operation, function), samples)| {
            let cold = samples
                .iter()
                .filter(|s| s.cold)
                .map(|s| s.round_trips)
                .max();
            let mut warm: Vec<&Sample> = samples.iter().copied().filter(|s| !s.cold).collect();
            warm.sort_by_key(|s| s.round_trips);
            let median = warm.get(warm.len().saturating_sub(1) / 2);
            Row {
                goal: goal(&operation),
                operation,
                function,
                samples: samples.len(),
                cold,
                warm_median: median.map(|s| s.round_trips),
                warm_max: warm.last().map(|s| s.round_trips),
                typical_calls: median.map(|s| s.calls.clone()).unwrap_or_default(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_are_named_by_kind() {
        assert_eq!(
            event_operation(
                &json!({"detail-type": "account.provisioned", "source": "partner-hub"})
            ),
            "event account.provisioned"
        );
        assert_eq!(
            event_operation(&json!({"Records": [{"eventSource": "aws:dynamodb"}]})),
            "stream"
        );
        assert_eq!(
            event_operation(&json!({"detail-type": "Scheduled Event", "source": "aws.scheduler"})),
            "schedule"
        );
    }

    #[test]
    fn a_functions_first_invocation_is_cold() {
        let log = RoundTripLog::default();
        log.record("f", "a".into(), "200".into(), Measured::default());
        log.record("f", "a".into(), "200".into(), Measured::default());
        log.record("g", "b".into(), "ok".into(), Measured::default());
        let cold: Vec<bool> = log.samples().iter().map(|s| s.cold).collect();
        assert_eq!(cold, [true, false, true]);
    }

    fn sample(operation: &str, outcome: &str, cold: bool, round_trips: usize) -> Sample {
        Sample {
            function: "f".into(),
            operation: operation.into(),
            outcome: outcome.into(),
            cold,
            calls: vec!["DynamoDB.GetItem".into(); round_trips],
            round_trips,
        }
    }

    #[test]
    fn rows_take_the_warm_median_of_successes_and_the_cold_maximum() {
        let rows = summarise(&[
            sample("GET /a", "200", true, 3),
            sample("GET /a", "200", false, 1),
            sample("GET /a", "200", false, 2),
            sample("GET /a", "200", false, 5),
            sample("GET /a", "401", false, 0),
            sample("schedule", "ok", false, 9),
        ]);
        assert_eq!(rows.len(), 2);
        let a = &rows[0];
        assert_eq!(
            (a.samples, a.cold, a.warm_median, a.warm_max),
            (4, Some(3), Some(2), Some(5))
        );
        assert_eq!(a.meets_goal(), Some(true));
        assert_eq!(rows[1].goal, None, "jobs have no goal");
    }
}
