//! Projecting stored events into the order views (docs/architecture.md, "Storage" and "Delivery
//! semantics"): the core the `projector` function runs for every record of the events table's
//! stream.
//!
//! At-least-once in, exactly-once effect out: a record whose version the view holds already is a
//! duplicate and writes nothing; a record that arrives after a gap in its stream first brings in
//! the missing events from the event store; a delivery or coupon event that overtakes its order's
//! `OrderPlaced` first brings in the order stream, so the view is complete either way. Each view
//! is written with a condition on what was read; a concurrent writer makes this projection read
//! again and apply again, a bounded number of times.

use tracing::{debug, instrument, warn};

use crate::envelope::StoredEvent;
use crate::events::DecodeError;
use crate::ids::{OrderId, StreamId};
use crate::ports::{EventStore, StoreError};
use crate::read_model::{OrderView, OrderViews, ViewError, order_id_of};

/// What projecting one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projected {
    /// The view now includes the event (and any events that had been missing before it).
    Applied,
    /// The view held the event already: nothing was written.
    Duplicate,
}

/// Why an event could not be projected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProjectionError {
    /// The event itself cannot be decoded: it never will be. Not retryable — to the failure
    /// destination with it.
    #[error("poison event: {0}")]
    Poison(#[source] DecodeError),
    /// The event store failed (or holds an unreadable event) while healing the view.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The views failed, or the view kept changing concurrently beyond the attempts allowed.
    #[error(transparent)]
    View(#[from] ViewError),
    /// The event store does not hold the events before this one yet: retry later.
    #[error("{stream_id} is missing versions {from} to {to} in the event store")]
    MissingEvents {
        /// The stream with the gap.
        stream_id: StreamId,
        /// The first missing version.
        from: u64,
        /// The last missing version.
        to: u64,
    },
}

impl ProjectionError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Poison(_) => false,
            Self::Store(error) => error.is_retryable(),
            // Writing the same too-large view again fails again: dead-letter the record.
            Self::View(ViewError::InvalidCursor | ViewError::TooLarge(_)) => false,
            Self::View(ViewError::Conflict(_) | ViewError::Unavailable(_)) => true,
            Self::MissingEvents { .. } => true,
        }
    }
}

/// Projects one stored event into its order's view: read, heal, apply, conditional write —
/// again on a concurrent change, up to `max_attempts` times in all (at least once). At most one
/// write per attempt, none for a duplicate.
#[instrument(skip_all, fields(
    event_id = %event.event_id,
    stream_id = %event.stream_id,
    version = event.version,
    correlation_id = %event.correlation_id,
))]
pub async fn project_order_view(
    store: &dyn EventStore,
    views: &dyn OrderViews,
    event: &StoredEvent,
    max_attempts: u32,
) -> Result<Projected, ProjectionError> {
    let order_id = order_id_of(event).map_err(ProjectionError::Poison)?;
    project_order_view_events(store, views, &order_id, &[event], max_attempts).await
}

/// Projects several stored events of one order's view (in the order given: a stream batch's) with
/// one read and at most one write per attempt: each event the view holds already is skipped, gaps
/// are healed from the event store, a view without its `OrderPlaced` brings the order stream in
/// first — as [`project_order_view`] does for one event. `Duplicate` when every event was held.
#[instrument(skip_all, fields(%order_id, events = events.len()))]
pub async fn project_order_view_events(
    store: &dyn EventStore,
    views: &dyn OrderViews,
    order_id: &OrderId,
    events: &[&StoredEvent],
    max_attempts: u32,
) -> Result<Projected, ProjectionError> {
    let order_stream = StreamId::order(order_id);
    let mut attempt = 1;
    loop {
        let previous = views.get(order_id).await?;
        let mut view = previous
            .clone()
            .unwrap_or_else(|| OrderView::new(order_id.clone()));
        let mut changed = false;
        for event in events {
            let applied = view.version_of(&event.stream_id);
            if event.version <= applied {
                debug!(event_id = %event.event_id, applied, "duplicate: the view holds this event already");
                continue;
            }
            if applied + 1 < event.version {
                debug!(event_id = %event.event_id, applied, "gap: loading the missing events");
                catch_up(store, &mut view, &event.stream_id, event.version - 1).await?;
            }
            if view.status.is_none() && event.stream_id != order_stream {
                debug!(event_id = %event.event_id, "no OrderPlaced yet: loading the order stream");
                catch_up(store, &mut view, &order_stream, u64::MAX).await?;
            }
            view.apply(event).map_err(ProjectionError::Poison)?;
            changed = true;
        }
        if !changed {
            return Ok(Projected::Duplicate);
        }
        match views.save(&view, previous.as_ref()).await {
            Ok(()) => return Ok(Projected::Applied),
            Err(ViewError::Conflict(_)) if attempt < max_attempts => {
                warn!(attempt, "the view changed concurrently: reading it again");
                attempt += 1;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Applies the stored events of `stream_id` up to version `until` that `view` lacks (reading only
/// those, not the stream from its start); fails if the store cannot close the gap up to `until`
/// (when `until` is bounded).
async fn catch_up(
    store: &dyn EventStore,
    view: &mut OrderView,
    stream_id: &StreamId,
    until: u64,
) -> Result<(), ProjectionError> {
    let applied = view.version_of(stream_id);
    let missing = u32::try_from(until.saturating_sub(applied)).unwrap_or(u32::MAX);
    let history = store.load_from(stream_id, applied, missing).await?;
    for stored in history.iter().filter(|e| e.version <= until) {
        view.apply(stored).map_err(|source| StoreError::Corrupt {
            stream_id: stream_id.clone(),
            version: stored.version,
            source,
        })?;
    }
    let reached = view.version_of(stream_id);
    if until != u64::MAX && reached < until {
        return Err(ProjectionError::MissingEvents {
            stream_id: stream_id.clone(),
            from: reached + 1,
            to: until,
        });
    }
    Ok(())
}
