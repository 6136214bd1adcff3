//! The recorder: plays every third party the hub calls (partners' webhooks, later the SMS
//! gateway and OAuth providers). The functions' outbound client sends every call here
//! (`OUTBOUND_RECORDER_URL`) unless the stand-in runs with `HUB_OUTBOUND=real`.
//!
//! - `ANY /_local/outbound/to/{host}/{path}`: records the call (method, original URL,
//!   headers, body) and answers the next scripted answer for that host, else 200;
//! - `GET /_local/outbound[?host=]`: what was received, oldest first;
//! - `POST /_local/outbound/script`: answers to give, in order, e.g.
//!   `{"status": 503, "times": 2}`, `{"status": 429, "headers": {"retry-after": "1"}}`,
//!   `{"status": 200, "delay_ms": 12000}` (a timeout), `{"host": "partner.example.com", ...}`,
//!   `{"path": "/releva/subscriptions", "body": {...}}` (only calls to that path);
//! - `DELETE /_local/outbound`: forgets calls and script;
//! - calls to the SMS gateway's host without a scripted answer are played by the fake
//!   gateway (`sms_gateway`), configured at `/_local/sms-gateway`;
//! - calls to an OAuth2 connector's authorize or token URL without a scripted answer
//!   are played by the fake provider (`oauth_provider`); a browser reaches the
//!   authorize page here too (the embed API's `oauth_url` points at the recorder).

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, Method, StatusCode},
    response::{IntoResponse, Response},
    routing::{any, get, post},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::outbound::ORIGINAL_URL_HEADER;

/// One call the hub made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedCall {
    pub method: String,
    /// The URL the hub meant to call.
    pub url: String,
    pub host: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub received_at: String,
    /// The status the recorder answered.
    pub answered: u16,
}

/// An answer to give.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scripted {
    #[serde(default = "ok")]
    pub status: u16,
    /// How many calls get this answer.
    #[serde(default = "one")]
    pub times: u32,
    #[serde(default)]
    pub delay_ms: u64,
    #[serde(default)]
    pub body: Option<Value>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Only calls to this host.
    #[serde(default)]
    pub host: Option<String>,
    /// Only calls to this path (`/releva/subscriptions`).
    #[serde(default)]
    pub path: Option<String>,
}

impl Scripted {
    /// An answer a local fake played (the SMS gateway, the OAuth2 provider).
    fn played(status: StatusCode, body: Value, headers: BTreeMap<String, String>) -> Self {
        Self {
            status: status.as_u16(),
            times: 1,
            delay_ms: 0,
            body: Some(body),
            headers,
            host: None,
            path: None,
        }
    }
}

fn ok() -> u16 {
    200
}

fn one() -> u32 {
    1
}

#[derive(Default)]
struct Tape {
    calls: Vec<RecordedCall>,
    script: VecDeque<Scripted>,
}

#[derive(Clone, Default)]
pub struct Recorder {
    tape: Arc<Mutex<Tape>>,
    /// Plays the SMS gateway for calls to its host (after any scripted answer).
    pub gateway: crate::sms_gateway::FakeGateway,
    /// Plays the OAuth2 connectors' providers (after any scripted answer).
    pub oauth: crate::oauth_provider::FakeOAuthProvider,
}

impl Recorder {
    pub fn router(self) -> Router {
        Router::new()
            .route("/_local/outbound", get(list).delete(clear))
            .route("/_local/outbound/script", post(script))
            .route("/_local/outbound/to/{*rest}", any(receive))
            .route(
                "/_local/sms-gateway",
                get(gateway_settings).post(configure_gateway),
            )
            .with_state(self)
    }

    pub fn calls(&self) -> Vec<RecordedCall> {
        self.tape
            .lock()
            .map(|t| t.calls.clone())
            .unwrap_or_default()
    }

    /// The next scripted answer for `host` (consumed).
    fn next_answer(&self, host: &str, path: &str) -> Option<Scripted> {
        let mut tape = self.tape.lock().ok()?;
        let index = tape.script.iter().position(|s| {
            s.host.as_deref().is_none_or(|h| h == host)
                && s.path.as_deref().is_none_or(|p| p == path)
        })?;
        let entry = tape.script.get_mut(index)?;
        let answer = entry.clone();
        entry.times = entry.times.saturating_sub(1);
        if entry.times == 0 {
            tape.script.remove(index);
        }
        Some(answer)
    }
}

#[derive(Deserialize)]
struct HostFilter {
    host: Option<String>,
}

async fn list(State(recorder): State<Recorder>, Query(filter): Query<HostFilter>) -> Json<Value> {
    let calls: Vec<RecordedCall> = recorder
        .calls()
        .into_iter()
        .filter(|c| filter.host.as_deref().is_none_or(|h| h == c.host))
        .collect();
    Json(serde_json::json!({ "calls": calls }))
}

async fn gateway_settings(State(recorder): State<Recorder>) -> Json<Value> {
    Json(recorder.gateway.settings())
}

async fn configure_gateway(
    State(recorder): State<Recorder>,
    Json(body): Json<Value>,
) -> Json<Value> {
    recorder.gateway.configure(&body);
    Json(recorder.gateway.settings())
}

async fn clear(State(recorder): State<Recorder>) -> StatusCode {
    if let Ok(mut tape) = recorder.tape.lock() {
        *tape = Tape::default();
    }
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ScriptBody {
    Many(Vec<Scripted>),
    One(Scripted),
}

async fn script(State(recorder): State<Recorder>, Json(body): Json<ScriptBody>) -> Json<Value> {
    let answers = match body {
        ScriptBody::Many(many) => many,
        ScriptBody::One(one) => vec![one],
    };
    let count = answers.len();
    if let Ok(mut tape) = recorder.tape.lock() {
        tape.script.extend(answers);
    }
    Json(serde_json::json!({ "scripted": count }))
}

async fn receive(
    State(recorder): State<Recorder>,
    Path(rest): Path<String>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (host, path) = match rest.split_once('/') {
        Some((host, path)) => (host.to_owned(), format!("/{path}")),
        None => (rest.clone(), "/".to_owned()),
    };
    let answer = recorder.next_answer(&host, &path).unwrap_or_else(|| {
        if recorder.oauth.plays(&host, &path) {
            let played = recorder.oauth.answer(
                &host,
                &path,
                uri.query().unwrap_or_default(),
                &headers,
                &body,
            );
            return Scripted::played(
                played.status,
                played.body,
                played.headers.into_iter().collect(),
            );
        }
        if host == crate::sms_gateway::gateway_host() {
            let played = recorder.gateway.answer(
                method.as_str(),
                &path,
                uri.query().unwrap_or_default(),
                &headers,
                &body,
            );
            return Scripted::played(
                played.status,
                played.body,
                played
                    .retry_after
                    .map(|s| BTreeMap::from([("retry-after".to_owned(), s.to_string())]))
                    .unwrap_or_default(),
            );
        }
        Scripted {
            status: 200,
            times: 1,
            delay_ms: 0,
            body: None,
            headers: BTreeMap::new(),
            host: None,
            path: None,
        }
    });
    let call = RecordedCall {
        method: method.to_string(),
        url: headers
            .get(ORIGINAL_URL_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        host,
        path,
        headers: headers
            .iter()
            .filter(|(name, _)| name.as_str() != ORIGINAL_URL_HEADER)
            .map(|(name, value)| {
                (
                    name.to_string(),
                    value.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
        received_at: shared::clock::sortable(shared::clock::now()),
        answered: answer.status,
    };
    if let Ok(mut tape) = recorder.tape.lock() {
        tape.calls.push(call);
    }
    if answer.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(answer.delay_ms)).await;
    }
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (
        status,
        Json(
            answer
                .body
                .unwrap_or_else(|| serde_json::json!({"ok": true})),
        ),
    )
        .into_response();
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            axum::http::HeaderValue::from_str(&value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
