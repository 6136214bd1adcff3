//! The policies SAM attaches to a function's role, rendered from `infra/template.yaml`
//! with the template's references resolved: the inline `Policies`, the managed policies
//! SAM adds (`AWSLambdaBasicExecutionRole` always), and the statements SAM adds for
//! asynchronous-invocation destinations and dead-letter queues.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};
use yaml_serde::Value;

use super::policy::PolicyDocument;
use crate::template::Template;

type Lookup<'a> = &'a dyn Fn(&str, Option<&str>) -> Option<String>;

/// What SAM would attach to `logical_id`'s role (an `AWS::Serverless::Function` without
/// its own `Role`). `lookup` resolves `!Ref`/`!GetAtt` as the stand-in's resources do,
/// and conditions as `Condition::<name>` (`"true"`/`"false"`). A SAM policy template
/// (`DynamoDBCrudPolicy: ...`), a managed policy the stand-in does not know, or anything
/// it cannot resolve is an error naming it.
pub fn function_policies(
    template: &Template,
    logical_id: &str,
    lookup: Lookup<'_>,
) -> Result<Vec<PolicyDocument>, String> {
    let resource = resource(template, logical_id)?;
    let kind = resource.get("Type").and_then(Value::as_str);
    if kind != Some("AWS::Serverless::Function") {
        return Err(format!(
            "{logical_id} is a {}, not an AWS::Serverless::Function",
            kind.unwrap_or("resource without a Type")
        ));
    }
    let props = resource.get("Properties").unwrap_or(&Value::Null);
    let globals = template
        .root()
        .get("Globals")
        .and_then(|g| g.get("Function"))
        .unwrap_or(&Value::Null);
    // SAM merges Globals into each function; the function's own value wins.
    let setting = |name: &str| props.get(name).or_else(|| globals.get(name));
    let r = Renderer { template, lookup };

    if props.get("Role").is_some() {
        return Err(format!(
            "{logical_id} has its own Role: SAM attaches nothing, and the stand-in does not render roles"
        ));
    }
    if setting("PermissionsBoundary").is_some() {
        return Err(format!(
            "{logical_id} has a PermissionsBoundary, which the stand-in does not evaluate"
        ));
    }

    let mut documents = vec![managed("AWSLambdaBasicExecutionRole").expect("known")];

    let items: Vec<&Value> = match props.get("Policies") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Sequence(items)) => items.iter().collect(),
        Some(one) => vec![one],
    };
    for (i, item) in items.into_iter().enumerate() {
        let at = format!("{logical_id}.Policies[{i}]");
        // `!Ref` to the template's own managed policy: its document.
        if let Some(target) = crate::template::ref_target(item)
            && resource_type(template, &target) == Some("AWS::IAM::ManagedPolicy")
        {
            documents.push(managed_policy(template, &target, lookup)?);
            continue;
        }
        if let Some(name) = policy_template_name(item) {
            return Err(format!(
                "{at}: the SAM policy template {name} is not rendered by the stand-in; write its statements inline"
            ));
        }
        match r.json(item, &at)? {
            None => {}
            Some(Json::String(name)) => documents.push(managed(&name).ok_or_else(|| {
                format!("{at}: the managed policy {name} is not one the stand-in knows")
            })?),
            Some(document @ Json::Object(_)) => {
                let policy =
                    PolicyDocument::from_json(&document).map_err(|e| format!("{at}: {e}"))?;
                documents.push(policy.named(format!("{logical_id}RolePolicy{i}")));
            }
            Some(other) => return Err(format!("{at}: not a policy: {other}")),
        }
    }

    // Asynchronous invocations' destinations: SAM grants the role the call to each.
    let invoke = |name: &str| {
        let config = |source: &Value| {
            source
                .get("EventInvokeConfig")?
                .get("DestinationConfig")?
                .get(name)
                .cloned()
        };
        config(props).or_else(|| config(globals))
    };
    for which in ["OnSuccess", "OnFailure"] {
        let Some(destination) = invoke(which) else {
            continue;
        };
        let at = format!("{logical_id}.EventInvokeConfig.DestinationConfig.{which}");
        // Without a Type, SAM adds no permission.
        let Some(kind) = destination.get("Type").and_then(Value::as_str) else {
            continue;
        };
        let action = match kind {
            "SQS" => "sqs:SendMessage",
            "SNS" => "sns:publish",
            "Lambda" => "lambda:InvokeFunction",
            "EventBridge" => "events:PutEvents",
            other => return Err(format!("{at}: destination type {other} is not rendered")),
        };
        let target = destination.get("Destination").ok_or_else(|| {
            format!("{at}: SAM would create the {kind} destination itself; the stand-in cannot render that")
        })?;
        let arn = r.string(target, &format!("{at}.Destination"))?;
        documents.push(single(
            format!("{logical_id}EventInvokeConfig{which}{kind}Policy"),
            action,
            arn,
        ));
    }

    if let Some(dlq) = setting("DeadLetterQueue") {
        let at = format!("{logical_id}.DeadLetterQueue");
        let action = match dlq.get("Type").and_then(Value::as_str) {
            Some("SQS") => "sqs:SendMessage",
            Some("SNS") => "sns:Publish",
            other => return Err(format!("{at}: type {other:?} is not SQS or SNS")),
        };
        let target = dlq
            .get("TargetArn")
            .ok_or_else(|| format!("{at} has no TargetArn"))?;
        let arn = r.string(target, &format!("{at}.TargetArn"))?;
        documents.push(single(
            format!("{logical_id}DeadLetterQueuePolicy"),
            action,
            arn,
        ));
    }

    // Event sources whose polling Lambda does with the function's role.
    let events = props.get("Events").and_then(Value::as_mapping);
    for (name, event) in events.into_iter().flatten() {
        let name = name.as_str().unwrap_or_default();
        let policy = match event.get("Type").and_then(Value::as_str) {
            Some("SQS") => "AWSLambdaSQSQueueExecutionRole",
            Some("DynamoDB") => "AWSLambdaDynamoDBExecutionRole",
            Some("Kinesis") => "AWSLambdaKinesisExecutionRole",
            Some(kind @ ("MQ" | "MSK" | "SelfManagedKafka" | "DocumentDB")) => {
                return Err(format!(
                    "{logical_id}.Events.{name}: the {kind} event source's role permissions are not rendered"
                ));
            }
            _ => continue,
        };
        if !documents.iter().any(|d| d.name.as_deref() == Some(policy)) {
            documents.push(managed(policy).expect("known"));
        }
    }
    // Policies the template attaches to SAM's role (`<function>Role`) from outside.
    let role = format!("{logical_id}Role");
    for kind in ["AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"] {
        for (id, attached) in template.resources_of_type(kind) {
            let roles = attached.get("Roles").and_then(Value::as_sequence);
            let names_role = roles
                .into_iter()
                .flatten()
                .any(|r| crate::template::ref_target(r).as_deref() == Some(role.as_str()));
            if names_role {
                documents.push(policy_resource(template, id, kind, lookup)?);
            }
        }
    }
    if setting("Tracing").and_then(Value::as_str) == Some("Active") {
        documents.push(managed("AWSXrayWriteOnlyAccess").expect("known"));
    }
    if setting("VpcConfig").is_some() {
        documents.push(managed("AWSLambdaVPCAccessExecutionRole").expect("known"));
    }
    Ok(documents)
}

/// The `PolicyDocument` of an `AWS::IAM::ManagedPolicy` resource, resolved.
pub fn managed_policy(
    template: &Template,
    logical_id: &str,
    lookup: Lookup<'_>,
) -> Result<PolicyDocument, String> {
    policy_resource(template, logical_id, "AWS::IAM::ManagedPolicy", lookup)
}

/// An `AWS::IAM::ManagedPolicy` or `AWS::IAM::Policy` resource's document, named by
/// `ManagedPolicyName`/`PolicyName` (else the logical id).
fn policy_resource(
    template: &Template,
    logical_id: &str,
    expected: &str,
    lookup: Lookup<'_>,
) -> Result<PolicyDocument, String> {
    let resource = resource(template, logical_id)?;
    let kind = resource.get("Type").and_then(Value::as_str);
    if kind != Some(expected) {
        return Err(format!(
            "{logical_id} is a {}, not an {expected}",
            kind.unwrap_or("resource without a Type")
        ));
    }
    let props = resource.get("Properties").unwrap_or(&Value::Null);
    let at = format!("{logical_id}.PolicyDocument");
    let document = props
        .get("PolicyDocument")
        .ok_or_else(|| format!("{logical_id} has no PolicyDocument"))?;
    let r = Renderer { template, lookup };
    let document = r
        .json(document, &at)?
        .ok_or_else(|| format!("{at} is AWS::NoValue"))?;
    let name = props
        .get("ManagedPolicyName")
        .or_else(|| props.get("PolicyName"))
        .map(|n| r.string(n, &format!("{logical_id}'s policy name")))
        .transpose()?
        .unwrap_or_else(|| logical_id.to_owned());
    Ok(PolicyDocument::from_json(&document)
        .map_err(|e| format!("{at}: {e}"))?
        .named(name))
}

fn resource_type<'a>(template: &'a Template, logical_id: &str) -> Option<&'a str> {
    resource(template, logical_id)
        .ok()?
        .get("Type")
        .and_then(Value::as_str)
}

fn resource<'a>(template: &'a Template, logical_id: &str) -> Result<&'a Value, String> {
    template
        .root()
        .get("Resources")
        .and_then(|r| r.get(logical_id))
        .ok_or_else(|| format!("the template has no resource {logical_id}"))
}

/// A `Policies` item that is a SAM policy template (`SQSSendMessagePolicy: {...}`): a
/// one-key mapping that is neither a document nor an intrinsic function.
fn policy_template_name(item: &Value) -> Option<String> {
    let mapping = item.as_mapping()?;
    if mapping.len() != 1 {
        return None;
    }
    let key = mapping.keys().next()?.as_str()?;
    let intrinsic = key == "Ref" || key.starts_with("Fn::");
    (!intrinsic && key != "Statement").then(|| key.to_owned())
}

fn single(name: String, action: &str, resource: String) -> PolicyDocument {
    let document = json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}],
    });
    PolicyDocument::from_json(&document)
        .expect("a well-formed statement")
        .named(name)
}

/// The AWS managed policies SAM attaches, as AWS publishes them (only the statements
/// the stand-in can meet matter; all are on `*`). By name or ARN.
fn managed(name_or_arn: &str) -> Option<PolicyDocument> {
    let name = match name_or_arn.split_once(":iam::aws:policy/") {
        Some((_, path)) => path.rsplit('/').next().unwrap_or(path),
        None => name_or_arn,
    };
    const LOGS: [&str; 3] = [
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ];
    let actions: Vec<&str> = match name {
        "AWSLambdaBasicExecutionRole" => LOGS.to_vec(),
        "AWSLambdaSQSQueueExecutionRole" => [
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
        ]
        .into_iter()
        .chain(LOGS)
        .collect(),
        "AWSLambdaDynamoDBExecutionRole" => [
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
            "dynamodb:ListStreams",
        ]
        .into_iter()
        .chain(LOGS)
        .collect(),
        "AWSLambdaKinesisExecutionRole" => [
            "kinesis:DescribeStream",
            "kinesis:DescribeStreamSummary",
            "kinesis:GetRecords",
            "kinesis:GetShardIterator",
            "kinesis:ListShards",
            "kinesis:ListStreams",
            "kinesis:SubscribeToShard",
        ]
        .into_iter()
        .chain(LOGS)
        .collect(),
        "AWSXrayWriteOnlyAccess" => vec![
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
            "xray:GetSamplingRules",
            "xray:GetSamplingTargets",
            "xray:GetSamplingStatisticSummaries",
        ],
        "AWSLambdaVPCAccessExecutionRole" => [
            "ec2:CreateNetworkInterface",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeSubnets",
            "ec2:DeleteNetworkInterface",
            "ec2:AssignPrivateIpAddresses",
            "ec2:UnassignPrivateIpAddresses",
        ]
        .into_iter()
        .chain(LOGS)
        .collect(),
        _ => return None,
    };
    let document = json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
    });
    Some(
        PolicyDocument::from_json(&document)
            .expect("a well-formed statement")
            .named(name),
    )
}

/// YAML with CloudFormation intrinsics to JSON.
struct Renderer<'a> {
    template: &'a Template,
    lookup: Lookup<'a>,
}

impl Renderer<'_> {
    /// `None` is `AWS::NoValue` (the property or list item is left out).
    fn json(&self, value: &Value, at: &str) -> Result<Option<Json>, String> {
        Ok(Some(match value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => serde_json::from_str(&n.to_string())
                .map_err(|_| format!("{at}: the number {n} is not JSON"))?,
            Value::String(s) => Json::String(s.clone()),
            Value::Sequence(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    out.extend(self.json(item, &format!("{at}[{i}]"))?);
                }
                Json::Array(out)
            }
            Value::Mapping(mapping) => {
                if mapping.len() == 1 {
                    let (key, arg) = mapping.iter().next().expect("one entry");
                    if let Some(key) = key.as_str() {
                        if key == "Ref" {
                            return self.intrinsic("Ref", arg, at);
                        }
                        if let Some(name) = key.strip_prefix("Fn::") {
                            return self.intrinsic(name, arg, at);
                        }
                    }
                }
                let mut out = serde_json::Map::new();
                for (key, item) in mapping {
                    let key = key
                        .as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| format!("{at}: a key is not a string"))?;
                    if let Some(v) = self.json(item, &format!("{at}.{key}"))? {
                        out.insert(key, v);
                    }
                }
                Json::Object(out)
            }
            Value::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                return self.intrinsic(tag.trim_start_matches('!'), &tagged.value, at);
            }
        }))
    }

    /// A value that must resolve to one string.
    fn string(&self, value: &Value, at: &str) -> Result<String, String> {
        match self.json(value, at)? {
            Some(Json::String(s)) => Ok(s),
            Some(Json::Number(n)) => Ok(n.to_string()),
            Some(Json::Bool(b)) => Ok(b.to_string()),
            other => Err(format!("{at}: expected a string, found {other:?}")),
        }
    }

    fn strings(&self, value: &Value, at: &str) -> Result<Vec<String>, String> {
        match self.json(value, at)? {
            Some(Json::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Json::String(s) => Ok(s),
                    other => Err(format!("{at}: expected strings, found {other}")),
                })
                .collect(),
            Some(Json::String(s)) => Ok(vec![s]),
            other => Err(format!("{at}: expected a list, found {other:?}")),
        }
    }

    fn list_parameter(&self, name: &str) -> bool {
        let kind = self
            .template
            .root()
            .get("Parameters")
            .and_then(|p| p.get(name))
            .and_then(|p| p.get("Type"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        kind == "CommaDelimitedList" || kind.starts_with("List<")
    }

    fn intrinsic(&self, name: &str, arg: &Value, at: &str) -> Result<Option<Json>, String> {
        let args = || {
            arg.as_sequence()
                .ok_or_else(|| format!("{at}: Fn::{name} takes a list"))
        };
        let unresolved = |what: &str| format!("{at}: cannot resolve {what}");
        Ok(Some(match name {
            "Ref" => {
                let target = arg
                    .as_str()
                    .ok_or_else(|| format!("{at}: !Ref takes a name"))?;
                if target == "AWS::NoValue" {
                    return Ok(None);
                }
                let value = (self.lookup)(target, None)
                    .ok_or_else(|| unresolved(&format!("!Ref {target}")))?;
                // A list parameter's Ref is the list.
                if self.list_parameter(target) {
                    Json::from(value.split(',').map(str::to_owned).collect::<Vec<_>>())
                } else {
                    Json::String(value)
                }
            }
            "GetAtt" => {
                let (id, attr) = match arg {
                    Value::String(s) => s
                        .split_once('.')
                        .map(|(a, b)| (a.to_owned(), b.to_owned()))
                        .ok_or_else(|| format!("{at}: !GetAtt {s} has no attribute"))?,
                    Value::Sequence(parts) if parts.len() == 2 => {
                        (self.string(&parts[0], at)?, self.string(&parts[1], at)?)
                    }
                    _ => return Err(format!("{at}: !GetAtt takes Resource.Attribute")),
                };
                Json::String(
                    (self.lookup)(&id, Some(&attr))
                        .ok_or_else(|| unresolved(&format!("!GetAtt {id}.{attr}")))?,
                )
            }
            "If" => {
                let args = args()?;
                let [condition, yes, no] = args.as_slice() else {
                    return Err(format!("{at}: !If takes [condition, then, else]"));
                };
                let condition = condition
                    .as_str()
                    .ok_or_else(|| format!("{at}: !If's condition must be a name"))?;
                let holds = (self.lookup)(&format!("Condition::{condition}"), None)
                    .ok_or_else(|| unresolved(&format!("the condition {condition}")))?;
                let branch = if holds == "true" { yes } else { no };
                return self.json(branch, at);
            }
            "Sub" => {
                let (text, vars) = match arg {
                    Value::String(s) => (s.clone(), BTreeMap::new()),
                    Value::Sequence(parts) if parts.len() == 2 => {
                        let text = parts[0]
                            .as_str()
                            .ok_or_else(|| format!("{at}: !Sub's template must be a string"))?
                            .to_owned();
                        let mut vars = BTreeMap::new();
                        for (k, v) in parts[1].as_mapping().into_iter().flatten() {
                            let k = k.as_str().unwrap_or_default().to_owned();
                            vars.insert(k.clone(), self.string(v, &format!("{at}.{k}"))?);
                        }
                        (text, vars)
                    }
                    _ => return Err(format!("{at}: !Sub takes a string or [string, vars]")),
                };
                Json::String(self.sub(&text, &vars, at)?)
            }
            "Join" => {
                let args = args()?;
                let [separator, items] = args.as_slice() else {
                    return Err(format!("{at}: !Join takes [separator, list]"));
                };
                let separator = self.string(separator, at)?;
                Json::String(self.strings(items, at)?.join(&separator))
            }
            "Select" => {
                let args = args()?;
                let [index, items] = args.as_slice() else {
                    return Err(format!("{at}: !Select takes [index, list]"));
                };
                let index: usize = self
                    .string(index, at)?
                    .parse()
                    .map_err(|_| format!("{at}: !Select's index is not a number"))?;
                let items = self.strings(items, at)?;
                Json::String(
                    items
                        .get(index)
                        .cloned()
                        .ok_or_else(|| format!("{at}: !Select index {index} out of range"))?,
                )
            }
            "Split" => {
                let args = args()?;
                let [separator, text] = args.as_slice() else {
                    return Err(format!("{at}: !Split takes [separator, string]"));
                };
                let separator = self.string(separator, at)?;
                let text = self.string(text, at)?;
                Json::from(
                    text.split(separator.as_str())
                        .map(str::to_owned)
                        .collect::<Vec<_>>(),
                )
            }
            other => return Err(format!("{at}: the intrinsic {other} is not supported")),
        }))
    }

    /// `${Name}`, `${Resource.Attribute}`, `${AWS::Region}`, `${!Literal}`.
    fn sub(&self, text: &str, vars: &BTreeMap<String, String>, at: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("{at}: unclosed ${{ in !Sub"))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(value) = vars.get(name) {
                out.push_str(value);
            } else {
                let value = match name.split_once('.') {
                    Some((id, attr)) => (self.lookup)(id, Some(attr)),
                    None => (self.lookup)(name, None),
                };
                out.push_str(
                    &value.ok_or_else(|| format!("{at}: cannot resolve ${{{name}}} in !Sub"))?,
                );
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}
