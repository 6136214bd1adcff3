//! `hub-bench round-trips`: the AWS round trips on each HTTP route's and each event
//! handler's path, cold and warm, against the goals in the README ("AWS round trips").
//!
//! The stand-in measures every request and event it hands a function (an SDK
//! interceptor counts the calls made in the invocation's task, see
//! `shared::round_trips`) and appends them to `HUB_ROUND_TRIPS_FILE`. This command runs
//! the end-to-end tests (`cargo test -p hub-tests`, which drive every route and handler as
//! partners and AWS would) with that file set, then summarises it; `--from FILE`
//! summarises an existing file.
//!
//! A function's first invocation in a stand-in is cold (empty caches); the rest warm.
//! Only successful invocations count (2xx/3xx, or a handled event): refusals stop early.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use hub_local::round_trips::Sample;

type Error = Box<dyn std::error::Error>;

/// Where the tests leave their samples (the default of `--from`).
pub fn default_file(workspace: &Path) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    target.join("test-artifacts/round-trips.jsonl")
}

pub async fn run(args: &[String], workspace: &Path) -> Result<bool, Error> {
    let file = match args {
        [] => {
            let file = default_file(workspace);
            record(workspace, &file).await?;
            file
        }
        [flag, file] if flag == "--from" => PathBuf::from(file),
        _ => return Err("usage: hub-bench round-trips [--from FILE]".into()),
    };
    let samples = load(&file)?;
    print_table(&summarise(&samples), &file);
    Ok(true)
}

/// Runs the end-to-end tests with the stand-ins appending to `file`.
async fn record(workspace: &Path, file: &Path) -> Result<(), Error> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(file);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = tokio::process::Command::new(cargo)
        .current_dir(workspace)
        .args(["test", "-p", "hub-tests"])
        .env("HUB_ROUND_TRIPS_FILE", file)
        .status()
        .await?;
    if !status.success() {
        eprintln!("hub-bench: some end-to-end tests failed; the figures cover what ran");
    }
    Ok(())
}

pub fn load(file: &Path) -> Result<Vec<Sample>, Error> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        format!(
            "{}: {e} (run `hub-bench round-trips` to record)",
            file.display()
        )
    })?;
    Ok(text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect())
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

/// The goals (README, "AWS round trips"): provisioning a new shop in 3 (cold) and a repeat in 2; every other
/// route and every event handler in 2; scheduled jobs work in batches and have none.
fn goal(operation: &str) -> Option<usize> {
    if operation == "schedule" {
        None
    } else {
        Some(2)
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

fn print_table(rows: &[Row], file: &Path) {
    println!(
        "AWS round trips per invocation (from {}; overlapping calls count once)",
        file.display()
    );
    println!(
        "{:<52} {:<22} {:>4} {:>5} {:>5} {:>5} {:>5}  {:<4}  typical warm calls",
        "operation", "function", "n", "cold", "warm", "max", "goal", "ok"
    );
    let show = |v: Option<usize>| v.map_or("-".to_owned(), |v| v.to_string());
    let mut misses = BTreeSet::new();
    for row in rows {
        let verdict = match row.meets_goal() {
            Some(true) => "ok",
            Some(false) => {
                misses.insert(row.operation.clone());
                "over"
            }
            None => "-",
        };
        println!(
            "{:<52} {:<22} {:>4} {:>5} {:>5} {:>5} {:>5}  {:<4}  {}",
            row.operation,
            row.function,
            row.samples,
            show(row.cold),
            show(row.warm_median),
            show(row.warm_max),
            show(row.goal),
            verdict,
            row.typical_calls.join(" ")
        );
    }
    println!(
        "{} operations; {} over their goal (warm median)",
        rows.len(),
        misses.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

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
