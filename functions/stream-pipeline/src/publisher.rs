//! `event-publisher`: every event stored in the events table → the EventBridge bus (through the
//! [`EventPublisher`] port; the adapter batches, retries `FailedEntryCount` entries with backoff,
//! and stops at the first event it cannot publish), in stream order.
//!
//! The batch is walked in order: runs of events are published [`CHUNK`] at a time; a poison record
//! is set aside whole in the poison queue ([`DeadLetters`]) and passed. The first transient failure
//! (the bus out of reach, an entry still refused after the adapter's retries, the poison queue out
//! of reach, no time left before the [`Deadline`]) stops the walk: that record and every one after
//! it are answered as `batchItemFailures`, and nothing after it is published, so the stream's retry
//! from that record neither reorders a stream nor publishes a later record twice.

use std::collections::HashSet;

use adapters::eventbridge::MAX_ENTRIES_PER_CALL;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use domain::envelope::StoredEvent;
use domain::ports::{DeadLetters, EventPublisher, PublishError};
use domain::telemetry::{self, ErrorKind};
use tracing::{error, info, instrument, warn};

use crate::records::{StreamItem, inserted, poison};
use crate::{Deadline, StreamEvent, dead_letter_budget, failures, publish_budget};

/// The consumer name on this function's poison records.
pub const CONSUMER: &str = "event-publisher";

/// Events per `publish`: one `PutEvents` call's worth, so that one step's worst case is known
/// ([`publish_budget`]) and the deadline is checked between calls.
pub const CHUNK: usize = MAX_ENTRIES_PER_CALL;

/// Publishes one stream batch.
#[instrument(skip_all, fields(records = batch.records.len()))]
pub async fn publish_batch(
    publisher: &dyn EventPublisher,
    dead_letters: &dyn DeadLetters,
    batch: &StreamEvent,
    deadline: Deadline,
) -> DynamoDbEventResponse {
    let items = inserted(batch);
    let stopped_at = walk(publisher, dead_letters, batch, &items, deadline).await;
    if stopped_at.is_some() {
        telemetry::handler_error(ErrorKind::Transient);
    }
    let failed: Vec<String> = items
        .iter()
        .skip(stopped_at.unwrap_or(items.len()))
        .map(|item| item.item_identifier.clone())
        .collect();
    info!(
        published_or_set_aside = stopped_at.unwrap_or(items.len()),
        failed = failed.len(),
        "batch done"
    );
    failures(failed)
}

/// Publishes and sets aside in order; the index of the item it stopped at, if it stopped.
async fn walk(
    publisher: &dyn EventPublisher,
    dead_letters: &dyn DeadLetters,
    batch: &StreamEvent,
    items: &[StreamItem],
    deadline: Deadline,
) -> Option<usize> {
    // The events waiting to be published: (index in `items`, event).
    let mut run: Vec<(usize, StoredEvent)> = Vec::with_capacity(CHUNK);
    // The first step of an invocation always runs, whatever the deadline: progress is guaranteed.
    let mut first_step = true;
    for (index, item) in items.iter().enumerate() {
        match &item.event {
            Ok(event) => {
                run.push((index, event.clone()));
                if run.len() == CHUNK {
                    if let Err(stop) = publish_run(publisher, &run, deadline, &mut first_step).await
                    {
                        return Some(stop);
                    }
                    run.clear();
                }
            }
            Err(reason) => {
                if let Err(stop) = publish_run(publisher, &run, deadline, &mut first_step).await {
                    return Some(stop);
                }
                run.clear();
                if !first_step && !deadline.allows(dead_letter_budget()) {
                    warn!(sequence_number = %item.item_identifier, "no time left to set a poison record aside; the stream will retry from it");
                    return Some(index);
                }
                first_step = false;
                let record = poison(batch, item, CONSUMER, reason.to_string());
                match dead_letters.dead_letter(&record).await {
                    Ok(()) => {
                        error!(sequence_number = %item.item_identifier, %reason, "poison stream record set aside in the poison queue");
                        telemetry::handler_error(ErrorKind::Poison);
                    }
                    Err(failure) => {
                        warn!(sequence_number = %item.item_identifier, %failure, "poison record not set aside; the stream will retry from it");
                        return Some(index);
                    }
                }
            }
        }
    }
    publish_run(publisher, &run, deadline, &mut first_step)
        .await
        .err()
}

/// Publishes `run`; `Err(index)` of the first item not published.
async fn publish_run(
    publisher: &dyn EventPublisher,
    run: &[(usize, StoredEvent)],
    deadline: Deadline,
    first_step: &mut bool,
) -> Result<(), usize> {
    let Some((first, _)) = run.first() else {
        return Ok(());
    };
    if !*first_step && !deadline.allows(publish_budget()) {
        warn!(
            waiting = run.len(),
            "no time left to publish; the stream will retry from here"
        );
        return Err(*first);
    }
    *first_step = false;
    let events: Vec<StoredEvent> = run.iter().map(|(_, event)| event.clone()).collect();
    match publisher.publish(&events).await {
        Ok(()) => {
            telemetry::events_published(events.len());
            Ok(())
        }
        Err(PublishError::Partial { failed_event_ids }) => {
            let ids: HashSet<&str> = failed_event_ids.iter().map(String::as_str).collect();
            telemetry::events_published(events.len().saturating_sub(ids.len()));
            let stop = run
                .iter()
                .find(|(_, event)| ids.contains(event.event_id.as_str()))
                .map_or(*first, |(index, _)| *index);
            warn!(
                failed = ids.len(),
                "some events were not published; the stream will retry from the first of them"
            );
            Err(stop)
        }
        Err(PublishError::Unavailable(reason)) => {
            warn!(%reason, "the bus is unavailable; the stream will retry from here");
            Err(*first)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use async_trait::async_trait;
    use domain::envelope::StoredEvent;
    use serde_json::json;
    use testkit::memory::{InMemoryDeadLetters, InMemoryPublisher};

    use super::*;
    use crate::testing::{BATCH, batch, batch_with, ids};

    const SECOND: &str = "4421584500000000017450439002";
    const THIRD: &str = "4421584500000000017450439003";

    fn types(publisher: &InMemoryPublisher) -> Vec<String> {
        publisher
            .published()
            .iter()
            .map(|e| e.event_type.clone())
            .collect()
    }

    #[tokio::test]
    async fn every_inserted_event_is_published_in_stream_order() {
        let publisher = InMemoryPublisher::default();
        let letters = InMemoryDeadLetters::default();
        let response = publish_batch(&publisher, &letters, &batch(), Deadline::none()).await;
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
        assert!(letters.letters().is_empty());
    }

    #[tokio::test]
    async fn a_poison_record_is_set_aside_whole_and_the_records_after_it_are_published_once() {
        let publisher = InMemoryPublisher::default();
        let letters = InMemoryDeadLetters::default();
        let poisoned = batch_with(1, |image| image["schema_version"] = json!({"N": "7"}));
        let response = publish_batch(&publisher, &letters, &poisoned, Deadline::none()).await;
        // Handled: not a failure, so the stream does not retry (and re-publish) the records after it.
        assert!(ids(&response).is_empty(), "{:?}", ids(&response));
        assert_eq!(types(&publisher), ["OrderPlaced", "OrderCancelled"]);
        let [letter] = letters.letters().try_into().unwrap();
        assert_eq!(letter.consumer, "event-publisher");
        assert_eq!(letter.sequence_number, SECOND);
        assert_eq!(letter.event_name, "INSERT");
        assert!(letter.reason.contains('7'), "{}", letter.reason);
        let fixture: serde_json::Value = serde_json::from_str(BATCH).unwrap();
        let mut image = fixture["Records"][1]["dynamodb"]["NewImage"].clone();
        image["schema_version"] = json!({"N": "7"});
        assert_eq!(letter.new_image, image);
    }

    #[tokio::test]
    async fn a_poison_record_that_cannot_be_set_aside_stops_the_batch_there() {
        let publisher = InMemoryPublisher::default();
        let letters = InMemoryDeadLetters::default();
        letters.fail_next(1);
        let poisoned = batch_with(1, |image| image["event_type"] = json!({"S": "Teleported"}));
        let response = publish_batch(&publisher, &letters, &poisoned, Deadline::none()).await;
        assert_eq!(ids(&response), [SECOND, THIRD]);
        assert_eq!(types(&publisher), ["OrderPlaced"], "nothing after it");
        // The retry from the poison record sets it aside and publishes the rest.
        let retry = publish_batch(&publisher, &letters, &poisoned, Deadline::none()).await;
        assert!(retry.batch_item_failures.is_empty());
        assert_eq!(letters.letters().len(), 1);
    }

    #[tokio::test]
    async fn an_unreachable_bus_fails_every_record_so_the_stream_retries() {
        let publisher = InMemoryPublisher::default();
        publisher.fail_next(1);
        let letters = InMemoryDeadLetters::default();
        let response = publish_batch(&publisher, &letters, &batch(), Deadline::none()).await;
        assert_eq!(
            ids(&response),
            ["4421584500000000017450439001", SECOND, THIRD]
        );
        assert!(publisher.published().is_empty());
    }

    /// Accepts everything but the events it was told to refuse, as a PutEvents partial failure
    /// (the adapter names the first refused event and every one after it).
    struct Refusing(Vec<&'static str>, InMemoryPublisher);

    #[async_trait]
    impl EventPublisher for Refusing {
        async fn publish(&self, events: &[StoredEvent]) -> Result<(), PublishError> {
            match events
                .iter()
                .position(|e| self.0.contains(&e.event_id.as_str()))
            {
                None => self.1.publish(events).await,
                Some(first) => {
                    self.1.publish(&events[..first]).await?;
                    Err(PublishError::Partial {
                        failed_event_ids: events[first..]
                            .iter()
                            .map(|e| e.event_id.clone())
                            .collect(),
                    })
                }
            }
        }
    }

    #[tokio::test]
    async fn events_the_bus_refused_are_named_from_the_first_by_their_sequence_numbers() {
        let publisher = Refusing(
            vec!["018f1c2e-7b3a-7000-8000-00000000e102"],
            InMemoryPublisher::default(),
        );
        let letters = InMemoryDeadLetters::default();
        let response = publish_batch(&publisher, &letters, &batch(), Deadline::none()).await;
        assert_eq!(ids(&response), [SECOND, THIRD]);
    }

    #[tokio::test]
    async fn a_failure_before_a_poison_record_leaves_it_for_the_retry() {
        let publisher = Refusing(
            vec!["018f1c2e-7b3a-7000-8000-00000000e101"],
            InMemoryPublisher::default(),
        );
        let letters = InMemoryDeadLetters::default();
        let poisoned = batch_with(1, |image| image["schema_version"] = json!({"N": "7"}));
        let response = publish_batch(&publisher, &letters, &poisoned, Deadline::none()).await;
        assert_eq!(
            ids(&response),
            ["4421584500000000017450439001", SECOND, THIRD]
        );
        assert!(letters.letters().is_empty(), "set aside once, on the retry");
        assert!(publisher.1.published().is_empty());
    }

    #[tokio::test]
    async fn with_no_time_left_the_batch_stops_after_its_first_step() {
        let publisher = InMemoryPublisher::default();
        let letters = InMemoryDeadLetters::default();
        let poisoned = batch_with(1, |image| image["schema_version"] = json!({"N": "7"}));
        let spent = Deadline::after(Duration::ZERO);
        let response = publish_batch(&publisher, &letters, &poisoned, spent).await;
        assert_eq!(types(&publisher), ["OrderPlaced"], "the first step runs");
        assert_eq!(ids(&response), [SECOND, THIRD]);
        assert!(letters.letters().is_empty());
    }

    #[tokio::test]
    async fn a_batch_without_inserts_publishes_nothing() {
        let publisher = InMemoryPublisher::default();
        publisher.fail_next(1);
        let mut batch = batch();
        batch.records.clear();
        let letters = InMemoryDeadLetters::default();
        let response = publish_batch(&publisher, &letters, &batch, Deadline::none()).await;
        assert!(response.batch_item_failures.is_empty());
    }
}
