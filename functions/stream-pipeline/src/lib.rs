//! # stream-pipeline
//!
//! The two readers of the events table's DynamoDB stream (docs/architecture.md, "Delivery
//! semantics" — at most two per shard):
//!
//! | module | responsibility |
//! | --- | --- |
//! | [`records`] | stream records as Lambda delivers them → stored events (upcast); undecodable = poison |
//! | [`publisher`] | `event-publisher`: every stored event → EventBridge, in stream order |
//! | [`projector`] | `projector`: every stored event → the order read model, idempotently |
//! | [`config`] | `Config::from_env` of each function |
//! | [`Deadline`] | when to stop starting work an invocation could not finish |
//!
//! Failures (README, "Failure handling"):
//! - a **poison** record (one that can never be processed) is set aside whole, with the reason, in
//!   the function's poison queue (the [`DeadLetters`](domain::ports::DeadLetters) port), and the
//!   records after it go on;
//! - a **transient** failure (the bus, the views table or the poison queue out of reach, a
//!   PutEvents entry refused, no time left) stops the batch at the first record it hits: that record
//!   and every one after it are answered as `batchItemFailures` and nothing after it is published.
//!   Lambda checkpoints before it and retries from it, so each stream's order holds and a record
//!   after a failure is not published twice. The mapping retries without a count limit, within a
//!   record-age budget (`template.yaml`); what outlives the budget goes to its on-failure queue.
#![forbid(unsafe_code)]

pub mod config;
pub mod projector;
pub mod publisher;
pub mod records;

use std::time::{Duration, Instant, SystemTime};

use adapters::eventbridge::DEFAULT_BACKOFF;
use adapters::sdk::OPERATION_TIMEOUT;
use aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use domain::ports::{DeadLetters, EventPublisher, EventStore};
use domain::read_model::OrderViews;

/// The longest one `publish` of at most [`publisher::CHUNK`] events may take: every attempt of the
/// EventBridge adapter's backoff a whole SDK call long, plus the waits between them.
pub fn publish_budget() -> Duration {
    let waits: Duration = (1..DEFAULT_BACKOFF.max_attempts)
        .map(|attempt| DEFAULT_BACKOFF.delay(attempt))
        .sum();
    OPERATION_TIMEOUT * DEFAULT_BACKOFF.max_attempts + waits
}

/// The longest setting one poison record aside may take: one SDK call.
pub fn dead_letter_budget() -> Duration {
    OPERATION_TIMEOUT
}

/// The longest projecting one view may take: [`projector::MAX_ATTEMPTS`] attempts of a read, a
/// heal from the event store and a write, each a whole SDK call long.
pub fn view_budget() -> Duration {
    OPERATION_TIMEOUT * 3 * projector::MAX_ATTEMPTS
}

/// The function timeout each reader needs so that its first step (and the poison record next to
/// it) always fits: later steps start only while [`Deadline::allows`] them.
pub fn timeout_needed(step: Duration) -> Duration {
    step + dead_letter_budget()
}

/// When an invocation must stop starting work: a step (a `publish`, a view, a poison record) starts
/// only if its worst case fits before the deadline; otherwise the batch stops there, as on a
/// transient failure, and the stream retries from that record. Without it, a slow dependency
/// would let the function time out mid-batch: Lambda then retries the whole batch, publishing again
/// what had been published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// No deadline (tests).
    pub fn none() -> Self {
        Self(None)
    }

    /// A deadline `remaining` from now.
    pub fn after(remaining: Duration) -> Self {
        Self(Instant::now().checked_add(remaining))
    }

    /// The invocation's deadline (`Context::deadline()`). A deadline already past before any work
    /// is not a real one (an emulator that sends none): then there is none.
    pub fn of_invocation(deadline: SystemTime) -> Self {
        match deadline.duration_since(SystemTime::now()) {
            Ok(remaining) if !remaining.is_zero() => Self::after(remaining),
            _ => Self::none(),
        }
    }

    /// Whether work that may take `worst` can start now.
    pub fn allows(&self, worst: Duration) -> bool {
        self.0.is_none_or(|deadline| {
            Instant::now()
                .checked_add(worst)
                .is_some_and(|end| end <= deadline)
        })
    }
}

/// The response naming `failed` records (sequence numbers, stream order kept).
pub fn failures(failed: Vec<String>) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(id);
            failure
        })
        .collect();
    response
}

/// A DynamoDB stream event, re-exported for the binaries and tests.
pub type StreamEvent = DynamoDbEvent;

/// The one convention of the events table's stream readers: one batch in (with the invocation's
/// deadline), the records to retry out (`batchItemFailures`, stream order kept).
#[async_trait::async_trait]
pub trait StreamHandler: Send + Sync {
    /// Handles one batch.
    async fn handle(&self, batch: &StreamEvent, deadline: Deadline) -> DynamoDbEventResponse;
}

/// `event-publisher` as it runs: every stored event to the bus.
pub struct Publisher<'a> {
    /// The bus.
    pub bus: &'a dyn EventPublisher,
    /// Where poison records are set aside.
    pub poison: &'a dyn DeadLetters,
}

#[async_trait::async_trait]
impl StreamHandler for Publisher<'_> {
    async fn handle(&self, batch: &StreamEvent, deadline: Deadline) -> DynamoDbEventResponse {
        publisher::publish_batch(self.bus, self.poison, batch, deadline).await
    }
}

/// `projector` as it runs: every stored event into the read model.
pub struct Projector<'a> {
    /// Read to heal gaps.
    pub store: &'a dyn EventStore,
    /// The order views.
    pub views: &'a dyn OrderViews,
    /// Where poison records are set aside.
    pub poison: &'a dyn DeadLetters,
}

#[async_trait::async_trait]
impl StreamHandler for Projector<'_> {
    async fn handle(&self, batch: &StreamEvent, deadline: Deadline) -> DynamoDbEventResponse {
        projector::project_batch(self.store, self.views, self.poison, batch, deadline).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_allows_only_work_that_fits() {
        assert!(Deadline::none().allows(Duration::from_secs(3600)));
        let deadline = Deadline::after(Duration::from_secs(30));
        assert!(deadline.allows(Duration::from_secs(29)));
        assert!(!deadline.allows(Duration::from_secs(31)));
        let past = SystemTime::now() - Duration::from_secs(1);
        assert_eq!(Deadline::of_invocation(past), Deadline::none());
        assert!(
            !Deadline::of_invocation(SystemTime::now() + Duration::from_secs(5))
                .allows(Duration::from_secs(6))
        );
    }

    #[test]
    fn the_budgets_follow_the_sdk_limits() {
        // 4 attempts of 7 s, waiting 0.1 + 0.2 + 0.4 s between them.
        assert_eq!(publish_budget(), Duration::from_millis(28_700));
        assert_eq!(dead_letter_budget(), Duration::from_secs(7));
        assert_eq!(view_budget(), Duration::from_secs(63));
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! The stream fixture: a real Lambda DynamoDB stream event with three INSERT records
    //! (OrderPlaced, DeliveryScheduled, OrderCancelled of one order).
    use super::StreamEvent;

    pub const BATCH: &str = include_str!("../fixtures/dynamodb_stream_batch.json");

    pub fn batch() -> StreamEvent {
        serde_json::from_str(BATCH).unwrap()
    }

    /// The fixture with record `index`'s new image changed by `change`.
    pub fn batch_with(index: usize, change: impl FnOnce(&mut serde_json::Value)) -> StreamEvent {
        let mut value: serde_json::Value = serde_json::from_str(BATCH).unwrap();
        change(&mut value["Records"][index]["dynamodb"]["NewImage"]);
        serde_json::from_value(value).unwrap()
    }

    pub fn ids(response: &aws_lambda_events::event::streams::DynamoDbEventResponse) -> Vec<String> {
        response
            .batch_item_failures
            .iter()
            .filter_map(|f| f.item_identifier.clone())
            .collect()
    }
}
