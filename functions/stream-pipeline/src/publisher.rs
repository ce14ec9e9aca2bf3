//! `event-publisher`: every event stored in the events table → the EventBridge bus (through the
//! [`EventPublisher`] port; the adapter batches, retries `FailedEntryCount` entries with backoff,
//! and keeps per-stream order). What still fails is answered as `batchItemFailures`, so the stream
//! retries from the first failed record and nothing is lost; a poison record is reported too, and
//! the rest of its batch is published.

use std::collections::HashSet;

use aws_lambda_events::event::streams::DynamoDbEventResponse;
use shared::ports::{EventPublisher, PublishError};
use tracing::{error, info, instrument, warn};

use crate::records::inserted;
use crate::{StreamEvent, failures};

/// Publishes one stream batch.
#[instrument(skip_all, fields(records = batch.records.len()))]
pub async fn publish_batch(
    publisher: &dyn EventPublisher,
    batch: &StreamEvent,
) -> DynamoDbEventResponse {
    let items = inserted(batch);
    let mut failed = vec![false; items.len()];
    let mut events = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        match &item.event {
            Ok(event) => events.push((index, event.clone())),
            Err(reason) => {
                error!(sequence_number = %item.item_identifier, %reason, "poison stream record: reported for the on-failure destination");
                failed[index] = true;
            }
        }
    }
    let stored: Vec<_> = events.iter().map(|(_, event)| event.clone()).collect();
    if !stored.is_empty() {
        match publisher.publish(&stored).await {
            Ok(()) => {
                info!(published = stored.len(), "published");
            }
            Err(PublishError::Partial { failed_event_ids }) => {
                let ids: HashSet<&str> = failed_event_ids.iter().map(String::as_str).collect();
                warn!(
                    failed = ids.len(),
                    published = stored.len() - ids.len(),
                    "some events were not published; the stream will retry them"
                );
                for (index, event) in &events {
                    if ids.contains(event.event_id.as_str()) {
                        failed[*index] = true;
                    }
                }
            }
            Err(PublishError::Unavailable(reason)) => {
                warn!(%reason, "the bus is unavailable; the stream will retry the batch");
                for (index, _) in &events {
                    failed[*index] = true;
                }
            }
        }
    }
    failures(
        items
            .into_iter()
            .zip(failed)
            .filter(|(_, failed)| *failed)
            .map(|(item, _)| item.item_identifier)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use serde_json::json;
    use shared::adapters::memory::InMemoryPublisher;
    use shared::envelope::StoredEvent;

    use super::*;
    use crate::testing::{batch, batch_with, ids};

    #[tokio::test]
    async fn every_inserted_event_is_published_in_stream_order() {
        let publisher = InMemoryPublisher::default();
        let response = publish_batch(&publisher, &batch()).await;
        assert!(response.batch_item_failures.is_empty());
        let published: Vec<_> = publisher
            .published()
            .iter()
            .map(|e| (e.event_type.clone(), e.version))
            .collect();
        assert_eq!(
            published,
            [
                ("OrderPlaced".to_owned(), 1),
                ("DeliveryScheduled".to_owned(), 1),
                ("OrderCancelled".to_owned(), 2)
            ]
        );
    }

    #[tokio::test]
    async fn a_poison_record_is_reported_and_its_batch_mates_are_published() {
        let publisher = InMemoryPublisher::default();
        let poisoned = batch_with(1, |image| image["schema_version"] = json!({"N": "7"}));
        let response = publish_batch(&publisher, &poisoned).await;
        assert_eq!(ids(&response), ["4421584500000000017450439002"]);
        let published: Vec<_> = publisher
            .published()
            .iter()
            .map(|e| e.event_type.clone())
            .collect();
        assert_eq!(published, ["OrderPlaced", "OrderCancelled"]);
    }

    #[tokio::test]
    async fn an_unreachable_bus_fails_every_record_so_the_stream_retries() {
        let publisher = InMemoryPublisher::default();
        publisher.fail_next(1);
        let response = publish_batch(&publisher, &batch()).await;
        assert_eq!(
            ids(&response),
            [
                "4421584500000000017450439001",
                "4421584500000000017450439002",
                "4421584500000000017450439003"
            ]
        );
        assert!(publisher.published().is_empty());
    }

    /// Accepts everything but the events it was told to refuse, as a PutEvents partial failure.
    struct Refusing(Vec<&'static str>);

    #[async_trait]
    impl EventPublisher for Refusing {
        async fn publish(&self, events: &[StoredEvent]) -> Result<(), PublishError> {
            let failed_event_ids: Vec<String> = events
                .iter()
                .filter(|e| self.0.contains(&e.event_id.as_str()))
                .map(|e| e.event_id.clone())
                .collect();
            if failed_event_ids.is_empty() {
                Ok(())
            } else {
                Err(PublishError::Partial { failed_event_ids })
            }
        }
    }

    #[tokio::test]
    async fn events_the_bus_refused_are_named_by_their_sequence_numbers() {
        let publisher = Refusing(vec![
            "018f1c2e-7b3a-7000-8000-00000000e102",
            "018f1c2e-7b3a-7000-8000-00000000e103",
        ]);
        let response = publish_batch(&publisher, &batch()).await;
        assert_eq!(
            ids(&response),
            [
                "4421584500000000017450439002",
                "4421584500000000017450439003"
            ]
        );
    }

    #[tokio::test]
    async fn a_batch_without_inserts_publishes_nothing() {
        let publisher = InMemoryPublisher::default();
        publisher.fail_next(1);
        let mut batch = batch();
        batch.records.clear();
        let response = publish_batch(&publisher, &batch).await;
        assert!(response.batch_item_failures.is_empty());
    }
}
