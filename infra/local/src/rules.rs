//! Routes events between functions by the template's rules. The emulator matches each
//! rule's pattern itself and delivers to an SQS queue per rule (it cannot invoke Lambda
//! targets); a poller per queue hands each event to the function, deletes it on success,
//! leaves it for redelivery on failure, and after `MAX_RECEIVES` deliveries sends an
//! on-failure record to the function's destination (see `failures`), as Lambda does
//! after the retries of an asynchronous invocation.

use std::time::Duration;

use aws_sdk_sqs::types::MessageSystemAttributeName;
use tokio::sync::watch;

use crate::functions::Invoke;

/// Attempts before an event that keeps failing goes to the on-failure destination: the
/// first and the template's `EventInvokeConfig.MaximumRetryAttempts` (2), as on Lambda.
pub const MAX_RECEIVES: i32 = 3;
/// Seconds before a failed delivery is retried.
const RETRY_AFTER_SECONDS: i32 = 1;
/// Pause between empty polls: short, since moto's long polling blocks its single thread.
const IDLE_POLL: Duration = Duration::from_millis(100);

pub struct RulePoller {
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub label: String,
    pub invoke: Invoke,
    /// Where an event goes once the function failed it `MAX_RECEIVES` times: the
    /// function's on-failure destination, as Lambda's asynchronous retries end.
    pub on_failure: crate::failures::OnFailure,
}

impl RulePoller {
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let delivered = match self.poll_once().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(rule = %self.label, error = %e, "polling the rule queue failed");
                    0
                }
            };
            if delivered == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }

    /// Receives and handles one batch; returns how many messages it saw.
    pub async fn poll_once(&self) -> Result<usize, String> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .visibility_timeout(RETRY_AFTER_SECONDS)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        let messages = out.messages.unwrap_or_default();
        for message in &messages {
            let body = message.body().unwrap_or_default();
            let receipt = message.receipt_handle().unwrap_or_default();
            let receives: i32 = message
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            let result = match serde_json::from_str::<serde_json::Value>(body) {
                Ok(event) => shared::runtime::invoke_guarded(&self.invoke, event).await,
                Err(e) => Err(format!("the queued event is not JSON: {e}")),
            };
            match result {
                Ok(outcome) => {
                    tracing::debug!(rule = %self.label, %outcome, "event delivered");
                    self.delete(receipt).await?;
                }
                Err(error) if receives >= MAX_RECEIVES => {
                    let payload = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
                    self.on_failure
                        .record(&payload, &error, receives as u32)
                        .await?;
                    self.delete(receipt).await?;
                }
                Err(error) => {
                    tracing::warn!(rule = %self.label, %error, receives, "event delivery failed; it will be retried");
                }
            }
        }
        Ok(messages.len())
    }

    async fn delete(&self, receipt: &str) -> Result<(), String> {
        self.sqs
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
    }
}
