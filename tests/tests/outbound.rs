//! Calls outside AWS through the one outbound client, against the stand-in's recorder
//! playing a partner that fails and then recovers: every attempt carries the same message,
//! retries are due items (no sleeps), and what fails for good is left for operators.

use std::time::Duration;

use hub_tests::TestHub;
use serde_json::{Value, json};
use shared::outbound::{
    OutboundClient, OutboundConfig, OutboundError, OutboundRequest,
    delivery::{Deliveries, Delivery, DeliveryStatus},
};

const HOOK: &str = "https://partner.example.com/releva/webhooks/usageRecords";

fn deliveries(hub: &TestHub, timeout: Duration) -> Deliveries {
    let hub = &hub.stand_in.hub;
    let mut config = OutboundConfig::from_config(&hub.config).unwrap();
    config.timeout = timeout;
    Deliveries::new(hub.uow.clone(), OutboundClient::new(config).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_then_recovering_partner_gets_the_message_once_it_recovers() {
    let hub = TestHub::start("outbound").await;
    let queue = deliveries(&hub, Duration::from_secs(10));
    hub.script_outbound(json!([
        {"host": "partner.example.com", "status": 503},
        {"host": "partner.example.com", "status": 429, "headers": {"retry-after": "900"}},
    ]))
    .await;
    let mut request =
        OutboundRequest::post_json(HOOK, &json!({"usageRecords": [{"day": "2026-11-22"}]}));
    request
        .headers
        .push(("webhook-id".into(), "msg_fixed".into()));
    // Not a partner webhook of a shop (those are signed: see the last test).
    let delivery = Delivery::new("webhook.raw", None, &request);
    queue.enqueue(&delivery).await.unwrap();

    // 1st attempt, by the template's schedule in the stand-in: 503, retried.
    let fired = hub
        .fire_schedule("OutboundDeliveriesFunction.Deliver")
        .await;
    assert_eq!(fired["result"]["retrying"], 1, "{fired}");
    let stored = queue.get(&delivery.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.attempts, stored.last_status),
        (DeliveryStatus::Pending, 1, Some(503))
    );
    // Not due again before its next attempt.
    let now = shared::clock::now();
    let report = outbound_deliveries::handle_at(&queue, now).await.unwrap();
    assert_eq!(report.due, 0);

    // 2nd attempt once due: 429 with Retry-After 900 s, which outweighs the 5 minutes.
    let report = outbound_deliveries::handle_at(&queue, now + Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(report.retrying, 1);
    let stored = queue.get(&delivery.id).await.unwrap().unwrap();
    assert_eq!(stored.last_status, Some(429));
    let next = shared::clock::parse_rfc3339(stored.next_attempt_at.as_deref().unwrap()).unwrap();
    assert!(next >= now + Duration::from_secs(900), "{next}");

    // 3rd attempt after it: the partner has recovered.
    let report = outbound_deliveries::handle_at(&queue, now + Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(report.delivered, 1);
    let stored = queue.get(&delivery.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.attempts, stored.last_status),
        (DeliveryStatus::Delivered, 3, Some(200))
    );
    let report = outbound_deliveries::handle_at(&queue, now + Duration::from_secs(86_400))
        .await
        .unwrap();
    assert_eq!(report.due, 0, "delivered once, nothing more");

    // The partner saw three identical requests: the same message, path and body.
    let received = hub.outbound_calls("partner.example.com").await;
    assert_eq!(received.len(), 3, "{received:?}");
    for call in &received {
        assert_eq!(call["method"], "POST");
        assert_eq!(call["url"], HOOK);
        assert_eq!(call["path"], "/releva/webhooks/usageRecords");
        assert_eq!(call["headers"]["webhook-id"], "msg_fixed");
        assert_eq!(call["headers"]["content-type"], "application/json");
        assert!(
            call["headers"]["user-agent"]
                .as_str()
                .unwrap()
                .starts_with("PartnerHub/")
        );
        let body: Value = serde_json::from_str(call["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["usageRecords"][0]["day"], "2026-11-22");
    }
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_and_rejections_are_not_retried_and_timeouts_are() {
    let hub = TestHub::start("outbound-fail").await;
    let queue = deliveries(&hub, Duration::from_secs(1));

    // A partner answering 410: failed for good, listed for operators.
    hub.script_outbound(
        json!({"host": "gone.example.com", "status": 410, "body": {"error": "gone"}}),
    )
    .await;
    let gone = Delivery::new(
        "webhook.test",
        None,
        &OutboundRequest::post_json("https://gone.example.com/hook", &json!({})),
    );
    queue.enqueue(&gone).await.unwrap();
    // Plain http and private addresses are refused before anything is sent.
    let plain = Delivery::new(
        "webhook.test",
        None,
        &OutboundRequest::post_json("http://partner.example.com/hook", &json!({})),
    );
    let metadata = Delivery::new(
        "webhook.test",
        None,
        &OutboundRequest::post_json("https://169.254.169.254/latest/meta-data/", &json!({})),
    );
    queue.enqueue(&plain).await.unwrap();
    queue.enqueue(&metadata).await.unwrap();
    let now = shared::clock::now();
    let report = outbound_deliveries::handle_at(&queue, now).await.unwrap();
    assert_eq!((report.due, report.failed), (3, 3), "{report:?}");
    let failed = queue.failed().await.unwrap();
    for id in [&gone.id, &plain.id, &metadata.id] {
        let d = failed.iter().find(|d| &d.id == id).expect("listed");
        assert_eq!(d.status, DeliveryStatus::Failed);
        assert_eq!(d.attempts, 1);
    }
    let gone = failed.iter().find(|d| d.id == gone.id).unwrap();
    assert_eq!(gone.last_status, Some(410));
    assert!(hub.outbound_calls("169.254.169.254").await.is_empty());
    assert_eq!(hub.outbound_calls("gone.example.com").await.len(), 1);

    // A partner slower than the timeout: retryable, and it may have received the call.
    hub.script_outbound(json!({"host": "slow.example.com", "delay_ms": 1500}))
        .await;
    let client = OutboundClient::new(OutboundConfig {
        timeout: Duration::from_millis(500),
        ..OutboundConfig::from_config(&hub.stand_in.hub.config).unwrap()
    })
    .unwrap();
    let result = client
        .send(OutboundRequest::post_json(
            "https://slow.example.com/hook",
            &json!({}),
        ))
        .await;
    assert!(
        matches!(
            result,
            Err(OutboundError::Retryable {
                maybe_delivered: true,
                ..
            })
        ),
        "{result:?}"
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn partners_webhooks_carry_the_shop_secret_key_and_a_verifiable_signature_on_every_attempt() {
    use hub_tests::{PARTNER_A_KEY, PARTNER_A_PUB, shop_claims};
    let hub = TestHub::start("outbound-signed").await;
    let partner = hub
        .register("Partner A", PARTNER_A_PUB, PARTNER_A_KEY)
        .await;
    let (status, shop) = hub
        .provision(&partner, &shop_claims("signed-hooks.example.com"))
        .await;
    assert_eq!(status, 201, "{shop}");
    let secret_key = shop["domain"]["secretKey"].as_str().unwrap().to_owned();
    let stand_in = &hub.stand_in.hub;
    let signing_secret = shared::partner_webhooks::set_endpoint(
        &stand_in.table,
        stand_in.accounts.sealer(),
        partner.id,
        "https://partner.example.com/",
    )
    .await
    .unwrap();
    // Refused: not https, or a private address.
    for bad in [
        "http://partner.example.com",
        "https://127.0.0.1",
        "https://partner.example.com/?x=1",
    ] {
        assert!(
            shared::partner_webhooks::set_endpoint(
                &stand_in.table,
                stand_in.accounts.sealer(),
                partner.id,
                bad
            )
            .await
            .is_err(),
            "{bad}"
        );
    }
    let record = stand_in.partners.get(partner.id).await.unwrap().unwrap();
    let account = shared::domain::AccountId::for_shop(
        &shared::domain::ShopDomain::parse("signed-hooks.example.com").unwrap(),
    );
    let body = json!({"usageRecords": [{"day": "2026-11-22", "type": "pageViews", "unitPrice": "0.001",
        "amount": "1200", "billableAmount": "200", "totalPrice": "0.2",
        "reference": "Growth: page views over 1000", "preaggregated": false}]});
    let delivery = shared::partner_webhooks::delivery(
        &record,
        account,
        shared::partner_webhooks::USAGE_RECORDS,
        shared::partner_webhooks::USAGE_RECORDS_PATH,
        &body,
    )
    .expect("the partner has an endpoint");
    let queue = deliveries(&hub, Duration::from_secs(10)).with_signer(
        shared::partner_webhooks::WebhookSigner::new(
            stand_in.table.clone(),
            stand_in.accounts.clone(),
        ),
    );
    queue.enqueue(&delivery).await.unwrap();
    hub.script_outbound(json!({"host": "partner.example.com", "status": 500}))
        .await;

    // By the template's schedule (the function's own signer): 500, retried; then delivered.
    let fired = hub
        .fire_schedule("OutboundDeliveriesFunction.Deliver")
        .await;
    assert_eq!(fired["result"]["retrying"], 1, "{fired}");
    let later = shared::clock::now() + Duration::from_secs(60);
    let report = outbound_deliveries::handle_at(&queue, later).await.unwrap();
    assert_eq!(report.delivered, 1, "{report:?}");

    let received = hub.outbound_calls("partner.example.com").await;
    assert_eq!(received.len(), 2, "{received:?}");
    for call in &received {
        assert_eq!(
            call["url"],
            format!(
                "https://partner.example.com{}",
                shared::partner_webhooks::USAGE_RECORDS_PATH
            )
        );
        assert_eq!(call["headers"]["webhook-id"], delivery.id.as_str());
        assert_eq!(
            serde_json::from_str::<Value>(call["body"].as_str().unwrap()).unwrap(),
            body_json(&delivery)
        );
        // Verifiable as Standard Webhooks with the partner's signing secret, no other.
        hub_tests::assert_signed_webhook(call, &secret_key, &signing_secret);
    }
    // The stored delivery keeps no secret.
    let stored = format!("{:?}", queue.get(&delivery.id).await.unwrap().unwrap());
    assert!(
        !stored.contains(&secret_key) && !stored.contains("webhook-signature"),
        "{stored}"
    );
    hub.stop().await;
}

fn body_json(delivery: &Delivery) -> Value {
    serde_json::from_str(&delivery.body).unwrap()
}

/// `Retry-After` as an HTTP date (RFC 9110) is read as the wait until that date, on the
/// hub's clock, not as a minute.
#[tokio::test(flavor = "multi_thread")]
async fn retry_after_as_an_http_date_is_the_wait_until_that_date() {
    let hub = TestHub::start("retry-date").await;
    let queue = deliveries(&hub, Duration::from_secs(10));
    // The hub's clock is a day ahead of this machine's: the date is read on the hub's.
    hub.advance_clock("1d").await;
    let until = hub.now() + Duration::from_secs(2 * 3600);
    let date = httpdate::fmt_http_date(std::time::SystemTime::from(until));
    hub.script_outbound(json!([
        {"host": "partner.example.com", "status": 429, "headers": {"retry-after": date}},
    ]))
    .await;
    let request = OutboundRequest::post_json(HOOK, &json!({"usageRecords": []}));
    let delivery = Delivery::new("webhook.raw", None, &request);
    queue.enqueue(&delivery).await.unwrap();
    let fired = hub
        .fire_schedule("OutboundDeliveriesFunction.Deliver")
        .await;
    assert_eq!(fired["result"]["retrying"], 1, "{fired}");
    let stored = queue.get(&delivery.id).await.unwrap().unwrap();
    assert_eq!(stored.last_status, Some(429));
    let next = shared::clock::parse_rfc3339(stored.next_attempt_at.as_deref().unwrap()).unwrap();
    assert!(
        next >= until - Duration::from_secs(2) && next <= until + Duration::from_secs(600),
        "next attempt {next}, Retry-After {date}"
    );
}
