//! End to end, through the whole system running locally (`scripts/e2e.sh`): real HTTP through the
//! bridge's API Gateway to the functions (processes of the one bootstrap), the events table's stream
//! played to the publisher and the projector, the bus's rules filling the queues the bridge feeds
//! to each handler, SNS to a queue of the test's own. Nothing in process but the observer: every
//! command goes in over HTTP (the customer's and the couriers' APIs); the read model, the stored
//! events, the notifications and the dead-letter queues are read out over SDK calls.
//!
//! The saga's scenarios are written once (`integration_tests::scenarios`; `tests/emulator/saga.rs`
//! runs them in process), here across real processes and real batching windows, with what only
//! HTTP and the functions' logs show added — and racing commands (cancelled transactions on the
//! events table) followed by orders that must still complete. Each test has a customer of its
//! own, so tests run side by side on one stack.

mod hostile;

use domain::ids::StreamId;
use domain::ports::{AppendRequest, EventStore, StoreError};
use http::{Method, StatusCode};
use integration_tests::scenarios::{self, Placed};
use integration_tests::stack::Stack;
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
    let mut stack = Stack::from_env().await;
    let Placed {
        customer,
        order_id,
        correlation_id,
    } = scenarios::happy_path(&mut stack).await;

    // What only HTTP shows: the view's timeline, the order's history, the customer's orders.
    let view = stack
        .expect(
            StatusCode::OK,
            Method::GET,
            &format!("/orders/{order_id}"),
            None,
        )
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

    // What only real processes show: the logs let someone follow the order from function to
    // function by its correlation id …
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
    scenarios::a_delay_delivered_three_times(&mut Stack::from_env().await).await;
}

#[tokio::test]
async fn a_failed_delivery_cancels_the_order_and_the_customer_hears_of_it() {
    scenarios::a_failed_delivery(&mut Stack::from_env().await).await;
}

#[tokio::test]
async fn a_cancel_before_dispatch_cancels_the_delivery() {
    scenarios::a_cancel_before_dispatch(&mut Stack::from_env().await).await;
}

#[tokio::test]
async fn a_cancel_racing_the_dispatch_is_resolved_explicitly_with_an_alert() {
    scenarios::a_cancel_racing_the_dispatch(&mut Stack::from_env().await).await;
}

#[tokio::test]
async fn a_poison_message_ends_in_its_handlers_dlq_while_the_orders_around_it_go_through() {
    scenarios::a_poison_message(&mut Stack::from_env().await).await;
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
    let mut stack = Stack::from_env().await;
    let Placed {
        order_id, customer, ..
    } = scenarios::a_scheduled_order(&mut stack, "racing").await;
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
