//! Handler-test support for the courier API: the app on in-memory adapters with a fixed clock,
//! requests built from real API Gateway v2 event fixtures (`fixtures/`), changed only where a test
//! says so, and a scheduled delivery to act on (stored the way `delivery-on-order-placed` stores
//! it: [`DeliveryCommand::Schedule`] through [`repository::execute`]). Compiled for this crate's
//! tests and, with the `testing` feature, for the integration suites.
// Test support: a panic is how a broken fixture reports itself.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use adapters::clock::FixedClock;
use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::address::{Address, UncheckedAddress};
use domain::delivery::{Delivery, DeliveryCommand};
use domain::envelope::StoredEvent;
use domain::envelope::{Actor, CorrelationId, EventContext};
use domain::ids::{CustomerId, DeliveryId, OrderId, StreamId};
use domain::ports::{AppendRequest, EventStore, StoreError};
use domain::repository;
use lambda_http::Request;
use serde_json::{Value, json};
pub use testkit::http::{Answer, apigw_request, with_caller, without_caller};
use testkit::memory::InMemoryEventStore;
use tokio::sync::{Barrier, Notify};

use super::routes::CourierAction;
use super::{App, Settings};

/// A `POST /deliveries/{id}/dispatch` event as API Gateway sends it.
pub const POST_DISPATCH: &str = include_str!("../../fixtures/apigw_v2_post_delivery_dispatch.json");
/// A `GET /deliveries/{id}` event as API Gateway sends it.
pub const GET_DELIVERY: &str = include_str!("../../fixtures/apigw_v2_get_delivery.json");

/// The order whose delivery the fixtures address.
pub const FIXTURE_ORDER_ID: &str = "018f1c2e-7b3a-7000-8000-000000000001";
/// The delivery the fixtures address (derived from [`FIXTURE_ORDER_ID`]).
pub const FIXTURE_DELIVERY_ID: &str = "d-018f1c2e-7b3a-7000-8000-000000000001";
/// The customer of the fixture order.
pub const FIXTURE_CUSTOMER_ID: &str = "cust-42";
/// The correlation id of the fixture order's placement (and so of its `DeliveryScheduled`).
pub const ORDER_CORRELATION_ID: &str = "order-correlation-1";
/// The delivery promise.
pub const SLA_HOURS: i64 = 2;

/// When the fixture order was placed.
pub fn placed_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 10, 15, 42).unwrap()
}

/// When the fixture delivery is promised: [`placed_at`] + [`SLA_HOURS`].
pub fn promised_by() -> DateTime<Utc> {
    placed_at() + Duration::hours(SLA_HOURS)
}

/// The app and handles on its in-memory adapters.
pub struct Harness {
    pub app: App,
    pub store: InMemoryEventStore,
    pub clock: Arc<FixedClock>,
}

/// The app on an empty store, its clock at the dispatch fixture's request time.
pub fn harness() -> Harness {
    let store = InMemoryEventStore::new();
    let clock = Arc::new(FixedClock::at(
        Utc.with_ymd_and_hms(2026, 11, 28, 11, 2, 10).unwrap(),
    ));
    let app = App {
        store: Arc::new(store.clone()),
        clock: clock.clone(),
        settings: Settings::default(),
    };
    Harness { app, store, clock }
}

/// The app with the fixture delivery scheduled (stream version 1).
pub async fn scheduled() -> Harness {
    let h = harness();
    let order_id = OrderId::parse(FIXTURE_ORDER_ID).unwrap();
    schedule(&h.store, &order_id, FIXTURE_CUSTOMER_ID, placed_at()).await;
    h
}

/// A valid delivery address.
pub fn sample_address() -> Address {
    Address::parse(UncheckedAddress {
        recipient: "Sample Recipient".into(),
        line1: "1 Sample Street".into(),
        line2: None,
        city: "Sampletown".into(),
        postal_code: "12345".into(),
        country: "DE".into(),
    })
    .unwrap()
}

/// Schedules the delivery of `order_id` as `delivery-on-order-placed` does: promised by
/// `placed_at` + [`SLA_HOURS`], correlated with the order's placement.
pub async fn schedule(
    store: &dyn EventStore,
    order_id: &OrderId,
    customer_id: &str,
    placed_at: DateTime<Utc>,
) -> DeliveryId {
    let delivery_id = DeliveryId::for_order(order_id);
    let command = DeliveryCommand::Schedule {
        order_id: order_id.clone(),
        customer_id: CustomerId::parse(customer_id).unwrap(),
        delivery_address: sample_address(),
        placed_at,
        sla: Duration::hours(SLA_HOURS),
    };
    let context = EventContext {
        correlation_id: CorrelationId::parse(ORDER_CORRELATION_ID).unwrap(),
        causation_id: "order-placed-event-1".into(),
        actor: Actor::system("delivery-on-order-placed"),
        occurred_at: placed_at + Duration::seconds(1),
    };
    let stored = repository::execute::<Delivery>(
        store,
        &StreamId::delivery(&delivery_id),
        &command,
        &context,
        None,
        3,
    )
    .await
    .expect("scheduling the delivery");
    assert_eq!(stored.len(), 1, "a new delivery is scheduled once");
    delivery_id
}

/// The body of the dispatch fixture.
pub fn dispatch_body() -> Value {
    let event: Value = serde_json::from_str(POST_DISPATCH).unwrap();
    serde_json::from_str(event["body"].as_str().unwrap()).unwrap()
}

/// A request from the `GET` fixture (or the `POST` one when there is a body), with `method`,
/// `path` (query string included) and `body` replaced and `headers` applied (a header given with
/// an empty value is removed).
pub fn request(method: &str, path: &str, body: Option<&str>, headers: &[(&str, &str)]) -> Request {
    let fixture = if body.is_some() {
        POST_DISPATCH
    } else {
        GET_DELIVERY
    };
    apigw_request(fixture, method, path, body, headers)
}

/// `POST /deliveries/{delivery_id}/<action>` with `body`, sent by the courier the body names
/// (`courier_id`; the fixture's courier when it names none).
pub fn act(delivery_id: &str, action: CourierAction, body: &Value) -> Request {
    let request = act_with(delivery_id, action, &body.to_string(), &[]);
    match body["courier_id"].as_str() {
        Some(courier) => with_caller(request, courier, &["couriers"]),
        None => request,
    }
}

/// `POST /deliveries/{delivery_id}/<action>` with a raw body and extra headers.
pub fn act_with(
    delivery_id: &str,
    action: CourierAction,
    body: &str,
    headers: &[(&str, &str)],
) -> Request {
    let path = format!("/deliveries/{delivery_id}/{}", action.segment());
    request("POST", &path, Some(body), headers)
}

/// `GET /deliveries/{delivery_id}`.
pub fn get(delivery_id: &str) -> Request {
    request("GET", &format!("/deliveries/{delivery_id}"), None, &[])
}

/// A dispatch body for `courier`.
pub fn dispatch_by(courier: &str) -> Value {
    json!({"courier_id": courier})
}

/// A delay body.
pub fn delay_by(courier: &str, new_eta: DateTime<Utc>, reason: &str) -> Value {
    json!({"courier_id": courier, "new_eta": new_eta.to_rfc3339(), "reason": reason})
}

/// A fail body.
pub fn fail_by(courier: &str, reason: &str) -> Value {
    json!({"courier_id": courier, "reason": reason})
}

pub async fn send(app: &App, request: Request) -> Answer {
    Answer::from_response(&app.handle(request).await)
}

/// Two requests racing on one stream, made repeatable: neither appends before both have loaded
/// and decided (so both decide on the same version); then the `first` appends, and only after it
/// has finished does the `second` — whose append meets the store's version check and, reloaded
/// and decided again, is retried. Waits give up after [`RACE_WAIT`], so a request that never
/// reaches its append fails the test instead of hanging it.
pub struct Race {
    decided: Barrier,
    first_done: Notify,
}

/// The longest a racing request waits for the other.
pub const RACE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl Race {
    /// A race between two requests: `(first, second)` stores over `inner`.
    pub fn between(inner: Arc<dyn EventStore>) -> (Arc<RacingStore>, Arc<RacingStore>) {
        let race = Arc::new(Self {
            decided: Barrier::new(2),
            first_done: Notify::new(),
        });
        let store = |first| {
            Arc::new(RacingStore {
                inner: inner.clone(),
                race: race.clone(),
                first,
                appends: AtomicU32::new(0),
            })
        };
        (store(true), store(false))
    }
}

/// One side of a [`Race`].
pub struct RacingStore {
    inner: Arc<dyn EventStore>,
    race: Arc<Race>,
    first: bool,
    appends: AtomicU32,
}

impl RacingStore {
    /// How many appends this side attempted.
    pub fn appends(&self) -> u32 {
        self.appends.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl EventStore for RacingStore {
    async fn append(&self, request: AppendRequest) -> Result<(), StoreError> {
        let attempt = self.appends.fetch_add(1, Ordering::SeqCst) + 1;
        if attempt > 1 {
            return self.inner.append(request).await;
        }
        let _ = tokio::time::timeout(RACE_WAIT, self.race.decided.wait()).await;
        if self.first {
            let result = self.inner.append(request).await;
            self.race.first_done.notify_one();
            result
        } else {
            let _ = tokio::time::timeout(RACE_WAIT, self.race.first_done.notified()).await;
            self.inner.append(request).await
        }
    }

    async fn load(&self, stream_id: &StreamId) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.load(stream_id).await
    }
}

/// `app` with `store` in place of its event store.
pub fn with_store(app: &App, store: Arc<dyn EventStore>) -> App {
    App {
        store,
        ..app.clone()
    }
}
