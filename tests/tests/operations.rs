//! What happens on AWS that the stand-in cannot show: checked on the template itself.
//! Every asynchronous path has a failure destination, every alarm reaches the alarm
//! topic, access logs never record a path, and two stages deploy side by side.

use std::collections::BTreeSet;

use hub_emulator::{Template, template::resolve};
use yaml_serde::Value;

fn template() -> Template {
    Template::load(&hub_emulator::project_root().join("infra/template.yaml")).unwrap()
}

/// Every `Events` entry of every function: (function, event name, type, properties).
fn function_events(template: &Template) -> Vec<(String, String, String, Value)> {
    let mut events = Vec::new();
    for (id, props) in template.resources_of_type("AWS::Serverless::Function") {
        let Some(map) = props.get("Events").and_then(Value::as_mapping) else {
            continue;
        };
        for (name, event) in map {
            events.push((
                id.to_owned(),
                name.as_str().unwrap().to_owned(),
                event["Type"].as_str().unwrap().to_owned(),
                event.get("Properties").cloned().unwrap_or(Value::Null),
            ));
        }
    }
    events
}

#[test]
fn every_asynchronous_path_has_a_failure_destination() {
    let template = template();
    // Lambda's own retries of an asynchronous invocation end in the queue, for every
    // function (rules and schedules invoke asynchronously).
    let invoke = &template.root()["Globals"]["Function"]["EventInvokeConfig"];
    assert_eq!(invoke["DestinationConfig"]["OnFailure"]["Type"], "SQS");
    assert!(invoke["MaximumRetryAttempts"].as_u64().is_some());
    let queue = &invoke["DestinationConfig"]["OnFailure"]["Destination"];
    assert!(
        format!("{queue:?}").contains("DeadLetterQueue"),
        "{queue:?}"
    );

    let mut checked = 0;
    for (function, name, kind, props) in function_events(&template) {
        let label = format!("{function}.{name}");
        match kind.as_str() {
            // Delivery failures of the rule or the scheduler land in the queue too.
            "EventBridgeRule" | "ScheduleV2" => {
                assert!(props.get("DeadLetterConfig").is_some(), "{label}: no DLQ");
                assert!(
                    props.get("RetryPolicy").is_some(),
                    "{label}: no retry policy"
                );
                checked += 1;
            }
            "HttpApi" => {}
            other => panic!("{label}: event type {other} is not checked here"),
        }
    }
    assert!(checked >= 7, "{checked}");
}

#[test]
fn every_alarm_notifies_the_alarm_topic() {
    let template = template();
    let alarms: Vec<_> = template
        .resources_of_type("AWS::CloudWatch::Alarm")
        .collect();
    assert!(alarms.len() >= 7, "{}", alarms.len());
    for (id, props) in alarms {
        let actions = format!("{:?}", props["AlarmActions"]);
        assert!(actions.contains("AlarmTopic"), "{id}: {actions}");
    }
    let covered: BTreeSet<String> = template
        .resources_of_type("AWS::CloudWatch::Alarm")
        .map(|(_, props)| format!("{props:?}"))
        .collect();
    let all = covered.into_iter().collect::<String>();
    for metric in [
        "ApproximateNumberOfMessagesVisible", // the dead-letter queue
        "Errors",
        "Throttles",
        "5xx",
        "Latency",
        "TargetErrorCount",
        "DeadLettersParked",
    ] {
        assert!(all.contains(metric), "no alarm on {metric}");
    }
}

#[test]
fn access_logs_record_the_route_key_and_request_id_never_the_path() {
    let template = template();
    let (_, api) = template
        .resources_of_type("AWS::Serverless::HttpApi")
        .next()
        .unwrap();
    let format = api["AccessLogSettings"]["Format"].as_str().unwrap();
    let fields: serde_json::Value = serde_json::from_str(format).expect("JSON access logs");
    assert_eq!(fields["routeKey"], "$context.routeKey");
    assert_eq!(fields["requestId"], "$context.requestId");
    for secret_bearing in ["$context.path", "$context.requestOverride", "$input"] {
        assert!(!format.contains(secret_bearing), "{secret_bearing}");
    }
}

/// Every name a stack gives its resources, rendered for `stage`.
fn names_for(template: &Template, stage: &str) -> BTreeSet<String> {
    let stack = format!("hub-{stage}");
    let lookup = |id: &str, attr: Option<&str>| -> Option<String> {
        Some(match (id, attr) {
            ("Stage", None) => stage.to_owned(),
            ("AWS::StackName", _) => stack.clone(),
            ("AWS::Region", _) => "eu-west-1".to_owned(),
            ("AWS::AccountId", _) => "111122223333".to_owned(),
            ("AWS::Partition", _) => "aws".to_owned(),
            ("AWS::URLSuffix", _) => "amazonaws.com".to_owned(),
            // Physical ids CloudFormation generates carry the stack name.
            (id, _) => format!("{stack}-{id}-GENERATED"),
        })
    };
    let mut names = BTreeSet::new();
    let mut visit = |key: &str, value: &Value| {
        let named = matches!(
            key,
            "Name"
                | "AliasName"
                | "TableName"
                | "QueueName"
                | "TopicName"
                | "FunctionName"
                | "LogGroupName"
                | "AlarmName"
                | "RoleName"
                | "ScheduleName"
        );
        if named && let Some(name) = resolve(value, &lookup) {
            names.insert(name);
        }
    };
    fn walk(value: &Value, visit: &mut dyn FnMut(&str, &Value)) {
        match value {
            Value::Mapping(map) => {
                for (k, v) in map {
                    if let Some(k) = k.as_str() {
                        visit(k, v);
                    }
                    walk(v, visit);
                }
            }
            Value::Sequence(items) => items.iter().for_each(|v| walk(v, visit)),
            Value::Tagged(tagged) => walk(&tagged.value, visit),
            _ => {}
        }
    }
    // Names live in resources' properties (and in events' properties, for schedules);
    // `Dimensions` entries also have a `Name` key, which is no resource name.
    for (_, resource) in template
        .root()
        .get("Resources")
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
    {
        let mut props = resource.get("Properties").cloned().unwrap_or(Value::Null);
        if let Some(map) = props.as_mapping_mut() {
            map.remove("Dimensions");
            map.remove("Metrics");
            map.remove("AttributeDefinitions");
            map.remove("KeySchema");
            map.remove("GlobalSecondaryIndexes");
            map.remove("TimeToLiveSpecification");
        }
        walk(&props, &mut visit);
    }
    names
}

#[test]
fn two_stages_deploy_side_by_side_in_one_account() {
    let template = template();
    // SAM names a schedule after its logical id unless told otherwise: every one is named.
    for (function, name, kind, props) in function_events(&template) {
        if kind == "ScheduleV2" {
            let named = props
                .get("Name")
                .map(|v| format!("{v:?}"))
                .unwrap_or_default();
            assert!(named.contains("${Stage}"), "{function}.{name}: {named}");
        }
    }
    let dev = names_for(&template, "dev");
    let prod = names_for(&template, "prod");
    assert!(dev.len() >= 10, "{dev:?}");
    let shared: Vec<_> = dev.intersection(&prod).collect();
    assert!(shared.is_empty(), "names both stages would use: {shared:?}");
}

#[test]
fn every_http_function_may_count_failed_authentications() {
    // The failure counters are UpdateItem ADDs: without the action, throttling would
    // silently be off on AWS (the counter's failure is only logged).
    let template = template();
    let mut checked = 0;
    for (function, _, kind, _) in function_events(&template) {
        if kind != "HttpApi" {
            continue;
        }
        let (_, props) = template
            .resources_of_type("AWS::Serverless::Function")
            .find(|(id, _)| *id == function)
            .unwrap();
        let policies = format!("{:?}", props["Policies"]);
        assert!(policies.contains("dynamodb:UpdateItem"), "{function}");
        checked += 1;
    }
    assert!(checked >= 3);
}

/// CloudFormation refuses a circular dependency: an API routing to a function (SAM puts
/// the function's ARN in the API's definition) whose environment names the API.
#[test]
fn no_function_behind_the_api_refers_to_the_api() {
    let template = template();
    let mut behind = 0;
    for (id, props) in template.resources_of_type("AWS::Serverless::Function") {
        let routed = props["Events"]
            .as_mapping()
            .is_some_and(|events| events.values().any(|e| e["Type"] == "HttpApi"));
        if !routed {
            continue;
        }
        behind += 1;
        let environment = format!("{:?}", props["Environment"]);
        assert!(!environment.contains("HubHttpApi"), "{id}: {environment}");
    }
    assert!(behind >= 5, "{behind}");
}

/// Every function's logs have a retention (a log group of its own).
#[test]
fn every_function_has_a_log_group_with_retention() {
    let template = template();
    let groups = format!(
        "{:?}",
        template
            .resources_of_type("AWS::Logs::LogGroup")
            .map(|(_, props)| props["LogGroupName"].clone())
            .collect::<Vec<_>>()
    );
    for (id, _) in template.resources_of_type("AWS::Serverless::Function") {
        assert!(
            groups.contains(&format!("${{{id}}}")),
            "{id} has no log group"
        );
    }
}

#[test]
fn every_function_is_under_the_errors_and_throttles_alarms() {
    let template = template();
    let functions: BTreeSet<String> = template
        .resources_of_type("AWS::Serverless::Function")
        .map(|(id, _)| id.to_owned())
        .collect();
    for metric in ["Errors", "Throttles"] {
        let mut covered = BTreeSet::new();
        for (id, props) in template.resources_of_type("AWS::CloudWatch::Alarm") {
            let Some(metrics) = props["Metrics"].as_sequence() else {
                continue;
            };
            let stats: Vec<&Value> = metrics
                .iter()
                .filter(|m| m["MetricStat"]["Metric"]["MetricName"] == metric)
                .collect();
            // CloudWatch: a metric math alarm takes at most 10 metrics.
            assert!(stats.len() <= 10, "{id}: {} metrics", stats.len());
            for stat in stats {
                let dimension = &stat["MetricStat"]["Metric"]["Dimensions"][0]["Value"];
                if let Value::Tagged(tagged) = dimension {
                    covered.insert(tagged.value.as_str().unwrap().to_owned());
                }
            }
        }
        assert_eq!(covered, functions, "{metric}");
    }
}

#[test]
fn the_embed_api_decides_cors_itself_and_every_embed_route_has_a_preflight() {
    // A CorsConfiguration on the HttpApi would make API Gateway answer preflights itself
    // (for any origin it lists) and drop the function's headers.
    let template = template();
    let (_, api) = template
        .resources_of_type("AWS::Serverless::HttpApi")
        .find(|(id, _)| *id == "HubHttpApi")
        .unwrap();
    assert!(api.get("CorsConfiguration").is_none());
    let mut paths: BTreeSet<String> = BTreeSet::new();
    let mut preflights: BTreeSet<String> = BTreeSet::new();
    for (function, _, kind, props) in function_events(&template) {
        if function != "EmbedApiFunction" || kind != "HttpApi" {
            continue;
        }
        let path = props["Path"].as_str().unwrap().to_owned();
        if props["Method"].as_str() == Some("OPTIONS") {
            preflights.insert(path);
        } else if path != "/api/oauth/callback" {
            paths.insert(path);
        }
    }
    assert!(paths.len() >= 9, "{paths:?}");
    assert_eq!(paths, preflights, "every embed path answers preflights");
    // The signing key is asymmetric P-256, and only the embed API may sign with it.
    let (_, key) = template
        .resources_of_type("AWS::KMS::Key")
        .find(|(id, _)| *id == "EmbedSigningKey")
        .unwrap();
    assert_eq!(key["KeySpec"].as_str(), Some("ECC_NIST_P256"));
    assert_eq!(key["KeyUsage"].as_str(), Some("SIGN_VERIFY"));
    for (id, props) in template.resources_of_type("AWS::Serverless::Function") {
        let policies = format!("{:?}", props["Policies"]);
        assert_eq!(
            policies.contains("kms:Sign"),
            id == "EmbedApiFunction",
            "{id} and kms:Sign"
        );
    }
}

/// Every IAM statement of a function's inline policies: (effect, actions, resources).
fn statements(props: &Value) -> Vec<(String, Vec<String>, String)> {
    let mut found = Vec::new();
    for policy in props["Policies"].as_sequence().into_iter().flatten() {
        for statement in policy["Statement"].as_sequence().into_iter().flatten() {
            let actions = match &statement["Action"] {
                Value::String(a) => vec![a.clone()],
                Value::Sequence(list) => list
                    .iter()
                    .filter_map(|a| a.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            };
            let effect = statement["Effect"].as_str().unwrap_or_default().to_owned();
            found.push((effect, actions, format!("{:?}", statement["Resource"])));
        }
    }
    found
}

/// The outbox reaches the bus only through the table's stream: a NEW_IMAGE stream, one
/// mapping to the relay filtered on new outbox items, reporting partial failures, with
/// the dead-letter queue as its on-failure destination; the relay reads that stream only.
#[test]
fn the_outbox_relay_reads_the_tables_stream_and_nothing_else_publishes() {
    let template = template();
    let table = template
        .resources_of_type("AWS::DynamoDB::Table")
        .find(|(id, _)| *id == "HubTable")
        .unwrap()
        .1;
    assert_eq!(table["StreamSpecification"]["StreamViewType"], "NEW_IMAGE");

    let mappings = template.stream_mappings().unwrap();
    assert_eq!(mappings.len(), 1, "{mappings:?}");
    let relay = &mappings[0];
    assert_eq!(relay.function, "OutboxRelayFunction");
    let source = format!("{:?}", relay.event_source);
    assert!(
        source.contains("GetAtt") && source.contains("HubTable.StreamArn"),
        "{source}"
    );
    assert!(relay.reports_item_failures);
    assert!(
        relay.maximum_retry_attempts >= 0,
        "a batch must end somewhere"
    );
    assert!(
        format!("{:?}", relay.on_failure).contains("DeadLetterQueue"),
        "{:?}",
        relay.on_failure
    );
    assert_eq!(relay.filters.len(), 1);
    assert_eq!(relay.filters[0]["eventName"], serde_json::json!(["INSERT"]));

    // A SAM DynamoDB event would attach AWSLambdaDynamoDBExecutionRole (every stream).
    assert!(
        function_events(&template)
            .iter()
            .all(|(_, _, kind, _)| kind != "DynamoDB" && kind != "Kinesis")
    );
    let relay_props = template
        .resources_of_type("AWS::Serverless::Function")
        .find(|(id, _)| *id == "OutboxRelayFunction")
        .unwrap()
        .1;
    for (_, actions, resource) in statements(relay_props) {
        if actions.iter().any(|a| a == "dynamodb:GetRecords") {
            assert!(resource.contains("HubTable.StreamArn"), "{resource}");
        }
    }

    // Publishing moved off the request path: only the relay puts events on the hub's
    // bus, and only the notifier on partners' buses.
    for (id, props) in template.resources_of_type("AWS::Serverless::Function") {
        let puts = statements(props).into_iter().any(|(effect, actions, _)| {
            effect == "Allow" && actions.iter().any(|a| a == "events:PutEvents")
        });
        let allowed = ["OutboxRelayFunction", "PartnerNotifierFunction"].contains(&id);
        assert_eq!(puts, allowed, "{id} events:PutEvents");
    }
}

/// Secrets are sealed under data keys: functions generate data keys and decrypt, and
/// never call kms:Encrypt on the secrets key.
#[test]
fn secrets_are_sealed_with_data_keys() {
    let template = template();
    let mut sealers = 0;
    for (id, props) in template.resources_of_type("AWS::Serverless::Function") {
        for (_, actions, resource) in statements(props) {
            if !resource.contains("SecretsKey") {
                continue;
            }
            assert!(
                !actions.iter().any(|a| a == "kms:Encrypt"),
                "{id}: {actions:?}"
            );
            if actions.iter().any(|a| a == "kms:GenerateDataKey") {
                sealers += 1;
            }
        }
    }
    assert!(sealers >= 3, "{sealers}");
}
