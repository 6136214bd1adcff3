//! The outbox relay: the table's stream (new outbox items only, by the event source
//! mapping's filter) to the hub's bus. See `shared::events::outbox`.
//!
//! A batch is published in stream order. Records from the first one not fully published
//! are reported as failed (a partial batch response, `ReportBatchItemFailures`), so
//! Lambda delivers them again in order and nothing after a failure overtakes it. A record
//! that is not an outbox item (the filter should make that impossible) is parked, not
//! retried.

use aws_lambda_events::event::{
    dynamodb::{Event, EventRecord},
    streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse},
};
use shared::{Hub, events::OutboxRecord, runtime::Failure, runtime::Function};

pub const NAME: &str = "outbox-relay";

pub fn function() -> Function {
    Function::event(NAME, |hub, event| Box::pin(handle(hub, event)))
}

pub async fn handle(hub: &Hub, event: Event) -> Result<DynamoDbEventResponse, Failure> {
    let mut records = Vec::with_capacity(event.records.len());
    // The stream position of each outbox record, to report the first unpublished one.
    let mut positions = Vec::with_capacity(event.records.len());
    for record in &event.records {
        match outbox_record(record) {
            Ok(outbox) => {
                records.push(outbox);
                positions.push(record.change.sequence_number.clone());
            }
            Err(reason) => {
                let raw = serde_json::to_value(record).unwrap_or_default();
                hub.dead_letters
                    .park(NAME, &reason, &raw)
                    .await
                    .map_err(|e| Failure::Retry(format!("parking failed: {e}")))?;
            }
        }
    }
    if records.is_empty() {
        return Ok(DynamoDbEventResponse::default());
    }
    let report = hub
        .outbox
        .relay(&records)
        .await
        .map_err(|e| Failure::Retry(e.to_string()))?;
    let mut response = DynamoDbEventResponse::default();
    if !report.complete() {
        tracing::warn!(
            records = report.records,
            published = report.published_records,
            "some outbox records were not published; they will be delivered again"
        );
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = positions[report.published_records].clone();
        response.batch_item_failures.push(failure);
    }
    Ok(response)
}

/// The outbox item a stream record carries (its new image).
fn outbox_record(record: &EventRecord) -> Result<OutboxRecord, String> {
    if record.event_name != "INSERT" {
        return Err(format!(
            "a {} record reached the relay: only new outbox items should",
            record.event_name
        ));
    }
    serde_dynamo::from_item(record.change.new_image.clone())
        .map_err(|e| format!("the stream record is not an outbox item: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as Lambda delivers it from a DynamoDB stream (recorded shape).
    const RECORDED: &str = r#"{"Records":[{"eventID":"c4ca4238a0b923820dcc509a6f75849b","eventName":"INSERT","eventVersion":"1.1","eventSource":"aws:dynamodb","awsRegion":"eu-west-1","dynamodb":{"ApproximateCreationDateTime":1764655200,"Keys":{"PK":{"S":"OUTBOX#0b7c1f8e-5b1e-4c1a-9d1e-6f1f2a3b4c5d"},"SK":{"S":"OUTBOX"}},"NewImage":{"PK":{"S":"OUTBOX#0b7c1f8e-5b1e-4c1a-9d1e-6f1f2a3b4c5d"},"SK":{"S":"OUTBOX"},"DuePK":{"S":"OUTBOX"},"DueAt":{"S":"2026-12-02T06:00:00.000000Z"},"id":{"S":"0b7c1f8e-5b1e-4c1a-9d1e-6f1f2a3b4c5d"},"staged_at":{"S":"2026-12-02T06:00:00.000000Z"},"expires_at":{"N":"1764914400"},"events":{"L":[{"M":{"event_id":{"S":"0b7c1f8e-5b1e-4c1a-9d1e-6f1f2a3b4c5d"},"detail_type":{"S":"account.deleted"},"detail":{"S":"{}"}}}]}},"SequenceNumber":"111","SizeBytes":26,"StreamViewType":"NEW_IMAGE"},"eventSourceARN":"arn:aws:dynamodb:eu-west-1:123456789012:table/hub/stream/2026-12-01T00:00:00.000"}]}"#;

    #[test]
    fn a_recorded_stream_event_yields_its_outbox_record() {
        let event: Event = serde_json::from_str(RECORDED).unwrap();
        let record = outbox_record(&event.records[0]).unwrap();
        assert_eq!(record.events.len(), 1);
        assert_eq!(record.events[0].detail_type, "account.deleted");
        assert_eq!(record.expires_at, 1764914400);
        assert_eq!(
            event.records[0].change.sequence_number.as_deref(),
            Some("111")
        );
    }

    #[test]
    fn a_removal_or_another_item_is_not_an_outbox_record() {
        let mut event: Event = serde_json::from_str(RECORDED).unwrap();
        event.records[0].event_name = "REMOVE".into();
        assert!(outbox_record(&event.records[0]).is_err());
        let mut event: Event = serde_json::from_str(RECORDED).unwrap();
        event.records[0].change.new_image = Default::default();
        assert!(outbox_record(&event.records[0]).is_err());
    }
}
