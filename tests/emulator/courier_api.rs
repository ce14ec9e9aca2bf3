//! The courier API's handler on the real DynamoDB event store against the emulator: a delivery
//! scheduled the way `delivery-on-order-placed` schedules it (`DeliveryCommand::Schedule` through
//! `repository::execute`), then API Gateway v2 request fixtures in, the stored events out — and
//! concurrent couriers resolved by the store's conditional transaction, never by luck.

use std::sync::Arc;

use adapters::clock::SystemClock;
use adapters::dynamo::DynamoEventStore;
use chrono::Duration;
use delivery::courier::routes::CourierAction::{self, Complete, Delay, Dispatch, Fail};
use delivery::courier::testing::{
    Answer, Race, act_with, delay_by, dispatch_by, fail_by, get, schedule, send, with_caller,
    with_store,
};
use delivery::courier::{App, Settings};
use domain::envelope::StoredEvent;
use domain::ids::{DeliveryId, OrderId, StreamId};
use domain::ports::{Clock, EventStore};
use integration_tests::emulator;
use lambda_http::Request;
use serde_json::{Value, json};

struct Stack {
    app: App,
    store: DynamoEventStore,
}

/// The courier API on a fresh events table, wired as `courier-api`'s `main` wires it.
async fn stack(test: &str) -> Stack {
    let emulator = emulator().await;
    let events = emulator.event_store(test).await;
    let store = DynamoEventStore::reader(events.client.clone(), &events.events_table);
    let app = App {
        store: Arc::new(store.clone()),
        clock: Arc::new(SystemClock),
        settings: Settings::default(),
    };
    Stack { app, store }
}

/// Schedules the delivery of a new order, placed now, and returns its id.
async fn scheduled(stack: &Stack, customer: &str) -> DeliveryId {
    let order_id = OrderId::generate();
    schedule(&stack.store, &order_id, customer, SystemClock.now()).await
}

async fn act(
    stack: &Stack,
    id: &DeliveryId,
    action: CourierAction,
    body: &Value,
    correlation: &str,
) -> Answer {
    send(&stack.app, request(id, action, body, correlation)).await
}

/// `request` sent by the courier `body` names (the fixture's courier when it names none).
fn by_named_courier(request: Request, body: &Value) -> Request {
    match body["courier_id"].as_str() {
        Some(courier) => with_caller(request, courier, &["couriers"]),
        None => request,
    }
}

async fn stored(stack: &Stack, id: &DeliveryId) -> Vec<StoredEvent> {
    stack
        .store
        .load(&StreamId::delivery(id))
        .await
        .expect("loading the delivery stream")
}

fn types(events: &[StoredEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

#[tokio::test]
async fn a_delivery_is_dispatched_delayed_and_completed_over_the_handler() {
    let stack = stack("courier-flow").await;
    let id = scheduled(&stack, "cust-courier-1").await;
    let promised_by = stored(&stack, &id).await[0].data["promised_by"].clone();
    let promised_by: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(promised_by).expect("promised_by is a date-time");

    act(
        &stack,
        &id,
        Dispatch,
        &dispatch_by("courier-emu"),
        "emu-dispatch",
    )
    .await
    .assert_accepted("dispatched", 2);
    let new_eta = promised_by + Duration::hours(1);
    act(
        &stack,
        &id,
        Delay,
        &delay_by("courier-emu", new_eta, "road closed"),
        "emu-delay",
    )
    .await
    .assert_accepted("dispatched", 3);
    let completed = act(
        &stack,
        &id,
        Complete,
        &json!({"courier_id": "courier-emu"}),
        "emu-complete",
    )
    .await;
    completed.assert_accepted("completed", 4);
    assert_eq!(completed.headers["x-correlation-id"], "emu-complete");

    let events = stored(&stack, &id).await;
    assert_eq!(
        types(&events),
        [
            "DeliveryScheduled",
            "DeliveryDispatched",
            "DeliveryDelayed",
            "DeliveryCompleted"
        ]
    );
    assert_eq!(
        events.iter().map(|e| e.version).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    let envelope: Vec<(&str, &str, &str)> = events[1..]
        .iter()
        .map(|e| {
            (
                e.actor.as_str(),
                e.correlation_id.as_str(),
                e.causation_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        envelope,
        [
            ("courier/courier-emu", "emu-dispatch", "emu-dispatch"),
            ("courier/courier-emu", "emu-delay", "emu-delay"),
            ("courier/courier-emu", "emu-complete", "emu-complete"),
        ]
    );
    assert_eq!(events[1].data["courier_id"], "courier-emu");
    assert_eq!(events[2].data["delay_number"], 1);
    assert_eq!(events[2].data["previous_eta"], json!(promised_by));
    assert_eq!(events[2].data["new_eta"], json!(new_eta));
    assert_eq!(events[2].data["reason"], "road closed");

    let read = send(&stack.app, get(id.as_str())).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.body["status"], "completed");
    assert_eq!(read.body["eta"], json!(new_eta));
    assert_eq!(read.body["delays"], 1);
    assert_eq!(read.body["courier_id"], "courier-emu");
    assert_eq!(read.body["version"], 4);
    assert_eq!(read.body["events"].as_array().map(Vec::len), Some(4));

    // A retried complete answers as the first did and stores nothing.
    act(
        &stack,
        &id,
        Complete,
        &json!({"courier_id": "courier-emu"}),
        "emu-complete",
    )
    .await
    .assert_accepted("completed", 4);
    assert_eq!(stored(&stack, &id).await.len(), 4);
}

/// Runs `first` and `second` as two concurrent requests that both decide on the same stream
/// version; `first` appends first, `second` meets DynamoDB's condition on the version key and is
/// decided again. (Left to chance, the race would be at the mercy of the emulator: moto does not
/// make a `TransactWriteItems` condition atomic with the write under concurrent requests.)
/// Returns both answers and how many appends the second attempted.
async fn race(stack: &Stack, first: Request, second: Request) -> (Answer, Answer, u32) {
    let (first_store, second_store) = Race::between(Arc::new(stack.store.clone()));
    let first_app = with_store(&stack.app, first_store);
    let second_app = with_store(&stack.app, second_store.clone());
    let (a, b) = tokio::join!(send(&first_app, first), send(&second_app, second));
    (a, b, second_store.appends())
}

fn request(id: &DeliveryId, action: CourierAction, body: &Value, correlation: &str) -> Request {
    let request = act_with(
        id.as_str(),
        action,
        &body.to_string(),
        &[("x-correlation-id", correlation)],
    );
    by_named_courier(request, body)
}

#[tokio::test]
async fn concurrent_dispatches_by_two_couriers_one_holds_the_delivery_the_other_is_409() {
    let stack = stack("courier-race-dispatch").await;
    let id = scheduled(&stack, "cust-courier-race").await;
    let (first, second, second_appends) = race(
        &stack,
        request(&id, Dispatch, &dispatch_by("courier-a"), "race-a"),
        request(&id, Dispatch, &dispatch_by("courier-b"), "race-b"),
    )
    .await;
    first.assert_accepted("dispatched", 2);
    second.assert_status_problem(409);
    assert_eq!(
        second.body["type"],
        "urn:orderflow:problem:already-dispatched"
    );
    assert_eq!(
        second_appends, 1,
        "the second reached the store once and lost"
    );
    let events = stored(&stack, &id).await;
    assert_eq!(types(&events), ["DeliveryScheduled", "DeliveryDispatched"]);
    assert_eq!(events[1].actor.as_str(), "courier/courier-a");
    // Only the courier who holds it may end it.
    act(
        &stack,
        &id,
        Fail,
        &fail_by("courier-b", "damaged"),
        "b-fail",
    )
    .await
    .assert_status_problem(403);
    assert_eq!(stored(&stack, &id).await.len(), 2);
}

#[tokio::test]
async fn concurrent_complete_and_fail_one_wins_the_other_is_409() {
    let stack = stack("courier-end-race").await;
    for complete_first in [true, false] {
        let id = scheduled(&stack, "cust-courier-end").await;
        act(
            &stack,
            &id,
            Dispatch,
            &dispatch_by("courier-a"),
            "end-dispatch",
        )
        .await
        .assert_accepted("dispatched", 2);
        let complete = request(
            &id,
            Complete,
            &json!({"courier_id": "courier-a"}),
            "end-complete",
        );
        let fail = request(
            &id,
            Fail,
            &fail_by("courier-a", "van broke down"),
            "end-fail",
        );
        let (winner, loser, ending, status, correlation) = if complete_first {
            let (winner, loser, _) = race(&stack, complete, fail).await;
            (
                winner,
                loser,
                "DeliveryCompleted",
                "completed",
                "end-complete",
            )
        } else {
            let (winner, loser, _) = race(&stack, fail, complete).await;
            (winner, loser, "DeliveryFailed", "failed", "end-fail")
        };
        winner.assert_accepted(status, 3);
        loser.assert_status_problem(409);
        assert_eq!(
            loser.body["type"],
            "urn:orderflow:problem:invalid-transition"
        );
        assert!(
            loser.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains(status)),
            "{}",
            loser.body
        );
        let events = stored(&stack, &id).await;
        assert_eq!(
            types(&events),
            ["DeliveryScheduled", "DeliveryDispatched", ending],
            "exactly one ending is stored"
        );
        assert_eq!(events[2].correlation_id.as_str(), correlation);
    }
}

#[tokio::test]
async fn a_missing_table_is_a_503_not_a_500() {
    let emulator = emulator().await;
    let app = App {
        store: Arc::new(DynamoEventStore::reader(
            emulator.dynamodb(),
            "absent-courier-events",
        )),
        clock: Arc::new(SystemClock),
        settings: Settings::default(),
    };
    let answer = send(&app, act_with("d-o-1", Dispatch, "{}", &[])).await;
    answer.assert_status_problem(503);
    assert_eq!(answer.body["retryable"], true);
    let read = send(&app, get("d-o-1")).await;
    read.assert_status_problem(503);
}
