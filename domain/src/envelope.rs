//! The event envelope (docs/architecture.md, "The event envelope"): what every stored and published
//! event carries around its data. [`StoredEvent`] is the wire form — the events-table item (with
//! `data` as a native map), the stream image and the EventBridge detail all have exactly these
//! fields. [`event_source`] names the EventBridge `source` an event is published under: the bounded
//! context of its stream.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::events::{DecodeError, DomainEvent, Event};
use crate::ids::{CourierId, CustomerId, StreamId, new_time_ordered_id};
use crate::upcasting::upcast;
use crate::validation::ValidationError;

/// Ties together everything one original request caused, across every function.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CorrelationId(String);

impl CorrelationId {
    /// Accepts a caller's correlation id (e.g. an `X-Correlation-Id` header): 1–128 characters
    /// from `[A-Za-z0-9._:-]`.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        let ok = !value.is_empty()
            && value.len() <= 128
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(ValidationError::new(
                "correlation_id",
                "must be 1 to 128 characters from letters, digits, '-', '_', '.', ':'",
            ))
        }
    }

    /// A new correlation id, for a request that brought none.
    pub fn generate() -> Self {
        Self(new_time_ordered_id())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// What `CorrelationId::parse` accepts (a generated one is a UUID, which it accepts too).
#[cfg(feature = "schemas")]
crate::contracts::inline_json_schema!(
    CorrelationId,
    crate::contracts::string_schema("^[A-Za-z0-9._:-]{1,128}$")
);

/// Who caused an event: `customer/<id>`, `courier/<id>` or `system/<handler>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Actor(String);

impl Actor {
    /// A customer acting through the API.
    pub fn customer(id: &CustomerId) -> Self {
        Self(format!("customer/{id}"))
    }
    /// A courier acting through the courier API.
    pub fn courier(id: &CourierId) -> Self {
        Self(format!("courier/{id}"))
    }
    /// An authenticated principal acting in `role` (`customer`, `courier`, `support`).
    pub fn principal(role: &str, subject: &str) -> Self {
        Self(format!("{role}/{subject}"))
    }
    /// A function reacting on its own (`system/delivery-on-order-placed`).
    pub fn system(handler: &str) -> Self {
        Self(format!("system/{handler}"))
    }
    /// The actor as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// What the constructors write: `<role>/<id>`, the role one of `customer`, `courier`, `support`
// (an authenticated principal) or `system` (a function reacting on its own).
#[cfg(feature = "schemas")]
crate::contracts::inline_json_schema!(
    Actor,
    crate::contracts::string_schema("^(customer|courier|support|system)/.+$")
);

/// Where new events come from: the request or event being handled, who acts, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventContext {
    /// The original request's correlation id, carried through every hop.
    pub correlation_id: CorrelationId,
    /// The request id or event id that caused the new events.
    pub causation_id: String,
    /// Who acts.
    pub actor: Actor,
    /// When (from the clock port).
    pub occurred_at: DateTime<Utc>,
}

impl EventContext {
    /// The context for events caused by `cause`, a stored event being reacted to: same
    /// correlation, causation = the cause's event id.
    pub fn caused_by(cause: &StoredEvent, actor: Actor, occurred_at: DateTime<Utc>) -> Self {
        Self {
            correlation_id: cause.correlation_id.clone(),
            causation_id: cause.event_id.clone(),
            actor,
            occurred_at,
        }
    }
}

/// One event with its envelope, in wire form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
pub struct StoredEvent {
    /// Unique id of this event (UUIDv7).
    pub event_id: String,
    /// Past-tense type name, e.g. `OrderPlaced`.
    pub event_type: String,
    /// The schema version `data` is written in.
    pub schema_version: u32,
    /// The aggregate stream, e.g. `order#<id>`.
    pub stream_id: StreamId,
    /// Position in the stream: 1, 2, 3 … without gaps.
    #[cfg_attr(feature = "schemas", schemars(range(min = 1)))]
    pub version: u64,
    /// When it happened (RFC 3339, UTC).
    pub occurred_at: DateTime<Utc>,
    /// The original request.
    pub correlation_id: CorrelationId,
    /// The request or event that caused it.
    pub causation_id: String,
    /// Who caused it.
    pub actor: Actor,
    /// What it means: the event's payload.
    pub data: Value,
}

impl StoredEvent {
    /// Wraps new events of `stream_id` in envelopes, numbered after `current_version`.
    pub fn stamp<E: Event>(
        stream_id: &StreamId,
        current_version: u64,
        events: &[E],
        context: &EventContext,
    ) -> Vec<StoredEvent> {
        (1u64..)
            .zip(events)
            .map(|(offset, event)| StoredEvent {
                event_id: new_time_ordered_id(),
                event_type: event.event_type().to_owned(),
                schema_version: event.schema_version(),
                stream_id: stream_id.clone(),
                version: current_version + offset,
                occurred_at: context.occurred_at,
                correlation_id: context.correlation_id.clone(),
                causation_id: context.causation_id.clone(),
                actor: context.actor.clone(),
                data: event.to_data(),
            })
            .collect()
    }

    /// Upcasts to the current schema version and decodes into an event of family `E`.
    pub fn decode<E: Event>(&self) -> Result<E, DecodeError> {
        let current = upcast(self.clone())?;
        E::from_data(&current.event_type, current.data)
    }

    /// Upcasts to the current schema version and decodes into any domain event.
    pub fn decode_any(&self) -> Result<DomainEvent, DecodeError> {
        let current = upcast(self.clone())?;
        DomainEvent::from_data(&current.event_type, current.data)
    }
}

/// The prefix of every EventBridge `source` orderflow publishes under: a rule matching
/// `{"source": [{"prefix": "orderflow."}]}` sees every orderflow event.
pub const SOURCE_PREFIX: &str = "orderflow.";

/// The `source` of events of an unknown stream kind: published (so an archive or catch-all rule
/// still sees them) but routed to no handler.
pub const UNKNOWN_SOURCE: &str = "orderflow.unknown";

/// The EventBridge `source` of an event: the bounded context its stream belongs to.
///
/// `order#…` → `orderflow.order`, `delivery#…` → `orderflow.delivery`, `coupon#…` →
/// `orderflow.alert` (coupons are issued by the alert context); any other kind →
/// [`UNKNOWN_SOURCE`].
pub fn event_source(stream_id: &StreamId) -> &'static str {
    match stream_id.kind() {
        "order" => "orderflow.order",
        "delivery" => "orderflow.delivery",
        "coupon" => "orderflow.alert",
        _ => UNKNOWN_SOURCE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coupon::{CouponEvent, CouponIssued};
    use crate::ids::{CouponId, DeliveryId, OrderId};
    use chrono::TimeZone;

    fn context() -> EventContext {
        EventContext {
            correlation_id: CorrelationId::parse("req-1").unwrap(),
            causation_id: "req-1".into(),
            actor: Actor::system("alert-on-delivery-delayed"),
            occurred_at: Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
        }
    }

    fn coupon() -> CouponEvent {
        let delivery_id = DeliveryId::parse("d-o1").unwrap();
        CouponEvent::CouponIssued(CouponIssued {
            coupon_id: CouponId::for_delay(&delivery_id, 1),
            customer_id: CustomerId::parse("c1").unwrap(),
            order_id: OrderId::parse("o1").unwrap(),
            delivery_id,
            delay_number: 1,
            discount_percent: 10,
        })
    }

    #[test]
    fn stamp_numbers_events_after_the_current_version_and_fills_the_envelope() {
        let stream = StreamId::new("coupon", "c-d-o1-1");
        let stamped = StoredEvent::stamp(&stream, 4, &[coupon(), coupon()], &context());
        assert_eq!(
            stamped.iter().map(|e| e.version).collect::<Vec<_>>(),
            [5, 6]
        );
        assert_ne!(stamped[0].event_id, stamped[1].event_id);
        let json = serde_json::to_value(&stamped[0]).unwrap();
        assert_eq!(json["event_type"], "CouponIssued");
        assert_eq!(json["schema_version"], 1);
        assert_eq!(json["stream_id"], "coupon#c-d-o1-1");
        assert_eq!(json["occurred_at"], "2026-11-22T10:00:00Z");
        assert_eq!(json["correlation_id"], "req-1");
        assert_eq!(json["causation_id"], "req-1");
        assert_eq!(json["actor"], "system/alert-on-delivery-delayed");
        assert_eq!(json["data"]["discount_percent"], 10);
        assert_eq!(stamped[0].decode::<CouponEvent>().unwrap(), coupon());
    }

    #[test]
    fn caused_by_carries_the_correlation_and_points_at_the_cause() {
        let cause =
            &StoredEvent::stamp(&StreamId::new("coupon", "x"), 0, &[coupon()], &context())[0];
        let next = EventContext::caused_by(cause, Actor::system("h"), context().occurred_at);
        assert_eq!(next.correlation_id.as_str(), "req-1");
        assert_eq!(next.causation_id, cause.event_id);
    }

    #[test]
    fn the_source_is_the_context_of_the_stream() {
        use crate::Aggregate;
        use crate::{coupon::Coupon, delivery::Delivery, order::Order};
        let source = |kind: &str| event_source(&StreamId::new(kind, "x1"));
        assert_eq!(source(Order::KIND), "orderflow.order");
        assert_eq!(source(Delivery::KIND), "orderflow.delivery");
        assert_eq!(source(Coupon::KIND), "orderflow.alert");
        assert_eq!(source("invoice"), UNKNOWN_SOURCE);
        assert_eq!(
            event_source(&serde_json::from_str("\"no-hash\"").unwrap()),
            UNKNOWN_SOURCE
        );
        for kind in [Order::KIND, Delivery::KIND, Coupon::KIND, "invoice"] {
            assert!(source(kind).starts_with(SOURCE_PREFIX), "{kind}");
        }
    }

    #[test]
    fn correlation_ids_from_outside_are_checked() {
        assert!(CorrelationId::parse("abc-123:x").is_ok());
        assert!(CorrelationId::parse("").is_err());
        assert!(CorrelationId::parse("a b").is_err());
        assert!(CorrelationId::parse(&"a".repeat(129)).is_err());
    }
}
