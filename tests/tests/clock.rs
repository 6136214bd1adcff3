//! The stand-in's clock: days pass in seconds, the schedules due on the way fire in time
//! order, and what partners sign at the moved time is accepted.

use std::time::Instant;

use hub_tests::{PARTNER_A_KEY, PARTNER_A_PUB, TestHub, shop_claims};
use serde_json::{Value, json};

fn fired(answer: &Value) -> Vec<(String, String)> {
    answer["fired"]
        .as_array()
        .expect("fired is a list")
        .iter()
        .map(|run| {
            (
                run["schedule"].as_str().unwrap().to_owned(),
                run["at"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn clock_now(hub: &TestHub) -> time::OffsetDateTime {
    let answer = hub.get_json("/_local/clock").await;
    shared::clock::parse_rfc3339(answer["now"].as_str().expect("now")).expect("RFC 3339")
}

#[tokio::test]
async fn advancing_days_fires_the_schedules_due_on_the_way_in_time_order() {
    let hub = TestHub::start("clock-days").await;
    let partner = hub.register("Clock", PARTNER_A_PUB, PARTNER_A_KEY).await;
    let (status, body) = hub
        .provision(&partner, &shop_claims("clock-shop.example"))
        .await;
    assert_eq!(status, 201, "{body}");
    let before = clock_now(&hub).await;
    // A billing period that ends in 30 days: due work for billing-periods.
    hub.confirm_plans(&partner, "clock-shop.example", &[1])
        .await;
    let period_end = before + time::Duration::days(30);

    let started = Instant::now();
    let answer = hub.advance_clock("31d").await;
    let took = started.elapsed();
    let after = clock_now(&hub).await;
    assert!(after >= before + time::Duration::days(31), "{answer}");
    assert!(after < before + time::Duration::days(31) + time::Duration::minutes(1));

    let runs = fired(&answer);
    let times: Vec<&String> = runs.iter().map(|(_, at)| at).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "runs are fired in time order: {answer}");
    // usage-records' cron(0 2 * * ? *): every day at 02:00 UTC, 31 or 32 times.
    let daily: Vec<&(String, String)> = runs
        .iter()
        .filter(|(name, _)| name.starts_with("UsageRecordsFunction."))
        .collect();
    assert!((31..=32).contains(&daily.len()), "{answer}");
    assert!(daily.iter().all(|(_, at)| at.contains("T02:00:00.000000Z")));
    // billing-periods (rate(5 minutes)) ran once, at its first occurrence after the
    // period's end; the runs that would have found nothing due were skipped.
    let rollovers: Vec<time::OffsetDateTime> = runs
        .iter()
        .filter(|(name, _)| name.starts_with("BillingPeriodsFunction."))
        .map(|(_, at)| shared::clock::parse_rfc3339(at).unwrap())
        .collect();
    assert_eq!(rollovers.len(), 1, "{answer}");
    assert!(
        rollovers[0] >= period_end - time::Duration::seconds(5),
        "{answer}"
    );
    assert!(
        rollovers[0] <= period_end + time::Duration::minutes(5),
        "{answer}"
    );
    assert!(
        !runs
            .iter()
            .any(|(name, _)| name.starts_with("SmsTriggerFunction.")),
        "no SMS was due: the send job's runs are skipped"
    );
    assert!(took.as_secs() < 30, "31 days took {took:?}");

    // The shop's next period started at the old one's end: the hub saw the time pass.
    let statement = hub
        .signed(
            "POST",
            "/api/v0/partners/domains/statement",
            &partner,
            &json!({"shop": "clock-shop.example"}),
        )
        .await;
    assert_eq!(statement.status(), 200, "signed at the stand-in's time");
}

#[tokio::test]
async fn the_clock_never_runs_back_and_refuses_what_it_cannot_read() {
    let hub = TestHub::start("clock-bad").await;
    let now = clock_now(&hub).await;
    let earlier = shared::clock::sortable(now - time::Duration::hours(1));
    for body in [
        json!({"set": earlier}),
        json!({"advance": "0d"}),
        json!({"advance": "-1h"}),
        json!({"advance": "1w"}),
        json!({"advance": "1d", "set": shared::clock::sortable(now)}),
        json!({"set": "tomorrow"}),
        json!({"set": "10000-01-01T00:00:00Z"}),
        json!({"advance": "1000000000d"}),
        json!({}),
        json!({"advance": "1d", "extra": true}),
        json!({"advance": " 1s"}),
        json!({"advance": "+1s"}),
        json!({"advance": "3661d"}),
        json!(["1s", null]),
    ] {
        let response = hub
            .http
            .post(hub.url("/_local/clock"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{body}");
        let error: Value = response.json().await.unwrap();
        assert!(error["error"]["message"].is_string(), "{error}");
    }
    let unchanged = clock_now(&hub).await;
    assert!(
        unchanged - now < time::Duration::minutes(1),
        "nothing moved it"
    );
    // `set` to a later instant moves it there exactly.
    let target = now + time::Duration::days(2) + time::Duration::seconds(7);
    let response = hub
        .http
        .post(hub.url("/_local/clock"))
        .json(&json!({"set": shared::clock::sortable(target)}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let moved = shared::clock::parse_rfc3339(answer["now"].as_str().unwrap()).unwrap();
    assert!(
        moved >= target && moved - target < time::Duration::seconds(5),
        "{answer}"
    );
}

#[tokio::test]
async fn a_year_on_the_demo_data_takes_less_than_a_minute() {
    let hub = TestHub::start("clock-year").await;
    let started = Instant::now();
    let answer = hub.advance_clock("365d").await;
    let took = started.elapsed();
    let runs = fired(&answer);
    let mut by_schedule = std::collections::BTreeMap::<&str, usize>::new();
    for (name, _) in &runs {
        *by_schedule.entry(name.as_str()).or_default() += 1;
    }
    println!("runs fired in 365 days: {by_schedule:?}");
    let daily = runs
        .iter()
        .filter(|(name, _)| name.starts_with("UsageRecordsFunction."))
        .count();
    assert!((365..=366).contains(&daily), "{answer}");
    println!("advancing 365 days on the demo data took {took:?}");
    assert!(took.as_secs() < 60, "365 days took {took:?}");
}

#[tokio::test]
async fn hub_admin_signs_at_the_stand_ins_time_after_an_advance() {
    let hub = TestHub::start("clock-sign").await;
    let partner = hub.register("Signer", PARTNER_A_PUB, PARTNER_A_KEY).await;
    hub.advance_clock("2d").await;
    let dir = std::env::temp_dir().join(format!("clock-sign-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let claims = dir.join("claims.json");
    std::fs::write(&claims, shop_claims("signed-later.example").to_string()).unwrap();
    let key = dir.join("partner.key");
    std::fs::write(&key, PARTNER_A_KEY).unwrap();
    let output = tokio::process::Command::new(hub_tests::hub_admin_binary())
        .args(["sign", "--claims"])
        .arg(&claims)
        .arg("--private-key")
        .arg(&key)
        .env("HUB_LOCAL_URL", &hub.stand_in.base_url)
        .current_dir(&dir)
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let jwt = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let (status, body) = hub
        .post_domains(Some(&partner.token), json!({ "payload": jwt }).to_string())
        .await;
    assert_eq!(status, 201, "{body}");
    // Signed at this machine's time instead, the payload expired two days ago.
    let stale = hub_tests::sign_rs512(PARTNER_A_KEY, &shop_claims("stale.example"), 3600);
    let (status, body) = hub
        .post_domains(
            Some(&partner.token),
            json!({ "payload": stale }).to_string(),
        )
        .await;
    assert_eq!(status, 401, "{body}");
}

#[tokio::test]
async fn two_moves_at_once_are_one_after_the_other_and_fire_each_run_once() {
    let hub = TestHub::start("clock-race").await;
    let before = clock_now(&hub).await;
    let (a, b) = tokio::join!(hub.advance_clock("2d"), hub.advance_clock("2d"));
    let after = clock_now(&hub).await;
    assert!(after >= before + time::Duration::days(4), "{a}\n{b}");
    assert!(after < before + time::Duration::days(4) + time::Duration::minutes(1));
    let mut runs: Vec<(String, String)> = fired(&a).into_iter().chain(fired(&b)).collect();
    let count = runs.len();
    runs.sort();
    runs.dedup();
    assert_eq!(runs.len(), count, "a run fired twice: {a}\n{b}");
    let daily = runs
        .iter()
        .filter(|(name, _)| name.starts_with("UsageRecordsFunction."))
        .count();
    assert!((4..=5).contains(&daily), "{a}\n{b}");

    // A set to the very instant a run is due fires it and answers 200.
    let next_two = shared::clock::sortable(
        (after + time::Duration::days(1)).replace_time(time::macros::time!(02:00)),
    );
    let response = hub
        .http
        .post(hub.url("/_local/clock"))
        .json(&json!({"set": next_two}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert!(
        fired(&answer)
            .iter()
            .any(|(name, at)| name.starts_with("UsageRecordsFunction.") && *at == next_two),
        "{answer}"
    );
}
