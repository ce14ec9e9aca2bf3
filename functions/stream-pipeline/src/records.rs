//! Stream records as Lambda delivers them (`aws_lambda_events` DynamoDB event, `NEW_IMAGE`) →
//! stored events, upcast to the current schema versions.
//!
//! Only `INSERT` records carry new events: the events table is append-only, so a `MODIFY` or
//! `REMOVE` is not an event and is passed over (logged). A record whose image cannot be read as an
//! envelope, or whose event type or schema version is unknown, is poison: it can never succeed, and
//! the caller reports it as a failure so that it ends in the on-failure destination.

use shared::envelope::StoredEvent;
use shared::events::DecodeError;
use shared::upcasting::upcast;
use tracing::warn;

use crate::StreamEvent;

/// One `INSERT` record of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamItem {
    /// How the record is named in `batchItemFailures`: its sequence number.
    pub item_identifier: String,
    /// The stored event (upcast), or why it cannot be read.
    pub event: Result<StoredEvent, DecodeError>,
}

/// The batch's `INSERT` records in stream order.
pub fn inserted(batch: &StreamEvent) -> Vec<StreamItem> {
    batch
        .records
        .iter()
        .filter_map(|record| {
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
