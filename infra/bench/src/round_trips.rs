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
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use hub_local::round_trips::{Row, Sample, summarise};

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
