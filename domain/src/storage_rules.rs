//! What every adapter of the storage ports demands, whatever the technology: the checks an append
//! must pass before any I/O, the customer-list sort key of a view, page sizes and the opaque
//! pagination cursor. The DynamoDB adapters and the in-memory ones (testkit) both use these, so
//! they refuse and page alike.

use std::collections::BTreeMap;

use chrono::SecondsFormat;

use crate::ports::{AppendRequest, MAX_EVENTS_PER_APPEND, StoreError};
use crate::read_model::{MAX_PAGE_SIZE, OrderView, ViewError};

/// Checks what every event store demands of an append, before any I/O.
pub fn validate_append(request: &AppendRequest) -> Result<(), StoreError> {
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

/// The sort key of a placed order in its customer's list: `<placed_at, RFC 3339 millis>#<order_id>`,
/// so that text order is time order (ties broken by order id). `None` until the order is placed.
pub fn placed_key(view: &OrderView) -> Option<String> {
    match (&view.customer_id, view.placed_at) {
        (Some(_), Some(placed_at)) => Some(format!(
            "{}#{}",
            placed_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            view.order_id
        )),
        _ => None,
    }
}

/// A page size within 1 to [`MAX_PAGE_SIZE`].
pub fn page_size(limit: u32) -> u32 {
    limit.clamp(1, MAX_PAGE_SIZE)
}

/// Pagination cursors: where the next page starts, as an opaque text (hex of a JSON object of
/// strings) that callers hand back unchanged. Public for the readers that page over several
/// streams themselves (an order's history).
pub mod cursor {
    use super::{BTreeMap, ViewError};

    /// Encodes a position.
    pub fn encode(position: &BTreeMap<String, String>) -> String {
        let json = serde_json::to_string(position).unwrap_or_default();
        json.bytes().map(|b| format!("{b:02x}")).collect()
    }

    /// Decodes a cursor made by [`encode`]; anything else is [`ViewError::InvalidCursor`].
    pub fn decode(cursor: &str) -> Result<BTreeMap<String, String>, ViewError> {
        if cursor.is_empty() || !cursor.len().is_multiple_of(2) || cursor.len() > 4_096 {
            return Err(ViewError::InvalidCursor);
        }
        let bytes = (0..cursor.len())
            .step_by(2)
            .map(|i| {
                cursor
                    .get(i..i + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                    .ok_or(ViewError::InvalidCursor)
            })
            .collect::<Result<Vec<u8>, _>>()?;
        serde_json::from_slice(&bytes).map_err(|_| ViewError::InvalidCursor)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_cursor_round_trips_and_garbage_is_refused() {
            let position = BTreeMap::from([
                ("customer_id".to_owned(), "c1".to_owned()),
                (
                    "placed_key".to_owned(),
                    "2026-11-22T10:00:00.000Z#o1".to_owned(),
                ),
            ]);
            let cursor = encode(&position);
            assert!(cursor.bytes().all(|b| b.is_ascii_hexdigit()));
            assert_eq!(decode(&cursor), Ok(position));
            for bad in ["", "abc", "zz", "7b", "5b5d", "e29c93"] {
                assert_eq!(decode(bad), Err(ViewError::InvalidCursor), "{bad:?}");
            }
        }
    }
}
