//! The order reactions on SQS events as Lambda delivers them, with in-memory adapters.

use adapters::clock::FixedClock;
use chrono::{TimeZone, Utc};
use domain::delivery::{DeliveryCompleted, DeliveryDispatched, DeliveryEvent, DeliveryFailed};
use domain::ids::{CourierId, CustomerId, DeliveryId, OrderId};
use domain::ports::EventStore;
use lambda_glue::consumer::handle_sqs_batch;
use serde_json::json;
use testkit::lambda::{bus_event_body, failed_ids, sqs_event};

use super::*;
use crate::testing::{harness, order_body, post_orders, request, send};

fn delivery_event(
    order_id: &str,
    event: fn(DeliveryId, OrderId, CustomerId) -> DeliveryEvent,
) -> StoredEvent {
    let order = OrderId::parse(order_id).unwrap();
    let delivery = DeliveryId::for_order(&order);
    let customer = CustomerId::parse("cust-42").unwrap();
    let context = EventContext {
        correlation_id: domain::envelope::CorrelationId::parse("req-saga").unwrap(),
        causation_id: "cause".into(),
        actor: Actor::system("test"),
        occurred_at: Utc.with_ymd_and_hms(2026, 11, 28, 11, 0, 0).unwrap(),
    };
    let stream = StreamId::delivery(&delivery);
    StoredEvent::stamp(&stream, 2, &[event(delivery, order, customer)], &context).remove(0)
}

fn dispatched(d: DeliveryId, o: OrderId, c: CustomerId) -> DeliveryEvent {
    DeliveryEvent::DeliveryDispatched(DeliveryDispatched {
        delivery_id: d,
        order_id: o,
        customer_id: c,
        courier_id: CourierId::parse("courier-1").unwrap(),
    })
}

fn completed(d: DeliveryId, o: OrderId, c: CustomerId) -> DeliveryEvent {
    DeliveryEvent::DeliveryCompleted(DeliveryCompleted {
        delivery_id: d,
        order_id: o,
        customer_id: c,
    })
}

fn failed(d: DeliveryId, o: OrderId, c: CustomerId) -> DeliveryEvent {
    DeliveryEvent::DeliveryFailed(DeliveryFailed {
        delivery_id: d,
        order_id: o,
        customer_id: c,
        reason: "recipient not found".into(),
    })
}

async fn order_types(store: &dyn EventStore, order_id: &str) -> Vec<String> {
    store
        .load(&StreamId::new("order", order_id))
        .await
        .unwrap()
        .iter()
        .map(|e| e.event_type.clone())
        .collect()
}

async fn run(reactions: &Reactions<'_>, handler: &str, events: &[StoredEvent]) -> Vec<String> {
    let bodies: Vec<String> = events.iter().map(bus_event_body).collect();
    failed_ids(
        &handle_sqs_batch(handler, &sqs_event(&bodies), |e| {
            reactions.react(handler, e)
        })
        .await,
    )
}

#[tokio::test]
async fn dispatch_then_completion_ships_and_completes_the_order_once() {
    let h = harness();
    let placed = send(&h.app, post_orders(&order_body(), &[])).await;
    let id = placed.body["order_id"].as_str().unwrap().to_owned();
    let clock = FixedClock::at(Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap());
    let reactions = Reactions {
        store: &h.store,
        clock: &clock,
    };
    let dispatch = delivery_event(&id, dispatched);
    assert!(
        run(
            &reactions,
            ON_DELIVERY_DISPATCHED,
            &[dispatch.clone(), dispatch]
        )
        .await
        .is_empty()
    );
    let complete = delivery_event(&id, completed);
    assert!(
        run(
            &reactions,
            ON_DELIVERY_COMPLETED,
            &[complete.clone(), complete]
        )
        .await
        .is_empty()
    );
    assert_eq!(
        order_types(&h.store, &id).await,
        ["OrderPlaced", "OrderShipped", "OrderCompleted"]
    );
    let shipped = &h.store.load(&StreamId::new("order", &id)).await.unwrap()[1];
    assert_eq!(shipped.correlation_id.as_str(), "req-saga");
    assert_eq!(
        shipped.actor.as_str(),
        "system/order-on-delivery-dispatched"
    );
    let view = send(&h.app, request("GET", &format!("/orders/{id}"), None, &[])).await;
    assert_eq!(view.body["status"], "completed");
}

#[tokio::test]
async fn completion_news_overtaking_the_dispatch_news_leaves_the_order_completed() {
    let h = harness();
    let id = send(&h.app, post_orders(&order_body(), &[])).await.body["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let clock = FixedClock::at(Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap());
    let reactions = Reactions {
        store: &h.store,
        clock: &clock,
    };
    assert!(
        run(
            &reactions,
            ON_DELIVERY_COMPLETED,
            &[delivery_event(&id, completed)]
        )
        .await
        .is_empty()
    );
    assert!(
        run(
            &reactions,
            ON_DELIVERY_DISPATCHED,
            &[delivery_event(&id, dispatched)]
        )
        .await
        .is_empty()
    );
    assert_eq!(
        order_types(&h.store, &id).await,
        ["OrderPlaced", "OrderCompleted"]
    );
}

#[tokio::test]
async fn a_failed_delivery_cancels_the_order_as_compensation_once() {
    let h = harness();
    let id = send(&h.app, post_orders(&order_body(), &[])).await.body["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let clock = FixedClock::at(Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap());
    let reactions = Reactions {
        store: &h.store,
        clock: &clock,
    };
    let fail = delivery_event(&id, failed);
    assert!(
        run(&reactions, ON_DELIVERY_FAILED, &[fail.clone(), fail])
            .await
            .is_empty()
    );
    let events = h.store.load(&StreamId::new("order", &id)).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].event_type, "OrderCancelled");
    assert_eq!(
        events[1].data["reason"],
        json!({"kind": "delivery_failed", "detail": "recipient not found"})
    );
}

#[tokio::test]
async fn a_dispatch_of_an_order_cancelled_meanwhile_is_acknowledged_not_retried() {
    let h = harness();
    let id = send(&h.app, post_orders(&order_body(), &[])).await.body["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        send(
            &h.app,
            request("POST", &format!("/orders/{id}/cancel"), None, &[])
        )
        .await
        .status,
        200
    );
    let clock = FixedClock::at(Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap());
    let reactions = Reactions {
        store: &h.store,
        clock: &clock,
    };
    assert!(
        run(
            &reactions,
            ON_DELIVERY_DISPATCHED,
            &[delivery_event(&id, dispatched)]
        )
        .await
        .is_empty()
    );
    assert_eq!(
        order_types(&h.store, &id).await,
        ["OrderPlaced", "OrderCancelled"]
    );
}

#[tokio::test]
async fn misrouted_events_and_outages_fail_exactly_their_messages() {
    let h = harness();
    let id = send(&h.app, post_orders(&order_body(), &[])).await.body["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let clock = FixedClock::at(Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap());
    let reactions = Reactions {
        store: &h.store,
        clock: &clock,
    };
    let failed = run(
        &reactions,
        ON_DELIVERY_DISPATCHED,
        &[
            delivery_event(&id, completed),
            delivery_event(&id, dispatched),
        ],
    )
    .await;
    assert_eq!(
        failed,
        ["m-0"],
        "the misrouted completion is poison, its batch-mate is handled"
    );
    h.store.fail_next_appends(1);
    let failed = run(
        &reactions,
        ON_DELIVERY_COMPLETED,
        &[delivery_event(&id, completed)],
    )
    .await;
    assert_eq!(failed, ["m-0"]);
    assert_eq!(
        order_types(&h.store, &id).await,
        ["OrderPlaced", "OrderShipped"]
    );
}
