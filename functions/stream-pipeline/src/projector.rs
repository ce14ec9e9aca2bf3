//! `projector`: every event stored in the events table → the order read model. The batch's
//! events are grouped by order view and each view is projected with one read and at most one
//! write ([`project_order_view_events`]: duplicates and replays are no-ops, gaps are healed from
//! the events table), up to [`PARALLEL_VIEWS`] views at once. A record that fails is named in
//! `batchItemFailures` (with the other records of its view, so the view's events are applied
//! together on the retry); the rest of the batch is still projected, which is safe because the
//! projection does not depend on arrival order. A view whose events fail for good (a poison
//! event) is projected again event by event, so that only the poison is reported.

use aws_lambda_events::event::streams::DynamoDbEventResponse;
use futures::stream::{self, StreamExt};
use shared::envelope::StoredEvent;
use shared::ids::OrderId;
use shared::ports::EventStore;
use shared::projection::{Projected, ProjectionError, project_order_view_events};
use shared::read_model::{OrderViews, order_id_of};
use tracing::{error, info, instrument, warn};

use crate::records::inserted;
use crate::{StreamEvent, failures};

/// Conditional-write attempts per view before its records are reported as failed.
pub const MAX_ATTEMPTS: u32 = 3;
/// Views projected at once.
pub const PARALLEL_VIEWS: usize = 8;

/// A view's records in the batch: their sequence numbers and events, in stream order.
struct ViewRecords {
    order_id: OrderId,
    records: Vec<(String, StoredEvent)>,
}

/// What projecting a view's records did: counts and the records that failed.
#[derive(Default)]
struct Outcome {
    applied: u32,
    duplicates: u32,
    failed: Vec<String>,
}

/// Projects one stream batch.
#[instrument(skip_all, fields(records = batch.records.len()))]
pub async fn project_batch(
    store: &dyn EventStore,
    views: &dyn OrderViews,
    batch: &StreamEvent,
) -> DynamoDbEventResponse {
    let mut failed = Vec::new();
    let mut groups: Vec<ViewRecords> = Vec::new();
    for item in inserted(batch) {
        let event = match item
            .event
            .and_then(|event| Ok((order_id_of(&event)?, event)))
        {
            Ok(event) => event,
            Err(reason) => {
                error!(sequence_number = %item.item_identifier, %reason, "poison stream record: reported for the on-failure destination");
                failed.push(item.item_identifier);
                continue;
            }
        };
        let (order_id, event) = event;
        match groups.iter_mut().find(|group| group.order_id == order_id) {
            Some(group) => group.records.push((item.item_identifier, event)),
            None => groups.push(ViewRecords {
                order_id,
                records: vec![(item.item_identifier, event)],
            }),
        }
    }
    let outcomes: Vec<Outcome> = stream::iter(groups)
        .map(|group| project_view(store, views, group))
        .buffer_unordered(PARALLEL_VIEWS)
        .collect()
        .await;
    let (mut applied, mut duplicates) = (0u32, 0u32);
    for outcome in outcomes {
        applied += outcome.applied;
        duplicates += outcome.duplicates;
        failed.extend(outcome.failed);
    }
    info!(applied, duplicates, failed = failed.len(), "projected");
    failures(failed)
}

/// Projects one view's records together; when that fails for good and there are several, one by
/// one, so that only the records that cannot be projected are reported.
async fn project_view(
    store: &dyn EventStore,
    views: &dyn OrderViews,
    group: ViewRecords,
) -> Outcome {
    let events: Vec<&StoredEvent> = group.records.iter().map(|(_, event)| event).collect();
    let together =
        project_order_view_events(store, views, &group.order_id, &events, MAX_ATTEMPTS).await;
    let mut outcome = Outcome::default();
    match together {
        Ok(Projected::Applied) => outcome.applied += count(&events),
        Ok(Projected::Duplicate) => outcome.duplicates += count(&events),
        Err(reason) if reason.is_retryable() || group.records.len() == 1 => {
            report(&reason, &group.records);
            outcome
                .failed
                .extend(group.records.iter().map(|(id, _)| id.clone()));
        }
        Err(_) => {
            for (id, event) in &group.records {
                match project_order_view_events(
                    store,
                    views,
                    &group.order_id,
                    &[event],
                    MAX_ATTEMPTS,
                )
                .await
                {
                    Ok(Projected::Applied) => outcome.applied += 1,
                    Ok(Projected::Duplicate) => outcome.duplicates += 1,
                    Err(reason) => {
                        report(&reason, std::slice::from_ref(&(id.clone(), event.clone())));
                        outcome.failed.push(id.clone());
                    }
                }
            }
        }
    }
    outcome
}

fn count(events: &[&StoredEvent]) -> u32 {
    u32::try_from(events.len()).unwrap_or(u32::MAX)
}

/// Logs why records could not be projected (ids and correlation ids only).
fn report(reason: &ProjectionError, records: &[(String, StoredEvent)]) {
    for (sequence_number, event) in records {
        if reason.is_retryable() {
            warn!(%sequence_number, event_id = %event.event_id, correlation_id = %event.correlation_id, %reason, "projection failed; the stream will retry");
        } else {
            error!(%sequence_number, event_id = %event.event_id, correlation_id = %event.correlation_id, %reason, "event cannot be projected: reported for the on-failure destination");
        }
    }
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
        assert_eq!(views.writes(), 1, "one write per view");
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
        // The three records are one view's: they fail (and are retried) together.
        assert_eq!(
            ids(&response),
            [
                "4421584500000000017450439001",
                "4421584500000000017450439002",
                "4421584500000000017450439003"
            ]
        );
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
