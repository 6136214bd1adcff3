//! The fake SMS gateway: plays the four endpoints of the loyalty contract's gateway
//! (Attentive) with the contract's sample answers, for calls the recorder receives for
//! the gateway's host (`SMS_GATEWAY_URL`'s, by default `api.attentivemobile.com`).
//! Scripted answers (`POST /_local/outbound/script`) still come first: faults are
//! injected there. Its own settings: `POST /_local/sms-gateway {"ratePerSecond": n}`
//! (over the rate: 429 with `Retry-After: 1`), `GET /_local/sms-gateway` (subscribed
//! numbers and messages received).

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::Instant,
};

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

/// The gateway host the recorder hands to the fake (the template's default URL's).
pub fn gateway_host() -> &'static str {
    shared::Config::DEFAULT_SMS_GATEWAY_URL
        .trim_start_matches("https://")
        .trim_end_matches('/')
}

#[derive(Default)]
struct State {
    /// Numbers as the hub sent them, subscribed to TEXT.
    subscribed: BTreeSet<String>,
    messages: Vec<Value>,
    rate_per_second: Option<u32>,
    window: Option<(Instant, u32)>,
}

#[derive(Clone, Default)]
pub struct FakeGateway {
    state: Arc<Mutex<State>>,
}

pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub retry_after: Option<u64>,
}

fn answer(status: StatusCode, body: Value) -> Answer {
    Answer {
        status,
        body,
        retry_after: None,
    }
}

/// The E.164 form the gateway answers with (`+17707651750` for `7707651750`).
fn e164(to: &str) -> String {
    if to.starts_with('+') {
        to.to_owned()
    } else {
        format!("+1{to}")
    }
}

impl FakeGateway {
    pub fn settings(&self) -> Value {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        json!({
            "ratePerSecond": state.rate_per_second,
            "subscribed": state.subscribed,
            "messages": state.messages,
        })
    }

    pub fn configure(&self, settings: &Value) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.rate_per_second = settings["ratePerSecond"].as_u64().map(|r| r as u32);
        state.window = None;
        if settings["reset"] == true {
            *state = State::default();
        }
    }

    /// Over the configured rate in the current second?
    fn over_rate(state: &mut State) -> bool {
        let Some(rate) = state.rate_per_second else {
            return false;
        };
        let now = Instant::now();
        let (start, count) = match state.window {
            Some((start, count)) if now.duration_since(start).as_secs() < 1 => (start, count + 1),
            _ => (now, 1),
        };
        state.window = Some((start, count));
        count > rate
    }

    pub fn answer(
        &self,
        method: &str,
        path: &str,
        query: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Answer {
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .filter(|t| !t.is_empty());
        if bearer.is_none() {
            return answer(StatusCode::UNAUTHORIZED, json!({"message": "Unauthorized"}));
        }
        let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if Self::over_rate(&mut state) {
            return Answer {
                status: StatusCode::TOO_MANY_REQUESTS,
                body: json!({"message": "Too Many Requests"}),
                retry_after: Some(1),
            };
        }
        let channels = |status_field: &str, text: &str, email: &str| {
            json!([
                {"subscription": {"type": "MARKETING", "channel": "TEXT"}, status_field: text},
                {"subscription": {"type": "MARKETING", "channel": "EMAIL"}, status_field: email},
            ])
        };
        match (method, path) {
            ("POST", "/v1/subscriptions") => {
                let Some(phone) = request["user"]["phone"].as_str() else {
                    return answer(
                        StatusCode::BAD_REQUEST,
                        json!({"message": "user.phone is required"}),
                    );
                };
                if request["signUpSourceId"].as_str().is_none_or(str::is_empty) {
                    return answer(
                        StatusCode::BAD_REQUEST,
                        json!({"message": "signUpSourceId is required"}),
                    );
                }
                let status = if state.subscribed.insert(phone.to_owned()) {
                    "NEWLY_CREATED"
                } else {
                    "ALREADY_SUBSCRIBED"
                };
                answer(
                    StatusCode::OK,
                    json!({
                        "user": request["user"],
                        "subscriptionResponses": channels("subscriptionCreationStatus", status, status),
                    }),
                )
            }
            ("GET", "/v1/subscriptions") => {
                let phone = query
                    .split('&')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(k, _)| *k == "phone")
                    .map(|(_, v)| v.replace("%2B", "+"))
                    .unwrap_or_default();
                let eligible = state.subscribed.contains(&phone);
                answer(
                    StatusCode::OK,
                    json!({"subscriptionEligibilities": [
                        {"subscription": {"type": "MARKETING", "channel": "TEXT"}, "eligibility": {"isEligible": eligible}},
                        {"subscription": {"type": "MARKETING", "channel": "EMAIL"}, "eligibility": {"isEligible": true}},
                    ]}),
                )
            }
            ("POST", "/v1/subscriptions/unsubscribe") => {
                let phone = request["user"]["phone"].as_str().unwrap_or_default();
                let status = if state.subscribed.remove(phone) {
                    "NEWLY_UNSUBSCRIBED"
                } else {
                    "ALREADY_UNSUBSCRIBED"
                };
                answer(
                    StatusCode::OK,
                    json!({
                        "user": request["user"],
                        "subscriptionResponses": channels("subscriptionUnsubscribeStatus", status, status),
                    }),
                )
            }
            ("POST", "/v1/subscriptions/messages") => {
                let (Some(to), Some(text)) = (request["to"].as_str(), request["body"].as_str())
                else {
                    return answer(
                        StatusCode::BAD_REQUEST,
                        json!({"message": "to and body are required"}),
                    );
                };
                let sent = json!({
                    "type": "v1",
                    "to": e164(to),
                    "body": text,
                    "skipFatigue": true,
                    "createShortLink": false,
                    "addSubscriber": "true",
                });
                state.messages.push(sent.clone());
                answer(StatusCode::OK, sent)
            }
            _ => answer(StatusCode::NOT_FOUND, json!({"message": "Not Found"})),
        }
    }
}
