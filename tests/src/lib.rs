//! Helpers for the end-to-end tests: start the local stand-in, sign payloads the way
//! the contract's Node.js example does, call the hub over HTTP.

pub mod browser;

use std::{path::PathBuf, time::Duration};

use hub_local::{Options, StandIn};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

pub const PARTNER_A_KEY: &str = include_str!("../fixtures/keys/partner-a.key");
pub const PARTNER_A_PUB: &str = include_str!("../fixtures/keys/partner-a.key.pub");
pub const PARTNER_B_KEY: &str = include_str!("../fixtures/keys/partner-b.key");
pub const PARTNER_B_PUB: &str = include_str!("../fixtures/keys/partner-b.key.pub");

pub const DOMAINS_PATH: &str = "/api/v0/partners/domains";
pub const MARKETPLACE_EVENTS_PATH: &str = "/etvas-events";

/// The repository's `events/` directory.
pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// A sample from `events/`, parsed.
pub fn sample(path: &str) -> Value {
    let file = events_dir().join(path);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// `jwt.sign(data, key, { algorithm: 'RS512', expiresIn })`: adds `iat` and `exp`, at
/// this process's time (a stand-in's: [`TestHub::sign_rs512`]).
pub fn sign_rs512(private_pem: &str, claims: &Value, expires_in: i64) -> String {
    sign_rs512_at(private_pem, claims, expires_in, shared::clock::now())
}

/// [`sign_rs512`] at `now`.
pub fn sign_rs512_at(
    private_pem: &str,
    claims: &Value,
    expires_in: i64,
    now: time::OffsetDateTime,
) -> String {
    let mut claims = claims.clone();
    let now = now.unix_timestamp();
    claims["iat"] = now.into();
    claims["exp"] = (now + expires_in).into();
    sign_raw(Header::new(Algorithm::RS512), private_pem, &claims)
}

/// Signs exactly the given claims with the given header.
pub fn sign_raw(header: Header, private_pem: &str, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(private_pem.as_bytes()).expect("test key");
    jsonwebtoken::encode(&header, claims, &key).expect("signing")
}

/// The contract's "object to sign" for a shop, from `events/`, with another host.
pub fn shop_claims(host: &str) -> Value {
    let mut claims = sample("partner-api/provision-domain.claims.json");
    claims["url"] = host.into();
    claims
}

/// A partner registered with the hub for a test.
#[derive(Debug, Clone)]
pub struct TestPartner {
    pub id: shared::domain::PartnerId,
    pub token: String,
    /// Sent as `x-rlv-analytics-key` to read analytics.
    pub analytics_key: String,
    pub private_key: &'static str,
}

/// A marketplace registered with the hub for a test (the `/etvas-events` caller).
#[derive(Debug, Clone)]
pub struct TestMarketplace {
    pub id: shared::domain::PartnerId,
    pub token: String,
}

pub struct TestHub {
    pub stand_in: StandIn,
    pub http: reqwest::Client,
}

impl TestHub {
    /// A stand-in of its own (own resources, free port) on the process's emulator.
    pub async fn start(label: &str) -> Self {
        Self::start_with(label, &[]).await
    }

    /// A stand-in deploying `template` (e.g. a policy without an action) instead of the
    /// project's.
    pub async fn start_with_template(label: &str, template: &str) -> Self {
        Self::start_options(label, &[], Some(template.to_owned())).await
    }

    /// A stand-in deployed with template parameters.
    pub async fn start_with(label: &str, parameters: &[(&str, &str)]) -> Self {
        Self::start_options(label, parameters, None).await
    }

    async fn start_options(
        label: &str,
        parameters: &[(&str, &str)],
        template_text: Option<String>,
    ) -> Self {
        let prefix = format!(
            "{label}-{}",
            shared::secrets::random_hex16().get(..8).unwrap_or("x")
        );
        let emulator = hub_local::start_emulator(true).await.expect("emulator");
        let mut options = Options::for_tests(&prefix);
        options.parameters = parameters
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        options.template_text = template_text;
        let stand_in = hub_local::start(options, emulator).await.expect("stand-in");
        Self {
            stand_in,
            http: reqwest::Client::new(),
        }
    }

    /// The stand-in's "now" (what `GET /_local/clock` answers).
    pub fn now(&self) -> time::OffsetDateTime {
        self.stand_in.clock.clock.now()
    }

    /// Signs as the contract's example does, at the stand-in's "now": a partner's clock
    /// agrees with the hub's.
    pub fn sign_rs512(&self, private_pem: &str, claims: &Value, expires_in: i64) -> String {
        sign_rs512_at(private_pem, claims, expires_in, self.now())
    }

    /// Moves the stand-in's clock (`POST /_local/clock`), as a test would over HTTP; the
    /// answer lists the runs fired on the way.
    pub async fn advance_clock(&self, by: &str) -> Value {
        let response = self
            .http
            .post(self.url("/_local/clock"))
            .json(&serde_json::json!({ "advance": by }))
            .send()
            .await
            .expect("the stand-in answers");
        assert_eq!(response.status(), 200, "advancing the clock by {by}");
        response.json().await.expect("JSON")
    }

    /// GETs a stand-in path and answers its JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("the stand-in answers")
            .json()
            .await
            .expect("JSON")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.stand_in.base_url)
    }

    pub async fn register(
        &self,
        name: &str,
        public_pem: &str,
        private_pem: &'static str,
    ) -> TestPartner {
        let reg = self
            .stand_in
            .hub
            .partners
            .register(name, public_pem, None)
            .await
            .expect("register");
        let analytics_key = self
            .stand_in
            .hub
            .partners
            .issue_analytics_key(reg.partner_id, None)
            .await
            .expect("analytics key");
        TestPartner {
            id: reg.partner_id,
            token: reg.partner_token,
            analytics_key,
            private_key: private_pem,
        }
    }

    /// POSTs a body to the provisioning route with the contract's own headers.
    pub async fn post_domains(&self, token: Option<&str>, body: String) -> (u16, Value) {
        let mut request = self
            .http
            .post(self.url(DOMAINS_PATH))
            .header("content-type", "application-json")
            .body(body);
        if let Some(token) = token {
            request = request.header("x-rlv-partner-token", token);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("non-JSON response {status}: {text}"));
        assert_documented("POST", DOMAINS_PATH, status, Some(&json));
        (status, json)
    }

    /// Provisions a shop as `partner` with a payload signed like the contract's example.
    pub async fn provision(&self, partner: &TestPartner, claims: &Value) -> (u16, Value) {
        let jwt = self.sign_rs512(partner.private_key, claims, 3600);
        self.post_domains(
            Some(&partner.token),
            serde_json::json!({ "payload": jwt }).to_string(),
        )
        .await
    }

    /// Calls a signed-payload route as `partner` (`{"payload": <RS512 JWT of claims>}`),
    /// with the contract samples' `content-type: application-json`.
    pub async fn signed(
        &self,
        method: &str,
        path: &str,
        partner: &TestPartner,
        claims: &Value,
    ) -> reqwest::Response {
        let jwt = self.sign_rs512(partner.private_key, claims, 600);
        self.http
            .request(method.parse().expect("an HTTP method"), self.url(path))
            .header("x-rlv-partner-token", &partner.token)
            .header("content-type", "application-json")
            .body(serde_json::json!({ "payload": jwt }).to_string())
            .send()
            .await
            .expect("the hub answers")
    }

    /// Confirms plans for a shop (contract step 3) for 30 days from now.
    pub async fn confirm_plans(&self, partner: &TestPartner, shop: &str, plan_ids: &[u64]) {
        let now = self.now();
        let claims = serde_json::json!({
            "shop": shop,
            "start": shared::clock::rfc3339_millis(now),
            "end": shared::clock::rfc3339_millis(now + time::Duration::days(30)),
            "subscriptionIds": plan_ids,
        });
        let response = self
            .signed(
                "POST",
                "/api/v0/partners/domains/subscriptions/confirm",
                partner,
                &claims,
            )
            .await;
        let status = response.status().as_u16();
        assert_eq!(status, 200, "{}", response.text().await.unwrap_or_default());
    }

    /// A partner whose EventBridge source (`partner.<name>`) is bound to `accounts`,
    /// with a recorded bus of its own: (partner, source, bus ARN).
    pub async fn event_partner(
        &self,
        name: &str,
        public: &str,
        private: &'static str,
        accounts: &[&str],
    ) -> (TestPartner, String, String) {
        let partner = self.register(name, public, private).await;
        let arn = self.stand_in.partner_buses.create(name).await.unwrap();
        let source = format!("partner.{name}");
        let accounts: Vec<shared::domain::AwsAccountId> = accounts
            .iter()
            .map(|a| shared::domain::AwsAccountId::parse(a).unwrap())
            .collect();
        self.stand_in
            .hub
            .set_partner_events(partner.id, &source, &arn, &accounts)
            .await
            .unwrap();
        (partner, source, arn)
    }

    /// [`Self::table_keys`] once the hub is quiet (two reads 300 ms apart agree): what
    /// earlier accepted calls set off (timelines, outbox) has landed.
    pub async fn settled_table_keys(&self) -> std::collections::BTreeSet<String> {
        let mut last = self.table_keys().await;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = self.table_keys().await;
            if now == last {
                return now;
            }
            last = now;
        }
        panic!("the hub's table never settled");
    }

    /// Every item of the hub's table as `PK SK`, failure counters left out (they are
    /// written on failures by design): to show a refused request wrote nothing.
    pub async fn table_keys(&self) -> std::collections::BTreeSet<String> {
        let items = self.stand_in.hub.table.scan_all().await.expect("scan");
        items
            .iter()
            .map(|item| {
                let key = |k: &str| {
                    item.get(k)
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default()
                };
                (key("PK"), key("SK"))
            })
            .filter(|(pk, _)| !pk.starts_with("THROTTLE#"))
            .map(|(pk, sk)| format!("{pk} {sk}"))
            .collect()
    }

    pub async fn register_marketplace(&self, name: &str) -> TestMarketplace {
        let reg = self
            .stand_in
            .hub
            .partners
            .register_marketplace(name, None)
            .await
            .expect("register marketplace");
        TestMarketplace {
            id: reg.partner_id,
            token: reg.partner_token,
        }
    }

    /// POSTs a body to the marketplace callback with `Authorization: Bearer <token>`.
    pub async fn post_marketplace(&self, token: Option<&str>, body: String) -> (u16, Value) {
        let mut request = self
            .http
            .post(self.url(MARKETPLACE_EVENTS_PATH))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("non-JSON response {status}: {text}"));
        assert_documented("POST", MARKETPLACE_EVENTS_PATH, status, Some(&json));
        (status, json)
    }

    /// Puts an event on the hub's ingress bus, as a partner's own rule would.
    pub async fn put_partner_event(&self, source: &str, detail_type: &str, detail: &Value) {
        let events = aws_sdk_eventbridge::Client::new(&self.stand_in.sdk);
        let bus = self.stand_in.hub.config.ingress_bus_name.as_deref();
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(bus.expect("the template's ingress bus"))
            .source(source)
            .detail_type(detail_type)
            .detail(detail.to_string())
            .build();
        let out = events
            .put_events()
            .entries(entry)
            .send()
            .await
            .expect("PutEvents");
        assert_eq!(out.failed_entry_count, 0);
    }

    /// Fires a schedule of the template now.
    /// Answers the stand-in's recorder gives to the next outbound calls
    /// (`POST /_local/outbound/script`), e.g. `[{"host": "x", "status": 503}]`.
    pub async fn script_outbound(&self, answers: Value) {
        let response = self
            .http
            .post(self.url("/_local/outbound/script"))
            .json(&answers)
            .send()
            .await
            .expect("script");
        assert!(response.status().is_success());
    }

    /// The outbound calls the recorder received for `host`, oldest first.
    pub async fn outbound_calls(&self, host: &str) -> Vec<Value> {
        let body: Value = self
            .http
            .get(self.url("/_local/outbound"))
            .query(&[("host", host)])
            .send()
            .await
            .expect("calls")
            .json()
            .await
            .expect("calls as JSON");
        body["calls"].as_array().cloned().unwrap_or_default()
    }

    /// Every outbox item in the table: one per committed change that had events.
    pub async fn outbox_items(&self) -> Vec<shared::events::OutboxRecord> {
        self.stand_in
            .hub
            .table
            .query_all(&shared::store::Query::due(
                shared::store::keys::Due::Outbox,
                shared::clock::sortable(shared::clock::now() + Duration::from_secs(60)),
            ))
            .await
            .expect("outbox items")
    }

    pub async fn fire_schedule(&self, name: &str) -> Value {
        let response = self
            .http
            .post(self.url(&format!("/_local/schedules/{name}")))
            .send()
            .await
            .expect("fire");
        assert!(
            response.status().is_success(),
            "schedule {name}: {}",
            response.status()
        );
        response.json().await.expect("schedule result")
    }

    /// Checks every event on the account's timeline against its schema in
    /// `events/hub/` (the timeline holds every hub event about the account); returns
    /// the event types in order.
    pub async fn assert_timeline_matches_schemas(
        &self,
        account: shared::domain::AccountId,
    ) -> Vec<String> {
        let entries = self
            .stand_in
            .hub
            .timeline
            .list(account)
            .await
            .expect("timeline");
        for entry in &entries {
            let data: Value = serde_json::from_str(&entry.data).expect("timeline data");
            let occurred_at = time::PrimitiveDateTime::parse(
                entry.occurred_at.trim_end_matches('Z'),
                &time::format_description::well_known::Iso8601::DEFAULT,
            )
            .expect("sortable timestamp")
            .assume_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .expect("RFC 3339");
            let detail = serde_json::json!({
                "eventId": entry.event_id,
                "occurredAt": occurred_at,
                "accountId": account,
                "type": entry.event_type,
                "data": data,
            });
            assert_matches_schema(&entry.event_type, &detail);
        }
        entries.into_iter().map(|e| e.event_type).collect()
    }

    /// Partners' webhook deliveries as `outbound-deliveries` sends them: through the
    /// recorder, signed (bearer shop secret key, Standard Webhooks headers).
    pub fn partner_deliveries(&self) -> shared::outbound::delivery::Deliveries {
        let hub = &self.stand_in.hub;
        let config = shared::outbound::OutboundConfig::from_config(&hub.config).expect("config");
        shared::outbound::delivery::Deliveries::new(
            hub.uow.clone(),
            shared::outbound::OutboundClient::new(config).expect("client"),
        )
        .with_signer(shared::partner_webhooks::WebhookSigner::new(
            hub.table.clone(),
            hub.accounts.clone(),
        ))
    }

    /// Publishes `plan` beside the catalog's plans.
    pub async fn add_plan(&self, plan: shared::plans::PlanSpec) {
        let plans = &self.stand_in.hub.plans;
        let mut catalog: Vec<shared::plans::PlanSpec> = plans
            .list()
            .await
            .expect("plans")
            .into_iter()
            .map(|p| p.spec)
            .collect();
        catalog.push(plan);
        plans.put(&catalog).await.expect("catalog published");
    }

    /// Fails naming every route and event handler this stand-in served whose warm
    /// round trips (median of its successful invocations after its function's first)
    /// are over the goal (README, "AWS round trips"; `hub-bench round-trips` sums up
    /// every test's).
    pub fn assert_round_trips_within_goals(&self) {
        let rows = hub_local::round_trips::summarise(&self.stand_in.round_trips.samples());
        let over: Vec<String> = rows
            .iter()
            .filter(|row| row.meets_goal() == Some(false))
            .map(|row| {
                format!(
                    "{} ({}): warm {:?} > {:?}, calls {:?}",
                    row.operation, row.function, row.warm_median, row.goal, row.typical_calls
                )
            })
            .collect();
        assert!(over.is_empty(), "over their round-trip goal: {over:#?}");
        self.assert_nothing_denied();
    }

    /// No AWS call of the test was refused by the template's IAM policies.
    pub fn assert_nothing_denied(&self) {
        let denied = self.stand_in.authorizations.denied();
        assert!(denied.is_empty(), "denied by IAM: {denied:#?}");
    }

    pub async fn stop(self) {
        self.stand_in.stop().await;
    }
}

/// `infra/openapi.yaml` as JSON.
pub fn openapi() -> &'static Value {
    static DOCUMENT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../infra/openapi.yaml");
        let text = std::fs::read_to_string(&path).expect("infra/openapi.yaml");
        yaml_serde::from_str(&text).expect("infra/openapi.yaml is YAML")
    })
}

/// Checks a response against `infra/openapi.yaml`: the route and status are documented,
/// and a JSON body matches the documented schema.
pub fn assert_documented(method: &str, path: &str, status: u16, body: Option<&Value>) {
    let document = openapi();
    let operation = &document["paths"][path][method.to_ascii_lowercase()];
    assert!(
        operation.is_object(),
        "{method} {path} is not in infra/openapi.yaml"
    );
    let response = &operation["responses"][status.to_string()];
    assert!(
        response.is_object(),
        "{method} {path} answered {status}, which infra/openapi.yaml does not document"
    );
    let response = match response["$ref"].as_str() {
        Some(reference) => {
            let name = reference.rsplit('/').next().unwrap_or_default();
            &document["components"]["responses"][name]
        }
        None => response,
    };
    let Some(schema) = response["content"]["application/json"].get("schema") else {
        return;
    };
    let body = body.unwrap_or_else(|| panic!("{method} {path} {status}: no JSON body"));
    // The components travel with the schema so that `#/components/...` resolves.
    let wrapped = serde_json::json!({
        "components": document["components"],
        "allOf": [schema],
    });
    let validator = jsonschema::validator_for(&wrapped).expect("a valid response schema");
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status} does not match infra/openapi.yaml: {errors:?}\n{body}"
    );
}

/// Validates a hub event's detail against `events/hub/<type>.schema.json`.
pub fn assert_matches_schema(detail_type: &str, detail: &Value) {
    let schema = sample(&format!("hub/{detail_type}.schema.json"));
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(detail)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{detail_type} does not match its schema: {errors:?}\n{detail}"
    );
}

/// A single-use SSO link into the admin page (contract step 4), valid `lifetime` seconds.
pub fn sso_link(
    hub: &TestHub,
    partner: &TestPartner,
    shop: &str,
    email: &str,
    lifetime: i64,
) -> String {
    let claims = serde_json::json!({
        "shop": shop,
        "user": {"firstName": "Ana", "lastName": "Ionescu", "email": email}
    });
    let jwt = hub.sign_rs512(partner.private_key, &claims, lifetime);
    hub.url(&format!(
        "/api/admin/users/partnerSignin/{}/{jwt}",
        partner.token
    ))
}

/// The confirmation link in the newest welcome email sent to `to`, as recorded by the
/// stand-in (`GET /_local/emails`).
pub async fn confirm_link(hub: &TestHub, to: &str) -> String {
    let emails: Value = hub
        .http
        .get(hub.url("/_local/emails"))
        .send()
        .await
        .expect("/_local/emails")
        .json()
        .await
        .expect("emails as JSON");
    emails
        .as_array()
        .into_iter()
        .flatten()
        .rev()
        .filter(|e| {
            e["to"][0]
                .as_str()
                .is_some_and(|t| t.eq_ignore_ascii_case(to))
        })
        .filter_map(|e| e["body"].as_str())
        .flat_map(str::lines)
        .find(|line| line.contains("/admin/confirm/"))
        .map(|line| line.trim().to_owned())
        .unwrap_or_else(|| panic!("no welcome email to {to} in {emails}"))
}

/// Polls `check` until it returns `Some`, for at most `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A plan for tests: `tiers` (name, threshold, price, unit) and usage prices (unit, price).
pub fn plan(
    id: u32,
    name: &str,
    tiers: &[(&str, u64, &str, &str)],
    dynamic: &[(&str, &str)],
) -> shared::plans::PlanSpec {
    let price = |p: &str| shared::domain::Price::parse(p).expect("a price");
    shared::plans::PlanSpec {
        id,
        name: name.into(),
        summary: format!("{name}."),
        description: String::new(),
        allowed_actions: vec![],
        tiered_pricings: tiers
            .iter()
            .map(|(name, threshold, p, unit)| shared::plans::TieredPricing {
                name: (*name).into(),
                threshold: *threshold,
                price: price(p),
                unit: (*unit).into(),
            })
            .collect(),
        dynamic_pricings: dynamic
            .iter()
            .map(|(unit, p)| shared::plans::DynamicPricing {
                unit: (*unit).into(),
                unit_price: price(p),
            })
            .collect(),
        kind: "modular".into(),
        trial_days: 0,
    }
}

/// Checks a recorded partner webhook: `authorization: Bearer <shop secret key>` and a
/// Standard Webhooks signature by `signing_secret`, and by no other secret.
pub fn assert_signed_webhook(call: &Value, shop_secret_key: &str, signing_secret: &str) {
    assert_eq!(
        call["headers"]["authorization"],
        format!("Bearer {shop_secret_key}"),
        "{call}"
    );
    let body = call["body"].as_str().expect("a body");
    // Judged at the hub's time when the call arrived (the stand-in's clock may be ahead
    // of this process's).
    let now = call["received_at"]
        .as_str()
        .and_then(shared::clock::parse_rfc3339)
        .expect("the recorder notes when a call arrived")
        .unix_timestamp();
    let verify = |secret: &str| {
        shared::webhooks::verify(
            secret,
            call["headers"]["webhook-id"].as_str(),
            call["headers"]["webhook-timestamp"].as_str(),
            call["headers"]["webhook-signature"].as_str(),
            body.as_bytes(),
            now,
        )
    };
    verify(signing_secret).expect("signed with the partner's secret");
    assert!(verify(&shared::webhooks::new_secret()).is_err());
}

/// `hub-admin`, built as `cargo run -p hub-admin` would build it (cached after the first).
pub fn hub_admin_binary() -> PathBuf {
    let root = hub_emulator::project_root();
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "hub-admin"])
        .current_dir(&root)
        .status()
        .expect("cargo build");
    assert!(status.success(), "hub-admin builds");
    // target/debug/deps/<test>-<hash> -> target/debug/hub-admin
    let exe = std::env::current_exe().expect("the test's path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target/debug")
        .join("hub-admin")
}
