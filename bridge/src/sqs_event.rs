//! SQS messages as Lambda hands them to a function: the SQS event JSON (`Records[]` with
//! `messageId`, `receiptHandle`, `body`, `attributes` such as `ApproximateReceiveCount`,
//! `messageAttributes` in Lambda's camel-case shape, `eventSourceARN` …).

use std::collections::BTreeMap;

use aws_sdk_sqs::types::{Message, MessageAttributeValue};
use serde_json::{Value, json};

fn message_attribute(value: &MessageAttributeValue) -> Value {
    let binary =
        |blob: &aws_sdk_sqs::primitives::Blob| aws_smithy_types::base64::encode(blob.as_ref());
    json!({
        "stringValue": value.string_value(),
        "binaryValue": value.binary_value().map(binary),
        "stringListValues": value.string_list_values(),
        "binaryListValues": value.binary_list_values().iter().map(binary).collect::<Vec<_>>(),
        "dataType": value.data_type(),
    })
}

/// One message as a record of the SQS event, from the queue `queue_arn`.
pub fn record(message: &Message, queue_arn: &str, region: &str) -> Value {
    let attributes: BTreeMap<&str, &str> = message
        .attributes()
        .into_iter()
        .flatten()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let message_attributes: BTreeMap<&str, Value> = message
        .message_attributes()
        .into_iter()
        .flatten()
        .map(|(name, value)| (name.as_str(), message_attribute(value)))
        .collect();
    let mut record = json!({
        "messageId": message.message_id(),
        "receiptHandle": message.receipt_handle(),
        "body": message.body().unwrap_or_default(),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.md5_of_body(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    });
    if let Some(md5) = message.md5_of_message_attributes() {
        record["md5OfMessageAttributes"] = json!(md5);
    }
    record
}

/// The SQS event for a batch of messages.
pub fn lambda_event(messages: &[Message], queue_arn: &str, region: &str) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|message| record(message, queue_arn, region))
        .collect();
    json!({ "Records": records })
}

#[cfg(test)]
mod tests {
    use aws_lambda_events::event::sqs::SqsEvent;
    use aws_sdk_sqs::types::MessageSystemAttributeName;

    use super::*;

    const ARN: &str = "arn:aws:sqs:us-east-1:123456789012:orderflow-local-q";

    fn message(id: &str) -> Message {
        Message::builder()
            .message_id(id)
            .receipt_handle(format!("rh-{id}"))
            .body(r#"{"detail-type":"OrderPlaced"}"#)
            .md5_of_body("abc")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "2")
            .attributes(MessageSystemAttributeName::SentTimestamp, "1790000000000")
            .message_attributes(
                "kind",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("demo")
                    .build()
                    .unwrap(),
            )
            .build()
    }

    #[test]
    fn messages_become_the_event_the_functions_deserialize() {
        let event = lambda_event(&[message("m-1"), message("m-2")], ARN, "us-east-1");
        let first = &event["Records"][0];
        assert_eq!(first["messageId"], "m-1");
        assert_eq!(first["receiptHandle"], "rh-m-1");
        assert_eq!(first["attributes"]["ApproximateReceiveCount"], "2");
        assert_eq!(first["messageAttributes"]["kind"]["stringValue"], "demo");
        assert_eq!(first["eventSource"], "aws:sqs");
        assert_eq!(first["eventSourceARN"], ARN);
        let typed: SqsEvent = serde_json::from_value(event).unwrap();
        assert_eq!(typed.records.len(), 2);
        assert_eq!(typed.records[1].message_id.as_deref(), Some("m-2"));
        assert_eq!(
            typed.records[0].attributes["SentTimestamp"],
            "1790000000000"
        );
        assert_eq!(
            typed.records[0].message_attributes["kind"]
                .string_value
                .as_deref(),
            Some("demo")
        );
    }
}
