//! Test support: sample events of every type the alert context hears about, the SQS fixture, and a
//! world of in-memory adapters to drive the handlers through [`handle_sqs_batch`].

use adapters::clock::FixedClock;
use async_trait::async_trait;
use aws_lambda_events::event::sqs::SqsEvent;
use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::address::{Address, UncheckedAddress};
use domain::delivery::{
    DeliveryCancellationRefused, DeliveryCompleted, DeliveryDelayed, DeliveryEvent,
    DeliveryScheduled, DeliveryStatus,
};
use domain::envelope::{Actor, CorrelationId, EventContext, StoredEvent};
use domain::events::Event;
use domain::ids::{CustomerId, DeliveryId, OrderId, Sku, StreamId};
use domain::money::{Cents, Currency};
use domain::order::{CancellationReason, LineItem, OrderCancelled, OrderEvent, OrderPlaced};
use domain::ports::{Claim, EffectMarkers, StoreError};
use lambda_glue::consumer::handle_sqs_batch;
use testkit::lambda::{failed_ids, sqs_event};
use testkit::memory::{InMemoryEventStore, InMemoryIdempotencyStore, InMemoryNotifier};

use crate::coupon_on_delivery_delayed::{self, CouponDeps};
use crate::notify::{AlertDeps, NotificationHandler};

/// A real Lambda SQS event: one message whose body is the EventBridge event of a `DeliveryDelayed`
/// (delay 1 of order `018f1c2e-…a1`, customer `cust-42`, new ETA 2026-11-23 14:30 UTC).
pub const DELAYED_FIXTURE: &str = include_str!("../fixtures/sqs_delivery_delayed.json");

/// The fixture, parsed.
pub fn delayed_fixture() -> SqsEvent {
    serde_json::from_str(DELAYED_FIXTURE).unwrap()
}

/// The fixture's message body.
pub fn delayed_fixture_body() -> String {
    delayed_fixture().records[0].body.clone().unwrap()
}

/// The customer of every sample event.
pub const CUSTOMER: &str = "cust-42";

/// The order of every sample event.
pub const ORDER: &str = "o-1001";

/// Free text that sample events carry and no notification may repeat.
pub const FREE_TEXT: &[&str] = &["Van broke down", "Invalidenstrasse", "dog in the garden"];

/// When the clock stands in tests: 2026-11-22 10:00 UTC.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
}

/// The sample delivery address.
pub fn address() -> Address {
    Address::parse(UncheckedAddress {
        recipient: "Erika Mustermann".into(),
        line1: "Heidestrasse 17".into(),
        line2: Some("Hinterhaus".into()),
        city: "Koeln".into(),
        postal_code: "51147".into(),
        country: "DE".into(),
    })
    .unwrap()
}

/// What of the address must never reach a notification.
pub fn address_lines() -> Vec<&'static str> {
    vec![
        "Erika",
        "Mustermann",
        "Heidestrasse",
        "Hinterhaus",
        "Koeln",
        "51147",
    ]
}

fn order_id() -> OrderId {
    OrderId::parse(ORDER).unwrap()
}

fn customer_id() -> CustomerId {
    CustomerId::parse(CUSTOMER).unwrap()
}

fn delivery_id() -> DeliveryId {
    DeliveryId::for_order(&order_id())
}

/// `event` as stored at `version` of `stream`, caused by request `req-1`.
pub fn stored<E: Event>(stream: StreamId, version: u64, event: E) -> StoredEvent {
    let context = EventContext {
        correlation_id: CorrelationId::parse("req-1").unwrap(),
        causation_id: "req-1".into(),
        actor: Actor::customer(&customer_id()),
        occurred_at: now() - Duration::hours(1),
    };
    StoredEvent::stamp(&stream, version - 1, &[event], &context).remove(0)
}

fn order(version: u64, event: OrderEvent) -> StoredEvent {
    stored(StreamId::order(order_id()), version, event)
}

fn delivery(version: u64, event: DeliveryEvent) -> StoredEvent {
    stored(StreamId::delivery(delivery_id()), version, event)
}

/// `OrderPlaced`: 2 × 12.50 + 3 × 1.99 = 30.97 EUR, 5 items.
pub fn order_placed() -> StoredEvent {
    let line = |sku: &str, quantity: u32, unit_price: u64| LineItem {
        sku: Sku::parse(sku).unwrap(),
        quantity: quantity.try_into().unwrap(),
        unit_price: unit_price.try_into().unwrap(),
    };
    order(
        1,
        OrderEvent::OrderPlaced(OrderPlaced {
            order_id: order_id(),
            customer_id: customer_id(),
            items: vec![line("sku-1", 2, 1_250), line("sku-2", 3, 199)],
            total: Cents::new(3_097),
            currency: Currency::EUR,
            delivery_address: address(),
        }),
    )
}

/// `DeliveryScheduled`, promised by 2026-11-24 18:00 UTC.
pub fn delivery_scheduled() -> StoredEvent {
    delivery(
        1,
        DeliveryEvent::DeliveryScheduled(DeliveryScheduled {
            delivery_id: delivery_id(),
            order_id: order_id(),
            customer_id: customer_id(),
            delivery_address: address(),
            promised_by: Utc.with_ymd_and_hms(2026, 11, 24, 18, 0, 0).unwrap(),
        }),
    )
}

/// `DeliveryDelayed` number `delay_number`: from 2026-11-24 18:00 to 2026-11-25 12:00 UTC.
pub fn delivery_delayed(delay_number: u32) -> StoredEvent {
    delivery(
        2 + u64::from(delay_number),
        DeliveryEvent::DeliveryDelayed(DeliveryDelayed {
            delivery_id: delivery_id(),
            order_id: order_id(),
            customer_id: customer_id(),
            delay_number,
            previous_eta: Utc.with_ymd_and_hms(2026, 11, 24, 18, 0, 0).unwrap(),
            new_eta: Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap(),
            reason: "Van broke down outside Invalidenstrasse 117".into(),
        }),
    )
}

/// `DeliveryCompleted`.
pub fn delivery_completed() -> StoredEvent {
    delivery(
        3,
        DeliveryEvent::DeliveryCompleted(DeliveryCompleted {
            delivery_id: delivery_id(),
            order_id: order_id(),
            customer_id: customer_id(),
        }),
    )
}

/// `OrderCancelled` for `reason`.
pub fn order_cancelled(reason: CancellationReason) -> StoredEvent {
    order(
        2,
        OrderEvent::OrderCancelled(OrderCancelled {
            order_id: order_id(),
            customer_id: customer_id(),
            reason,
        }),
    )
}

/// The compensation reason of a failed delivery, with the courier's free text.
pub fn delivery_failed() -> CancellationReason {
    CancellationReason::DeliveryFailed {
        detail: "Nobody home, dog in the garden".into(),
    }
}

/// `DeliveryCancellationRefused` in `status`.
pub fn cancellation_refused(status: DeliveryStatus) -> StoredEvent {
    delivery(
        3,
        DeliveryEvent::DeliveryCancellationRefused(DeliveryCancellationRefused {
            delivery_id: delivery_id(),
            order_id: order_id(),
            customer_id: customer_id(),
            status,
        }),
    )
}

/// A sample event of `event_type`.
pub fn sample(event_type: &str) -> StoredEvent {
    match event_type {
        "OrderPlaced" => order_placed(),
        "DeliveryScheduled" => delivery_scheduled(),
        "DeliveryDelayed" => delivery_delayed(1),
        "DeliveryCompleted" => delivery_completed(),
        "OrderCancelled" => order_cancelled(delivery_failed()),
        "DeliveryCancellationRefused" => cancellation_refused(DeliveryStatus::Dispatched),
        other => panic!("no sample {other}"),
    }
}

/// In-memory adapters and a fixed clock.
pub struct World {
    /// Records notifications; can be told to fail.
    pub notifier: InMemoryNotifier,
    /// The event store (coupons).
    pub store: InMemoryEventStore,
    /// The store's idempotency records: the markers.
    pub idempotency: InMemoryIdempotencyStore,
    /// Stands at [`now`].
    pub clock: FixedClock,
}

impl World {
    /// Empty stores, a working notifier.
    pub fn new() -> Self {
        let store = InMemoryEventStore::new();
        Self {
            notifier: InMemoryNotifier::default(),
            idempotency: store.idempotency(),
            store,
            clock: FixedClock::at(now()),
        }
    }

    /// What the notification handlers get.
    pub fn alert(&self) -> AlertDeps<'_> {
        AlertDeps {
            notifier: &self.notifier,
            markers: &self.idempotency,
            clock: &self.clock,
        }
    }

    /// What the coupon handler gets.
    pub fn coupons(&self) -> CouponDeps<'_> {
        CouponDeps {
            store: &self.store,
            clock: &self.clock,
        }
    }

    /// Delivers one SQS batch with these bodies to `handler`; the failed message ids.
    pub async fn deliver(&self, handler: &NotificationHandler, bodies: &[String]) -> Vec<String> {
        self.deliver_batch(handler, &sqs_event(bodies)).await
    }

    /// Delivers `batch` to `handler`; the failed message ids.
    pub async fn deliver_batch(
        &self,
        handler: &NotificationHandler,
        batch: &SqsEvent,
    ) -> Vec<String> {
        let deps = self.alert();
        failed_ids(
            &handle_sqs_batch(handler.name, batch, |event| handler.handle(&deps, event)).await,
        )
    }

    /// Delivers `batch` to `coupon-on-delivery-delayed`; the failed message ids.
    pub async fn deliver_coupons(&self, batch: &SqsEvent) -> Vec<String> {
        let deps = self.coupons();
        failed_ids(
            &handle_sqs_batch(coupon_on_delivery_delayed::NAME, batch, |event| {
                coupon_on_delivery_delayed::handle(&deps, event)
            })
            .await,
        )
    }
}

/// A marker store with faults: claims fail (`claims`), or claims succeed and completions fail
/// (`completions`: all of them, or `completions_failing(n)`: the first `n`). Counts completion
/// attempts.
pub struct BrokenMarkers {
    claims: bool,
    completions: bool,
    failing_completions: std::sync::atomic::AtomicU32,
    /// How many completions were tried.
    pub completion_attempts: std::sync::atomic::AtomicU32,
}

impl BrokenMarkers {
    /// Every claim fails.
    pub fn claims() -> Self {
        Self {
            claims: true,
            completions: false,
            failing_completions: 0.into(),
            completion_attempts: 0.into(),
        }
    }

    /// Claims succeed; every completion fails.
    pub fn completions() -> Self {
        Self {
            claims: false,
            completions: true,
            failing_completions: 0.into(),
            completion_attempts: 0.into(),
        }
    }

    /// Claims succeed; the first `n` completions fail, the next succeed.
    pub fn completions_failing(n: u32) -> Self {
        Self {
            claims: false,
            completions: false,
            failing_completions: n.into(),
            completion_attempts: 0.into(),
        }
    }
}

#[async_trait]
impl EffectMarkers for BrokenMarkers {
    async fn claim(
        &self,
        _key: &str,
        _holder: &str,
        _now_ms: i64,
        _lease_until_ms: i64,
        _expires_at: i64,
    ) -> Result<Claim, StoreError> {
        if self.claims {
            return Err(StoreError::Unavailable("injected fault".into()));
        }
        Ok(Claim::Claimed)
    }

    async fn complete(
        &self,
        _key: &str,
        _holder: &str,
        _response: serde_json::Value,
        _expires_at: i64,
    ) -> Result<bool, StoreError> {
        use std::sync::atomic::Ordering;
        self.completion_attempts.fetch_add(1, Ordering::Relaxed);
        let failing = self
            .failing_completions
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if self.completions || failing {
            return Err(StoreError::Unavailable("injected fault".into()));
        }
        Ok(true)
    }

    async fn release(&self, _key: &str, _holder: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Markers whose claims are applied but answered with an error, as when the store's answer is
/// lost; completions and releases go through.
pub struct LostClaimAnswers<'a>(pub &'a InMemoryIdempotencyStore);

#[async_trait]
impl EffectMarkers for LostClaimAnswers<'_> {
    async fn claim(
        &self,
        key: &str,
        holder: &str,
        now_ms: i64,
        lease_until_ms: i64,
        expires_at: i64,
    ) -> Result<Claim, StoreError> {
        self.0
            .claim(key, holder, now_ms, lease_until_ms, expires_at)
            .await?;
        Err(StoreError::Unavailable("the answer was lost".into()))
    }

    async fn complete(
        &self,
        key: &str,
        holder: &str,
        response: serde_json::Value,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        self.0.complete(key, holder, response, expires_at).await
    }

    async fn release(&self, key: &str, holder: &str) -> Result<(), StoreError> {
        self.0.release(key, holder).await
    }
}
