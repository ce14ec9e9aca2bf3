//! The delivery reactions on SQS events as Lambda delivers them, with in-memory adapters.

use adapters::clock::FixedClock;
use chrono::{TimeZone, Utc};
use domain::address::{Address, UncheckedAddress};
use domain::delivery::{Delivery, DeliveryCommand};
use domain::envelope::{Actor, CorrelationId, EventContext};
use domain::ids::{CourierId, CustomerId, OrderId, Sku};
use domain::money::Currency;
use domain::order::{CancellationReason, LineItem, Order, OrderCommand, PlaceOrder};
use domain::ports::EventStore;
use lambda_glue::consumer::handle_sqs_batch;
use testkit::lambda::{bus_event_body, failed_ids, sqs_event};
use testkit::memory::InMemoryEventStore;

use super::*;

fn clock() -> FixedClock {
    FixedClock::at(Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).unwrap())
}

fn customer_context() -> EventContext {
    EventContext {
        correlation_id: CorrelationId::parse("req-1").unwrap(),
        causation_id: "req-1".into(),
        actor: Actor::customer(&CustomerId::parse("cust-1").unwrap()),
        occurred_at: Utc.with_ymd_and_hms(2026, 11, 28, 9, 0, 0).unwrap(),
    }
}

/// Places order `o-1` in the store and returns its `OrderPlaced`.
async fn placed(store: &InMemoryEventStore) -> StoredEvent {
    let command = OrderCommand::Place(PlaceOrder {
        order_id: OrderId::parse("o-1").unwrap(),
        customer_id: CustomerId::parse("cust-1").unwrap(),
        items: vec![LineItem {
            sku: Sku::parse("SKU-1").unwrap(),
            quantity: 1u32.try_into().unwrap(),
            unit_price: 500u64.try_into().unwrap(),
        }],
        currency: Currency::EUR,
        delivery_address: Address::parse(UncheckedAddress {
            recipient: "R".into(),
            line1: "1 Street".into(),
            line2: None,
            city: "City".into(),
            postal_code: "10115".into(),
            country: "DE".into(),
        })
        .unwrap(),
    });
    let stream = StreamId::new("order", "o-1");
    repository::execute::<Order>(store, &stream, &command, &customer_context(), None, 1)
        .await
        .unwrap()
        .remove(0)
}

async fn cancelled(store: &InMemoryEventStore) -> StoredEvent {
    let command = OrderCommand::Cancel {
        reason: CancellationReason::CustomerRequest,
    };
    let stream = StreamId::new("order", "o-1");
    repository::execute::<Order>(store, &stream, &command, &customer_context(), None, 1)
        .await
        .unwrap()
        .remove(0)
}

async fn delivery_events(store: &InMemoryEventStore) -> Vec<StoredEvent> {
    store
        .load(&StreamId::new("delivery", "d-o-1"))
        .await
        .unwrap()
}

#[tokio::test]
async fn an_order_placed_schedules_its_delivery_with_the_sla() {
    let store = InMemoryEventStore::new();
    let clock = clock();
    let reactions = Reactions {
        store: &store,
        clock: &clock,
        sla: Duration::hours(48),
    };
    let cause = placed(&store).await;
    let batch = sqs_event(&[bus_event_body(&cause)]);
    let response =
        handle_sqs_batch(ON_ORDER_PLACED, &batch, |e| reactions.on_order_placed(e)).await;
    assert!(failed_ids(&response).is_empty());
    let events = delivery_events(&store).await;
    assert_eq!(events.len(), 1);
    let scheduled = &events[0];
    assert_eq!(scheduled.event_type, "DeliveryScheduled");
    assert_eq!(scheduled.data["promised_by"], "2026-11-30T09:00:00Z");
    assert_eq!(
        scheduled.correlation_id.as_str(),
        "req-1",
        "correlation carries through"
    );
    assert_eq!(
        scheduled.causation_id, cause.event_id,
        "caused by the OrderPlaced"
    );
    assert_eq!(scheduled.actor.as_str(), "system/delivery-on-order-placed");
    assert_eq!(
        scheduled.occurred_at,
        Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 0).unwrap()
    );
}

#[tokio::test]
async fn the_same_message_twice_schedules_once() {
    let store = InMemoryEventStore::new();
    let clock = clock();
    let reactions = Reactions {
        store: &store,
        clock: &clock,
        sla: Duration::hours(48),
    };
    let body = bus_event_body(&placed(&store).await);
    let batch = sqs_event(&[body.clone(), body.clone()]);
    let response =
        handle_sqs_batch(ON_ORDER_PLACED, &batch, |e| reactions.on_order_placed(e)).await;
    assert!(failed_ids(&response).is_empty());
    let again = handle_sqs_batch(ON_ORDER_PLACED, &sqs_event(&[body]), |e| {
        reactions.on_order_placed(e)
    })
    .await;
    assert!(failed_ids(&again).is_empty());
    assert_eq!(delivery_events(&store).await.len(), 1);
}

#[tokio::test]
async fn a_cancel_before_dispatch_cancels_the_delivery() {
    let store = InMemoryEventStore::new();
    let clock = clock();
    let reactions = Reactions {
        store: &store,
        clock: &clock,
        sla: Duration::hours(48),
    };
    let placed = placed(&store).await;
    reactions.on_order_placed(placed).await.unwrap();
    let cancel = cancelled(&store).await;
    let response = handle_sqs_batch(
        ON_ORDER_CANCELLED,
        &sqs_event(&[bus_event_body(&cancel)]),
        |e| reactions.on_order_cancelled(e),
    )
    .await;
    assert!(failed_ids(&response).is_empty());
    let types: Vec<_> = delivery_events(&store)
        .await
        .iter()
        .map(|e| e.event_type.clone())
        .collect();
    assert_eq!(types, ["DeliveryScheduled", "DeliveryCancelled"]);
}

#[tokio::test]
async fn a_cancel_that_overtakes_the_scheduling_still_ends_cancelled() {
    let store = InMemoryEventStore::new();
    let clock = clock();
    let reactions = Reactions {
        store: &store,
        clock: &clock,
        sla: Duration::hours(48),
    };
    let placed = placed(&store).await;
    let cancel = cancelled(&store).await;
    // EventBridge does not order: the cancellation arrives first.
    reactions.on_order_cancelled(cancel).await.unwrap();
    reactions.on_order_placed(placed).await.unwrap();
    let types: Vec<_> = delivery_events(&store)
        .await
        .iter()
        .map(|e| e.event_type.clone())
        .collect();
    assert_eq!(
        types,
        ["DeliveryCancelled"],
        "a late scheduling does not revive it"
    );
}

#[tokio::test]
async fn a_cancel_after_dispatch_is_refused_explicitly_once() {
    let store = InMemoryEventStore::new();
    let clock = clock();
    let reactions = Reactions {
        store: &store,
        clock: &clock,
        sla: Duration::hours(48),
    };
    let placed = placed(&store).await;
    reactions.on_order_placed(placed).await.unwrap();
    let dispatch = DeliveryCommand::Dispatch {
        courier_id: CourierId::parse("courier-1").unwrap(),
    };
    repository::execute::<Delivery>(
        &store,
        &StreamId::new("delivery", "d-o-1"),
        &dispatch,
        &customer_context(),
        None,
        1,
    )
    .await
    .unwrap();
    let cancel = bus_event_body(&cancelled(&store).await);
    for _ in 0..2 {
        let response = handle_sqs_batch(
            ON_ORDER_CANCELLED,
            &sqs_event(std::slice::from_ref(&cancel)),
            |e| reactions.on_order_cancelled(e),
        )
        .await;
        assert!(failed_ids(&response).is_empty());
    }
    let types: Vec<_> = delivery_events(&store)
        .await
        .iter()
        .map(|e| e.event_type.clone())
        .collect();
    assert_eq!(
        types,
        [
            "DeliveryScheduled",
            "DeliveryDispatched",
            "DeliveryCancellationRefused"
        ]
    );
}

#[tokio::test]
async fn a_misrouted_event_and_a_malformed_body_fail_alone() {
    let store = InMemoryEventStore::new();
    let clock = clock();
    let reactions = Reactions {
        store: &store,
        clock: &clock,
        sla: Duration::hours(48),
    };
    let placed = bus_event_body(&placed(&store).await);
    let cancel = bus_event_body(&cancelled(&store).await);
    let batch = sqs_event(&[cancel, "{\"not\": \"an event\"}".into(), placed]);
    let response =
        handle_sqs_batch(ON_ORDER_PLACED, &batch, |e| reactions.on_order_placed(e)).await;
    assert_eq!(failed_ids(&response), ["m-0", "m-1"]);
    assert_eq!(
        delivery_events(&store).await.len(),
        1,
        "the good message was handled"
    );
}

#[tokio::test]
async fn a_store_outage_fails_the_message_for_redelivery() {
    let store = InMemoryEventStore::new();
    let clock = clock();
    let reactions = Reactions {
        store: &store,
        clock: &clock,
        sla: Duration::hours(48),
    };
    let body = bus_event_body(&placed(&store).await);
    store.fail_next_appends(1);
    let response = handle_sqs_batch(
        ON_ORDER_PLACED,
        &sqs_event(std::slice::from_ref(&body)),
        |e| reactions.on_order_placed(e),
    )
    .await;
    assert_eq!(failed_ids(&response), ["m-0"]);
    assert!(delivery_events(&store).await.is_empty());
    let retry = handle_sqs_batch(ON_ORDER_PLACED, &sqs_event(&[body]), |e| {
        reactions.on_order_placed(e)
    })
    .await;
    assert!(failed_ids(&retry).is_empty());
    assert_eq!(delivery_events(&store).await.len(), 1);
}
