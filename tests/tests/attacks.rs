//! The attack suite: what a hostile partner would try, written from the README and the
//! contracts alone, against the stand-in over HTTP and its buses. Every case asserts the
//! status, the JSON error and that nothing was written; at the end, no token, key or
//! secret the run used appears in any log line. (The two bus attacks, a spoofed partner
//! source and forged hub events, are in `trust.rs`.)
//!
//! One test runs the sections in order, so the log it greps covers all of them.

use std::{
    io::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hub_tests::{
    DOMAINS_PATH, MARKETPLACE_EVENTS_PATH, PARTNER_A_KEY, PARTNER_A_PUB, PARTNER_B_KEY,
    PARTNER_B_PUB, TestHub, TestPartner, assert_documented, sample, shop_claims, sign_raw,
    sign_rs512,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// Every line the run logged (the stand-in runs in this process).
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Counts the cases each section tried, for the closing report.
#[derive(Default)]
struct Tally(Vec<(&'static str, usize)>);

impl Tally {
    fn add(&mut self, section: &'static str, cases: usize) {
        self.0.push((section, cases));
    }
}

struct Caller<'a> {
    hub: &'a TestHub,
    /// The address API Gateway would see (the stand-in takes it from this header).
    ip: String,
}

impl Caller<'_> {
    async fn send(
        &self,
        method: &str,
        path: &str,
        template: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut request = self
            .hub
            .http
            .request(method.parse().unwrap(), self.hub.url(path))
            .header("x-local-source-ip", &self.ip);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let json: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{method} {path}: non-JSON {status}: {text:.200}"));
        assert_documented(method, template, status, Some(&json));
        (status, json, headers)
    }

    async fn provision(&self, token: &str, jwt: &str) -> (u16, Value) {
        let body = json!({ "payload": jwt }).to_string();
        let (status, json, _) = self
            .send(
                "POST",
                DOMAINS_PATH,
                DOMAINS_PATH,
                &[
                    ("x-rlv-partner-token", token),
                    ("content-type", "application-json"),
                ],
                Some(body),
            )
            .await;
        (status, json)
    }
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("(no error code)")
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// A JWT with any header, signed by `key` under `alg` (or with `signature` as given).
fn forge(header: Value, claims: &Value, signed: Option<(&EncodingKey, Algorithm)>) -> String {
    let message = format!("{}.{}", b64(&header), b64(claims));
    let signature = match signed {
        Some((key, alg)) => jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap(),
        None => URL_SAFE_NO_PAD.encode([7u8; 64]),
    };
    format!("{message}.{signature}")
}

fn fresh_claims(host: &str) -> Value {
    let mut claims = shop_claims(host);
    let now = shared::clock::now().unix_timestamp();
    claims["iat"] = now.into();
    claims["exp"] = (now + 600).into();
    claims
}

fn rsa_key(pem: &str) -> EncodingKey {
    EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_attack_suite() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let hub = TestHub::start("attacks").await;
    let attacker = hub.register("Attacker", PARTNER_A_PUB, PARTNER_A_KEY).await;
    let victim = hub.register("Victim", PARTNER_B_PUB, PARTNER_B_KEY).await;
    let marketplace = hub.register_marketplace("Market").await;
    let mut tally = Tally::default();

    let (status, _) = Caller {
        hub: &hub,
        ip: "198.51.100.1".into(),
    }
    .provision(
        &victim.token,
        &sign_rs512(PARTNER_B_KEY, &shop_claims("victim-shop.com"), 600),
    )
    .await;
    assert_eq!(status, 201);

    tally.add("forged signed payloads", jwt_attacks(&hub, &attacker).await);
    tally.add(
        "cross-partner access",
        cross_partner(&hub, &attacker, &victim, &marketplace.token).await,
    );
    tally.add(
        "oversized and malformed bodies",
        bodies(&hub, &attacker, &marketplace.token).await,
    );
    tally.add("hostile events", hostile_events(&hub).await);
    tally.add("throttling", throttling(&hub, &attacker).await);

    // No secret of the run in any log line.
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.lines().count() > 10, "the suite logged: {text:.500}");
    let private_key_body = |pem: &str| -> Vec<String> {
        pem.lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 20)
            .map(str::to_owned)
            .collect()
    };
    let mut secrets = vec![
        attacker.token.clone(),
        attacker.analytics_key.clone(),
        victim.token.clone(),
        victim.analytics_key.clone(),
        marketplace.token.clone(),
    ];
    secrets.extend(private_key_body(PARTNER_A_KEY));
    secrets.extend(private_key_body(PARTNER_B_KEY));
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret appears in the log: {secret:.12}…"
        );
    }
    hub.stop().await;
    let total: usize = tally.0.iter().map(|(_, n)| n).sum();
    for (section, cases) in &tally.0 {
        println!("attack suite: {section}: {cases} cases");
    }
    println!(
        "attack suite: {total} cases, {} secrets checked against {} log lines",
        secrets.len(),
        text.lines().count()
    );
}

/// Signed payloads that must not get past verification (partner A's token is right).
async fn jwt_attacks(hub: &TestHub, attacker: &TestPartner) -> usize {
    let caller = Caller {
        hub,
        ip: "198.51.100.10".into(),
    };
    let claims = fresh_claims("forged-shop.com");
    let own = rsa_key(PARTNER_A_KEY);
    let other = rsa_key(PARTNER_B_KEY);
    let now = shared::clock::now().unix_timestamp();
    let with_times = |iat: Option<i64>, exp: Option<i64>, nbf: Option<i64>| {
        let mut c = shop_claims("forged-shop.com");
        for (name, value) in [("iat", iat), ("exp", exp), ("nbf", nbf)] {
            if let Some(v) = value {
                c[name] = v.into();
            }
        }
        sign_raw(Header::new(Algorithm::RS512), PARTNER_A_KEY, &c)
    };
    let mut cases: Vec<(&str, String, &[&str])> = Vec::new();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let unsigned = format!(
            "{}.{}.",
            b64(&json!({"alg": alg, "typ": "JWT"})),
            b64(&claims)
        );
        cases.push(("alg none", unsigned, &["unsupported_algorithm"]));
        let padded = forge(json!({"alg": alg}), &claims, None);
        cases.push((
            "alg none with a signature",
            padded,
            &["unsupported_algorithm"],
        ));
    }
    for secret in [
        PARTNER_A_PUB.to_owned(),
        PARTNER_A_PUB.trim_end().to_owned(),
    ] {
        for alg in [Algorithm::HS256, Algorithm::HS512] {
            let key = EncodingKey::from_secret(secret.as_bytes());
            let jwt = jsonwebtoken::encode(&Header::new(alg), &claims, &key).unwrap();
            cases.push((
                "HMAC with the public key as secret",
                jwt,
                &["unsupported_algorithm"],
            ));
        }
    }
    for alg in [Algorithm::RS256, Algorithm::PS512] {
        cases.push((
            "another RSA algorithm",
            sign_raw(Header::new(alg), PARTNER_A_KEY, &claims),
            &["unsupported_algorithm"],
        ));
    }
    cases.push((
        "ES512",
        forge(json!({"alg": "ES512"}), &claims, None),
        &["unsupported_algorithm"],
    ));
    cases.push((
        "foreign kid, foreign key",
        forge(
            json!({"alg": "RS512", "kid": "key-9"}),
            &claims,
            Some((&other, Algorithm::RS512)),
        ),
        &["invalid_signature"],
    ));
    cases.push((
        "kid of the victim's key",
        forge(
            json!({"alg": "RS512", "kid": "key-1"}),
            &claims,
            Some((&other, Algorithm::RS512)),
        ),
        &["invalid_signature"],
    ));
    let injected_jwk = json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"});
    for header in [
        json!({"alg": "RS512", "jku": "https://attacker.example/jwks.json"}),
        json!({"alg": "RS512", "x5u": "https://attacker.example/cert.pem"}),
        json!({"alg": "RS512", "jwk": injected_jwk}),
    ] {
        cases.push((
            "header key injection",
            forge(header, &claims, Some((&other, Algorithm::RS512))),
            &["invalid_signature"],
        ));
    }
    cases.push((
        "expired",
        with_times(Some(now - 7200), Some(now - 3600), None),
        &["payload_expired"],
    ));
    cases.push((
        "no exp",
        with_times(Some(now), None, None),
        &["missing_expiry"],
    ));
    cases.push((
        "future nbf",
        with_times(Some(now), Some(now + 600), Some(now + 300)),
        &["payload_not_yet_valid"],
    ));
    cases.push((
        "future iat",
        with_times(Some(now + 600), Some(now + 900), None),
        &["payload_not_yet_valid"],
    ));
    cases.push((
        "exp = i64::MAX",
        with_times(None, Some(i64::MAX), None),
        &["payload_lifetime_too_long"],
    ));
    cases.push((
        "iat = i64::MIN",
        with_times(Some(i64::MIN), Some(now + 60), None),
        &["payload_lifetime_too_long"],
    ));
    cases.push((
        "iat = -2^62, exp = 2^62",
        with_times(Some(-(1 << 62)), Some(1 << 62), None),
        &["payload_lifetime_too_long"],
    ));
    cases.push((
        "exp before iat",
        with_times(Some(now), Some(now - 30), None),
        &["invalid_time_claim"],
    ));
    let good = forge(
        json!({"alg": "RS512", "typ": "JWT"}),
        &claims,
        Some((&own, Algorithm::RS512)),
    );
    let (head, signature) = good.rsplit_once('.').unwrap();
    cases.push((
        "truncated signature",
        format!("{head}.{}", &signature[..signature.len() - 8]),
        &["invalid_signature", "malformed_payload"],
    ));
    cases.push((
        "empty signature",
        format!("{head}."),
        &["invalid_signature", "malformed_payload"],
    ));
    cases.push((
        "flipped claims",
        format!(
            "{}.{}.{signature}",
            head.split('.').next().unwrap(),
            b64(&fresh_claims("other.com"))
        ),
        &["invalid_signature"],
    ));

    let before = hub.settled_table_keys().await;
    for (name, jwt, expected) in &cases {
        let (status, body) = caller.provision(&attacker.token, jwt).await;
        assert!(
            matches!(status, 400 | 401) && expected.contains(&code(&body)),
            "{name}: {status} {body}"
        );
        assert_eq!(body["error"]["field"], "payload", "{name}");
    }
    assert_eq!(
        hub.table_keys().await,
        before,
        "a refused payload wrote something"
    );
    // The genuine payload still works afterwards.
    let (status, _) = caller.provision(&attacker.token, &good).await;
    assert_eq!(status, 201);
    cases.len()
}

/// One partner's credentials against another's data, and credentials of one scheme
/// presented to another.
async fn cross_partner(
    hub: &TestHub,
    attacker: &TestPartner,
    victim: &TestPartner,
    marketplace_token: &str,
) -> usize {
    let caller = Caller {
        hub,
        ip: "198.51.100.20".into(),
    };
    let before = hub.settled_table_keys().await;
    let mut cases = 0;

    // The victim's shop, provisioned by the attacker with its own valid payload.
    let jwt = sign_rs512(PARTNER_A_KEY, &shop_claims("victim-shop.com"), 600);
    let (status, body) = caller.provision(&attacker.token, &jwt).await;
    assert_eq!((status, code(&body)), (409, "shop_taken"), "{body}");
    cases += 1;
    // The victim's token with the attacker's signature.
    let (status, body) = caller.provision(&victim.token, &jwt).await;
    assert_eq!((status, code(&body)), (401, "invalid_signature"), "{body}");
    cases += 1;

    // Analytics: the victim's customers are not the attacker's.
    let analytics = "/api/v0/partners/customers/{customer_id}/analytics";
    let path = "/api/v0/partners/customers/victim-customer/analytics?startDate=2026-01-01&endDate=2026-01-02";
    let (status, body, _) = caller
        .send(
            "GET",
            path,
            analytics,
            &[("x-rlv-analytics-key", &attacker.analytics_key)],
            None,
        )
        .await;
    assert_eq!((status, code(&body)), (404, "unknown_customer"), "{body}");
    cases += 1;

    // Each credential only opens its own door.
    let partner_as_bearer = format!("Bearer {}", attacker.token);
    let guessed_key = format!("ak_{}_guess", victim.id.as_uuid().simple());
    type Door<'a> = (&'a str, &'a str, &'a str, Vec<(&'a str, &'a str)>, &'a str);
    let wrong_doors: [Door; 6] = [
        (
            "POST",
            DOMAINS_PATH,
            DOMAINS_PATH,
            vec![("x-rlv-partner-token", marketplace_token)],
            "invalid_partner_token",
        ),
        (
            "POST",
            DOMAINS_PATH,
            DOMAINS_PATH,
            vec![("x-rlv-partner-token", &attacker.analytics_key)],
            "invalid_partner_token",
        ),
        (
            "POST",
            MARKETPLACE_EVENTS_PATH,
            MARKETPLACE_EVENTS_PATH,
            vec![("authorization", &partner_as_bearer)],
            "invalid_marketplace_key",
        ),
        (
            "GET",
            path,
            analytics,
            vec![("x-rlv-analytics-key", &attacker.token)],
            "invalid_analytics_key",
        ),
        (
            "GET",
            path,
            analytics,
            vec![("x-rlv-partner-token", &attacker.token)],
            "missing_analytics_key",
        ),
        (
            "GET",
            path,
            analytics,
            vec![("x-rlv-analytics-key", &guessed_key)],
            "invalid_analytics_key",
        ),
    ];
    for (method, path, template, headers, expected) in wrong_doors {
        let body = (method == "POST").then(|| "{}".to_owned());
        let (status, json, _) = caller.send(method, path, template, &headers, body).await;
        assert_eq!(
            (status, code(&json)),
            (401, expected),
            "{method} {path} {headers:?}"
        );
        cases += 1;
    }
    assert_eq!(hub.table_keys().await, before);
    cases
}

/// Bodies too large, fields too long, JSON that is not.
async fn bodies(hub: &TestHub, attacker: &TestPartner, marketplace_token: &str) -> usize {
    let caller = Caller {
        hub,
        ip: "198.51.100.30".into(),
    };
    let before = hub.settled_table_keys().await;
    let mut cases = 0;
    let token = [("x-rlv-partner-token", attacker.token.as_str())];
    let bearer = format!("Bearer {marketplace_token}");
    let market = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];

    let huge = format!("{{\"payload\": \"{}\"}}", "a".repeat(450 * 1024));
    for (path, headers) in [
        (DOMAINS_PATH, &token[..]),
        (MARKETPLACE_EVENTS_PATH, &market[..]),
    ] {
        let (status, body, _) = caller
            .send("POST", path, path, headers, Some(huge.clone()))
            .await;
        assert_eq!((status, code(&body)), (413, "body_too_large"), "{path}");
        cases += 1;
    }
    for (bad, expected) in [
        ("{\"payload\": ", "malformed_json"),
        ("", "malformed_json"),
        ("\"just a string\"", "invalid_body"),
        ("\u{0}\u{ff}", "malformed_json"),
    ] {
        let (status, body, _) = caller
            .send(
                "POST",
                DOMAINS_PATH,
                DOMAINS_PATH,
                &token,
                Some(bad.to_owned()),
            )
            .await;
        assert_eq!(code(&body), expected, "{bad:?}: {status} {body}");
        assert!(matches!(status, 400 | 422));
        let (status, body, _) = caller
            .send(
                "POST",
                MARKETPLACE_EVENTS_PATH,
                MARKETPLACE_EVENTS_PATH,
                &market,
                Some(bad.to_owned()),
            )
            .await;
        assert!(matches!(status, 400 | 422), "{bad:?}: {status} {body}");
        cases += 2;
    }
    // Fields beyond their documented length are refused by name.
    for (field, value) in [
        ("name", "n".repeat(201)),
        ("url", format!("{}.com", "a".repeat(300))),
        ("contactEmail", format!("{}@x.com", "e".repeat(300))),
    ] {
        let mut claims = fresh_claims("long-fields.com");
        claims[field] = value.into();
        let jwt = sign_raw(Header::new(Algorithm::RS512), PARTNER_A_KEY, &claims);
        let (status, body) = caller.provision(&attacker.token, &jwt).await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (422, Some(field)),
            "{body}"
        );
        cases += 1;
    }
    for (currency, expected) in [("XXX", 422), ("XTS", 422)] {
        let mut claims = fresh_claims("currency.com");
        claims["currencyCode"] = currency.into();
        let jwt = sign_raw(Header::new(Algorithm::RS512), PARTNER_A_KEY, &claims);
        let (status, body) = caller.provision(&attacker.token, &jwt).await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (expected, Some("currencyCode")),
            "{body}"
        );
        cases += 1;
    }
    let mut create = sample("marketplace/user.create.json");
    create["data"]["user"]["firstName"] = "f".repeat(10_000).into();
    let (status, body, _) = caller
        .send(
            "POST",
            MARKETPLACE_EVENTS_PATH,
            MARKETPLACE_EVENTS_PATH,
            &market,
            Some(create.to_string()),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("data.user.firstName")),
        "{body}"
    );
    let mut purchase = sample("marketplace/product.purchase.json");
    purchase["data"]["product"]["name"] = "p".repeat(30_000).into();
    let (status, body, _) = caller
        .send(
            "POST",
            MARKETPLACE_EVENTS_PATH,
            MARKETPLACE_EVENTS_PATH,
            &market,
            Some(purchase.to_string()),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("data.product.name")),
        "{body}"
    );
    cases += 2;
    // A bad date range is named, even at the edge of time.
    let analytics = "/api/v0/partners/customers/{customer_id}/analytics";
    for (start, end, field) in [
        ("9999-12-31T23:59:59-23:59", "9999-12-31", "startDate"),
        ("2026-01-01", "+275760-09-13", "endDate"),
        ("0000-01-01", "2026-01-01", "startDate"),
    ] {
        let path = format!(
            "/api/v0/partners/customers/c/analytics?startDate={}&endDate={end}",
            start.replace('+', "%2B")
        );
        let (status, body, _) = caller
            .send(
                "GET",
                &path,
                analytics,
                &[("x-rlv-analytics-key", &attacker.analytics_key)],
                None,
            )
            .await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (422, Some(field)),
            "{path}: {body}"
        );
        cases += 1;
    }
    // The last days of the hub's time range are a range like any other (no panic, no
    // 5xx): the customer is unknown, so 404.
    for (start, end) in [
        ("9999-12-30", "9999-12-31"),
        ("9999-12-31", "9999-12-31T23:59:59Z"),
    ] {
        let path =
            format!("/api/v0/partners/customers/c/analytics?startDate={start}&endDate={end}");
        let (status, body, _) = caller
            .send(
                "GET",
                &path,
                analytics,
                &[("x-rlv-analytics-key", &attacker.analytics_key)],
                None,
            )
            .await;
        assert_eq!(status, 404, "{path}: {body}");
        cases += 1;
    }
    assert_eq!(hub.table_keys().await, before);
    cases
}

/// Events that could never be processed are parked with the reason, and the rule goes
/// on processing the next ones.
async fn hostile_events(hub: &TestHub) -> usize {
    let (partner, source, _) = hub
        .event_partner(
            "hostile",
            PARTNER_A_PUB,
            PARTNER_A_KEY,
            &[hub_emulator::ACCOUNT],
        )
        .await;
    let parked_before = hub.stand_in.hub.dead_letters.list().await.unwrap().len();
    let mut create = sample("subscriptions/create-subscription.json")["detail"].clone();
    create["id"] = "year-ten-thousand".into();
    hub.put_partner_event(&source, "Create Subscription", &create)
        .await;
    let cancellations = [
        json!({"id": "year-ten-thousand", "effective_date": "9999-12-31T23:59:59-23:59"}),
        json!({"id": "year-ten-thousand", "effective_date": "+275760-09-13T00:00:00Z"}),
        json!({"id": "year-ten-thousand", "effective_date": "x".repeat(5000)}),
    ];
    for detail in &cancellations {
        hub.put_partner_event(&source, "Cancellation", detail).await;
    }
    let mut after = create.clone();
    after["id"] = "after-the-attack".into();
    hub.put_partner_event(&source, "Create Subscription", &after)
        .await;
    let account = shared::domain::AccountId::for_external(
        partner.id,
        &shared::domain::ExternalId::parse("after-the-attack").unwrap(),
    );
    let parked = hub_tests::eventually(Duration::from_secs(60), || async {
        let parked = hub.stand_in.hub.dead_letters.list().await.unwrap();
        let processed = hub
            .stand_in
            .hub
            .subscriptions
            .plan(account)
            .await
            .unwrap()
            .is_some();
        (parked.len() >= parked_before + cancellations.len() && processed).then_some(parked)
    })
    .await
    .expect("the hostile events parked and the next one processed");
    let reasons: Vec<&str> = parked.iter().map(|d| d.reason.as_str()).collect();
    assert!(
        reasons
            .iter()
            .filter(|r| r.contains("effective_date"))
            .count()
            >= cancellations.len(),
        "{reasons:?}"
    );
    cancellations.len()
}

/// Failed authentications per source IP and bad signatures per partner are limited.
async fn throttling(hub: &TestHub, attacker: &TestPartner) -> usize {
    let limits = hub.stand_in.hub.throttle.limits();
    let guesser = Caller {
        hub,
        ip: "203.0.113.7".into(),
    };
    let mut cases = 0;
    for i in 0..limits.auth_failures_per_ip {
        let (status, body) = guesser.provision(&format!("pt_guess{i}"), "x.y.z").await;
        assert_eq!(
            (status, code(&body)),
            (401, "invalid_partner_token"),
            "attempt {i}"
        );
        cases += 1;
    }
    let (status, body) = guesser.provision("pt_one-too-many", "x.y.z").await;
    assert_eq!((status, code(&body)), (429, "too_many_failures"), "{body}");
    // Blocked means blocked: even the right token, and on another route.
    let jwt = sign_rs512(PARTNER_A_KEY, &fresh_claims("throttled.com"), 600);
    let (status, _) = guesser.provision(&attacker.token, &jwt).await;
    assert_eq!(status, 429);
    let (status, _, headers) = guesser
        .send(
            "GET",
            "/api/v0/partners/customers/c/analytics?startDate=2026-01-01&endDate=2026-01-02",
            "/api/v0/partners/customers/{customer_id}/analytics",
            &[("x-rlv-analytics-key", "ak_nope")],
            None,
        )
        .await;
    assert_eq!(status, 429);
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=limits.window.as_secs()).contains(&wait), "{wait}");
    // Another address is not affected.
    let (status, _) = Caller {
        hub,
        ip: "203.0.113.8".into(),
    }
    .provision(&attacker.token, &jwt)
    .await;
    assert_eq!(status, 201);
    cases += 4;

    // Bad signatures with a partner's leaked token, from many addresses.
    let victim = hub.register("Leaked", PARTNER_B_PUB, PARTNER_B_KEY).await;
    let forged = sign_rs512(PARTNER_A_KEY, &fresh_claims("forged.com"), 600);
    for i in 0..limits.bad_signatures_per_partner {
        let caller = Caller {
            hub,
            ip: format!("192.0.2.{}", i % 250),
        };
        let (status, body) = caller.provision(&victim.token, &forged).await;
        assert_eq!(
            (status, code(&body)),
            (401, "invalid_signature"),
            "attempt {i}"
        );
        cases += 1;
    }
    let caller = Caller {
        hub,
        ip: "192.0.2.251".into(),
    };
    let (status, body) = caller.provision(&victim.token, &forged).await;
    assert_eq!((status, code(&body)), (429, "too_many_failures"), "{body}");
    // Strangers filled the victim's counter, yet its correctly signed payloads go
    // through: only the private key makes a good signature (the token is in every SSO
    // link a shop user sees).
    let genuine = sign_rs512(PARTNER_B_KEY, &fresh_claims("still-served.com"), 600);
    let (status, body) = Caller {
        hub,
        ip: "198.51.100.9".into(),
    }
    .provision(&victim.token, &genuine)
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = caller.provision(&victim.token, &forged).await;
    assert_eq!((status, code(&body)), (429, "too_many_failures"), "{body}");
    cases + 3
}
