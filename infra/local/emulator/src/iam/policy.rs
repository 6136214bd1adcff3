//! IAM identity-policy documents and their evaluation, as AWS evaluates identity-based
//! policies of one principal: an explicit Deny wins, else an Allow, else implicit deny.
//! No permissions boundaries, session policies, SCPs or resource policies: the functions'
//! roles have none, and the resource policies the template has (the queue's) only admit
//! services.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::request::{AuthzRequest, supplied_context_keys};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid policy document: {0}")]
pub struct PolicyError(pub String);

/// One IAM policy document (what `Policies`, a managed policy or an inline policy holds).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyDocument {
    /// What the policy is called where it came from (`PartnerApiFunctionRolePolicy0`,
    /// `AWSLambdaBasicExecutionRole`), for denial reasons and reports; `None` when parsed
    /// from bare JSON.
    pub name: Option<String>,
    pub version: Option<String>,
    pub statements: Vec<Statement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// `Action` or `NotAction` (and `Resource` or `NotResource`): the patterns as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Patterns {
    Only(Vec<String>),
    Not(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub actions: Patterns,
    pub resources: Patterns,
    /// Every operator/key pair of the `Condition` block (all must hold).
    pub conditions: Vec<Condition>,
}

/// One `"Operator": {"key": [values]}` entry: the values are ORed (NORed for negated
/// operators).
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// As written, e.g. `ForAnyValue:StringLikeIfExists`.
    pub operator: String,
    pub key: String,
    pub values: Vec<String>,
}

/// The outcome of evaluating one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// When denied, the tail of AWS's AccessDenied message after the resource:
    /// `because no identity-based policy allows the <action> action`, or
    /// `with an explicit deny in an identity-based policy: <policy>, statement <sid>`.
    /// When allowed, which statement allowed it.
    pub reason: String,
}

/// A request of a call that was not allowed (the first one, in order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub action: String,
    pub resource: String,
    pub reason: String,
}

impl PolicyDocument {
    /// Parses a policy document from its JSON form (`Statement` one object or a list;
    /// `Action`/`NotAction`, `Resource`/`NotResource` a string or a list).
    pub fn from_json(value: &Value) -> Result<Self, PolicyError> {
        let err = |m: String| PolicyError(m);
        let object = value
            .as_object()
            .ok_or_else(|| err("a policy document must be a JSON object".into()))?;
        let version = match object.get("Version") {
            None => None,
            Some(Value::String(v)) => Some(v.clone()),
            Some(other) => return Err(err(format!("Version must be a string, not {other}"))),
        };
        let statements = match object.get("Statement") {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(one @ Value::Object(_)) => vec![one],
            Some(other) => {
                return Err(err(format!(
                    "Statement must be an object or a list, not {other}"
                )));
            }
            None => return Err(err("the document has no Statement".into())),
        };
        let statements = statements
            .into_iter()
            .enumerate()
            .map(|(i, s)| Statement::from_json(s).map_err(|e| err(format!("statement {i}: {e}"))))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            name: None,
            version,
            statements,
        })
    }

    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The document back in JSON (for printing what the stand-in enforces).
    pub fn to_json(&self) -> Value {
        let list = |v: &[String]| Value::from(v.to_vec());
        let statements: Vec<Value> = self
            .statements
            .iter()
            .map(|s| {
                let mut o = serde_json::Map::new();
                if let Some(sid) = &s.sid {
                    o.insert("Sid".into(), sid.clone().into());
                }
                let effect = match s.effect {
                    Effect::Allow => "Allow",
                    Effect::Deny => "Deny",
                };
                o.insert("Effect".into(), effect.into());
                match &s.actions {
                    Patterns::Only(a) => o.insert("Action".into(), list(a)),
                    Patterns::Not(a) => o.insert("NotAction".into(), list(a)),
                };
                match &s.resources {
                    Patterns::Only(r) => o.insert("Resource".into(), list(r)),
                    Patterns::Not(r) => o.insert("NotResource".into(), list(r)),
                };
                if !s.conditions.is_empty() {
                    let mut block = serde_json::Map::new();
                    for c in &s.conditions {
                        let keys = block
                            .entry(c.operator.clone())
                            .or_insert_with(|| Value::Object(Default::default()));
                        if let Value::Object(keys) = keys {
                            keys.insert(c.key.clone(), list(&c.values));
                        }
                    }
                    o.insert("Condition".into(), Value::Object(block));
                }
                Value::Object(o)
            })
            .collect();
        let mut doc = serde_json::Map::new();
        if let Some(v) = &self.version {
            doc.insert("Version".into(), v.clone().into());
        }
        doc.insert("Statement".into(), statements.into());
        Value::Object(doc)
    }

    fn label(&self, index: usize) -> String {
        match &self.name {
            Some(name) => format!("policy {name}"),
            None => format!("policy #{index}"),
        }
    }
}

impl<'de> Deserialize<'de> for PolicyDocument {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_json(&value).map_err(serde::de::Error::custom)
    }
}

impl Statement {
    fn from_json(value: &Value) -> Result<Self, String> {
        let object = value.as_object().ok_or("a statement must be an object")?;
        let sid = match object.get("Sid") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => return Err(format!("Sid must be a string, not {other}")),
        };
        let effect = match object.get("Effect").and_then(Value::as_str) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            other => return Err(format!("Effect must be Allow or Deny, not {other:?}")),
        };
        let pair = |yes: &str, no: &str| -> Result<Patterns, String> {
            match (object.get(yes), object.get(no)) {
                (Some(v), None) => Ok(Patterns::Only(strings(v, yes)?)),
                (None, Some(v)) => Ok(Patterns::Not(strings(v, no)?)),
                (Some(_), Some(_)) => Err(format!("both {yes} and {no}")),
                (None, None) => Err(format!("neither {yes} nor {no}")),
            }
        };
        let actions = pair("Action", "NotAction")?;
        let resources = pair("Resource", "NotResource")?;
        let mut conditions = Vec::new();
        match object.get("Condition") {
            None => {}
            Some(Value::Object(block)) => {
                for (operator, keys) in block {
                    let keys = keys
                        .as_object()
                        .ok_or_else(|| format!("Condition {operator} must map keys to values"))?;
                    for (key, values) in keys {
                        conditions.push(Condition {
                            operator: operator.clone(),
                            key: key.clone(),
                            values: condition_values(values)
                                .ok_or_else(|| format!("Condition {operator} {key}: values must be strings, booleans or numbers"))?,
                        });
                    }
                }
            }
            Some(other) => return Err(format!("Condition must be an object, not {other}")),
        }
        Ok(Self {
            sid,
            effect,
            actions,
            resources,
            conditions,
        })
    }

    fn label(&self, index: usize) -> String {
        match &self.sid {
            Some(sid) => format!("statement {sid}"),
            None => format!("statement #{index}"),
        }
    }

    fn action_matches(&self, action: &str) -> bool {
        let hit = |patterns: &[String]| {
            patterns
                .iter()
                .any(|p| glob_match(&p.to_ascii_lowercase(), &action.to_ascii_lowercase()))
        };
        match &self.actions {
            Patterns::Only(p) => hit(p),
            Patterns::Not(p) => !hit(p),
        }
    }

    fn resource_matches(&self, resource: &str) -> bool {
        // Case-sensitive, and `*` spans `:` and `/` (IAM matches the Resource element as
        // one string).
        let hit = |patterns: &[String]| patterns.iter().any(|p| glob_match(p, resource));
        match &self.resources {
            Patterns::Only(p) => hit(p),
            Patterns::Not(p) => !hit(p),
        }
    }
}

fn strings(value: &Value, field: &str) -> Result<Vec<String>, String> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{field} must list strings, not {v}"))
            })
            .collect(),
        other => Err(format!("{field} must be a string or a list, not {other}")),
    }
}

fn condition_values(value: &Value) -> Option<Vec<String>> {
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match value {
        Value::Array(items) => items.iter().map(one).collect(),
        other => Some(vec![one(other)?]),
    }
}

// ------------------------------------------------------------------ operators

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetQualifier {
    ForAnyValue,
    ForAllValues,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    ArnLike,
    Bool,
    Null,
    NumericEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Operator {
    set: Option<SetQualifier>,
    base: Base,
    /// `StringNotEquals` is `StringEquals` negated: true when no policy value matches.
    negated: bool,
    if_exists: bool,
}

/// Operator names are case-sensitive, as IAM's policy validator has them.
fn parse_operator(text: &str) -> Option<Operator> {
    let (set, rest) = if let Some(rest) = text.strip_prefix("ForAnyValue:") {
        (Some(SetQualifier::ForAnyValue), rest)
    } else if let Some(rest) = text.strip_prefix("ForAllValues:") {
        (Some(SetQualifier::ForAllValues), rest)
    } else {
        (None, text)
    };
    let (rest, if_exists) = match rest.strip_suffix("IfExists") {
        Some(rest) => (rest, true),
        None => (rest, false),
    };
    let (base, negated) = match rest {
        "StringEquals" => (Base::StringEquals, false),
        "StringNotEquals" => (Base::StringEquals, true),
        "StringEqualsIgnoreCase" => (Base::StringEqualsIgnoreCase, false),
        "StringNotEqualsIgnoreCase" => (Base::StringEqualsIgnoreCase, true),
        "StringLike" => (Base::StringLike, false),
        "StringNotLike" => (Base::StringLike, true),
        // IAM treats ArnEquals exactly as ArnLike (wildcards per ARN component).
        "ArnEquals" | "ArnLike" => (Base::ArnLike, false),
        "ArnNotEquals" | "ArnNotLike" => (Base::ArnLike, true),
        "Bool" => (Base::Bool, false),
        "Null" => (Base::Null, false),
        "NumericEquals" => (Base::NumericEquals, false),
        "NumericNotEquals" => (Base::NumericEquals, true),
        "NumericLessThan" => (Base::NumericLessThan, false),
        "NumericLessThanEquals" => (Base::NumericLessThanEquals, false),
        "NumericGreaterThan" => (Base::NumericGreaterThan, false),
        "NumericGreaterThanEquals" => (Base::NumericGreaterThanEquals, false),
        _ => return None,
    };
    // `NullIfExists` and set-qualified `Null` are not IAM operators.
    if base == Base::Null && (if_exists || set.is_some()) {
        return None;
    }
    Some(Operator {
        set,
        base,
        negated,
        if_exists,
    })
}

/// One context value against one policy value, for the operator's positive form.
fn value_matches(base: Base, context: &str, policy: &str) -> bool {
    let numbers = || Some((context.parse::<f64>().ok()?, policy.parse::<f64>().ok()?));
    let compare = |f: fn(f64, f64) -> bool| numbers().is_some_and(|(c, p)| f(c, p));
    match base {
        Base::StringEquals => context == policy,
        Base::StringEqualsIgnoreCase => context.to_lowercase() == policy.to_lowercase(),
        Base::StringLike => glob_match(policy, context),
        Base::ArnLike => arn_like(policy, context),
        Base::Bool => context.eq_ignore_ascii_case(policy),
        Base::NumericEquals => compare(|c, p| c == p),
        Base::NumericLessThan => compare(|c, p| c < p),
        Base::NumericLessThanEquals => compare(|c, p| c <= p),
        Base::NumericGreaterThan => compare(|c, p| c > p),
        Base::NumericGreaterThanEquals => compare(|c, p| c >= p),
        Base::Null => false,
    }
}

/// ArnLike: each of the six colon-separated components matched on its own, wildcards
/// within a component (the last, the resource, may itself hold colons).
fn arn_like(pattern: &str, arn: &str) -> bool {
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let a: Vec<&str> = arn.splitn(6, ':').collect();
    p.len() == 6 && a.len() == 6 && p.iter().zip(&a).all(|(p, a)| glob_match(p, a))
}

fn context_values<'a>(
    context: &'a BTreeMap<String, Vec<String>>,
    key: &str,
) -> Option<&'a Vec<String>> {
    // Condition keys are case-insensitive.
    context
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn condition_holds(op: Operator, key: &str, values: &[String], request: &AuthzRequest) -> bool {
    let present = context_values(&request.context, key).filter(|v| !v.is_empty());
    if op.base == Base::Null {
        // `"Null": {"k": "true"}`: the key is absent.
        return values
            .iter()
            .any(|v| match v.to_ascii_lowercase().as_str() {
                "true" => present.is_none(),
                "false" => present.is_some(),
                _ => false,
            });
    }
    let Some(context) = present else {
        // Absent key: IfExists holds; ForAllValues holds (no value fails); a negated
        // operator holds ("does not match"); anything else does not.
        return op.if_exists
            || match op.set {
                Some(SetQualifier::ForAllValues) => true,
                Some(SetQualifier::ForAnyValue) => false,
                None => op.negated,
            };
    };
    let matches_any = |c: &String| values.iter().any(|p| value_matches(op.base, c, p));
    match (op.set, op.negated) {
        // Plain operators on a (normally single-valued) key: some value matches; the
        // negated form is exactly its negation.
        (None, false) => context.iter().any(matches_any),
        (None, true) => !context.iter().any(matches_any),
        (Some(SetQualifier::ForAnyValue), negated) => {
            context.iter().any(|c| matches_any(c) != negated)
        }
        (Some(SetQualifier::ForAllValues), negated) => {
            context.iter().all(|c| matches_any(c) != negated)
        }
    }
}

// ----------------------------------------------------------------- evaluation

enum Applies {
    No,
    Yes,
    /// A condition operator the stand-in cannot evaluate.
    Unknown(String),
}

fn applies(statement: &Statement, request: &AuthzRequest) -> Applies {
    if !statement.action_matches(&request.action) || !statement.resource_matches(&request.resource)
    {
        return Applies::No;
    }
    for c in &statement.conditions {
        let Some(op) = parse_operator(&c.operator) else {
            return Applies::Unknown(c.operator.clone());
        };
        if !condition_holds(op, &c.key, &c.values, request) {
            return Applies::No;
        }
    }
    Applies::Yes
}

/// Evaluates one request against a principal's identity policies, as AWS does: an
/// explicit Deny in any statement that applies wins, else an Allow that applies, else
/// the implicit deny. A statement with a condition operator the stand-in cannot
/// evaluate fails closed: an Allow never applies, a Deny always does.
pub fn evaluate(policies: &[PolicyDocument], request: &AuthzRequest) -> Decision {
    let mut allowed_by = None;
    for (p, policy) in policies.iter().enumerate() {
        for (s, statement) in policy.statements.iter().enumerate() {
            let where_ = || format!("{}, {}", policy.label(p), statement.label(s));
            match (applies(statement, request), statement.effect) {
                (Applies::No, _) | (Applies::Unknown(_), Effect::Allow) => {}
                (Applies::Yes, Effect::Deny) => {
                    return Decision {
                        allowed: false,
                        reason: format!(
                            "with an explicit deny in an identity-based policy: {}",
                            where_()
                        ),
                    };
                }
                (Applies::Unknown(op), Effect::Deny) => {
                    return Decision {
                        allowed: false,
                        reason: format!(
                            "with an explicit deny in an identity-based policy: {} (its condition operator {op} is not supported by the stand-in, so the deny is taken to apply)",
                            where_()
                        ),
                    };
                }
                (Applies::Yes, Effect::Allow) => {
                    allowed_by.get_or_insert_with(where_);
                }
            }
        }
    }
    match allowed_by {
        Some(by) => Decision {
            allowed: true,
            reason: format!("allowed by {by}"),
        },
        None => Decision {
            allowed: false,
            reason: format!(
                "because no identity-based policy allows the {} action",
                request.action
            ),
        },
    }
}

/// Every request of one call must be allowed (a TransactWriteItems needs each item's
/// action); the first that is not is returned.
pub fn authorize(policies: &[PolicyDocument], requests: &[AuthzRequest]) -> Result<(), Denial> {
    for request in requests {
        let decision = evaluate(policies, request);
        if !decision.allowed {
            return Err(Denial {
                action: request.action.clone(),
                resource: request.resource.clone(),
                reason: decision.reason,
            });
        }
    }
    Ok(())
}

/// What in these policies the stand-in cannot check as AWS would, one line each, for the
/// stand-in to print at start: condition operators it does not know (those statements
/// fail closed), condition keys its requests never carry for the statement's actions
/// (absent-key semantics then apply, where AWS would have a value), and policy
/// variables (`${aws:username}`), which are matched literally.
pub fn unchecked_conditions(policies: &[PolicyDocument]) -> Vec<String> {
    let mut report = Vec::new();
    for (p, policy) in policies.iter().enumerate() {
        for (s, statement) in policy.statements.iter().enumerate() {
            let at = format!("{}, {}", policy.label(p), statement.label(s));
            let resources = match &statement.resources {
                Patterns::Only(r) | Patterns::Not(r) => r,
            };
            for r in resources.iter().filter(|r| r.contains("${")) {
                report.push(format!(
                    "{at}: resource {r} uses a policy variable, which the stand-in matches literally"
                ));
            }
            for c in &statement.conditions {
                if parse_operator(&c.operator).is_none() {
                    let effect = match statement.effect {
                        Effect::Allow => "never allows",
                        Effect::Deny => "always denies",
                    };
                    report.push(format!(
                        "{at}: condition operator {} is not supported by the stand-in (the statement {effect})",
                        c.operator
                    ));
                    continue;
                }
                if !key_supplied(statement, &c.key) {
                    report.push(format!(
                        "{at}: condition key {} ({}) is never in the stand-in's requests for these actions; it is evaluated as absent",
                        c.key, c.operator
                    ));
                }
                if c.values.iter().any(|v| v.contains("${")) {
                    report.push(format!(
                        "{at}: condition {} {} uses a policy variable, which the stand-in matches literally",
                        c.operator, c.key
                    ));
                }
            }
        }
    }
    report
}

/// Whether some action the statement covers gets `key` in its request context.
fn key_supplied(statement: &Statement, key: &str) -> bool {
    supplied_context_keys().iter().any(|(action, keys)| {
        let covered = match &statement.actions {
            Patterns::Only(patterns) => patterns.iter().any(|p| patterns_overlap(p, action)),
            // Generous: a NotAction statement covers nearly everything.
            Patterns::Not(_) => true,
        };
        covered && keys.iter().any(|k| key_matches(k, key))
    })
}

/// `known` is a concrete action (`events:PutEvents`), `svc:*` or `*`.
fn patterns_overlap(pattern: &str, known: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let known = known.to_ascii_lowercase();
    if known == "*" {
        return true;
    }
    match known.strip_suffix(":*") {
        Some(service) => {
            let pattern_service = pattern.split(':').next().unwrap_or_default();
            pattern == "*" || glob_match(pattern_service, service)
        }
        None => glob_match(&pattern, &known),
    }
}

/// `known` may end in `:*` for a key family (`kms:EncryptionContext:*`).
fn key_matches(known: &str, key: &str) -> bool {
    let (known, key) = (known.to_ascii_lowercase(), key.to_ascii_lowercase());
    match known.strip_suffix('*') {
        Some(prefix) => key.starts_with(prefix),
        None => known == key,
    }
}

/// `*` any run of characters (`/` and `:` included), `?` any one character.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            // Let the last `*` swallow one more character.
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}
