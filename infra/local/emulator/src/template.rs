//! Reads `infra/template.yaml`: the one list of functions, routes, rules, schedules and
//! resources. CloudFormation short-form tags (`!Ref`, `!GetAtt`, `!Sub`) arrive as
//! tagged YAML values and are resolved against the local resources.

use std::{collections::BTreeMap, path::Path};

use yaml_serde::Value;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read the template {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the template is not valid YAML: {0}")]
    Yaml(#[from] yaml_serde::Error),
    #[error("the template is invalid: {0}")]
    Invalid(String),
}

/// An HTTP API route of a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    pub method: String,
    pub path: String,
}

/// An EventBridge rule that targets a function.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRule {
    /// The event's name in the template (unique within the function).
    pub name: String,
    /// Logical id of the bus (`EventBusName: !Ref X`), if any.
    pub bus: Option<String>,
    /// The pattern with `!Ref`s and `!Sub`s unresolved (see [`EventRule::resolved_pattern`]).
    pub pattern: serde_json::Value,
    /// The pattern as written in the template.
    pub pattern_source: Value,
    /// `DeadLetterConfig.Arn`, unresolved.
    pub dead_letter_arn: Option<Value>,
}

/// A schedule that invokes a function.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub name: String,
    /// `ScheduleExpression` as written (a parameter's `!Ref` included): resolve it with
    /// [`Schedule::resolved_expression`].
    pub expression_source: Value,
}

impl Schedule {
    /// The expression, `!Ref`s to parameters resolved.
    pub fn resolved_expression(
        &self,
        lookup: &dyn Fn(&str, Option<&str>) -> Option<String>,
    ) -> Option<String> {
        resolve(&self.expression_source, lookup)
    }
}

#[derive(Debug, Clone)]
pub struct FunctionDef {
    pub logical_id: String,
    /// The cargo binary (`Metadata.BuildProperties.Binary`).
    pub binary: String,
    pub routes: Vec<HttpRoute>,
    pub rules: Vec<EventRule>,
    pub schedules: Vec<Schedule>,
    /// Globals' variables overlaid with the function's own, unresolved.
    pub environment: BTreeMap<String, Value>,
    /// Where Lambda sends an asynchronous invocation that failed its retries
    /// (`EventInvokeConfig.DestinationConfig.OnFailure.Destination`, the function's own
    /// or Globals'), unresolved.
    pub on_failure: Option<Value>,
}

/// A Lambda event source mapping on a stream (`AWS::Lambda::EventSourceMapping`).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamMapping {
    pub logical_id: String,
    /// Logical id of the function (`FunctionName: !Ref X`).
    pub function: String,
    /// `EventSourceArn` as written (e.g. `!GetAtt Table.StreamArn`).
    pub event_source: Value,
    /// `TRIM_HORIZON` or `LATEST`.
    pub starting_position: String,
    pub batch_size: usize,
    /// `MaximumRetryAttempts` (-1: until the records expire).
    pub maximum_retry_attempts: i64,
    /// `FilterCriteria.Filters[].Pattern`, parsed: a record passes when one matches.
    pub filters: Vec<serde_json::Value>,
    /// `FunctionResponseTypes` has `ReportBatchItemFailures`.
    pub reports_item_failures: bool,
    /// `DestinationConfig.OnFailure.Destination`, unresolved.
    pub on_failure: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct Template {
    root: Value,
}

impl Template {
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        Ok(Self {
            root: yaml_serde::from_str(text)?,
        })
    }

    /// The whole template, for checks the typed accessors do not cover.
    pub fn root(&self) -> &Value {
        &self.root
    }

    fn resources(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.root
            .get("Resources")
            .and_then(Value::as_mapping)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter_map(|(k, v)| Some((k.as_str()?, v)))
    }

    /// Resources of one CloudFormation type, by logical id.
    pub fn resources_of_type<'a>(
        &'a self,
        kind: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Value)> {
        self.resources()
            .filter(move |(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
            .map(|(id, r)| (id, r.get("Properties").unwrap_or(&Value::Null)))
    }

    /// The event source mappings (streams to functions).
    pub fn stream_mappings(&self) -> Result<Vec<StreamMapping>, TemplateError> {
        let invalid = |id: &str, what: &str| TemplateError::Invalid(format!("{id}: {what}"));
        let mut mappings = Vec::new();
        for (id, props) in self.resources_of_type("AWS::Lambda::EventSourceMapping") {
            let function = props
                .get("FunctionName")
                .and_then(ref_target)
                .ok_or_else(|| invalid(id, "FunctionName must be a !Ref to a function"))?;
            let event_source = props
                .get("EventSourceArn")
                .cloned()
                .ok_or_else(|| invalid(id, "EventSourceArn missing"))?;
            let filters = props
                .get("FilterCriteria")
                .and_then(|f| f.get("Filters"))
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .map(|f| {
                    let text = f
                        .get("Pattern")
                        .and_then(Value::as_str)
                        .ok_or_else(|| invalid(id, "a filter's Pattern must be a JSON string"))?;
                    serde_json::from_str(text)
                        .map_err(|e| invalid(id, &format!("a filter's Pattern is not JSON: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let number = |name: &str, default: i64| {
                props
                    .get(name)
                    .and_then(scalar_string)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(default)
            };
            mappings.push(StreamMapping {
                logical_id: id.to_owned(),
                function,
                event_source,
                starting_position: props
                    .get("StartingPosition")
                    .and_then(Value::as_str)
                    .unwrap_or("LATEST")
                    .to_owned(),
                // Lambda's defaults for streams.
                batch_size: number("BatchSize", 100).max(1) as usize,
                maximum_retry_attempts: number("MaximumRetryAttempts", -1),
                filters,
                reports_item_failures: props
                    .get("FunctionResponseTypes")
                    .and_then(Value::as_sequence)
                    .is_some_and(|types| {
                        types
                            .iter()
                            .any(|t| t.as_str() == Some("ReportBatchItemFailures"))
                    }),
                on_failure: props
                    .get("DestinationConfig")
                    .and_then(|d| d.get("OnFailure"))
                    .and_then(|o| o.get("Destination"))
                    .cloned(),
            });
        }
        Ok(mappings)
    }

    /// A parameter's default value.
    /// Every condition of the template, evaluated with `lookup` (`!Equals`, `!Not`,
    /// `!And`, `!Or`, `!Condition`); one the stand-in cannot evaluate is left out.
    pub fn conditions(
        &self,
        lookup: &dyn Fn(&str, Option<&str>) -> Option<String>,
    ) -> BTreeMap<String, bool> {
        let Some(conditions) = self.root.get("Conditions").and_then(Value::as_mapping) else {
            return BTreeMap::new();
        };
        let mut known = BTreeMap::new();
        // Conditions may name earlier ones: evaluate until nothing changes.
        for _ in 0..conditions.len() {
            for (name, value) in conditions {
                let Some(name) = name.as_str() else { continue };
                if known.contains_key(name) {
                    continue;
                }
                if let Some(holds) = evaluate_condition(value, lookup, &known) {
                    known.insert(name.to_owned(), holds);
                }
            }
        }
        known
    }

    /// Every parameter that has a default, with it (as a deploy without overrides).
    pub fn parameter_defaults(&self) -> Vec<(String, String)> {
        self.root
            .get("Parameters")
            .and_then(Value::as_mapping)
            .into_iter()
            .flatten()
            .filter_map(|(name, _)| {
                let name = name.as_str()?;
                Some((name.to_owned(), self.parameter_default(name)?))
            })
            .collect()
    }

    pub fn parameter_default(&self, name: &str) -> Option<String> {
        let default = self.root.get("Parameters")?.get(name)?.get("Default")?;
        scalar_string(default)
    }

    pub fn functions(&self) -> Result<Vec<FunctionDef>, TemplateError> {
        let globals = self
            .root
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .and_then(|f| f.get("Environment"))
            .and_then(|e| e.get("Variables"))
            .and_then(Value::as_mapping);
        let mut functions = Vec::new();
        for (id, resource) in self.resources() {
            if resource.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
                continue;
            }
            let binary = resource
                .get("Metadata")
                .and_then(|m| m.get("BuildProperties"))
                .and_then(|b| b.get("Binary"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    TemplateError::Invalid(format!("{id} has no Metadata.BuildProperties.Binary"))
                })?
                .to_owned();
            let props = resource.get("Properties").unwrap_or(&Value::Null);
            let mut environment = BTreeMap::new();
            let own = props
                .get("Environment")
                .and_then(|e| e.get("Variables"))
                .and_then(Value::as_mapping);
            for vars in globals.into_iter().chain(own) {
                for (k, v) in vars {
                    if let Some(k) = k.as_str() {
                        environment.insert(k.to_owned(), v.clone());
                    }
                }
            }
            let on_failure = |config: Option<&Value>| {
                config?
                    .get("EventInvokeConfig")?
                    .get("DestinationConfig")?
                    .get("OnFailure")?
                    .get("Destination")
                    .cloned()
            };
            let global_function = self.root.get("Globals").and_then(|g| g.get("Function"));
            let mut def = FunctionDef {
                logical_id: id.to_owned(),
                binary,
                routes: Vec::new(),
                rules: Vec::new(),
                schedules: Vec::new(),
                environment,
                on_failure: on_failure(Some(props)).or_else(|| on_failure(global_function)),
            };
            let events = props.get("Events").and_then(Value::as_mapping);
            for (name, event) in events.into_iter().flatten() {
                let name = name.as_str().unwrap_or_default().to_owned();
                let p = event.get("Properties").unwrap_or(&Value::Null);
                let field = |key: &str| p.get(key).and_then(Value::as_str).map(str::to_owned);
                match event.get("Type").and_then(Value::as_str) {
                    Some("HttpApi") => def.routes.push(HttpRoute {
                        method: field("Method")
                            .unwrap_or_else(|| "ANY".into())
                            .to_ascii_uppercase(),
                        path: field("Path").ok_or_else(|| {
                            TemplateError::Invalid(format!("{id}.{name} has no Path"))
                        })?,
                    }),
                    Some("EventBridgeRule") => def.rules.push(EventRule {
                        name,
                        bus: p.get("EventBusName").and_then(ref_target),
                        pattern: to_json(p.get("Pattern").unwrap_or(&Value::Null)),
                        pattern_source: p.get("Pattern").cloned().unwrap_or(Value::Null),
                        dead_letter_arn: p
                            .get("DeadLetterConfig")
                            .and_then(|d| d.get("Arn"))
                            .cloned(),
                    }),
                    Some("Schedule") | Some("ScheduleV2") => {
                        let expression_source = p
                            .get("ScheduleExpression")
                            .or_else(|| p.get("Schedule"))
                            .cloned()
                            .ok_or_else(|| {
                                TemplateError::Invalid(format!(
                                    "{id}.{name} has no schedule expression"
                                ))
                            })?;
                        def.schedules.push(Schedule {
                            name,
                            expression_source,
                        })
                    }
                    other => {
                        return Err(TemplateError::Invalid(format!(
                            "{id}.{name}: event type {other:?} is not supported by the stand-in"
                        )));
                    }
                }
            }
            functions.push(def);
        }
        Ok(functions)
    }
}

/// The logical id a `!Ref X` (or `{Ref: X}`) points to.
pub fn ref_target(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(tagged) if tagged.tag == "Ref" => tagged.value.as_str().map(str::to_owned),
        Value::Mapping(m) => m.get("Ref").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn evaluate_condition(
    value: &Value,
    lookup: &dyn Fn(&str, Option<&str>) -> Option<String>,
    known: &BTreeMap<String, bool>,
) -> Option<bool> {
    let Value::Tagged(tagged) = value else {
        return None;
    };
    let args = || tagged.value.as_sequence();
    let each = || -> Option<Vec<bool>> {
        args()?
            .iter()
            .map(|a| evaluate_condition(a, lookup, known))
            .collect()
    };
    match tagged.tag.to_string().trim_start_matches('!') {
        "Equals" => {
            let args = args()?;
            Some(resolve(args.first()?, lookup)? == resolve(args.get(1)?, lookup)?)
        }
        "Not" => Some(!evaluate_condition(args()?.first()?, lookup, known)?),
        "And" => Some(each()?.into_iter().all(|b| b)),
        "Or" => Some(each()?.into_iter().any(|b| b)),
        "Condition" => known.get(tagged.value.as_str()?).copied(),
        _ => None,
    }
}

/// Resolves a template value (plain, `!Ref`, `!GetAtt X.Attr`, `!Sub`, `!Join`, `!If`)
/// to a string.
pub fn resolve(
    value: &Value,
    lookup: &dyn Fn(&str, Option<&str>) -> Option<String>,
) -> Option<String> {
    if let Some(s) = scalar_string(value) {
        return Some(s);
    }
    let Value::Tagged(tagged) = value else {
        return None;
    };
    match tagged.tag.to_string().trim_start_matches('!') {
        "Ref" => lookup(tagged.value.as_str()?, None),
        "GetAtt" => {
            let (id, attr) = tagged.value.as_str()?.split_once('.')?;
            lookup(id, Some(attr))
        }
        // `!If [Condition, a, b]`: conditions are looked up as `Condition::<name>`
        // ("true"/"false", see [`Template::conditions`]).
        "If" => {
            let args = tagged.value.as_sequence()?;
            let holds = lookup(&format!("Condition::{}", args.first()?.as_str()?), None)?;
            resolve(args.get(if holds == "true" { 1 } else { 2 })?, lookup)
        }
        "Join" => {
            let args = tagged.value.as_sequence()?;
            let separator = args.first()?.as_str()?;
            let parts: Vec<String> = match args.get(1)? {
                Value::Sequence(items) => items
                    .iter()
                    .map(|item| resolve(item, lookup))
                    .collect::<Option<_>>()?,
                other => vec![resolve(other, lookup)?],
            };
            Some(parts.join(separator))
        }
        "Sub" => {
            let mut text = tagged.value.as_str()?.to_owned();
            while let Some(start) = text.find("${") {
                let end = start + text[start..].find('}')?;
                let name = &text[start + 2..end];
                let replacement = match name.split_once('.') {
                    Some((id, attr)) => lookup(id, Some(attr))?,
                    None => lookup(name, None)?,
                };
                text.replace_range(start..=end, &replacement);
            }
            Some(text)
        }
        _ => None,
    }
}

impl EventRule {
    /// The pattern with the template's references resolved (`account: [!Ref
    /// AWS::AccountId]` becomes the account id).
    pub fn resolved_pattern(
        &self,
        lookup: &dyn Fn(&str, Option<&str>) -> Option<String>,
    ) -> serde_json::Value {
        to_json_with(&self.pattern_source, Some(lookup))
    }
}

/// YAML to JSON, for event patterns.
pub fn to_json(value: &Value) -> serde_json::Value {
    to_json_with(value, None)
}

type Lookup<'a> = &'a dyn Fn(&str, Option<&str>) -> Option<String>;

fn to_json_with(value: &Value, lookup: Option<Lookup<'_>>) -> serde_json::Value {
    let to_json = |v: &Value| to_json_with(v, lookup);
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Number(n) => serde_json::from_str(&n.to_string()).unwrap_or(serde_json::Value::Null),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Sequence(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        Value::Mapping(m) => serde_json::Value::Object(
            m.iter()
                .filter_map(|(k, v)| Some((scalar_string(k)?, to_json(v))))
                .collect(),
        ),
        Value::Tagged(tagged) => match lookup.and_then(|lookup| resolve(value, lookup)) {
            Some(resolved) => serde_json::Value::String(resolved),
            None => to_json(&tagged.value),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
Parameters:
  Stage: {Type: String, Default: dev}
Globals:
  Function:
    Environment:
      Variables:
        TABLE_NAME: !Ref HubTable
        STAGE: !Ref Stage
Resources:
  HubTable:
    Type: AWS::DynamoDB::Table
    Properties: {BillingMode: PAY_PER_REQUEST}
  Api:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: rust-cargolambda, BuildProperties: {Binary: partner-api}}
    Properties:
      Environment: {Variables: {EXTRA: !Sub "x-${Stage}-${HubTable.Arn}"}}
      Events:
        Provision: {Type: HttpApi, Properties: {Path: "/a/{id}", Method: post}}
        Hub: {Type: EventBridgeRule, Properties: {EventBusName: !Ref Bus, Pattern: {source: [partner-hub]}}}
        Tick: {Type: ScheduleV2, Properties: {ScheduleExpression: rate(1 minute)}}
"#;

    #[test]
    fn reads_functions_routes_rules_and_schedules() {
        let template = Template::parse(SAMPLE).unwrap();
        let functions = template.functions().unwrap();
        assert_eq!(functions.len(), 1);
        let f = &functions[0];
        assert_eq!(f.binary, "partner-api");
        assert_eq!(
            f.routes,
            vec![HttpRoute {
                method: "POST".into(),
                path: "/a/{id}".into()
            }]
        );
        assert_eq!(f.rules[0].bus.as_deref(), Some("Bus"));
        assert_eq!(
            f.rules[0].pattern,
            serde_json::json!({"source": ["partner-hub"]})
        );
        assert_eq!(
            f.schedules[0].resolved_expression(&|_, _| None).as_deref(),
            Some("rate(1 minute)")
        );
        assert_eq!(
            template.resources_of_type("AWS::DynamoDB::Table").count(),
            1
        );
        assert_eq!(template.parameter_default("Stage").as_deref(), Some("dev"));
    }

    #[test]
    fn resolves_short_form_tags() {
        let template = Template::parse(SAMPLE).unwrap();
        let f = &template.functions().unwrap()[0];
        let lookup = |id: &str, attr: Option<&str>| match (id, attr) {
            ("HubTable", None) => Some("local-table".to_owned()),
            ("HubTable", Some("Arn")) => Some("arn:table".to_owned()),
            ("Stage", None) => Some("dev".to_owned()),
            _ => None,
        };
        assert_eq!(
            resolve(&f.environment["TABLE_NAME"], &lookup).as_deref(),
            Some("local-table")
        );
        assert_eq!(
            resolve(&f.environment["EXTRA"], &lookup).as_deref(),
            Some("x-dev-arn:table")
        );
    }

    #[test]
    fn the_project_template_parses() {
        let path = crate::project_root().join("infra/template.yaml");
        let template = Template::load(&path).unwrap();
        let functions = template.functions().unwrap();
        assert!(
            functions
                .iter()
                .any(|f| f.binary == "partner-api" && !f.routes.is_empty())
        );
        assert!(functions.iter().any(|f| !f.rules.is_empty()));
        assert!(functions.iter().any(|f| !f.schedules.is_empty()));
    }
}
