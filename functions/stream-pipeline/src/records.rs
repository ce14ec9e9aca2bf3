//! Stream records as Lambda delivers them (`aws_lambda_events` DynamoDB event, `NEW_IMAGE`) →
//! stored events, upcast to the current schema versions.
//!
//! Only `INSERT` records carry new events: the events table is append-only, so a `MODIFY` or
//! `REMOVE` is not an event and is passed over (logged). A record whose image cannot be read as an
//! envelope, or whose event type or schema version is unknown, is poison: it can never succeed, so
//! the caller sets it aside whole ([`poison`], to its dead-letter queue) and goes on.

use aws_lambda_events::event::dynamodb::EventRecord;
use domain::envelope::StoredEvent;
use domain::events::DecodeError;
use domain::ports::PoisonRecord;
use domain::upcasting::upcast;
use tracing::warn;

use crate::StreamEvent;

/// One `INSERT` record of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamItem {
    /// How the record is named in `batchItemFailures`: its sequence number.
    pub item_identifier: String,
    /// The stored event (upcast), or why it cannot be read.
    pub event: Result<StoredEvent, DecodeError>,
    /// Its index in the batch's records (to set the whole record aside when it is poison).
    pub position: usize,
}

/// Record `item` of `batch` as a poison record of `consumer`, with its whole image.
pub fn poison(
    batch: &StreamEvent,
    item: &StreamItem,
    consumer: &str,
    reason: String,
) -> PoisonRecord {
    let record: Option<&EventRecord> = batch.records.get(item.position);
    let json = |value: Option<&serde_dynamo::Item>| {
        value
            .and_then(|item| serde_json::to_value(item).ok())
            .unwrap_or(serde_json::Value::Null)
    };
    PoisonRecord {
        consumer: consumer.to_owned(),
        reason,
        event_source_arn: record
            .and_then(|r| r.event_source_arn.clone())
            .unwrap_or_default(),
        sequence_number: item.item_identifier.clone(),
        event_name: record.map(|r| r.event_name.clone()).unwrap_or_default(),
        keys: json(record.map(|r| &r.change.keys)),
        new_image: json(record.map(|r| &r.change.new_image)),
    }
}

/// The batch's `INSERT` records in stream order.
pub fn inserted(batch: &StreamEvent) -> Vec<StreamItem> {
    batch
        .records
        .iter()
        .enumerate()
        .filter_map(|(position, record)| {
            let item_identifier = record
                .change
                .sequence_number
                .clone()
                .unwrap_or_else(|| record.event_id.clone());
            if record.event_name != "INSERT" {
                warn!(
                    event_name = %record.event_name,
                    sequence_number = %item_identifier,
                    "passing over a stream record that is not an INSERT: the events table is append-only"
                );
                return None;
            }
            let event = serde_dynamo::from_item::<_, StoredEvent>(record.change.new_image.clone())
                .map_err(|error| DecodeError::Malformed {
                    event_type: "(envelope)".into(),
                    reason: error.to_string(),
                })
                .and_then(upcast);
            Some(StreamItem {
                item_identifier,
                event,
                position,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{BATCH, batch, batch_with};

    #[test]
    fn the_fixture_records_read_as_envelopes_in_stream_order() {
        let items = inserted(&batch());
        let types: Vec<_> = items
            .iter()
            .map(|i| i.event.as_ref().unwrap().event_type.as_str())
            .collect();
        assert_eq!(
            types,
            ["OrderPlaced", "DeliveryScheduled", "OrderCancelled"]
        );
        assert_eq!(items[0].item_identifier, "4421584500000000017450439001");
        let placed = items[0].event.as_ref().unwrap();
        assert_eq!(placed.version, 1);
        assert_eq!(placed.correlation_id.as_str(), "req-fixture-1");
        assert_eq!(placed.data["total"], 4497);
    }

    #[test]
    fn old_schema_versions_are_upcast() {
        let batch = batch_with(0, |image| {
            image["schema_version"] = json!({"N": "1"});
            let data = &mut image["data"]["M"];
            let total = data.as_object_mut().unwrap().remove("total").unwrap();
            data["total_cents"] = total;
            data.as_object_mut().unwrap().remove("currency");
            for item in data["items"]["L"].as_array_mut().unwrap() {
                let price = item["M"]
                    .as_object_mut()
                    .unwrap()
                    .remove("unit_price")
                    .unwrap();
                item["M"]["unit_price_cents"] = price;
            }
        });
        let placed = inserted(&batch).remove(0).event.unwrap();
        assert_eq!(placed.schema_version, 2);
        assert_eq!(placed.data["currency"], "EUR");
        assert_eq!(placed.data["total"], 4497);
    }

    #[test]
    fn unreadable_records_are_poison_not_skipped() {
        let unknown_type = batch_with(1, |image| image["event_type"] = json!({"S": "OrderBeamed"}));
        let items = inserted(&unknown_type);
        assert_eq!(items.len(), 3);
        assert!(matches!(
            items[1].event,
            Err(DecodeError::UnknownEventType(_))
        ));
        assert!(items[0].event.is_ok() && items[2].event.is_ok());

        let future = batch_with(1, |image| image["schema_version"] = json!({"N": "99"}));
        assert!(matches!(
            inserted(&future)[1].event,
            Err(DecodeError::UnsupportedSchemaVersion { version: 99, .. })
        ));

        let no_envelope = batch_with(2, |image| *image = json!({"stream_id": {"S": "x"}}));
        assert!(matches!(
            inserted(&no_envelope)[2].event,
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn a_poison_record_keeps_the_whole_image_as_received() {
        let poisoned = batch_with(1, |image| image["schema_version"] = json!({"N": "7"}));
        let items = inserted(&poisoned);
        let reason = items[1].event.as_ref().unwrap_err().to_string();
        let record = poison(&poisoned, &items[1], "event-publisher", reason.clone());
        let fixture: serde_json::Value = serde_json::from_str(BATCH).unwrap();
        let mut image = fixture["Records"][1]["dynamodb"]["NewImage"].clone();
        image["schema_version"] = json!({"N": "7"});
        assert_eq!(
            record.new_image, image,
            "DynamoDB JSON, as the stream sent it"
        );
        assert_eq!(record.keys, fixture["Records"][1]["dynamodb"]["Keys"]);
        assert_eq!(record.sequence_number, "4421584500000000017450439002");
        assert_eq!(record.event_name, "INSERT");
        assert_eq!(
            record.event_source_arn,
            fixture["Records"][1]["eventSourceARN"].as_str().unwrap()
        );
        assert_eq!(record.reason, reason);
        assert_eq!(record.consumer, "event-publisher");
    }

    #[test]
    fn modify_and_remove_records_are_passed_over() {
        let mut value: serde_json::Value = serde_json::from_str(BATCH).unwrap();
        value["Records"][0]["eventName"] = json!("MODIFY");
        value["Records"][2]["eventName"] = json!("REMOVE");
        let batch: StreamEvent = serde_json::from_value(value).unwrap();
        let items = inserted(&batch);
        assert_eq!(items.len(), 1);
        assert_eq!(
            items[0].event.as_ref().unwrap().event_type,
            "DeliveryScheduled"
        );
    }
}
