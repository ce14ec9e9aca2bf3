//! Running a command against an aggregate: load its stream, decide, append — retried a bounded
//! number of times when a concurrent writer moved the stream on in between.

use tracing::{debug, warn};

use crate::domain::{Aggregate, DomainError};
use crate::envelope::{EventContext, StoredEvent};
use crate::ids::StreamId;
use crate::ports::{AppendRequest, EventStore, IdempotencyRecord, StoreError};

/// An aggregate as loaded from its stream.
#[derive(Debug, Clone)]
pub struct Loaded<A> {
    /// The state after every stored event.
    pub state: A,
    /// The stream's version (0 when it has no events).
    pub version: u64,
}

/// Why a command did not take effect.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    /// The domain refused it.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The store refused or failed (after the retries, for conflicts).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Loads the aggregate of `stream_id`: every event upcast, decoded and folded.
pub async fn load<A: Aggregate>(
    store: &dyn EventStore,
    stream_id: &StreamId,
) -> Result<Loaded<A>, StoreError> {
    let stored = store.load(stream_id).await?;
    let mut state = A::default();
    let mut version = 0;
    for event in &stored {
        let decoded = event
            .decode::<A::Event>()
            .map_err(|source| StoreError::Corrupt {
                stream_id: stream_id.clone(),
                version: event.version,
                source,
            })?;
        state = state.evolve(&decoded);
        version = event.version;
    }
    Ok(Loaded { state, version })
}

/// Load → decide → append, up to `max_attempts` times while appends lose version races.
/// Returns the stored events (none when the command changed nothing, e.g. a repeated reaction).
pub async fn execute<A: Aggregate>(
    store: &dyn EventStore,
    stream_id: &StreamId,
    command: &A::Command,
    context: &EventContext,
    idempotency: Option<IdempotencyRecord>,
    max_attempts: u32,
) -> Result<Vec<StoredEvent>, CommandError> {
    let mut attempt = 1;
    loop {
        let loaded = load::<A>(store, stream_id).await?;
        let events = loaded.state.decide(command)?;
        if events.is_empty() {
            debug!(stream_id = %stream_id, "command decided no new events");
            return Ok(Vec::new());
        }
        let stored = StoredEvent::stamp(stream_id, loaded.version, &events, context);
        let request = AppendRequest {
            stream_id: stream_id.clone(),
            expected_version: loaded.version,
            events: stored.clone(),
            idempotency: idempotency.clone(),
        };
        match store.append(request).await {
            Ok(()) => return Ok(stored),
            Err(StoreError::Conflict { .. }) if attempt < max_attempts => {
                warn!(stream_id = %stream_id, attempt, "version conflict, deciding again");
                attempt += 1;
            }
            Err(error) => return Err(error.into()),
        }
    }
}
