//! Lambda events as the event sources deliver them, for handler tests and the local tools
//! (tests and feature `fixtures` only: no function binary carries them). `testkit` re-exports
//! this module as `testkit::lambda`.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use domain::envelope::StoredEvent;
use serde_json::Value;

/// The message ids a response names as failed.
pub fn failed_ids(response: &SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

/// An SQS event as Lambda delivers it, with one message per body (for handler tests and the
/// local bridge): message ids `m-0`, `m-1`, …
pub fn sqs_event(bodies: &[String]) -> SqsEvent {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(n, body)| {
            serde_json::json!({
                "messageId": format!("m-{n}"),
                "receiptHandle": format!("receipt-{n}"),
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1795860942000",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1795860942001"
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:orderflow-dev-queue",
                "awsRegion": "eu-west-1"
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).unwrap_or_default()
}

/// The EventBridge event a rule delivers for `event` (what an SQS message body holds).
pub fn bus_event_body(event: &StoredEvent) -> String {
    serde_json::json!({
        "version": "0",
        "id": format!("bus-{}", event.event_id),
        "detail-type": event.event_type,
        "source": domain::envelope::event_source(&event.stream_id),
        "account": "123456789012",
        "time": event.occurred_at,
        "region": "eu-west-1",
        "resources": [],
        "detail": event,
    })
    .to_string()
}
