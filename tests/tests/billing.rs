//! The signed-payload contract's plans (step 2), confirmation and billing periods
//! (step 3) and pause/resume (appendix), with the shop's tracking route that pausing
//! stops: end to end through the stand-in, every answer checked against the document.

use std::time::Duration;

use hub_tests::{
    PARTNER_A_KEY, PARTNER_A_PUB, PARTNER_B_KEY, PARTNER_B_PUB, TestHub, TestPartner,
    assert_documented, shop_claims,
};
use serde_json::{Value, json};
use shared::domain::{AccountId, ShopDomain};

const PLANS: &str = "/api/v0/partners/subscriptions";
const CONFIRM: &str = "/api/v0/partners/domains/subscriptions/confirm";
const DOMAINS: &str = "/api/v0/partners/domains";
const TRACK: &str = "/api/v0/shops/{shop}/track";

/// Calls a signed-payload route as `partner`; returns the status, the body's JSON and
/// its text (numbers checked digit for digit).
async fn call(
    hub: &TestHub,
    method: &str,
    path: &str,
    partner: &TestPartner,
    claims: Value,
) -> (u16, Value, String) {
    let response = hub.signed(method, path, partner, &claims).await;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: {text}"));
    assert_documented(method, path, status, Some(&body));
    (status, body, text)
}

async fn track(hub: &TestHub, shop: &str, header: (&str, &str), user: &str) -> (u16, Value) {
    let response = hub
        .http
        .post(hub.url(&format!("/api/v0/shops/{shop}/track")))
        .header(header.0, header.1)
        .json(&json!({"userId": user}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_documented("POST", TRACK, status, Some(&body));
    (status, body)
}

/// A new shop of `partner`, whose webhook endpoint is the recorder's
/// `https://partner.example.com`: (account, the shop's secret key, the signing secret).
async fn shop_with_webhook(
    hub: &TestHub,
    partner: &TestPartner,
    shop: &str,
) -> (AccountId, String, String) {
    let (status, provisioned) = hub.provision(partner, &shop_claims(shop)).await;
    assert_eq!(status, 201, "{provisioned}");
    let secret_key = provisioned["domain"]["secretKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let stand_in = &hub.stand_in.hub;
    let signing_secret = shared::partner_webhooks::set_endpoint(
        &stand_in.table,
        stand_in.accounts.sealer(),
        partner.id,
        "https://partner.example.com",
    )
    .await
    .unwrap();
    let account = AccountId::for_shop(&ShopDomain::parse(shop).unwrap());
    (account, secret_key, signing_secret)
}

/// Confirms `ids` for `shop` for 30 days from `start`, with `trial_days`.
async fn confirm_from(
    hub: &TestHub,
    partner: &TestPartner,
    shop: &str,
    ids: &[u32],
    start: time::OffsetDateTime,
    trial_days: u32,
) {
    let claims = json!({"shop": shop, "trialDays": trial_days, "subscriptionIds": ids,
        "start": shared::clock::rfc3339_millis(start),
        "end": shared::clock::rfc3339_millis(start + time::Duration::days(30))});
    let (status, confirmed, _) = call(hub, "POST", CONFIRM, partner, claims).await;
    assert_eq!(status, 200, "{confirmed}");
}

fn confirm_claims(ids: Value) -> Value {
    json!({
        "shop": "billing-shop.com",
        "start": "2022-10-22T00:00:00.000Z",
        "end": "2022-11-22T00:00:00.000Z",
        "subscriptionIds": ids,
        "dynamicPriceCapUSD": 123.45,
        "fixedPriceAmountUSD": 234.56,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn plans_confirmation_rollover_and_pause_end_to_end() {
    let hub = TestHub::start("billing").await;
    let partner = hub.register("Billing", PARTNER_A_PUB, PARTNER_A_KEY).await;
    let other = hub.register("Other", PARTNER_B_PUB, PARTNER_B_KEY).await;
    let (status, provisioned) = hub
        .provision(&partner, &shop_claims("billing-shop.com"))
        .await;
    assert_eq!(status, 201);
    let account = AccountId::for_shop(&ShopDomain::parse("billing-shop.com").unwrap());

    // Step 2: the catalog, exact decimals, the contract's spelling.
    let (status, plans, text) = call(
        &hub,
        "POST",
        PLANS,
        &partner,
        json!({"shop": "billing-shop.com"}),
    )
    .await;
    assert_eq!(status, 200, "{plans}");
    let plans = plans.as_array().unwrap().clone();
    assert_eq!(plans.len(), 3);
    assert_eq!(plans[0]["name"], "AI Hub");
    assert_eq!(plans[1]["subscriptionTieredPricings"][0]["treshold"], 0);
    assert!(text.contains(r#""unitPrice":0.012"#), "{text}");
    assert!(text.contains(r#""price":15.99"#), "{text}");
    // Another partner's shop, or none: 404, revealing nothing.
    let (status, body, _) = call(
        &hub,
        "POST",
        PLANS,
        &other,
        json!({"shop": "billing-shop.com"}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("unknown_shop"))
    );
    let (status, _, _) = call(
        &hub,
        "POST",
        PLANS,
        &partner,
        json!({"shop": "nowhere.com"}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, body, _) = call(&hub, "POST", PLANS, &partner, json!({})).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("shop"))
    );

    // Step 3: confirm.
    let (status, confirmed, text) = call(
        &hub,
        "POST",
        CONFIRM,
        &partner,
        confirm_claims(json!([1, 2])),
    )
    .await;
    assert_eq!(status, 200, "{confirmed}");
    assert_eq!(confirmed["subscriptions"].as_array().unwrap().len(), 2);
    let period = &confirmed["billingPeriod"];
    assert_eq!(period["start"], "2022-10-22T00:00:00.000Z");
    assert_eq!(period["end"], "2022-11-22T00:00:00.000Z");
    assert_eq!(period["trialDays"], 14, "the plans' default");
    assert_eq!(period["trialEndsAt"], "2022-11-05T00:00:00.000Z");
    assert!(text.contains(r#""dynamicPriceCapUSD":123.45"#), "{text}");
    assert!(text.contains(r#""fixedPriceCapUSD":234.56"#), "{text}");
    // The same claims signed again: the same answer, nothing changes.
    let before = hub.settled_table_keys().await;
    let (status, again, _) = call(
        &hub,
        "POST",
        CONFIRM,
        &partner,
        confirm_claims(json!([1, 2])),
    )
    .await;
    assert_eq!((status, &again), (200, &confirmed));
    assert_eq!(hub.settled_table_keys().await, before);

    // Bad input: named, nothing written.
    let mut conflicting = confirm_claims(json!([1]));
    conflicting["fixedPriceCapUSD"] = json!(1.0);
    let mut reversed = confirm_claims(json!([1]));
    reversed["end"] = json!("2022-10-01T00:00:00Z");
    let mut negative = confirm_claims(json!([1]));
    negative["trialDays"] = json!(-1);
    let mut bad_date = confirm_claims(json!([1]));
    bad_date["start"] = json!("9999-12-31T23:59:59-23:59");
    let mut bad_cap = confirm_claims(json!([1]));
    bad_cap["dynamicPriceCapUSD"] = json!(-5);
    for (claims, field) in [
        (conflicting, "fixedPriceAmountUSD"),
        (reversed, "end"),
        (negative, "trialDays"),
        (bad_date, "start"),
        (bad_cap, "dynamicPriceCapUSD"),
        (confirm_claims(json!([99])), "subscriptionIds"),
        (confirm_claims(json!([])), "subscriptionIds"),
        (confirm_claims(json!("1")), "subscriptionIds"),
    ] {
        let (status, body, _) = call(&hub, "POST", CONFIRM, &partner, claims).await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (422, Some(field)),
            "{body}"
        );
    }
    let (status, _, _) = call(&hub, "POST", CONFIRM, &other, confirm_claims(json!([1]))).await;
    assert_eq!(status, 404);
    assert_eq!(hub.settled_table_keys().await, before);

    // A price change publishes a new version; the shop keeps the one it confirmed.
    let mut catalog: Vec<shared::plans::PlanSpec> = hub
        .stand_in
        .hub
        .plans
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.spec)
        .collect();
    catalog[1].tiered_pricings[0].price = shared::domain::Price::parse("17.99").unwrap();
    let published = hub.stand_in.hub.plans.put(&catalog).await.unwrap();
    assert_eq!(published.changed, vec![(2, 2)]);
    let selection = hub
        .stand_in
        .hub
        .billing
        .selection(account)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(selection.plans[1].version, 1);
    assert_eq!(
        selection.plans[1].spec.tiered_pricings[0].price.as_str(),
        "15.99"
    );

    // Periods roll over by calendar months once they end (a due item, not a scan).
    let now = shared::clock::parse_rfc3339("2023-02-01T00:00:00Z").unwrap();
    let report = billing_periods::handle_at(&hub.stand_in.hub, now)
        .await
        .unwrap();
    assert_eq!(report.periods_started, 3);
    let selection = hub
        .stand_in
        .hub
        .billing
        .selection(account)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        shared::clock::rfc3339_millis(selection.period.start),
        "2023-01-22T00:00:00.000Z"
    );
    assert_eq!(
        shared::clock::rfc3339_millis(selection.period.end),
        "2023-02-22T00:00:00.000Z"
    );
    assert_eq!(
        billing_periods::handle_at(&hub.stand_in.hub, now)
            .await
            .unwrap()
            .periods_started,
        0
    );

    // A new confirmation replaces the selection.
    let (status, replaced, _) =
        call(&hub, "POST", CONFIRM, &partner, confirm_claims(json!([3]))).await;
    assert_eq!(status, 200);
    assert_eq!(replaced["subscriptions"][0]["name"], "Recommendations");
    assert_eq!(replaced["billingPeriod"]["trialDays"], 30);

    // Pause/resume, and the tracking route it stops.
    let access = provisioned["domain"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = provisioned["domain"]["pages"][0]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = track(
        &hub,
        "billing-shop.com",
        ("x-rlv-access-token", &access),
        "u-1",
    )
    .await;
    assert_eq!(status, 202);
    let (status, _) = track(&hub, "billing-shop.com", ("x-rlv-page-token", &page), "u-2").await;
    assert_eq!(status, 202);
    let (status, body) = track(
        &hub,
        "billing-shop.com",
        ("x-rlv-access-token", "at_guess"),
        "u-3",
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_shop_token"))
    );
    let (status, _) = track(
        &hub,
        "other-shop.com",
        ("x-rlv-access-token", &access),
        "u-3",
    )
    .await;
    assert_eq!(status, 401);

    let (status, paused, _) = call(
        &hub,
        "PUT",
        DOMAINS,
        &partner,
        json!({"shop": "billing-shop.com", "running": false}),
    )
    .await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["running"], false);
    assert_eq!(paused["pausedIntervals"].as_array().unwrap().len(), 1);
    assert!(paused["pausedIntervals"][0].get("to").is_none());
    let (status, again, _) = call(
        &hub,
        "PUT",
        DOMAINS,
        &partner,
        json!({"shop": "billing-shop.com", "running": false}),
    )
    .await;
    assert_eq!((status, &again), (200, &paused), "repeating is harmless");
    let (status, body) = track(
        &hub,
        "billing-shop.com",
        ("x-rlv-access-token", &access),
        "u-1",
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("shop_paused"))
    );
    let (status, _, _) = call(
        &hub,
        "PUT",
        DOMAINS,
        &other,
        json!({"shop": "billing-shop.com", "running": true}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, body, _) = call(
        &hub,
        "PUT",
        DOMAINS,
        &partner,
        json!({"shop": "billing-shop.com", "running": "yes"}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("running"))
    );
    let (status, resumed, _) = call(
        &hub,
        "PUT",
        DOMAINS,
        &partner,
        json!({"shop": "billing-shop.com", "running": true}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(resumed["running"], true);
    assert!(resumed["pausedIntervals"][0]["to"].is_string());
    let (status, _) = track(
        &hub,
        "billing-shop.com",
        ("x-rlv-access-token", &access),
        "u-1",
    )
    .await;
    assert_eq!(status, 202);

    // Three page views counted today, by two users; the paused one was not.
    let day = hub
        .stand_in
        .hub
        .analytics
        .day(account, shared::clock::now().date())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(day.page_views, 3);
    assert_eq!(day.active_users(), 2);

    // The account's timeline has every change, each matching its schema.
    let types = hub_tests::eventually(Duration::from_secs(15), || async {
        let types = hub.assert_timeline_matches_schemas(account).await;
        (types.len() >= 8).then_some(types)
    })
    .await
    .expect("timeline");
    for expected in [
        "plans.confirmed",
        "billing_period.started",
        "shop.paused",
        "shop.resumed",
    ] {
        assert!(types.iter().any(|t| t == expected), "{expected}: {types:?}");
    }
    assert_eq!(types.iter().filter(|t| *t == "plans.confirmed").count(), 2);
    assert_eq!(types.iter().filter(|t| *t == "shop.paused").count(), 1);
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}

/// §5.1 end to end: a shop confirmed on plans, with page views and seats over a few
/// days, gets each closed day's usage records at the partner (the recorder), signed,
/// once per message id through a failing then recovering partner; the job run again
/// changes nothing; the statement follows the invoice rule.
#[tokio::test(flavor = "multi_thread")]
async fn usage_records_reach_the_partner_and_the_statement_follows_the_invoice_rule() {
    use shared::analytics::PageView;
    const STATEMENT: &str = "/api/v0/partners/domains/statement";
    let hub = TestHub::start("usage").await;
    let stand_in = hub.stand_in.hub.clone();
    let partner = hub.register("Usage", PARTNER_A_PUB, PARTNER_A_KEY).await;
    let other = hub.register("Other", PARTNER_B_PUB, PARTNER_B_KEY).await;
    let (account, secret_key, signing_secret) =
        shop_with_webhook(&hub, &partner, "usage-shop.com").await;

    // A plan priced on monthly active users, beside the contract's three.
    hub.add_plan(hub_tests::plan(
        4,
        "Audience",
        &[],
        &[("monthlyActiveUsers", "0.05")],
    ))
    .await;

    // Confirmed six days ago, two trial days.
    let today = shared::clock::now().date();
    let d0 = today - time::Duration::days(6);
    let start = d0.midnight().assume_utc();
    let day = |n: i64| shared::analytics::day_string(d0 + time::Duration::days(n));
    confirm_from(&hub, &partner, "usage-shop.com", &[1, 2, 3, 4], start, 2).await;

    // Page views on the first three days (users u1..u4); two users signed in by SSO.
    for (n, users) in [
        (0, &["u1", "u2", "u1"][..]),
        (1, &["u1", "u1"][..]),
        (2, &["u3", "u4", "u3", "u4"][..]),
    ] {
        for user in users {
            let at = start + time::Duration::days(n) + time::Duration::hours(10);
            stand_in
                .analytics
                .record_page_view(
                    account,
                    &PageView {
                        user_id: (*user).into(),
                        at,
                    },
                )
                .await
                .unwrap();
        }
    }
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for email in ["ana@usage-shop.com", "ion@usage-shop.com"] {
        let link = hub_tests::sso_link(&hub, &partner, "usage-shop.com", email, 300);
        assert_eq!(browser.get(link).send().await.unwrap().status(), 302);
    }

    // The job at 03:00 on day 4 meters days 0..3 (day 4 closes at 02:00 on day 5).
    let now = start + time::Duration::days(4) + time::Duration::hours(3);
    let report = usage_records::handle_at(&stand_in, now).await.unwrap();
    assert_eq!(
        (
            report.shops,
            report.days_metered,
            report.records,
            report.webhooks
        ),
        (1, 4, 19, 4),
        "{report:?}"
    );
    // Again: nothing new (each day is metered once).
    let again = usage_records::handle_at(&stand_in, now).await.unwrap();
    assert_eq!((again.days_metered, again.webhooks), (0, 0), "{again:?}");

    // The partner fails twice (500, then 429 with Retry-After), then takes everything.
    hub.script_outbound(json!([
        {"host": "partner.example.com", "status": 500},
        {"host": "partner.example.com", "status": 429, "headers": {"retry-after": "1"}},
    ]))
    .await;
    let queue = hub.partner_deliveries();
    let first = outbound_deliveries::handle_at(&queue, shared::clock::now())
        .await
        .unwrap();
    assert_eq!((first.delivered, first.retrying), (2, 2), "{first:?}");
    let later = shared::clock::now() + Duration::from_secs(60);
    let second = outbound_deliveries::handle_at(&queue, later).await.unwrap();
    assert_eq!((second.delivered, second.retrying), (2, 0), "{second:?}");

    let calls = hub.outbound_calls("partner.example.com").await;
    assert_eq!(calls.len(), 6, "{calls:#?}");
    let mut delivered: std::collections::BTreeMap<String, Value> = Default::default();
    for call in &calls {
        assert_eq!(
            call["url"],
            "https://partner.example.com/releva/webhooks/usageRecords"
        );
        hub_tests::assert_signed_webhook(call, &secret_key, &signing_secret);
        let body = call["body"].as_str().unwrap();
        let id = call["headers"]["webhook-id"].as_str().unwrap().to_owned();
        let body: Value = serde_json::from_str(body).unwrap();
        // A retry carries the same message.
        if let Some(seen) = delivered.insert(id, body.clone()) {
            assert_eq!(seen, body);
        }
    }
    assert_eq!(delivered.len(), 4, "one message per metered day");
    let schema = hub_tests::sample("partner-webhooks/usage-records.schema.json");
    let validator = jsonschema::validator_for(&schema).unwrap();
    for body in delivered
        .values()
        .chain([&hub_tests::sample("partner-webhooks/usage-records.json")])
    {
        let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{body}: {errors:?}");
    }
    let by_day = |d: &str| {
        delivered
            .values()
            .find(|b| b["usageRecords"][0]["day"] == d)
            .unwrap_or_else(|| panic!("no records for {d}"))
            .clone()
    };
    // Day 2, the first after the trial: every component, exactly.
    assert_eq!(
        by_day(&day(2)),
        json!({"usageRecords": [
            {"day": day(2), "type": "seats", "unitPrice": "19.99", "amount": "2",
             "billableAmount": "2", "totalPrice": "39.98",
             "reference": "AI Hub #1: seats usage", "preaggregated": true},
            {"day": day(2), "type": "subscribers", "unitPrice": "15.99", "amount": "1",
             "billableAmount": "1", "totalPrice": "15.99",
             "reference": "Mail & Push #2: subscribers tier", "preaggregated": true},
            {"day": day(2), "type": "pageViews", "unitPrice": "49", "amount": "1",
             "billableAmount": "1", "totalPrice": "49",
             "reference": "Recommendations #3: pageViews tier", "preaggregated": true},
            {"day": day(2), "type": "pageViews", "unitPrice": "0.0004", "amount": "4",
             "billableAmount": "4", "totalPrice": "0.0016",
             "reference": "Recommendations #3: pageViews usage", "preaggregated": false},
            {"day": day(2), "type": "monthlyActiveUsers", "unitPrice": "0.05", "amount": "4",
             "billableAmount": "4", "totalPrice": "0.2",
             "reference": "Audience #4: monthlyActiveUsers usage", "preaggregated": true},
        ]})
    );
    // A trial day: the same measures, nothing billable; MAU is the period so far.
    let trial = by_day(&day(1));
    for record in trial["usageRecords"].as_array().unwrap() {
        assert_eq!(record["billableAmount"], "0", "{record}");
        assert_eq!(record["totalPrice"], "0", "{record}");
    }
    assert_eq!(trial["usageRecords"][3]["amount"], "2", "day 1's two views");
    assert_eq!(trial["usageRecords"][4]["amount"], "2", "u1, u2 so far");
    // Day 3 had no views: no page-view counter record; the gauges go on.
    let quiet = by_day(&day(3));
    assert_eq!(quiet["usageRecords"].as_array().unwrap().len(), 4);
    assert_eq!(quiet["usageRecords"][3]["type"], "monthlyActiveUsers");

    // The statement of the current period, by the invoice rule.
    let (status, statement, _) = call(
        &hub,
        "POST",
        STATEMENT,
        &partner,
        json!({"shop": "usage-shop.com"}),
    )
    .await;
    assert_eq!(status, 200, "{statement}");
    let line = |reference: &str| {
        statement["lineItems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["reference"] == reference)
            .unwrap_or_else(|| panic!("no line {reference}: {statement}"))
            .clone()
    };
    assert_eq!(statement["lineItems"].as_array().unwrap().len(), 5);
    // Gauges: the latest record; counters: the days after the trial summed.
    assert_eq!(line("AI Hub #1: seats usage")["totalPrice"], "39.98");
    assert_eq!(line("AI Hub #1: seats usage")["records"], 1);
    let views = line("Recommendations #3: pageViews usage");
    assert_eq!(
        (
            views["amount"].as_str(),
            views["totalPrice"].as_str(),
            views["records"].as_u64()
        ),
        (Some("4"), Some("0.0016"), Some(1))
    );
    assert_eq!(statement["fixedPriceTotalUSD"], "64.99");
    assert_eq!(statement["dynamicPriceTotalUSD"], "40.1816");
    assert_eq!(statement["totalUSD"], "105.1716");
    assert_eq!(
        statement["billingPeriod"]["trialEndsAt"],
        shared::clock::rfc3339_millis(start + time::Duration::days(2))
    );

    // Errors: another partner's shop, a bad period, a shop without plans.
    let (status, _, _) = call(
        &hub,
        "POST",
        STATEMENT,
        &other,
        json!({"shop": "usage-shop.com"}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, body, _) = call(
        &hub,
        "POST",
        STATEMENT,
        &partner,
        json!({"shop": "usage-shop.com", "period": {"start": "2022-11-22", "end": "2022-10-22"}}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("period.end"))
    );
    hub.provision(&partner, &shop_claims("unplanned-shop.com"))
        .await;
    let (status, body, _) = call(
        &hub,
        "POST",
        STATEMENT,
        &partner,
        json!({"shop": "unplanned-shop.com"}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("no_confirmed_plans"))
    );
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}

/// The session cookie an SSO link sets (`hub_session=...`).
async fn signed_in(
    hub: &TestHub,
    browser: &reqwest::Client,
    partner: &TestPartner,
    shop: &str,
    email: &str,
) -> String {
    let link = hub_tests::sso_link(hub, partner, shop, email, 300);
    let response = browser.get(link).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

async fn admin_page(hub: &TestHub, browser: &reqwest::Client, cookie: &str) -> String {
    let response = browser
        .get(hub.url("/admin"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// §5.2 end to end: a tier reached and a signed-in user's request on the admin page each
/// send the partner `POST /releva/subscriptions {subscriptionIds}`; a `confirmationUrl`
/// answer becomes the page's confirm link, a malformed answer a failed request; the
/// shop's delivery log (every attempt) is on its timeline and its admin page.
#[tokio::test(flavor = "multi_thread")]
async fn change_requests_reach_the_partner_and_its_confirmation_url_shows_on_the_admin_page() {
    use shared::partner_webhooks::{ChangeRequestStatus, change_requests};
    let hub = TestHub::start("change-requests").await;
    let stand_in = hub.stand_in.hub.clone();
    let partner = hub.register("Changes", PARTNER_A_PUB, PARTNER_A_KEY).await;
    let (account, secret_key, signing_secret) =
        shop_with_webhook(&hub, &partner, "change-shop.com").await;
    hub.add_plan(hub_tests::plan(
        5,
        "Team",
        &[("Solo", 0, "10", "seats"), ("Team", 2, "30", "seats")],
        &[],
    ))
    .await;
    let d0 = shared::clock::now().date() - time::Duration::days(3);
    let start = d0.midnight().assume_utc();
    confirm_from(&hub, &partner, "change-shop.com", &[1, 5], start, 0).await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // One seat on day 0 (the Solo tier); a second on day 1 reaches the Team tier.
    let cookie = signed_in(
        &hub,
        &browser,
        &partner,
        "change-shop.com",
        "ana@change-shop.com",
    )
    .await;
    let at = |days: i64| start + time::Duration::days(days) + time::Duration::hours(3);
    let first = usage_records::handle_at(&stand_in, at(1)).await.unwrap();
    assert_eq!(first.days_metered, 1, "{first:?}");
    assert!(
        change_requests(&stand_in.table, account, 10)
            .await
            .unwrap()
            .is_empty()
    );
    signed_in(
        &hub,
        &browser,
        &partner,
        "change-shop.com",
        "ion@change-shop.com",
    )
    .await;
    usage_records::handle_at(&stand_in, at(2)).await.unwrap();
    let requests = change_requests(&stand_in.table, account, 10).await.unwrap();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].subscription_ids, vec![1, 5]);
    assert_eq!(
        requests[0].reason,
        "Team #5: seats tier reached a higher tier"
    );

    // The user asks for Recommendations (plan 3) on the admin page.
    let page = admin_page(&hub, &browser, &cookie).await;
    assert!(page.contains("Ask for Recommendations"), "{page}");
    assert!(!page.contains("Ask for AI Hub"), "a plan the shop has");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let ask = |csrf: String, plan: &'static str| {
        browser
            .post(hub.url(&format!("/admin/shops/{account}/subscriptions")))
            .header("cookie", &cookie)
            .form(&[("csrf", csrf), ("plan", plan.to_owned())])
            .send()
    };
    assert_eq!(ask("forged".into(), "3").await.unwrap().status(), 403);
    assert_eq!(
        ask(csrf.clone(), "1").await.unwrap().status(),
        409,
        "held already"
    );
    assert_eq!(ask(csrf.clone(), "99").await.unwrap().status(), 422);
    assert_eq!(
        change_requests(&stand_in.table, account, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let asked = ask(csrf.clone(), "3").await.unwrap();
    assert_eq!(
        (
            asked.status().as_u16(),
            asked.headers()["location"].to_str().unwrap()
        ),
        (303, "/admin")
    );

    // The partner answers the first with a confirmationUrl and the second with nonsense.
    const CONFIRM_URL: &str = "https://partner.example.com/releva/subscriptions/confirm/token/t1";
    hub.script_outbound(json!([
        {"host": "partner.example.com", "path": "/releva/subscriptions", "body": {"confirmationUrl": CONFIRM_URL}},
        {"host": "partner.example.com", "path": "/releva/subscriptions", "body": {"ok": true}},
    ]))
    .await;
    let queue = hub.partner_deliveries();
    let report = outbound_deliveries::handle_at(&queue, shared::clock::now())
        .await
        .unwrap();
    assert_eq!((report.delivered, report.failed), (3, 1), "{report:?}");
    let sent: Vec<Value> = hub
        .outbound_calls("partner.example.com")
        .await
        .into_iter()
        .filter(|c| c["url"] == "https://partner.example.com/releva/subscriptions")
        .collect();
    assert_eq!(sent.len(), 2);
    for (call, ids) in sent.iter().zip([json!([1, 5]), json!([1, 5, 3])]) {
        hub_tests::assert_signed_webhook(call, &secret_key, &signing_secret);
        let body: Value = serde_json::from_str(call["body"].as_str().unwrap()).unwrap();
        assert_eq!(body, json!({ "subscriptionIds": ids }));
    }
    let requests = change_requests(&stand_in.table, account, 10).await.unwrap();
    let by_ids = |ids: &[u32]| requests.iter().find(|r| r.subscription_ids == ids).unwrap();
    assert_eq!(
        by_ids(&[1, 5]).status,
        ChangeRequestStatus::AwaitingConfirmation
    );
    assert_eq!(
        by_ids(&[1, 5]).confirmation_url.as_deref(),
        Some(CONFIRM_URL)
    );
    assert_eq!(by_ids(&[1, 5, 3]).status, ChangeRequestStatus::Failed);
    assert!(
        by_ids(&[1, 5, 3])
            .failure
            .as_deref()
            .unwrap_or_default()
            .contains("malformed answer"),
        "{requests:?}"
    );

    // The page shows the confirm link, the failure and the delivery log (the attempts
    // reach the timeline through the bus).
    let page = hub_tests::eventually(Duration::from_secs(20), || async {
        let page = admin_page(&hub, &browser, &cookie).await;
        // (Each attempt reaches the timeline on its own through the bus.)
        (page.contains("webhook.usage_records")
            && page.contains("webhook.subscription_change_request"))
        .then_some(page)
    })
    .await
    .expect("the delivery log on the admin page");
    assert!(page.contains(&format!("href=\"{CONFIRM_URL}\"")), "{page}");
    assert!(page.contains("could not be sent to your partner"), "{page}");
    assert!(page.contains("webhook.usage_records"), "{page}");
    assert!(
        page.contains("webhook.subscription_change_request"),
        "{page}"
    );
    assert!(!page.contains(&secret_key), "no secret on the page");
    let types = hub_tests::eventually(Duration::from_secs(20), || async {
        let types = hub.assert_timeline_matches_schemas(account).await;
        (types.iter().filter(|t| *t == "webhook.attempted").count() == 4).then_some(types)
    })
    .await
    .expect("four attempts on the timeline");
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "subscription_change.requested")
            .count(),
        2,
        "{types:?}"
    );
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}

/// A loyalty site billed to a shop: each `sms.sent` counts its segments in the shop's
/// day once (a redelivered event counts nothing), a late one on the next open day, and
/// the day's `textMessages` usage record carries them.
#[tokio::test(flavor = "multi_thread")]
async fn sms_of_a_site_billed_to_a_shop_are_its_text_messages_once() {
    use shared::events::{EventPayload, HubEvent, SmsSent};
    let hub = TestHub::start("text-messages").await;
    let stand_in = hub.stand_in.hub.clone();
    let partner = hub.register("Texts", PARTNER_A_PUB, PARTNER_A_KEY).await;
    let other = hub.register("Other", PARTNER_B_PUB, PARTNER_B_KEY).await;
    hub.provision(&partner, &shop_claims("sms-shop.com")).await;
    hub.provision(&other, &shop_claims("foreign-shop.com"))
        .await;
    let domain = ShopDomain::parse("sms-shop.com").unwrap();
    let shop = AccountId::for_shop(&domain);
    let site = stand_in
        .sms
        .register_site(partner.id, "Loyalty")
        .await
        .unwrap();
    let foreign = ShopDomain::parse("foreign-shop.com").unwrap();
    assert!(
        stand_in
            .sms
            .bill_to_shop(site.site_id, Some(&foreign))
            .await
            .is_err()
    );
    let billed = stand_in
        .sms
        .bill_to_shop(site.site_id, Some(&domain))
        .await
        .unwrap();
    assert_eq!(billed.billed_shop, Some(shop));

    hub.add_plan(hub_tests::plan(
        6,
        "Texts",
        &[],
        &[("textMessages", "0.01")],
    ))
    .await;
    let now = shared::clock::now();
    let start = (now.date() - time::Duration::days(2))
        .midnight()
        .assume_utc();
    confirm_from(&hub, &partner, "sms-shop.com", &[6], start, 0).await;

    // Two SMS: one now (2 segments), one from two days ago, delivered late (3).
    let sent = |segments: u32,
                at: time::OffsetDateTime|
     -> aws_lambda_events::eventbridge::EventBridgeEvent<HubEvent> {
        let mut event = HubEvent::new(EventPayload::SmsSent(SmsSent {
            site_id: site.site_id,
            action_id: format!("a-{segments}"),
            action: "points_earned".into(),
            member_id: None,
            segments,
            billed_shop: Some(shop),
        }))
        .for_account(site.account_id, partner.id);
        event.occurred_at = at;
        let mut envelope = hub_tests::sample("hub/sms.sent.json");
        envelope["detail"] = serde_json::to_value(&event).unwrap();
        serde_json::from_value(envelope).unwrap()
    };
    let now_event = sent(2, now);
    let late_event = sent(3, start + time::Duration::hours(10));
    for (event, expected) in [
        (now_event.clone(), account_timeline::Outcome::Appended),
        (now_event, account_timeline::Outcome::Duplicate),
        (late_event, account_timeline::Outcome::Appended),
    ] {
        assert_eq!(
            account_timeline::handle(&stand_in, event).await.unwrap(),
            expected
        );
    }
    // The late one counts on the first day still open (today, or yesterday before 02:00).
    let late_day = shared::usage::counting_day(start + time::Duration::hours(10), now);
    assert!(late_day > start.date());
    let count = |day: time::Date| {
        let analytics = stand_in.analytics.clone();
        async move {
            analytics
                .day(shop, day)
                .await
                .unwrap()
                .map_or(0, |d| d.text_messages)
        }
    };
    let expected_today: u64 = if late_day == now.date() { 5 } else { 2 };
    assert_eq!(
        count(now.date()).await,
        expected_today,
        "the duplicate not counted"
    );
    assert_eq!(
        count(late_day).await,
        if late_day == now.date() { 5 } else { 3 }
    );

    // Tomorrow 03:00: today's record carries them.
    let tomorrow = (now.date() + time::Duration::days(1))
        .midnight()
        .assume_utc();
    usage_records::handle_at(&stand_in, tomorrow + time::Duration::hours(3))
        .await
        .unwrap();
    let records = shared::usage::records_between(&stand_in.table, shop, now.date(), now.date())
        .await
        .unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        serde_json::to_value(&records[0].record).unwrap(),
        json!({"day": shared::analytics::day_string(now.date()), "type": "textMessages",
            "unitPrice": "0.01", "amount": expected_today.to_string(),
            "billableAmount": expected_today.to_string(),
            "totalPrice": if expected_today == 5 { "0.05" } else { "0.02" },
            "reference": "Texts #6: textMessages usage", "preaggregated": false})
    );
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}
