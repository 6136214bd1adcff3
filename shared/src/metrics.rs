//! Metrics without an API call: on Lambda a count is one CloudWatch Embedded Metric
//! Format line on stdout, which CloudWatch Logs turns into a metric (namespace
//! `PartnerHub`, dimensions `Stage` and `Function`); the template alarms on them.
//! Elsewhere (the stand-in, tests) the count is an ordinary log line.

use serde_json::json;

pub const NAMESPACE: &str = "PartnerHub";
/// An event the hub could never process was parked as a dead letter.
pub const DEAD_LETTERS_PARKED: &str = "DeadLettersParked";

/// Counts one occurrence of `metric` in `function`.
pub fn count(metric: &'static str, function: &str) {
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        println!("{}", emf_line(metric, function, &stage(), now_millis()));
    } else {
        tracing::info!(metric, function, "metric");
    }
}

fn stage() -> String {
    std::env::var("STAGE").unwrap_or_else(|_| "unknown".to_owned())
}

fn now_millis() -> i64 {
    (crate::clock::now().unix_timestamp_nanos() / 1_000_000) as i64
}

/// One EMF document: the metric's definition under `_aws`, its value and dimensions at
/// the top level.
fn emf_line(metric: &str, function: &str, stage: &str, timestamp_ms: i64) -> String {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Stage", "Function"], ["Stage"]],
                "Metrics": [{"Name": metric, "Unit": "Count"}],
            }],
        },
        "Stage": stage,
        "Function": function,
        metric: 1,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_line_defines_the_metric_and_carries_its_value() {
        let line: serde_json::Value = serde_json::from_str(&emf_line(
            DEAD_LETTERS_PARKED,
            "subscription-events",
            "prod",
            1_700_000_000_000,
        ))
        .unwrap();
        let definition = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(definition["Namespace"], "PartnerHub");
        assert_eq!(definition["Metrics"][0]["Name"], "DeadLettersParked");
        assert_eq!(line["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        // Every dimension named in a set is present at the top level.
        for set in definition["Dimensions"].as_array().unwrap() {
            for name in set.as_array().unwrap() {
                assert!(line[name.as_str().unwrap()].is_string(), "{name}");
            }
        }
        assert_eq!(line["DeadLettersParked"], 1);
    }
}
