//! `projector`: every event stored in the events table → the order read model
//! ([`project_order_view`]: duplicates and replays are no-ops, gaps are healed from the events
//! table). A record that fails is named in `batchItemFailures`; the rest of the batch is still
//! projected, which is safe because the projection does not depend on arrival order.

use aws_lambda_events::event::streams::DynamoDbEventResponse;
use shared::ports::EventStore;
use shared::projection::{Projected, project_order_view};
use shared::read_model::OrderViews;
use tracing::{error, info, instrument, warn};

use crate::records::inserted;
use crate::{StreamEvent, failures};

/// Conditional-write attempts per record before it is reported as failed.
pub const MAX_ATTEMPTS: u32 = 3;

/// Projects one stream batch.
#[instrument(skip_all, fields(records = batch.records.len()))]
pub async fn project_batch(
    store: &dyn EventStore,
    views: &dyn OrderViews,
    batch: &StreamEvent,
) -> DynamoDbEventResponse {
    let mut failed = Vec::new();
    let (mut applied, mut duplicates) = (0u32, 0u32);
    for item in inserted(batch) {
        let event = match item.event {
            Ok(event) => event,
            Err(reason) => {
                error!(sequence_number = %item.item_identifier, %reason, "poison stream record: reported for the on-failure destination");
                failed.push(item.item_identifier);
                continue;
            }
        };
        match project_order_view(store, views, &event, MAX_ATTEMPTS).await {
            Ok(Projected::Applied) => applied += 1,
            Ok(Projected::Duplicate) => duplicates += 1,
            Err(reason) if reason.is_retryable() => {
                warn!(event_id = %event.event_id, correlation_id = %event.correlation_id, %reason, "projection failed; the stream will retry");
                failed.push(item.item_identifier);
            }
            Err(reason) => {
                error!(event_id = %event.event_id, correlation_id = %event.correlation_id, %reason, "event cannot be projected: reported for the on-failure destination");
                failed.push(item.item_identifier);
            }
        }
    }
    info!(applied, duplicates, failed = failed.len(), "projected");
    failures(failed)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use shared::adapters::memory::{InMemoryEventStore, InMemoryOrderViews};
    use shared::ids::OrderId;

    use super::*;
    use crate::records::inserted;
    use crate::testing::{batch, batch_with, ids};

    const ORDER: &str = "018f1c2e-7b3a-7000-8000-0000000000a1";

    /// An event store holding what the batch's records say was stored (the stream shows only
    /// what the table holds).
    fn store_for(batch: &StreamEvent) -> InMemoryEventStore {
        let store = InMemoryEventStore::new();
        for item in inserted(batch) {
            if let Ok(event) = item.event {
                store.insert_raw(event);
            }
        }
        store
    }

    #[tokio::test]
    async fn a_batch_becomes_the_order_view() {
        let batch = batch();
        let views = InMemoryOrderViews::default();
        let response = project_batch(&store_for(&batch), &views, &batch).await;
        assert!(response.batch_item_failures.is_empty());
        let view = views
            .get(&OrderId::parse(ORDER).unwrap())
            .await
            .unwrap()
            .expect("the view exists");
        assert_eq!(view.status.map(|s| s.as_str()), Some("cancelled"));
        assert_eq!(view.total.map(|t| t.value()), Some(4497));
        assert_eq!(
            view.delivery.as_ref().map(|d| d.status.as_str()),
            Some("scheduled")
        );
        assert_eq!(view.timeline.len(), 3);
        assert_eq!(views.writes(), 3, "one write per record");
    }

    #[tokio::test]
    async fn a_duplicated_or_replayed_batch_changes_nothing() {
        let batch = batch();
        let store = store_for(&batch);
        let views = InMemoryOrderViews::default();
        project_batch(&store, &views, &batch).await;
        let before = views.get(&OrderId::parse(ORDER).unwrap()).await.unwrap();
        let writes = views.writes();
        let response = project_batch(&store, &views, &batch).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(views.writes(), writes, "a replay writes nothing");
        assert_eq!(
            views.get(&OrderId::parse(ORDER).unwrap()).await.unwrap(),
            before
        );
    }

    #[tokio::test]
    async fn a_poison_record_is_reported_and_the_rest_is_projected() {
        let poisoned = batch_with(1, |image| image["event_type"] = json!({"S": "Teleported"}));
        let views = InMemoryOrderViews::default();
        let response = project_batch(&store_for(&poisoned), &views, &poisoned).await;
        assert_eq!(ids(&response), ["4421584500000000017450439002"]);
        let view = views
            .get(&OrderId::parse(ORDER).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(view.status.map(|s| s.as_str()), Some("cancelled"));
        assert!(view.delivery.is_none());
    }

    #[tokio::test]
    async fn an_unavailable_read_model_fails_the_records_for_a_retry() {
        let batch = batch();
        let views = InMemoryOrderViews::default();
        views.fail_next(1);
        let response = project_batch(&store_for(&batch), &views, &batch).await;
        assert_eq!(ids(&response), ["4421584500000000017450439001"]);
        // The retried batch completes the view.
        let response = project_batch(&store_for(&batch), &views, &batch).await;
        assert!(response.batch_item_failures.is_empty());
        let view = views
            .get(&OrderId::parse(ORDER).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(view.timeline.len(), 3);
    }
}
