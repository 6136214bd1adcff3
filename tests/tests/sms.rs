//! Loyalty SMS (contract `loyalty-sms-gateway.txt`) end to end through the stand-in: a
//! site activates its gateway, subscribes a member, posts loyalty actions; the send job
//! sends each once through the stand-in's fake gateway, and the tests check the exact
//! requests the gateway received (method, path, bearer token, body as the contract's
//! samples). Then the other endings: unsubscribed, ineligible, quiet hours, no template,
//! gateway 429 then 200, a 5xx (unknown: parked, never resent), a gateway down for every
//! attempt (parked), deactivation.

use std::time::{Duration, Instant};

use hub_tests::{
    PARTNER_A_KEY, PARTNER_A_PUB, PARTNER_B_KEY, PARTNER_B_PUB, TestHub, assert_documented, sample,
};
use serde_json::{Value, json};
use shared::sms::{JobStatus, send::Sender};
use time::OffsetDateTime;

const GATEWAY: &str = "api.attentivemobile.com";
const APP_TOKEN: &str = "elNnY1pFcXRwSmJNTFlkRnVIdU1nSFhoRUE5QURxeno1VFc4";
const MESSAGES_TOKEN: &str = "EJ0S7a5v27DkZuxxtIxjyIq3S54ac4dNm8NDLf8sMK8";

struct Site {
    id: u64,
    bearer: String,
    webhook_secret: String,
}

async fn site(hub: &TestHub) -> Site {
    let partner = hub
        .register("Loyalty Partner", PARTNER_A_PUB, PARTNER_A_KEY)
        .await;
    let registered = hub
        .stand_in
        .hub
        .sms
        .register_site(partner.id, "Demo loyalty site")
        .await
        .unwrap();
    Site {
        id: registered.site_id,
        bearer: format!("Bearer {}", registered.access_token),
        webhook_secret: registered.webhook_secret,
    }
}

/// Calls the site API; checks the answer against the OpenAPI document.
async fn call(
    hub: &TestHub,
    site: &Site,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = hub
        .http
        .request(method.parse().unwrap(), hub.url(path))
        .header("authorization", &site.bearer);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let documented = path.split('?').next().unwrap_or(path);
    let documented = if documented.starts_with("/api/3.0/sms/actions/") {
        "/api/3.0/sms/actions/{action_id}"
    } else if documented.starts_with("/api/3.0/sms/templates/") {
        "/api/3.0/sms/templates/{action}"
    } else if documented.starts_with("/api/3.0/sms/members/") {
        "/api/3.0/sms/members/{phone}/messages"
    } else if documented.starts_with("/api/3.0/segment/") {
        "/api/3.0/segment/{segment_id}"
    } else {
        documented
    };
    assert_documented(method, documented, status, Some(&body));
    (status, body)
}

fn activation(quiet_start: &str, quiet_end: &str) -> Value {
    json!({
        "signUpSourceId": "132109",
        "appToken": APP_TOKEN,
        "messagesToken": MESSAGES_TOKEN,
        "defaultCountry": "US",
        "timeZone": "UTC",
        "quietHours": {"start": quiet_start, "end": quiet_end},
        "ratePerSecond": 50,
    })
}

fn action(id: &str, kind: &str, points: u32) -> Value {
    json!({
        "actionId": id, "memberId": "m-77", "email": "test@gmail.com", "phone": "7707651750",
        "action": kind, "points": points, "balance": 300 + points,
        "occurredAt": "2026-11-24T10:00:00Z",
    })
}

fn sender(hub: &TestHub) -> Sender {
    sms_trigger::sender(&hub.stand_in.hub).unwrap()
}

async fn run(hub: &TestHub, at: OffsetDateTime) -> shared::sms::send::SendReport {
    sender(hub)
        .run(at, Instant::now() + Duration::from_secs(60))
        .await
        .unwrap()
}

async fn job_status(hub: &TestHub, site: &Site, id: &str) -> Value {
    call(
        hub,
        site,
        "GET",
        &format!("/api/3.0/sms/actions/{id}"),
        None,
    )
    .await
    .1
}

fn messages_sent(calls: &[Value]) -> Vec<&Value> {
    calls
        .iter()
        .filter(|c| c["path"] == "/v1/subscriptions/messages" && c["answered"] == 200)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_action_becomes_one_sms_sent_by_the_cron_job_as_the_contract_says() {
    let hub = TestHub::start("sms").await;
    let site = site(&hub).await;

    // Authentication and activation.
    let anonymous = hub
        .http
        .get(hub.url("/api/3.0/sms/activation"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let forged = Site {
        id: site.id,
        webhook_secret: String::new(),
        bearer: format!(
            "Bearer {}",
            shared::sms::access_token("lt_not_the_token", site.id)
        ),
    };
    assert_eq!(
        call(&hub, &forged, "GET", "/api/3.0/sms/activation", None)
            .await
            .0,
        401
    );
    let (status, body) = call(
        &hub,
        &site,
        "POST",
        "/api/3.0/sms/subscriptions",
        Some(json!({"phone": "7707651750"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("sms_not_activated"))
    );
    let mut missing = activation("00:00", "23:59");
    missing.as_object_mut().unwrap().remove("signUpSourceId");
    let (status, body) = call(&hub, &site, "PUT", "/api/3.0/sms/activation", Some(missing)).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("signUpSourceId")),
        "{body}"
    );
    let (status, body) = call(
        &hub,
        &site,
        "PUT",
        "/api/3.0/sms/activation",
        Some(activation("00:00", "23:59")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], true);
    assert_eq!(body["signUpSourceId"], "132109");
    let text = body.to_string();
    assert!(
        !text.contains(APP_TOKEN) && !text.contains(MESSAGES_TOKEN),
        "{text}"
    );

    let (status, _) = call(
        &hub,
        &site,
        "PUT",
        "/api/3.0/sms/templates/points_earned",
        Some(json!({"template": "You earned {{points}} points; your balance is {{balance}}."})),
    )
    .await;
    assert_eq!(status, 200);

    // Subscribe: the contract's request, and its answer passed on.
    let member = json!({"phone": "7707651750", "email": "test@gmail.com"});
    let (status, body) = call(
        &hub,
        &site,
        "POST",
        "/api/3.0/sms/subscriptions",
        Some(member.clone()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"user": {"phone": "7707651750", "email": "test@gmail.com"}, "subscriptionResponses": [
            {"subscription": {"type": "MARKETING", "channel": "TEXT"}, "subscriptionCreationStatus": "NEWLY_CREATED"},
            {"subscription": {"type": "MARKETING", "channel": "EMAIL"}, "subscriptionCreationStatus": "NEWLY_CREATED"}
        ]})
    );
    let calls = hub.outbound_calls(GATEWAY).await;
    let subscribe = calls.last().unwrap();
    assert_eq!(
        (subscribe["method"].as_str(), subscribe["path"].as_str()),
        (Some("POST"), Some("/v1/subscriptions"))
    );
    assert_eq!(
        subscribe["headers"]["authorization"],
        format!("Bearer {APP_TOKEN}")
    );
    assert_eq!(
        serde_json::from_str::<Value>(subscribe["body"].as_str().unwrap()).unwrap(),
        json!({"user": {"phone": "7707651750", "email": "test@gmail.com"}, "signUpSourceId": "132109"})
    );
    let (status, body) = call(
        &hub,
        &site,
        "GET",
        "/api/3.0/sms/subscriptions?phone=7707651750&email=test@gmail.com",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["subscriptionEligibilities"][0]["eligibility"]["isEligible"],
        true
    );

    // The action: one job per action id.
    let first = action("act-1", "points_earned", 50);
    let (status, job) = call(
        &hub,
        &site,
        "POST",
        "/api/3.0/sms/actions",
        Some(first.clone()),
    )
    .await;
    assert_eq!(
        (status, job["status"].as_str()),
        (202, Some("pending")),
        "{job}"
    );
    let (status, again) = call(&hub, &site, "POST", "/api/3.0/sms/actions", Some(first)).await;
    assert_eq!(
        (status, &again),
        (200, &job),
        "the same action again: the same job"
    );
    let (status, _) = call(
        &hub,
        &site,
        "POST",
        "/api/3.0/sms/actions",
        Some(action("act-1", "points_earned", 51)),
    )
    .await;
    assert_eq!(status, 409, "the same id with another body");
    let (status, job) = call(
        &hub,
        &site,
        "POST",
        "/api/3.0/sms/actions",
        Some(action("act-2", "tier_reached", 0)),
    )
    .await;
    assert_eq!(
        (status, job["status"].as_str(), job["reason"].as_str()),
        (202, Some("skipped"), Some("no_template"))
    );
    let (status, body) = call(
        &hub,
        &site,
        "POST",
        "/api/3.0/sms/actions",
        Some(json!({"actionId": "bad", "action": "points_earned", "phone": "12"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("phone"))
    );

    // The cron job (by the template's schedule): one SMS, as the contract's sample.
    let fired = hub.fire_schedule("SmsTriggerFunction.Send").await;
    assert_eq!(fired["result"]["sent"], 1, "{fired}");
    let calls = hub.outbound_calls(GATEWAY).await;
    let sent = messages_sent(&calls);
    assert_eq!(sent.len(), 1, "{calls:?}");
    assert_eq!(sent[0]["method"], "POST");
    assert_eq!(
        sent[0]["headers"]["authorization"],
        format!("Bearer {MESSAGES_TOKEN}")
    );
    assert_eq!(
        serde_json::from_str::<Value>(sent[0]["body"].as_str().unwrap()).unwrap(),
        json!({"to": "7707651750", "body": "You earned 50 points; your balance is 350."})
    );
    let job = job_status(&hub, &site, "act-1").await;
    assert_eq!(job["status"], "sent", "{job}");
    // Another run sends nothing more.
    let report = run(&hub, shared::clock::now() + Duration::from_secs(3600)).await;
    assert_eq!(report.sent, 0);
    assert_eq!(messages_sent(&hub.outbound_calls(GATEWAY).await).len(), 1);

    // The member's SMS timeline; `sms.sent` on the site's timeline, as its schema says.
    let (_, timeline) = call(
        &hub,
        &site,
        "GET",
        "/api/3.0/sms/members/+17707651750/messages",
        None,
    )
    .await;
    assert_eq!(
        timeline["messages"].as_array().unwrap().len(),
        2,
        "{timeline}"
    );
    let account = shared::domain::AccountId::for_sms_site(site.id);
    let types = hub_tests::eventually(Duration::from_secs(20), || async {
        let types = hub.assert_timeline_matches_schemas(account).await;
        types.iter().any(|t| t == "sms.sent").then_some(types)
    })
    .await;
    assert!(
        types.is_some(),
        "sms.sent never reached the site's timeline"
    );

    // Unsubscribed: nothing more is sent.
    let (status, body) = call(
        &hub,
        &site,
        "POST",
        "/api/3.0/sms/subscriptions/unsubscribe",
        Some(member),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["subscriptionResponses"][0]["subscriptionUnsubscribeStatus"],
        "NEWLY_UNSUBSCRIBED"
    );
    // The gateway got the contract's unsubscribe request, and before it the eligibility
    // query, with the app's token.
    let calls = hub.outbound_calls(GATEWAY).await;
    let unsubscribe = calls.last().unwrap();
    assert_eq!(
        (unsubscribe["method"].as_str(), unsubscribe["path"].as_str()),
        (Some("POST"), Some("/v1/subscriptions/unsubscribe"))
    );
    assert_eq!(
        unsubscribe["headers"]["authorization"],
        format!("Bearer {APP_TOKEN}")
    );
    assert_eq!(
        serde_json::from_str::<Value>(unsubscribe["body"].as_str().unwrap()).unwrap(),
        json!({"user": {"phone": "7707651750", "email": "test@gmail.com"}, "subscriptions": [
            {"type": "MARKETING", "channel": "EMAIL"}, {"type": "MARKETING", "channel": "TEXT"}
        ]})
    );
    let eligibility = calls
        .iter()
        .find(|c| c["method"] == "GET" && c["path"] == "/v1/subscriptions")
        .expect("the eligibility query");
    assert_eq!(
        eligibility["url"],
        "https://api.attentivemobile.com/v1/subscriptions?phone=7707651750&email=test%40gmail.com"
    );
    assert_eq!(
        eligibility["headers"]["authorization"],
        format!("Bearer {APP_TOKEN}")
    );
    call(
        &hub,
        &site,
        "POST",
        "/api/3.0/sms/actions",
        Some(action("act-3", "points_earned", 5)),
    )
    .await;
    let report = run(&hub, shared::clock::now()).await;
    assert_eq!(report.skipped, 1);
    assert_eq!(
        job_status(&hub, &site, "act-3").await["reason"],
        "unsubscribed"
    );
    assert_eq!(messages_sent(&hub.outbound_calls(GATEWAY).await).len(), 1);
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn quiet_hours_gateway_faults_and_deactivation_end_every_job_once() {
    let hub = TestHub::start("sms-faults").await;
    let site = site(&hub).await;
    let now = shared::clock::now();
    // Quiet now: sending opens in two minutes (UTC) and lasts an hour (so the
    // eligibility cached below is still fresh when it opens).
    let minute = u16::from(now.hour()) * 60 + u16::from(now.minute());
    let clock = |m: u16| format!("{:02}:{:02}", (m % 1440) / 60, m % 60);
    let (opens, closes) = (clock(minute + 2), clock(minute + 62));
    let (status, _) = call(
        &hub,
        &site,
        "PUT",
        "/api/3.0/sms/activation",
        Some(activation(&opens, &closes)),
    )
    .await;
    assert_eq!(status, 200);
    call(
        &hub,
        &site,
        "PUT",
        "/api/3.0/sms/templates/reward_unlocked",
        Some(json!({"template": "Reward unlocked!"})),
    )
    .await;
    let member = json!({"phone": "7707651750", "email": "test@gmail.com"});
    call(
        &hub,
        &site,
        "POST",
        "/api/3.0/sms/subscriptions",
        Some(member.clone()),
    )
    .await;
    // Eligibility asked once, cached for the send job.
    call(
        &hub,
        &site,
        "GET",
        "/api/3.0/sms/subscriptions?phone=7707651750",
        None,
    )
    .await;
    let post = |id: &'static str| {
        let (hub, site) = (&hub, &site);
        async move {
            let body = json!({"actionId": id, "phone": "7707651750", "email": "test@gmail.com", "action": "reward_unlocked"});
            call(hub, site, "POST", "/api/3.0/sms/actions", Some(body)).await
        }
    };

    // Quiet hours: due again when they open, then sent.
    post("q-1").await;
    let now = shared::clock::now();
    let report = run(&hub, now).await;
    assert_eq!(report.deferred, 1, "{report:?}");
    let job = job_status(&hub, &site, "q-1").await;
    assert_eq!(job["status"], "pending");
    assert!(
        job["reason"].as_str().unwrap().starts_with("quiet_hours"),
        "{job}"
    );
    let opening = shared::clock::parse_rfc3339(job["dueAt"].as_str().unwrap()).unwrap();
    assert!(
        opening > now && opening <= now + Duration::from_secs(180),
        "{job}"
    );
    let open = opening + Duration::from_secs(60);
    assert_eq!(run(&hub, open).await.sent, 1);

    // 429 then 200: sent once.
    hub.script_outbound(json!({"host": GATEWAY, "status": 429, "headers": {"retry-after": "1"}}))
        .await;
    post("r-1").await;
    let report = run(&hub, open).await;
    assert_eq!((report.deferred, report.sent), (1, 0), "{report:?}");
    let report = run(&hub, open + Duration::from_secs(120)).await;
    assert_eq!(report.sent, 1, "{report:?}");
    assert_eq!(job_status(&hub, &site, "r-1").await["attempts"], 2);

    // A 5xx after the request went out: parked as unknown, never sent again.
    hub.script_outbound(json!({"host": GATEWAY, "status": 503}))
        .await;
    post("u-1").await;
    assert_eq!(run(&hub, open).await.parked, 1);
    let job = job_status(&hub, &site, "u-1").await;
    assert_eq!(job["status"], "parked");
    assert!(
        job["reason"].as_str().unwrap().starts_with("unknown"),
        "{job}"
    );
    assert_eq!(run(&hub, open + Duration::from_secs(86_400)).await.due, 0);

    // Down for every attempt (429s): parked after the last one.
    hub.script_outbound(json!({"host": GATEWAY, "status": 429, "times": 8}))
        .await;
    post("d-1").await;
    let mut at = open;
    for attempt in 1..=8 {
        let report = run(&hub, at).await;
        assert_eq!(report.due, 1, "attempt {attempt}: {report:?}");
        at += Duration::from_secs(86_400);
        // Only within the sending hours: the next day, same time.
    }
    let job = job_status(&hub, &site, "d-1").await;
    assert_eq!(job["status"], "parked", "{job}");
    assert!(
        job["reason"]
            .as_str()
            .unwrap()
            .starts_with("gateway_unavailable"),
        "{job}"
    );
    // Both parked jobs are listed for operators (hub-admin sms-parked).
    let parked: Vec<String> = hub
        .stand_in
        .hub
        .sms
        .parked()
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.action_id)
        .collect();
    assert_eq!(parked, ["u-1", "d-1"]);

    // The messages token not activated at the gateway (the contract's run-time error):
    // parked with what to do, not retried.
    hub.script_outbound(
        json!({"host": GATEWAY, "status": 401, "body": {"message": "Unauthorized"}}),
    )
    .await;
    post("t-1").await;
    assert_eq!(run(&hub, open).await.parked, 1);
    let job = job_status(&hub, &site, "t-1").await;
    let reason = job["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("messages_token_inactive")
            && reason.contains("legacyapi@attentivemobile.com"),
        "{job}"
    );

    // The site's own calls: a gateway that is down is 503 with Retry-After; a refusal
    // is 422 with the gateway's reason.
    hub.script_outbound(json!({"host": GATEWAY, "status": 502}))
        .await;
    let response = hub
        .http
        .post(hub.url("/api/3.0/sms/subscriptions"))
        .header("authorization", &site.bearer)
        .json(&member)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "gateway_unavailable");
    hub.script_outbound(
        json!({"host": GATEWAY, "status": 400, "body": {"message": "invalid phone"}}),
    )
    .await;
    let (status, body) = call(
        &hub,
        &site,
        "POST",
        "/api/3.0/sms/subscriptions",
        Some(member.clone()),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("gateway_rejected"))
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid phone"),
        "{body}"
    );

    // Ineligible for TEXT at the gateway: skipped.
    call(
        &hub,
        &site,
        "POST",
        "/api/3.0/sms/actions",
        Some(json!({"actionId": "i-1", "phone": "4045550123", "action": "reward_unlocked"})),
    )
    .await;
    assert_eq!(run(&hub, open).await.skipped, 1);
    assert_eq!(job_status(&hub, &site, "i-1").await["reason"], "ineligible");

    // Deactivated: due jobs are skipped at once.
    post("x-1").await;
    let (status, body) = call(&hub, &site, "DELETE", "/api/3.0/sms/activation", None).await;
    assert_eq!((status, &body["active"]), (200, &json!(false)));
    assert_eq!(run(&hub, open).await.skipped, 1);
    assert_eq!(
        job_status(&hub, &site, "x-1").await["reason"],
        "deactivated"
    );
    let sent = messages_sent(&hub.outbound_calls(GATEWAY).await).len();
    assert_eq!(sent, 2, "q-1 and r-1 only");
    // Every job ended once, as stored.
    let expected = [
        ("q-1", JobStatus::Sent),
        ("r-1", JobStatus::Sent),
        ("u-1", JobStatus::Parked),
        ("d-1", JobStatus::Parked),
        ("t-1", JobStatus::Parked),
        ("i-1", JobStatus::Skipped),
        ("x-1", JobStatus::Skipped),
    ];
    let stored = hub.stand_in.hub.sms.site(site.id).await.unwrap().unwrap();
    for (id, status) in expected {
        let job = hub
            .stand_in
            .hub
            .sms
            .job(&stored, id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.status, status, "{id}");
        assert_eq!(job.due_at, None, "{id} left the due index");
    }
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn segments_answer_as_the_contracts_sample_and_export_members() {
    let hub = TestHub::start("sms-segments").await;
    let site = site(&hub).await;
    let sample = json!({
        "name": "Only Members",
        "type": "Current Data",
        "fromDate": "2020-01-17",
        "toDate": "2020-02-14",
        "member": "jacobsmith@gmail.com,brianpaul@gmail.com,markburger@gmail.com",
        "status": "ACTIVE",
        "externalId": "123",
        "externalName": "Members specific"
    });
    let (status, segment) = call(
        &hub,
        &site,
        "POST",
        "/api/3.0/segment",
        Some(sample.clone()),
    )
    .await;
    assert_eq!(status, 200, "{segment}");
    let id = segment["segmentId"].as_u64().expect("an integer id");
    assert_eq!(
        segment,
        json!({"segmentId": id, "segmentName": "Only Members", "segmentType": "Current Data",
            "segmentFromDate": "2020-01-17T00:00:00+0000", "segmentToDate": "2020-02-14T23:59:00+0000",
            "member": "jacobsmith@gmail.com,brianpaul@gmail.com,markburger@gmail.com",
            "status": "ACTIVE", "externalId": "123", "externalName": "Members specific"})
    );
    // The same request again: the same segment; the same externalId otherwise: AC1006.
    assert_eq!(
        call(
            &hub,
            &site,
            "POST",
            "/api/3.0/segment",
            Some(sample.clone())
        )
        .await,
        (200, segment.clone())
    );
    let mut other = sample.clone();
    other["name"] = json!("Other");
    let (status, body) = call(&hub, &site, "POST", "/api/3.0/segment", Some(other)).await;
    assert_eq!(
        (status, body["errorCode"].as_str()),
        (409, Some("AC1006")),
        "{body}"
    );
    // Bad fields: AC1004 naming the field; nothing written.
    for (field, value) in [
        ("type", json!("Future Data")),
        ("fromDate", json!("17-01-2020")),
        ("toDate", json!("2020-01-01")),
        ("member", json!("jacobsmith@gmail.com,nobody")),
        ("status", json!("ON")),
        ("name", json!(null)),
    ] {
        let mut bad = sample.clone();
        bad[field] = value;
        bad["externalId"] = json!(format!("bad-{field}"));
        let (status, body) = call(&hub, &site, "POST", "/api/3.0/segment", Some(bad)).await;
        assert_eq!(
            (status, body["errorCode"].as_str()),
            (422, Some("AC1004")),
            "{field}: {body}"
        );
        assert!(
            body["errorMessage"].as_str().unwrap().starts_with(field),
            "{body}"
        );
    }
    let forged = Site {
        id: site.id,
        bearer: "Bearer nope".into(),
        webhook_secret: String::new(),
    };
    let (status, body) = call(&hub, &forged, "POST", "/api/3.0/segment", Some(sample)).await;
    assert_eq!((status, body["errorCode"].as_str()), (401, Some("AC1002")));

    // Read, list in pages, 404.
    assert_eq!(
        call(&hub, &site, "GET", &format!("/api/3.0/segment/{id}"), None).await,
        (200, segment)
    );
    let (status, body) = call(&hub, &site, "GET", "/api/3.0/segment/999999", None).await;
    assert_eq!((status, body["errorCode"].as_str()), (404, Some("AC1005")));
    for n in 0..3 {
        let mut more = json!({"name": format!("S{n}"), "type": "Past Data", "fromDate": "2026-01-01",
            "toDate": "2026-01-31", "member": "a@b.com", "status": "INACTIVE"});
        more["externalName"] = json!("x");
        assert_eq!(
            call(&hub, &site, "POST", "/api/3.0/segment", Some(more))
                .await
                .0,
            200
        );
    }
    let mut seen = Vec::new();
    let mut path = "/api/3.0/segment?limit=3".to_owned();
    loop {
        let (status, page) = call(&hub, &site, "GET", &path, None).await;
        assert_eq!(status, 200, "{page}");
        for s in page["segments"].as_array().unwrap() {
            seen.push(s["segmentId"].as_u64().unwrap());
        }
        match page["next"].as_u64() {
            Some(next) => path = format!("/api/3.0/segment?limit=3&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");

    // The CSV for upload: phones of known members.
    call(
        &hub,
        &site,
        "PUT",
        "/api/3.0/sms/activation",
        Some(activation("00:00", "23:59")),
    )
    .await;
    call(
        &hub,
        &site,
        "POST",
        "/api/3.0/sms/subscriptions",
        Some(json!({"phone": "7707651750", "email": "brianpaul@gmail.com"})),
    )
    .await;
    let csv = hub
        .http
        .get(hub.url(&format!("/api/3.0/segment/{id}/members.csv")))
        .header("authorization", &site.bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert_eq!(
        csv.text().await.unwrap(),
        "phone,email\n,jacobsmith@gmail.com\n+17707651750,brianpaul@gmail.com\n,markburger@gmail.com\n"
    );
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}

/// Posts a gateway unsubscribe notification signed with `secret` at `timestamp`.
async fn notify_stop(hub: &TestHub, site: u64, secret: &str, timestamp: i64, body: &Value) -> u16 {
    let body = body.to_string();
    let signature =
        shared::webhooks::sign(secret, "msg_stop_1", timestamp, body.as_bytes()).unwrap();
    let response = hub
        .http
        .post(hub.url(&format!("/api/3.0/sms/gateway/{site}/unsubscribes")))
        .header("webhook-id", "msg_stop_1")
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let answer: Value = response.json().await.unwrap();
    assert_documented(
        "POST",
        "/api/3.0/sms/gateway/{site_id}/unsubscribes",
        status,
        Some(&answer),
    );
    status
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_stop_from_the_gateway_unsubscribes_at_once() {
    let hub = TestHub::start("sms-stop").await;
    let site = site(&hub).await;
    call(
        &hub,
        &site,
        "PUT",
        "/api/3.0/sms/activation",
        Some(activation("00:00", "23:59")),
    )
    .await;
    call(
        &hub,
        &site,
        "PUT",
        "/api/3.0/sms/templates/points_earned",
        Some(json!({"template": "+{{points}}"})),
    )
    .await;
    call(
        &hub,
        &site,
        "POST",
        "/api/3.0/sms/subscriptions",
        Some(json!({"phone": "7707651750"})),
    )
    .await;
    call(
        &hub,
        &site,
        "POST",
        "/api/3.0/sms/actions",
        Some(action("s-1", "points_earned", 5)),
    )
    .await;
    // The member's time zone, for quiet hours, given when subscribing (an IANA name).
    let (status, body) = call(
        &hub,
        &site,
        "POST",
        "/api/3.0/sms/subscriptions",
        Some(json!({"phone": "7707651750", "timeZone": "Mars/Olympus"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("timeZone"))
    );
    call(
        &hub,
        &site,
        "POST",
        "/api/3.0/sms/subscriptions",
        Some(json!({"phone": "7707651750", "timeZone": "Europe/Bucharest"})),
    )
    .await;
    let now = shared::clock::now().unix_timestamp();
    let stop = json!({"phone": "+17707651750"});
    // Forged, stale, or for another site: refused, nothing changes.
    let other = shared::webhooks::new_secret();
    assert_eq!(notify_stop(&hub, site.id, &other, now, &stop).await, 401);
    assert_eq!(
        notify_stop(&hub, site.id, &site.webhook_secret, now - 600, &stop).await,
        401
    );
    assert_eq!(
        notify_stop(&hub, site.id + 1000, &site.webhook_secret, now, &stop).await,
        401
    );
    let member = hub.stand_in.hub.sms.site(site.id).await.unwrap().unwrap();
    let phone = shared::domain::PhoneE164::parse(
        "+17707651750",
        shared::domain::CountryCode::parse("US").unwrap(),
    )
    .unwrap();
    let stored = hub
        .stand_in
        .hub
        .sms
        .member(&member, &phone)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, shared::sms::MemberStatus::Subscribed);
    assert_eq!(stored.time_zone.as_deref(), Some("Europe/Bucharest"));
    // Signed: unsubscribed, and the due SMS is not sent.
    assert_eq!(
        notify_stop(&hub, site.id, &site.webhook_secret, now, &stop).await,
        200
    );
    let report = run(&hub, shared::clock::now()).await;
    assert_eq!((report.sent, report.skipped), (0, 1), "{report:?}");
    assert_eq!(
        job_status(&hub, &site, "s-1").await["reason"],
        "unsubscribed"
    );
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn loyalty_actions_over_eventbridge_become_jobs_of_the_partners_own_sites() {
    let hub = TestHub::start("sms-events").await;
    let (partner, source, _) = hub
        .event_partner("loyal", PARTNER_A_PUB, PARTNER_A_KEY, &["123456789012"])
        .await;
    let own = hub
        .stand_in
        .hub
        .sms
        .register_site(partner.id, "Own site")
        .await
        .unwrap();
    let other_partner = hub.register("Other", PARTNER_B_PUB, PARTNER_B_KEY).await;
    let foreign = hub
        .stand_in
        .hub
        .sms
        .register_site(other_partner.id, "Foreign site")
        .await
        .unwrap();
    // The sample, checked against its schema, for the partner's own site.
    let event = sample("sms/loyalty-action.json");
    let schema = sample("sms/loyalty-action.schema.json");
    let validator = jsonschema::validator_for(&schema).unwrap();
    assert!(validator.is_valid(&event), "the sample matches its schema");
    let mut detail = event["detail"].clone();
    detail["siteId"] = json!(own.site_id);
    hub.put_partner_event(&source, "Loyalty Action", &detail)
        .await;
    hub.put_partner_event(&source, "Loyalty Action", &detail)
        .await;
    // Another partner's site: parked, no job.
    let mut stolen = detail.clone();
    stolen["siteId"] = json!(foreign.site_id);
    stolen["actionId"] = json!("stolen-1");
    hub.put_partner_event(&source, "Loyalty Action", &stolen)
        .await;
    let sms = &hub.stand_in.hub.sms;
    let site = sms.site(own.site_id).await.unwrap().unwrap();
    let job = hub_tests::eventually(Duration::from_secs(20), || async {
        sms.job(&site, "act-20261124-0001").await.unwrap()
    })
    .await
    .expect("the action became a job");
    assert_eq!(job.phone.as_str(), "+17707651750");
    assert_eq!(job.reason.as_deref(), Some("no_template"));
    let parked = hub_tests::eventually(Duration::from_secs(20), || async {
        let letters = hub.stand_in.hub.dead_letters.list().await.unwrap();
        letters
            .iter()
            .find(|l| format!("{l:?}").contains("is not one of this partner's"))
            .map(|_| letters.len())
    })
    .await;
    assert!(parked.is_some(), "the foreign site's action was parked");
    let foreign_site = sms.site(foreign.site_id).await.unwrap().unwrap();
    assert!(sms.job(&foreign_site, "stolen-1").await.unwrap().is_none());
    // The same action twice made one job (its member timeline has one entry).
    assert_eq!(sms.member_jobs(&site, &job.phone).await.unwrap().len(), 1);
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}
