//! End to end, through the whole system running locally (`scripts/e2e.sh`): real HTTP through the
//! bridge's API Gateway to the functions (processes of the one bootstrap), the events table's stream
//! played to the publisher and the projector, the bus's rules filling the queues the bridge feeds
//! to each handler, SNS to a queue of the test's own. Nothing in process but the observer: every
//! command goes in over HTTP (the customer's and the couriers' APIs); the read model, the stored
//! events, the notifications and the dead-letter queues are read out over SDK calls.
//!
//! The scenarios are the saga's (`tests/emulator/saga.rs` runs them in process), now across real
//! processes and real batching windows — and racing commands (cancelled transactions on the events
//! table) followed by orders that must still complete. Each test has a customer of its own, so
//! tests run side by side on one stack.

mod hostile;

use adapters::eventbridge::EventBridgePublisher;
use domain::ids::{CouponId, DeliveryId, StreamId};
use domain::ports::{AppendRequest, EventPublisher, EventStore, StoreError};
use http::{Method, StatusCode};
use integration_tests::stack::{Inbox, STEP_TIMEOUT, Stack};
use integration_tests::unique_name;
use serde_json::{Value, json};

fn delivery_status(view: &Value) -> &str {
    view["delivery"]["status"].as_str().unwrap_or("-")
}

fn order_status(view: &Value) -> &str {
    view["status"].as_str().unwrap_or("-")
}

fn scheduled(view: &Value) -> bool {
    delivery_status(view) == "scheduled"
}

fn shipped(view: &Value) -> bool {
    order_status(view) == "shipped" && delivery_status(view) == "dispatched"
}

fn courier() -> Value {
    json!({"courier_id": "courier-7"})
}

/// An order placed for a new customer, its delivery scheduled.
struct ScheduledOrder {
    customer: String,
    order_id: String,
    correlation_id: String,
    /// The customer's notifications (subscribed before the order was placed).
    inbox: Inbox,
    /// The order view once the delivery showed scheduled.
    view: Value,
}

/// Subscribes an inbox for a new customer, places an order for them and waits until its delivery
/// is scheduled.
async fn a_scheduled_order(stack: &Stack, test: &str) -> ScheduledOrder {
    let customer = unique_name(&format!("cust-{test}"));
    let inbox = stack.inbox(&customer).await;
    let correlation_id = unique_name(&format!("corr-{test}"));
    let order_id = stack.place_order(&customer, &correlation_id).await;
    let view = stack
        .wait_for_view(&order_id, "the delivery scheduled", scheduled)
        .await;
    ScheduledOrder {
        customer,
        order_id,
        correlation_id,
        inbox,
        view,
    }
}

/// A courier action that must succeed.
async fn act(stack: &Stack, order_id: &str, action: &str, body: &Value) {
    let reply = stack.courier(order_id, action, body).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "POST /deliveries/d-{order_id}/{action}: {}",
        reply.body
    );
}

#[tokio::test]
async fn bad_requests_get_a_problem_naming_the_field_through_the_gateway() {
    let stack = Stack::from_env().await;
    let mut body = integration_tests::stack::order_body();
    body["items"] = json!([]);
    let customer = stack.customer(&unique_name("cust-bad")).await;
    let reply = stack
        .call_as(
            &customer,
            Method::POST,
            "/orders",
            Some(&body),
            &[("idempotency-key", "e2e-bad-1")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(
        reply
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    assert_eq!(reply.body["field"], "items", "the problem names the field");
    assert!(
        reply.headers.contains_key("x-correlation-id"),
        "every answer carries the correlation id"
    );

    let reply = stack
        .courier("nope", "delay", &json!({"reason": "traffic"}))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(reply.body["field"], "new_eta", "{}", reply.body);

    let reply = stack.call(Method::GET, "/nowhere", None, &[]).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
}

#[tokio::test]
async fn happy_path_placed_scheduled_dispatched_completed_across_processes() {
    let stack = Stack::from_env().await;
    let ScheduledOrder {
        customer,
        order_id,
        correlation_id,
        inbox,
        view,
    } = a_scheduled_order(&stack, "happy").await;
    assert_eq!(order_status(&view), "placed");

    act(&stack, &order_id, "dispatch", &courier()).await;
    stack
        .wait_for_view(&order_id, "the order shipped", shipped)
        .await;
    act(&stack, &order_id, "complete", &courier()).await;
    let view = stack
        .wait_for_view(&order_id, "the order completed", |v| {
            order_status(v) == "completed" && delivery_status(v) == "completed"
        })
        .await;
    let timeline: Vec<&str> = view["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry["event_type"].as_str())
        .collect();
    for expected in [
        "OrderPlaced",
        "DeliveryScheduled",
        "DeliveryDispatched",
        "OrderCompleted",
    ] {
        assert!(timeline.contains(&expected), "{expected} in {timeline:?}");
    }

    assert_eq!(
        stack.event_types("order", &order_id).await,
        ["OrderPlaced", "OrderShipped", "OrderCompleted"]
    );
    let delivery = stack.events("delivery", format!("d-{order_id}")).await;
    let types: Vec<&str> = delivery.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "DeliveryScheduled",
            "DeliveryDispatched",
            "DeliveryCompleted"
        ]
    );
    // The correlation id the customer's request carried reaches the delivery context: one order
    // can be traced across the API, the publisher, the bus and the delivery function.
    assert_eq!(delivery[0].correlation_id.as_str(), correlation_id);
    let placed = &stack.events("order", &order_id).await[0];
    assert_eq!(delivery[0].causation_id, placed.event_id);

    let history = stack
        .expect(
            StatusCode::OK,
            Method::GET,
            &format!("/orders/{order_id}/events"),
            None,
        )
        .await;
    assert!(
        history.to_string().contains("OrderCompleted"),
        "GET /orders/{{id}}/events shows the history: {history}"
    );
    let listed = stack
        .expect(
            StatusCode::OK,
            Method::GET,
            &format!(
                "/customers/{}/orders",
                stack.customer(&customer).await.subject
            ),
            None,
        )
        .await;
    assert!(listed.to_string().contains(&order_id), "{listed}");

    assert_eq!(
        stack.notifications(&inbox, 3).await,
        ["DeliveryCompleted", "DeliveryScheduled", "OrderPlaced"]
    );

    // The logs let someone follow the order from function to function by its correlation id …
    let traced = stack.log_lines_with(&correlation_id);
    for function in [
        "method=POST",
        "handler=\"delivery-on-order-placed\"",
        "handler=\"alert-on-order-placed\"",
        "handler=\"alert-on-delivery-scheduled\"",
    ] {
        assert!(
            traced.iter().any(|line| line.contains(function)),
            "no log line with {function} carries the correlation id {correlation_id}"
        );
    }
    // … and hold no personal data: the delivery address never reaches them.
    for personal in ["1 Test Street", "E2E Customer"] {
        let leaked = stack.log_lines_with(personal);
        assert!(
            leaked.is_empty(),
            "{personal:?} in the function logs: {leaked:?}"
        );
    }
}

#[tokio::test]
async fn a_delay_delivered_three_times_issues_one_coupon_and_one_notification() {
    let stack = Stack::from_env().await;
    let ScheduledOrder {
        order_id, inbox, ..
    } = a_scheduled_order(&stack, "delay").await;
    act(&stack, &order_id, "dispatch", &courier()).await;
    let view = stack
        .wait_for_view(&order_id, "the order shipped", shipped)
        .await;
    let eta = view["delivery"]["eta"]
        .as_str()
        .and_then(|eta| chrono::DateTime::parse_from_rfc3339(eta).ok())
        .unwrap_or_else(|| panic!("the view has no delivery ETA: {view}"));
    let delay = json!({
        "courier_id": "courier-7",
        "new_eta": (eta + chrono::Duration::hours(24)).to_rfc3339(),
        "reason": "van broke down",
    });
    act(&stack, &order_id, "delay", &delay).await;
    stack
        .wait_for_view(&order_id, "the delay and its coupon", |v| {
            v["delivery"]["delays"].as_u64() == Some(1)
                && v["coupons"].as_array().is_some_and(|c| c.len() == 1)
        })
        .await;

    // The publisher's at-least-once delivery, played twice more: the same DeliveryDelayed on
    // the bus again, through the rules to the coupon and the alert handlers.
    let delivery = stack.events("delivery", format!("d-{order_id}")).await;
    let delayed = delivery
        .iter()
        .find(|e| e.event_type == "DeliveryDelayed")
        .unwrap_or_else(|| panic!("no DeliveryDelayed stored: {delivery:?}"))
        .clone();
    let bus =
        std::env::var("EVENT_BUS_NAME").unwrap_or_else(|_| panic!("EVENT_BUS_NAME is not set"));
    let publisher = EventBridgePublisher::new(stack.emulator.eventbridge(), bus);
    for _ in 0..2 {
        publisher
            .publish(std::slice::from_ref(&delayed))
            .await
            .unwrap_or_else(|e| panic!("publishing DeliveryDelayed again: {e:?}"));
    }
    stack
        .wait_until_drained(&[
            "CouponOnDeliveryDelayedQueue",
            "AlertOnDeliveryDelayedQueue",
        ])
        .await;

    let delivery_id = DeliveryId::parse(format!("d-{order_id}"))
        .unwrap_or_else(|e| panic!("d-{order_id} is not a delivery id: {e:?}"));
    let coupon = CouponId::for_delay(&delivery_id, 1);
    let view = stack
        .expect(
            StatusCode::OK,
            Method::GET,
            &format!("/orders/{order_id}"),
            None,
        )
        .await;
    assert_eq!(
        view["coupons"].as_array().map(Vec::len),
        Some(1),
        "one coupon for one delay: {view}"
    );
    assert_eq!(
        stack.event_types("coupon", &coupon).await,
        ["CouponIssued"],
        "the coupon is issued once"
    );
    let notified = stack.notifications(&inbox, 3).await;
    assert_eq!(
        notified,
        ["DeliveryDelayed", "DeliveryScheduled", "OrderPlaced"],
        "one notification for one delay"
    );
}

#[tokio::test]
async fn a_failed_delivery_cancels_the_order_and_the_customer_hears_of_it() {
    let stack = Stack::from_env().await;
    let ScheduledOrder {
        order_id, inbox, ..
    } = a_scheduled_order(&stack, "fail").await;
    act(&stack, &order_id, "dispatch", &courier()).await;
    stack
        .wait_for_view(&order_id, "the order shipped", shipped)
        .await;
    act(
        &stack,
        &order_id,
        "fail",
        &json!({"courier_id": "courier-7", "reason": "address not found"}),
    )
    .await;
    stack
        .wait_for_view(&order_id, "the order cancelled", |v| {
            order_status(v) == "cancelled" && delivery_status(v) == "failed"
        })
        .await;
    let events = stack.events("order", &order_id).await;
    let last = events.last().unwrap_or_else(|| panic!("no order events"));
    assert_eq!(last.event_type, "OrderCancelled");
    assert_eq!(last.data["reason"]["kind"], "delivery_failed");
    let notified = stack.notifications(&inbox, 3).await;
    assert!(
        notified.contains(&"OrderCancelled".to_owned()),
        "{notified:?}"
    );
}

#[tokio::test]
async fn a_cancel_before_dispatch_cancels_the_delivery() {
    let stack = Stack::from_env().await;
    let ScheduledOrder {
        order_id, customer, ..
    } = a_scheduled_order(&stack, "cancel").await;
    let customer = stack.customer(&customer).await;
    let cancelled = stack
        .call_as(
            &customer,
            Method::POST,
            &format!("/orders/{order_id}/cancel"),
            None,
            &[],
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    stack
        .wait_for_events(
            "delivery",
            &format!("d-{order_id}"),
            &["DeliveryScheduled", "DeliveryCancelled"],
        )
        .await;
    stack
        .wait_for_view(&order_id, "the delivery cancelled", |v| {
            order_status(v) == "cancelled" && delivery_status(v) == "cancelled"
        })
        .await;
    let reply = stack.courier(&order_id, "dispatch", &courier()).await;
    assert_eq!(
        reply.status,
        StatusCode::CONFLICT,
        "a cancelled delivery cannot be dispatched: {}",
        reply.body
    );
}

#[tokio::test]
async fn a_cancel_racing_the_dispatch_is_resolved_explicitly_with_an_alert() {
    let stack = Stack::from_env().await;
    // The customer cancels and the courier dispatches before the cancellation has reached the
    // delivery: both commands succeed on their own aggregates, before either reaction has run.
    // The reactions take a few hundred milliseconds (no batching windows), so the dispatch is
    // sent as soon as the cancel is answered; should the cancellation still reach the delivery
    // first (the dispatch refused with 409), the race did not happen and a new order tries again.
    let mut race = None;
    for attempt in 1..=3 {
        let ScheduledOrder {
            order_id,
            inbox,
            customer,
            ..
        } = a_scheduled_order(&stack, "race").await;
        let customer = stack.customer(&customer).await;
        let cancelled = stack
            .call_as(
                &customer,
                Method::POST,
                &format!("/orders/{order_id}/cancel"),
                None,
                &[],
            )
            .await;
        assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
        let dispatched = stack.courier(&order_id, "dispatch", &courier()).await;
        match dispatched.status {
            StatusCode::OK => {
                race = Some((order_id, inbox));
                break;
            }
            StatusCode::CONFLICT => {
                eprintln!("attempt {attempt}: the cancellation reached the delivery first; again");
            }
            other => panic!("dispatch answered {other}: {}", dispatched.body),
        }
    }
    let (order_id, inbox) =
        race.expect("in three attempts the dispatch never landed before the cancellation");
    stack
        .wait_for_events(
            "delivery",
            &format!("d-{order_id}"),
            &[
                "DeliveryScheduled",
                "DeliveryDispatched",
                "DeliveryCancellationRefused",
            ],
        )
        .await;
    stack
        .wait_until_drained(&["OrderOnDeliveryDispatchedQueue"])
        .await;
    assert_eq!(
        stack.event_types("order", &order_id).await,
        ["OrderPlaced", "OrderCancelled"],
        "the late dispatch news does not ship a cancelled order"
    );
    let notified = stack.notifications(&inbox, 4).await;
    assert!(
        notified.contains(&"DeliveryCancellationRefused".to_owned()),
        "{notified:?}"
    );
    // The cancellation stands: the parcel is recalled, so the courier cannot complete the
    // delivery, only fail it — and order and delivery agree that nothing was delivered.
    let completed = stack.courier(&order_id, "complete", &courier()).await;
    assert_eq!(completed.status, StatusCode::CONFLICT, "{}", completed.body);
    act(
        &stack,
        &order_id,
        "fail",
        &json!({"courier_id": "courier-7", "reason": "returned: the order was cancelled"}),
    )
    .await;
    stack
        .wait_for_view(&order_id, "the recalled delivery failed", |v| {
            order_status(v) == "cancelled" && delivery_status(v) == "failed"
        })
        .await;
}

#[tokio::test]
async fn a_poison_message_ends_in_its_handlers_dlq_while_the_orders_around_it_go_through() {
    let stack = Stack::from_env().await;
    let marker = unique_name("poison");
    let poison = format!(r#"{{"detail-type": "OrderPlaced", "detail": 42, "marker": "{marker}"}}"#);
    stack.send("DeliveryOnOrderPlacedQueue", &poison).await;
    // Orders placed while the poison is being retried are scheduled all the same.
    let ScheduledOrder { order_id, .. } = a_scheduled_order(&stack, "poison").await;
    assert_eq!(
        stack.event_types("delivery", format!("d-{order_id}")).await,
        ["DeliveryScheduled"]
    );

    let started = std::time::Instant::now();
    loop {
        let dead = stack.peek("DeliveryOnOrderPlacedDeadLetterQueue").await;
        if dead.iter().any(|body| body.contains(&marker)) {
            break;
        }
        assert!(
            started.elapsed() < STEP_TIMEOUT,
            "the poison message did not reach the DLQ within {STEP_TIMEOUT:?} (the bridge \
             retries it after the capped visibility timeout, 5 receives); it holds {dead:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(
        stack
            .peek("DeliveryOnOrderCancelledDeadLetterQueue")
            .await
            .is_empty(),
        "nothing else is dead-lettered"
    );
}

/// An order placed, scheduled, dispatched (and shipped: the reactions to dispatch and completion
/// are not ordered, so completion waits for the shipment) and completed, as the view shows it.
async fn a_completed_order(stack: &Stack, test: &str) -> String {
    let customer = unique_name(&format!("cust-{test}"));
    let correlation_id = unique_name(&format!("corr-{test}"));
    let order_id = stack.place_order(&customer, &correlation_id).await;
    stack
        .wait_for_view(&order_id, "the delivery scheduled", scheduled)
        .await;
    act(stack, &order_id, "dispatch", &courier()).await;
    stack
        .wait_for_view(&order_id, "the order shipped", shipped)
        .await;
    act(stack, &order_id, "complete", &courier()).await;
    stack
        .wait_for_view(&order_id, "the order completed", |v| {
            order_status(v) == "completed" && delivery_status(v) == "completed"
        })
        .await;
    order_id
}

#[tokio::test]
async fn racing_commands_on_one_order_leave_the_saga_running_for_the_orders_after_them() {
    let stack = Stack::from_env().await;
    let ScheduledOrder {
        order_id, customer, ..
    } = a_scheduled_order(&stack, "racing").await;
    let customer = stack.customer(&customer).await;
    // Three dispatches and three cancels of one order at once: the commands on each aggregate
    // race for the same next version, and every loser's append is a cancelled TransactWriteItems
    // on the events table — which must not stop the table's stream for anybody.
    let cancel_path = format!("/orders/{order_id}/cancel");
    let body = courier();
    let dispatch = || stack.courier(&order_id, "dispatch", &body);
    let cancel = || stack.call_as(&customer, Method::POST, &cancel_path, None, &[]);
    let (d1, d2, d3, c1, c2, c3) = tokio::join!(
        dispatch(),
        dispatch(),
        dispatch(),
        cancel(),
        cancel(),
        cancel()
    );
    for reply in [&d1, &d2, &d3, &c1, &c2, &c3] {
        assert!(
            [StatusCode::OK, StatusCode::CONFLICT].contains(&reply.status),
            "a raced command is done or refused, never failed: {} {}",
            reply.status,
            reply.body
        );
    }
    let order_events = stack.event_types("order", &order_id).await;
    let cancelled = order_events
        .iter()
        .filter(|t| t.as_str() == "OrderCancelled")
        .count();
    // One cancel wins — unless a dispatch won and its saga marked the order shipped before any
    // cancel landed: then every cancel is refused (an order can be cancelled until it ships).
    let shipped_first = cancelled == 0
        && order_events.iter().any(|t| t == "OrderShipped")
        && [&c1, &c2, &c3]
            .iter()
            .all(|reply| reply.status == StatusCode::CONFLICT);
    assert!(
        cancelled == 1 || shipped_first,
        "one cancel won, or the shipment came first and refused them all: {order_events:?}"
    );
    let delivery_events = stack.event_types("delivery", format!("d-{order_id}")).await;
    assert!(
        delivery_events
            .iter()
            .filter(|t| t.as_str() == "DeliveryDispatched")
            .count()
            <= 1,
        "at most one dispatch won: {delivery_events:?}"
    );

    // And one conflict for certain: the order's first event appended again at version 1, as a
    // command that lost a race would — a cancelled TransactWriteItems on the stack's events table.
    let placed = stack.events("order", &order_id).await.remove(0);
    let refused = stack
        .store()
        .append(AppendRequest {
            stream_id: StreamId::new("order", &order_id),
            expected_version: 0,
            events: vec![placed],
            idempotency: None,
        })
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict { .. })),
        "a second version 1 is a typed conflict: {refused:?}"
    );

    // The orders after the race go through the whole saga, through the same stream readers.
    let (first, second, third) = tokio::join!(
        a_completed_order(&stack, "after-race"),
        a_completed_order(&stack, "after-race"),
        a_completed_order(&stack, "after-race"),
    );
    for order in [first, second, third] {
        assert_eq!(
            stack.event_types("order", &order).await,
            ["OrderPlaced", "OrderShipped", "OrderCompleted"]
        );
    }
}
