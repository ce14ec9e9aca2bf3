//! The metrics a function writes, read back from the Embedded Metric Format lines its invocations
//! write (docs/metrics.md): handlers on in-memory adapters, each invocation run through the
//! bootstrap's [`Emf::invocation`] with the output captured instead of stdout.
//!
//! One test, one process-wide recorder (the `metrics` facade has one global recorder, installed
//! once): its invocations run in order, the first being the process's cold start.

#![allow(clippy::expect_used)] // a test: a failed expectation is the failure

use std::collections::BTreeMap;
use std::future::Future;

use adapters::clock::FixedClock;
use chrono::{DateTime, Utc};
use function_registry::emf::Emf;
use lambda_glue::consumer::handle_queue_batch;
use lambda_glue::http::serve::HttpHandler;
use serde_json::{Value, json};
use stream_pipeline::{Deadline, StreamEvent, StreamHandler};
use testkit::lambda::{bus_event_body, sqs_event};
use testkit::memory::{
    InMemoryDeadLetters, InMemoryEventStore, InMemoryIdempotencyStore, InMemoryNotifier,
    InMemoryOrderViews, InMemoryPublisher,
};

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

/// What one document says: its namespace, its one dimension set with the values, and each
/// metric's unit and value.
#[derive(Debug, PartialEq)]
struct Emitted {
    namespace: String,
    /// The dimension set, in its order: (name, value).
    dimensions: Vec<(String, String)>,
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
    let [dimensions]: [Vec<String>; 1] =
        serde_json::from_value(directive["Dimensions"].clone()).expect("one dimension set");
    let dimensions = dimensions
        .into_iter()
        .map(|name| {
            let value = document[&name]
                .as_str()
                .expect("a dimension's value")
                .to_owned();
            (name, value)
        })
        .collect();
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

/// The document of counts `counted` with the dimension `Function` (and `ErrorKind` = `kind`).
fn counts(kind: Option<&str>, counted: &[(&str, u64)]) -> Emitted {
    let mut dimensions = vec![("Function".to_owned(), FUNCTION.to_owned())];
    dimensions.extend(kind.map(|kind| ("ErrorKind".to_owned(), kind.to_owned())));
    Emitted {
        namespace: "orderflow".into(),
        dimensions,
        metrics: counted
            .iter()
            .map(|(name, n)| ((*name).to_owned(), ("Count".to_owned(), json!(n))))
            .collect(),
    }
}

/// Runs `work` as one invocation: its output and what it wrote, document by document.
async fn invoke<T>(metrics: &Emf, work: impl Future<Output = T>) -> (T, Vec<Value>) {
    let mut out = Vec::new();
    let output = metrics.invocation(work, &mut out).await;
    (output, documents(&out))
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
    let (response, docs) = invoke(&metrics, HttpHandler::handle(&order_api.app, request)).await;
    assert_eq!(response.status(), 201);
    assert_eq!(
        docs.iter().map(emitted).collect::<Vec<_>>(),
        [counts(None, &[("ColdStart", 1), ("OrdersPlaced", 1)])]
    );
    let timestamp = docs[0]["_aws"]["Timestamp"].as_i64().expect("a timestamp");
    assert!((millis(before)..=millis(Utc::now())).contains(&timestamp));

    // 2. The same request malformed: a validation failure, no order, no second cold start.
    let bad = order_api::testing::post_orders(&json!({"items": "none"}), &[]);
    let (response, docs) = invoke(&metrics, HttpHandler::handle(&order_api.app, bad)).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        docs.iter().map(emitted).collect::<Vec<_>>(),
        [counts(Some("validation"), &[("HandlerErrors", 1)])]
    );

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
    let batch = sqs_event(std::slice::from_ref(&body));
    let (response, docs) = invoke(&metrics, handle_queue_batch(&scheduling, &batch)).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        docs.iter().map(emitted).collect::<Vec<_>>(),
        [counts(None, &[("DeliveriesScheduled", 1)])]
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
    let (response, docs) = invoke(&metrics, handle_queue_batch(&notifying, &batch)).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(notifier.sent().len(), 1);
    assert_eq!(
        docs.iter().map(emitted).collect::<Vec<_>>(),
        [
            counts(None, &[("NotificationsSent", 1)]),
            counts(Some("poison"), &[("HandlerErrors", 1)]),
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
    let (response, docs) = invoke(&metrics, publisher.handle(&batch, Deadline::none())).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(bus.published().len(), 3);
    assert_eq!(
        docs.iter().map(emitted).collect::<Vec<_>>(),
        [counts(None, &[("EventsPublished", 3)])]
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
    let (response, docs) = invoke(&metrics, projector.handle(&batch, Deadline::none())).await;
    let after = Utc::now();
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(views.writes(), 1);
    let [lagged] = docs.as_slice() else {
        panic!("one document: {docs:?}")
    };
    let mut lag = emitted(lagged);
    let (unit, values) = lag.metrics.remove("ProjectorLag").expect("the lag");
    assert_eq!(lag, counts(None, &[]), "the lag alone");
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

    // 6. An invocation that records nothing writes nothing.
    let empty = sqs_event(&[]);
    let (_, docs) = invoke(&metrics, handle_queue_batch(&scheduling, &empty)).await;
    assert!(docs.is_empty(), "{docs:?}");
}
