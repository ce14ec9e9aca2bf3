//! In-memory adapters with the same semantics as the real ones (optimistic concurrency, the
//! idempotency record in the same all-or-nothing append, upcast on load), for unit and handler
//! tests. They can be told to fail, to test what a handler does when a dependency is down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::validate_append;
use crate::envelope::StoredEvent;
use crate::ids::StreamId;
use crate::ports::{
    AppendRequest, EventPublisher, EventStore, IdempotencyRecord, IdempotencyStore, Notification,
    Notifier, NotifyError, PublishError, StoreError,
};
use crate::upcasting::upcast;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Counts down injected failures.
#[derive(Debug, Default)]
struct Faults(Mutex<u32>);

impl Faults {
    fn set(&self, count: u32) {
        *lock(&self.0) = count;
    }
    fn take(&self) -> bool {
        let mut left = lock(&self.0);
        if *left > 0 {
            *left -= 1;
            true
        } else {
            false
        }
    }
}

/// Idempotency records in a map.
#[derive(Debug, Clone, Default)]
pub struct InMemoryIdempotencyStore {
    records: Arc<Mutex<HashMap<String, IdempotencyRecord>>>,
}

#[async_trait]
impl IdempotencyStore for InMemoryIdempotencyStore {
    async fn get(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(lock(&self.records).get(key).cloned())
    }

    async fn put_if_absent(&self, record: IdempotencyRecord) -> Result<bool, StoreError> {
        let mut records = lock(&self.records);
        if records.contains_key(&record.key) {
            return Ok(false);
        }
        records.insert(record.key.clone(), record);
        Ok(true)
    }
}

#[derive(Debug, Default)]
struct Streams {
    by_stream: HashMap<StreamId, Vec<StoredEvent>>,
    /// Every event in append order: what a DynamoDB stream would show.
    log: Vec<StoredEvent>,
}

/// Event streams in a map. Clones share the same streams.
#[derive(Debug, Clone, Default)]
pub struct InMemoryEventStore {
    streams: Arc<Mutex<Streams>>,
    idempotency: InMemoryIdempotencyStore,
    append_faults: Arc<Faults>,
}

impl InMemoryEventStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The idempotency store its appends write to (shared, as the real tables are).
    pub fn idempotency(&self) -> InMemoryIdempotencyStore {
        self.idempotency.clone()
    }

    /// Makes the next `count` appends fail as if the database were unreachable.
    pub fn fail_next_appends(&self, count: u32) {
        self.append_faults.set(count);
    }

    /// Every stored event in append order (the events table's change stream).
    pub fn all_events(&self) -> Vec<StoredEvent> {
        lock(&self.streams).log.clone()
    }

    /// Stores an event as it is, bypassing every check: for seeding old schema versions in tests.
    pub fn insert_raw(&self, event: StoredEvent) {
        let mut streams = lock(&self.streams);
        streams.log.push(event.clone());
        streams
            .by_stream
            .entry(event.stream_id.clone())
            .or_default()
            .push(event);
    }
}

#[async_trait]
impl EventStore for InMemoryEventStore {
    async fn append(&self, request: AppendRequest) -> Result<(), StoreError> {
        validate_append(&request)?;
        if self.append_faults.take() {
            return Err(StoreError::Unavailable("injected fault".into()));
        }
        let mut streams = lock(&self.streams);
        let mut records = lock(&self.idempotency.records);
        if let Some(record) = &request.idempotency
            && records.contains_key(&record.key)
        {
            return Err(StoreError::DuplicateRequest {
                key: record.key.clone(),
            });
        }
        let current = streams
            .by_stream
            .get(&request.stream_id)
            .map_or(0, |s| s.len() as u64);
        if current != request.expected_version {
            return Err(StoreError::Conflict {
                stream_id: request.stream_id,
                expected_version: request.expected_version,
            });
        }
        if let Some(record) = request.idempotency {
            records.insert(record.key.clone(), record);
        }
        streams.log.extend(request.events.iter().cloned());
        streams
            .by_stream
            .entry(request.stream_id)
            .or_default()
            .extend(request.events);
        Ok(())
    }

    async fn load(&self, stream_id: &StreamId) -> Result<Vec<StoredEvent>, StoreError> {
        let stored = lock(&self.streams)
            .by_stream
            .get(stream_id)
            .cloned()
            .unwrap_or_default();
        stored
            .into_iter()
            .map(|event| {
                let version = event.version;
                upcast(event).map_err(|source| StoreError::Corrupt {
                    stream_id: stream_id.clone(),
                    version,
                    source,
                })
            })
            .collect()
    }
}

/// Records what was published; can be told to reject events.
#[derive(Debug, Clone, Default)]
pub struct InMemoryPublisher {
    published: Arc<Mutex<Vec<StoredEvent>>>,
    faults: Arc<Faults>,
}

impl InMemoryPublisher {
    /// Everything published so far, in order.
    pub fn published(&self) -> Vec<StoredEvent> {
        lock(&self.published).clone()
    }

    /// Makes the next `count` publish calls fail as if the bus were unreachable.
    pub fn fail_next(&self, count: u32) {
        self.faults.set(count);
    }
}

#[async_trait]
impl EventPublisher for InMemoryPublisher {
    async fn publish(&self, events: &[StoredEvent]) -> Result<(), PublishError> {
        if self.faults.take() {
            return Err(PublishError::Unavailable("injected fault".into()));
        }
        lock(&self.published).extend_from_slice(events);
        Ok(())
    }
}

/// Records the notifications sent; can be told to fail.
#[derive(Debug, Clone, Default)]
pub struct InMemoryNotifier {
    sent: Arc<Mutex<Vec<Notification>>>,
    faults: Arc<Faults>,
}

impl InMemoryNotifier {
    /// Every notification sent so far, in order.
    pub fn sent(&self) -> Vec<Notification> {
        lock(&self.sent).clone()
    }

    /// Makes the next `count` sends fail.
    pub fn fail_next(&self, count: u32) {
        self.faults.set(count);
    }
}

#[async_trait]
impl Notifier for InMemoryNotifier {
    async fn notify(&self, notification: &Notification) -> Result<(), NotifyError> {
        if self.faults.take() {
            return Err(NotifyError("injected fault".into()));
        }
        lock(&self.sent).push(notification.clone());
        Ok(())
    }
}
