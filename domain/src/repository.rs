//! Running a command against an aggregate: load its stream, decide, append — retried a bounded
//! number of times when a concurrent writer moved the stream on in between.

use tracing::{debug, warn};

use crate::envelope::{EventContext, StoredEvent};
use crate::ids::StreamId;
use crate::ports::{AppendRequest, EventStore, IdempotencyRecord, StoreError};
use crate::{Aggregate, DomainError};

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
        match decide_and_append(
            store,
            stream_id,
            loaded,
            command,
            context,
            idempotency.clone(),
        )
        .await
        {
            Err(CommandError::Store(StoreError::Conflict { .. })) if attempt < max_attempts => {
                warn!(stream_id = %stream_id, attempt, "version conflict, deciding again");
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// [`execute`] for a stream the caller has just named (a freshly generated id, so it holds no
/// events): decides against the empty aggregate and appends at version 0 without reading the
/// stream first — one store call instead of two. Should the stream exist after all (the append
/// conflicts), it falls back to [`execute`], which loads it and decides again.
pub async fn execute_new<A: Aggregate>(
    store: &dyn EventStore,
    stream_id: &StreamId,
    command: &A::Command,
    context: &EventContext,
    idempotency: Option<IdempotencyRecord>,
    max_attempts: u32,
) -> Result<Vec<StoredEvent>, CommandError> {
    let empty = Loaded {
        state: A::default(),
        version: 0,
    };
    match decide_and_append(
        store,
        stream_id,
        empty,
        command,
        context,
        idempotency.clone(),
    )
    .await
    {
        Err(CommandError::Store(StoreError::Conflict { .. })) => {
            warn!(stream_id = %stream_id, "the new stream has events already; loading it");
            execute::<A>(
                store,
                stream_id,
                command,
                context,
                idempotency,
                max_attempts,
            )
            .await
        }
        other => other,
    }
}

/// Decides `command` on `loaded` and appends what it decided at `loaded.version`.
async fn decide_and_append<A: Aggregate>(
    store: &dyn EventStore,
    stream_id: &StreamId,
    loaded: Loaded<A>,
    command: &A::Command,
    context: &EventContext,
    idempotency: Option<IdempotencyRecord>,
) -> Result<Vec<StoredEvent>, CommandError> {
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
        idempotency,
    };
    store.append(request).await?;
    // Stored: the facts they record happened (a repeat or a refusal stores, and counts, nothing).
    crate::telemetry::events_stored(&stored);
    Ok(stored)
}
