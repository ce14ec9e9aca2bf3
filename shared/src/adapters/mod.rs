//! Adapters: the ports implemented by technology. SDK types stay inside these modules.

pub mod clock;
pub mod dynamo;
pub mod memory;

use crate::ports::{AppendRequest, MAX_EVENTS_PER_APPEND, StoreError};

/// Checks what every event store demands of an append, before any I/O.
pub(crate) fn validate_append(request: &AppendRequest) -> Result<(), StoreError> {
    if request.events.is_empty() {
        return Err(StoreError::InvalidAppend("no events to append".into()));
    }
    if request.events.len() > MAX_EVENTS_PER_APPEND {
        return Err(StoreError::InvalidAppend(format!(
            "{} events in one append; at most {MAX_EVENTS_PER_APPEND}",
            request.events.len()
        )));
    }
    for (offset, event) in (1u64..).zip(&request.events) {
        if event.stream_id != request.stream_id {
            return Err(StoreError::InvalidAppend(format!(
                "event {} belongs to {}, not {}",
                event.event_id, event.stream_id, request.stream_id
            )));
        }
        if event.version != request.expected_version + offset {
            return Err(StoreError::InvalidAppend(format!(
                "event {} has version {}, expected {}",
                event.event_id,
                event.version,
                request.expected_version + offset
            )));
        }
    }
    Ok(())
}
