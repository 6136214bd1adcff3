//! `hub-bench iam-coverage --from FILE`: after the end-to-end suite ran with
//! `HUB_IAM_LOG_FILE=FILE` (every IAM decision of the stand-ins, one JSON line each),
//! checks that no call was denied and that every action the template grants each
//! function (and the operator) was allowed at least once, except the grants listed with
//! their reasons in `infra/iam/unused-grants.json`. Exits 1 if not.

use std::{collections::BTreeMap, path::Path};

use hub_local::iam::{Authorization, Exceptions, coverage, granted};

pub fn run(args: &[String], workspace: &Path) -> Result<bool, Box<dyn std::error::Error>> {
    let from = match args {
        [flag, file] if flag == "--from" => file.clone(),
        _ => return Err("usage: hub-bench iam-coverage --from <HUB_IAM_LOG_FILE>".into()),
    };
    let text = std::fs::read_to_string(&from).map_err(|e| format!("{from}: {e}"))?;
    let decisions: Vec<Authorization> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{from}: {e}"))?;
    let template = hub_emulator::Template::load(&workspace.join("infra/template.yaml"))?;
    let grants = granted(&template)?;
    let exceptions_file = workspace.join("infra/iam/unused-grants.json");
    let exceptions: Exceptions = serde_json::from_str::<BTreeMap<String, serde_json::Value>>(
        &std::fs::read_to_string(&exceptions_file)
            .map_err(|e| format!("{}: {e}", exceptions_file.display()))?,
    )?
    .into_iter()
    // "$comment" and the like document the file.
    .filter(|(principal, _)| !principal.starts_with('$'))
    .map(|(principal, list)| Ok((principal, serde_json::from_value(list)?)))
    .collect::<Result<_, serde_json::Error>>()?;
    let report = coverage(&grants, &decisions, &exceptions);
    let granted_count: usize = grants.values().map(|a| a.len()).sum();
    println!(
        "{} decisions; {} principals, {} grants; {} denied, {} unused, {} stale exceptions",
        decisions.len(),
        grants.len(),
        granted_count,
        report.denied.len(),
        report.unused.len(),
        report.stale_exceptions.len()
    );
    for d in &report.denied {
        println!("DENIED  {} {} on {}", d.principal, d.action, d.resource);
    }
    for (principal, action) in &report.unused {
        println!(
            "UNUSED  {principal} {action}: granted, never used by a test (remove it, test it, or list it in infra/iam/unused-grants.json with the reason)"
        );
    }
    for (principal, action) in &report.stale_exceptions {
        println!(
            "STALE   {principal} {action}: listed in infra/iam/unused-grants.json but no longer granted, or used after all"
        );
    }
    Ok(report.is_clean())
}
