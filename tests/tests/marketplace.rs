//! The marketplace callback end to end: the test plays a marketplace against the local
//! stand-in, with a consistent sequence built from the contract's samples in
//! `events/marketplace/` (fresh event ids, one user, the hub's partnerIds echoed back).

use std::time::Duration;

use hub_tests::{TestHub, TestMarketplace, eventually, sample};
use serde_json::{Value, json};
use shared::{
    domain::{AccountId, ExternalId},
    domain::{
        SubscriptionStatus,
        subscription::{Subscription, Terms},
    },
    marketplace::{CustomerProfile, Marketplaces},
    store::{LedgerEntry, keys},
};

fn fresh_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn marketplaces(hub: &TestHub) -> Marketplaces {
    hub.stand_in.hub.marketplaces.clone()
}

/// A marketplace subscription's price, price type and interval.
fn price(sub: &Subscription) -> (&str, &str, Option<&str>) {
    match &sub.terms {
        Terms::Product {
            price,
            price_type,
            price_interval,
            ..
        } => (price.as_str(), price_type, price_interval.as_deref()),
        other => panic!("not a product: {other:?}"),
    }
}

/// The marketplace's side of the conversation: its user, product and the hub's ids.
struct Player {
    user_id: String,
    product_id: String,
    user_partner_id: Option<String>,
    product_partner_id: Option<String>,
}

impl Player {
    fn new() -> Self {
        Self {
            user_id: fresh_id(),
            product_id: fresh_id(),
            user_partner_id: None,
            product_partner_id: None,
        }
    }

    /// The contract's sample of `event_type`, made consistent: a fresh event id, this
    /// player's user and product, the hub's partnerIds as they were returned.
    fn request(&self, event_type: &str) -> Value {
        let mut body = sample(&format!("marketplace/{event_type}.json"));
        body["event"]["id"] = fresh_id().into();
        body["user"]["id"] = self.user_id.clone().into();
        body["user"]["partnerId"] = self.user_partner_id.clone().into();
        body["user"]["auth"]["token"] = fresh_id().into();
        if body["data"]["product"].is_object() {
            body["data"]["product"]["id"] = self.product_id.clone().into();
            if event_type != "product.purchase" {
                body["data"]["product"]["partnerId"] = self.product_partner_id.clone().into();
            }
        }
        body
    }

    /// The contract's sample response of `event_type`, with this conversation's ids.
    fn expected(&self, event_type: &str, request: &Value) -> Value {
        let mut body = sample(&format!("marketplace/responses/{event_type}.json"));
        body["event"]["id"] = request["event"]["id"].clone();
        let user = json!({"id": self.user_id, "partnerId": self.user_partner_id});
        if event_type.starts_with("product.") {
            body["user"] = user;
            body["data"]["product"] =
                json!({"id": self.product_id, "partnerId": self.product_partner_id});
        } else {
            body["data"]["user"] = user;
        }
        body
    }
}

/// Everything the hub keeps about the player's user.
async fn snapshot(
    hub: &TestHub,
    account: AccountId,
) -> (
    Option<shared::accounts::Account>,
    Option<CustomerProfile>,
    Vec<Subscription>,
) {
    let m = marketplaces(hub);
    (
        hub.stand_in.hub.accounts.get(account).await.unwrap(),
        m.profile(account).await.unwrap(),
        m.subscriptions(account).await.unwrap(),
    )
}

async fn timeline_len(hub: &TestHub, account: AccountId) -> usize {
    hub.stand_in.hub.timeline.list(account).await.unwrap().len()
}

async fn send(hub: &TestHub, m: &TestMarketplace, body: &Value) -> (u16, Value) {
    hub.post_marketplace(Some(&m.token), body.to_string()).await
}

/// Sends the player's next event of `event_type` and checks the response body.
async fn play(
    hub: &TestHub,
    market: &TestMarketplace,
    player: &Player,
    event_type: &str,
    exchanges: &mut Vec<(Value, Value)>,
    tweak: impl Fn(&mut Value),
) {
    let mut request = player.request(event_type);
    tweak(&mut request);
    let (status, response) = send(hub, market, &request).await;
    assert_eq!(status, 200, "{event_type}: {response}");
    assert_eq!(
        response,
        player.expected(event_type, &request),
        "{event_type}"
    );
    exchanges.push((request, response));
}

#[tokio::test(flavor = "multi_thread")]
async fn plays_every_event_type_then_replays_change_nothing() {
    let hub = TestHub::start("marketplace").await;
    let market = hub.register_marketplace("Etvas").await;
    let mut player = Player::new();
    let account = AccountId::for_external(market.id, &ExternalId::parse(&player.user_id).unwrap());
    let mut exchanges: Vec<(Value, Value)> = Vec::new();

    // user.create: the hub returns its user id, echoed as user.partnerId from now on.
    let request = player.request("user.create");
    let (status, response) = send(&hub, &market, &request).await;
    assert_eq!(status, 200, "{response}");
    let partner_id = response["data"]["user"]["partnerId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        partner_id.starts_with("u-") && partner_id.len() == 34,
        "{partner_id}"
    );
    player.user_partner_id = Some(partner_id);
    assert_eq!(response, player.expected("user.create", &request));
    exchanges.push((request, response));

    // product.purchase: the hub returns its product id.
    let request = player.request("product.purchase");
    let (status, response) = send(&hub, &market, &request).await;
    assert_eq!(status, 200, "{response}");
    let product_partner_id = response["data"]["product"]["partnerId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(product_partner_id.starts_with("p-") && product_partner_id.len() == 34);
    player.product_partner_id = Some(product_partner_id);
    assert_eq!(response, player.expected("product.purchase", &request));
    exchanges.push((request, response));
    let (account_record, profile, subs) = snapshot(&hub, account).await;
    let account_record = account_record.expect("the user's account");
    assert_eq!(account_record.kind, shared::accounts::AccountKind::Customer);
    assert_eq!(
        account_record.billing,
        shared::accounts::BillingOwner::Marketplace
    );
    assert!(account_record.credentials.is_none());
    let profile = profile.unwrap().profile.unwrap();
    assert_eq!(profile.region_state.as_deref(), Some("Brandenburg"));
    assert_eq!(profile.email.unwrap().as_str(), "john@doe.com");
    assert_eq!(subs.len(), 1);
    assert_eq!(price(&subs[0]), ("123.45", "SUBSCRIPTION", Some("MONTHLY")));
    assert_eq!(subs[0].status, SubscriptionStatus::Active);

    let status = async || marketplaces(&hub).subscriptions(account).await.unwrap()[0].clone();
    let ex = &mut exchanges;

    // Payment failed, then resumed before the grace period ended: access never stopped.
    play(&hub, &market, &player, "product.suspend", ex, |_| {}).await;
    let sub = status().await;
    assert_eq!(sub.status, SubscriptionStatus::PaymentFailed);
    assert!(sub.has_access());
    let now = shared::clock::now();
    let report =
        marketplace_suspensions::handle_at(&hub.stand_in.hub, now + time::Duration::days(1))
            .await
            .unwrap();
    assert_eq!(report.suspended, 0);
    play(&hub, &market, &player, "product.resume", ex, |_| {}).await;
    assert_eq!(status().await.status, SubscriptionStatus::Active);
    assert!(status().await.suspend_at.is_none());
    let report =
        marketplace_suspensions::handle_at(&hub.stand_in.hub, now + time::Duration::days(8))
            .await
            .unwrap();
    assert_eq!(report.suspended, 0, "a resumed subscription is not due");

    // Payment failed again; the schedule (fired through the stand-in) leaves it until
    // the grace period (7 days by default) ends, then suspends it.
    play(&hub, &market, &player, "product.suspend", ex, |_| {}).await;
    let fired = hub
        .fire_schedule("MarketplaceSuspensionsFunction.Suspend")
        .await;
    assert_eq!(fired["result"]["suspended"], 0, "{fired}");
    assert_eq!(status().await.status, SubscriptionStatus::PaymentFailed);
    let report =
        marketplace_suspensions::handle_at(&hub.stand_in.hub, now + time::Duration::days(8))
            .await
            .unwrap();
    assert_eq!(report.suspended, 1);
    let sub = status().await;
    assert_eq!(sub.status, SubscriptionStatus::Suspended);
    assert!(!sub.has_access());
    assert!(sub.suspend_at.is_none());

    // Resumed after the suspension: access at once.
    play(&hub, &market, &player, "product.resume", ex, |_| {}).await;
    assert_eq!(status().await.status, SubscriptionStatus::Active);

    // The profile changes.
    play(&hub, &market, &player, "user.update", ex, |r| {
        r["data"]["user"]["lastName"] = "Doe-Smith".into();
    })
    .await;
    let profile = marketplaces(&hub).profile(account).await.unwrap().unwrap();
    assert_eq!(
        profile.profile.unwrap().last_name.as_deref(),
        Some("Doe-Smith")
    );

    play(&hub, &market, &player, "product.cancel", ex, |_| {}).await;
    assert_eq!(status().await.status, SubscriptionStatus::Cancelled);

    // The user is deleted: personal data erased, the billing facts kept.
    play(&hub, &market, &player, "user.delete", ex, |_| {}).await;
    let (account_record, profile, subs) = snapshot(&hub, account).await;
    let profile = profile.unwrap();
    assert!(profile.profile.is_none() && profile.erased_at.is_some());
    assert!(account_record.is_some());
    assert_eq!(subs.len(), 1);
    assert_eq!(price(&subs[0]).0, "123.45");
    assert_eq!(subs[0].status, SubscriptionStatus::Cancelled);

    // Every change reached the account's timeline through the outbox and the bus.
    let changes = 10;
    eventually(Duration::from_secs(20), || async {
        (timeline_len(&hub, account).await >= changes).then_some(())
    })
    .await
    .expect("every hub event reached the timeline");
    let before = snapshot(&hub, account).await;
    let timeline_before = timeline_len(&hub, account).await;
    assert_eq!(timeline_before, changes);
    // Every emitted event matches its schema in events/hub/.
    let types = hub.assert_timeline_matches_schemas(account).await;
    assert!(
        types.contains(&"subscription.suspended".to_owned()),
        "{types:?}"
    );

    // Redelivery of every request (with a fresh auth token and timestamp): the same
    // response, and nothing changes.
    for (request, response) in &exchanges {
        let mut again = request.clone();
        again["user"]["auth"]["token"] = fresh_id().into();
        again["event"]["timestamp"] = 1.into();
        let (code, replayed) = send(&hub, &market, &again).await;
        assert_eq!(code, 200, "{replayed}");
        assert_eq!(&replayed, response);
    }
    assert_eq!(snapshot(&hub, account).await, before);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(timeline_len(&hub, account).await, timeline_before);

    // The same event id with a different body is refused.
    let (request, _) = &exchanges[1];
    let mut changed = request.clone();
    changed["data"]["product"]["price"] = json!(99.99);
    let (code, body) = send(&hub, &market, &changed).await;
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["error"]["code"], "event_id_reused");
    assert_eq!(snapshot(&hub, account).await, before);
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refuses_bad_auth_dangling_and_malformed_events_writing_nothing() {
    let hub = TestHub::start("marketplace-bad").await;
    let market = hub.register_marketplace("Etvas").await;
    let player = Player::new();
    let account = AccountId::for_external(market.id, &ExternalId::parse(&player.user_id).unwrap());
    let create = player.request("user.create").to_string();

    // Authentication: bearer key of a registered marketplace only.
    let (code, body) = hub.post_marketplace(None, create.clone()).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (401, Some("missing_marketplace_key"))
    );
    let (code, body) = hub.post_marketplace(Some("mk_wrong"), create.clone()).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (401, Some("invalid_marketplace_key"))
    );
    let integrator = hub
        .register(
            "Integrator",
            hub_tests::PARTNER_A_PUB,
            hub_tests::PARTNER_A_KEY,
        )
        .await;
    let (code, body) = hub.post_marketplace(Some(&integrator.token), create).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (401, Some("invalid_marketplace_key"))
    );

    // Dangling and out-of-order events, bad bodies: clear 4xx, nothing written.
    let purchase = player.request("product.purchase");
    let mut cancel = player.request("product.cancel");
    cancel["data"]["product"]["partnerId"] = Value::Null;
    let mut unknown_type = player.request("user.create");
    unknown_type["event"]["type"] = "user.merge".into();
    let mut no_user_id = player.request("user.create");
    no_user_id["user"].as_object_mut().unwrap().remove("id");
    let mut bad_price = player.request("product.purchase");
    bad_price["data"]["product"]["price"] = "12,50".into();
    let mut wrong_partner_id = player.request("user.update");
    wrong_partner_id["user"]["partnerId"] = "u-111111".into();
    let cases: Vec<(&str, String, u16, &str, Option<&str>)> = vec![
        (
            "purchase for an unknown user",
            purchase.to_string(),
            422,
            "unknown_user",
            Some("user.id"),
        ),
        (
            "cancel for an unknown user",
            cancel.to_string(),
            422,
            "unknown_user",
            Some("user.id"),
        ),
        (
            "unknown type",
            unknown_type.to_string(),
            422,
            "unknown_event_type",
            Some("event.type"),
        ),
        (
            "malformed JSON",
            "{\"event\": ".into(),
            400,
            "malformed_json",
            None,
        ),
        ("empty body", String::new(), 400, "malformed_json", None),
        (
            "missing user.id",
            no_user_id.to_string(),
            422,
            "missing_field",
            Some("user.id"),
        ),
        (
            "price not a decimal",
            bad_price.to_string(),
            422,
            "invalid_field",
            Some("data.product.price"),
        ),
        (
            "partnerId the hub never issued",
            wrong_partner_id.to_string(),
            409,
            "user_partner_id_mismatch",
            Some("user.partnerId"),
        ),
        (
            "envelope of the wrong shape",
            "[1, 2]".into(),
            422,
            "invalid_body",
            None,
        ),
    ];
    for (name, body, status, code, field) in &cases {
        let (got, response) = hub
            .post_marketplace(Some(&market.token), body.clone())
            .await;
        assert_eq!(got, *status, "{name}: {response}");
        assert_eq!(response["error"]["code"], *code, "{name}: {response}");
        assert_eq!(
            response["error"]["field"].as_str(),
            *field,
            "{name}: {response}"
        );
    }
    assert_eq!(snapshot(&hub, account).await, (None, None, Vec::new()));
    let ledger: Option<LedgerEntry> = hub
        .stand_in
        .hub
        .table
        .get(&keys::ledger(
            &Marketplaces::ledger_scope(market.id),
            purchase["event"]["id"].as_str().unwrap(),
        ))
        .await
        .unwrap();
    assert!(ledger.is_none(), "a refused event is not recorded");

    // Once the user exists, a cancel for a product it never bought is still refused,
    // and the refused purchase can be redelivered with its id and now succeeds.
    let mut player = player;
    let (code, created) = send(&hub, &market, &player.request("user.create")).await;
    assert_eq!(code, 200, "{created}");
    player.user_partner_id = created["data"]["user"]["partnerId"]
        .as_str()
        .map(str::to_owned);
    let mut cancel = player.request("product.cancel");
    cancel["data"]["product"]["partnerId"] = Value::Null;
    let (code, body) = send(&hub, &market, &cancel).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (422, Some("unknown_product"))
    );
    assert!(
        marketplaces(&hub)
            .subscriptions(account)
            .await
            .unwrap()
            .is_empty()
    );
    let mut retry = purchase.clone();
    retry["user"]["partnerId"] = player.user_partner_id.clone().into();
    let (code, body) = send(&hub, &market, &retry).await;
    assert_eq!(code, 200, "{body}");
    hub.assert_round_trips_within_goals();
    hub.stop().await;
}
