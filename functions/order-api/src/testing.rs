//! Handler-test support: the app on in-memory adapters with a fixed clock, and requests built from
//! real API Gateway v2 event fixtures (`fixtures/`), changed only where a test says so. Compiled
//! for this crate's tests and, with the `testing` feature, for the integration suites.
// Test support: a panic is how a broken fixture reports itself.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use adapters::clock::FixedClock;
use chrono::{TimeZone, Utc};
use domain::catalogue::parse_catalogue;
use lambda_http::Request;
use serde_json::Value;
pub use testkit::http::{Answer, apigw_request, with_caller, without_caller};
use testkit::memory::{InMemoryCatalogue, InMemoryEventStore, InMemoryOrderViews};

use crate::{App, Settings};

/// A `POST /orders` event as API Gateway sends it.
pub const POST_ORDERS: &str = include_str!("../fixtures/apigw_v2_post_orders.json");
/// A `GET /orders/{id}` event as API Gateway sends it.
pub const GET_ORDER: &str = include_str!("../fixtures/apigw_v2_get_order.json");

/// The sample catalogue the repository ships (`catalogue/sample.json`).
pub const SAMPLE_CATALOGUE: &str = include_str!("../../../catalogue/sample.json");

/// The customer the fixtures are sent by.
pub const FIXTURE_CUSTOMER: &str = "cust-42";

/// The app and handles on its in-memory adapters.
pub struct Harness {
    pub app: App,
    pub store: InMemoryEventStore,
    pub views: InMemoryOrderViews,
    pub catalogue: InMemoryCatalogue,
    pub clock: Arc<FixedClock>,
}

pub fn harness() -> Harness {
    let store = InMemoryEventStore::new();
    let views = InMemoryOrderViews::default();
    let catalogue = InMemoryCatalogue::with(parse_catalogue(SAMPLE_CATALOGUE).unwrap());
    let clock = Arc::new(FixedClock::at(
        Utc.with_ymd_and_hms(2026, 11, 28, 10, 15, 42).unwrap(),
    ));
    let app = App {
        store: Arc::new(store.clone()),
        idempotency: Arc::new(store.idempotency()),
        views: Arc::new(views.clone()),
        catalogue: Arc::new(catalogue.clone()),
        clock: clock.clone(),
        settings: Settings::default(),
    };
    Harness {
        app,
        store,
        views,
        catalogue,
        clock,
    }
}

/// The body of the `POST /orders` fixture.
pub fn order_body() -> Value {
    let event: Value = serde_json::from_str(POST_ORDERS).unwrap();
    serde_json::from_str(event["body"].as_str().unwrap()).unwrap()
}

/// A request from the `GET` fixture (or the `POST` one when there is a body), with `method`,
/// `path` (query string included) and `body` replaced and `headers` added (the fixture's
/// `Idempotency-Key` is left out unless given).
pub fn request(method: &str, path: &str, body: Option<&str>, headers: &[(&str, &str)]) -> Request {
    let fixture = if body.is_some() {
        POST_ORDERS
    } else {
        GET_ORDER
    };
    let mut all = vec![("idempotency-key", "")];
    all.extend_from_slice(headers);
    apigw_request(fixture, method, path, body, &all)
}

/// A `POST /orders` with `body` and the given headers.
pub fn post_orders(body: &Value, headers: &[(&str, &str)]) -> Request {
    request("POST", "/orders", Some(&body.to_string()), headers)
}

pub async fn send(app: &App, request: Request) -> Answer {
    Answer::from_response(&app.handle(request).await)
}

/// `request` sent by customer `id`.
pub fn as_customer(request: Request, id: &str) -> Request {
    with_caller(request, id, &["customers"])
}

/// `request` sent by support user `id`.
pub fn as_support(request: Request, id: &str) -> Request {
    with_caller(request, id, &["support"])
}

/// `request` sent by courier `id`.
pub fn as_courier(request: Request, id: &str) -> Request {
    with_caller(request, id, &["couriers"])
}
