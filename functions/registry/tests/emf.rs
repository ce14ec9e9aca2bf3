//! The metrics a function writes, read back from the Embedded Metric Format lines its invocations
//! write (docs/metrics.md): handlers on in-memory adapters, each invocation run through the
//! bootstrap's [`Emf::invocation`] with the output captured instead of stdout.
//!
//! One test, one process-wide recorder (the `metrics` facade has one global recorder, installed
//! once): its invocations run in order, the first being the process's cold start.

#![allow(clippy::expect_used)] // a test: a failed expectation is the failure

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use function_registry::emf::Emf;
use serde_json::{Value, json};
use shared::adapters::clock::FixedClock;
use shared::adapters::memory::{
    InMemoryDeadLetters, InMemoryEventStore, InMemoryIdempotencyStore, InMemoryNotifier,
    InMemoryOrderViews, InMemoryPublisher,
};
use shared::consumer::{bus_event_body, handle_queue_batch, sqs_event};
use shared::http::serve::HttpHandler;
use stream_pipeline::{Deadline, StreamEvent, StreamHandler};

const FUNCTION: &str = "orderflow-test-function";
const STREAM_BATCH: &str =
    include_str!("../../stream-pipeline/fixtures/dynamodb_stream_batch.json");

/// The EMF documents `out` holds: one JSON object a line, each with its `_aws` metadata.
fn documents(out: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(out).expect("EMF output is UTF-8");
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "every document ends its line: {text:?}"
    );
    text.lines()
        .map(|line| {
            let document: Value = serde_json::from_str(line).expect("each line is one JSON object");
            assert!(document["_aws"].is_object(), "{line}");
            document
        })
        .collect()
}

/// What one document says: its namespace, dimension sets, and each metric's unit and value.
#[derive(Debug, PartialEq)]
struct Emitted {
    namespace: String,
    dimensions: Vec<Vec<String>>,
    /// By metric name: (unit, value).
    metrics: BTreeMap<String, (String, Value)>,
}

fn emitted(document: &Value) -> Emitted {
    let [directive] = document["_aws"]["CloudWatchMetrics"]
        .as_array()
        .expect("CloudWatchMetrics")
        .clone()
        .try_into()
        .expect("one metric directive");
    let dimensions: Vec<Vec<String>> =
        serde_json::from_value(directive["Dimensions"].clone()).expect("dimension sets");
    for name in dimensions.iter().flatten() {
        assert!(document[name].is_string(), "dimension {name} has a value");
    }
    let metrics = directive["Metrics"]
        .as_array()
        .expect("Metrics")
        .iter()
        .map(|metric| {
            let name = metric["Name"].as_str().expect("a name").to_owned();
            let unit = metric["Unit"].as_str().expect("a unit").to_owned();
            let value = document[&name].clone();
            (name, (unit, value))
        })
        .collect();
    Emitted {
        namespace: directive["Namespace"].as_str().expect("a namespace").into(),
        dimensions,
        metrics,
    }
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, (String, Value)> {
    pairs
        .iter()
        .map(|(name, n)| ((*name).to_owned(), ("Count".to_owned(), json!(n))))
        .collect()
}

fn by_function() -> Vec<Vec<String>> {
    vec![vec!["Function".to_owned()]]
}

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

#[tokio::test]
async fn each_invocation_writes_its_metrics_as_emf_lines() {
    let metrics = Emf::install(FUNCTION).expect("the recorder installs");
    assert!(
        Emf::install(FUNCTION).is_err(),
        "one recorder per process: a second install is refused"
    );

    // 1. order-api places an order: the process's first invocation, so also its cold start.
    let order_api = order_api::testing::harness();
    let request = order_api::testing::post_orders(&order_api::testing::order_body(), &[]);
    let before = Utc::now();
    let mut out = Vec::new();
    let response = metrics
        .invocation(HttpHandler::handle(&order_api.app, request), &mut out)
        .await;
    assert_eq!(response.status(), 201);
    let docs = documents(&out);
    let [placed] = docs.as_slice() else {
        panic!("one document: {docs:?}")
    };
    assert_eq!(
        emitted(placed),
        Emitted {
            namespace: "orderflow".into(),
            dimensions: by_function(),
            metrics: counts(&[("ColdStart", 1), ("OrdersPlaced", 1)]),
        }
    );
    assert_eq!(placed["Function"], FUNCTION);
    let timestamp = placed["_aws"]["Timestamp"].as_i64().expect("a timestamp");
    assert!((millis(before)..=millis(Utc::now())).contains(&timestamp));

    // 2. The same request malformed: a validation failure, no order, no second cold start.
    let bad = order_api::testing::post_orders(&json!({"items": "none"}), &[]);
    let mut out = Vec::new();
    let response = metrics
        .invocation(HttpHandler::handle(&order_api.app, bad), &mut out)
        .await;
    assert_eq!(response.status(), 400);
    let docs = documents(&out);
    let [refused] = docs.as_slice() else {
        panic!("one document: {docs:?}")
    };
    assert_eq!(
        emitted(refused),
        Emitted {
            namespace: "orderflow".into(),
            dimensions: vec![vec!["Function".to_owned(), "ErrorKind".to_owned()]],
            metrics: counts(&[("HandlerErrors", 1)]),
        }
    );
    assert_eq!(refused["ErrorKind"], "validation");

    // 3. The stored OrderPlaced reaches delivery-on-order-placed and alert-on-order-placed through
    //    their queues: a delivery scheduled, a customer notified.
    let [order_placed] = order_api.store.all_events().try_into().expect("one event");
    let body = bus_event_body(&order_placed);
    let clock = FixedClock::at(order_placed.occurred_at);
    let delivery_store = InMemoryEventStore::new();
    let scheduling = delivery::reactions::Reaction {
        name: delivery::reactions::ON_ORDER_PLACED,
        reactions: delivery::reactions::Reactions {
            store: &delivery_store,
            clock: &clock,
            sla: chrono::Duration::hours(48),
        },
    };
    let mut out = Vec::new();
    let batch = sqs_event(std::slice::from_ref(&body));
    let response = metrics
        .invocation(handle_queue_batch(&scheduling, &batch), &mut out)
        .await;
    assert!(response.batch_item_failures.is_empty());
    let docs = documents(&out);
    assert_eq!(
        docs.iter().map(emitted).collect::<Vec<_>>(),
        [Emitted {
            namespace: "orderflow".into(),
            dimensions: by_function(),
            metrics: counts(&[("DeliveriesScheduled", 1)]),
        }]
    );

    let notifier = InMemoryNotifier::default();
    let markers = InMemoryIdempotencyStore::default();
    let notifying = alert::notify::NotificationFunction {
        handler: alert::on_order_placed::HANDLER,
        deps: alert::notify::AlertDeps {
            notifier: &notifier,
            markers: &markers,
            clock: &clock,
        },
    };
    // The event twice (a duplicate delivery) and a body that is no event: one notification, one
    // poison message.
    let batch = sqs_event(&[body.clone(), body, "not an event".into()]);
    let mut out = Vec::new();
    let response = metrics
        .invocation(handle_queue_batch(&notifying, &batch), &mut out)
        .await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(notifier.sent().len(), 1);
    let docs = documents(&out);
    let kinds: Vec<(Emitted, &Value)> =
        docs.iter().map(|d| (emitted(d), &d["ErrorKind"])).collect();
    assert_eq!(
        kinds,
        [
            (
                Emitted {
                    namespace: "orderflow".into(),
                    dimensions: by_function(),
                    metrics: counts(&[("NotificationsSent", 1)]),
                },
                &Value::Null
            ),
            (
                Emitted {
                    namespace: "orderflow".into(),
                    dimensions: vec![vec!["Function".to_owned(), "ErrorKind".to_owned()]],
                    metrics: counts(&[("HandlerErrors", 1)]),
                },
                &json!("poison")
            ),
        ]
    );

    // 4. event-publisher puts the stream batch's three events on the bus.
    let batch: StreamEvent = serde_json::from_str(STREAM_BATCH).expect("the stream fixture");
    let bus = InMemoryPublisher::default();
    let letters = InMemoryDeadLetters::default();
    let publisher = stream_pipeline::Publisher {
        bus: &bus,
        poison: &letters,
    };
    let mut out = Vec::new();
    let response = metrics
        .invocation(publisher.handle(&batch, Deadline::none()), &mut out)
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(bus.published().len(), 3);
    let docs = documents(&out);
    assert_eq!(
        docs.iter().map(emitted).collect::<Vec<_>>(),
        [Emitted {
            namespace: "orderflow".into(),
            dimensions: by_function(),
            metrics: counts(&[("EventsPublished", 3)]),
        }]
    );

    // 5. The projector projects them: its lag is now minus the oldest event's time, in ms.
    let oldest: DateTime<Utc> = "2026-11-28T10:15:42.123Z".parse().expect("a time");
    let views = InMemoryOrderViews::default();
    let store = InMemoryEventStore::new();
    let projector = stream_pipeline::Projector {
        store: &store,
        views: &views,
        poison: &letters,
    };
    let before = Utc::now();
    let mut out = Vec::new();
    let response = metrics
        .invocation(projector.handle(&batch, Deadline::none()), &mut out)
        .await;
    let after = Utc::now();
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(views.writes(), 1);
    let docs = documents(&out);
    let [lagged] = docs.as_slice() else {
        panic!("one document: {docs:?}")
    };
    let lag = emitted(lagged);
    assert_eq!(
        (lag.namespace.as_str(), &lag.dimensions),
        ("orderflow", &by_function())
    );
    let (unit, values) = &lag.metrics["ProjectorLag"];
    assert_eq!(unit, "Milliseconds");
    let [value] = values.as_array().expect("a histogram's values").as_slice() else {
        panic!("one value per invocation: {values}")
    };
    let value = value.as_f64().expect("a number");
    let (least, most) = (
        millis(before) - millis(oldest),
        millis(after) - millis(oldest),
    );
    assert!(
        (least as f64..=most as f64).contains(&value),
        "{least} ≤ {value} ≤ {most}"
    );
    assert_eq!(lag.metrics.len(), 1, "{:?}", lag.metrics);

    // 6. An invocation that records nothing writes nothing.
    let mut out = Vec::new();
    let empty = sqs_event(&[]);
    metrics
        .invocation(handle_queue_batch(&scheduling, &empty), &mut out)
        .await;
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
}
