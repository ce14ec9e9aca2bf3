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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    use crate::adapters::memory::InMemoryEventStore;
    use crate::domain::order::{LineItem, Order, OrderCommand, PlaceOrder};
    use crate::envelope::{Actor, CorrelationId};
    use crate::ids::{CustomerId, OrderId, Sku};
    use crate::money::Currency;

    fn place_order(customer: &str) -> PlaceOrder {
        PlaceOrder {
            order_id: OrderId::parse("o-new").unwrap(),
            customer_id: CustomerId::parse(customer).unwrap(),
            items: vec![LineItem {
                sku: Sku::parse("TEA").unwrap(),
                quantity: 1.try_into().unwrap(),
                unit_price: 1_250.try_into().unwrap(),
            }],
            currency: Currency::EUR,
            delivery_address: crate::address::sample(),
        }
    }

    fn customer_context(customer: &str) -> EventContext {
        EventContext {
            correlation_id: CorrelationId::parse("req-1").unwrap(),
            causation_id: "req-1".into(),
            actor: Actor::customer(&CustomerId::parse(customer).unwrap()),
            occurred_at: Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
        }
    }

    #[tokio::test]
    async fn a_new_stream_is_appended_at_version_one_without_a_read() {
        let store = InMemoryEventStore::new();
        let place = place_order("cust-1");
        let stream = StreamId::order(&place.order_id);
        let context = customer_context("cust-1");
        let stored = execute_new::<Order>(
            &store,
            &stream,
            &OrderCommand::Place(place),
            &context,
            None,
            3,
        )
        .await
        .unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].version, 1);
        assert_eq!(store.all_events(), stored);
    }

    #[tokio::test]
    async fn a_new_stream_that_exists_after_all_is_loaded_and_decided_again() {
        let store = InMemoryEventStore::new();
        let place = place_order("cust-1");
        let stream = StreamId::order(&place.order_id);
        let context = customer_context("cust-1");
        let command = OrderCommand::Place(place);
        execute::<Order>(&store, &stream, &command, &context, None, 3)
            .await
            .unwrap();
        // Placing the same order again: the append at version 0 conflicts, the fallback loads
        // the stream and the aggregate decides (a repeated place changes nothing or is refused).
        let again = execute_new::<Order>(&store, &stream, &command, &context, None, 3).await;
        assert!(
            !matches!(again, Err(CommandError::Store(StoreError::Conflict { .. }))),
            "the conflict is not leaked: {again:?}"
        );
        assert_eq!(store.all_events().len(), 1, "nothing stored twice");
    }
}
