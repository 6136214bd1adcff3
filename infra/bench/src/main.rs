//! Measures the functions' cold init and stripped binary size against the budgets in
//! DESIGN.md ("Performance budgets"), beside a hello-world `lambda_runtime` baseline.
//!
//! Run: `cargo run -p hub-bench -- [--runs N] [--no-build]` (honours `CARGO_TARGET_DIR`).
//! `cargo run --release -p hub-bench -- sms` measures the SMS send pipeline (`sms`).
//! `cargo run -p hub-bench -- round-trips [--from FILE]` counts the AWS round trips of
//! every route and event handler (`round_trips`); `hub-bench iam-coverage --from FILE`
//! checks the IAM decisions of a test run against the template (`iam_coverage`); the init table is followed by the last
//! recorded round-trip table when there is one.
//!
//! Cold init is the time from spawning a release binary to its first
//! `GET /2018-06-01/runtime/invocation/next` on a fake Runtime API on 127.0.0.1.
//! Sizes are of the release binaries, which the workspace profile strips.

mod iam_coverage;
mod round_trips;
mod sms;

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::Command;

const BASELINE: &str = "hello-lambda";
/// Every Lambda binary: one crate per directory of `functions/` (crate name = binary
/// name). All of them read `shared::Config::from_env` at init (TABLE_NAME,
/// EVENT_BUS_NAME and KMS_KEY_ID required, the rest optional), which `cold_init` sets.
fn functions(workspace: &Path) -> Result<Vec<String>, Error> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(workspace.join("functions"))? {
        let path = entry?.path();
        if path.join("Cargo.toml").exists()
            && let Some(name) = path.file_name().and_then(|n| n.to_str())
        {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}
const NEXT: &str = "GET /2018-06-01/runtime/invocation/next";
const INIT_BUDGET_RATIO: f64 = 1.5;
const SIZE_BUDGET_MB: f64 = 6.0;
const TIMEOUT: Duration = Duration::from_secs(10);

type Error = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("hub-bench: {error}");
            ExitCode::from(2)
        }
    }
}

/// Returns whether every function met both budgets.
async fn run() -> Result<bool, Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("sms") {
        return sms::run(&args[1..]).await;
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if args.first().map(String::as_str) == Some("iam-coverage") {
        return iam_coverage::run(&args[1..], &workspace);
    }
    if args.first().map(String::as_str) == Some("round-trips") {
        return round_trips::run(&args[1..], &workspace).await;
    }
    let (runs, build) = parse_args()?;
    if build {
        build_release(&workspace).await?;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let functions = functions(&workspace)?;
    let binaries: Vec<&str> = std::iter::once(BASELINE)
        .chain(functions.iter().map(String::as_str))
        .collect();
    let paths: Vec<PathBuf> = binaries
        .iter()
        .map(|name| target.join("release").join(name))
        .collect();

    // Round-robin over the binaries so that drift in machine load hits all of them alike.
    let mut samples = vec![Vec::with_capacity(runs); binaries.len()];
    for _ in 0..runs {
        for ((name, path), times) in binaries.iter().zip(&paths).zip(&mut samples) {
            times.push(cold_init(name, path).await?);
        }
    }

    let baseline = median(&mut samples[0]);
    println!(
        "cold init over {runs} runs; budgets: init <= {INIT_BUDGET_RATIO}x {BASELINE}, size <= {SIZE_BUDGET_MB} MB"
    );
    println!(
        "{:<24} {:>10} {:>8} {:>7} {:>8}  {:<4}  {:<4}",
        "binary", "median ms", "p90 ms", "ratio", "size MB", "init", "size"
    );
    let mut all_pass = true;
    for ((name, path), times) in binaries.iter().zip(&paths).zip(&mut samples) {
        let med = median(times);
        let ratio = med / baseline;
        let size = std::fs::metadata(path)?.len() as f64 / 1e6;
        let (init, size_verdict) = if *name == BASELINE {
            ("-", "-")
        } else {
            let init_ok = ratio <= INIT_BUDGET_RATIO;
            let size_ok = size <= SIZE_BUDGET_MB;
            all_pass &= init_ok && size_ok;
            (verdict(init_ok), verdict(size_ok))
        };
        println!(
            "{name:<24} {med:>10.2} {:>8.2} {ratio:>7.2} {size:>8.2}  {init:<4}  {size_verdict:<4}",
            percentile(times, 0.9)
        );
    }
    let recorded = round_trips::default_file(&workspace);
    if recorded.exists() {
        println!();
        round_trips::run(
            &["--from".to_owned(), recorded.display().to_string()],
            &workspace,
        )
        .await?;
    }
    Ok(all_pass)
}

fn parse_args() -> Result<(usize, bool), Error> {
    let (mut runs, mut build) = (20, true);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => runs = args.next().ok_or("--runs needs a number")?.parse()?,
            "--no-build" => build = false,
            _ => {
                return Err(format!(
                    "unknown argument {arg:?}; usage: hub-bench [--runs N] [--no-build]"
                )
                .into());
            }
        }
    }
    if runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    Ok((runs, build))
}

async fn build_release(workspace: &Path) -> Result<(), Error> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(workspace).args(["build", "--release"]);
    for name in functions(workspace)? {
        command.args(["-p", &name, "--bin", &name]);
    }
    command.args(["-p", "hub-bench", "--bin", BASELINE]);
    if !command.status().await?.success() {
        return Err("cargo build --release failed".into());
    }
    Ok(())
}

/// Spawns `path` against a fresh fake Runtime API and returns milliseconds from spawn to
/// its first `next` request; the process is killed afterwards.
async fn cold_init(name: &str, path: &Path) -> Result<f64, Error> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let api = listener.local_addr()?.to_string();
    let started = Instant::now();
    let mut child = Command::new(path)
        .env("AWS_LAMBDA_RUNTIME_API", api)
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDBENCH")
        .env("AWS_SECRET_ACCESS_KEY", "bench-secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("TABLE_NAME", "hub-bench")
        .env("EVENT_BUS_NAME", "hub-bench")
        .env("KMS_KEY_ID", "alias/hub-bench")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| format!("{}: {error}", path.display()))?;
    let waited = tokio::select! {
        first = tokio::time::timeout(TIMEOUT, first_next(&listener)) => first,
        status = child.wait() => return Err(format!("{name} exited before asking for an invocation: {}", status?).into()),
    };
    let elapsed = started.elapsed();
    child.kill().await?;
    match waited {
        Ok(result) => result.map(|()| elapsed.as_secs_f64() * 1e3),
        Err(_) => Err(format!("{name} sent no `next` request within {TIMEOUT:?}").into()),
    }
}

/// Accepts connections until one's request line is the runtime's `next` request.
async fn first_next(listener: &TcpListener) -> Result<(), Error> {
    loop {
        let (stream, _) = listener.accept().await?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).await?;
        if line.starts_with(NEXT) {
            return Ok(());
        }
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

fn median(times: &mut [f64]) -> f64 {
    percentile(times, 0.5)
}

/// Nearest-rank percentile.
fn percentile(times: &mut [f64], q: f64) -> f64 {
    times.sort_by(f64::total_cmp);
    let rank = (q * times.len() as f64).ceil() as usize;
    times[rank.clamp(1, times.len()) - 1]
}
