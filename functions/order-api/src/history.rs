//! An order's history page by page: the events of its order stream, its delivery's and its
//! coupons' (one coupon stream per delay, at most [`MAX_DELAYS`]), upcast, merged oldest first by
//! `occurred_at`, then stream id, then version — the order in which the whole history was always
//! returned (each stream's events are in version order, and so in time order).
//!
//! A page reads each stream from where the previous page stopped, at most one event more than the
//! page holds ([`EventStore::load_from`]), so showing 100 events never loads 10,000. Where a page
//! stopped is a [`Position`]: the last version shown of each stream, handed to the client as an
//! opaque cursor. Events appended after a page was read show on a later page; none is shown twice
//! or skipped.

use std::collections::{BTreeMap, VecDeque};

use domain::delivery::MAX_DELAYS;
use domain::envelope::StoredEvent;
use domain::ids::{CouponId, DeliveryId, OrderId, StreamId};
use domain::ports::{EventStore, StoreError};
use domain::storage_rules::cursor;

/// The streams of an order's history: its own, its delivery's, and a coupon stream per delay.
pub fn streams(order_id: &OrderId) -> Vec<StreamId> {
    let delivery_id = DeliveryId::for_order(order_id);
    let mut streams = vec![StreamId::order(order_id), StreamId::delivery(&delivery_id)];
    streams.extend(
        (1..=MAX_DELAYS).map(|delay| StreamId::coupon(CouponId::for_delay(&delivery_id, delay))),
    );
    streams
}

/// Where a page of an order's history starts: the last version shown of each of its streams
/// (absent: none shown yet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position(BTreeMap<StreamId, u64>);

/// A cursor that this order's history did not make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidCursor;

impl Position {
    /// The start of the history.
    pub fn start() -> Self {
        Self::default()
    }

    /// The last version shown of `stream_id` (0: none).
    pub fn version_of(&self, stream_id: &StreamId) -> u64 {
        self.0.get(stream_id).copied().unwrap_or(0)
    }

    /// The opaque cursor of this position.
    pub fn to_cursor(&self) -> String {
        let position = self
            .0
            .iter()
            .map(|(stream, version)| (stream.to_string(), version.to_string()))
            .collect();
        cursor::encode(&position)
    }

    /// The position a cursor stands for, provided it was made for `order_id`'s history: it names
    /// only that order's streams, each with a version.
    pub fn from_cursor(raw: &str, order_id: &OrderId) -> Result<Self, InvalidCursor> {
        let decoded = cursor::decode(raw).map_err(|_| InvalidCursor)?;
        if decoded.is_empty() {
            return Err(InvalidCursor);
        }
        let known = streams(order_id);
        decoded
            .into_iter()
            .map(|(stream, version)| {
                let stream = known
                    .iter()
                    .find(|known| known.as_str() == stream)
                    .ok_or(InvalidCursor)?;
                let version = version.parse::<u64>().map_err(|_| InvalidCursor)?;
                Ok((stream.clone(), version))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

/// One page of an order's history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    /// The page's events, in history order.
    pub events: Vec<StoredEvent>,
    /// Where the next page starts, if there are more events.
    pub next: Option<Position>,
    /// The first event of the order stream (its `OrderPlaced`), whichever page this is: who the
    /// order belongs to. `None` when the order stream is empty: there is no order (and then the
    /// page is empty too).
    pub opening: Option<StoredEvent>,
}

/// The page of `order_id`'s history after `from`, at most `limit` events. Reads each stream from
/// its position, at most `limit + 1` events of it (the one more tells whether there is a next
/// page); an order that does not exist costs one read.
pub async fn page(
    store: &dyn EventStore,
    order_id: &OrderId,
    from: &Position,
    limit: u32,
) -> Result<HistoryPage, StoreError> {
    let streams = streams(order_id);
    let read = limit.saturating_add(1);
    let mut batches: Vec<VecDeque<StoredEvent>> = Vec::with_capacity(streams.len());
    let mut opening = None;
    for stream in &streams {
        let after = from.version_of(stream);
        let batch = store.load_from(stream, after, read).await?;
        if batches.is_empty() {
            // The order stream comes first: it says whether there is an order at all.
            opening = if after == 0 {
                batch.first().cloned()
            } else {
                store.load_from(stream, 0, 1).await?.pop()
            };
            if opening.is_none() {
                return Ok(HistoryPage {
                    events: Vec::new(),
                    next: None,
                    opening,
                });
            }
        }
        batches.push(batch.into());
    }
    let mut position = from.clone();
    let mut events = Vec::new();
    while events.len() < limit as usize {
        let earliest = batches
            .iter()
            .enumerate()
            .filter_map(|(i, batch)| batch.front().map(|event| (i, event)))
            .min_by(|(_, a), (_, b)| history_key(a).cmp(&history_key(b)))
            .map(|(i, _)| i);
        let Some(event) = earliest.and_then(|i| batches[i].pop_front()) else {
            break;
        };
        position.0.insert(event.stream_id.clone(), event.version);
        events.push(event);
    }
    let more = batches.iter().any(|batch| !batch.is_empty());
    Ok(HistoryPage {
        events,
        next: more.then_some(position),
        opening,
    })
}

fn history_key(event: &StoredEvent) -> (chrono::DateTime<chrono::Utc>, &str, u64) {
    (event.occurred_at, event.stream_id.as_str(), event.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o1() -> OrderId {
        OrderId::parse("o1").unwrap()
    }

    #[test]
    fn the_history_spans_the_order_its_delivery_and_a_coupon_stream_per_delay() {
        let names: Vec<String> = streams(&o1()).iter().map(ToString::to_string).collect();
        assert_eq!(names.len(), 2 + MAX_DELAYS as usize);
        assert_eq!(names[..3], ["order#o1", "delivery#d-o1", "coupon#c-d-o1-1"]);
    }

    #[test]
    fn a_position_round_trips_through_its_cursor_for_its_own_order_only() {
        let mut position = Position::start();
        position.0.insert(StreamId::new("order", "o1"), 3);
        position.0.insert(StreamId::new("delivery", "d-o1"), 7);
        let cursor = position.to_cursor();
        assert!(cursor.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(Position::from_cursor(&cursor, &o1()), Ok(position));
        let o2 = OrderId::parse("o2").unwrap();
        assert_eq!(Position::from_cursor(&cursor, &o2), Err(InvalidCursor));

        let encode = |pairs: &[(&str, &str)]| {
            cursor::encode(
                &pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            )
        };
        for bad in [
            "not-hex".to_owned(),
            String::new(),
            encode(&[]),
            encode(&[("order#o1", "three")]),
            encode(&[("order#o1", "-1")]),
            encode(&[("coupon#c-d-o1-99", "1")]),
            encode(&[("customer_id", "c1")]),
        ] {
            assert_eq!(
                Position::from_cursor(&bad, &o1()),
                Err(InvalidCursor),
                "{bad}"
            );
        }
    }
}
