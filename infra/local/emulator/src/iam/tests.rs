use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Value, json};

use super::policy::glob_match;
use super::request::{key_id_of_moto_ciphertext, split_address, stream_arn_of_shard_iterator};
use super::*;
use crate::Template;

const ACCOUNT: &str = "123456789012";
const TABLE: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/T";

fn policy(document: Value) -> PolicyDocument {
    PolicyDocument::from_json(&document).unwrap()
}

fn request(action: &str, resource: &str, context: &[(&str, &[&str])]) -> AuthzRequest {
    AuthzRequest {
        action: action.into(),
        resource: resource.into(),
        context: context
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.iter().map(|s| (*s).to_owned()).collect()))
            .collect(),
    }
}

fn allow(actions: Value, resources: Value) -> PolicyDocument {
    policy(
        json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": actions, "Resource": resources}}),
    )
}

fn index() -> ResourceIndex {
    let mut index = ResourceIndex::new(ACCOUNT, "us-east-1");
    index
        .kms_aliases
        .insert("alias/partner-hub-dev-secrets".into(), "k-123".into());
    index
        .verified_email_identities
        .insert("hub@partner-hub.local".into());
    index
}

fn authorization(service: &str) -> (String, String) {
    (
        "Authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential=PartnerApiFunction/20261204/us-east-1/{service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"
        ),
    )
}

/// An awsJson call as the SDK sends it.
fn json_call(service: &str, target: &str, body: Value) -> RawRequest {
    let version = if matches!(service, "kms" | "events") {
        "1.1"
    } else {
        "1.0"
    };
    RawRequest {
        method: "POST".into(),
        path: "/".into(),
        query: None,
        headers: vec![
            authorization(service),
            ("X-Amz-Target".into(), target.into()),
            (
                "Content-Type".into(),
                format!("application/x-amz-json-{version}"),
            ),
        ],
        body: body.to_string().into_bytes(),
    }
}

fn rest_call(service: &str, method: &str, path: &str, body: Value) -> RawRequest {
    RawRequest {
        method: method.into(),
        path: path.into(),
        query: None,
        headers: vec![
            authorization(service),
            ("content-type".into(), "application/json".into()),
        ],
        body: body.to_string().into_bytes(),
    }
}

fn pairs(requests: &[AuthzRequest]) -> Vec<(&str, &str)> {
    requests
        .iter()
        .map(|r| (r.action.as_str(), r.resource.as_str()))
        .collect()
}

// ---------------------------------------------------------------- policies

#[test]
fn iam_wildcards_match_actions_case_insensitively_and_resources_exactly() {
    assert!(glob_match("dynamodb:*", "dynamodb:GetItem"));
    assert!(glob_match("dynamodb:Get*", "dynamodb:GetItem"));
    assert!(!glob_match("dynamodb:Get*", "dynamodb:PutItem"));
    assert!(glob_match("dynamodb:?etItem", "dynamodb:GetItem"));
    assert!(!glob_match("dynamodb:?etItem", "dynamodb:GGetItem"));
    assert!(glob_match("*", ""));
    assert!(glob_match("a*b*c", "aXXbYYbc"));

    let p = [allow(
        json!("DynamoDB:get*"),
        json!(format!("{TABLE}/index/*")),
    )];
    let get = |resource: &str| evaluate(&p, &request("dynamodb:GetItem", resource, &[]));
    assert!(get(&format!("{TABLE}/index/GSI1")).allowed);
    // Resources are case-sensitive.
    assert!(!get(&format!("{TABLE}/INDEX/GSI1")).allowed);
    assert!(!get(TABLE).allowed);
    // `*` spans `:` and `/` in the Resource element.
    let p = [allow(
        json!("events:PutEvents"),
        json!("arn:aws:events:*:*:event-bus/*"),
    )];
    assert!(
        evaluate(
            &p,
            &request(
                "events:PutEvents",
                "arn:aws:events:eu-west-1:999999999999:event-bus/x",
                &[]
            )
        )
        .allowed
    );
    let p = [allow(json!("sqs:*"), json!("arn:aws:sqs:*"))];
    assert!(
        evaluate(
            &p,
            &request("sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q", &[])
        )
        .allowed
    );
}

#[test]
fn iam_explicit_deny_beats_allow_and_implicit_deny_reads_like_aws() {
    let p = [
        allow(json!("events:PutEvents"), json!("*")),
        policy(json!({"Statement": [{"Sid": "NoHubBus", "Effect": "Deny", "Action": "events:PutEvents", "Resource": "arn:aws:events:us-east-1:123456789012:event-bus/hub"}]})).named("Notifier"),
    ];
    let hub = evaluate(
        &p,
        &request(
            "events:PutEvents",
            "arn:aws:events:us-east-1:123456789012:event-bus/hub",
            &[],
        ),
    );
    assert!(!hub.allowed);
    assert_eq!(
        hub.reason,
        "with an explicit deny in an identity-based policy: policy Notifier, statement NoHubBus"
    );
    assert!(
        evaluate(
            &p,
            &request(
                "events:PutEvents",
                "arn:aws:events:us-east-1:123456789012:event-bus/other",
                &[]
            )
        )
        .allowed
    );
    let none = evaluate(
        &p,
        &request("kms:Decrypt", "arn:aws:kms:us-east-1:1:key/k", &[]),
    );
    assert_eq!(
        none,
        Decision {
            allowed: false,
            reason: "because no identity-based policy allows the kms:Decrypt action".into()
        }
    );
}

#[test]
fn iam_not_action_and_not_resource() {
    let p = [policy(
        json!({"Statement": {"Effect": "Allow", "NotAction": ["dynamodb:Delete*", "kms:*"], "Resource": "*"}}),
    )];
    assert!(evaluate(&p, &request("dynamodb:PutItem", TABLE, &[])).allowed);
    assert!(!evaluate(&p, &request("dynamodb:DeleteItem", TABLE, &[])).allowed);
    assert!(
        !evaluate(
            &p,
            &request("kms:Decrypt", "arn:aws:kms:us-east-1:1:key/k", &[])
        )
        .allowed
    );
    let p = [policy(
        json!({"Statement": {"Effect": "Allow", "Action": "dynamodb:*", "NotResource": format!("{TABLE}/index/*")}}),
    )];
    assert!(evaluate(&p, &request("dynamodb:Query", TABLE, &[])).allowed);
    assert!(
        !evaluate(
            &p,
            &request("dynamodb:Query", &format!("{TABLE}/index/I"), &[])
        )
        .allowed
    );
    // A NotAction Deny denies everything else.
    let p = [
        allow(json!("*"), json!("*")),
        policy(
            json!({"Statement": {"Effect": "Deny", "NotAction": "dynamodb:GetItem", "Resource": "*"}}),
        ),
    ];
    assert!(evaluate(&p, &request("dynamodb:GetItem", TABLE, &[])).allowed);
    assert!(!evaluate(&p, &request("dynamodb:PutItem", TABLE, &[])).allowed);
}

fn conditional(condition: Value) -> Vec<PolicyDocument> {
    vec![policy(
        json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": condition}}),
    )]
}

#[test]
fn iam_conditions_string_arn_ifexists_null_and_sets() {
    let bus = "arn:aws:events:us-east-1:111111111111:event-bus/b";
    let p = conditional(
        json!({"StringEquals": {"aws:ResourceAccount": ["111111111111", "222222222222"]}}),
    );
    // Keys compare case-insensitively.
    assert!(
        evaluate(
            &p,
            &request(
                "events:PutEvents",
                bus,
                &[("AWS:resourceaccount", &["111111111111"])]
            )
        )
        .allowed
    );
    assert!(
        !evaluate(
            &p,
            &request(
                "events:PutEvents",
                bus,
                &[("aws:ResourceAccount", &["333333333333"])]
            )
        )
        .allowed
    );
    assert!(!evaluate(&p, &request("events:PutEvents", bus, &[])).allowed);

    let p = conditional(json!({"StringLike": {"ses:FromAddress": "*@partner-hub.local"}}));
    assert!(
        evaluate(
            &p,
            &request(
                "ses:SendEmail",
                "*",
                &[("ses:FromAddress", &["hub@partner-hub.local"])]
            )
        )
        .allowed
    );
    assert!(
        !evaluate(
            &p,
            &request(
                "ses:SendEmail",
                "*",
                &[("ses:FromAddress", &["hub@evil.example"])]
            )
        )
        .allowed
    );

    // ArnLike: per component, so `*` does not cross a colon.
    let p = conditional(
        json!({"ArnLike": {"aws:SourceArn": "arn:aws:events:*:123456789012:rule/partner-hub-dev/*"}}),
    );
    let src = |arn: &str| request("sqs:SendMessage", "*", &[("aws:SourceArn", &[arn])]);
    assert!(
        evaluate(
            &p,
            &src("arn:aws:events:us-east-1:123456789012:rule/partner-hub-dev/r1")
        )
        .allowed
    );
    assert!(
        !evaluate(
            &p,
            &src("arn:aws:events:us-east-1:999999999999:rule/partner-hub-dev/r1")
        )
        .allowed
    );
    let p = conditional(json!({"ArnLike": {"aws:SourceArn": "arn:aws:events:*"}}));
    assert!(!evaluate(&p, &src("arn:aws:events:us-east-1:1:rule/r")).allowed);
    let p = conditional(json!({"ArnNotEquals": {"aws:SourceArn": "arn:aws:events:*:*:rule/*"}}));
    assert!(!evaluate(&p, &src("arn:aws:events:us-east-1:1:rule/r")).allowed);

    // IfExists: an absent key passes, a present one must match.
    let p = conditional(json!({"StringEqualsIfExists": {"events:source": "partner-hub"}}));
    assert!(evaluate(&p, &request("events:PutEvents", bus, &[])).allowed);
    assert!(
        evaluate(
            &p,
            &request(
                "events:PutEvents",
                bus,
                &[("events:source", &["partner-hub"])]
            )
        )
        .allowed
    );
    assert!(
        !evaluate(
            &p,
            &request("events:PutEvents", bus, &[("events:source", &["x"])])
        )
        .allowed
    );

    // Negated operators hold on an absent key.
    let p = conditional(json!({"StringNotEquals": {"events:source": "partner-hub"}}));
    assert!(evaluate(&p, &request("events:PutEvents", bus, &[])).allowed);
    assert!(
        !evaluate(
            &p,
            &request(
                "events:PutEvents",
                bus,
                &[("events:source", &["partner-hub"])]
            )
        )
        .allowed
    );

    let p = conditional(json!({"Null": {"events:source": "true"}}));
    assert!(evaluate(&p, &request("events:PutEvents", bus, &[])).allowed);
    assert!(
        !evaluate(
            &p,
            &request("events:PutEvents", bus, &[("events:source", &["s"])])
        )
        .allowed
    );
    let p = conditional(json!({"Null": {"events:source": false}}));
    assert!(!evaluate(&p, &request("events:PutEvents", bus, &[])).allowed);

    // Keys in one block are ANDed.
    let p = conditional(json!({"StringEquals": {"events:source": "s", "events:detail-type": "d"}}));
    assert!(
        evaluate(
            &p,
            &request(
                "events:PutEvents",
                bus,
                &[("events:source", &["s"]), ("events:detail-type", &["d"])]
            )
        )
        .allowed
    );
    assert!(
        !evaluate(
            &p,
            &request(
                "events:PutEvents",
                bus,
                &[("events:source", &["s"]), ("events:detail-type", &["x"])]
            )
        )
        .allowed
    );

    // Multivalued keys with set operators.
    let recipients = |r: &[&str]| request("ses:SendEmail", "*", &[("ses:Recipients", r)]);
    let p = conditional(json!({"ForAllValues:StringLike": {"ses:Recipients": "*@example.com"}}));
    assert!(evaluate(&p, &recipients(&["a@example.com", "b@example.com"])).allowed);
    assert!(!evaluate(&p, &recipients(&["a@example.com", "b@other.com"])).allowed);
    assert!(evaluate(&p, &request("ses:SendEmail", "*", &[])).allowed);
    let p =
        conditional(json!({"ForAnyValue:StringEquals": {"ses:Recipients": "boss@example.com"}}));
    assert!(evaluate(&p, &recipients(&["a@example.com", "boss@example.com"])).allowed);
    assert!(!evaluate(&p, &request("ses:SendEmail", "*", &[])).allowed);

    let p =
        conditional(json!({"Bool": {"aws:SecureTransport": true}, "NumericLessThan": {"n": 10}}));
    assert!(
        evaluate(
            &p,
            &request(
                "x:Y",
                "*",
                &[("aws:SecureTransport", &["TRUE"]), ("n", &["9.5"])]
            )
        )
        .allowed
    );
    assert!(
        !evaluate(
            &p,
            &request(
                "x:Y",
                "*",
                &[("aws:SecureTransport", &["true"]), ("n", &["10"])]
            )
        )
        .allowed
    );
}

#[test]
fn iam_unknown_operators_fail_closed_and_are_reported() {
    let p = conditional(json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}));
    assert!(!evaluate(&p, &request("x:Y", "*", &[("aws:SourceIp", &["10.0.0.1"])])).allowed);
    let deny = [
        allow(json!("*"), json!("*")),
        policy(
            json!({"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}}}),
        ),
    ];
    let decision = evaluate(&deny, &request("x:Y", "*", &[]));
    assert!(!decision.allowed);
    assert!(
        decision.reason.contains("DateGreaterThan"),
        "{}",
        decision.reason
    );

    let report = unchecked_conditions(&p);
    assert_eq!(report.len(), 1, "{report:?}");
    assert!(report[0].contains("IpAddress"), "{report:?}");
    let p = vec![policy(json!({"Statement": [
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*", "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:events:*:*:rule/*"}}},
        {"Effect": "Allow", "Action": "events:PutEvents", "Resource": "*", "Condition": {"StringEquals": {"aws:ResourceAccount": "1", "events:source": "s"}}},
        {"Effect": "Allow", "Action": "ses:Send*", "Resource": "*", "Condition": {"StringEquals": {"ses:FromAddress": "a@b"}}},
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*", "Condition": {"StringEquals": {"kms:EncryptionContext:purpose": "secrets"}}},
        {"Effect": "Allow", "Action": "dynamodb:Query", "Resource": "*", "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": "x"}}},
    ]}))];
    let report = unchecked_conditions(&p);
    assert_eq!(report.len(), 2, "{report:#?}");
    assert!(report[0].contains("aws:SourceArn"), "{report:?}");
    assert!(report[1].contains("dynamodb:LeadingKeys"), "{report:?}");
}

#[test]
fn iam_policy_documents_parse_like_aws_writes_them() {
    let doc: PolicyDocument = serde_json::from_value(json!({
        "Version": "2012-10-17",
        "Statement": {"Sid": "A", "Effect": "Allow", "Action": "s3:GetObject", "Resource": ["a", "b"],
                      "Condition": {"StringEquals": {"k": ["v", true, 3]}}}
    }))
    .unwrap();
    assert_eq!(doc.statements.len(), 1);
    assert_eq!(doc.statements[0].conditions[0].values, ["v", "true", "3"]);
    assert_eq!(PolicyDocument::from_json(&doc.to_json()).unwrap(), doc);
    for bad in [
        json!({"Statement": {"Effect": "Maybe", "Action": "*", "Resource": "*"}}),
        json!({"Statement": {"Effect": "Allow", "Action": "*", "NotAction": "x", "Resource": "*"}}),
        json!({"Statement": {"Effect": "Allow", "Action": "*"}}),
        json!({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {"k": {"x": 1}}}}}),
        json!({"Version": "2012-10-17"}),
    ] {
        assert!(PolicyDocument::from_json(&bad).is_err(), "{bad}");
    }
}

// ---------------------------------------------------------------- requests

#[test]
fn iam_reads_the_caller_from_sigv4() {
    let req = json_call("dynamodb", "DynamoDB_20120810.GetItem", json!({}));
    assert_eq!(
        access_key_id(&req.headers).as_deref(),
        Some("PartnerApiFunction")
    );
    let c = credential(&req.headers).unwrap();
    assert_eq!(
        (c.region.as_str(), c.service.as_str()),
        ("us-east-1", "dynamodb")
    );
    assert_eq!(access_key_id(&[]), None);
    let unsigned = RawRequest {
        headers: vec![("X-Amz-Target".into(), "DynamoDB_20120810.GetItem".into())],
        ..RawRequest::default()
    };
    assert!(authorization_requests(&unsigned, &index()).is_err());
    assert_eq!(
        index().caller_arn("PartnerApiFunction"),
        "arn:aws:sts::123456789012:assumed-role/PartnerApiFunction/PartnerApiFunction"
    );
}

#[test]
fn iam_transact_write_needs_each_items_action() {
    let req = json_call(
        "dynamodb",
        "DynamoDB_20120810.TransactWriteItems",
        json!({"TransactItems": [
            {"Put": {"TableName": "T", "Item": {"PK": {"S": "a"}}}},
            {"Update": {"TableName": "T", "Key": {"PK": {"S": "b"}}, "UpdateExpression": "SET n = :n"}},
            {"Put": {"TableName": "T", "Item": {"PK": {"S": "c"}}}},
        ]}),
    );
    let requests = authorization_requests(&req, &index()).unwrap();
    assert_eq!(
        pairs(&requests),
        [("dynamodb:PutItem", TABLE), ("dynamodb:UpdateItem", TABLE)]
    );
    // Global context keys ride along.
    assert_eq!(
        requests[0].context["aws:ResourceAccount"],
        [ACCOUNT.to_owned()]
    );
    assert_eq!(
        requests[0].context["aws:RequestedRegion"],
        ["us-east-1".to_owned()]
    );
    assert_eq!(
        requests[0].context["aws:PrincipalArn"],
        ["arn:aws:iam::123456789012:role/PartnerApiFunction".to_owned()]
    );

    let both = [allow(
        json!(["dynamodb:PutItem", "dynamodb:UpdateItem"]),
        json!(TABLE),
    )];
    assert_eq!(authorize(&both, &requests), Ok(()));
    // TransactWriteItems itself grants nothing.
    let without_update = [allow(
        json!(["dynamodb:PutItem", "dynamodb:TransactWriteItems"]),
        json!(TABLE),
    )];
    let denial = authorize(&without_update, &requests).unwrap_err();
    assert_eq!(denial.action, "dynamodb:UpdateItem");
    assert_eq!(denial.resource, TABLE);
    assert_eq!(
        denial.reason,
        "because no identity-based policy allows the dynamodb:UpdateItem action"
    );

    let get = json_call(
        "dynamodb",
        "DynamoDB_20120810.TransactGetItems",
        json!({"TransactItems": [{"Get": {"TableName": TABLE, "Key": {}}}]}),
    );
    assert_eq!(
        pairs(&authorization_requests(&get, &index()).unwrap()),
        [("dynamodb:GetItem", TABLE)]
    );
    let check = json_call(
        "dynamodb",
        "DynamoDB_20120810.TransactWriteItems",
        json!({"TransactItems": [{"ConditionCheck": {"TableName": "T"}}, {"Delete": {"TableName": "U"}}]}),
    );
    assert_eq!(
        pairs(&authorization_requests(&check, &index()).unwrap()),
        [
            ("dynamodb:ConditionCheckItem", TABLE),
            (
                "dynamodb:DeleteItem",
                "arn:aws:dynamodb:us-east-1:123456789012:table/U"
            )
        ]
    );
}

#[test]
fn iam_query_on_an_index_is_checked_against_the_index() {
    let req = json_call(
        "dynamodb",
        "DynamoDB_20120810.Query",
        json!({"TableName": "T", "IndexName": "GSI1", "KeyConditionExpression": "x = :x"}),
    );
    let requests = authorization_requests(&req, &index()).unwrap();
    let index_arn = format!("{TABLE}/index/GSI1");
    assert_eq!(pairs(&requests), [("dynamodb:Query", index_arn.as_str())]);
    assert!(authorize(&[allow(json!("dynamodb:Query"), json!(TABLE))], &requests).is_err());
    assert!(
        authorize(
            &[allow(
                json!("dynamodb:Query"),
                json!([TABLE, format!("{TABLE}/index/*")])
            )],
            &requests
        )
        .is_ok()
    );
    // Without an index, the table; a TableName may be the ARN.
    let req = json_call(
        "dynamodb",
        "DynamoDB_20120810.Scan",
        json!({"TableName": TABLE, "Select": "COUNT"}),
    );
    let requests = authorization_requests(&req, &index()).unwrap();
    assert_eq!(pairs(&requests), [("dynamodb:Scan", TABLE)]);
    assert_eq!(requests[0].context["dynamodb:Select"], ["COUNT".to_owned()]);
}

#[test]
fn iam_batch_write_is_checked_against_every_table() {
    let req = json_call(
        "dynamodb",
        "DynamoDB_20120810.BatchWriteItem",
        json!({"RequestItems": {"T": [{"DeleteRequest": {"Key": {}}}], "Other": [{"PutRequest": {"Item": {}}}]}}),
    );
    let requests = authorization_requests(&req, &index()).unwrap();
    let other = "arn:aws:dynamodb:us-east-1:123456789012:table/Other";
    let mut got = pairs(&requests);
    got.sort();
    assert_eq!(
        got,
        [
            ("dynamodb:BatchWriteItem", other),
            ("dynamodb:BatchWriteItem", TABLE)
        ]
    );
    let denial = authorize(
        &[allow(json!("dynamodb:BatchWriteItem"), json!(TABLE))],
        &requests,
    )
    .unwrap_err();
    assert_eq!(denial.resource, other);
    let req = json_call(
        "dynamodb",
        "DynamoDB_20120810.BatchGetItem",
        json!({"RequestItems": {"T": {"Keys": []}}}),
    );
    assert_eq!(
        pairs(&authorization_requests(&req, &index()).unwrap()),
        [("dynamodb:BatchGetItem", TABLE)]
    );
}

#[test]
fn iam_kms_resolves_aliases_and_moto_ciphertexts() {
    let key = "arn:aws:kms:us-east-1:123456789012:key/k-123";
    for key_id in [
        "k-123",
        key,
        "alias/partner-hub-dev-secrets",
        "arn:aws:kms:us-east-1:123456789012:alias/partner-hub-dev-secrets",
    ] {
        let req = json_call(
            "kms",
            "TrentService.GenerateDataKey",
            json!({"KeyId": key_id, "KeySpec": "AES_256"}),
        );
        let requests = authorization_requests(&req, &index()).unwrap();
        assert_eq!(pairs(&requests), [("kms:GenerateDataKey", key)], "{key_id}");
        assert_eq!(
            requests[0].context.contains_key("kms:RequestAlias"),
            key_id.contains("alias/")
        );
    }
    let unknown = json_call(
        "kms",
        "TrentService.Encrypt",
        json!({"KeyId": "alias/nope", "Plaintext": "AA=="}),
    );
    let err = authorization_requests(&unknown, &index()).unwrap_err();
    assert!(err.contains("alias/nope"), "{err}");

    // moto's blob: the key id in 36 bytes, a 12-byte IV, a 16-byte tag, the ciphertext.
    let key_id = "0b5a4c6e-1f0e-4f0d-9d7e-3b2a1c0d9e8f";
    let mut blob = key_id.as_bytes().to_vec();
    blob.extend([7u8; 12 + 16 + 32]);
    let blob = base64::engine::general_purpose::STANDARD.encode(blob);
    assert_eq!(key_id_of_moto_ciphertext(&blob).unwrap(), key_id);
    let req = json_call(
        "kms",
        "TrentService.Decrypt",
        json!({"CiphertextBlob": blob, "EncryptionContext": {"purpose": "secrets"}}),
    );
    let requests = authorization_requests(&req, &index()).unwrap();
    let expected = format!("arn:aws:kms:us-east-1:123456789012:key/{key_id}");
    assert_eq!(pairs(&requests), [("kms:Decrypt", expected.as_str())]);
    assert_eq!(
        requests[0].context["kms:EncryptionContext:purpose"],
        ["secrets".to_owned()]
    );
    assert_eq!(
        requests[0].context["kms:EncryptionContextKeys"],
        ["purpose".to_owned()]
    );
    let re_encrypt = json_call(
        "kms",
        "TrentService.ReEncrypt",
        json!({"CiphertextBlob": blob, "SourceEncryptionContext": {"a": "1"},
               "DestinationKeyId": "alias/partner-hub-dev-secrets", "DestinationEncryptionContext": {"b": "2"}}),
    );
    let requests = authorization_requests(&re_encrypt, &index()).unwrap();
    assert_eq!(
        pairs(&requests),
        [
            ("kms:ReEncryptFrom", expected.as_str()),
            ("kms:ReEncryptTo", key)
        ]
    );
    assert_eq!(
        requests[0].context["kms:EncryptionContextKeys"],
        ["a".to_owned()]
    );
    assert_eq!(
        requests[1].context["kms:EncryptionContext:b"],
        ["2".to_owned()]
    );
    // Not moto's format and no KeyId: cannot tell.
    let req = json_call(
        "kms",
        "TrentService.Decrypt",
        json!({"CiphertextBlob": "AAAA"}),
    );
    assert!(authorization_requests(&req, &index()).is_err());
}

#[test]
fn iam_put_events_on_each_entrys_bus() {
    // moto delivers by an ARN's last segment whatever its account: a bus of another
    // account (or region, or with a path) cannot be played, so it is refused.
    for foreign in [
        "arn:aws:events:us-east-1:444455556666:event-bus/partner",
        "arn:aws:events:eu-west-1:123456789012:event-bus/partner",
        "arn:aws:events:us-east-1:123456789012:event-bus/x/partner",
    ] {
        let req = json_call(
            "events",
            "AWSEvents.PutEvents",
            json!({"Entries": [{"EventBusName": foreign, "Source": "s", "DetailType": "x", "Detail": "{}"}]}),
        );
        assert!(authorization_requests(&req, &index()).is_err(), "{foreign}");
    }
    let partner_bus = "arn:aws:events:us-east-1:123456789012:event-bus/partner";
    let req = json_call(
        "events",
        "AWSEvents.PutEvents",
        json!({"Entries": [
            {"EventBusName": partner_bus, "Source": "partner-hub", "DetailType": "installation.ready", "Detail": "{}"},
            {"EventBusName": "partner-hub-dev", "Source": "partner-hub", "DetailType": "x", "Detail": "{}"},
            {"Source": "s", "DetailType": "x", "Detail": "{}"},
        ]}),
    );
    let requests = authorization_requests(&req, &index()).unwrap();
    assert_eq!(
        pairs(&requests),
        [
            ("events:PutEvents", partner_bus),
            (
                "events:PutEvents",
                "arn:aws:events:us-east-1:123456789012:event-bus/partner-hub-dev"
            ),
            (
                "events:PutEvents",
                "arn:aws:events:us-east-1:123456789012:event-bus/default"
            ),
        ]
    );
    assert_eq!(
        requests[0].context["aws:ResourceAccount"],
        ["123456789012".to_owned()]
    );
    assert_eq!(
        requests[0].context["events:detail-type"],
        ["installation.ready".to_owned()]
    );
    let p = conditional(json!({"StringEquals": {"events:detail-type": "installation.ready"}}));
    assert!(evaluate(&p, &requests[0]).allowed);
    assert!(!evaluate(&p, &requests[1]).allowed);

    let rule = json_call(
        "events",
        "AWSEvents.PutTargets",
        json!({"Rule": "r", "EventBusName": "partner-hub-dev", "Targets": [{"Id": "1", "Arn": "arn:aws:lambda:us-east-1:1:function:f"}]}),
    );
    let requests = authorization_requests(&rule, &index()).unwrap();
    assert_eq!(
        pairs(&requests),
        [(
            "events:PutTargets",
            "arn:aws:events:us-east-1:123456789012:rule/partner-hub-dev/r"
        )]
    );
    let rule = json_call("events", "AWSEvents.DeleteRule", json!({"Name": "r"}));
    assert_eq!(
        pairs(&authorization_requests(&rule, &index()).unwrap()),
        [(
            "events:DeleteRule",
            "arn:aws:events:us-east-1:123456789012:rule/r"
        )]
    );
    let describe = json_call(
        "events",
        "AWSEvents.DescribeEventBus",
        json!({"Name": partner_bus}),
    );
    assert_eq!(
        pairs(&authorization_requests(&describe, &index()).unwrap()),
        [("events:DescribeEventBus", partner_bus)]
    );
}

#[test]
fn iam_ses_from_address_with_a_display_name() {
    assert_eq!(
        split_address("\"Partner Hub\" <hub@partner-hub.local>"),
        (
            Some("Partner Hub".to_owned()),
            "hub@partner-hub.local".to_owned()
        )
    );
    assert_eq!(split_address("a@b.c"), (None, "a@b.c".to_owned()));
    let send = |from: &str| {
        rest_call(
            "ses",
            "POST",
            "/v2/email/outbound-emails",
            json!({
                "FromEmailAddress": from,
                "Destination": {"ToAddresses": ["Shop Owner <owner@shop.example>"], "BccAddresses": ["audit@shop.example"]},
                "Content": {"Simple": {"Subject": {"Data": "Hi"}, "Body": {"Text": {"Data": "Hello"}}}},
            }),
        )
    };
    let requests =
        authorization_requests(&send("Partner Hub <hub@partner-hub.local>"), &index()).unwrap();
    assert_eq!(
        pairs(&requests),
        [(
            "ses:SendEmail",
            "arn:aws:ses:us-east-1:123456789012:identity/hub@partner-hub.local"
        )]
    );
    let context = &requests[0].context;
    assert_eq!(
        context["ses:FromAddress"],
        ["hub@partner-hub.local".to_owned()]
    );
    assert_eq!(context["ses:FromDisplayName"], ["Partner Hub".to_owned()]);
    assert_eq!(
        context["ses:Recipients"],
        [
            "owner@shop.example".to_owned(),
            "audit@shop.example".to_owned()
        ]
    );
    // The template's statement: ses:SendEmail on *, From must be the sender.
    let p = conditional(json!({"StringEquals": {"ses:FromAddress": "hub@partner-hub.local"}}));
    assert!(authorize(&p, &requests).is_ok());
    // An address that is not itself verified is authorized on its domain.
    let requests = authorization_requests(&send("other@partner-hub.local"), &index()).unwrap();
    assert_eq!(
        pairs(&requests),
        [(
            "ses:SendEmail",
            "arn:aws:ses:us-east-1:123456789012:identity/partner-hub.local"
        )]
    );
    assert!(authorize(&p, &requests).is_err());

    let create = rest_call(
        "ses",
        "POST",
        "/v2/email/identities",
        json!({"EmailIdentity": "hub@partner-hub.local"}),
    );
    assert_eq!(
        pairs(&authorization_requests(&create, &index()).unwrap()),
        [(
            "ses:CreateEmailIdentity",
            "arn:aws:ses:us-east-1:123456789012:identity/hub@partner-hub.local"
        )]
    );
    let get = rest_call(
        "ses",
        "GET",
        "/v2/email/identities/hub%40partner-hub.local",
        json!(null),
    );
    assert_eq!(
        pairs(&authorization_requests(&get, &index()).unwrap()),
        [(
            "ses:GetEmailIdentity",
            "arn:aws:ses:us-east-1:123456789012:identity/hub@partner-hub.local"
        )]
    );
}

#[test]
fn iam_sqs_lambda_and_streams() {
    let queue = "arn:aws:sqs:us-east-1:123456789012:dlq";
    let url = "http://sqs.us-east-1.localhost.localstack.cloud:4566/123456789012/dlq";
    let send = json_call(
        "sqs",
        "AmazonSQS.SendMessageBatch",
        json!({"QueueUrl": url, "Entries": []}),
    );
    assert_eq!(
        pairs(&authorization_requests(&send, &index()).unwrap()),
        [("sqs:SendMessage", queue)]
    );
    let query = RawRequest {
        method: "POST".into(),
        path: "/".into(),
        query: None,
        headers: vec![
            authorization("sqs"),
            (
                "Content-Type".into(),
                "application/x-www-form-urlencoded; charset=utf-8".into(),
            ),
        ],
        body: format!(
            "Action=ReceiveMessage&QueueUrl={}&Version=2012-11-05",
            url.replace(':', "%3A").replace('/', "%2F")
        )
        .into_bytes(),
    };
    assert_eq!(
        pairs(&authorization_requests(&query, &index()).unwrap()),
        [("sqs:ReceiveMessage", queue)]
    );
    assert_eq!(protocol(&query), Protocol::AwsQuery);
    let get_url = json_call("sqs", "AmazonSQS.GetQueueUrl", json!({"QueueName": "dlq"}));
    assert_eq!(
        pairs(&authorization_requests(&get_url, &index()).unwrap()),
        [("sqs:GetQueueUrl", queue)]
    );

    let mut invoke = rest_call(
        "lambda",
        "POST",
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Ahub-Outbound/invocations",
        json!({}),
    );
    assert_eq!(
        pairs(&authorization_requests(&invoke, &index()).unwrap()),
        [(
            "lambda:InvokeFunction",
            "arn:aws:lambda:us-east-1:123456789012:function:hub-Outbound"
        )]
    );
    invoke.path = "/2015-03-31/functions/hub-Outbound/invocations".into();
    invoke.query = Some("Qualifier=live".into());
    assert_eq!(
        pairs(&authorization_requests(&invoke, &index()).unwrap()),
        [(
            "lambda:InvokeFunction",
            "arn:aws:lambda:us-east-1:123456789012:function:hub-Outbound:live"
        )]
    );

    let stream = format!("{TABLE}/stream/2026-12-04T00:00:00.000");
    let iterator = format!("{stream}|1|c29tZSByYW5kb20gYnl0ZXM=");
    assert_eq!(stream_arn_of_shard_iterator(&iterator).unwrap(), stream);
    let records = json_call(
        "dynamodb",
        "DynamoDBStreams_20120810.GetRecords",
        json!({"ShardIterator": iterator}),
    );
    assert_eq!(
        pairs(&authorization_requests(&records, &index()).unwrap()),
        [("dynamodb:GetRecords", stream.as_str())]
    );
    let describe = json_call(
        "dynamodb",
        "DynamoDBStreams_20120810.DescribeStream",
        json!({"StreamArn": stream}),
    );
    assert_eq!(
        pairs(&authorization_requests(&describe, &index()).unwrap()),
        [("dynamodb:DescribeStream", stream.as_str())]
    );
    let list = json_call(
        "dynamodb",
        "DynamoDBStreams_20120810.ListStreams",
        json!({}),
    );
    assert_eq!(
        pairs(&authorization_requests(&list, &index()).unwrap()),
        [("dynamodb:ListStreams", "*")]
    );
    let bad = json_call(
        "dynamodb",
        "DynamoDBStreams_20120810.GetRecords",
        json!({"ShardIterator": "opaque"}),
    );
    assert!(authorization_requests(&bad, &index()).is_err());
}

#[test]
fn iam_anything_else_is_refused_not_passed() {
    for req in [
        json_call(
            "dynamodb",
            "DynamoDB_20120810.ExecuteStatement",
            json!({"Statement": "SELECT"}),
        ),
        json_call("sns", "SNS.Publish", json!({})),
        rest_call("ses", "PUT", "/v2/email/account/details", json!({})),
        rest_call("s3", "GET", "/bucket/key", json!(null)),
    ] {
        let err = authorization_requests(&req, &index()).unwrap_err();
        assert!(err.starts_with("the stand-in cannot authorize "), "{err}");
    }
    let err = authorization_requests(
        &json_call("dynamodb", "DynamoDB_20120810.PutItem", json!({"Item": {}})),
        &index(),
    )
    .unwrap_err();
    assert!(err.contains("without TableName"), "{err}");
}

#[test]
fn iam_access_denied_is_aws_shaped() {
    let message = "User: arn:aws:sts::123456789012:assumed-role/R/F is not authorized to perform: dynamodb:UpdateItem on resource: arn:aws:dynamodb:us-east-1:123456789012:table/T because no identity-based policy allows the dynamodb:UpdateItem action";
    let header = |headers: &[(String, String)], name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let req = json_call("dynamodb", "DynamoDB_20120810.UpdateItem", json!({}));
    let (status, headers, body) = access_denied_response(
        &req,
        "arn:aws:sts::123456789012:assumed-role/R/F",
        "dynamodb:UpdateItem",
        TABLE,
        "because no identity-based policy allows the dynamodb:UpdateItem action",
    );
    assert_eq!(status, 400);
    assert_eq!(
        header(&headers, "content-type").as_deref(),
        Some("application/x-amz-json-1.0")
    );
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body,
        json!({"__type": "AccessDeniedException", "message": message})
    );

    let kms = json_call("kms", "TrentService.Decrypt", json!({}));
    let (status, headers, _) = access_denied_response(&kms, "p", "kms:Decrypt", "k", "r");
    assert_eq!(status, 400);
    assert_eq!(
        header(&headers, "content-type").as_deref(),
        Some("application/x-amz-json-1.1")
    );

    let ses = rest_call("ses", "POST", "/v2/email/outbound-emails", json!({}));
    let (status, headers, body) = access_denied_response(&ses, "p", "ses:SendEmail", "i", "r");
    assert_eq!(status, 403);
    assert_eq!(
        header(&headers, "x-amzn-errortype").as_deref(),
        Some("AccessDeniedException")
    );
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body["message"],
        "User: p is not authorized to perform: ses:SendEmail on resource: i r"
    );

    let query = RawRequest {
        query: Some("Action=SendMessage&QueueUrl=x".into()),
        headers: vec![authorization("sqs")],
        ..RawRequest::default()
    };
    let (status, _, body) = access_denied_response(&query, "p", "sqs:SendMessage", "q<", "r");
    assert_eq!(status, 403);
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    assert!(body.contains("q&lt;"), "{body}");
}

// --------------------------------------------------------------- rendering

fn template() -> Template {
    Template::load(&crate::project_root().join("infra/template.yaml")).unwrap()
}

/// Stand-ins for the stack's resources; conditions false unless named.
fn lookup(conditions: &'static [&'static str]) -> impl Fn(&str, Option<&str>) -> Option<String> {
    move |id: &str, attr: Option<&str>| {
        if let Some(condition) = id.strip_prefix("Condition::") {
            return Some(conditions.contains(&condition).to_string());
        }
        let value = match (id, attr) {
            ("AWS::Region", None) => "us-east-1",
            ("AWS::AccountId", None) => ACCOUNT,
            ("AWS::Partition", None) => "aws",
            ("Stage", None) => "dev",
            ("HubTable", Some("Arn")) => TABLE,
            ("HubTable", Some("StreamArn")) => {
                "arn:aws:dynamodb:us-east-1:123456789012:table/T/stream/2026-12-04T00:00:00.000"
            }
            ("DeadLetterQueue", Some("Arn")) => "arn:aws:sqs:us-east-1:123456789012:dlq",
            ("SecretsKey", Some("Arn")) => "arn:aws:kms:us-east-1:123456789012:key/secrets",
            ("EmbedSigningKey", Some("Arn")) => "arn:aws:kms:us-east-1:123456789012:key/embed",
            ("HubEventBus", Some("Arn")) => {
                "arn:aws:events:us-east-1:123456789012:event-bus/partner-hub-dev"
            }
            ("PartnerIngressBus", Some("Arn")) => {
                "arn:aws:events:us-east-1:123456789012:event-bus/partner-hub-ingress-dev"
            }
            ("SenderEmail", None) => "hub@partner-hub.local",
            ("PartnerBusAccounts", None) => "111111111111,222222222222",
            _ => return None,
        };
        Some(value.to_owned())
    }
}

#[test]
fn iam_renders_usage_records_function() {
    let policies = function_policies(&template(), "UsageRecordsFunction", &lookup(&[])).unwrap();
    let names: Vec<_> = policies.iter().map(|p| p.name.clone().unwrap()).collect();
    assert_eq!(
        names,
        [
            "AWSLambdaBasicExecutionRole",
            "UsageRecordsFunctionRolePolicy0",
            "UsageRecordsFunctionEventInvokeConfigOnFailureSQSPolicy"
        ]
    );
    let allowed =
        |action: &str, resource: &str| evaluate(&policies, &request(action, resource, &[])).allowed;
    assert!(allowed("dynamodb:Query", TABLE));
    assert!(allowed(
        "dynamodb:Query",
        &format!("{TABLE}/index/DueIndex")
    ));
    // A metered day is a transaction of Puts: each needs PutItem (it was missing).
    assert!(allowed("dynamodb:PutItem", TABLE));
    assert!(!allowed("dynamodb:ConditionCheckItem", TABLE));
    assert!(!allowed("dynamodb:UpdateItem", TABLE));
    assert!(!allowed(
        "kms:Decrypt",
        "arn:aws:kms:us-east-1:123456789012:key/secrets"
    ));
    assert!(allowed(
        "sqs:SendMessage",
        "arn:aws:sqs:us-east-1:123456789012:dlq"
    ));
    assert!(!allowed(
        "sqs:SendMessage",
        "arn:aws:sqs:us-east-1:123456789012:other"
    ));
    assert!(allowed(
        "logs:PutLogEvents",
        "arn:aws:logs:us-east-1:123456789012:log-group:x"
    ));

    // A day's usage stored as a TransactWriteItems of Puts is allowed; a condition
    // check in it (which the code never sends) is not.
    let puts = json_call(
        "dynamodb",
        "DynamoDB_20120810.TransactWriteItems",
        json!({"TransactItems": [{"Put": {"TableName": "T", "Item": {}}}, {"Put": {"TableName": "T", "Item": {}}}]}),
    );
    assert!(authorize(&policies, &authorization_requests(&puts, &index()).unwrap()).is_ok());
    let req = json_call(
        "dynamodb",
        "DynamoDB_20120810.TransactWriteItems",
        json!({"TransactItems": [{"Put": {"TableName": "T", "Item": {}}}, {"ConditionCheck": {"TableName": "T", "Key": {}}}]}),
    );
    let denial =
        authorize(&policies, &authorization_requests(&req, &index()).unwrap()).unwrap_err();
    assert_eq!(denial.action, "dynamodb:ConditionCheckItem");
}

#[test]
fn iam_renders_outbound_deliveries_function() {
    let policies =
        function_policies(&template(), "OutboundDeliveriesFunction", &lookup(&[])).unwrap();
    let allowed =
        |action: &str, resource: &str| evaluate(&policies, &request(action, resource, &[])).allowed;
    let secrets = "arn:aws:kms:us-east-1:123456789012:key/secrets";
    assert!(allowed("kms:Decrypt", secrets));
    assert!(!allowed("kms:GenerateDataKey", secrets));
    assert!(!allowed(
        "kms:Decrypt",
        "arn:aws:kms:us-east-1:123456789012:key/embed"
    ));
    assert!(allowed("dynamodb:PutItem", TABLE));
    assert!(allowed("dynamodb:GetItem", &format!("{TABLE}/index/GSI1")));
    assert!(!allowed("dynamodb:DeleteItem", TABLE));
    assert!(allowed(
        "sqs:SendMessage",
        "arn:aws:sqs:us-east-1:123456789012:dlq"
    ));
    assert!(unchecked_conditions(&policies).is_empty());
}

#[test]
fn iam_renders_conditions_ifs_and_list_parameters() {
    let t = template();
    // HasSenderEmail false: the SES statement is AWS::NoValue.
    let off = function_policies(&t, "AdminWebFunction", &lookup(&[])).unwrap();
    let from = [("ses:FromAddress", &["hub@partner-hub.local"][..])];
    assert!(!evaluate(&off, &request("ses:SendEmail", "*", &from)).allowed);
    let on = function_policies(&t, "AdminWebFunction", &lookup(&["HasSenderEmail"])).unwrap();
    assert!(
        evaluate(
            &on,
            &request(
                "ses:SendEmail",
                "arn:aws:ses:us-east-1:123456789012:identity/hub@partner-hub.local",
                &from
            )
        )
        .allowed
    );
    assert!(
        !evaluate(
            &on,
            &request(
                "ses:SendEmail",
                "*",
                &[("ses:FromAddress", &["x@partner-hub.local"])]
            )
        )
        .allowed
    );

    // PartnerBusAccounts (a CommaDelimitedList) narrows the accounts; the hub's buses are denied.
    let notifier = function_policies(
        &t,
        "PartnerNotifierFunction",
        &lookup(&["HasPartnerBusAccounts"]),
    )
    .unwrap();
    let put = |bus: &str| {
        let account = bus.split(':').nth(4).unwrap();
        evaluate(
            &notifier,
            &request(
                "events:PutEvents",
                bus,
                &[("aws:ResourceAccount", &[account])],
            ),
        )
    };
    assert!(put("arn:aws:events:eu-west-1:222222222222:event-bus/partner").allowed);
    assert!(!put("arn:aws:events:eu-west-1:333333333333:event-bus/partner").allowed);
    let hub = put("arn:aws:events:us-east-1:123456789012:event-bus/partner-hub-dev");
    assert!(!hub.allowed);
    assert!(
        hub.reason.starts_with("with an explicit deny"),
        "{}",
        hub.reason
    );
    let open = function_policies(&t, "PartnerNotifierFunction", &lookup(&[])).unwrap();
    assert!(
        evaluate(
            &open,
            &request(
                "events:PutEvents",
                "arn:aws:events:eu-west-1:333333333333:event-bus/partner",
                &[("aws:ResourceAccount", &["333333333333"])]
            )
        )
        .allowed
    );
}

#[test]
fn iam_every_template_function_renders_and_is_fully_checked() {
    let t = template();
    let functions = t.functions().unwrap();
    assert!(functions.len() > 10);
    const NONE: &[&str] = &[];
    const BOTH: &[&str] = &["HasSenderEmail", "HasPartnerBusAccounts"];
    for f in functions {
        for conditions in [NONE, BOTH] {
            let policies = function_policies(&t, &f.logical_id, &lookup(conditions))
                .unwrap_or_else(|e| panic!("{}: {e}", f.logical_id));
            assert!(policies.len() >= 2, "{}", f.logical_id);
            let report = unchecked_conditions(&policies);
            assert!(report.is_empty(), "{}: {report:?}", f.logical_id);
        }
    }
    let err = function_policies(&t, "HubTable", &lookup(&[])).unwrap_err();
    assert!(err.contains("not an AWS::Serverless::Function"), "{err}");
}

#[test]
fn iam_refuses_sam_policy_templates_and_renders_managed_policies() {
    let t = Template::parse(
        r#"
Parameters:
  Accounts: {Type: CommaDelimitedList, Default: "1,2"}
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - AWSLambdaBasicExecutionRole
        - DynamoDBCrudPolicy: {TableName: !Ref T}
  Tracing:
    Type: AWS::Serverless::Function
    Properties:
      Tracing: Active
      Events:
        Queue: {Type: SQS, Properties: {Queue: !GetAtt Q.Arn}}
      Policies:
        Statement:
          Effect: Allow
          Action: sqs:SendMessage
          Resource: !Sub ["arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${Name}", {Name: q}]
  Refs:
    Type: AWS::Serverless::Function
    Properties:
      Policies: [!Ref OperatorPolicy]
  Attached:
    Type: AWS::IAM::Policy
    Properties:
      PolicyName: extra
      Roles: [!Ref TracingRole]
      PolicyDocument:
        Statement: {Effect: Allow, Action: kms:Decrypt, Resource: !GetAtt SecretsKey.Arn}
  OperatorPolicy:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      ManagedPolicyName: !Sub "hub-operator-${Stage}"
      PolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Action: [dynamodb:Query, dynamodb:GetItem]
            Resource: [!GetAtt HubTable.Arn, {"Fn::Sub": "${HubTable.Arn}/index/*"}]
          - Effect: Allow
            Action: events:PutEvents
            Resource: "*"
            Condition: {StringEquals: {aws:ResourceAccount: !Ref Accounts}}
"#,
    )
    .unwrap();
    let err = function_policies(&t, "Fn", &lookup(&[])).unwrap_err();
    assert!(err.contains("DynamoDBCrudPolicy"), "{err}");

    let lookup_with_accounts = |id: &str, attr: Option<&str>| match id {
        "Accounts" => Some("1,2".to_owned()),
        _ => lookup(&[])(id, attr),
    };
    let tracing = function_policies(&t, "Tracing", &lookup_with_accounts).unwrap();
    let names: Vec<_> = tracing.iter().map(|p| p.name.clone().unwrap()).collect();
    assert_eq!(
        names,
        [
            "AWSLambdaBasicExecutionRole",
            "TracingRolePolicy0",
            "AWSLambdaSQSQueueExecutionRole",
            "extra",
            "AWSXrayWriteOnlyAccess"
        ]
    );
    let refs = function_policies(&t, "Refs", &lookup_with_accounts).unwrap();
    assert_eq!(refs[1].name.as_deref(), Some("hub-operator-dev"));
    assert!(
        evaluate(
            &tracing,
            &request(
                "sqs:SendMessage",
                "arn:aws:sqs:us-east-1:123456789012:q",
                &[]
            )
        )
        .allowed
    );

    let operator = managed_policy(&t, "OperatorPolicy", &lookup_with_accounts).unwrap();
    assert_eq!(operator.name.as_deref(), Some("hub-operator-dev"));
    let p = [operator];
    assert!(
        evaluate(
            &p,
            &request("dynamodb:Query", &format!("{TABLE}/index/GSI1"), &[])
        )
        .allowed
    );
    assert!(!evaluate(&p, &request("dynamodb:PutItem", TABLE, &[])).allowed);
    let ctx = |a: &'static str| -> BTreeMap<String, Vec<String>> {
        BTreeMap::from([("aws:ResourceAccount".to_owned(), vec![a.to_owned()])])
    };
    let put = |a| AuthzRequest {
        action: "events:PutEvents".into(),
        resource: "*".into(),
        context: ctx(a),
    };
    assert!(evaluate(&p, &put("2")).allowed);
    assert!(!evaluate(&p, &put("3")).allowed);
    assert!(managed_policy(&t, "Fn", &lookup(&[])).is_err());
}
