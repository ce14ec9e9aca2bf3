//! `EventBridgePublisher` against the emulator: stored events published to a custom bus arrive,
//! through a rule, on the handler's SQS queue as EventBridge events whose `detail` is the exact
//! envelope; rules filter on detail type; batches split by size; an event too large for
//! EventBridge is reported with every later one; a bus out of reach is `Unavailable`.

use std::collections::HashMap;
use std::time::Duration;

use adapters::eventbridge::{EventBridgePublisher, MAX_BYTES_PER_CALL};
use aws_sdk_eventbridge::config::retry::RetryConfig;
use chrono::SecondsFormat;
use domain::delivery::{Delivery, DeliveryCommand};
use domain::envelope::{Actor, EventContext, StoredEvent};
use domain::ids::{DeliveryId, StreamId};
use domain::order::{CancellationReason, Order, OrderCommand};
use domain::ports::{Backoff, EventPublisher, PublishError};
use domain::repository;
use integration_tests::{BusFixture, Emulator, customer_request, emulator, place, place_order};
use serde_json::{Value, json};
use testkit::memory::InMemoryEventStore;

const ARRIVAL: Duration = Duration::from_secs(20);

fn publisher(emulator: &Emulator, bus: &BusFixture) -> EventBridgePublisher {
    EventBridgePublisher::new(emulator.eventbridge(), &bus.bus_name)
}

/// Places `count` orders (one `OrderPlaced` each, as the order API stores them).
async fn placed_orders(
    store: &InMemoryEventStore,
    customer: &str,
    count: usize,
) -> Vec<StoredEvent> {
    let mut events = Vec::new();
    for _ in 0..count {
        let order = place_order(customer, 2);
        let stream = StreamId::order(&order.order_id);
        let context = customer_request(customer);
        events.extend(
            repository::execute::<Order>(store, &stream, &place(&order), &context, None, 1)
                .await
                .expect("placing an order"),
        );
    }
    events
}

/// Cancels the order of `placed` (an `OrderCancelled`, version 2 of its stream).
async fn cancel(store: &InMemoryEventStore, placed: &StoredEvent) -> StoredEvent {
    let context = EventContext::caused_by(placed, Actor::system("test"), placed.occurred_at);
    let mut events = repository::execute::<Order>(
        store,
        &placed.stream_id,
        &OrderCommand::Cancel {
            reason: CancellationReason::CustomerRequest,
        },
        &context,
        None,
        1,
    )
    .await
    .expect("cancelling");
    events.pop().expect("one OrderCancelled")
}

/// The envelopes in the messages' `detail`, by event id, after checking each message's
/// EventBridge fields against its envelope.
fn details_by_id(messages: &[Value], bus: &BusFixture) -> HashMap<String, StoredEvent> {
    let mut details = HashMap::new();
    for message in messages {
        let detail: StoredEvent = serde_json::from_value(message["detail"].clone())
            .unwrap_or_else(|e| panic!("detail is not an envelope ({e}): {message}"));
        assert_eq!(
            message["detail-type"],
            json!(detail.event_type),
            "{message}"
        );
        assert_eq!(
            message["source"],
            json!(domain::envelope::event_source(&detail.stream_id)),
            "{message}"
        );
        assert_eq!(
            message["time"],
            json!(
                detail
                    .occurred_at
                    .to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
            "Time = occurred_at (EventBridge keeps whole seconds)"
        );
        assert_eq!(message["version"], "0", "{message}");
        assert_eq!(message["resources"], json!([]), "{message}");
        assert!(
            message["id"].as_str().is_some_and(|id| !id.is_empty()),
            "{message}"
        );
        let previous = details.insert(detail.event_id.clone(), detail);
        assert!(
            previous.is_none(),
            "delivered twice: {message} (bus {})",
            bus.bus_name
        );
    }
    details
}

fn by_id(events: &[StoredEvent]) -> HashMap<String, StoredEvent> {
    events
        .iter()
        .map(|e| (e.event_id.clone(), e.clone()))
        .collect()
}

#[tokio::test]
async fn twenty_five_stored_events_arrive_as_twenty_five_messages_carrying_the_exact_envelope() {
    let emulator = emulator().await;
    let bus = emulator.bus_to_queue("eb-25", &[]).await;
    let events = placed_orders(&InMemoryEventStore::new(), "cust-eb-25", 25).await;

    publisher(&emulator, &bus)
        .publish(&events)
        .await
        .expect("publishing 25 events (three PutEvents calls)");

    let messages = emulator.receive_all(&bus.queue_url, 25, ARRIVAL).await;
    assert_eq!(messages.len(), 25);
    for message in &messages {
        assert_eq!(message["source"], "orderflow.order");
        assert_eq!(message["detail-type"], "OrderPlaced");
    }
    assert_eq!(
        details_by_id(&messages, &bus),
        by_id(&events),
        "every envelope field survives the bus, exactly"
    );
    emulator
        .assert_no_message(&bus.queue_url, Duration::from_secs(1))
        .await;
    emulator
        .assert_no_message(&bus.dlq_url, Duration::from_secs(1))
        .await;
}

#[tokio::test]
async fn a_rule_on_one_detail_type_receives_only_those_events() {
    let emulator = emulator().await;
    let bus = emulator
        .bus_to_queue("eb-filter", &["OrderCancelled"])
        .await;
    let store = InMemoryEventStore::new();
    let placed = placed_orders(&store, "cust-eb-filter", 4).await;
    let mut events = placed.clone();
    for order in &placed[..2] {
        events.push(cancel(&store, order).await);
    }
    let cancelled: Vec<StoredEvent> = events[4..].to_vec();
    assert!(cancelled.iter().all(|e| e.event_type == "OrderCancelled"));

    publisher(&emulator, &bus)
        .publish(&events)
        .await
        .expect("publishing");

    let messages = emulator.receive_all(&bus.queue_url, 2, ARRIVAL).await;
    assert_eq!(details_by_id(&messages, &bus), by_id(&cancelled));
    emulator
        .assert_no_message(&bus.queue_url, Duration::from_secs(1))
        .await;
}

#[tokio::test]
async fn each_context_publishes_under_its_own_source() {
    let emulator = emulator().await;
    let bus = emulator.bus_to_queue("eb-sources", &[]).await;
    let store = InMemoryEventStore::new();
    let placed = placed_orders(&store, "cust-eb-src", 1).await;
    let order = place_order("cust-eb-src", 1);
    let delivery_stream = StreamId::delivery(DeliveryId::for_order(&order.order_id));
    let scheduled = repository::execute::<Delivery>(
        &store,
        &delivery_stream,
        &DeliveryCommand::Schedule {
            order_id: order.order_id.clone(),
            customer_id: order.customer_id.clone(),
            delivery_address: order.delivery_address.clone(),
            placed_at: placed[0].occurred_at,
            sla: chrono::Duration::hours(48),
        },
        &EventContext::caused_by(&placed[0], Actor::system("test"), placed[0].occurred_at),
        None,
        1,
    )
    .await
    .expect("scheduling a delivery");
    let events = [placed, scheduled].concat();

    publisher(&emulator, &bus)
        .publish(&events)
        .await
        .expect("publishing");

    let messages = emulator.receive_all(&bus.queue_url, 2, ARRIVAL).await;
    let mut sources: Vec<(&str, &str)> = messages
        .iter()
        .map(|m| {
            (
                m["source"].as_str().unwrap_or_default(),
                m["detail-type"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    sources.sort_unstable();
    assert_eq!(
        sources,
        [
            ("orderflow.delivery", "DeliveryScheduled"),
            ("orderflow.order", "OrderPlaced")
        ]
    );
    assert_eq!(details_by_id(&messages, &bus), by_id(&events));
}

/// Stored events whose data carries `kb` kilobytes of padding (a stand-in for large payloads).
fn padded(events: &[StoredEvent], kb: usize) -> Vec<StoredEvent> {
    events
        .iter()
        .map(|event| {
            let mut event = event.clone();
            event.data["padding"] = json!("p".repeat(kb * 1024));
            event
        })
        .collect()
}

#[tokio::test]
async fn large_events_are_split_across_calls_and_all_arrive() {
    let emulator = emulator().await;
    let bus = emulator.bus_to_queue("eb-large", &[]).await;
    // 5 × ~100 KB: three calls under the 256 KB limit.
    let events = padded(
        &placed_orders(&InMemoryEventStore::new(), "cust-eb-large", 5).await,
        100,
    );

    publisher(&emulator, &bus)
        .publish(&events)
        .await
        .expect("publishing large events");

    let messages = emulator.receive_all(&bus.queue_url, 5, ARRIVAL).await;
    assert_eq!(details_by_id(&messages, &bus), by_id(&events));
}

#[tokio::test]
async fn an_event_too_large_for_eventbridge_is_reported_with_every_later_event() {
    let emulator = emulator().await;
    let bus = emulator.bus_to_queue("eb-too-large", &[]).await;
    let mut events = placed_orders(&InMemoryEventStore::new(), "cust-eb-tl", 4).await;
    events[2] = padded(&events[2..3], MAX_BYTES_PER_CALL / 1024)
        .pop()
        .expect("one event");

    let result = publisher(&emulator, &bus).publish(&events).await;
    assert_eq!(
        result,
        Err(PublishError::Partial {
            failed_event_ids: vec![events[2].event_id.clone(), events[3].event_id.clone()],
        }),
        "the event too large and the one after it (not attempted), in order"
    );

    let messages = emulator.receive_all(&bus.queue_url, 2, ARRIVAL).await;
    assert_eq!(details_by_id(&messages, &bus), by_id(&events[..2]));
    emulator
        .assert_no_message(&bus.queue_url, Duration::from_secs(1))
        .await;
}

#[tokio::test]
async fn a_bus_out_of_reach_is_unavailable_after_the_attempts() {
    let emulator = emulator().await;
    // A port that was just free: every call fails to connect.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let config = aws_sdk_eventbridge::config::Builder::from(&emulator.config)
        .endpoint_url(format!("http://127.0.0.1:{closed_port}"))
        .retry_config(RetryConfig::disabled())
        .build();
    let backoff = Backoff {
        max_attempts: 3,
        initial: Duration::from_millis(10),
        max: Duration::from_millis(20),
    };
    let publisher = EventBridgePublisher::new(
        aws_sdk_eventbridge::Client::from_conf(config),
        "orderflow-bus",
    )
    .with_backoff(backoff);
    let events = placed_orders(&InMemoryEventStore::new(), "cust-eb-down", 3).await;

    let result = publisher.publish(&events).await;
    assert!(
        matches!(&result, Err(PublishError::Unavailable(reason)) if reason.contains("3 attempts")),
        "nothing was published, so the caller retries from the first event: {result:?}"
    );
}
