//! `GET /deliveries/{id}` on real API Gateway v2 events, and the fold it answers with.

use chrono::Duration;
use domain::delivery::DeliveryCommand;
use domain::envelope::{Actor, CorrelationId, EventContext};
use domain::repository;
use serde_json::json;

use super::*;
use crate::courier::routes::CourierAction::{Complete, Delay, Dispatch};
use crate::courier::testing::{
    FIXTURE_DELIVERY_ID as ID, FIXTURE_ORDER_ID, GET_DELIVERY, act, delay_by, dispatch_body, get,
    harness, placed_at, promised_by, scheduled, send,
};

#[tokio::test]
async fn the_fixture_request_reads_a_scheduled_delivery_and_its_history() {
    let h = scheduled().await;
    let request = lambda_http::request::from_str(GET_DELIVERY).unwrap();
    let answer = send(&h.app, request).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.headers["content-type"], "application/json");
    assert_eq!(answer.headers["x-correlation-id"], "courier-correlation-2");
    let mut body = answer.body.clone();
    let events = body.as_object_mut().unwrap().remove("events").unwrap();
    assert_eq!(
        body,
        json!({
            "delivery_id": ID,
            "order_id": FIXTURE_ORDER_ID,
            "customer_id": "cust-42",
            "status": "scheduled",
            "promised_by": "2026-11-28T12:15:42Z",
            "eta": "2026-11-28T12:15:42Z",
            "delays": 0,
            "courier_id": null,
            "version": 1,
        })
    );
    assert_eq!(events.as_array().unwrap().len(), 1);
    assert_eq!(events[0]["event_type"], "DeliveryScheduled");
    assert_eq!(events[0]["version"], 1);
    assert_eq!(events[0]["actor"], "system/delivery-on-order-placed");
    assert_eq!(events[0]["correlation_id"], "order-correlation-1");
    assert_eq!(events[0]["data"]["promised_by"], json!(promised_by()));
}

#[tokio::test]
async fn the_state_follows_dispatch_delays_and_completion() {
    let h = scheduled().await;
    send(&h.app, act(ID, Dispatch, &dispatch_body()))
        .await
        .assert_accepted("dispatched", 2);
    let first = promised_by() + Duration::minutes(30);
    let second = first + Duration::minutes(30);
    send(
        &h.app,
        act(ID, Delay, &delay_by("courier-7", first, "traffic")),
    )
    .await
    .assert_accepted("dispatched", 3);
    send(
        &h.app,
        act(ID, Delay, &delay_by("courier-7", second, "detour")),
    )
    .await
    .assert_accepted("dispatched", 4);

    let answer = send(&h.app, get(ID)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["status"], "dispatched");
    assert_eq!(answer.body["courier_id"], "courier-7");
    assert_eq!(answer.body["promised_by"], json!(promised_by()));
    assert_eq!(answer.body["eta"], json!(second));
    assert_eq!(answer.body["delays"], 2);
    assert_eq!(answer.body["version"], 4);
    let types: Vec<&str> = answer.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "DeliveryScheduled",
            "DeliveryDispatched",
            "DeliveryDelayed",
            "DeliveryDelayed"
        ]
    );

    send(
        &h.app,
        act(ID, Complete, &json!({"courier_id": "courier-7"})),
    )
    .await
    .assert_accepted("completed", 5);
    let answer = send(&h.app, get(ID)).await;
    assert_eq!(answer.body["status"], "completed");
    assert_eq!(answer.body["version"], 5);
    assert_eq!(answer.body["eta"], json!(second), "the last ETA stays");
}

#[tokio::test]
async fn reading_stores_nothing() {
    let h = scheduled().await;
    for _ in 0..3 {
        assert_eq!(send(&h.app, get(ID)).await.status, 200);
    }
    assert_eq!(h.store.all_events().len(), 1);
}

#[tokio::test]
async fn an_unknown_or_malformed_delivery_id_is_404_or_400() {
    let h = harness();
    let answer = send(&h.app, get("d-nobody")).await;
    answer.assert_status_problem(404);
    assert!(answer.body["detail"].as_str().unwrap().contains("d-nobody"));
    send(&h.app, get("not%20an%20id"))
        .await
        .assert_problem(400, "id");
    send(&h.app, get(&"d".repeat(100)))
        .await
        .assert_problem(400, "id");
}

#[tokio::test]
async fn a_delivery_cancelled_before_it_was_scheduled_reads_as_cancelled_without_a_promise() {
    let h = harness();
    let order_id = OrderId::parse(FIXTURE_ORDER_ID).unwrap();
    let context = EventContext {
        correlation_id: CorrelationId::parse("cancel-1").unwrap(),
        causation_id: "order-cancelled-1".into(),
        actor: Actor::system("delivery-on-order-cancelled"),
        occurred_at: placed_at(),
    };
    let stream = StreamId::new("delivery", ID);
    repository::execute::<Delivery>(
        &h.store,
        &stream,
        &DeliveryCommand::Cancel {
            order_id: order_id.clone(),
            customer_id: CustomerId::parse("cust-42").unwrap(),
        },
        &context,
        None,
        3,
    )
    .await
    .unwrap();
    // The late scheduling is a no-op in the domain; store it anyway, as a racing writer might.
    crate::courier::testing::schedule(&NoCheck(&h.store), &order_id, "cust-42", placed_at()).await;

    let answer = send(&h.app, get(ID)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["status"], "cancelled");
    assert_eq!(answer.body["promised_by"], json!(null));
    assert_eq!(answer.body["eta"], json!(null));
    assert_eq!(answer.body["version"], 2);
}

/// Appends what it is given and loads nothing, so a command is decided on an empty stream and
/// appended after whatever is there.
struct NoCheck<'a>(&'a testkit::memory::InMemoryEventStore);

#[async_trait::async_trait]
impl domain::ports::EventStore for NoCheck<'_> {
    async fn append(&self, mut request: domain::ports::AppendRequest) -> Result<(), StoreError> {
        let current = self.0.load(&request.stream_id).await?.len() as u64;
        request.expected_version = current;
        for (offset, event) in (1..).zip(request.events.iter_mut()) {
            event.version = current + offset;
        }
        self.0.append(request).await
    }
    async fn load(&self, _: &StreamId) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(Vec::new())
    }
}

#[tokio::test]
async fn an_unreadable_stored_event_is_a_500_not_a_panic() {
    let h = scheduled().await;
    let mut poison = h.store.all_events()[0].clone();
    poison.version = 2;
    poison.event_type = "DeliveryTeleported".into();
    h.store.insert_raw(poison);
    let answer = send(&h.app, get(ID)).await;
    answer.assert_status_problem(500);
    assert_eq!(answer.body["retryable"], false);
    let answer = send(&h.app, act(ID, Dispatch, &dispatch_body())).await;
    answer.assert_status_problem(500);
}

#[test]
fn events_before_the_delivery_exists_are_not_a_delivery() {
    assert_eq!(DeliveryState::fold(&[]), Ok(None));
}
