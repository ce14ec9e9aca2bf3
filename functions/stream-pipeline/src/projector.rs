//! `projector`: every event stored in the events table → the order read model. The batch's
//! events are grouped by order view and each view is projected with one read and at most one
//! write ([`project_order_view_events`]: duplicates and replays are no-ops, gaps are healed from
//! the events table), up to [`PARALLEL_VIEWS`] views at once, started in the order of their first
//! record. A view whose events fail for good is projected again event by event, so that only the
//! events that cannot be projected are poison.
//!
//! A poison record (undecodable, or an event that can never be projected) is set aside whole in
//! the poison queue ([`DeadLetters`]) and passed. The first transient failure (the views or the
//! event store out of reach, the poison queue out of reach, no time left before the [`Deadline`])
//! stops the batch there: no view is started after it, and that record and every one after it are
//! answered as `batchItemFailures`, so the stream retries from it. A view of later records that was
//! already in flight is projected again by the retry, which changes nothing (a duplicate).

use aws_lambda_events::event::streams::DynamoDbEventResponse;
use chrono::{DateTime, Utc};
use domain::envelope::StoredEvent;
use domain::ids::OrderId;
use domain::ports::{DeadLetters, EventStore};
use domain::projection::{Projected, ProjectionError, project_order_view_events};
use domain::read_model::{OrderViews, order_id_of};
use domain::telemetry::{self, ErrorKind};
use futures::stream::{self, StreamExt};
use tracing::{error, info, instrument, warn};

use crate::records::{inserted, poison};
use crate::{Deadline, StreamEvent, dead_letter_budget, failures, view_budget};

/// The consumer name on this function's poison records.
pub const CONSUMER: &str = "projector";
/// Conditional-write attempts per view before its records are reported as failed.
pub const MAX_ATTEMPTS: u32 = 3;
/// Views projected at once.
pub const PARALLEL_VIEWS: usize = 8;

/// A view's records in the batch: their indexes among the batch's items and their events, in
/// stream order.
struct ViewRecords {
    order_id: OrderId,
    records: Vec<(usize, StoredEvent)>,
}

/// What became of a record.
#[derive(Debug)]
enum Fate {
    /// Projected (or held already).
    Projected,
    /// Can never be projected: why.
    Poison(String),
    /// Not projected this time (a transient failure, or no time to try).
    Failed,
}

/// Projects one stream batch.
#[instrument(skip_all, fields(records = batch.records.len()))]
pub async fn project_batch(
    store: &dyn EventStore,
    views: &dyn OrderViews,
    dead_letters: &dyn DeadLetters,
    batch: &StreamEvent,
    deadline: Deadline,
) -> DynamoDbEventResponse {
    let items = inserted(batch);
    // `None`: not tried (a view not started after a failure).
    let mut fates: Vec<Option<Fate>> = items.iter().map(|_| None).collect();
    let mut groups: Vec<ViewRecords> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let event = match &item.event {
            Ok(event) => event,
            Err(reason) => {
                fates[index] = Some(Fate::Poison(reason.to_string()));
                continue;
            }
        };
        let order_id = match order_id_of(event) {
            Ok(order_id) => order_id,
            Err(reason) => {
                fates[index] = Some(Fate::Poison(reason.to_string()));
                continue;
            }
        };
        match groups.iter_mut().find(|group| group.order_id == order_id) {
            Some(group) => group.records.push((index, event.clone())),
            None => groups.push(ViewRecords {
                order_id,
                records: vec![(index, event.clone())],
            }),
        }
    }
    let projected_any = !groups.is_empty();
    let mut outcomes = stream::iter(groups.into_iter().enumerate())
        .map(|(n, group)| project_view(store, views, group, deadline, n == 0))
        .buffered(PARALLEL_VIEWS);
    while let Some(outcome) = outcomes.next().await {
        let failed = outcome.iter().any(|(_, fate)| matches!(fate, Fate::Failed));
        for (index, fate) in outcome {
            if let Some(slot) = fates.get_mut(index) {
                *slot = Some(fate);
            }
        }
        if failed {
            break;
        }
    }
    drop(outcomes);

    // In stream order: set poison aside until the first record that was not projected.
    let (mut applied, mut set_aside) = (0u32, 0u32);
    let mut oldest_projected: Option<DateTime<Utc>> = None;
    let mut first_send = !projected_any;
    let mut stopped_at = items.len();
    for (index, item) in items.iter().enumerate() {
        match fates.get_mut(index).and_then(Option::take) {
            Some(Fate::Projected) => {
                applied += 1;
                if let Ok(event) = &item.event {
                    let at = event.occurred_at;
                    oldest_projected = Some(oldest_projected.map_or(at, |oldest| oldest.min(at)));
                }
            }
            Some(Fate::Poison(reason)) => {
                if !first_send && !deadline.allows(dead_letter_budget()) {
                    warn!(sequence_number = %item.item_identifier, "no time left to set a poison record aside; the stream will retry from it");
                    stopped_at = index;
                    break;
                }
                first_send = false;
                let record = poison(batch, item, CONSUMER, reason);
                if let Err(failure) = dead_letters.dead_letter(&record).await {
                    warn!(sequence_number = %item.item_identifier, %failure, "poison record not set aside; the stream will retry from it");
                    stopped_at = index;
                    break;
                }
                error!(sequence_number = %item.item_identifier, "poison stream record set aside in the poison queue");
                telemetry::handler_error(ErrorKind::Poison);
                set_aside += 1;
            }
            Some(Fate::Failed) | None => {
                stopped_at = index;
                break;
            }
        }
    }
    let failed: Vec<String> = items
        .iter()
        .skip(stopped_at)
        .map(|item| item.item_identifier.clone())
        .collect();
    info!(applied, set_aside, failed = failed.len(), "projected");
    if let Some(oldest) = oldest_projected {
        telemetry::projector_lag(oldest, Utc::now());
    }
    if !failed.is_empty() {
        telemetry::handler_error(ErrorKind::Transient);
    }
    failures(failed)
}

/// Projects one view's records together; when that fails for good and there are several, one by
/// one, so that only the records that cannot be projected are poison. `first`: the batch's first
/// view, which runs whatever the deadline, so that every invocation makes progress.
async fn project_view(
    store: &dyn EventStore,
    views: &dyn OrderViews,
    group: ViewRecords,
    deadline: Deadline,
    first: bool,
) -> Vec<(usize, Fate)> {
    let all = |fate: fn() -> Fate| -> Vec<(usize, Fate)> {
        group.records.iter().map(|(i, _)| (*i, fate())).collect()
    };
    if !first && !deadline.allows(view_budget()) {
        return all(|| Fate::Failed);
    }
    let events: Vec<&StoredEvent> = group.records.iter().map(|(_, event)| event).collect();
    let together =
        project_order_view_events(store, views, &group.order_id, &events, MAX_ATTEMPTS).await;
    match together {
        Ok(Projected::Applied | Projected::Duplicate) => all(|| Fate::Projected),
        Err(reason) if reason.is_retryable() => {
            report(&reason, &group.records);
            all(|| Fate::Failed)
        }
        Err(reason) if group.records.len() == 1 => group
            .records
            .iter()
            .map(|(i, _)| (*i, Fate::Poison(reason.to_string())))
            .collect(),
        Err(_) => {
            let mut fates = Vec::with_capacity(group.records.len());
            let mut failed = false;
            for (index, event) in &group.records {
                let runs_anyway = first && fates.is_empty();
                if failed || (!runs_anyway && !deadline.allows(view_budget())) {
                    failed = true;
                    fates.push((*index, Fate::Failed));
                    continue;
                }
                let fate = match project_order_view_events(
                    store,
                    views,
                    &group.order_id,
                    &[event],
                    MAX_ATTEMPTS,
                )
                .await
                {
                    Ok(_) => Fate::Projected,
                    Err(reason) if reason.is_retryable() => {
                        report(&reason, std::slice::from_ref(&(*index, event.clone())));
                        failed = true;
                        Fate::Failed
                    }
                    Err(reason) => Fate::Poison(reason.to_string()),
                };
                fates.push((*index, fate));
            }
            fates
        }
    }
}

/// Logs why records could not be projected this time (ids and correlation ids only).
fn report(reason: &ProjectionError, records: &[(usize, StoredEvent)]) {
    for (_, event) in records {
        warn!(event_id = %event.event_id, correlation_id = %event.correlation_id, %reason, "projection failed; the stream will retry");
    }
}

#[cfg(test)]
mod tests {
    use domain::ids::OrderId;
    use serde_json::json;
    use testkit::memory::{InMemoryDeadLetters, InMemoryEventStore, InMemoryOrderViews};

    use super::*;
    use crate::records::inserted;
    use crate::testing::{batch, batch_with, ids};

    const ORDER: &str = "018f1c2e-7b3a-7000-8000-0000000000a1";
    const FIRST: &str = "4421584500000000017450439001";
    const SECOND: &str = "4421584500000000017450439002";
    const THIRD: &str = "4421584500000000017450439003";

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

    async fn project(
        views: &InMemoryOrderViews,
        letters: &InMemoryDeadLetters,
        batch: &StreamEvent,
    ) -> DynamoDbEventResponse {
        project_batch(&store_for(batch), views, letters, batch, Deadline::none()).await
    }

    async fn view(views: &InMemoryOrderViews) -> domain::read_model::OrderView {
        views
            .get(&OrderId::parse(ORDER).unwrap())
            .await
            .unwrap()
            .expect("the view exists")
    }

    #[tokio::test]
    async fn a_batch_becomes_the_order_view() {
        let views = InMemoryOrderViews::default();
        let response = project(&views, &InMemoryDeadLetters::default(), &batch()).await;
        assert!(response.batch_item_failures.is_empty());
        let view = view(&views).await;
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
        let views = InMemoryOrderViews::default();
        let letters = InMemoryDeadLetters::default();
        project(&views, &letters, &batch).await;
        let before = view(&views).await;
        let writes = views.writes();
        let response = project(&views, &letters, &batch).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(views.writes(), writes, "a replay writes nothing");
        assert_eq!(view(&views).await, before);
    }

    #[tokio::test]
    async fn a_poison_record_is_set_aside_whole_and_the_rest_is_projected() {
        let poisoned = batch_with(1, |image| image["event_type"] = json!({"S": "Teleported"}));
        let views = InMemoryOrderViews::default();
        let letters = InMemoryDeadLetters::default();
        let response = project(&views, &letters, &poisoned).await;
        assert!(ids(&response).is_empty(), "{:?}", ids(&response));
        let [letter] = letters.letters().try_into().unwrap();
        assert_eq!(letter.consumer, "projector");
        assert_eq!(letter.sequence_number, SECOND);
        assert_eq!(letter.new_image["event_type"], json!({"S": "Teleported"}));
        let view = view(&views).await;
        assert_eq!(view.status.map(|s| s.as_str()), Some("cancelled"));
        assert!(view.delivery.is_none());
    }

    #[tokio::test]
    async fn an_unavailable_read_model_fails_the_records_for_a_retry() {
        let batch = batch();
        let views = InMemoryOrderViews::default();
        let letters = InMemoryDeadLetters::default();
        views.fail_next(1);
        let response = project(&views, &letters, &batch).await;
        // The three records are one view's: they fail (and are retried) together.
        assert_eq!(ids(&response), [FIRST, SECOND, THIRD]);
        // The retried batch completes the view.
        let response = project(&views, &letters, &batch).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(view(&views).await.timeline.len(), 3);
    }

    #[tokio::test]
    async fn a_view_write_failure_stops_the_batch_before_a_later_poison_record() {
        let poisoned = batch_with(2, |image| image["schema_version"] = json!({"N": "9"}));
        let views = InMemoryOrderViews::default();
        let letters = InMemoryDeadLetters::default();
        views.fail_next(1);
        let response = project(&views, &letters, &poisoned).await;
        assert_eq!(ids(&response), [FIRST, SECOND, THIRD]);
        assert!(letters.letters().is_empty(), "set aside once, on the retry");
        let response = project(&views, &letters, &poisoned).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(letters.letters().len(), 1);
        assert_eq!(
            view(&views).await.status.map(|s| s.as_str()),
            Some("placed")
        );
    }

    #[tokio::test]
    async fn a_poison_queue_failure_stops_the_batch_at_the_poison_record() {
        let poisoned = batch_with(1, |image| image["schema_version"] = json!({"N": "9"}));
        let views = InMemoryOrderViews::default();
        let letters = InMemoryDeadLetters::default();
        letters.fail_next(1);
        let response = project(&views, &letters, &poisoned).await;
        assert_eq!(ids(&response), [SECOND, THIRD]);
        let response = project(&views, &letters, &poisoned).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(letters.letters().len(), 1);
    }
}
