//! The choreography saga on the emulator with the real rules and queues: bus → rule → SQS →
//! handler → events table → stream → publisher → bus …, an SQS queue subscribed to the SNS topic
//! observing the customer notifications (see `integration_tests::saga`).

use domain::delivery::{Delivery, DeliveryCommand};
use domain::envelope::{Actor, CorrelationId, EventContext, StoredEvent};
use domain::ids::{CourierId, DeliveryId, StreamId};
use domain::order::{CancellationReason, Order, OrderCommand, PlaceOrder};
use domain::ports::EventStore;
use domain::read_model::OrderViews;
use domain::repository;
use integration_tests::saga::Saga;
use integration_tests::{customer_request, emulator, place, place_order};

/// Every queue function and both stream readers of the registry, wired to the saga's tables, bus
/// and topic.
async fn saga(test: &str) -> Saga {
    Saga::new(emulator().await, test).await
}

/// Places an order as a customer would and returns it with its `OrderPlaced`.
async fn place_an_order(saga: &Saga, customer: &str) -> (PlaceOrder, StoredEvent) {
    let order = place_order(customer, 2);
    let stream = StreamId::order(&order.order_id);
    let placed = repository::execute::<Order>(
        &saga.events.store,
        &stream,
        &place(&order),
        &customer_request(customer),
        None,
        1,
    )
    .await
    .expect("placing")
    .remove(0);
    (order, placed)
}

/// A courier acts on the order's delivery.
async fn courier(saga: &Saga, order: &PlaceOrder, command: DeliveryCommand) -> Vec<StoredEvent> {
    let courier = CourierId::parse("courier-7").expect("id");
    let correlation_id = CorrelationId::generate();
    let context = EventContext {
        causation_id: correlation_id.as_str().to_owned(),
        correlation_id,
        actor: Actor::courier(&courier),
        occurred_at: chrono::Utc::now(),
    };
    let stream = StreamId::delivery(DeliveryId::for_order(&order.order_id));
    repository::execute::<Delivery>(&saga.events.store, &stream, &command, &context, None, 3)
        .await
        .expect("the courier's command")
}

fn courier_7() -> CourierId {
    CourierId::parse("courier-7").expect("id")
}

fn dispatch() -> DeliveryCommand {
    DeliveryCommand::Dispatch {
        courier_id: courier_7(),
    }
}

async fn types(saga: &Saga, kind: &str, id: impl std::fmt::Display) -> Vec<String> {
    saga.events
        .store
        .load(&StreamId::new(kind, id))
        .await
        .expect("loading")
        .iter()
        .map(|e| e.event_type.clone())
        .collect()
}

async fn delivery_types(saga: &Saga, order: &PlaceOrder) -> Vec<String> {
    types(saga, "delivery", DeliveryId::for_order(&order.order_id)).await
}

fn notified(notifications: &[(String, String, String)]) -> Vec<&str> {
    notifications.iter().map(|(t, _, _)| t.as_str()).collect()
}

#[tokio::test]
async fn happy_path_placed_scheduled_dispatched_completed() {
    let mut saga = saga("saga-happy").await;
    let (order, placed) = place_an_order(&saga, "cust-happy").await;
    saga.pump(40).await;
    assert_eq!(delivery_types(&saga, &order).await, ["DeliveryScheduled"]);

    courier(&saga, &order, dispatch()).await;
    saga.pump(40).await;
    courier(
        &saga,
        &order,
        DeliveryCommand::Complete {
            courier_id: courier_7(),
        },
    )
    .await;
    saga.pump(40).await;

    assert_eq!(
        delivery_types(&saga, &order).await,
        [
            "DeliveryScheduled",
            "DeliveryDispatched",
            "DeliveryCompleted"
        ]
    );
    let order_events = saga
        .events
        .store
        .load(&StreamId::order(&order.order_id))
        .await
        .expect("loading");
    let order_types: Vec<&str> = order_events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        order_types,
        ["OrderPlaced", "OrderShipped", "OrderCompleted"]
    );
    // The schedule reaction carries the order's correlation; the ship reaction the courier's.
    let scheduled = &saga
        .events
        .store
        .load(&StreamId::new(
            "delivery",
            DeliveryId::for_order(&order.order_id),
        ))
        .await
        .expect("loading")[0];
    assert_eq!(scheduled.correlation_id, placed.correlation_id);
    assert_eq!(scheduled.causation_id, placed.event_id);

    let view = saga
        .views
        .get(&order.order_id)
        .await
        .expect("get")
        .expect("a view");
    assert_eq!(view.status.map(|s| s.as_str()), Some("completed"));
    assert_eq!(view.delivery.map(|d| d.status.as_str()), Some("completed"));

    let notifications = saga.notifications().await;
    let mut seen = notified(&notifications);
    // SNS → SQS does not promise order across messages; compare as sets, then the count.
    seen.sort_unstable();
    assert_eq!(
        seen,
        ["DeliveryCompleted", "DeliveryScheduled", "OrderPlaced"]
    );
    assert!(
        notifications
            .iter()
            .all(|(_, customer, _)| customer == "cust-happy")
    );
}

#[tokio::test]
async fn a_delay_delivered_three_times_issues_one_coupon_and_one_notification() {
    let mut saga = saga("saga-delay").await;
    let (order, _) = place_an_order(&saga, "cust-delay").await;
    saga.pump(40).await;
    courier(&saga, &order, dispatch()).await;
    let delayed = courier(
        &saga,
        &order,
        DeliveryCommand::ReportDelay {
            courier_id: courier_7(),
            new_eta: chrono::Utc::now() + chrono::Duration::days(3),
            reason: "van broke down".into(),
        },
    )
    .await
    .remove(0);
    saga.pump(40).await;
    // The same DeliveryDelayed delivered twice more to each of its consumers.
    let body = testkit::lambda::bus_event_body(&delayed);
    for _ in 0..2 {
        saga.send_to(alert::coupon_on_delivery_delayed::NAME, &body)
            .await;
        saga.send_to(alert::on_delivery_delayed::NAME, &body).await;
    }
    saga.pump(40).await;

    let coupon = domain::ids::CouponId::for_delay(&DeliveryId::for_order(&order.order_id), 1);
    assert_eq!(types(&saga, "coupon", &coupon).await, ["CouponIssued"]);
    let view = saga
        .views
        .get(&order.order_id)
        .await
        .expect("get")
        .expect("a view");
    assert_eq!(view.coupons.len(), 1, "the order view shows the coupon");
    let notifications = saga.notifications().await;
    let delays = notified(&notifications)
        .into_iter()
        .filter(|t| *t == "DeliveryDelayed")
        .count();
    assert_eq!(delays, 1, "one notification for one delay");
}

#[tokio::test]
async fn a_failed_delivery_cancels_the_order_and_the_customer_hears_of_it() {
    let mut saga = saga("saga-fail").await;
    let (order, _) = place_an_order(&saga, "cust-fail").await;
    saga.pump(40).await;
    courier(&saga, &order, dispatch()).await;
    courier(
        &saga,
        &order,
        DeliveryCommand::Fail {
            courier_id: courier_7(),
            reason: "address not found".into(),
        },
    )
    .await;
    saga.pump(40).await;
    let order_events = saga
        .events
        .store
        .load(&StreamId::order(&order.order_id))
        .await
        .expect("loading");
    let last = order_events.last().expect("events");
    assert_eq!(last.event_type, "OrderCancelled");
    assert_eq!(last.data["reason"]["kind"], "delivery_failed");
    let notifications = saga.notifications().await;
    assert!(notified(&notifications).contains(&"OrderCancelled"));
}

#[tokio::test]
async fn a_cancel_before_dispatch_cancels_the_delivery() {
    let mut saga = saga("saga-cancel").await;
    let (order, _) = place_an_order(&saga, "cust-cancel").await;
    saga.pump(40).await;
    let stream = StreamId::order(&order.order_id);
    let cancel = OrderCommand::Cancel {
        reason: CancellationReason::CustomerRequest,
    };
    repository::execute::<Order>(
        &saga.events.store,
        &stream,
        &cancel,
        &customer_request("cust-cancel"),
        None,
        3,
    )
    .await
    .expect("cancelling");
    saga.pump(40).await;
    assert_eq!(
        delivery_types(&saga, &order).await,
        ["DeliveryScheduled", "DeliveryCancelled"]
    );
    let view = saga
        .views
        .get(&order.order_id)
        .await
        .expect("get")
        .expect("a view");
    assert_eq!(view.delivery.map(|d| d.status.as_str()), Some("cancelled"));
}

#[tokio::test]
async fn a_cancel_racing_the_dispatch_is_resolved_explicitly_with_an_alert() {
    let mut saga = saga("saga-race").await;
    let (order, _) = place_an_order(&saga, "cust-race").await;
    saga.pump(40).await;
    // The customer cancels while the courier dispatches: both commands succeed on their own
    // aggregates before either reaction runs.
    courier(&saga, &order, dispatch()).await;
    let cancel = OrderCommand::Cancel {
        reason: CancellationReason::CustomerRequest,
    };
    repository::execute::<Order>(
        &saga.events.store,
        &StreamId::order(&order.order_id),
        &cancel,
        &customer_request("cust-race"),
        None,
        3,
    )
    .await
    .expect("cancelling");
    saga.pump(60).await;
    assert_eq!(
        delivery_types(&saga, &order).await,
        [
            "DeliveryScheduled",
            "DeliveryDispatched",
            "DeliveryCancellationRefused"
        ]
    );
    assert_eq!(
        types(&saga, "order", &order.order_id).await,
        ["OrderPlaced", "OrderCancelled"],
        "the late dispatch news does not ship a cancelled order"
    );
    let notifications = saga.notifications().await;
    assert!(notified(&notifications).contains(&"DeliveryCancellationRefused"));
}

#[tokio::test]
async fn a_poison_message_ends_in_its_handlers_dlq_while_its_batch_mates_succeed() {
    let mut saga = saga("saga-poison").await;
    let (order, placed) = place_an_order(&saga, "cust-poison").await;
    let handler = delivery::reactions::ON_ORDER_PLACED;
    saga.send_to(
        handler,
        "{\"detail-type\": \"OrderPlaced\", \"detail\": 42}",
    )
    .await;
    saga.pump(80).await;
    assert_eq!(delivery_types(&saga, &order).await, ["DeliveryScheduled"]);
    let dead = saga.dead_letters(handler).await;
    assert_eq!(
        dead.len(),
        1,
        "after {} receives (template.yaml) the poison is dead-lettered",
        saga.queues[handler].max_receive_count
    );
    assert!(dead[0].contains("\"detail\": 42"));
    assert!(
        saga.dead_letters(delivery::reactions::ON_ORDER_CANCELLED)
            .await
            .is_empty()
    );
    assert_eq!(placed.event_type, "OrderPlaced");
}
