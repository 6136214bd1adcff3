//! The EventBridge trust boundary: partners reach the hub only through the ingress bus,
//! only with their own source, only from their own accounts; the hub's internal bus and
//! rules take only the hub's own events. (moto evaluates no bus policy and stamps every
//! event with its own account, so the policy is checked as data, and foreign accounts by
//! delivering envelopes to the handler.)

use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use hub_emulator::Template;
use hub_tests::{PARTNER_A_KEY, PARTNER_A_PUB, PARTNER_B_KEY, PARTNER_B_PUB, TestHub, sample};
use serde_json::{Value, json};
use shared::{
    domain::{AccountId, ExternalId},
    runtime::Failure,
};

fn template() -> Template {
    Template::load(&hub_emulator::project_root().join("infra/template.yaml")).unwrap()
}

#[test]
fn internal_rules_take_only_the_hubs_own_events_and_no_bus_policy_admits_others() {
    let template = template();
    let lookup = |id: &str, _: Option<&str>| (id == "AWS::AccountId").then(|| "ACCOUNT".to_owned());
    let mut internal = 0;
    for def in template.functions().unwrap() {
        for rule in &def.rules {
            let pattern = rule.resolved_pattern(&lookup);
            match rule.bus.as_deref() {
                Some("HubEventBus") => {
                    internal += 1;
                    assert_eq!(
                        pattern["source"],
                        json!(["partner-hub"]),
                        "{}",
                        def.logical_id
                    );
                    assert_eq!(pattern["account"], json!(["ACCOUNT"]), "{}", def.logical_id);
                }
                Some("PartnerIngressBus") => {
                    assert!(
                        !pattern.to_string().contains("partner-hub"),
                        "{}: partners' events only",
                        def.logical_id
                    );
                }
                other => panic!("{}: rule on bus {other:?}", def.logical_id),
            }
        }
    }
    assert!(internal >= 2);
    assert_eq!(
        template
            .resources_of_type("AWS::Events::EventBusPolicy")
            .count(),
        0,
        "bus policies are per partner, applied by hub-admin set-events"
    );
}

fn envelope(
    source: &str,
    account: &str,
    detail_type: &str,
    detail: Value,
) -> EventBridgeEvent<Value> {
    serde_json::from_value(json!({
        "version": "0", "id": uuid::Uuid::new_v4().to_string(), "detail-type": detail_type,
        "source": source, "account": account, "time": "2026-11-23T10:00:00Z",
        "region": "us-east-1", "resources": [], "detail": detail,
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_acts_only_from_the_accounts_bound_to_it() {
    let hub = TestHub::start("trust-accounts").await;
    let (victim, victim_source, _) = hub
        .event_partner("victim", PARTNER_A_PUB, PARTNER_A_KEY, &["111111111111"])
        .await;
    let create = sample("subscriptions/create-subscription.json")["detail"].clone();
    let account = AccountId::for_external(
        victim.id,
        &ExternalId::parse("partner_customer_id").unwrap(),
    );

    // The victim's own account: processed.
    let own = envelope(
        &victim_source,
        "111111111111",
        "Create Subscription",
        create.clone(),
    );
    assert!(
        subscription_events::handle(&hub.stand_in.hub, own)
            .await
            .is_ok()
    );
    assert!(
        hub.stand_in
            .hub
            .subscriptions
            .plan(account)
            .await
            .unwrap()
            .is_some()
    );

    // Another account using the victim's source: parked, nothing changes.
    let mut cancel = sample("subscriptions/cancellation.json")["detail"].clone();
    cancel["effective_date"] = "2020-01-01".into();
    let spoofed = envelope(
        &victim_source,
        "999999999999",
        "Cancellation",
        cancel.clone(),
    );
    let result = subscription_events::handle(&hub.stand_in.hub, spoofed).await;
    assert!(
        matches!(&result, Err(Failure::Park(reason)) if reason.contains("not bound to account 999999999999")),
        "{result:?}"
    );
    // No account at all: the same.
    let mut anonymous = envelope(&victim_source, "111111111111", "Cancellation", cancel);
    anonymous.account = None;
    assert!(matches!(
        subscription_events::handle(&hub.stand_in.hub, anonymous).await,
        Err(Failure::Park(_))
    ));
    let plan = hub
        .stand_in
        .hub
        .subscriptions
        .plan(account)
        .await
        .unwrap()
        .unwrap();
    assert!(!plan.cancellation_pending());
    assert!(
        hub.stand_in
            .hub
            .subscriptions
            .tombstone(account)
            .await
            .unwrap()
            .is_none()
    );

    // End to end: events the emulator stamps with its own account, under a source bound
    // to another account, are parked by the pipeline.
    let mut detail = sample("subscriptions/create-subscription.json")["detail"].clone();
    detail["id"] = "c-spoofed".into();
    hub.put_partner_event(&victim_source, "Create Subscription", &detail)
        .await;
    let letters = hub_tests::eventually(Duration::from_secs(15), || async {
        let letters = hub.stand_in.hub.dead_letters.list().await.unwrap();
        (!letters.is_empty()).then_some(letters)
    })
    .await
    .expect("parked");
    assert!(
        letters[0]
            .reason
            .contains("not bound to account 123456789012"),
        "{}",
        letters[0].reason
    );
    let spoofed = AccountId::for_external(victim.id, &ExternalId::parse("c-spoofed").unwrap());
    assert!(
        hub.stand_in
            .hub
            .subscriptions
            .plan(spoofed)
            .await
            .unwrap()
            .is_none()
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_hub_events_on_the_ingress_bus_reach_no_hub_rule() {
    let hub = TestHub::start("trust-forged").await;
    // The victim's customer, approved: its keys exist.
    let (victim, victim_source, _) = hub
        .event_partner("victim", PARTNER_A_PUB, PARTNER_A_KEY, &["123456789012"])
        .await;
    let (attacker, _, _) = hub
        .event_partner("attacker", PARTNER_B_PUB, PARTNER_B_KEY, &["123456789012"])
        .await;
    let events = aws_sdk_eventbridge::Client::new(&hub.stand_in.sdk);
    let ingress = hub.stand_in.hub.config.ingress_bus_name.clone().unwrap();
    hub.put_partner_event(
        &victim_source,
        "Create Subscription",
        &sample("subscriptions/create-subscription.json")["detail"].clone(),
    )
    .await;
    let account = AccountId::for_external(
        victim.id,
        &ExternalId::parse("partner_customer_id").unwrap(),
    );
    hub_tests::eventually(Duration::from_secs(15), || async {
        hub.stand_in.hub.subscriptions.plan(account).await.unwrap()
    })
    .await
    .expect("provisioned");

    // The attacker forges installation.ready for the victim's account, naming itself.
    let forged = json!({
        "eventId": uuid::Uuid::new_v4(), "occurredAt": "2026-11-23T10:00:00Z",
        "accountId": account, "partnerId": attacker.id, "type": "installation.ready",
        "data": {"customerId": "partner_customer_id"}
    });
    hub.put_partner_event("partner-hub", "installation.ready", &forged)
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let received = hub
        .stand_in
        .partner_buses
        .received("attacker")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(received.is_empty(), "the forger got {received:?}");
    let timeline = hub.stand_in.hub.timeline.list(account).await.unwrap();
    assert!(
        timeline
            .iter()
            .all(|e| e.event_type != "installation.ready"),
        "a forged event reached the victim's timeline"
    );

    // The ingress policy admits each partner with its own source only.
    let described = events
        .describe_event_bus()
        .name(&ingress)
        .send()
        .await
        .unwrap();
    let policy: Value = serde_json::from_str(described.policy().unwrap()).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    assert!(statements.len() >= 2, "{policy}");
    for statement in statements {
        let sources = &statement["Condition"]["StringEquals"]["events:source"];
        assert!(sources.is_array(), "{statement}");
        assert!(!sources.to_string().contains("partner-hub"));
    }
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn removing_a_partners_events_releases_its_source_and_its_statement() {
    let hub = TestHub::start("trust-remove").await;
    let (partner, source, _) = hub
        .event_partner("leaving", PARTNER_A_PUB, PARTNER_A_KEY, &["111111111111"])
        .await;
    let ingress = shared::ingress::IngressBus::new(
        aws_sdk_eventbridge::Client::new(&hub.stand_in.sdk),
        hub.stand_in.hub.config.ingress_bus_name.clone().unwrap(),
    );
    let sid = shared::ingress::statement_id(partner.id);
    let (_, policy) = ingress.describe().await.unwrap();
    assert!(policy.unwrap_or_default().contains(&sid));

    let removed = hub
        .stand_in
        .hub
        .remove_partner_events(partner.id)
        .await
        .unwrap();
    assert_eq!(removed.as_deref(), Some(source.as_str()));
    let (_, policy) = ingress.describe().await.unwrap();
    assert!(!policy.unwrap_or_default().contains(&sid), "statement left");
    // Its events act for no one now.
    let create = sample("subscriptions/create-subscription.json")["detail"].clone();
    let event = envelope(&source, "111111111111", "Create Subscription", create);
    assert!(matches!(
        subscription_events::handle(&hub.stand_in.hub, event).await,
        Err(Failure::Park(_))
    ));
    // Removing again changes nothing.
    assert_eq!(
        hub.stand_in
            .hub
            .remove_partner_events(partner.id)
            .await
            .unwrap(),
        None
    );
    hub.stop().await;
}
