//! Asynchronous invocations that fail for good, as Lambda handles them: after the
//! retries, an on-failure record (Lambda's destination format: `requestContext` naming
//! the function, `requestPayload` the original event, `responsePayload` the error) goes
//! to the function's on-failure destination, the template's dead-letter queue. The
//! stand-in's rule pollers and schedule timers end there too, so `hub-admin
//! failed-invocations` shows the same thing locally and on AWS.

use serde_json::{Value, json};

/// The `functionArn` the stand-in gives a function (its binary name as the function
/// name), as Lambda would in an on-failure record.
pub fn function_arn(function: &str) -> String {
    format!(
        "arn:aws:lambda:{}:{}:function:{function}",
        hub_emulator::resources::REGION,
        hub_emulator::ACCOUNT
    )
}

/// One on-failure record, as Lambda writes it to an SQS destination.
pub fn on_failure_record(function: &str, payload: &Value, error: &str, attempts: u32) -> Value {
    json!({
        "version": "1.0",
        "timestamp": shared::clock::sortable(shared::clock::now()),
        "requestContext": {
            "requestId": shared::secrets::random_hex16(),
            "functionArn": format!("{}:$LATEST", function_arn(function)),
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": payload,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "responsePayload": {"errorMessage": error, "errorType": "HandlerError"},
    })
}

/// Where one function's failed invocations go.
#[derive(Clone)]
pub struct OnFailure {
    pub sqs: aws_sdk_sqs::Client,
    /// The destination queue; `None` when the template gives the function none (the
    /// failure is then only logged, as Lambda would drop it).
    pub queue_url: Option<String>,
    pub function: String,
}

impl OnFailure {
    pub async fn record(&self, payload: &Value, error: &str, attempts: u32) -> Result<(), String> {
        self.send(
            &on_failure_record(&self.function, payload, error, attempts),
            error,
        )
        .await
    }

    /// Sends an on-failure record as it is (a stream batch's record, see `streams`).
    pub async fn send(&self, record: &Value, error: &str) -> Result<(), String> {
        let Some(queue_url) = &self.queue_url else {
            tracing::error!(function = %self.function, %error, "invocation failed for good; no on-failure destination, dropped");
            return Ok(());
        };
        self.sqs
            .send_message()
            .queue_url(queue_url)
            .message_body(record.to_string())
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        tracing::error!(function = %self.function, %error, "invocation failed for good; sent to its on-failure destination");
        Ok(())
    }
}
