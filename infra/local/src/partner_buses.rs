//! Partners' own buses, played locally: the hub answers partners (Ready for
//! Installation) on a bus ARN each partner registers. The stand-in creates such buses in
//! the emulator on request and records everything that arrives on them, so a user (or a
//! test) can read what the hub sent to each partner:
//!
//! - `POST /_local/partner-buses` `{"name": "acme"}` creates one and returns its ARN;
//! - `GET /_local/partner-buses/{name}/events` lists what it received.

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    routing::{get, post},
};
use shared::http::{AnyJson, ApiError};
use tokio::sync::Mutex;

#[derive(Debug, Clone)]
struct Recorder {
    arn: String,
    queue_url: String,
    received: Vec<serde_json::Value>,
}

#[derive(Clone)]
pub struct PartnerBuses {
    prefix: String,
    events: aws_sdk_eventbridge::Client,
    sqs: aws_sdk_sqs::Client,
    buses: Arc<Mutex<BTreeMap<String, Recorder>>>,
}

use hub_emulator::resources::err_text as text;

impl PartnerBuses {
    pub fn new(sdk: &aws_config::SdkConfig, prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            events: aws_sdk_eventbridge::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            buses: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// Creates (or returns) the partner bus `name` with a recorder behind it; its ARN.
    pub async fn create(&self, name: &str) -> Result<String, String> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err("name must be letters, digits, - or _".into());
        }
        let mut buses = self.buses.lock().await;
        if let Some(existing) = buses.get(name) {
            return Ok(existing.arn.clone());
        }
        let bus_name = format!("{}-partner-{name}", self.prefix);
        let arn = self
            .events
            .create_event_bus()
            .name(&bus_name)
            .send()
            .await
            .map_err(text)?
            .event_bus_arn
            .unwrap_or_default();
        let hub_emulator::Physical::Queue {
            url,
            arn: queue_arn,
        } = hub_emulator::resources::create_queue(&self.sqs, &bus_name).await?
        else {
            unreachable!("create_queue returns a queue")
        };
        self.events
            .put_rule()
            .name(&bus_name)
            .event_bus_name(&bus_name)
            .event_pattern(r#"{"source":[{"prefix":""}]}"#)
            .send()
            .await
            .map_err(text)?;
        let target = aws_sdk_eventbridge::types::Target::builder()
            .id("recorder")
            .arn(queue_arn)
            .build()
            .map_err(text)?;
        self.events
            .put_targets()
            .rule(&bus_name)
            .event_bus_name(&bus_name)
            .targets(target)
            .send()
            .await
            .map_err(text)?;
        buses.insert(
            name.to_owned(),
            Recorder {
                arn: arn.clone(),
                queue_url: url,
                received: Vec::new(),
            },
        );
        Ok(arn)
    }

    /// Everything the bus received so far, oldest first.
    pub async fn received(&self, name: &str) -> Result<Option<Vec<serde_json::Value>>, String> {
        let mut buses = self.buses.lock().await;
        let Some(recorder) = buses.get_mut(name) else {
            return Ok(None);
        };
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&recorder.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await
                .map_err(text)?;
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                return Ok(Some(recorder.received.clone()));
            }
            for message in messages {
                let body = message.body().unwrap_or_default();
                recorder.received.push(
                    serde_json::from_str(body)
                        .unwrap_or_else(|_| serde_json::Value::String(body.to_owned())),
                );
                if let Some(receipt) = message.receipt_handle() {
                    self.sqs
                        .delete_message()
                        .queue_url(&recorder.queue_url)
                        .receipt_handle(receipt)
                        .send()
                        .await
                        .map_err(text)?;
                }
            }
        }
    }

    pub fn admin_router(self) -> Router {
        Router::new()
            .route("/_local/partner-buses", post(create_bus))
            .route("/_local/partner-buses/{name}/events", get(list_events))
            .with_state(self)
    }
}

#[derive(serde::Deserialize)]
struct CreateBus {
    name: String,
}

async fn create_bus(
    State(buses): State<PartnerBuses>,
    body: Result<AnyJson<CreateBus>, ApiError>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let AnyJson(body) = body?;
    let arn = buses
        .create(body.name.trim())
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_bus", e).with_field("name"))?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"name": body.name.trim(), "arn": arn})),
    ))
}

#[derive(serde::Deserialize)]
struct ListParams {
    /// Waits up to this many seconds (at most 60) for at least one event.
    wait: Option<u64>,
}

async fn list_events(
    State(buses): State<PartnerBuses>,
    Path(name): Path<String>,
    axum::extract::Query(params): axum::extract::Query<ListParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let deadline = tokio::time::Instant::now()
        + std::time::Duration::from_secs(params.wait.unwrap_or(0).min(60));
    let mut received = buses.received(&name).await;
    while matches!(&received, Ok(Some(events)) if events.is_empty())
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        received = buses.received(&name).await;
    }
    match received {
        Ok(Some(events)) => Ok(Json(serde_json::json!({"name": name, "events": events}))),
        Ok(None) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_bus",
            format!("no partner bus named {name}"),
        )),
        Err(e) => Err(ApiError::new(StatusCode::BAD_GATEWAY, "emulator_error", e)),
    }
}
