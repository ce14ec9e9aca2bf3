//! Ports: one narrow trait per capability the functions need from the outside world. Adapters live
//! in [`crate::adapters`]; no SDK type crosses these signatures.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalogue::CatalogueEntry;
use crate::envelope::StoredEvent;
use crate::events::DecodeError;
use crate::ids::{Sku, StreamId};

/// Most events one append may write (DynamoDB allows 100 actions per transaction; one is kept for
/// the idempotency record).
pub const MAX_EVENTS_PER_APPEND: usize = 99;

/// A request's idempotency record: stored in the same transaction as the events it produced, so
/// a retried request finds it and stores nothing twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// The scoped key, e.g. `order-api#<Idempotency-Key header>`.
    pub key: String,
    /// A hash of the request, to tell a retry (same body) from a misuse (different body).
    pub request_hash: String,
    /// What to answer a retry with.
    pub response: Value,
    /// When the record may be forgotten (epoch seconds; the table's TTL attribute).
    pub expires_at: i64,
}

/// Events to append to one stream, written all or nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendRequest {
    /// The stream.
    pub stream_id: StreamId,
    /// The version the caller decided on (0 for a new stream); the append fails with
    /// [`StoreError::Conflict`] if the stream has moved on.
    pub expected_version: u64,
    /// The new events, numbered `expected_version + 1 …`.
    pub events: Vec<StoredEvent>,
    /// Recorded in the same transaction, if the command carried an idempotency key.
    pub idempotency: Option<IdempotencyRecord>,
}

/// Why the event store refused or failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// Someone appended to the stream since it was loaded: reload, decide again, retry.
    #[error("version conflict on {stream_id}: expected version {expected_version}")]
    Conflict {
        /// The stream.
        stream_id: StreamId,
        /// The version the caller expected.
        expected_version: u64,
    },
    /// The idempotency key is taken: the request was processed already.
    #[error("idempotency key {key} was used already")]
    DuplicateRequest {
        /// The key.
        key: String,
    },
    /// The request itself is wrong (events not numbered after the expected version, too many …).
    #[error("invalid append: {0}")]
    InvalidAppend(String),
    /// A stored event cannot be read (unknown type or schema version, malformed data).
    #[error("stored event {stream_id} v{version} cannot be read: {source}")]
    Corrupt {
        /// Its stream.
        stream_id: StreamId,
        /// Its version.
        version: u64,
        /// Why.
        source: DecodeError,
    },
    /// The storage service failed or is out of reach: retryable.
    #[error("event store unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Conflict { .. })
    }
}

/// The catalogue the server prices orders from.
#[async_trait]
pub trait Catalogue: Send + Sync {
    /// The entries of those of `skus` the catalogue has (unknown SKUs are simply absent).
    async fn entries(&self, skus: &[Sku]) -> Result<Vec<CatalogueEntry>, StoreError>;

    /// Writes `entries`, replacing those with the same SKU (an operator loading a catalogue file).
    async fn put_entries(&self, entries: &[CatalogueEntry]) -> Result<(), StoreError>;
}

/// The event store: append-only streams of events per aggregate.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends events to one stream atomically, with optimistic concurrency on its version.
    async fn append(&self, request: AppendRequest) -> Result<(), StoreError>;

    /// Loads a whole stream, oldest first, upcast to current schema versions.
    async fn load(&self, stream_id: &StreamId) -> Result<Vec<StoredEvent>, StoreError>;

    /// Loads at most `limit` events of a stream that come after version `after_version`, oldest
    /// first, upcast: one page of a long stream, so a reader never holds more than it shows.
    ///
    /// The adapters read only what they return. This default loads the whole stream and keeps
    /// the page: enough for test doubles, not for a store.
    async fn load_from(
        &self,
        stream_id: &StreamId,
        after_version: u64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut events = self.load(stream_id).await?;
        events.retain(|event| event.version > after_version);
        events.truncate(limit as usize);
        Ok(events)
    }
}

/// Request idempotency records (API) and processed-event markers (consumers).
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// The record stored under `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// Stores `record` unless its key exists; `false` when it did.
    async fn put_if_absent(&self, record: IdempotencyRecord) -> Result<bool, StoreError>;
}

/// What claiming a side effect's marker found (see [`EffectMarkers`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The marker is ours: do the effect, then complete or release the marker.
    Claimed,
    /// The effect was done already: do nothing.
    Completed,
    /// Another delivery of the same event is doing it right now: try again later.
    InProgress,
}

/// Markers that make a side effect happen once per event (the AWS Lambda Powertools idempotency
/// pattern): a marker is claimed `INPROGRESS` before the effect, with a lease; completed after it;
/// released when the effect failed. A claim whose lease ran out (its holder crashed) may be taken
/// over. Markers written by [`IdempotencyStore::put_if_absent`] count as completed.
#[async_trait]
pub trait EffectMarkers: Send + Sync {
    /// Claims `key` for `holder` until `lease_until` (epoch milliseconds): [`Claim::Claimed`] when
    /// there was no marker or an expired claim, else what the marker says. `expires_at` (epoch
    /// seconds) is when the store may forget the marker.
    async fn claim(
        &self,
        key: &str,
        holder: &str,
        now_ms: i64,
        lease_until_ms: i64,
        expires_at: i64,
    ) -> Result<Claim, StoreError>;

    /// Marks `key` completed with `response`, if `holder` still holds its claim; `false` when
    /// the claim was taken over (its lease had run out) and so the effect may have happened twice.
    async fn complete(
        &self,
        key: &str,
        holder: &str,
        response: Value,
        expires_at: i64,
    ) -> Result<bool, StoreError>;

    /// Gives `holder`'s claim on `key` up (the effect failed): the next delivery may claim it.
    async fn release(&self, key: &str, holder: &str) -> Result<(), StoreError>;
}

/// Why publishing failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// Some events were not accepted; they are named, in their original order.
    #[error("{} event(s) not published", failed_event_ids.len())]
    Partial {
        /// The events that were not published.
        failed_event_ids: Vec<String>,
    },
    /// The bus is out of reach: nothing was published.
    #[error("event bus unavailable: {0}")]
    Unavailable(String),
}

/// Publishes stored events to the event bus.
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publishes all of `events` or reports which were not.
    async fn publish(&self, events: &[StoredEvent]) -> Result<(), PublishError>;
}

/// A stream record that can never be processed (poison: unknown event type or schema version,
/// missing fields), as a stream reader sets it aside so that the records after it can go on:
/// everything needed to look at it, fix the cause and replay it. The image may hold personal data,
/// so it goes to the dead-letter queue only, never to the logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoisonRecord {
    /// The reader that set it aside (`event-publisher`, `projector`).
    pub consumer: String,
    /// Why it cannot be processed.
    pub reason: String,
    /// The stream (`eventSourceARN`: the table's ARN and the stream's label).
    pub event_source_arn: String,
    /// Its sequence number in the stream.
    pub sequence_number: String,
    /// `INSERT` (the only records that carry events).
    pub event_name: String,
    /// The item's key, as DynamoDB JSON.
    pub keys: Value,
    /// The whole `NewImage` as the stream delivered it, as DynamoDB JSON.
    pub new_image: Value,
}

/// Why a poison record was not set aside: retryable, the record stays in the stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("poison record not dead-lettered: {0}")]
pub struct DeadLetterError(pub String);

/// Where stream readers set poison records aside.
#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// Keeps `record` for a human; once this returns `Ok`, the reader may move past it.
    async fn dead_letter(&self, record: &PoisonRecord) -> Result<(), DeadLetterError>;
}

/// A message to a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The event the customer hears about (a message attribute).
    pub event_type: String,
    /// The customer (a message attribute).
    pub customer_id: String,
    /// The event that caused it: the deduplication key.
    pub event_id: String,
    /// Subject line.
    pub subject: String,
    /// Body.
    pub message: String,
}

/// Why a notification was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("notification not sent: {0}")]
pub struct NotifyError(pub String);

/// Tells customers what happened.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Sends one notification.
    async fn notify(&self, notification: &Notification) -> Result<(), NotifyError>;
}

/// Where time comes from, so that tests are exact.
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// Bounded exponential backoff for retries that end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// How many attempts in all (the first included).
    pub max_attempts: u32,
    /// The wait before the second attempt; doubled each time.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Backoff {
    /// The wait after attempt `attempt` (1-based) failed.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let backoff = Backoff {
            max_attempts: 5,
            initial: Duration::from_millis(10),
            max: Duration::from_millis(50),
        };
        let delays: Vec<_> = (1..=5).map(|a| backoff.delay(a).as_millis()).collect();
        assert_eq!(delays, [10, 20, 40, 50, 50]);
    }

    #[test]
    fn only_transient_store_errors_are_retryable() {
        assert!(StoreError::Unavailable("timeout".into()).is_retryable());
        assert!(!StoreError::DuplicateRequest { key: "k".into() }.is_retryable());
        assert!(!StoreError::InvalidAppend("x".into()).is_retryable());
    }
}
