//! The subscription lifecycle over EventBridge end to end: a partner puts the samples
//! from `events/subscriptions/` on the hub's bus; the hub provisions, upgrades, answers
//! Ready for Installation on the partner's bus, serves analytics, and cleans up after
//! the cancellation's effective date.

use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use hub_tests::{
    PARTNER_A_KEY, PARTNER_A_PUB, PARTNER_B_KEY, PARTNER_B_PUB, TestHub, TestPartner, eventually,
    sample,
};
use serde_json::{Value, json};
use shared::{
    domain::{
        AccountId, AccountStatus, AwsAccountId, ExternalId,
        subscription::{Installation, Subscription, Terms},
    },
    runtime::Failure,
    subscriptions::Outcome,
};

/// Where a customer's plan is installed, with its keys.
fn installed(plan: &Subscription) -> Installation {
    plan.installation.clone().expect("a tier plan is installed")
}

const CUSTOMER: &str = "partner_customer_id";

/// Puts a partner's event on the hub's ingress bus, as the partner's own rule would.
async fn put_on_hub_bus(hub: &TestHub, source: &str, detail_type: &str, detail: &Value) {
    hub.put_partner_event(source, detail_type, detail).await;
}

async fn put_sample(hub: &TestHub, source: &str, path: &str, patch: impl FnOnce(&mut Value)) {
    let mut event = sample(path);
    patch(&mut event["detail"]);
    put_on_hub_bus(
        hub,
        source,
        event["detail-type"].as_str().unwrap(),
        &event["detail"],
    )
    .await;
}

/// A partner with a token, an event source and a bus of its own (recorded locally).
async fn event_partner(
    hub: &TestHub,
    name: &str,
    public: &str,
    private: &'static str,
) -> (TestPartner, String) {
    let partner = hub.register(name, public, private).await;
    let arn = hub.stand_in.partner_buses.create(name).await.unwrap();
    let source = format!("partner.{name}");
    // The stand-in's partners send from the emulator's account, which owns their buses;
    // the samples' envelopes carry the contract's example account.
    let sample_account = sample("subscriptions/create-subscription.json")["account"]
        .as_str()
        .map(|a| AwsAccountId::parse(a).unwrap())
        .unwrap();
    hub.stand_in
        .hub
        .set_partner_events(
            partner.id,
            &source,
            &arn,
            &[AwsAccountId::of_arn(&arn).unwrap(), sample_account],
        )
        .await
        .unwrap();
    (partner, source)
}

fn account_of(partner: &TestPartner, customer: &str) -> AccountId {
    AccountId::for_external(partner.id, &ExternalId::parse(customer).unwrap())
}

async fn analytics(
    hub: &TestHub,
    analytics_key: &str,
    customer: &str,
    start: &str,
    end: &str,
) -> (u16, Value) {
    let response = hub
        .http
        .get(hub.url(&format!("/api/v0/partners/customers/{customer}/analytics")))
        .query(&[("startDate", start), ("endDate", end)])
        .header("x-rlv-analytics-key", analytics_key)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    hub_tests::assert_documented(
        "GET",
        "/api/v0/partners/customers/{customer_id}/analytics",
        status,
        Some(&body),
    );
    (status, body)
}

async fn report(hub: &TestHub, body: Value) -> u16 {
    let response = hub
        .http
        .post(hub.url("/api/v0/widget/events"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let answer: Value = response.json().await.unwrap();
    hub_tests::assert_documented("POST", "/api/v0/widget/events", status, Some(&answer));
    status
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_lifecycle_from_the_samples() {
    let hub = TestHub::start("lifecycle").await;
    let (partner, source) = event_partner(&hub, "acme", PARTNER_A_PUB, PARTNER_A_KEY).await;
    let account = account_of(&partner, CUSTOMER);
    let subscriptions = &hub.stand_in.hub.subscriptions;

    // Create Subscription: provisioned in status provisioning with the tier's products.
    put_sample(
        &hub,
        &source,
        "subscriptions/create-subscription.json",
        |_| {},
    )
    .await;
    let plan = eventually(Duration::from_secs(15), || async {
        subscriptions.plan(account).await.unwrap()
    })
    .await
    .expect("provisioned");
    assert_eq!(plan.tier(), Some("starter"));
    assert_eq!(plan.products(), ["widget"]);
    assert_eq!(installed(&plan).website, "https://customer-site.com/");
    let stored = hub
        .stand_in
        .hub
        .accounts
        .get(account)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, AccountStatus::Provisioning);
    assert_eq!(stored.external_id.as_str(), CUSTOMER);
    assert_eq!(stored.partner_id, partner.id);

    // Another tier for the same customer: an upgrade.
    put_sample(
        &hub,
        &source,
        "subscriptions/create-subscription.upgrade.json",
        |_| {},
    )
    .await;
    let plan = eventually(Duration::from_secs(15), || async {
        subscriptions
            .plan(account)
            .await
            .unwrap()
            .filter(|p| p.tier() == Some("growth"))
    })
    .await
    .expect("upgraded");
    assert_eq!(plan.products(), ["widget", "search"]);
    assert!(matches!(
        plan.terms,
        Terms::Tier {
            contract_length_months: 12,
            ..
        }
    ));

    // QA approves: Ready for Installation arrives on the partner's bus.
    assert!(subscriptions.approve(account).await.unwrap());
    assert!(
        !subscriptions.approve(account).await.unwrap(),
        "approving twice sends nothing more"
    );
    let ready = eventually(Duration::from_secs(15), || async {
        let received = hub
            .stand_in
            .partner_buses
            .received("acme")
            .await
            .unwrap()
            .unwrap_or_default();
        received
            .into_iter()
            .find(|e| e["detail-type"] == "Ready for Installation")
    })
    .await
    .expect("Ready for Installation on the partner's bus");
    let detail = &ready["detail"];
    assert_eq!(detail["id"], CUSTOMER);
    assert_eq!(detail["widget_key"], installed(&plan).widget_key.as_str());
    assert_eq!(detail["search_key"], installed(&plan).search_key.as_str());
    let snippet = detail["widget_snippet"].as_str().unwrap();
    assert!(
        snippet.starts_with("<script") && snippet.contains(&installed(&plan).widget_key),
        "{snippet}"
    );
    assert!(
        snippet.contains(&format!("{}/widget.js", hub.stand_in.base_url)),
        "{snippet}"
    );
    assert!(
        detail["search_snippet"]
            .as_str()
            .unwrap()
            .contains(&installed(&plan).search_key)
    );
    assert_eq!(
        hub.stand_in
            .hub
            .accounts
            .get(account)
            .await
            .unwrap()
            .unwrap()
            .status,
        AccountStatus::Active
    );
    // The snippet's script is served.
    let script = hub.http.get(hub.url("/widget.js")).send().await.unwrap();
    assert_eq!(script.status().as_u16(), 200);
    assert!(script.text().await.unwrap().contains("data-key"));

    // The installed widget reports the contract's example: 4 users in 4 sessions, 10
    // queries, one without content.
    let asked = [
        ("connect me with someone", true),
        ("connect me with someone", true),
        ("Connect me  with someone", true),
        (
            "hi! i need a insurance card when i renewed it i did not get one",
            true,
        ),
        (
            "hi! i need a insurance card when i renewed it i did not get one",
            true,
        ),
        ("do you have spanish speakers on staff", false),
        ("opening hours", true),
        ("where are you located", true),
        ("price list", true),
        ("book an appointment", true),
    ];
    for (i, (query, found)) in asked.iter().enumerate() {
        let body = json!({"key": installed(&plan).widget_key, "userId": format!("user-{}", i % 4),
                          "sessionId": format!("session-{}", i % 4), "query": query, "contentFound": found});
        assert_eq!(report(&hub, body).await, 202);
    }
    let session_only = json!({"userId": "user-0", "sessionId": "session-0"});
    let status = hub
        .http
        .post(hub.url("/api/v0/widget/events"))
        .header("x-widget-key", &installed(&plan).search_key)
        .json(&session_only)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 202, "the search key reports too");

    let now = shared::clock::now();
    let start = (now - time::Duration::days(2))
        .to_offset(time::macros::offset!(-5))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let end = (now + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (status, body) = analytics(&hub, &partner.analytics_key, CUSTOMER, &start, &end).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "partner_id": partner.id.to_string(),
            "startDate": start,
            "endDate": end,
            "widget": {
                "totalUniqueSessions": 4,
                "totalUniqueUsers": 4,
                "queries": {
                    "total": 10,
                    "totalNoContent": 1,
                    "topQueriesNoContent": ["do you have spanish speakers on staff"],
                    "topQueries": [
                        "connect me with someone",
                        "hi! i need a insurance card when i renewed it i did not get one",
                        "book an appointment",
                        "do you have spanish speakers on staff",
                        "opening hours",
                        "price list",
                        "where are you located"
                    ]
                }
            }
        })
    );
    // A range before the activity is empty; a reversed range is refused.
    let (status, empty) = analytics(
        &hub,
        &partner.analytics_key,
        CUSTOMER,
        "2023-02-28T22:13:58-05:00",
        "2023-03-08T03:13:55.700Z",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(empty["widget"]["queries"]["total"], 0);
    assert_eq!(empty["startDate"], "2023-02-28T22:13:58-05:00");
    let (status, err) = analytics(&hub, &partner.analytics_key, CUSTOMER, &end, &start).await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("endDate"))
    );

    // Cancellation with a future effective date: recorded at once; the customer keeps
    // working (widget keys, analytics) until the effective date.
    put_sample(&hub, &source, "subscriptions/cancellation.json", |d| {
        d["effective_date"] = json!(
            (now + time::Duration::days(1))
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        );
    })
    .await;
    let pending = eventually(Duration::from_secs(15), || async {
        subscriptions
            .plan(account)
            .await
            .unwrap()
            .filter(|p| p.cancellation_pending())
    })
    .await
    .expect("cancellation recorded");
    assert!(pending.has_access());
    assert_eq!(
        hub.stand_in
            .hub
            .accounts
            .get(account)
            .await
            .unwrap()
            .unwrap()
            .status,
        AccountStatus::Active,
        "active until the effective date"
    );
    let body = json!({"key": installed(&plan).widget_key, "userId": "u", "sessionId": "s", "query": "still there?", "contentFound": true});
    assert_eq!(
        report(&hub, body.clone()).await,
        202,
        "the widget reports until the effective date"
    );
    let cleanup = account_cleanup::handle_at(&hub.stand_in.hub, now)
        .await
        .unwrap();
    assert_eq!(cleanup.deleted_accounts, 0, "not before the effective date");
    assert!(subscriptions.plan(account).await.unwrap().is_some());

    // Every event emitted so far matches its schema in events/hub/.
    let types = eventually(Duration::from_secs(15), || async {
        let types = hub.assert_timeline_matches_schemas(account).await;
        types
            .contains(&"subscription.cancellation_scheduled".to_owned())
            .then_some(types)
    })
    .await
    .expect("the cancellation reached the timeline");
    for expected in [
        "account.provisioned",
        "subscription.created",
        "subscription.upgraded",
        "installation.ready",
    ] {
        assert!(types.contains(&expected.to_owned()), "{types:?}");
    }

    // After the effective date the scheduled cleanup deletes everything but a tombstone.
    let cleanup = account_cleanup::handle_at(&hub.stand_in.hub, now + time::Duration::days(2))
        .await
        .unwrap();
    assert_eq!(cleanup.deleted_accounts, 1);
    assert!(subscriptions.plan(account).await.unwrap().is_none());
    assert!(
        hub.stand_in
            .hub
            .accounts
            .get(account)
            .await
            .unwrap()
            .is_none()
    );
    let tombstone = subscriptions
        .tombstone(account)
        .await
        .unwrap()
        .expect("tombstone");
    assert_eq!(tombstone.external_id.as_str(), CUSTOMER);
    assert_eq!(tombstone.tier, "growth");
    assert!(tombstone.items_deleted >= 3);
    let (status, _) = analytics(&hub, &partner.analytics_key, CUSTOMER, &start, &end).await;
    assert_eq!(status, 404);
    assert_eq!(
        report(&hub, body).await,
        401,
        "a cancelled account's widget no longer reports"
    );
    let again = account_cleanup::handle_at(&hub.stand_in.hub, now + time::Duration::days(3))
        .await
        .unwrap();
    assert_eq!(again.due, 0, "the job is done");
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redelivery_changes_nothing_and_a_past_effective_date_acts_at_once() {
    let hub = TestHub::start("redelivery").await;
    let (partner, source) = event_partner(&hub, "beta", PARTNER_A_PUB, PARTNER_A_KEY).await;
    let mut envelope = sample("subscriptions/create-subscription.json");
    envelope["source"] = source.clone().into();
    envelope["detail"]["id"] = "cust-redelivered".into();
    let event: EventBridgeEvent<Value> = serde_json::from_value(envelope.clone()).unwrap();
    let first = subscription_events::handle(&hub.stand_in.hub, event.clone())
        .await
        .unwrap();
    assert_eq!(first, Outcome::Created);
    let account = account_of(&partner, "cust-redelivered");
    let before = hub
        .stand_in
        .hub
        .subscriptions
        .plan(account)
        .await
        .unwrap()
        .unwrap();
    let second = subscription_events::handle(&hub.stand_in.hub, event)
        .await
        .unwrap();
    assert_eq!(second, Outcome::Redelivered);
    assert_eq!(
        hub.stand_in
            .hub
            .subscriptions
            .plan(account)
            .await
            .unwrap()
            .unwrap(),
        before
    );

    // The same envelope id carrying another tier is refused (one ledger: same id and
    // another body is a reused id), to be parked, and changes nothing.
    envelope["detail"]["tier"] = "growth".into();
    let replayed: EventBridgeEvent<Value> = serde_json::from_value(envelope).unwrap();
    let third = subscription_events::handle(&hub.stand_in.hub, replayed).await;
    assert!(
        matches!(&third, Err(Failure::Park(reason)) if reason.contains("already used")),
        "{third:?}"
    );
    assert_eq!(
        hub.stand_in
            .hub
            .subscriptions
            .plan(account)
            .await
            .unwrap()
            .unwrap()
            .tier(),
        Some("starter")
    );

    // A cancellation effective in the past deletes at once.
    put_sample(&hub, &source, "subscriptions/cancellation.json", |d| {
        d["id"] = "cust-redelivered".into();
        d["effective_date"] = "2020-01-01".into();
    })
    .await;
    let tombstone = eventually(Duration::from_secs(15), || async {
        hub.stand_in
            .hub
            .subscriptions
            .tombstone(account)
            .await
            .unwrap()
    })
    .await
    .expect("deleted at once");
    assert_eq!(tombstone.effective_date, "2020-01-01T00:00:00.000000Z");
    assert!(
        hub.stand_in
            .hub
            .subscriptions
            .plan(account)
            .await
            .unwrap()
            .is_none()
    );
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_events_are_parked_for_operators_and_replayable() {
    let hub = TestHub::start("badevents").await;
    let (partner, source) = event_partner(&hub, "gamma", PARTNER_A_PUB, PARTNER_A_KEY).await;
    let dead_letters = &hub.stand_in.hub.dead_letters;
    let create = "subscriptions/create-subscription.json";
    put_sample(&hub, &source, create, |d| d["tier"] = "platinum".into()).await;
    put_sample(&hub, &source, create, |d| {
        d["website"] = "customer-site".into()
    })
    .await;
    put_sample(&hub, &source, create, |d| {
        d.as_object_mut().unwrap().remove("company_name");
    })
    .await;
    put_on_hub_bus(
        &hub,
        &source,
        "Create Subscription",
        &json!({"detail": "no fields at all"}),
    )
    .await;
    put_sample(&hub, &source, "subscriptions/cancellation.json", |d| {
        d["effective_date"] = "next tuesday".into()
    })
    .await;
    put_sample(&hub, &source, "subscriptions/cancellation.json", |d| {
        d["id"] = "never-created".into()
    })
    .await;
    put_sample(&hub, "partner.unregistered", create, |d| {
        d["id"] = "from-nowhere".into()
    })
    .await;

    let letters = eventually(Duration::from_secs(20), || async {
        let letters = dead_letters.list().await.unwrap();
        (letters.len() >= 7).then_some(letters)
    })
    .await
    .expect("all seven parked");
    assert_eq!(letters.len(), 7);
    let reasons: Vec<&str> = letters.iter().map(|l| l.reason.as_str()).collect();
    for expected in [
        "tier",
        "website",
        "company_name",
        "id: is required",
        "effective_date",
        "never-created",
        "partner.unregistered",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(expected)),
            "no letter about {expected}: {reasons:?}"
        );
    }
    assert!(letters.iter().all(|l| l.handler == "subscription-events"));
    // Nothing half-written.
    for customer in [CUSTOMER, "never-created", "from-nowhere"] {
        assert!(
            hub.stand_in
                .hub
                .subscriptions
                .plan(account_of(&partner, customer))
                .await
                .unwrap()
                .is_none()
        );
    }

    // Once the operator registers the source, the parked event replays and succeeds.
    let (other, _) = event_partner(&hub, "unregistered", PARTNER_B_PUB, PARTNER_B_KEY).await;
    let parked = letters
        .iter()
        .find(|l| l.reason.contains("partner.unregistered"))
        .unwrap();
    assert!(
        dead_letters
            .replay(&parked.id, |source| hub.stand_in.hub.bus_for_source(source))
            .await
            .unwrap()
    );
    eventually(Duration::from_secs(15), || async {
        hub.stand_in
            .hub
            .subscriptions
            .plan(account_of(&other, "from-nowhere"))
            .await
            .unwrap()
    })
    .await
    .expect("replayed and provisioned");
    assert_eq!(dead_letters.list().await.unwrap().len(), 6);

    // Analytics is the partner's own: bad token, another partner's customer, bad dates.
    let (status, _) = analytics(&hub, "ak_nope", "from-nowhere", "2026-01-01", "2026-01-02").await;
    assert_eq!(status, 401);
    // The partner token alone reads nothing: it travels in SSO links.
    let (status, body) = analytics(
        &hub,
        &partner.token,
        "from-nowhere",
        "2026-01-01",
        "2026-01-02",
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_analytics_key"))
    );
    let response = hub
        .http
        .get(hub.url("/api/v0/partners/customers/from-nowhere/analytics?startDate=2026-01-01&endDate=2026-01-02"))
        .header("x-rlv-partner-token", &partner.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "missing_analytics_key");
    let (status, _) = analytics(
        &hub,
        &partner.analytics_key,
        "from-nowhere",
        "2026-01-01",
        "2026-01-02",
    )
    .await;
    assert_eq!(status, 404, "another partner's customer is not found");
    let (status, body) = analytics(
        &hub,
        &other.analytics_key,
        "from-nowhere",
        "yesterday",
        "2026-01-02",
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("startDate"))
    );
    let (status, body) =
        analytics(&hub, &other.analytics_key, "from-nowhere", "2026-01-01", "").await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("endDate"))
    );
    assert_eq!(
        report(
            &hub,
            json!({"key": "wk_nope", "userId": "u", "sessionId": "s"})
        )
        .await,
        401
    );
    let plan = hub
        .stand_in
        .hub
        .subscriptions
        .plan(account_of(&other, "from-nowhere"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        report(
            &hub,
            json!({"key": installed(&plan).widget_key, "sessionId": "s"})
        )
        .await,
        422
    );
    assert_eq!(
        report(
            &hub,
            json!({"key": installed(&plan).widget_key, "userId": "u", "sessionId": "s", "query": "q"})
        )
        .await,
        422
    );
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_create_before_the_effective_date_withdraws_the_cancellation_and_updates_the_plan() {
    let hub = TestHub::start("reinstate").await;
    let (partner, source) = event_partner(&hub, "gamma", PARTNER_A_PUB, PARTNER_A_KEY).await;
    let customer = "cust-reinstated";
    let account = account_of(&partner, customer);
    let subscriptions = &hub.stand_in.hub.subscriptions;
    put_sample(
        &hub,
        &source,
        "subscriptions/create-subscription.json",
        |d| {
            d["id"] = customer.into();
        },
    )
    .await;
    eventually(Duration::from_secs(15), || async {
        subscriptions.plan(account).await.unwrap()
    })
    .await
    .expect("provisioned");
    assert!(subscriptions.approve(account).await.unwrap());

    // The same tier with other details updates the stored fields.
    put_sample(
        &hub,
        &source,
        "subscriptions/create-subscription.json",
        |d| {
            d["id"] = customer.into();
            d["website"] = "https://moved.example.com".into();
            d["contract_length"] = 24.into();
        },
    )
    .await;
    let updated = eventually(Duration::from_secs(15), || async {
        subscriptions
            .plan(account)
            .await
            .unwrap()
            .filter(|p| installed(p).website == "https://moved.example.com/")
    })
    .await
    .expect("updated");
    assert!(matches!(
        updated.terms,
        Terms::Tier {
            contract_length_months: 24,
            ..
        }
    ));

    // A future cancellation, then a Create Subscription before its date: withdrawn.
    let now = shared::clock::now();
    put_sample(&hub, &source, "subscriptions/cancellation.json", |d| {
        d["id"] = customer.into();
        d["effective_date"] = json!(
            (now + time::Duration::days(1))
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        );
    })
    .await;
    eventually(Duration::from_secs(15), || async {
        subscriptions
            .plan(account)
            .await
            .unwrap()
            .filter(|p| p.cancellation_pending())
    })
    .await
    .expect("cancellation recorded");
    // An upgrade to a tier with more channels, on a live plan: withdraws the
    // cancellation and sends Ready for Installation again with every key.
    put_sample(
        &hub,
        &source,
        "subscriptions/create-subscription.json",
        |d| {
            d["id"] = customer.into();
            d["tier"] = "growth".into();
            d["website"] = "https://moved.example.com".into();
            d["contract_length"] = 24.into();
        },
    )
    .await;
    let upgraded = eventually(Duration::from_secs(15), || async {
        subscriptions
            .plan(account)
            .await
            .unwrap()
            .filter(|p| !p.cancellation_pending() && p.tier() == Some("growth"))
    })
    .await
    .expect("reinstated and upgraded");
    assert_eq!(
        installed(&upgraded).widget_key,
        installed(&updated).widget_key,
        "the keys stay"
    );
    let readies = eventually(Duration::from_secs(15), || async {
        let readies: Vec<Value> = hub
            .stand_in
            .partner_buses
            .received("gamma")
            .await
            .unwrap()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["detail-type"] == "Ready for Installation")
            .collect();
        (readies.len() >= 2).then_some(readies)
    })
    .await
    .expect("a second Ready for Installation");
    let last = &readies[readies.len() - 1]["detail"];
    assert_eq!(last["search_key"], installed(&upgraded).search_key.as_str());
    assert_eq!(last["widget_key"], installed(&upgraded).widget_key.as_str());

    // The cleanup after the old effective date deletes nothing.
    let cleanup = account_cleanup::handle_at(&hub.stand_in.hub, now + time::Duration::days(2))
        .await
        .unwrap();
    assert_eq!(cleanup.deleted_accounts, 0);
    assert!(subscriptions.plan(account).await.unwrap().is_some());
    let types = eventually(Duration::from_secs(15), || async {
        let types = hub.assert_timeline_matches_schemas(account).await;
        types
            .contains(&"subscription.reinstated".to_owned())
            .then_some(types)
    })
    .await
    .expect("reinstated on the timeline");
    assert!(
        types.contains(&"subscription.updated".to_owned()),
        "{types:?}"
    );
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}
