//! DynamoDB streams to functions, as Lambda's event source mappings deliver them, from
//! the template's `AWS::Lambda::EventSourceMapping`s: the emulator serves the table's
//! stream (DynamoDB Streams' `GetShardIterator`/`GetRecords`); a poller per mapping
//! drops the records its filters refuse, hands the rest to the function in batches of
//! `BatchSize` with Lambda's event shape (the same conversion code as on AWS), and
//!
//! - on success moves past the batch; on a partial batch response
//!   (`ReportBatchItemFailures`) moves up to the first reported record and delivers the
//!   rest again; on an error delivers the whole batch again, after a backoff;
//! - after `MaximumRetryAttempts` failures without progress sends the batch's stream
//!   coordinates to the on-failure destination (Lambda's `DDBStreamBatchInfo` record)
//!   and moves past it, as Lambda does.

use std::{collections::VecDeque, time::Duration};

use hub_emulator::template::StreamMapping;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::{failures::OnFailure, functions::Invoke};

/// Pause between empty polls (moto serves one request at a time: keep polls cheap).
const IDLE_POLL: Duration = Duration::from_millis(100);
/// The longest pause before a failed batch is delivered again.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

pub struct StreamPoller {
    pub http: reqwest::Client,
    /// The emulator's endpoint (it serves DynamoDB Streams' JSON API).
    pub endpoint: String,
    /// Who reads: the function's role (its logical id, see `iam`).
    pub access_key: String,
    pub stream_arn: String,
    pub mapping: StreamMapping,
    pub invoke: Invoke,
    pub on_failure: OnFailure,
}

/// Where a poller is in the stream.
#[derive(Default)]
struct Position {
    iterator: Option<String>,
    /// The last record handed on (or filtered out), to resume after an error.
    last_sequence: Option<String>,
    /// Records that passed the filters and wait for the function, in stream order.
    pending: VecDeque<Value>,
    /// Failed deliveries of the first pending record.
    failures: i64,
}

impl StreamPoller {
    /// Checks the mapping's filters: only the operators the stand-in implements.
    pub fn check_filters(mapping: &StreamMapping) -> Result<(), String> {
        mapping.filters.iter().try_for_each(check_pattern)
    }

    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut position = Position::default();
        loop {
            if *shutdown.borrow() {
                return;
            }
            let pause = match self.step(&mut position).await {
                Ok(true) => continue,
                Ok(false) => IDLE_POLL,
                Err(error) => {
                    tracing::warn!(mapping = %self.mapping.logical_id, %error, "reading the stream failed");
                    position.iterator = None;
                    IDLE_POLL
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Fetches records or delivers a batch; `true` when it did either.
    async fn step(&self, position: &mut Position) -> Result<bool, String> {
        if position.pending.is_empty() {
            return self.fetch(position).await;
        }
        let size = self.mapping.batch_size.min(position.pending.len());
        let batch: Vec<Value> = position.pending.iter().take(size).cloned().collect();
        let event = json!({ "Records": batch });
        let result = shared::runtime::invoke_guarded(&self.invoke, event).await;
        let delivered = match &result {
            Ok(response) => self.delivered(&batch, response),
            Err(_) => 0,
        };
        if delivered > 0 {
            position.pending.drain(..delivered);
            position.failures = 0;
            if delivered == size {
                return Ok(true);
            }
        }
        position.failures += 1;
        let error = result
            .err()
            .unwrap_or_else(|| "a partial batch failure".to_owned());
        let retries = self.mapping.maximum_retry_attempts;
        if retries >= 0 && position.failures > retries {
            let rest: Vec<Value> = position.pending.drain(..size - delivered).collect();
            self.on_failure
                .send(&self.batch_info(&rest, position.failures), &error)
                .await?;
            position.failures = 0;
            return Ok(true);
        }
        tracing::warn!(mapping = %self.mapping.logical_id, %error, failures = position.failures, "stream batch failed; it will be delivered again");
        let backoff = Duration::from_millis(50 << position.failures.min(5)).min(MAX_BACKOFF);
        tokio::time::sleep(backoff).await;
        Ok(true)
    }

    /// How many records of the batch, from the first, the function is done with.
    fn delivered(&self, batch: &[Value], response: &Value) -> usize {
        if !self.mapping.reports_item_failures {
            return batch.len();
        }
        let failed: Vec<&str> = response
            .get("batchItemFailures")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|f| f.get("itemIdentifier").and_then(Value::as_str))
            .collect();
        // Lambda goes on from the lowest sequence number reported.
        batch
            .iter()
            .position(|r| failed.contains(&sequence(r).unwrap_or_default()))
            .unwrap_or(batch.len())
    }

    async fn fetch(&self, position: &mut Position) -> Result<bool, String> {
        let iterator = match position.iterator.take() {
            Some(iterator) => iterator,
            None => self.iterator(position.last_sequence.as_deref()).await?,
        };
        let out = self
            .call(
                "GetRecords",
                json!({"ShardIterator": iterator, "Limit": self.mapping.batch_size}),
            )
            .await?;
        position.iterator = out
            .get("NextShardIterator")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let records = out
            .get("Records")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let seen = !records.is_empty();
        for mut record in records {
            position.last_sequence = sequence(&record).map(str::to_owned);
            if !self.mapping.filters.is_empty()
                && !self.mapping.filters.iter().any(|f| matches(f, &record))
            {
                continue;
            }
            // As Lambda hands it: the stream's ARN, the creation time in epoch seconds.
            record["eventSourceARN"] = self.stream_arn.clone().into();
            record["dynamodb"]["ApproximateCreationDateTime"] =
                (shared::clock::now().unix_timestamp() as f64).into();
            position.pending.push_back(record);
        }
        Ok(seen)
    }

    /// A shard iterator at the mapping's starting position, or after `last`.
    async fn iterator(&self, last: Option<&str>) -> Result<String, String> {
        let stream = self
            .call("DescribeStream", json!({"StreamArn": self.stream_arn}))
            .await?;
        let shard = stream["StreamDescription"]["Shards"]
            .get(0)
            .and_then(|s| s.get("ShardId"))
            .and_then(Value::as_str)
            .ok_or("the stream has no shard")?
            .to_owned();
        let mut request = json!({"StreamArn": self.stream_arn, "ShardId": shard});
        match last {
            Some(sequence) => {
                request["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER".into();
                request["SequenceNumber"] = sequence.into();
            }
            None => request["ShardIteratorType"] = self.mapping.starting_position.clone().into(),
        }
        let out = self.call("GetShardIterator", request).await?;
        out.get("ShardIterator")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| "GetShardIterator answered no iterator".to_owned())
    }

    /// One call of DynamoDB Streams' JSON API.
    async fn call(&self, operation: &str, body: Value) -> Result<Value, String> {
        let response = self
            .http
            .post(&self.endpoint)
            .header("X-Amz-Target", format!("DynamoDBStreams_20120810.{operation}"))
            .header("Content-Type", "application/x-amz-json-1.0")
            // The emulator picks service and region from the credential scope.
            .header(
                "Authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential={}/20260101/{}/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
                    self.access_key,
                    hub_emulator::resources::REGION
                ),
            )
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("{operation}: {e}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{operation} answered {status}: {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("{operation}: {e}"))
    }

    /// Lambda's on-failure record for a stream batch: where the records are, not them.
    fn batch_info(&self, records: &[Value], attempts: i64) -> Value {
        json!({
            "requestContext": {
                "requestId": shared::secrets::random_hex16(),
                "functionArn": crate::failures::function_arn(&self.on_failure.function),
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": shared::clock::sortable(shared::clock::now()),
            "DDBStreamBatchInfo": {
                "shardId": "local",
                "startSequenceNumber": records.first().and_then(sequence),
                "endSequenceNumber": records.last().and_then(sequence),
                "batchSize": records.len(),
                "streamArn": self.stream_arn,
            },
        })
    }
}

fn sequence(record: &Value) -> Option<&str> {
    record["dynamodb"]["SequenceNumber"].as_str()
}

/// Whether an event matches a filter pattern (the subset of Lambda's filter syntax the
/// template uses, checked by [`check_pattern`]): nested objects, lists of values, and
/// `{"prefix": ...}`, `{"exists": ...}` and `{"anything-but": [...]}` matchers.
pub fn matches(pattern: &Value, event: &Value) -> bool {
    let Some(fields) = pattern.as_object() else {
        return false;
    };
    fields.iter().all(|(name, wanted)| {
        let value = event.get(name);
        match wanted {
            Value::Object(_) => value.is_some_and(|v| matches(wanted, v)),
            Value::Array(options) => options.iter().any(|option| matcher(option, value)),
            _ => false,
        }
    })
}

fn matcher(option: &Value, value: Option<&Value>) -> bool {
    let values: Vec<&Value> = match value {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v) => vec![v],
        None => Vec::new(),
    };
    match option {
        Value::Object(m) => {
            if let Some(exists) = m.get("exists").and_then(Value::as_bool) {
                return exists == value.is_some();
            }
            if let Some(prefix) = m.get("prefix").and_then(Value::as_str) {
                return values
                    .iter()
                    .any(|v| v.as_str().is_some_and(|s| s.starts_with(prefix)));
            }
            if let Some(Value::Array(refused)) = m.get("anything-but") {
                return !values.is_empty() && values.iter().all(|v| !refused.contains(v));
            }
            false
        }
        literal => values.contains(&literal),
    }
}

/// A pattern the stand-in can match exactly as Lambda would, or why not.
fn check_pattern(pattern: &Value) -> Result<(), String> {
    let fields = pattern
        .as_object()
        .ok_or_else(|| format!("a filter pattern must be an object: {pattern}"))?;
    for (name, wanted) in fields {
        match wanted {
            Value::Object(_) => check_pattern(wanted)?,
            Value::Array(options) => {
                for option in options {
                    if let Value::Object(m) = option {
                        let known = m.len() == 1
                            && ["prefix", "exists", "anything-but"]
                                .iter()
                                .any(|k| m.contains_key(*k));
                        if !known {
                            return Err(format!(
                                "filter {name}: the stand-in does not implement {option}"
                            ));
                        }
                    }
                }
            }
            other => {
                return Err(format!(
                    "filter {name}: {other} must be a list or an object"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_outbox_filter_takes_new_outbox_items_only() {
        let root = hub_emulator::project_root();
        let template = hub_emulator::Template::load(&root.join("infra/template.yaml")).unwrap();
        let mappings = template.stream_mappings().unwrap();
        let outbox = mappings
            .iter()
            .find(|m| m.function == "OutboxRelayFunction")
            .expect("the relay's mapping");
        StreamPoller::check_filters(outbox).unwrap();
        let record = |name: &str, pk: &str| json!({"eventName": name, "dynamodb": {"Keys": {"PK": {"S": pk}, "SK": {"S": "X"}}}});
        let passes = |r: &Value| outbox.filters.iter().any(|f| matches(f, r));
        assert!(passes(&record("INSERT", "OUTBOX#1")));
        assert!(!passes(&record("REMOVE", "OUTBOX#1")), "TTL deletions");
        assert!(!passes(&record("MODIFY", "OUTBOX#1")));
        assert!(!passes(&record("INSERT", "ACCOUNT#1")));
        assert!(outbox.reports_item_failures);
        assert!(outbox.maximum_retry_attempts >= 0);
    }

    #[test]
    fn unknown_matchers_are_refused_rather_than_matched_wrongly() {
        let mut mapping = hub_emulator::template::StreamMapping {
            logical_id: "M".into(),
            function: "F".into(),
            event_source: Default::default(),
            starting_position: "LATEST".into(),
            batch_size: 1,
            maximum_retry_attempts: 0,
            filters: vec![json!({"a": [{"numeric": [">", 1]}]})],
            reports_item_failures: false,
            on_failure: None,
        };
        assert!(StreamPoller::check_filters(&mapping).is_err());
        mapping.filters = vec![json!({"a": [{"anything-but": ["x"]}], "b": [{"exists": true}]})];
        StreamPoller::check_filters(&mapping).unwrap();
        assert!(matches(&mapping.filters[0], &json!({"a": "y", "b": 1})));
        assert!(!matches(&mapping.filters[0], &json!({"a": "x", "b": 1})));
        assert!(!matches(&mapping.filters[0], &json!({"a": "y"})));
    }
}
