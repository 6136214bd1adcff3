//! The signed-payload partner API end to end: a partner provisions shops through the
//! local stand-in, and `account.provisioned` reaches the account's timeline.

use std::time::Duration;

use hub_tests::{
    PARTNER_A_KEY, PARTNER_A_PUB, PARTNER_B_KEY, PARTNER_B_PUB, TestHub, eventually, sample,
    shop_claims, sign_raw, sign_rs512,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use shared::domain::{AccountId, ShopDomain};

fn account_id(host: &str) -> AccountId {
    AccountId::for_shop(&ShopDomain::parse(host).unwrap())
}

async fn timeline_types(hub: &TestHub, host: &str) -> Vec<String> {
    let entries = hub
        .stand_in
        .hub
        .timeline
        .list(account_id(host))
        .await
        .unwrap();
    entries.into_iter().map(|e| e.event_type).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn provisions_a_shop_then_answers_200_with_the_same_body() {
    let hub = TestHub::start("provision").await;
    let partner = hub.register("Acme", PARTNER_A_PUB, PARTNER_A_KEY).await;

    let (status, created) = hub
        .provision(
            &partner,
            &sample("partner-api/provision-domain.claims.json"),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let domain = &created["domain"];
    assert_eq!(domain["url"], "my-shop.com");
    assert_eq!(domain["name"], "My Shop");
    assert_eq!(domain["currencyCode"], "USD");
    assert_eq!(domain["contactEmail"], "hello@releva.ai");
    assert_eq!(domain["timezoneOffset"], "+0300");
    assert_eq!(domain["locale"], "en");
    assert_eq!(domain["platform"], "custom");
    assert_eq!(domain["status"], "active");
    assert_eq!(domain["externalId"], "my-shop.com");
    assert!(domain["accessToken"].as_str().is_some_and(|t| t.len() > 30));
    assert!(domain["secretKey"].as_str().is_some_and(|t| t.len() > 30));
    assert_ne!(domain["accessToken"], domain["secretKey"]);
    let pages = domain["pages"].as_array().unwrap();
    assert!(!pages.is_empty());
    for page in pages {
        assert!(page["token"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(page["name"].as_str().is_some_and(|n| !n.is_empty()));
    }

    // Same shop again, differently cased: 200 with the same body.
    let (status, again) = hub.provision(&partner, &shop_claims("My-Shop.COM")).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, created);

    // account.provisioned went through the outbox, the bus and the template's rule.
    let types = eventually(Duration::from_secs(15), || async {
        let types = timeline_types(&hub, "my-shop.com").await;
        (!types.is_empty()).then_some(types)
    })
    .await
    .expect("account.provisioned reached the timeline");
    assert_eq!(types, vec!["account.provisioned"]);
    let account = AccountId::for_shop(&ShopDomain::parse("my-shop.com").unwrap());
    hub.assert_timeline_matches_schemas(account).await;
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn another_partners_shop_is_a_conflict() {
    let hub = TestHub::start("conflict").await;
    let a = hub.register("A", PARTNER_A_PUB, PARTNER_A_KEY).await;
    let b = hub.register("B", PARTNER_B_PUB, PARTNER_B_KEY).await;
    let (status, first) = hub.provision(&a, &shop_claims("taken-shop.com")).await;
    assert_eq!(status, 201);
    let (status, body) = hub.provision(&b, &shop_claims("taken-shop.com")).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "shop_taken");
    assert_eq!(body["error"]["field"], "url");
    // Nothing changed for the owner.
    let (status, again) = hub.provision(&a, &shop_claims("taken-shop.com")).await;
    assert_eq!(status, 200);
    assert_eq!(again, first);
    assert!(
        hub.stand_in
            .hub
            .accounts
            .list_for_partner(b.id)
            .await
            .unwrap()
            .is_empty()
    );
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}

/// A request that must be refused with `status` and `code`, writing nothing.
struct BadCase {
    name: &'static str,
    token: Option<String>,
    body: String,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_clear_4xx_and_writes_nothing() {
    let hub = TestHub::start("badinput").await;
    let partner = hub.register("A", PARTNER_A_PUB, PARTNER_A_KEY).await;
    let host = "never-written.com";
    let good = shop_claims(host);
    let now = shared::clock::now().unix_timestamp();
    let body = |jwt: String| json!({ "payload": jwt }).to_string();
    let with = |field: &str, value: Value| {
        let mut claims = good.clone();
        claims[field] = value;
        body(sign_rs512(PARTNER_A_KEY, &claims, 3600))
    };
    let without = |field: &str| {
        let mut claims = good.clone();
        claims.as_object_mut().unwrap().remove(field);
        body(sign_rs512(PARTNER_A_KEY, &claims, 3600))
    };
    let token = Some(partner.token.clone());
    let alg_none = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut claims = good.clone();
        claims["exp"] = (now + 600).into();
        format!(
            "{}.{}.",
            b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(claims.to_string())
        )
    };
    let hs512_with_public_key = {
        let mut claims = good.clone();
        claims["iat"] = now.into();
        claims["exp"] = (now + 600).into();
        let key = EncodingKey::from_secret(PARTNER_A_PUB.as_bytes());
        jsonwebtoken::encode(&Header::new(Algorithm::HS512), &claims, &key).unwrap()
    };
    let mut expired = good.clone();
    expired["iat"] = (now - 7200).into();
    expired["exp"] = (now - 3600).into();
    let mut no_exp = good.clone();
    no_exp["iat"] = now.into();

    let cases = vec![
        BadCase {
            name: "no token",
            token: None,
            body: with("url", host.into()),
            status: 401,
            code: "missing_partner_token",
            field: None,
        },
        BadCase {
            name: "unknown token",
            token: Some("pt_unknown".into()),
            body: with("url", host.into()),
            status: 401,
            code: "invalid_partner_token",
            field: None,
        },
        BadCase {
            name: "malformed JSON",
            token: token.clone(),
            body: "{\"payload\": ".into(),
            status: 400,
            code: "malformed_json",
            field: None,
        },
        BadCase {
            name: "empty body",
            token: token.clone(),
            body: String::new(),
            status: 400,
            code: "malformed_json",
            field: None,
        },
        BadCase {
            name: "no payload",
            token: token.clone(),
            body: "{}".into(),
            status: 422,
            code: "missing_field",
            field: Some("payload"),
        },
        BadCase {
            name: "payload not a string",
            token: token.clone(),
            body: "{\"payload\": 7}".into(),
            status: 422,
            code: "invalid_field",
            field: Some("payload"),
        },
        BadCase {
            name: "not a JWT",
            token: token.clone(),
            body: body("abc.def".into()),
            status: 400,
            code: "malformed_payload",
            field: Some("payload"),
        },
        BadCase {
            name: "another partner's key",
            token: token.clone(),
            body: body(sign_rs512(PARTNER_B_KEY, &good, 3600)),
            status: 401,
            code: "invalid_signature",
            field: Some("payload"),
        },
        BadCase {
            name: "tampered signature",
            token: token.clone(),
            body: body({
                let jwt = sign_rs512(PARTNER_A_KEY, &good, 3600);
                let (head, _) = jwt.rsplit_once('.').unwrap();
                let other = sign_rs512(PARTNER_A_KEY, &shop_claims("other.com"), 3600);
                format!("{head}.{}", other.rsplit_once('.').unwrap().1)
            }),
            status: 401,
            code: "invalid_signature",
            field: Some("payload"),
        },
        BadCase {
            name: "alg none",
            token: token.clone(),
            body: body(alg_none),
            status: 401,
            code: "unsupported_algorithm",
            field: Some("payload"),
        },
        BadCase {
            name: "HS512 with the public key",
            token: token.clone(),
            body: body(hs512_with_public_key),
            status: 401,
            code: "unsupported_algorithm",
            field: Some("payload"),
        },
        BadCase {
            name: "RS256",
            token: token.clone(),
            body: body({
                let mut claims = good.clone();
                claims["iat"] = now.into();
                claims["exp"] = (now + 600).into();
                sign_raw(Header::new(Algorithm::RS256), PARTNER_A_KEY, &claims)
            }),
            status: 401,
            code: "unsupported_algorithm",
            field: Some("payload"),
        },
        BadCase {
            name: "expired",
            token: token.clone(),
            body: body(sign_raw(
                Header::new(Algorithm::RS512),
                PARTNER_A_KEY,
                &expired,
            )),
            status: 401,
            code: "payload_expired",
            field: Some("payload"),
        },
        BadCase {
            name: "no exp",
            token: token.clone(),
            body: body(sign_raw(
                Header::new(Algorithm::RS512),
                PARTNER_A_KEY,
                &no_exp,
            )),
            status: 401,
            code: "missing_expiry",
            field: Some("payload"),
        },
        BadCase {
            name: "lifetime over an hour",
            token: token.clone(),
            body: body(sign_rs512(PARTNER_A_KEY, &good, 3 * 3600)),
            status: 401,
            code: "payload_lifetime_too_long",
            field: Some("payload"),
        },
        BadCase {
            name: "url with protocol",
            token: token.clone(),
            body: with("url", "https://never-written.com".into()),
            status: 422,
            code: "invalid_field",
            field: Some("url"),
        },
        BadCase {
            name: "url with path",
            token: token.clone(),
            body: with("url", "never-written.com/shop".into()),
            status: 422,
            code: "invalid_field",
            field: Some("url"),
        },
        BadCase {
            name: "missing url",
            token: token.clone(),
            body: without("url"),
            status: 422,
            code: "missing_field",
            field: Some("url"),
        },
        BadCase {
            name: "empty name",
            token: token.clone(),
            body: with("name", " ".into()),
            status: 422,
            code: "invalid_field",
            field: Some("name"),
        },
        BadCase {
            name: "missing name",
            token: token.clone(),
            body: without("name"),
            status: 422,
            code: "missing_field",
            field: Some("name"),
        },
        BadCase {
            name: "bad currency",
            token: token.clone(),
            body: with("currencyCode", "DOLLARS".into()),
            status: 422,
            code: "invalid_field",
            field: Some("currencyCode"),
        },
        BadCase {
            name: "unknown currency",
            token: token.clone(),
            body: with("currencyCode", "XYZ".into()),
            status: 422,
            code: "invalid_field",
            field: Some("currencyCode"),
        },
        BadCase {
            name: "bad email",
            token: token.clone(),
            body: with("contactEmail", "+0300".into()),
            status: 422,
            code: "invalid_field",
            field: Some("contactEmail"),
        },
        BadCase {
            name: "bad offset",
            token: token.clone(),
            body: with("timezoneOffset", "+03:00".into()),
            status: 422,
            code: "invalid_field",
            field: Some("timezoneOffset"),
        },
        BadCase {
            name: "bad locale",
            token: token.clone(),
            body: with("locale", "english".into()),
            status: 422,
            code: "invalid_field",
            field: Some("locale"),
        },
        BadCase {
            name: "bad platform",
            token: token.clone(),
            body: with("platform", "shopify".into()),
            status: 422,
            code: "invalid_field",
            field: Some("platform"),
        },
        BadCase {
            name: "number for a string",
            token: token.clone(),
            body: with("name", 42.into()),
            status: 422,
            code: "invalid_field",
            field: Some("name"),
        },
    ];
    for case in cases {
        let (status, body) = hub.post_domains(case.token.as_deref(), case.body).await;
        assert_eq!(status, case.status, "{}: {body}", case.name);
        assert_eq!(body["error"]["code"], case.code, "{}: {body}", case.name);
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{}",
            case.name
        );
        match case.field {
            Some(field) => assert_eq!(body["error"]["field"], field, "{}: {body}", case.name),
            None => assert!(body["error"]["field"].is_null(), "{}: {body}", case.name),
        }
    }
    // Nothing was written: no account, no event.
    assert!(
        hub.stand_in
            .hub
            .accounts
            .get(account_id(host))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        hub.stand_in
            .hub
            .accounts
            .list_for_partner(partner.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(hub.outbox_items().await.is_empty(), "no change, no event");

    // Wrong method and unknown routes answer JSON too.
    let response = hub
        .http
        .get(hub.url("/api/v0/partners/domains"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        "method_not_allowed"
    );
    let response = hub
        .http
        .get(hub.url("/api/v0/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        "not_found"
    );
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_concurrent_calls_for_one_new_shop_make_one_account_and_one_event() {
    let hub = TestHub::start("concurrent").await;
    let partner = hub.register("A", PARTNER_A_PUB, PARTNER_A_KEY).await;
    let claims = shop_claims("race-shop.com");
    let calls = (0..10).map(|_| hub.provision(&partner, &claims));
    let results = futures::future::join_all(calls).await;
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    let existing = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!((created, existing), (1, 9), "{results:?}");
    let first = &results[0].1["domain"];
    for (_, body) in &results {
        assert_eq!(body["domain"]["accessToken"], first["accessToken"]);
        assert_eq!(body["domain"]["secretKey"], first["secretKey"]);
    }
    assert_eq!(
        hub.stand_in
            .hub
            .accounts
            .list_for_partner(partner.id)
            .await
            .unwrap()
            .len(),
        1
    );

    // Exactly one account.provisioned: wait for it, then for any straggler.
    eventually(Duration::from_secs(15), || async {
        (!timeline_types(&hub, "race-shop.com").await.is_empty()).then_some(())
    })
    .await
    .expect("the event arrived");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        timeline_types(&hub, "race-shop.com").await,
        vec!["account.provisioned"]
    );
    let provisioned = hub
        .outbox_items()
        .await
        .iter()
        .flat_map(|item| &item.events)
        .filter(|e| e.detail_type == "account.provisioned")
        .count();
    assert_eq!(provisioned, 1, "one committed change, one event staged");
    // (No round-trip goal here: the nine losers of the race read the winner's shop
    // after their transaction fails, four round trips by design.)
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn events_the_timeline_cannot_read_are_parked_not_retried() {
    let hub = TestHub::start("deadletter").await;
    let sdk = &hub.stand_in.sdk;
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let bus = hub.stand_in.hub.config.event_bus_name.clone();
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .event_bus_name(&bus)
        .source("partner-hub")
        .detail_type("account.provisioned")
        .detail(r#"{"this":"is not a hub event"}"#)
        .build();
    events.put_events().entries(entry).send().await.unwrap();
    let letters = eventually(Duration::from_secs(15), || async {
        let letters = hub.stand_in.hub.dead_letters.list().await.unwrap();
        (!letters.is_empty()).then_some(letters)
    })
    .await
    .expect("the bad event was parked");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].handler, "account-timeline");
    assert!(letters[0].payload.contains("is not a hub event"));
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sample_hub_event_is_delivered_to_the_timeline_once() {
    let hub = TestHub::start("sample").await;
    let sample = sample("hub/account.provisioned.json");
    let account: AccountId = serde_json::from_value(sample["detail"]["accountId"].clone()).unwrap();
    let events = aws_sdk_eventbridge::Client::new(&hub.stand_in.sdk);
    let bus = hub.stand_in.hub.config.event_bus_name.clone();
    // Delivered twice (at-least-once): recorded once.
    for _ in 0..2 {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&bus)
            .source(sample["source"].as_str().unwrap())
            .detail_type(sample["detail-type"].as_str().unwrap())
            .detail(sample["detail"].to_string())
            .build();
        events.put_events().entries(entry).send().await.unwrap();
    }
    eventually(Duration::from_secs(15), || async {
        let entries = hub.stand_in.hub.timeline.list(account).await.unwrap();
        (!entries.is_empty()).then_some(())
    })
    .await
    .expect("delivered");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        hub.stand_in.hub.timeline.list(account).await.unwrap().len(),
        1
    );
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}

/// The AWS round trips of the provisioning requests so far, in order.
fn provisioning_trips(hub: &TestHub) -> Vec<(bool, String, usize, Vec<String>)> {
    hub.stand_in
        .round_trips
        .samples()
        .into_iter()
        .filter(|s| s.operation == "POST /api/v0/partners/domains")
        .map(|s| (s.cold, s.outcome, s.round_trips, s.calls))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn provisioning_takes_three_round_trips_cold_and_a_repeat_at_most_two() {
    let hub = TestHub::start("round-trips").await;
    let partner = hub.register("A", PARTNER_A_PUB, PARTNER_A_KEY).await;
    for host in ["trips-one.com", "trips-one.com", "trips-two.com"] {
        let (status, body) = hub.provision(&partner, &shop_claims(host)).await;
        assert!(status == 200 || status == 201, "{status}: {body}");
    }
    let trips = provisioning_trips(&hub);
    assert_eq!(trips.len(), 3, "{trips:?}");
    // Cold: the token query, the account read beside the data key, the transaction.
    let (cold, status, round_trips, calls) = &trips[0];
    assert!(*cold && status == "201", "{trips:?}");
    assert!(*round_trips <= 3, "a new shop, cold: {calls:?}");
    assert!(
        !calls
            .iter()
            .any(|c| c.contains("PutEvents") || c.contains("DeleteItem")),
        "nothing is published on the request path: {calls:?}"
    );
    // Warm: the partner is cached; the repeat reads the account (its data key is known).
    let (cold, status, round_trips, calls) = &trips[1];
    assert!(!cold && status == "200");
    assert!(*round_trips <= 2, "a repeat: {calls:?}");
    let (_, status, round_trips, calls) = &trips[2];
    assert_eq!(status, "201");
    assert!(*round_trips <= 2, "a new shop, warm: {calls:?}");
    assert!(
        !calls.iter().any(|c| c.to_lowercase().contains("kms")),
        "a warm function seals with its cached data key: {calls:?}"
    );

    // The same figures over HTTP, for tools.
    let samples: Value = hub
        .http
        .get(hub.url("/_local/round-trips"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        samples
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["operation"] == "POST /api/v0/partners/domains" && s["cold"] == true)
    );
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}
