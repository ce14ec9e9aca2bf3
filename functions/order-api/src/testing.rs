//! Handler-test support: the app on in-memory adapters with a fixed clock, and requests built from
//! real API Gateway v2 event fixtures (`fixtures/`), changed only where a test says so. Compiled
//! for this crate's tests and, with the `testing` feature, for the integration suites.
// Test support: a panic is how a broken fixture reports itself.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use lambda_http::http::HeaderMap;
use lambda_http::{Body, Request};
use serde_json::{Value, json};
use shared::adapters::clock::FixedClock;
use shared::adapters::memory::{InMemoryEventStore, InMemoryOrderViews};

use crate::{App, Settings};

/// A `POST /orders` event as API Gateway sends it.
pub const POST_ORDERS: &str = include_str!("../fixtures/apigw_v2_post_orders.json");
/// A `GET /orders/{id}` event as API Gateway sends it.
pub const GET_ORDER: &str = include_str!("../fixtures/apigw_v2_get_order.json");

/// The app and handles on its in-memory adapters.
pub struct Harness {
    pub app: App,
    pub store: InMemoryEventStore,
    pub views: InMemoryOrderViews,
    pub clock: Arc<FixedClock>,
}

pub fn harness() -> Harness {
    let store = InMemoryEventStore::new();
    let views = InMemoryOrderViews::default();
    let clock = Arc::new(FixedClock::at(
        Utc.with_ymd_and_hms(2026, 11, 28, 10, 15, 42).unwrap(),
    ));
    let app = App {
        store: Arc::new(store.clone()),
        idempotency: Arc::new(store.idempotency()),
        views: Arc::new(views.clone()),
        clock: clock.clone(),
        settings: Settings::default(),
    };
    Harness {
        app,
        store,
        views,
        clock,
    }
}

/// The body of the `POST /orders` fixture.
pub fn order_body() -> Value {
    let event: Value = serde_json::from_str(POST_ORDERS).unwrap();
    serde_json::from_str(event["body"].as_str().unwrap()).unwrap()
}

/// A request from the `GET` fixture (or the `POST` one when there is a body), with `method`,
/// `path` (query string included) and `body` replaced and `headers` added.
pub fn request(method: &str, path: &str, body: Option<&str>, headers: &[(&str, &str)]) -> Request {
    let template = if body.is_some() {
        POST_ORDERS
    } else {
        GET_ORDER
    };
    let mut event: Value = serde_json::from_str(template).unwrap();
    let (raw_path, raw_query) = path.split_once('?').unwrap_or((path, ""));
    event["rawPath"] = json!(raw_path);
    event["rawQueryString"] = json!(raw_query);
    event["requestContext"]["http"]["method"] = json!(method);
    event["requestContext"]["http"]["path"] = json!(raw_path);
    let route_key = format!("{method} {raw_path}");
    event["routeKey"] = json!(route_key);
    event["requestContext"]["routeKey"] = json!(route_key);
    if !raw_query.is_empty() {
        let params: serde_json::Map<String, Value> = raw_query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect();
        event["queryStringParameters"] = Value::Object(params);
    }
    let object = event.as_object_mut().unwrap();
    object.remove("pathParameters");
    match body {
        Some(body) => {
            object.insert("body".into(), json!(body));
            object["headers"]["content-length"] = json!(body.len().to_string());
        }
        None => {
            object.remove("body");
        }
    }
    object["headers"]
        .as_object_mut()
        .unwrap()
        .remove("idempotency-key");
    for (name, value) in headers {
        object["headers"][name.to_ascii_lowercase()] = json!(value);
    }
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

/// A `POST /orders` with `body` and the given headers.
pub fn post_orders(body: &Value, headers: &[(&str, &str)]) -> Request {
    request("POST", "/orders", Some(&body.to_string()), headers)
}

/// What came back.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// Asserts a problem response naming `field`.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, field: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.headers["content-type"], "application/problem+json",
            "{}",
            self.body
        );
        assert_eq!(self.body["field"], field, "{}", self.body);
        assert!(self.body["rule"].is_string(), "{}", self.body);
        assert_eq!(self.body["status"], status);
    }
}

pub async fn send(app: &App, request: Request) -> Answer {
    let response = app.handle(request).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = match response.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap(),
        Body::Empty => Value::Null,
        Body::Binary(bytes) => serde_json::from_slice(bytes).unwrap(),
        _ => Value::Null,
    };
    Answer {
        status,
        headers,
        body,
    }
}
