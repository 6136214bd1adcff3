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
    let listed: Value = hub
        .http
        .get(hub.url("/_local/iam"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
