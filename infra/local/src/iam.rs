//! IAM as AWS enforces it, in front of the emulator (moto enforces none).
//!
//! Every function of the stand-in calls AWS with credentials of its own (its logical id
//! as the access key id) through this proxy, as a Lambda function calls AWS with its
//! role's. The proxy names the caller from the SigV4 credential, turns the call into the
//! permissions AWS would check (`hub_emulator::iam::authorization_requests`: a
//! transaction's items as their own actions, a query on an index against the index's
//! ARN, ...), evaluates them against the caller's policies as the template renders them,
//! and forwards the call to the emulator, or answers `AccessDeniedException` as AWS
//! would. Lambda's Invoke API (served by the stand-in itself) goes through it too.
//!
//! Who signs with what:
//! - each function: its logical id, under the policies SAM attaches to its role (also
//!   for what Lambda does with the role: reading the table's stream for the outbox
//!   relay, sending failed invocations to their destination);
//! - `hub-admin` (`.hub/local.env`): `OperatorPolicy`, the template's managed policy for
//!   the people who run the hub;
//! - the stand-in's own set-up and inspection (creating resources, seeding, polling the
//!   rule queues that play EventBridge's Lambda targets) and the storage tests call the
//!   emulator directly, as the account's administrator would: no function identity.
//!
//! Every decision is kept (`GET /_local/iam`, and one JSON line per decision in
//! `HUB_IAM_LOG_FILE` when set), and every denial is logged with caller, action and
//! resource.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    io::Write,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Request, State},
    http::{HeaderName, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use hub_emulator::iam::{self, PolicyDocument, RawRequest, ResourceIndex};
use serde::Serialize;

/// The access key id `hub-admin` signs with locally: the operator policy's logical id.
pub const OPERATOR: &str = "OperatorPolicy";

/// `sdk` signing as `access_key_id` and sending to the IAM proxy at `endpoint`.
pub fn signed_as(
    sdk: &aws_config::SdkConfig,
    access_key_id: &str,
    endpoint: &str,
) -> aws_config::SdkConfig {
    let credentials = aws_sdk_sqs::config::Credentials::new(
        access_key_id,
        "hub-local-secret",
        None,
        None,
        "hub-local",
    );
    sdk.to_builder()
        .credentials_provider(aws_sdk_sqs::config::SharedCredentialsProvider::new(
            credentials,
        ))
        .endpoint_url(endpoint)
        .build()
}

/// One principal: who signs with an access key, and its policies.
#[derive(Clone, Debug)]
pub struct Principal {
    pub policies: Vec<PolicyDocument>,
}

/// One decision, as logged.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Authorization {
    pub principal: String,
    pub action: String,
    pub resource: String,
    pub allowed: bool,
}

/// The decisions so far, shared by the proxy and whoever reads them.
#[derive(Clone, Default)]
pub struct AuthorizationLog {
    seen: Arc<Mutex<BTreeMap<Authorization, u64>>>,
    file: Option<Arc<Mutex<std::fs::File>>>,
}

impl AuthorizationLog {
    /// Appends to `HUB_IAM_LOG_FILE` when it is set (the whole suite's decisions, for
    /// `hub-bench iam-coverage`).
    pub fn from_env() -> Self {
        let file = std::env::var_os("HUB_IAM_LOG_FILE").and_then(|path| {
            let path = std::path::PathBuf::from(path);
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| tracing::warn!(path = %path.display(), error = %e, "HUB_IAM_LOG_FILE"))
                .ok()
        });
        Self {
            seen: Arc::default(),
            file: file.map(|f| Arc::new(Mutex::new(f))),
        }
    }

    fn note(&self, decision: Authorization) {
        if let Some(file) = &self.file
            && let (Ok(mut file), Ok(line)) = (file.lock(), serde_json::to_string(&decision))
        {
            // One write per line: appends from several test processes stay whole.
            let _ = file.write_all(format!("{line}\n").as_bytes());
        }
        if let Ok(mut seen) = self.seen.lock() {
            *seen.entry(decision).or_default() += 1;
        }
    }

    /// Every distinct decision so far with how often it was taken.
    pub fn decisions(&self) -> Vec<(Authorization, u64)> {
        self.seen
            .lock()
            .map(|seen| seen.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }

    /// The denials so far.
    pub fn denied(&self) -> Vec<Authorization> {
        self.decisions()
            .into_iter()
            .filter(|(d, _)| !d.allowed)
            .map(|(d, _)| d)
            .collect()
    }
}

/// The proxy's state.
#[derive(Clone)]
pub struct Enforcer {
    principals: Arc<HashMap<String, Principal>>,
    index: Arc<ResourceIndex>,
    /// The emulator; Lambda's API goes to `lambda_upstream` (the stand-in).
    upstream: String,
    lambda_upstream: String,
    http: reqwest::Client,
    pub log: AuthorizationLog,
}

impl Enforcer {
    pub fn new(
        principals: HashMap<String, Principal>,
        index: ResourceIndex,
        upstream: String,
        lambda_upstream: String,
        log: AuthorizationLog,
    ) -> Self {
        // reqwest wants a process-wide TLS provider even for plain HTTP.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self {
            principals: Arc::new(principals),
            index: Arc::new(index),
            upstream: upstream.trim_end_matches('/').to_owned(),
            lambda_upstream: lambda_upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            log,
        }
    }

    /// What the principals' policies use that the stand-in cannot check as AWS would.
    pub fn unchecked(&self) -> Vec<String> {
        let mut lines = BTreeSet::new();
        for (name, principal) in self.principals.iter() {
            for line in iam::unchecked_conditions(&principal.policies) {
                lines.insert(format!("{name}: {line}"));
            }
        }
        lines.into_iter().collect()
    }

    pub fn router(self) -> Router {
        Router::new().fallback(proxy).with_state(self)
    }

    /// Decides a call: `Ok` to forward it, or AWS's answer to a denied or unsigned one.
    fn decide(&self, request: &RawRequest) -> Result<(), Box<Response>> {
        if let Some(why) = unplayable(request) {
            tracing::warn!(operation = %iam::describe_operation(request), %why, "refused before IAM");
            return Err(Box::new(aws_error(
                request,
                "InvalidRequestException",
                &why,
            )));
        }
        let Some(key) = iam::access_key_id(&request.headers) else {
            return Err(Box::new(aws_error(
                request,
                "MissingAuthenticationTokenException",
                "Request is missing Authentication Token",
            )));
        };
        let Some(principal) = self.principals.get(&key) else {
            // AWS: the access key is not one it issued.
            return Err(Box::new(aws_error(
                request,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )));
        };
        let needed = iam::authorization_requests(request, &self.index).map_err(|reason| {
            tracing::error!(principal = %key, operation = %iam::describe_operation(request), %reason, "the stand-in cannot authorize this call; refused");
            let (status, headers, body) = iam::access_denied_response(
                request,
                &self.index.caller_arn(&key),
                &iam::describe_operation(request),
                "*",
                &format!("because the stand-in cannot authorize it: {reason}"),
            );
            Box::new(raw_response(status, headers, body))
        })?;
        for need in &needed {
            let decision = iam::evaluate(&principal.policies, need);
            self.log.note(Authorization {
                principal: key.clone(),
                action: need.action.clone(),
                resource: need.resource.clone(),
                allowed: decision.allowed,
            });
            if !decision.allowed {
                tracing::warn!(
                    principal = %key,
                    action = %need.action,
                    resource = %need.resource,
                    reason = %decision.reason,
                    "AccessDeniedException"
                );
                let (status, headers, body) = iam::access_denied_response(
                    request,
                    &self.index.caller_arn(&key),
                    &need.action,
                    &need.resource,
                    &decision.reason,
                );
                return Err(Box::new(raw_response(status, headers, body)));
            }
            tracing::debug!(principal = %key, action = %need.action, resource = %need.resource, "allowed");
        }
        Ok(())
    }
}

/// Why a request cannot be authorized as moto would serve it, if it cannot: the proxy
/// decides on what it parses, so every place moto could read a different operation,
/// resource or service from must agree with it or the request is refused.
fn unplayable(request: &RawRequest) -> Option<String> {
    let path = request.path.to_ascii_lowercase();
    // moto's own administration (reset, state) and the stand-in's helpers: no AWS API.
    if path.starts_with("/moto-api") || path.starts_with("/_hub") || path.contains("%2f") {
        return Some(format!("{} is not an AWS API path", request.path));
    }
    for name in [
        "authorization",
        "x-amz-target",
        "content-type",
        "host",
        "content-encoding",
    ] {
        let count = request
            .headers
            .iter()
            .filter(|(header, _)| header.eq_ignore_ascii_case(name))
            .count();
        if count > 1 {
            return Some(format!("the {name} header is given {count} times"));
        }
    }
    let rpc = matches!(
        iam::protocol(request),
        iam::Protocol::AwsJson1_0 | iam::Protocol::AwsJson1_1 | iam::Protocol::AwsQuery
    );
    // JSON and query protocols name operation and resources in the body alone: moto
    // also reads the URL's query and path, which the proxy would not have checked.
    if rpc && (request.path != "/" || request.query.as_deref().is_some_and(|q| !q.is_empty())) {
        return Some(format!(
            "a JSON or query protocol request goes to / with no query string, not {}{}",
            request.path,
            request
                .query
                .as_deref()
                .map(|q| format!("?{q}"))
                .unwrap_or_default()
        ));
    }
    None
}

/// Errors AWS gives before any policy is read (unsigned, unknown key).
fn aws_error(request: &RawRequest, code: &str, message: &str) -> Response {
    let (status, mut headers, _) = iam::access_denied_response(request, "", "", "", "");
    headers.retain(|(name, _)| name != "x-amzn-errortype");
    headers.push(("x-amzn-errortype".into(), code.into()));
    let body = serde_json::json!({"__type": code, "message": message}).to_string();
    raw_response(status, headers, body.into_bytes())
}

fn raw_response(status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> Response {
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN),
        body,
    )
        .into_response();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// Largest body the proxy reads (DynamoDB's largest request is 16 MB).
const MAX_BODY: usize = 16 * 1024 * 1024;

async fn proxy(State(enforcer): State<Enforcer>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(e) => {
            return (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()).into_response();
        }
    };
    let raw = RawRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    if let Err(denied) = enforcer.decide(&raw) {
        return *denied;
    }
    let upstream = match iam::credential(&raw.headers).map(|c| c.service) {
        Some(service) if service == "lambda" => &enforcer.lambda_upstream,
        _ => &enforcer.upstream,
    };
    let url = match parts.uri.path_and_query() {
        Some(pq) => format!("{upstream}{pq}"),
        None => upstream.clone(),
    };
    let mut forward = enforcer.http.request(parts.method.clone(), url);
    for (name, value) in &parts.headers {
        if name == axum::http::header::HOST || name == axum::http::header::CONTENT_LENGTH {
            continue;
        }
        forward = forward.header(name, value);
    }
    let answer = match forward.body(body).send().await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::error!(error = %e, "the emulator did not answer through the IAM proxy");
            return (
                StatusCode::BAD_GATEWAY,
                format!("the emulator did not answer: {e}"),
            )
                .into_response();
        }
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap_or_default();
    let mut response = (status, bytes).into_response();
    for (name, value) in headers.iter() {
        if name == axum::http::header::CONTENT_LENGTH
            || name == axum::http::header::TRANSFER_ENCODING
            || name == axum::http::header::CONNECTION
        {
            continue;
        }
        response.headers_mut().append(name.clone(), value.clone());
    }
    response
}

/// `GET /_local/iam`: every decision so far (principal, action, resource, allowed,
/// count), denials first.
pub fn admin_router(log: AuthorizationLog, unchecked: Vec<String>) -> Router {
    Router::new()
        .route(
            "/_local/iam",
            get(move || {
                let log = log.clone();
                let unchecked = unchecked.clone();
                async move {
                    let mut decisions: Vec<serde_json::Value> = log
                        .decisions()
                        .into_iter()
                        .map(|(d, count)| {
                            let mut v = serde_json::to_value(d).unwrap_or_default();
                            v["count"] = count.into();
                            v
                        })
                        .collect();
                    decisions.sort_by_key(|d| d["allowed"].as_bool());
                    Json(serde_json::json!({
                        "decisions": decisions,
                        "unchecked": unchecked,
                    }))
                }
            }),
        )
        .with_state(())
}

/// Grants no test exercised, by principal (`*`: every principal), each with the reason it
/// is kept: `infra/iam/unused-grants.json`.
pub type Exceptions = BTreeMap<String, BTreeMap<String, String>>;

/// What a run of the end-to-end suite shows of the template's policies.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Calls the policies refused.
    pub denied: Vec<Authorization>,
    /// `(principal, action)` granted but never allowed, and not an exception.
    pub unused: Vec<(String, String)>,
    /// Exceptions for grants the template no longer makes, or that were used after all.
    pub stale_exceptions: Vec<(String, String)>,
}

impl Coverage {
    pub fn is_clean(&self) -> bool {
        self.denied.is_empty() && self.unused.is_empty() && self.stale_exceptions.is_empty()
    }
}

/// The actions each principal's Allow statements grant (functions by logical id, and
/// [`OPERATOR`]), as the template renders them.
pub fn granted(
    template: &hub_emulator::Template,
) -> Result<BTreeMap<String, BTreeSet<String>>, String> {
    // Which resources and conditions does not change which actions are granted: every
    // reference resolves to a placeholder and every condition holds.
    let lookup = |id: &str, attr: Option<&str>| {
        Some(match (id.strip_prefix("Condition::"), attr) {
            (Some(_), _) => "true".to_owned(),
            (None, Some(attr)) => format!("arn:aws:placeholder:::{id}.{attr}"),
            (None, None) => format!("placeholder-{id}"),
        })
    };
    let mut grants = BTreeMap::new();
    let functions = template.functions().map_err(|e| e.to_string())?;
    let mut principals: Vec<(String, Vec<PolicyDocument>)> = Vec::new();
    for def in &functions {
        principals.push((
            def.logical_id.clone(),
            iam::function_policies(template, &def.logical_id, &lookup)?,
        ));
    }
    principals.push((
        OPERATOR.to_owned(),
        vec![iam::managed_policy(template, OPERATOR, &lookup)?],
    ));
    for (principal, policies) in principals {
        let actions: BTreeSet<String> = policies
            .iter()
            .flat_map(|p| &p.statements)
            .filter(|s| s.effect == iam::Effect::Allow)
            .filter_map(|s| match &s.actions {
                iam::Patterns::Only(actions) => Some(actions.iter().cloned()),
                iam::Patterns::Not(_) => None,
            })
            .flatten()
            .collect();
        grants.insert(principal, actions);
    }
    Ok(grants)
}

/// Compares what was granted with what a run allowed (see [`Coverage`]).
pub fn coverage(
    granted: &BTreeMap<String, BTreeSet<String>>,
    decisions: &[Authorization],
    exceptions: &Exceptions,
) -> Coverage {
    let used: BTreeSet<(String, String)> = decisions
        .iter()
        .filter(|d| d.allowed)
        .map(|d| (d.principal.clone(), d.action.to_ascii_lowercase()))
        .collect();
    let excepted = |principal: &str, action: &str| {
        [principal, "*"].iter().any(|p| {
            exceptions
                .get(*p)
                .is_some_and(|list| list.keys().any(|a| a.eq_ignore_ascii_case(action)))
        })
    };
    let mut report = Coverage {
        denied: decisions
            .iter()
            .filter(|d| !d.allowed)
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        ..Coverage::default()
    };
    for (principal, actions) in granted {
        for action in actions {
            let was_used = used.contains(&(principal.clone(), action.to_ascii_lowercase()));
            if !was_used && !excepted(principal, action) {
                report.unused.push((principal.clone(), action.clone()));
            }
        }
    }
    for (principal, list) in exceptions {
        for action in list.keys() {
            let granted_to: Vec<&String> = granted
                .iter()
                .filter(|(p, actions)| {
                    (principal == "*" || *p == principal)
                        && actions.iter().any(|a| a.eq_ignore_ascii_case(action))
                })
                .map(|(p, _)| p)
                .collect();
            let all_used = !granted_to.is_empty()
                && granted_to
                    .iter()
                    .all(|p| used.contains(&((*p).clone(), action.to_ascii_lowercase())));
            if granted_to.is_empty() || all_used {
                report
                    .stale_exceptions
                    .push((principal.clone(), action.clone()));
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(principal: &str, action: &str, allowed: bool) -> Authorization {
        Authorization {
            principal: principal.into(),
            action: action.into(),
            resource: "arn:aws:dynamodb:us-east-1:123456789012:table/T".into(),
            allowed,
        }
    }

    #[test]
    fn coverage_names_denials_unused_grants_and_stale_exceptions() {
        let granted: BTreeMap<String, BTreeSet<String>> = [
            (
                "A".to_owned(),
                [
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "logs:CreateLogStream",
                ]
                .map(String::from)
                .into(),
            ),
            ("B".to_owned(), ["kms:Decrypt"].map(String::from).into()),
        ]
        .into();
        let exceptions: Exceptions = [
            (
                "*".to_owned(),
                [("logs:CreateLogStream".to_owned(), "Lambda's".to_owned())].into(),
            ),
            (
                "B".to_owned(),
                [
                    ("kms:Decrypt".to_owned(), "used after all".to_owned()),
                    ("kms:Sign".to_owned(), "no longer granted".to_owned()),
                ]
                .into(),
            ),
        ]
        .into();
        let decisions = vec![
            decision("A", "dynamodb:getitem", true),
            decision("A", "dynamodb:UpdateItem", false),
            decision("B", "kms:Decrypt", true),
        ];
        let report = coverage(&granted, &decisions, &exceptions);
        assert_eq!(
            report.denied,
            vec![decision("A", "dynamodb:UpdateItem", false)]
        );
        assert_eq!(report.unused, vec![("A".into(), "dynamodb:PutItem".into())]);
        assert_eq!(
            report.stale_exceptions,
            vec![
                ("B".into(), "kms:Decrypt".into()),
                ("B".into(), "kms:Sign".into())
            ]
        );
        assert!(!report.is_clean());
    }
}
