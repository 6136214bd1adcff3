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
    hub.stop().await;
}
