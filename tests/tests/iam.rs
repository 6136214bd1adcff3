//! IAM as AWS enforces it, in the stand-in: a template whose policy lacks an action the
//! code needs fails locally exactly as it would on AWS, naming the function, the action
//! and the resource.

use hub_tests::{PARTNER_A_KEY, PARTNER_A_PUB, TestHub, shop_claims};
use serde_json::{Value, json};

/// The template with `action` taken out of `function`'s policies (replaced by an action
/// the function does not need, so each statement keeps an `Action`).
fn without(function: &str, action: &str, instead: &str) -> String {
    let path = hub_emulator::project_root().join("infra/template.yaml");
    let template = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let mut inside = false;
    let mut replaced = 0;
    for line in template.lines() {
        let top_level = line.starts_with("  ") && !line.starts_with("   ") && line.ends_with(':');
        if top_level {
            inside = line.trim() == format!("{function}:");
        }
        let is_action = line.trim_end().ends_with(action)
            && (line.trim_start().starts_with("- ") || line.trim_start().starts_with("Action:"));
        if inside && is_action {
            out.push(line.replace(action, instead));
            replaced += 1;
        } else {
            out.push(line.to_owned());
        }
    }
    assert!(replaced > 0, "{function} does not grant {action}");
    out.join("\n")
}

async fn start_without(label: &str, function: &str, action: &str, instead: &str) -> TestHub {
    TestHub::start_with_template(label, &without(function, action, instead)).await
}

/// The stand-in's decisions: the one denial the test expects, naming function, action and
/// the table's or key's ARN.
fn assert_denied(hub: &TestHub, function: &str, action: &str, resource_kind: &str) {
    let denied = hub.stand_in.authorizations.denied();
    assert!(!denied.is_empty(), "nothing was denied");
    for d in &denied {
        assert_eq!(
            (d.principal.as_str(), d.action.as_str()),
            (function, action),
            "{denied:?}"
        );
        assert!(
            d.resource.starts_with(resource_kind),
            "{} is not a {resource_kind}",
            d.resource
        );
    }
}

/// What `GET /_local/iam` shows of denials.
async fn denials_listed(hub: &TestHub) -> Vec<Value> {
    let listed = hub.get_json("/_local/iam").await;
    listed["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["allowed"] == false)
        .cloned()
        .collect()
}

#[tokio::test]
async fn usage_records_without_put_item_cannot_bill_a_day() {
    let hub = start_without(
        "iam-usage",
        "UsageRecordsFunction",
        "dynamodb:PutItem",
        "dynamodb:DescribeTable",
    )
    .await;
    let partner = hub.register("Metered", PARTNER_A_PUB, PARTNER_A_KEY).await;
    let (status, body) = hub
        .provision(&partner, &shop_claims("metered.example"))
        .await;
    assert_eq!(status, 201, "{body}");
    hub.confirm_plans(&partner, "metered.example", &[1]).await;
    hub.advance_clock("2d").await;
    // Run again by hand: the run fails with AWS's own error, naming all three.
    let response = hub
        .http
        .post(hub.url("/_local/schedules/UsageRecordsFunction.Meter"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let error: Value = response.json().await.unwrap();
    let message = error["error"]["message"].as_str().unwrap();
    for part in [
        "AccessDeniedException",
        "assumed-role/UsageRecordsFunction/UsageRecordsFunction",
        "dynamodb:PutItem",
        "arn:aws:dynamodb:us-east-1:123456789012:table/iam-usage-",
    ] {
        assert!(message.contains(part), "{part} not in: {message}");
    }
    assert_denied(
        &hub,
        "UsageRecordsFunction",
        "dynamodb:PutItem",
        "arn:aws:dynamodb:",
    );
    assert!(!denials_listed(&hub).await.is_empty());
}

#[tokio::test]
async fn outbound_deliveries_without_decrypt_cannot_sign_a_webhook() {
    let hub = start_without(
        "iam-deliveries",
        "OutboundDeliveriesFunction",
        "kms:Decrypt",
        "kms:DescribeKey",
    )
    .await;
    let partner = hub.register("Hooked", PARTNER_A_PUB, PARTNER_A_KEY).await;
    let (status, body) = hub
        .provision(&partner, &shop_claims("hooked.example"))
        .await;
    assert_eq!(status, 201, "{body}");
    let admin = &hub.stand_in.hub;
    shared::partner_webhooks::set_endpoint(
        &admin.table,
        admin.accounts.sealer(),
        partner.id,
        "https://partner.example.com",
    )
    .await
    .unwrap();
    hub.confirm_plans(&partner, "hooked.example", &[1]).await;
    // A day is metered at 02:00 and its webhook falls due: the delivery job runs.
    let answer = hub.advance_clock("2d").await;
    assert!(
        answer["fired"]
            .as_array()
            .unwrap()
            .iter()
            .any(|run| run["schedule"]
                .as_str()
                .unwrap()
                .starts_with("OutboundDeliveriesFunction.")),
        "{answer}"
    );
    assert_denied(
        &hub,
        "OutboundDeliveriesFunction",
        "kms:Decrypt",
        "arn:aws:kms:",
    );
    // Nothing reached the partner unsigned.
    assert!(hub.outbound_calls("partner.example.com").await.is_empty());
}

#[tokio::test]
async fn partner_api_without_update_item_cannot_count_failures() {
    let hub = start_without(
        "iam-partner-api",
        "PartnerApiFunction",
        "dynamodb:UpdateItem",
        "dynamodb:DescribeTable",
    )
    .await;
    let partner = hub.register("Counted", PARTNER_A_PUB, PARTNER_A_KEY).await;
    // A payload signed by another key: the failure counter is an UpdateItem.
    let forged = hub_tests::sign_rs512(
        hub_tests::PARTNER_B_KEY,
        &shop_claims("forged.example"),
        600,
    );
    let (status, body) = hub
        .post_domains(
            Some(&partner.token),
            json!({ "payload": forged }).to_string(),
        )
        .await;
    assert!(status >= 400, "{status} {body}");
    assert_denied(
        &hub,
        "PartnerApiFunction",
        "dynamodb:UpdateItem",
        "arn:aws:dynamodb:",
    );
}

#[tokio::test]
async fn the_template_as_it_is_denies_nothing_and_unknown_callers_nothing_passes() {
    let hub = TestHub::start("iam-clean").await;
    let partner = hub.register("Clean", PARTNER_A_PUB, PARTNER_A_KEY).await;
    let (status, body) = hub.provision(&partner, &shop_claims("clean.example")).await;
    assert_eq!(status, 201, "{body}");
    assert!(hub.stand_in.authorizations.denied().is_empty());
    assert!(
        hub.stand_in
            .authorizations
            .decisions()
            .iter()
            .any(|(d, _)| d.principal == "PartnerApiFunction" && d.action == "dynamodb:PutItem"),
        "the provisioning transaction's items were authorized one by one"
    );
    // A caller the account does not know is refused before any policy is read.
    let sdk = hub_local::iam::signed_as(
        &hub.stand_in.sdk,
        "NobodyKnowsMe",
        &hub.stand_in.aws_endpoint,
    );
    let error = aws_sdk_sqs::Client::new(&sdk)
        .list_queues()
        .send()
        .await
        .unwrap_err();
    let text = format!("{}", aws_sdk_sqs::error::DisplayErrorContext(&error));
    assert!(text.contains("UnrecognizedClientException"), "{text}");
}

/// Requests moto would read differently from the proxy are refused, never forwarded:
/// what an attack on the stand-in found (each reached the emulator unchecked before).
#[tokio::test]
async fn what_moto_would_read_differently_is_refused_before_it_reaches_the_emulator() {
    let hub = TestHub::start("iam-smuggle").await;
    let resources = &hub.stand_in.resources;
    let table = resources.table_name().unwrap().to_owned();
    let hub_bus = resources.lookup("HubEventBus", None).unwrap();
    let dlq = hub.stand_in.dead_letter_queue_url().unwrap().to_owned();
    let http = reqwest::Client::new();
    let signed = |key: &str, service: &str| {
        format!(
            "AWS4-HMAC-SHA256 Credential={key}/20261204/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
        )
    };
    let send = |path: &str,
                key: &str,
                service: &str,
                target: Vec<&str>,
                content_type: &str,
                body: String| {
        let mut request = http
            .post(format!("{}{path}", hub.stand_in.aws_endpoint))
            .header("authorization", signed(key, service))
            .header("content-type", content_type.to_owned());
        for t in target {
            request = request.header("x-amz-target", t);
        }
        request.body(body).send()
    };
    let key = json!({"PK": {"S": "X"}, "SK": {"S": "X"}});
    // 1. Two targets: the proxy would check the first, moto run the last.
    let answer = send(
        "/",
        "PartnerApiFunction",
        "dynamodb",
        vec!["DynamoDB_20120810.GetItem", "DynamoDB_20120810.Scan"],
        "application/x-amz-json-1.0",
        json!({"TableName": table, "Key": key}).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 400);
    assert!(!answer.text().await.unwrap().contains("Items"));
    // 2. moto's own administration behind an allowed operation.
    let answer = send(
        "/moto-api/reset",
        "AnalyticsApiFunction",
        "dynamodb",
        vec!["DynamoDB_20120810.GetItem"],
        "application/x-amz-json-1.0",
        json!({"TableName": table, "Key": key}).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 400);
    // The table is still there.
    let described = aws_sdk_dynamodb::Client::new(&hub.stand_in.sdk)
        .describe_table()
        .table_name(&table)
        .send()
        .await;
    assert!(described.is_ok(), "moto was reset through the proxy");
    // 3. The query protocol with the queue in the URL as well as the body.
    let answer = send(
        "/?QueueUrl=http%3A%2F%2Fexample%2F123456789012%2Fother",
        "OutboxRelayFunction",
        "sqs",
        vec![],
        "application/x-www-form-urlencoded",
        format!("Action=SendMessage&QueueUrl={dlq}&MessageBody=smuggled"),
    )
    .await
    .unwrap();
    // The query protocol's errors are 403 XML; refused either way, nothing queued.
    assert!(
        matches!(answer.status().as_u16(), 400 | 403),
        "{}",
        answer.status()
    );
    let queued = aws_sdk_sqs::Client::new(&hub.stand_in.sdk)
        .receive_message()
        .queue_url(&dlq)
        .send()
        .await
        .unwrap();
    assert!(queued.messages().is_empty(), "{queued:?}");
    // 4. A bus ARN moto would deliver to the hub's own bus by its last segment: the
    //    notifier's Deny on the hub's buses cannot be walked around.
    for bus in [
        format!("arn:aws:events:us-east-1:123456789012:event-bus/x/{hub_bus}"),
        format!("arn:aws:events:us-east-1:999999999999:event-bus/{hub_bus}"),
        format!("arn:aws:events:eu-west-1:123456789012:event-bus/{hub_bus}"),
    ] {
        let answer = send(
            "/",
            "PartnerNotifierFunction",
            "events",
            vec!["AWSEvents.PutEvents"],
            "application/x-amz-json-1.1",
            json!({"Entries": [{"Source": "partner-hub", "DetailType": "x", "Detail": "{}", "EventBusName": bus}]})
                .to_string(),
        )
        .await
        .unwrap();
        let status = answer.status();
        let text = answer.text().await.unwrap();
        assert_eq!(status, 400, "{bus}: {text}");
        assert!(
            text.contains("AccessDenied") || text.contains("InvalidRequest"),
            "{text}"
        );
    }
}
