//! Read models (docs/architecture.md, "Storage"): the order view that `GET /orders/{id}` and
//! `GET /customers/{id}/orders` answer from, kept current by the projector from the events table's
//! stream.
//!
//! One view row per order gathers the events of every stream that concerns the order (its
//! `order#…` stream, its `delivery#…` stream and its coupons' `coupon#…` streams — every event
//! names its `order_id`). The row keeps the last applied version per stream in
//! [`OrderView::versions`], and is written with a condition on what was read, so duplicates and
//! replays are no-ops and nothing is applied twice.
//!
//! A view is bounded by construction, whatever the number of events (a DynamoDB item holds at
//! most 400 KB, and a view that cannot be written would block its stream shard): the timeline
//! keeps its first [`TIMELINE_HEAD`] and its latest [`TIMELINE_TAIL`] entries and counts the ones
//! left out between them ([`OrderView::timeline_omitted`]) — the full history is at
//! `GET /orders/{id}/events`; coupons are one per delay, at most [`MAX_DELAYS`]; and a view follows
//! one order stream, one delivery stream and at most [`MAX_DELAYS`] coupon streams (an event of
//! one stream more is refused as malformed, so its record is dead-lettered, not retried). Every
//! other field comes from a single event whose size the domain bounds (at most
//! [`crate::order::MAX_ITEMS`] lines, reasons of at most
//! [`crate::delivery::MAX_REASON_LEN`] characters).

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::coupon::CouponEvent;
use crate::delivery::{DeliveryEvent, DeliveryStatus, MAX_DELAYS};
use crate::envelope::StoredEvent;
use crate::events::{DecodeError, DomainEvent};
use crate::ids::{CouponId, CustomerId, DeliveryId, OrderId, StreamId};
use crate::money::{Cents, Currency, Money};
use crate::order::{CancellationReason, LineItem, OrderEvent, OrderStatus};

/// Most orders one page of a customer's list may hold (and most events one page of an order's
/// history).
pub const MAX_PAGE_SIZE: u32 = 100;

/// How many of the oldest timeline entries a view keeps (how the order began).
pub const TIMELINE_HEAD: usize = 10;

/// How many of the latest timeline entries a view keeps (where the order is now).
pub const TIMELINE_TAIL: usize = 40;

/// Most timeline entries a view holds: an order that lives by the rules has about twenty events
/// (placed, shipped, completed or cancelled; scheduled, dispatched, up to [`MAX_DELAYS`] delays,
/// a refused cancellation, the outcome; a coupon per delay), so nothing real is ever left out.
pub const MAX_TIMELINE: usize = TIMELINE_HEAD + TIMELINE_TAIL;

/// What a customer (or support) sees of one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    /// The order.
    pub order_id: OrderId,
    /// Who ordered (`None` until `OrderPlaced` is applied — a delivery event may come first).
    pub customer_id: Option<CustomerId>,
    /// Where the order is (`None` until `OrderPlaced` is applied).
    pub status: Option<OrderStatus>,
    /// When it was placed (the `OrderPlaced` event's `occurred_at`).
    pub placed_at: Option<DateTime<Utc>>,
    /// What was ordered.
    pub items: Vec<LineItem>,
    /// The sum of the lines, in minor units.
    pub total: Option<Cents>,
    /// The currency of every amount.
    pub currency: Option<Currency>,
    /// Why it was cancelled, in words, if it was.
    pub cancellation_reason: Option<String>,
    /// Its delivery, once scheduled.
    pub delivery: Option<DeliveryView>,
    /// Compensation coupons issued for delays, by delay: one per delay, so at most
    /// [`MAX_DELAYS`] (those of the earliest delays, should more ever be issued).
    pub coupons: Vec<CouponView>,
    /// The applied events, oldest first: the first [`TIMELINE_HEAD`] and the latest
    /// [`TIMELINE_TAIL`] of them; the ones between are counted in
    /// [`timeline_omitted`](Self::timeline_omitted). The full history is at
    /// `GET /orders/{id}/events`.
    pub timeline: Vec<TimelineEntry>,
    /// How many applied events the timeline leaves out (between its head and its tail).
    /// Absent from views stored before the timeline was bounded: 0.
    #[serde(default)]
    pub timeline_omitted: u64,
    /// The last applied version per stream id (`order#…`, `delivery#…`, `coupon#…`).
    pub versions: BTreeMap<String, u64>,
}

/// The delivery part of an order view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryView {
    /// The delivery.
    pub delivery_id: DeliveryId,
    /// Where it is.
    pub status: DeliveryStatus,
    /// The promise made when it was scheduled.
    pub promised_by: DateTime<Utc>,
    /// The current estimate (the promise, or the latest delay's new ETA).
    pub eta: DateTime<Utc>,
    /// How many delays were reported.
    pub delays: u32,
}

/// A coupon on an order view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponView {
    /// The coupon.
    pub coupon_id: CouponId,
    /// Its discount.
    pub discount_percent: u8,
    /// The delay it compensates (1, 2, …).
    pub delay_number: u32,
}

/// One line of an order's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// The event.
    pub event_id: String,
    /// Its type.
    pub event_type: String,
    /// Its stream.
    pub stream_id: String,
    /// Its version in that stream.
    pub version: u64,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Who caused it.
    pub actor: String,
    /// What it means, in a few words (no addresses, no personal data).
    pub summary: String,
}

/// One page of a customer's orders, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderPage {
    /// The orders on this page.
    pub orders: Vec<OrderView>,
    /// Where the next page starts (opaque), if there is one.
    pub next_cursor: Option<String>,
}

/// Why the read model refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// The pagination cursor was not made by this store.
    #[error("invalid cursor")]
    InvalidCursor,
    /// The row changed since it was read: read again, apply again.
    #[error("view of order {0} changed concurrently")]
    Conflict(OrderId),
    /// The row is beyond what the storage holds in one item (DynamoDB: 400 KB). Not retryable:
    /// writing it again fails again, so dead-letter the record instead of blocking its shard.
    #[error("view of order {0} is too large to store")]
    TooLarge(OrderId),
    /// The storage service failed or is out of reach: retryable.
    #[error("read model unavailable: {0}")]
    Unavailable(String),
}

/// A delivery still on its way whose ETA has passed (from the delivery board).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverdueDelivery {
    /// The delivery.
    pub delivery_id: DeliveryId,
    /// Its order.
    pub order_id: OrderId,
    /// The ETA that has passed.
    pub eta: DateTime<Utc>,
}

impl OrderView {
    /// Whether the order's delivery is still on its way (scheduled or dispatched): what the
    /// delivery board lists.
    pub fn delivery_active(&self) -> bool {
        self.delivery.as_ref().is_some_and(|d| {
            matches!(
                d.status,
                DeliveryStatus::Scheduled | DeliveryStatus::Dispatched
            )
        })
    }
}

/// The delivery board (docs/architecture.md, "Storage"): deliveries on their way by ETA, read by
/// the overdue check.
#[async_trait]
pub trait DeliveryBoard: Send + Sync {
    /// Active deliveries whose ETA is before `now`, earliest ETA first, at most `limit`.
    async fn overdue(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OverdueDelivery>, ViewError>;
}

/// The order views.
#[async_trait]
pub trait OrderViews: Send + Sync {
    /// The view of one order, if any event of it was projected.
    async fn get(&self, order_id: &OrderId) -> Result<Option<OrderView>, ViewError>;

    /// A customer's orders, newest first; `limit` is 1 to [`MAX_PAGE_SIZE`].
    async fn list_for_customer(
        &self,
        customer_id: &CustomerId,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<OrderPage, ViewError>;

    /// Writes `view`, provided the stored row is still `previous` (compared by its
    /// [`OrderView::versions`]; `None`: no row exists). Otherwise [`ViewError::Conflict`].
    async fn save(&self, view: &OrderView, previous: Option<&OrderView>) -> Result<(), ViewError>;
}

impl OrderView {
    /// An empty view of `order_id`: nothing applied yet.
    pub fn new(order_id: OrderId) -> Self {
        Self {
            order_id,
            customer_id: None,
            status: None,
            placed_at: None,
            items: Vec::new(),
            total: None,
            currency: None,
            cancellation_reason: None,
            delivery: None,
            coupons: Vec::new(),
            timeline: Vec::new(),
            timeline_omitted: 0,
            versions: BTreeMap::new(),
        }
    }

    /// The last applied version of `stream_id` (0: none).
    pub fn version_of(&self, stream_id: &StreamId) -> u64 {
        self.versions.get(stream_id.as_str()).copied().unwrap_or(0)
    }

    /// Applies one stored event (upcast first). `Ok(false)` and no change when its stream is at
    /// its version or beyond already (a duplicate or a replay).
    ///
    /// Every field is a function of the set of applied events, not of the order in which streams
    /// interleave: each field is fed by one stream (applied in its own order), coupons are kept
    /// sorted, and the timeline is sorted by `occurred_at`, then stream and version.
    ///
    /// The timeline keeps its first [`TIMELINE_HEAD`] and its last [`TIMELINE_TAIL`] entries by
    /// that order: an entry that falls between them is dropped and counted. That is still a
    /// function of the set of applied events — adding an entry can only push another one away
    /// from the ends, never bring a dropped one back.
    ///
    /// Fails, changing nothing, when the event cannot be decoded, belongs to another order or
    /// opens one stream more than an order has (see [`max_streams`]).
    pub fn apply(&mut self, event: &StoredEvent) -> Result<bool, DecodeError> {
        let decoded = event.decode_any()?;
        let order_id = order_id(&decoded);
        if *order_id != self.order_id {
            return Err(DecodeError::Malformed {
                event_type: event.event_type.clone(),
                reason: format!(
                    "event of order {order_id} cannot apply to the view of order {}",
                    self.order_id
                ),
            });
        }
        if event.version <= self.version_of(&event.stream_id) {
            return Ok(false);
        }
        self.admit_stream(event)?;
        let summary = match decoded {
            DomainEvent::Order(e) => self.apply_order(e, event.occurred_at),
            DomainEvent::Delivery(e) => self.apply_delivery(e),
            DomainEvent::Coupon(e) => self.apply_coupon(e),
        };
        let entry = TimelineEntry {
            event_id: event.event_id.clone(),
            event_type: event.event_type.clone(),
            stream_id: event.stream_id.to_string(),
            version: event.version,
            occurred_at: event.occurred_at,
            actor: event.actor.as_str().to_owned(),
            summary,
        };
        let position = self
            .timeline
            .partition_point(|e| timeline_key(e) <= timeline_key(&entry));
        self.timeline.insert(position, entry);
        if self.timeline.len() > MAX_TIMELINE {
            // The head and the tail were complete before this entry: the one now between them
            // is the oldest entry past the head.
            self.timeline.remove(TIMELINE_HEAD);
            self.timeline_omitted += 1;
        }
        self.versions
            .insert(event.stream_id.to_string(), event.version);
        Ok(true)
    }

    /// Refuses the first event of a stream beyond what an order has (see [`max_streams`]), so
    /// [`versions`](Self::versions) stays bounded.
    fn admit_stream(&self, event: &StoredEvent) -> Result<(), DecodeError> {
        if self.versions.contains_key(event.stream_id.as_str()) {
            return Ok(());
        }
        let kind = event.stream_id.kind();
        let followed = self
            .versions
            .keys()
            .filter(|stream| stream.split_once('#').map(|(k, _)| k) == Some(kind))
            .count();
        let most = max_streams(kind);
        if followed < most {
            return Ok(());
        }
        Err(DecodeError::Malformed {
            event_type: event.event_type.clone(),
            reason: format!(
                "the view of order {} follows {followed} {kind} stream(s), the most an order has \
                 ({most}); {} is one more",
                self.order_id, event.stream_id
            ),
        })
    }

    fn apply_order(&mut self, event: OrderEvent, occurred_at: DateTime<Utc>) -> String {
        match event {
            OrderEvent::OrderPlaced(placed) => {
                let summary = format!(
                    "Order placed: {} line(s), total {}",
                    placed.items.len(),
                    Money {
                        amount: placed.total,
                        currency: placed.currency,
                    }
                );
                self.customer_id = Some(placed.customer_id);
                self.status = Some(OrderStatus::Placed);
                self.placed_at = Some(occurred_at);
                self.items = placed.items;
                self.total = Some(placed.total);
                self.currency = Some(placed.currency);
                summary
            }
            OrderEvent::OrderShipped(_) => {
                self.status = Some(OrderStatus::Shipped);
                "Order shipped".into()
            }
            OrderEvent::OrderCompleted(_) => {
                self.status = Some(OrderStatus::Completed);
                "Order completed".into()
            }
            OrderEvent::OrderCancelled(cancelled) => {
                self.status = Some(OrderStatus::Cancelled);
                let (reason, summary) = match cancelled.reason {
                    CancellationReason::CustomerRequest => (
                        "customer request".to_owned(),
                        "Order cancelled at the customer's request",
                    ),
                    // The courier's free text goes into the reason, never into the timeline.
                    CancellationReason::DeliveryFailed { detail } => (
                        format!("delivery failed: {detail}"),
                        "Order cancelled: its delivery failed",
                    ),
                };
                self.cancellation_reason = Some(reason);
                summary.into()
            }
        }
    }

    fn apply_delivery(&mut self, event: DeliveryEvent) -> String {
        match event {
            DeliveryEvent::DeliveryScheduled(scheduled) => {
                self.delivery = Some(DeliveryView {
                    delivery_id: scheduled.delivery_id,
                    status: DeliveryStatus::Scheduled,
                    promised_by: scheduled.promised_by,
                    eta: scheduled.promised_by,
                    delays: 0,
                });
                format!(
                    "Delivery scheduled, promised by {}",
                    instant(scheduled.promised_by)
                )
            }
            DeliveryEvent::DeliveryDispatched(_) => {
                self.set_delivery_status(DeliveryStatus::Dispatched);
                "Delivery dispatched".into()
            }
            DeliveryEvent::DeliveryDelayed(delayed) => {
                if let Some(delivery) = &mut self.delivery {
                    delivery.eta = delayed.new_eta;
                    delivery.delays = delayed.delay_number;
                }
                format!(
                    "Delivery delayed (delay {}), new ETA {}",
                    delayed.delay_number,
                    instant(delayed.new_eta)
                )
            }
            DeliveryEvent::DeliveryCompleted(_) => {
                self.set_delivery_status(DeliveryStatus::Completed);
                "Delivered".into()
            }
            DeliveryEvent::DeliveryFailed(_) => {
                self.set_delivery_status(DeliveryStatus::Failed);
                "Delivery failed".into()
            }
            DeliveryEvent::DeliveryCancelled(_) => {
                // Cancelled before it was scheduled (the cancellation overtook the placement):
                // there is no promise to show, only the timeline entry.
                self.set_delivery_status(DeliveryStatus::Cancelled);
                "Delivery cancelled".into()
            }
            DeliveryEvent::DeliveryCancellationRefused(refused) => match refused.status {
                DeliveryStatus::Dispatched => {
                    "Cancelled under way: the parcel is recalled".to_owned()
                }
                status => format!(
                    "Cancellation came too late: the delivery was {} already",
                    status.as_str()
                ),
            },
        }
    }

    fn set_delivery_status(&mut self, status: DeliveryStatus) {
        if let Some(delivery) = &mut self.delivery {
            delivery.status = status;
        }
    }

    fn apply_coupon(&mut self, event: CouponEvent) -> String {
        let CouponEvent::CouponIssued(issued) = event;
        let summary = format!(
            "Coupon issued: {}% off for delay {}",
            issued.discount_percent, issued.delay_number
        );
        if !self.coupons.iter().any(|c| c.coupon_id == issued.coupon_id) {
            self.coupons.push(CouponView {
                coupon_id: issued.coupon_id,
                discount_percent: issued.discount_percent,
                delay_number: issued.delay_number,
            });
            self.coupons.sort_by(|a, b| {
                (a.delay_number, &a.coupon_id).cmp(&(b.delay_number, &b.coupon_id))
            });
            // One coupon per delay; a stream with more than its one coupon breaks the rules, and
            // keeping the earliest delays' is again a function of the set.
            self.coupons.truncate(MAX_DELAYS as usize);
        }
        summary
    }
}

/// How many streams of `kind` one order's view follows: its order stream, its delivery's and a
/// coupon stream per delay. Streams of any other kind concern no order.
pub fn max_streams(kind: &str) -> usize {
    match kind {
        "order" | "delivery" => 1,
        "coupon" => MAX_DELAYS as usize,
        _ => 0,
    }
}

fn timeline_key(entry: &TimelineEntry) -> (DateTime<Utc>, &str, u64) {
    (entry.occurred_at, entry.stream_id.as_str(), entry.version)
}

fn instant(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn order_id(event: &DomainEvent) -> &OrderId {
    match event {
        DomainEvent::Order(e) => match e {
            OrderEvent::OrderPlaced(e) => &e.order_id,
            OrderEvent::OrderShipped(e) => &e.order_id,
            OrderEvent::OrderCompleted(e) => &e.order_id,
            OrderEvent::OrderCancelled(e) => &e.order_id,
        },
        DomainEvent::Delivery(e) => match e {
            DeliveryEvent::DeliveryScheduled(e) => &e.order_id,
            DeliveryEvent::DeliveryDispatched(e) => &e.order_id,
            DeliveryEvent::DeliveryDelayed(e) => &e.order_id,
            DeliveryEvent::DeliveryCompleted(e) => &e.order_id,
            DeliveryEvent::DeliveryFailed(e) => &e.order_id,
            DeliveryEvent::DeliveryCancelled(e) => &e.order_id,
            DeliveryEvent::DeliveryCancellationRefused(e) => &e.order_id,
        },
        DomainEvent::Coupon(CouponEvent::CouponIssued(e)) => &e.order_id,
    }
}

/// The order a stored event concerns: every event's data names its `order_id`. Fails when the
/// event cannot be decoded (poison).
pub fn order_id_of(event: &StoredEvent) -> Result<OrderId, DecodeError> {
    event.decode_any().map(|decoded| order_id(&decoded).clone())
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use serde_json::json;

    use super::*;
    use crate::address::{Address, UncheckedAddress};
    use crate::coupon::CouponIssued;
    use crate::delivery::{
        DeliveryCancellationRefused, DeliveryCancelled, DeliveryCompleted, DeliveryDelayed,
        DeliveryDispatched, DeliveryFailed, DeliveryScheduled,
    };
    use crate::envelope::{Actor, CorrelationId, EventContext};
    use crate::events::Event;
    use crate::ids::{CourierId, Sku};
    use crate::order::{OrderCancelled, OrderCompleted, OrderPlaced, OrderShipped};

    const V1_SAMPLE: &str = include_str!("../../schemas/samples/OrderPlaced-v1.json");

    fn order_id() -> OrderId {
        OrderId::parse("o1").unwrap()
    }
    fn customer_id() -> CustomerId {
        CustomerId::parse("c1").unwrap()
    }
    fn delivery_id() -> DeliveryId {
        DeliveryId::for_order(&order_id())
    }
    fn at(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap() + Duration::minutes(minutes)
    }
    fn address() -> Address {
        Address::parse(UncheckedAddress {
            recipient: "Erika Mustermann".into(),
            line1: "Heidestrasse 17".into(),
            line2: None,
            city: "Koeln".into(),
            postal_code: "51147".into(),
            country: "DE".into(),
        })
        .unwrap()
    }

    /// Stamps `event` as version `version` of its stream at minute `minute`.
    fn stored<E: Event>(stream: &StreamId, version: u64, minute: i64, event: E) -> StoredEvent {
        let context = EventContext {
            correlation_id: CorrelationId::parse("req-1").unwrap(),
            causation_id: "req-1".into(),
            actor: Actor::system("test"),
            occurred_at: at(minute),
        };
        StoredEvent::stamp(stream, version - 1, &[event], &context).remove(0)
    }

    fn order_stream() -> StreamId {
        StreamId::order(order_id())
    }
    fn delivery_stream() -> StreamId {
        StreamId::delivery(delivery_id())
    }
    fn coupon_stream(delay: u32) -> StreamId {
        StreamId::coupon(CouponId::for_delay(&delivery_id(), delay))
    }

    fn placed(minute: i64) -> StoredEvent {
        let items = vec![
            LineItem {
                sku: Sku::parse("TEA").unwrap(),
                quantity: 2.try_into().unwrap(),
                unit_price: 1_299.try_into().unwrap(),
            },
            LineItem {
                sku: Sku::parse("MUG").unwrap(),
                quantity: 1.try_into().unwrap(),
                unit_price: 1_899.try_into().unwrap(),
            },
        ];
        stored(
            &order_stream(),
            1,
            minute,
            OrderEvent::OrderPlaced(OrderPlaced {
                order_id: order_id(),
                customer_id: customer_id(),
                items,
                total: Cents::new(4_497),
                currency: Currency::EUR,
                delivery_address: address(),
            }),
        )
    }
    fn shipped(version: u64, minute: i64) -> StoredEvent {
        stored(
            &order_stream(),
            version,
            minute,
            OrderEvent::OrderShipped(OrderShipped {
                order_id: order_id(),
                customer_id: customer_id(),
                delivery_id: delivery_id(),
            }),
        )
    }
    fn completed(version: u64, minute: i64) -> StoredEvent {
        stored(
            &order_stream(),
            version,
            minute,
            OrderEvent::OrderCompleted(OrderCompleted {
                order_id: order_id(),
                customer_id: customer_id(),
                delivery_id: delivery_id(),
            }),
        )
    }
    fn cancelled(version: u64, minute: i64, reason: CancellationReason) -> StoredEvent {
        stored(
            &order_stream(),
            version,
            minute,
            OrderEvent::OrderCancelled(OrderCancelled {
                order_id: order_id(),
                customer_id: customer_id(),
                reason,
            }),
        )
    }
    fn scheduled(minute: i64) -> StoredEvent {
        stored(
            &delivery_stream(),
            1,
            minute,
            DeliveryEvent::DeliveryScheduled(DeliveryScheduled {
                delivery_id: delivery_id(),
                order_id: order_id(),
                customer_id: customer_id(),
                delivery_address: address(),
                promised_by: at(24 * 60),
            }),
        )
    }
    fn dispatched(version: u64, minute: i64) -> StoredEvent {
        stored(
            &delivery_stream(),
            version,
            minute,
            DeliveryEvent::DeliveryDispatched(DeliveryDispatched {
                delivery_id: delivery_id(),
                order_id: order_id(),
                customer_id: customer_id(),
                courier_id: CourierId::parse("courier-7").unwrap(),
            }),
        )
    }
    fn delayed(version: u64, minute: i64, delay_number: u32) -> StoredEvent {
        stored(
            &delivery_stream(),
            version,
            minute,
            DeliveryEvent::DeliveryDelayed(DeliveryDelayed {
                delivery_id: delivery_id(),
                order_id: order_id(),
                customer_id: customer_id(),
                delay_number,
                previous_eta: at(24 * 60),
                new_eta: at(24 * 60 + 120 * i64::from(delay_number)),
                reason: "flat tyre outside Heidestrasse 17".into(),
            }),
        )
    }
    fn delivered(version: u64, minute: i64) -> StoredEvent {
        stored(
            &delivery_stream(),
            version,
            minute,
            DeliveryEvent::DeliveryCompleted(DeliveryCompleted {
                delivery_id: delivery_id(),
                order_id: order_id(),
                customer_id: customer_id(),
            }),
        )
    }
    fn delivery_failed(version: u64, minute: i64) -> StoredEvent {
        stored(
            &delivery_stream(),
            version,
            minute,
            DeliveryEvent::DeliveryFailed(DeliveryFailed {
                delivery_id: delivery_id(),
                order_id: order_id(),
                customer_id: customer_id(),
                reason: "Erika Mustermann not at home".into(),
            }),
        )
    }
    fn delivery_cancelled(version: u64, minute: i64) -> StoredEvent {
        stored(
            &delivery_stream(),
            version,
            minute,
            DeliveryEvent::DeliveryCancelled(DeliveryCancelled {
                delivery_id: delivery_id(),
                order_id: order_id(),
                customer_id: customer_id(),
            }),
        )
    }
    fn cancellation_refused(version: u64, minute: i64) -> StoredEvent {
        stored(
            &delivery_stream(),
            version,
            minute,
            DeliveryEvent::DeliveryCancellationRefused(DeliveryCancellationRefused {
                delivery_id: delivery_id(),
                order_id: order_id(),
                customer_id: customer_id(),
                status: DeliveryStatus::Dispatched,
            }),
        )
    }
    fn coupon(delay_number: u32, minute: i64) -> StoredEvent {
        stored(
            &coupon_stream(delay_number),
            1,
            minute,
            CouponEvent::CouponIssued(CouponIssued {
                coupon_id: CouponId::for_delay(&delivery_id(), delay_number),
                customer_id: customer_id(),
                order_id: order_id(),
                delivery_id: delivery_id(),
                delay_number,
                discount_percent: 10,
            }),
        )
    }

    fn view_of<'a>(events: impl IntoIterator<Item = &'a StoredEvent>) -> OrderView {
        let mut view = OrderView::new(order_id());
        for event in events {
            assert!(
                view.apply(event).unwrap(),
                "{} v{} applies",
                event.stream_id,
                event.version
            );
        }
        view
    }

    fn summaries(view: &OrderView) -> Vec<&str> {
        view.timeline.iter().map(|e| e.summary.as_str()).collect()
    }

    #[test]
    fn a_new_view_knows_only_its_order() {
        let view = OrderView::new(order_id());
        assert_eq!(view.order_id, order_id());
        assert_eq!(
            (view.status, &view.customer_id, view.placed_at),
            (None, &None, None)
        );
        assert!(view.timeline.is_empty() && view.versions.is_empty() && view.coupons.is_empty());
        assert_eq!(view.version_of(&order_stream()), 0);
    }

    #[test]
    fn order_placed_fills_customer_items_total_currency_and_placed_at() {
        let event = placed(0);
        let view = view_of([&event]);
        assert_eq!(view.status, Some(OrderStatus::Placed));
        assert_eq!(view.customer_id, Some(customer_id()));
        assert_eq!(view.placed_at, Some(at(0)));
        assert_eq!(view.items.len(), 2);
        assert_eq!(view.items[0].sku.as_str(), "TEA");
        assert_eq!(view.total, Some(Cents::new(4_497)));
        assert_eq!(view.currency, Some(Currency::EUR));
        assert_eq!(view.cancellation_reason, None);
        assert_eq!(view.versions, BTreeMap::from([("order#o1".to_owned(), 1)]));
        assert_eq!(
            view.timeline,
            [TimelineEntry {
                event_id: event.event_id.clone(),
                event_type: "OrderPlaced".into(),
                stream_id: "order#o1".into(),
                version: 1,
                occurred_at: at(0),
                actor: "system/test".into(),
                summary: "Order placed: 2 line(s), total 44.97 EUR".into(),
            }]
        );
    }

    #[test]
    fn order_shipped_and_completed_move_the_status() {
        let (p, s, c) = (placed(0), shipped(2, 5), completed(3, 9));
        let mut view = view_of([&p, &s]);
        assert_eq!(view.status, Some(OrderStatus::Shipped));
        view.apply(&c).unwrap();
        assert_eq!(view.status, Some(OrderStatus::Completed));
        assert_eq!(
            summaries(&view),
            [
                "Order placed: 2 line(s), total 44.97 EUR",
                "Order shipped",
                "Order completed"
            ]
        );
        assert_eq!(view.version_of(&order_stream()), 3);
    }

    #[test]
    fn order_cancelled_records_the_reason_in_words() {
        let p = placed(0);
        let by_customer = view_of([&p, &cancelled(2, 1, CancellationReason::CustomerRequest)]);
        assert_eq!(by_customer.status, Some(OrderStatus::Cancelled));
        assert_eq!(
            by_customer.cancellation_reason.as_deref(),
            Some("customer request")
        );
        assert_eq!(
            summaries(&by_customer)[1],
            "Order cancelled at the customer's request"
        );

        let reason = CancellationReason::DeliveryFailed {
            detail: "parcel damaged".into(),
        };
        let compensated = view_of([&p, &cancelled(2, 1, reason)]);
        assert_eq!(compensated.status, Some(OrderStatus::Cancelled));
        assert_eq!(
            compensated.cancellation_reason.as_deref(),
            Some("delivery failed: parcel damaged")
        );
        assert_eq!(
            summaries(&compensated)[1],
            "Order cancelled: its delivery failed"
        );
    }

    #[test]
    fn delivery_scheduled_shows_the_promise_as_the_eta() {
        let view = view_of([&scheduled(1)]);
        assert_eq!(
            view.delivery,
            Some(DeliveryView {
                delivery_id: delivery_id(),
                status: DeliveryStatus::Scheduled,
                promised_by: at(24 * 60),
                eta: at(24 * 60),
                delays: 0,
            })
        );
        assert_eq!(
            summaries(&view),
            ["Delivery scheduled, promised by 2026-11-23 10:00 UTC"]
        );
        assert_eq!(view.status, None, "the order itself is not placed yet");
    }

    #[test]
    fn dispatch_and_delays_move_the_delivery_and_its_eta() {
        let events = [
            scheduled(1),
            dispatched(2, 2),
            delayed(3, 3, 1),
            delayed(4, 4, 2),
        ];
        let view = view_of(&events);
        let delivery = view.delivery.clone().unwrap();
        assert_eq!(delivery.status, DeliveryStatus::Dispatched);
        assert_eq!(delivery.promised_by, at(24 * 60), "the promise stays");
        assert_eq!(delivery.eta, at(24 * 60 + 240));
        assert_eq!(delivery.delays, 2);
        assert_eq!(
            summaries(&view)[1..],
            [
                "Delivery dispatched",
                "Delivery delayed (delay 1), new ETA 2026-11-23 12:00 UTC",
                "Delivery delayed (delay 2), new ETA 2026-11-23 14:00 UTC",
            ]
        );
    }

    #[test]
    fn a_delivery_ends_completed_failed_or_cancelled() {
        let cases = [
            (delivered(3, 3), DeliveryStatus::Completed, "Delivered"),
            (
                delivery_failed(3, 3),
                DeliveryStatus::Failed,
                "Delivery failed",
            ),
            (
                delivery_cancelled(2, 3),
                DeliveryStatus::Cancelled,
                "Delivery cancelled",
            ),
        ];
        for (last, status, summary) in cases {
            let mut view = view_of([&scheduled(1)]);
            if last.version == 3 {
                view.apply(&dispatched(2, 2)).unwrap();
            }
            assert!(view.apply(&last).unwrap());
            assert_eq!(view.delivery.as_ref().map(|d| d.status), Some(status));
            assert_eq!(summaries(&view).last(), Some(&summary));
        }
    }

    #[test]
    fn a_delivery_cancelled_before_it_was_scheduled_is_on_the_timeline_only() {
        let view = view_of([&delivery_cancelled(1, 1)]);
        assert_eq!(view.delivery, None, "there is no promise to show");
        assert_eq!(summaries(&view), ["Delivery cancelled"]);
        assert_eq!(view.version_of(&delivery_stream()), 1);
    }

    #[test]
    fn a_refused_cancellation_is_told_and_leaves_the_delivery_as_it_is() {
        let mut view = view_of([&scheduled(1), &dispatched(2, 2)]);
        let before = view.delivery.clone();
        assert!(view.apply(&cancellation_refused(3, 3)).unwrap());
        assert_eq!(view.delivery, before);
        assert_eq!(
            summaries(&view).last(),
            Some(&"Cancelled under way: the parcel is recalled")
        );
        assert_eq!(view.version_of(&delivery_stream()), 3);
    }

    #[test]
    fn issued_coupons_are_listed_by_delay() {
        let view = view_of([&coupon(2, 8), &coupon(1, 5)]);
        assert_eq!(
            view.coupons,
            [
                CouponView {
                    coupon_id: CouponId::parse("c-d-o1-1").unwrap(),
                    discount_percent: 10,
                    delay_number: 1,
                },
                CouponView {
                    coupon_id: CouponId::parse("c-d-o1-2").unwrap(),
                    discount_percent: 10,
                    delay_number: 2,
                },
            ]
        );
        assert_eq!(
            summaries(&view),
            [
                "Coupon issued: 10% off for delay 1",
                "Coupon issued: 10% off for delay 2"
            ]
        );
    }

    #[test]
    fn summaries_carry_no_address_and_no_free_text() {
        let failed = CancellationReason::DeliveryFailed {
            detail: "Erika Mustermann not at home".into(),
        };
        let all = [
            placed(0),
            scheduled(1),
            dispatched(2, 2),
            delayed(3, 3, 1),
            coupon(1, 4),
            delivery_failed(4, 5),
            cancelled(2, 6, failed),
        ];
        let view = view_of(&all);
        assert_eq!(view.timeline.len(), all.len());
        for entry in &view.timeline {
            for secret in [
                "Erika",
                "Mustermann",
                "Heidestrasse",
                "Koeln",
                "51147",
                "tyre",
            ] {
                assert!(
                    !entry.summary.contains(secret),
                    "{:?} leaks {secret:?}",
                    entry.summary
                );
            }
        }
    }

    #[test]
    fn a_duplicate_or_an_older_version_is_a_no_op() {
        let mut view = view_of([&placed(0), &shipped(2, 1), &scheduled(2)]);
        let before = view.clone();
        for replay in [placed(0), shipped(2, 1), scheduled(2)] {
            assert_eq!(view.apply(&replay), Ok(false), "{}", replay.event_type);
        }
        // A redelivered copy carries the same version (and, here, even another event id).
        let mut copy = shipped(2, 7);
        copy.event_id = "another-id".into();
        assert_eq!(view.apply(&copy), Ok(false));
        assert_eq!(view, before);
    }

    /// Every interleaving of `streams` that keeps each stream's own order.
    fn interleavings(streams: &[Vec<StoredEvent>]) -> Vec<Vec<StoredEvent>> {
        if streams.iter().all(Vec::is_empty) {
            return vec![Vec::new()];
        }
        let mut all = Vec::new();
        for (i, stream) in streams.iter().enumerate() {
            let Some((head, rest)) = stream.split_first() else {
                continue;
            };
            let mut remaining = streams.to_vec();
            remaining[i] = rest.to_vec();
            for mut tail in interleavings(&remaining) {
                tail.insert(0, head.clone());
                all.push(tail);
            }
        }
        all
    }

    #[test]
    fn the_same_events_in_any_order_across_streams_give_the_same_view() {
        let streams = [
            vec![placed(0), shipped(2, 3), completed(3, 9)],
            vec![
                scheduled(1),
                dispatched(2, 2),
                delayed(3, 4, 1),
                delivered(4, 8),
            ],
            vec![coupon(1, 5)],
            // Same instant as the dispatch: the timeline breaks the tie by stream and version.
            vec![stored(
                &coupon_stream(9),
                1,
                2,
                CouponEvent::CouponIssued(CouponIssued {
                    coupon_id: CouponId::for_delay(&delivery_id(), 9),
                    customer_id: customer_id(),
                    order_id: order_id(),
                    delivery_id: delivery_id(),
                    delay_number: 9,
                    discount_percent: 5,
                }),
            )],
        ];
        let orders = interleavings(&streams);
        assert_eq!(orders.len(), 2_520, "9! / (3! 4! 1! 1!)");
        let expected = view_of(orders[0].iter());
        for order in &orders[1..] {
            assert_eq!(view_of(order.iter()), expected);
        }
        let timeline: Vec<_> = expected
            .timeline
            .iter()
            .map(|e| (e.stream_id.as_str(), e.version))
            .collect();
        assert_eq!(
            timeline,
            [
                ("order#o1", 1),
                ("delivery#d-o1", 1),
                ("coupon#c-d-o1-9", 1),
                ("delivery#d-o1", 2),
                ("order#o1", 2),
                ("delivery#d-o1", 3),
                ("coupon#c-d-o1-1", 1),
                ("delivery#d-o1", 4),
                ("order#o1", 3),
            ]
        );
        assert_eq!(expected.status, Some(OrderStatus::Completed));
        assert_eq!(
            expected.delivery.map(|d| (d.status, d.delays)),
            Some((DeliveryStatus::Completed, 1))
        );
        assert_eq!(expected.coupons.len(), 2);
    }

    /// An upper bound of the item the DynamoDB adapter writes for `view`: its JSON, plus the two
    /// index keys the adapter adds (under 100 bytes). DynamoDB counts each name and value in
    /// bytes and 3 per list or map plus 1 per element, which a JSON text outweighs (quotes,
    /// colons and commas), so the JSON bounds the item (the adapter's own tests count it exactly).
    fn stored_size(view: &OrderView) -> usize {
        serde_json::to_vec(view).unwrap().len() + 100
    }

    /// "Well under" DynamoDB's 400 KB item limit.
    const WELL_UNDER: usize = 64 * 1024;

    /// `count` events of the delivery stream after its scheduling (versions 2 …), a minute apart
    /// from `minute`: delays and refused cancellations in turn.
    fn delivery_events(count: u64, minute: i64) -> Vec<StoredEvent> {
        (2..count + 2)
            .map(|version| {
                let at = minute + version as i64;
                if version % 2 == 0 {
                    delayed(version, at, u32::try_from(version / 2).unwrap())
                } else {
                    cancellation_refused(version, at)
                }
            })
            .collect()
    }

    #[test]
    fn the_fullest_order_the_rules_allow_is_stored_whole_and_well_under_the_item_limit() {
        use crate::delivery::MAX_REASON_LEN;
        use crate::ids::MAX_ID_LEN;
        use crate::order::MAX_ITEMS;

        let mut placed = placed(0);
        let line =
            json!({"sku": "S".repeat(MAX_ID_LEN), "quantity": 1_000, "unit_price": 100_000_000});
        placed.data["items"] = json!(vec![line; MAX_ITEMS]);
        let mut all = vec![placed, shipped(2, 30)];
        all.push(cancelled(
            3,
            40,
            CancellationReason::DeliveryFailed {
                detail: "x".repeat(MAX_REASON_LEN),
            },
        ));
        all.extend([scheduled(1), dispatched(2, 2)]);
        for delay in 1..=MAX_DELAYS {
            let version = u64::from(delay) + 2;
            all.push(delayed(version, 2 + i64::from(delay), delay));
            all.push(coupon(delay, 3 + i64::from(delay)));
        }
        let next = u64::from(MAX_DELAYS) + 3;
        all.extend([
            cancellation_refused(next, 20),
            delivery_failed(next + 1, 21),
        ]);

        let view = view_of(&all);
        assert_eq!(view.items.len(), MAX_ITEMS);
        assert_eq!(view.timeline.len(), all.len(), "nothing real is left out");
        assert_eq!(view.timeline_omitted, 0);
        assert_eq!(view.coupons.len(), MAX_DELAYS as usize);
        let size = stored_size(&view);
        println!("the fullest order's view item: {size} bytes");
        assert!(size < WELL_UNDER, "{size} bytes");
    }

    #[test]
    fn ten_thousand_events_keep_the_view_bounded_with_its_first_and_latest_entries() {
        let mut view = view_of([&placed(0), &scheduled(1)]);
        for event in delivery_events(10_000, 1) {
            assert_eq!(view.apply(&event), Ok(true));
        }
        // Coupon streams beyond one per delay are refused (dead-lettered), not followed.
        let mut refused = 0;
        for delay in 1..=10_000 {
            match view.apply(&coupon(delay, 20_000 + i64::from(delay))) {
                Ok(true) => {}
                Err(DecodeError::Malformed { reason, .. }) => {
                    assert!(reason.contains("coupon stream(s)"), "{reason}");
                    refused += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(refused, 10_000 - MAX_DELAYS);
        let applied = 2 + 10_000 + u64::from(MAX_DELAYS);
        let size = stored_size(&view);
        println!("the view item after {applied} events: {size} bytes");
        assert!(size < WELL_UNDER, "{size} bytes");

        assert_eq!(view.timeline.len(), MAX_TIMELINE);
        assert_eq!(view.timeline_omitted, applied - MAX_TIMELINE as u64);
        assert_eq!(
            summaries(&view)[..2],
            [
                "Order placed: 2 line(s), total 44.97 EUR",
                "Delivery scheduled, promised by 2026-11-23 10:00 UTC"
            ]
        );
        let last = view.timeline.last().unwrap();
        assert_eq!(
            (last.stream_id.as_str(), last.event_type.as_str()),
            ("coupon#c-d-o1-5", "CouponIssued")
        );
        assert_eq!(view.coupons.len(), MAX_DELAYS as usize);
        assert_eq!(view.versions.len(), 2 + MAX_DELAYS as usize);
        assert_eq!(view.version_of(&delivery_stream()), 10_001);
        assert_eq!(view.delivery.as_ref().map(|d| d.delays), Some(5_000));
    }

    #[test]
    fn a_coupon_stream_with_more_than_its_coupon_adds_no_coupons_past_one_per_delay() {
        let mut view = view_of([&placed(0)]);
        let stream = coupon_stream(1);
        for version in 1..=50u32 {
            let mut event = coupon(version, i64::from(version));
            event.stream_id = stream.clone();
            event.version = u64::from(version);
            assert_eq!(view.apply(&event), Ok(true));
        }
        assert_eq!(view.coupons.len(), MAX_DELAYS as usize);
        assert_eq!(
            view.coupons
                .iter()
                .map(|c| c.delay_number)
                .collect::<Vec<_>>(),
            (1..=MAX_DELAYS).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_stream_of_a_kind_no_order_has_is_refused() {
        let mut view = view_of([&placed(0)]);
        let mut stray = shipped(2, 1);
        stray.stream_id = StreamId::new("order", "o1-copy");
        let before = view.clone();
        assert!(matches!(
            view.apply(&stray),
            Err(DecodeError::Malformed { .. })
        ));
        stray.stream_id = StreamId::new("audit", "o1");
        assert!(matches!(
            view.apply(&stray),
            Err(DecodeError::Malformed { .. })
        ));
        assert_eq!(view, before);
    }

    /// A shuffle of `streams` that keeps each stream's own order, drawn from `seed`.
    fn interleaving(streams: &[Vec<StoredEvent>], mut seed: u64) -> Vec<StoredEvent> {
        let mut next: Vec<usize> = vec![0; streams.len()];
        let mut all = Vec::new();
        loop {
            let open: Vec<usize> = (0..streams.len())
                .filter(|&i| next[i] < streams[i].len())
                .collect();
            if open.is_empty() {
                return all;
            }
            // A linear congruential generator (Knuth's MMIX constants) is random enough here.
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let stream = open[(seed >> 33) as usize % open.len()];
            all.push(streams[stream][next[stream]].clone());
            next[stream] += 1;
        }
    }

    #[test]
    fn a_bounded_timeline_is_the_same_in_any_order_across_streams_and_keeps_both_ends() {
        let mut delivery = vec![scheduled(1)];
        delivery.extend(delivery_events(120, 1));
        let streams = [
            vec![placed(0), shipped(2, 3), completed(3, 500)],
            delivery,
            (1..=MAX_DELAYS)
                .map(|d| coupon(d, 4 * i64::from(d)))
                .collect(),
        ];
        let mut everything: Vec<StoredEvent> = streams.concat();
        everything.sort_by(|a, b| {
            (a.occurred_at, a.stream_id.as_str(), a.version).cmp(&(
                b.occurred_at,
                b.stream_id.as_str(),
                b.version,
            ))
        });
        let keys = |entries: &mut dyn Iterator<Item = (&str, u64)>| {
            entries.map(|(s, v)| (s.to_owned(), v)).collect::<Vec<_>>()
        };
        let expected_keys = keys(
            &mut everything[..TIMELINE_HEAD]
                .iter()
                .chain(&everything[everything.len() - TIMELINE_TAIL..])
                .map(|e| (e.stream_id.as_str(), e.version)),
        );

        let expected = view_of(&everything);
        assert_eq!(
            keys(
                &mut expected
                    .timeline
                    .iter()
                    .map(|e| (e.stream_id.as_str(), e.version))
            ),
            expected_keys
        );
        assert_eq!(
            expected.timeline_omitted,
            (everything.len() - MAX_TIMELINE) as u64
        );
        for seed in 0..200 {
            assert_eq!(
                view_of(&interleaving(&streams, seed)),
                expected,
                "seed {seed}"
            );
        }
    }

    #[test]
    fn a_view_stored_before_the_timeline_was_bounded_reads_with_nothing_omitted() {
        let view = view_of([&placed(0)]);
        let mut stored = serde_json::to_value(&view).unwrap();
        stored.as_object_mut().unwrap().remove("timeline_omitted");
        let read: OrderView = serde_json::from_value(stored).unwrap();
        assert_eq!(read, view);
    }

    #[test]
    fn a_stored_v1_order_placed_applies_after_upcasting() {
        let stored: StoredEvent = serde_json::from_str(V1_SAMPLE).unwrap();
        assert_eq!(stored.schema_version, 1);
        let order_id = order_id_of(&stored).unwrap();
        let mut view = OrderView::new(order_id);
        assert_eq!(view.apply(&stored), Ok(true));
        assert_eq!(view.status, Some(OrderStatus::Placed));
        assert_eq!(
            view.customer_id.as_ref().map(CustomerId::as_str),
            Some("cust-42")
        );
        assert_eq!(view.total, Some(Cents::new(4_497)));
        assert_eq!(view.currency, Some(Currency::EUR));
        assert_eq!(view.items[0].unit_price.cents(), Cents::new(1_299));
        assert_eq!(
            view.placed_at,
            Some(Utc.with_ymd_and_hms(2024, 5, 2, 9, 14, 7).unwrap() + Duration::milliseconds(512))
        );
        assert_eq!(
            summaries(&view),
            ["Order placed: 2 line(s), total 44.97 EUR"]
        );
    }

    #[test]
    fn an_undecodable_event_is_an_error_and_changes_nothing() {
        let mut view = view_of([&placed(0)]);
        let before = view.clone();
        let mut unknown = shipped(2, 1);
        unknown.event_type = "OrderTeleported".into();
        assert_eq!(
            view.apply(&unknown),
            Err(DecodeError::UnknownEventType("OrderTeleported".into()))
        );
        let mut malformed = shipped(2, 1);
        malformed.data = json!({"order_id": "o1"});
        assert!(matches!(
            view.apply(&malformed),
            Err(DecodeError::Malformed { .. })
        ));
        let mut future = shipped(2, 1);
        future.schema_version = 7;
        assert!(matches!(
            view.apply(&future),
            Err(DecodeError::UnsupportedSchemaVersion { version: 7, .. })
        ));
        assert_eq!(view, before);
    }

    #[test]
    fn an_event_of_another_order_is_refused() {
        let mut view = OrderView::new(OrderId::parse("o2").unwrap());
        let error = view.apply(&placed(0)).unwrap_err();
        assert!(error.to_string().contains("order o1"), "{error}");
        assert_eq!(view, OrderView::new(OrderId::parse("o2").unwrap()));
    }

    #[test]
    fn every_event_type_names_its_order() {
        let all = [
            placed(0),
            shipped(2, 1),
            completed(3, 1),
            cancelled(4, 1, CancellationReason::CustomerRequest),
            scheduled(1),
            dispatched(2, 1),
            delayed(3, 1, 1),
            delivered(4, 1),
            delivery_failed(4, 1),
            delivery_cancelled(2, 1),
            cancellation_refused(3, 1),
            coupon(1, 1),
        ];
        let mut types: Vec<_> = all.iter().map(|e| e.event_type.as_str()).collect();
        types.sort_unstable();
        types.dedup();
        let known =
            OrderEvent::SCHEMAS.len() + DeliveryEvent::SCHEMAS.len() + CouponEvent::SCHEMAS.len();
        assert_eq!(types.len(), known, "every event type is covered");
        for event in &all {
            assert_eq!(order_id_of(event), Ok(order_id()), "{}", event.event_type);
        }
        let mut broken = placed(0);
        broken.data = json!({});
        assert!(order_id_of(&broken).is_err());
    }
}
