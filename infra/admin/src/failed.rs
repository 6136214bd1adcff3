//! Failed invocations: what landed in the dead-letter queue, and how to run it again.
//!
//! Three kinds of message end there:
//! - a Lambda **on-failure record** (an asynchronous invocation that failed its retries:
//!   a rule's event or a schedule's run): `requestContext.functionArn` names the
//!   function and `requestPayload` is the original event;
//! - an EventBridge **rule delivery** failure: the body is the event, the `TARGET_ARN`
//!   attribute names the function;
//! - an EventBridge **Scheduler delivery** failure: the body is the schedule's input, the
//!   `X-Amz-Scheduler-Target-Arn` attribute names the function;
//! - a **stream batch** the outbox relay failed past its retries: Lambda's on-failure
//!   record holds only the batch's place in the stream (`DDBStreamBatchInfo`), not its
//!   records, so it is not reinvoked: `republish-events` puts the window's outbox items
//!   on the bus again.
//!
//! Reinvoking calls the named function asynchronously with the original event (never
//! puts it on a bus again, where other rules would see it twice), then deletes the
//! message. Listing leaves every message in place.

use std::collections::BTreeMap;

use aws_sdk_lambda::{primitives::Blob, types::InvocationType};
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Lambda's asynchronous retries were exhausted.
    InvocationFailed,
    /// EventBridge could not deliver a rule's event to the function.
    RuleDelivery,
    /// EventBridge Scheduler could not invoke the function.
    ScheduleDelivery,
    /// A stream batch failed its retries (republish its window of outbox items).
    StreamBatch,
}

/// One message of the dead-letter queue, understood.
#[derive(Debug, Clone, Serialize)]
pub struct FailedInvocation {
    pub id: String,
    pub kind: Kind,
    /// The function to invoke again (name or ARN), if the message names one.
    pub function: Option<String>,
    /// Why it failed, as the message says.
    pub error: Option<String>,
    pub sent_at: Option<String>,
    /// The original event.
    pub payload: Value,
}

/// Reads one message: its body and message attributes (string values).
pub fn understand(
    id: &str,
    body: &str,
    attributes: &BTreeMap<String, String>,
    sent_at: Option<String>,
) -> FailedInvocation {
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::String(body.to_owned()));
    if let (Some(context), Some(batch)) = (
        parsed.get("requestContext"),
        parsed.get("DDBStreamBatchInfo"),
    ) {
        return FailedInvocation {
            id: id.to_owned(),
            kind: Kind::StreamBatch,
            function: None,
            error: context["condition"].as_str().map(str::to_owned),
            sent_at,
            payload: batch.clone(),
        };
    }
    if let Some(context) = parsed.get("requestContext")
        && parsed.get("requestPayload").is_some()
    {
        let function = context["functionArn"].as_str().map(str::to_owned);
        let error = parsed["responsePayload"]["errorMessage"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| context["condition"].as_str().map(str::to_owned));
        return FailedInvocation {
            id: id.to_owned(),
            kind: Kind::InvocationFailed,
            function,
            error,
            sent_at,
            payload: parsed["requestPayload"].clone(),
        };
    }
    let error = attributes
        .get("ERROR_MESSAGE")
        .or_else(|| attributes.get("ERROR_CODE"))
        .cloned();
    match attributes.get("X-Amz-Scheduler-Target-Arn") {
        Some(target) => FailedInvocation {
            id: id.to_owned(),
            kind: Kind::ScheduleDelivery,
            function: Some(target.clone()),
            error,
            sent_at,
            payload: parsed,
        },
        None => FailedInvocation {
            id: id.to_owned(),
            kind: Kind::RuleDelivery,
            function: attributes.get("TARGET_ARN").cloned(),
            error,
            sent_at,
            payload: parsed,
        },
    }
}

pub struct FailedInvocations {
    sqs: aws_sdk_sqs::Client,
    lambda: aws_sdk_lambda::Client,
    queue_url: String,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

impl FailedInvocations {
    pub fn new(sdk: &aws_config::SdkConfig, queue_url: impl Into<String>) -> Self {
        Self::from_clients(
            aws_sdk_sqs::Client::new(sdk),
            aws_sdk_lambda::Client::new(sdk),
            queue_url,
        )
    }

    pub fn from_clients(
        sqs: aws_sdk_sqs::Client,
        lambda: aws_sdk_lambda::Client,
        queue_url: impl Into<String>,
    ) -> Self {
        Self {
            sqs,
            lambda,
            queue_url: queue_url.into(),
        }
    }

    /// Every message in the queue, left in place (received with no visibility timeout,
    /// until a few receives in a row bring nothing new).
    pub async fn list(&self) -> Result<Vec<FailedInvocation>, Error> {
        let mut seen = BTreeMap::new();
        let mut quiet = 0;
        while quiet < 3 {
            let before = seen.len();
            for (message, _) in self.receive(0).await? {
                seen.entry(message.id.clone()).or_insert(message);
            }
            quiet = if seen.len() == before { quiet + 1 } else { 0 };
        }
        Ok(seen.into_values().collect())
    }

    /// Invokes the message's function again, asynchronously, with the original event,
    /// then deletes the message. Returns what was reinvoked.
    pub async fn reinvoke(&self, id: &str) -> Result<FailedInvocation, Error> {
        for _ in 0..20 {
            for (message, receipt) in self.receive(30).await? {
                if message.id != id {
                    continue;
                }
                if message.kind == Kind::StreamBatch {
                    return Err(
                        "a stream batch holds no records to reinvoke with: republish its window with `hub-admin republish-events --from <time> --to <time>` (outbox items are kept three days), then delete the message".into(),
                    );
                }
                let function = message
                    .function
                    .clone()
                    .ok_or("the message names no function to invoke")?;
                // Lambda's record names `...:function:<name>:$LATEST`; invoking that ARN
                // needs `lambda:InvokeFunction` on the qualified ARN, which a policy on
                // the function's own ARN does not grant. Unqualified is the same $LATEST.
                let function = function
                    .strip_suffix(":$LATEST")
                    .map_or(function.clone(), str::to_owned);
                self.lambda
                    .invoke()
                    .function_name(&function)
                    .invocation_type(InvocationType::Event)
                    .payload(Blob::new(serde_json::to_vec(&message.payload)?))
                    .send()
                    .await
                    .map_err(|e| aws_sdk_lambda::error::DisplayErrorContext(e).to_string())?;
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
                return Ok(message);
            }
        }
        Err(format!("no message {id} in the dead-letter queue").into())
    }

    async fn receive(&self, visibility: i32) -> Result<Vec<(FailedInvocation, String)>, Error> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .visibility_timeout(visibility)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let attributes: BTreeMap<String, String> = m
                    .message_attributes()
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, v): (&String, &MessageAttributeValue)| {
                        Some((k.clone(), v.string_value()?.to_owned()))
                    })
                    .collect();
                let sent_at = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                    .cloned();
                let failed = understand(
                    m.message_id().unwrap_or_default(),
                    m.body().unwrap_or_default(),
                    &attributes,
                    sent_at,
                );
                (failed, m.receipt_handle().unwrap_or_default().to_owned())
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_each_kind_of_message() {
        let record = json!({
            "version": "1.0",
            "requestContext": {"functionArn": "arn:aws:lambda:eu-west-1:1:function:hub-dev-Timeline:$LATEST", "condition": "RetriesExhausted"},
            "requestPayload": {"id": "e-1", "detail-type": "x"},
            "responsePayload": {"errorMessage": "storage failure"},
        });
        let failed = understand("m-1", &record.to_string(), &BTreeMap::new(), None);
        assert_eq!(failed.kind, Kind::InvocationFailed);
        assert_eq!(failed.payload["id"], "e-1");
        assert_eq!(failed.error.as_deref(), Some("storage failure"));
        assert!(
            failed
                .function
                .unwrap()
                .ends_with("hub-dev-Timeline:$LATEST")
        );

        let rule_attributes = BTreeMap::from([
            (
                "TARGET_ARN".to_owned(),
                "arn:aws:lambda:eu-west-1:1:function:f".to_owned(),
            ),
            ("ERROR_CODE".to_owned(), "SDK_CLIENT_ERROR".to_owned()),
        ]);
        let batch = json!({
            "requestContext": {"functionArn": "arn:aws:lambda:eu-west-1:1:function:relay", "condition": "RetryAttemptsExhausted"},
            "DDBStreamBatchInfo": {"shardId": "s", "startSequenceNumber": "1", "endSequenceNumber": "9", "batchSize": 9},
        });
        let failed = understand("m-s", &batch.to_string(), &BTreeMap::new(), None);
        assert_eq!(failed.kind, Kind::StreamBatch);
        assert_eq!(failed.function, None, "nothing to reinvoke with");
        assert_eq!(failed.payload["batchSize"], 9);

        let failed = understand("m-2", r#"{"id":"e-2"}"#, &rule_attributes, None);
        assert_eq!(failed.kind, Kind::RuleDelivery);
        assert_eq!(failed.payload["id"], "e-2");
        assert_eq!(failed.error.as_deref(), Some("SDK_CLIENT_ERROR"));

        let schedule_attributes = BTreeMap::from([(
            "X-Amz-Scheduler-Target-Arn".to_owned(),
            "arn:aws:lambda:eu-west-1:1:function:sweep".to_owned(),
        )]);
        let failed = understand("m-3", "{}", &schedule_attributes, None);
        assert_eq!(failed.kind, Kind::ScheduleDelivery);
        assert_eq!(
            failed.function.as_deref(),
            Some("arn:aws:lambda:eu-west-1:1:function:sweep")
        );
    }
}
