//! DynamoDB stream records as Lambda hands them to a function (the DynamoDB event JSON:
//! `Records[].dynamodb` with images in DynamoDB JSON, `SequenceNumber`, `eventSourceARN` …), and
//! the record Lambda sends to a mapping's on-failure destination when it gives records up
//! (`requestContext`, `responseContext`, `DDBStreamBatchInfo`).

use std::collections::HashMap;

use aws_sdk_dynamodbstreams::types::{AttributeValue, Record};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::stream_retry::FailureCondition;

/// A record's sequence number ("" when the emulator sent none).
pub fn sequence_number(record: &Record) -> &str {
    record
        .dynamodb()
        .and_then(|d| d.sequence_number())
        .unwrap_or_default()
}

/// When the record arrived in the stream, seconds since the epoch (0 when unknown).
pub fn arrival(record: &Record) -> i64 {
    record
        .dynamodb()
        .and_then(|d| d.approximate_creation_date_time())
        .map_or(0, |t| t.secs())
}

fn image(item: Option<&HashMap<String, AttributeValue>>) -> Option<Value> {
    item.and_then(|item| serde_json::to_value(serde_dynamo::Item::from(item.clone())).ok())
}

/// The DynamoDB event Lambda delivers for `records` (one batch) of the stream `stream_arn`.
pub fn lambda_event(records: &[Record], stream_arn: &str, region: &str) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|record| {
            let change = record.dynamodb();
            let mut dynamodb = json!({
                "ApproximateCreationDateTime": arrival(record),
                "Keys": image(change.and_then(|c| c.keys())).unwrap_or_else(|| json!({})),
                "SequenceNumber": sequence_number(record),
                "SizeBytes": change.and_then(|c| c.size_bytes()).unwrap_or_default(),
                "StreamViewType": change.and_then(|c| c.stream_view_type()).map(|t| t.as_str()),
            });
            if let Some(new_image) = image(change.and_then(|c| c.new_image())) {
                dynamodb["NewImage"] = new_image;
            }
            if let Some(old_image) = image(change.and_then(|c| c.old_image())) {
                dynamodb["OldImage"] = old_image;
            }
            json!({
                "eventID": record.event_id(),
                "eventName": record.event_name().map(|n| n.as_str()),
                "eventVersion": record.event_version().unwrap_or("1.1"),
                "eventSource": "aws:dynamodb",
                "awsRegion": record.aws_region().unwrap_or(region),
                "dynamodb": dynamodb,
                "eventSourceARN": stream_arn,
            })
        })
        .collect();
    json!({ "Records": records })
}

/// The given-up records of one shard, as the on-failure record describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GivenUp<'a> {
    /// The function's ARN.
    pub function_arn: &'a str,
    /// The stream's ARN.
    pub stream_arn: &'a str,
    /// The shard.
    pub shard_id: &'a str,
    /// First and last sequence numbers of the given-up records.
    pub sequence_numbers: (&'a str, &'a str),
    /// First and last arrival times (seconds since the epoch).
    pub arrivals: (i64, i64),
    /// How many records.
    pub batch_size: usize,
    /// Why.
    pub condition: FailureCondition,
    /// How many times they were sent.
    pub invoke_count: u32,
    /// The function's last error (`Unhandled`), if the last invoke failed as a whole.
    pub function_error: Option<&'a str>,
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn arrival_time(seconds: i64) -> String {
    DateTime::<Utc>::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The on-failure record for `given_up`, as Lambda writes it to an SQS destination.
pub fn on_failure_record(given_up: &GivenUp<'_>, request_id: &str, now: DateTime<Utc>) -> Value {
    let mut response_context = json!({
        "statusCode": 200,
        "executedVersion": "$LATEST",
    });
    if let Some(error) = given_up.function_error {
        response_context["functionError"] = json!(error);
    }
    json!({
        "requestContext": {
            "requestId": request_id,
            "functionArn": given_up.function_arn,
            "condition": given_up.condition.as_str(),
            "approximateInvokeCount": given_up.invoke_count,
        },
        "responseContext": response_context,
        "version": "1.0",
        "timestamp": rfc3339(now),
        "DDBStreamBatchInfo": {
            "shardId": given_up.shard_id,
            "startSequenceNumber": given_up.sequence_numbers.0,
            "endSequenceNumber": given_up.sequence_numbers.1,
            "approximateArrivalOfFirstRecord": arrival_time(given_up.arrivals.0),
            "approximateArrivalOfLastRecord": arrival_time(given_up.arrivals.1),
            "batchSize": given_up.batch_size,
            "streamArn": given_up.stream_arn,
        },
    })
}

#[cfg(test)]
mod tests {
    use aws_lambda_events::event::dynamodb::Event;
    use aws_sdk_dynamodbstreams::primitives::DateTime as SdkDateTime;
    use aws_sdk_dynamodbstreams::types::{OperationType, StreamRecord, StreamViewType};

    use super::*;

    const ARN: &str =
        "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000";

    fn record(sequence: &str, version: &str) -> Record {
        let key = HashMap::from([
            (
                "stream_id".to_owned(),
                AttributeValue::S("order#o-1".into()),
            ),
            ("version".to_owned(), AttributeValue::N(version.into())),
        ]);
        let mut new_image = key.clone();
        new_image.insert(
            "data".into(),
            AttributeValue::M(HashMap::from([(
                "total".to_owned(),
                AttributeValue::N("3797".into()),
            )])),
        );
        Record::builder()
            .event_id(format!("e-{sequence}"))
            .event_name(OperationType::Insert)
            .event_version("1.1")
            .aws_region("us-east-1")
            .dynamodb(
                StreamRecord::builder()
                    .approximate_creation_date_time(SdkDateTime::from_secs(1_790_000_000))
                    .set_keys(Some(key))
                    .set_new_image(Some(new_image))
                    .sequence_number(sequence)
                    .size_bytes(120)
                    .stream_view_type(StreamViewType::NewImage)
                    .build(),
            )
            .build()
    }

    #[test]
    fn records_become_the_event_the_functions_deserialize() {
        let records = [record("100", "1"), record("200", "2")];
        let event = lambda_event(&records, ARN, "us-east-1");
        assert_eq!(event["Records"][1]["dynamodb"]["SequenceNumber"], "200");
        assert_eq!(
            event["Records"][0]["dynamodb"]["NewImage"]["data"]["M"]["total"]["N"],
            "3797"
        );
        assert_eq!(event["Records"][0]["eventSourceARN"], ARN);
        assert_eq!(event["Records"][0]["eventName"], "INSERT");
        let typed: Event = serde_json::from_value(event).unwrap();
        assert_eq!(typed.records.len(), 2);
        assert_eq!(
            typed.records[0].change.sequence_number.as_deref(),
            Some("100")
        );
        assert_eq!(arrival(&records[0]), 1_790_000_000);
        assert_eq!(sequence_number(&records[1]), "200");
    }

    #[test]
    fn the_on_failure_record_describes_the_given_up_range() {
        let given_up = GivenUp {
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f",
            stream_arn: ARN,
            shard_id: "shardId-1",
            sequence_numbers: ("100", "300"),
            arrivals: (1_790_000_000, 1_790_000_005),
            batch_size: 3,
            condition: FailureCondition::RetryAttemptsExhausted,
            invoke_count: 11,
            function_error: Some("Unhandled"),
        };
        let now = DateTime::<Utc>::from_timestamp(1_790_000_100, 0).unwrap();
        let record = on_failure_record(&given_up, "req-1", now);
        assert_eq!(
            record["requestContext"]["condition"],
            "RetryAttemptsExhausted"
        );
        assert_eq!(record["requestContext"]["approximateInvokeCount"], 11);
        assert_eq!(record["responseContext"]["functionError"], "Unhandled");
        let info = &record["DDBStreamBatchInfo"];
        assert_eq!(info["shardId"], "shardId-1");
        assert_eq!(info["startSequenceNumber"], "100");
        assert_eq!(info["endSequenceNumber"], "300");
        assert_eq!(info["batchSize"], 3);
        assert_eq!(info["streamArn"], ARN);
        assert_eq!(
            info["approximateArrivalOfFirstRecord"],
            "2026-09-21T14:13:20Z"
        );
        assert_eq!(record["timestamp"], "2026-09-21T14:15:00.000Z");
        let partial = GivenUp {
            function_error: None,
            condition: FailureCondition::RecordAgeExceeded,
            ..given_up
        };
        let record = on_failure_record(&partial, "req-2", now);
        assert!(record["responseContext"].get("functionError").is_none());
        assert_eq!(record["requestContext"]["condition"], "RecordAgeExceeded");
    }
}
