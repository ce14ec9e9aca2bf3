//! Courier actions on real API Gateway v2 events, with in-memory adapters and a fixed clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use chrono::Duration;
use domain::delivery::{DeliveryCommand, MAX_REASON_LEN};
use domain::envelope::{Actor, CorrelationId, EventContext, StoredEvent};
use domain::ids::{CustomerId, OrderId, StreamId};
use domain::ports::{AppendRequest, Clock, EventStore, StoreError};
use domain::repository;
use lambda_glue::http::input::MAX_BODY_BYTES;
use serde_json::{Value, json};
use testkit::memory::InMemoryEventStore;

use super::*;
use crate::courier::testing::{
    FIXTURE_DELIVERY_ID as ID, FIXTURE_ORDER_ID, Harness, POST_DISPATCH, act, act_with, delay_by,
    dispatch_body, dispatch_by, fail_by, get, harness, promised_by, request, scheduled, send,
    with_caller, without_caller,
};

use CourierAction::{Complete, Delay, Dispatch, Fail};

fn courier(id: &str) -> Value {
    json!({ "courier_id": id })
}

fn stream() -> StreamId {
    StreamId::new("delivery", ID)
}

/// The fixture delivery, dispatched by courier-7 (version 2).
async fn dispatched() -> Harness {
    let h = scheduled().await;
    send(&h.app, act(ID, Dispatch, &dispatch_body()))
        .await
        .assert_accepted("dispatched", 2);
    h
}

fn types(h: &Harness) -> Vec<String> {
    h.store
        .all_events()
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}

// --- Accepted commands ---------------------------------------------------------------------------

#[tokio::test]
async fn the_fixture_request_dispatches_the_delivery() {
    let h = scheduled().await;
    let request = lambda_http::request::from_str(POST_DISPATCH).unwrap();
    let answer = send(&h.app, request).await;
    answer.assert_accepted("dispatched", 2);
    assert_eq!(
        answer.body,
        json!({"delivery_id": ID, "status": "dispatched", "version": 2})
    );
    assert_eq!(answer.headers["x-correlation-id"], "courier-correlation-1");

    let events = h.store.all_events();
    assert_eq!(events.len(), 2);
    let dispatched = &events[1];
    assert_eq!(dispatched.event_type, "DeliveryDispatched");
    assert_eq!(dispatched.stream_id, stream());
    assert_eq!(dispatched.version, 2);
    assert_eq!(dispatched.actor.as_str(), "courier/courier-7");
    assert_eq!(dispatched.correlation_id.as_str(), "courier-correlation-1");
    assert_eq!(dispatched.causation_id, "courier-correlation-1");
    assert_eq!(dispatched.occurred_at, h.clock.now());
    assert_eq!(dispatched.data["courier_id"], "courier-7");
    assert_eq!(dispatched.data["order_id"], FIXTURE_ORDER_ID);
    assert_eq!(dispatched.data["customer_id"], "cust-42");
}

#[tokio::test]
async fn a_request_without_a_correlation_id_gets_one_in_the_response_and_the_event() {
    let h = scheduled().await;
    let request = act_with(
        ID,
        Dispatch,
        &dispatch_body().to_string(),
        &[("x-correlation-id", "")],
    );
    let answer = send(&h.app, request).await;
    answer.assert_accepted("dispatched", 2);
    let generated = answer.headers["x-correlation-id"].to_str().unwrap();
    assert!(CorrelationId::parse(generated).is_ok(), "{generated}");
    assert_ne!(generated, "courier-correlation-1");
    assert_eq!(h.store.all_events()[1].correlation_id.as_str(), generated);
}

#[tokio::test]
async fn a_malformed_correlation_id_is_replaced_not_refused() {
    let h = scheduled().await;
    let request = act_with(
        ID,
        Dispatch,
        &dispatch_body().to_string(),
        &[("x-correlation-id", "has spaces in it")],
    );
    let answer = send(&h.app, request).await;
    answer.assert_accepted("dispatched", 2);
    let generated = answer.headers["x-correlation-id"].to_str().unwrap();
    assert_ne!(generated, "has spaces in it");
    assert_eq!(h.store.all_events()[1].correlation_id.as_str(), generated);
}

#[tokio::test]
async fn each_stored_event_carries_its_own_requests_correlation_id() {
    let h = scheduled().await;
    let with_id = |action, body: Value, id: &str| {
        act_with(ID, action, &body.to_string(), &[("x-correlation-id", id)])
    };
    send(&h.app, with_id(Dispatch, courier("courier-7"), "req-a"))
        .await
        .assert_accepted("dispatched", 2);
    let eta = promised_by() + Duration::hours(1);
    send(
        &h.app,
        with_id(Delay, delay_by("courier-7", eta, "traffic"), "req-b"),
    )
    .await
    .assert_accepted("dispatched", 3);
    send(&h.app, with_id(Complete, courier("courier-7"), "req-c"))
        .await
        .assert_accepted("completed", 4);
    let correlations: Vec<(String, String, String)> = h
        .store
        .all_events()
        .into_iter()
        .map(|e| {
            (
                e.event_type,
                e.correlation_id.as_str().to_owned(),
                e.causation_id,
            )
        })
        .collect();
    let expect = |t: &str, c: &str, k: &str| (t.to_owned(), c.to_owned(), k.to_owned());
    assert_eq!(
        correlations,
        [
            expect(
                "DeliveryScheduled",
                "order-correlation-1",
                "order-placed-event-1"
            ),
            expect("DeliveryDispatched", "req-a", "req-a"),
            expect("DeliveryDelayed", "req-b", "req-b"),
            expect("DeliveryCompleted", "req-c", "req-c"),
        ]
    );
}

#[tokio::test]
async fn a_delay_moves_the_eta_and_is_numbered() {
    let h = dispatched().await;
    h.clock.advance(Duration::minutes(20));
    let eta = promised_by() + Duration::minutes(45);
    let answer = send(
        &h.app,
        act(
            ID,
            Delay,
            &delay_by("courier-7", eta, "  traffic jam on the A1 "),
        ),
    )
    .await;
    answer.assert_accepted("dispatched", 3);
    let delayed = &h.store.all_events()[2];
    assert_eq!(delayed.event_type, "DeliveryDelayed");
    assert_eq!(delayed.actor.as_str(), "courier/courier-7");
    assert_eq!(delayed.occurred_at, h.clock.now());
    assert_eq!(delayed.data["delay_number"], 1);
    assert_eq!(delayed.data["previous_eta"], json!(promised_by()));
    assert_eq!(delayed.data["new_eta"], json!(eta));
    assert_eq!(delayed.data["reason"], "traffic jam on the A1");

    let later = eta + Duration::hours(1);
    send(
        &h.app,
        act(ID, Delay, &delay_by("courier-7", later, "flat tyre")),
    )
    .await
    .assert_accepted("dispatched", 4);
    let second = &h.store.all_events()[3];
    assert_eq!(second.data["delay_number"], 2);
    assert_eq!(second.data["previous_eta"], json!(eta));
}

#[tokio::test]
async fn a_scheduled_delivery_cannot_be_delayed_completed_or_failed_before_pickup() {
    // Nobody holds it yet: only the courier who dispatched a delivery acts on it.
    let h = scheduled().await;
    let eta = promised_by() + Duration::hours(3);
    for (action, body) in [
        (Delay, delay_by("courier-7", eta, "no van free")),
        (Complete, courier("courier-7")),
        (Fail, fail_by("courier-7", "parcel damaged in the depot")),
    ] {
        let answer = send(&h.app, act(ID, action, &body)).await;
        answer.assert_status_problem(409);
        assert_eq!(
            answer.body["type"],
            "urn:orderflow:problem:invalid-transition"
        );
    }
    assert_eq!(types(&h), ["DeliveryScheduled"]);
}

#[tokio::test]
async fn the_new_eta_is_read_in_any_offset_and_stored_in_utc() {
    let h = dispatched().await;
    let body = json!({"courier_id": "courier-7", "new_eta": "2026-11-28T14:30:00+01:00", "reason": "rain"});
    send(&h.app, act(ID, Delay, &body))
        .await
        .assert_accepted("dispatched", 3);
    assert_eq!(
        h.store.all_events()[2].data["new_eta"],
        "2026-11-28T13:30:00Z"
    );
}

#[tokio::test]
async fn a_dispatched_delivery_is_completed() {
    let h = dispatched().await;
    let answer = send(&h.app, act(ID, Complete, &courier("courier-7"))).await;
    answer.assert_accepted("completed", 3);
    let completed = &h.store.all_events()[2];
    assert_eq!(completed.event_type, "DeliveryCompleted");
    assert_eq!(completed.actor.as_str(), "courier/courier-7");
}

#[tokio::test]
async fn a_delivery_fails_with_the_couriers_reason() {
    let h = dispatched().await;
    let answer = send(
        &h.app,
        act(ID, Fail, &fail_by("courier-7", " recipient not at home ")),
    )
    .await;
    answer.assert_accepted("failed", 3);
    let failed = &h.store.all_events()[2];
    assert_eq!(failed.event_type, "DeliveryFailed");
    assert_eq!(failed.data["reason"], "recipient not at home");
    assert_eq!(failed.actor.as_str(), "courier/courier-7");
}

#[tokio::test]
async fn only_the_courier_who_dispatched_a_delivery_may_delay_complete_or_fail_it() {
    let h = dispatched().await;
    let eta = promised_by() + Duration::hours(1);
    for (action, body) in [
        (Delay, delay_by("courier-8", eta, "traffic")),
        (Complete, courier("courier-8")),
        (Fail, fail_by("courier-8", "lost")),
    ] {
        let answer = send(&h.app, act(ID, action, &body)).await;
        answer.assert_status_problem(403);
        assert_eq!(answer.body["type"], "urn:orderflow:problem:not-assigned");
    }
    assert_eq!(types(&h), ["DeliveryScheduled", "DeliveryDispatched"]);
}

#[tokio::test]
async fn the_courier_is_the_caller_and_a_body_naming_another_is_a_403() {
    let h = scheduled().await;
    // An empty body dispatches: the caller is the courier.
    let answer = send(&h.app, act_with(ID, Dispatch, "", &[])).await;
    answer.assert_accepted("dispatched", 2);
    assert_eq!(h.store.all_events()[1].data["courier_id"], "courier-7");
    assert_eq!(h.store.all_events()[1].actor.as_str(), "courier/courier-7");
    let lying = with_caller(
        act_with(ID, Complete, &courier("courier-7").to_string(), &[]),
        "courier-8",
        &["couriers"],
    );
    let answer = send(&h.app, lying).await;
    answer.assert_status_problem(403);
    assert_eq!(
        answer.body["type"],
        "urn:orderflow:problem:courier-mismatch"
    );
    assert_eq!(types(&h), ["DeliveryScheduled", "DeliveryDispatched"]);
}

#[tokio::test]
async fn customers_may_not_act_on_or_read_deliveries_and_nobody_acts_without_claims() {
    let h = scheduled().await;
    let customer = with_caller(act_with(ID, Dispatch, "{}", &[]), "cust-42", &["customers"]);
    send(&h.app, customer).await.assert_status_problem(403);
    let reading = with_caller(get(ID), "cust-42", &["customers"]);
    send(&h.app, reading).await.assert_status_problem(403);
    let nobody = without_caller(act_with(ID, Dispatch, "{}", &[]));
    let answer = send(&h.app, nobody).await;
    answer.assert_status_problem(401);
    assert_eq!(answer.headers["www-authenticate"], "Bearer");
    assert_eq!(types(&h), ["DeliveryScheduled"]);
}

// --- Idempotent repeats --------------------------------------------------------------------------

#[tokio::test]
async fn a_repeated_dispatch_by_the_same_courier_is_200_and_stores_nothing() {
    let h = dispatched().await;
    let again = send(&h.app, act(ID, Dispatch, &dispatch_body())).await;
    again.assert_accepted("dispatched", 2);
    assert_eq!(h.store.all_events().len(), 2);
}

#[tokio::test]
async fn a_dispatch_by_another_courier_of_a_dispatched_delivery_is_409() {
    let h = dispatched().await;
    let answer = send(&h.app, act(ID, Dispatch, &dispatch_by("courier-8"))).await;
    answer.assert_status_problem(409);
    assert_eq!(
        answer.body["type"],
        "urn:orderflow:problem:already-dispatched"
    );
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap()
            .contains("dispatched"),
        "{}",
        answer.body
    );
    assert_eq!(h.store.all_events().len(), 2);
}

#[tokio::test]
async fn a_repeated_complete_is_200_and_stores_nothing() {
    let h = dispatched().await;
    send(&h.app, act(ID, Complete, &courier("courier-7")))
        .await
        .assert_accepted("completed", 3);
    send(&h.app, act(ID, Complete, &courier("courier-7")))
        .await
        .assert_accepted("completed", 3);
    assert_eq!(h.store.all_events().len(), 3);
}

#[tokio::test]
async fn a_repeated_fail_is_200_and_stores_nothing() {
    let h = dispatched().await;
    for _ in 0..2 {
        send(&h.app, act(ID, Fail, &fail_by("courier-7", "lost")))
            .await
            .assert_accepted("failed", 3);
    }
    assert_eq!(h.store.all_events().len(), 3);
}

#[tokio::test]
async fn a_retried_delay_report_is_200_and_stores_nothing() {
    let h = dispatched().await;
    let eta = promised_by() + Duration::hours(1);
    let body = delay_by("courier-7", eta, "traffic");
    send(&h.app, act(ID, Delay, &body))
        .await
        .assert_accepted("dispatched", 3);
    send(&h.app, act(ID, Delay, &body))
        .await
        .assert_accepted("dispatched", 3);
    assert_eq!(h.store.all_events().len(), 3);

    // The same ETA for another reason, or from another courier, is a new report the domain refuses.
    send(&h.app, act(ID, Delay, &delay_by("courier-7", eta, "rain")))
        .await
        .assert_problem(400, "new_eta");
    send(
        &h.app,
        act(ID, Delay, &delay_by("courier-8", eta, "traffic")),
    )
    .await
    .assert_status_problem(403);
    assert_eq!(h.store.all_events().len(), 3);
}

// --- Refusals by the domain ----------------------------------------------------------------------

#[tokio::test]
async fn a_delivery_cannot_be_completed_before_it_is_dispatched() {
    let h = scheduled().await;
    let answer = send(&h.app, act(ID, Complete, &courier("courier-7"))).await;
    answer.assert_status_problem(409);
    assert_eq!(
        answer.body["type"],
        "urn:orderflow:problem:invalid-transition"
    );
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap()
            .contains("scheduled"),
        "{}",
        answer.body
    );
    assert_eq!(answer.body["correlation_id"], "courier-correlation-1");
    assert_eq!(h.store.all_events().len(), 1);
}

#[tokio::test]
async fn finished_deliveries_refuse_every_other_action_naming_their_status() {
    let eta = promised_by() + Duration::hours(1);
    let cases: [(CourierAction, Value, CourierAction, Value, &str); 5] = [
        (
            Complete,
            courier("c1"),
            Dispatch,
            courier("c1"),
            "completed",
        ),
        (
            Complete,
            courier("c1"),
            Fail,
            fail_by("c1", "x"),
            "completed",
        ),
        (
            Complete,
            courier("c1"),
            Delay,
            delay_by("c1", eta, "x"),
            "completed",
        ),
        (Fail, fail_by("c1", "x"), Complete, courier("c1"), "failed"),
        (Fail, fail_by("c1", "x"), Dispatch, courier("c1"), "failed"),
    ];
    for (finish, finish_body, then, then_body, status) in cases {
        let h = scheduled().await;
        send(&h.app, act(ID, Dispatch, &courier("c1"))).await;
        let finished = send(&h.app, act(ID, finish, &finish_body)).await;
        assert_eq!(finished.status, 200, "{}", finished.body);
        let answer = send(&h.app, act(ID, then, &then_body)).await;
        answer.assert_status_problem(409);
        assert_eq!(
            answer.body["type"],
            "urn:orderflow:problem:invalid-transition"
        );
        let detail = answer.body["detail"].as_str().unwrap();
        assert!(
            detail.contains(status),
            "{then:?} after {finish:?}: {detail}"
        );
        assert_eq!(h.store.all_events().len(), 3);
    }
}

#[tokio::test]
async fn a_cancelled_delivery_cannot_be_dispatched() {
    let h = scheduled().await;
    let order_id = OrderId::parse(FIXTURE_ORDER_ID).unwrap();
    let context = EventContext {
        correlation_id: CorrelationId::parse("cancel-1").unwrap(),
        causation_id: "order-cancelled-1".into(),
        actor: Actor::system("delivery-on-order-cancelled"),
        occurred_at: h.clock.now(),
    };
    repository::execute::<Delivery>(
        &h.store,
        &stream(),
        &DeliveryCommand::Cancel {
            order_id,
            customer_id: CustomerId::parse("cust-42").unwrap(),
        },
        &context,
        None,
        3,
    )
    .await
    .unwrap();
    let answer = send(&h.app, act(ID, Dispatch, &courier("courier-7"))).await;
    answer.assert_status_problem(409);
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap()
            .contains("cancelled")
    );
}

#[tokio::test]
async fn a_new_eta_not_after_the_current_one_is_refused_as_the_domain_says() {
    let h = dispatched().await;
    for eta in [promised_by(), promised_by() - Duration::minutes(1)] {
        let answer = send(&h.app, act(ID, Delay, &delay_by("courier-7", eta, "x"))).await;
        answer.assert_problem(400, "new_eta");
        assert_eq!(answer.body["rule"], "must be later than the current ETA");
    }
    assert_eq!(h.store.all_events().len(), 2);
}

#[tokio::test]
async fn every_action_on_an_unknown_delivery_is_404() {
    let h = harness();
    let eta = promised_by();
    for (action, body) in [
        (Dispatch, courier("c1")),
        (Delay, delay_by("c1", eta, "x")),
        (Complete, courier("c1")),
        (Fail, fail_by("c1", "x")),
    ] {
        let answer = send(&h.app, act("d-nobody", action, &body)).await;
        answer.assert_status_problem(404);
        assert_eq!(answer.body["type"], "urn:orderflow:problem:not-found");
        assert!(answer.body["detail"].as_str().unwrap().contains("d-nobody"));
    }
    assert!(h.store.all_events().is_empty());
}

// --- Bad input -----------------------------------------------------------------------------------

/// Sends `body` to `action` on the scheduled fixture delivery and checks the rejection.
async fn rejects(action: CourierAction, body: &str, status: u16, field: &str) -> Value {
    let h = scheduled().await;
    let answer = send(&h.app, act_with(ID, action, body, &[])).await;
    answer.assert_problem(status, field);
    assert_eq!(answer.body["correlation_id"], "courier-correlation-1");
    assert_eq!(
        answer.headers["x-correlation-id"], "courier-correlation-1",
        "problems carry the correlation id too"
    );
    assert_eq!(
        types(&h),
        ["DeliveryScheduled"],
        "a rejected request stores nothing"
    );
    answer.body
}

fn without(mut body: Value, field: &str) -> String {
    body.as_object_mut().unwrap().remove(field);
    body.to_string()
}

fn with(mut body: Value, field: &str, value: Value) -> String {
    body[field] = value;
    body.to_string()
}

fn delay() -> Value {
    delay_by("courier-7", promised_by() + Duration::hours(1), "traffic")
}

fn fail() -> Value {
    fail_by("courier-7", "lost")
}

#[tokio::test]
async fn malformed_json_is_a_400_naming_the_body() {
    for action in CourierAction::ALL {
        let body = rejects(action, "{\"courier_id\": ", 400, "body").await;
        assert_eq!(body["type"], "urn:orderflow:problem:malformed-json");
    }
    rejects(Dispatch, "[\"courier-7\"]", 400, "body").await;
    rejects(Dispatch, "\"courier-7\"", 400, "body").await;
    rejects(Fail, "null", 400, "body").await;
}

#[tokio::test]
async fn each_missing_field_is_named() {
    for field in ["new_eta", "reason"] {
        let body = rejects(Delay, &without(delay(), field), 400, field).await;
        assert_eq!(body["rule"], "is required");
    }
    rejects(Fail, &without(fail(), "reason"), 400, "reason").await;
}

#[tokio::test]
async fn wrong_types_are_named() {
    rejects(
        Dispatch,
        &with(courier("x"), "courier_id", json!(42)),
        400,
        "courier_id",
    )
    .await;
    rejects(
        Complete,
        &with(courier("x"), "courier_id", json!(42)),
        400,
        "courier_id",
    )
    .await;
    rejects(
        Delay,
        &with(delay(), "new_eta", json!(1_795_870_000)),
        400,
        "new_eta",
    )
    .await;
    rejects(
        Delay,
        &with(delay(), "reason", json!(["late"])),
        400,
        "reason",
    )
    .await;
    rejects(Fail, &with(fail(), "reason", json!(true)), 400, "reason").await;
}

#[tokio::test]
async fn bad_courier_ids_are_refused() {
    for bad in ["", "courier 7", "courier#7", &"c".repeat(65)] {
        let body = rejects(Dispatch, &courier(bad).to_string(), 400, "courier_id").await;
        assert_eq!(body["type"], "urn:orderflow:problem:invalid-field");
    }
    rejects(
        Fail,
        &with(fail(), "courier_id", json!("../x")),
        400,
        "courier_id",
    )
    .await;
}

#[tokio::test]
async fn a_new_eta_that_is_not_an_rfc_3339_instant_is_refused() {
    for bad in [
        "tomorrow",
        "2026-11-28",
        "2026-11-28T14:00:00",
        "2026-11-28 14:00",
        "2026-13-28T14:00:00Z",
        "",
    ] {
        let body = rejects(Delay, &with(delay(), "new_eta", json!(bad)), 400, "new_eta").await;
        assert!(
            body["rule"].as_str().unwrap().contains("RFC 3339"),
            "{bad}: {body}"
        );
    }
}

#[tokio::test]
async fn reasons_must_be_short_plain_text() {
    let too_long = "x".repeat(MAX_REASON_LEN + 1);
    for (bad, rule) in [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        (too_long.as_str(), "must be at most 500 characters"),
        ("late\u{0007}", "must not contain control characters"),
    ] {
        let body = rejects(Fail, &with(fail(), "reason", json!(bad)), 400, "reason").await;
        assert_eq!(body["rule"], rule);
        let body = rejects(Delay, &with(delay(), "reason", json!(bad)), 400, "reason").await;
        assert_eq!(body["rule"], rule);
    }
    // Exactly the limit, in characters rather than bytes, is fine.
    let h = dispatched().await;
    let longest = "é".repeat(MAX_REASON_LEN);
    send(&h.app, act(ID, Fail, &fail_by("courier-7", &longest)))
        .await
        .assert_accepted("failed", 3);
}

#[tokio::test]
async fn unknown_fields_are_refused() {
    let body = rejects(
        Dispatch,
        &with(courier("c1"), "eta", json!("soon")),
        400,
        "eta",
    )
    .await;
    assert_eq!(body["rule"], "is not a known field");
    rejects(
        Complete,
        &with(courier("c1"), "reason", json!("x")),
        400,
        "reason",
    )
    .await;
    rejects(Fail, &with(fail(), "new_eta", json!("x")), 400, "new_eta").await;
    rejects(
        Delay,
        &with(delay(), "delay_number", json!(1)),
        400,
        "delay_number",
    )
    .await;
}

#[tokio::test]
async fn a_malformed_delivery_id_is_a_400_naming_the_path_parameter() {
    let h = harness();
    for bad in ["not%20an%20id", "d%23x", &"d".repeat(80)] {
        send(&h.app, act(bad, Dispatch, &courier("c1")))
            .await
            .assert_problem(400, "id");
    }
}

#[tokio::test]
async fn an_oversized_body_is_a_413() {
    let huge = with(courier("c1"), "padding", json!("x".repeat(MAX_BODY_BYTES)));
    let body = rejects(Dispatch, &huge, 413, "body").await;
    assert_eq!(body["type"], "urn:orderflow:problem:body-too-large");
}

#[tokio::test]
async fn a_body_that_is_not_json_by_media_type_is_a_415() {
    let h = scheduled().await;
    for media_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let request = act_with(
            ID,
            Dispatch,
            &dispatch_body().to_string(),
            &[("content-type", media_type)],
        );
        send(&h.app, request)
            .await
            .assert_problem(415, "content-type");
    }
    // With parameters, JSON is JSON.
    let request = act_with(
        ID,
        Dispatch,
        &dispatch_body().to_string(),
        &[("content-type", "application/json; charset=utf-8")],
    );
    send(&h.app, request).await.assert_accepted("dispatched", 2);
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow_and_unknown_paths_404() {
    let h = scheduled().await;
    let answer = send(
        &h.app,
        request("GET", &format!("/deliveries/{ID}/dispatch"), None, &[]),
    )
    .await;
    answer.assert_status_problem(405);
    assert_eq!(answer.headers["allow"], "POST");
    let answer = send(
        &h.app,
        request("PUT", &format!("/deliveries/{ID}"), Some("{}"), &[]),
    )
    .await;
    answer.assert_status_problem(405);
    assert_eq!(answer.headers["allow"], "GET");
    let answer = send(
        &h.app,
        request(
            "POST",
            &format!("/deliveries/{ID}/teleport"),
            Some("{}"),
            &[],
        ),
    )
    .await;
    answer.assert_status_problem(404);
    send(&h.app, request("GET", "/orders", None, &[]))
        .await
        .assert_status_problem(404);
    assert_eq!(h.store.all_events().len(), 1);
}

// --- Dependencies failing and racing -------------------------------------------------------------

#[tokio::test]
async fn a_store_outage_is_a_retryable_503_and_the_retry_succeeds() {
    let h = scheduled().await;
    h.store.fail_next_appends(1);
    let answer = send(&h.app, act(ID, Dispatch, &dispatch_body())).await;
    answer.assert_status_problem(503);
    assert_eq!(answer.headers["retry-after"], "1");
    assert_eq!(answer.body["retryable"], true);
    assert_eq!(answer.body["correlation_id"], "courier-correlation-1");
    assert_eq!(types(&h), ["DeliveryScheduled"]);
    send(&h.app, act(ID, Dispatch, &dispatch_body()))
        .await
        .assert_accepted("dispatched", 2);
}

/// A store that cannot be reached at all.
struct Down;

#[async_trait]
impl EventStore for Down {
    async fn append(&self, _: AppendRequest) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn load(&self, _: &StreamId) -> Result<Vec<StoredEvent>, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
}

#[tokio::test]
async fn an_unreachable_store_is_a_503_for_every_route() {
    let h = harness();
    let mut app = h.app.clone();
    app.store = Arc::new(Down);
    for action in CourierAction::ALL {
        let body = match action {
            Delay => delay(),
            Fail => fail(),
            _ => courier("c1"),
        };
        let answer = send(&app, act(ID, action, &body)).await;
        answer.assert_status_problem(503);
        assert_eq!(answer.headers["retry-after"], "1");
    }
    let answer = send(&app, crate::courier::testing::get(ID)).await;
    answer.assert_status_problem(503);
    assert_eq!(answer.headers["retry-after"], "1");
}

/// A store whose appends always lose the race (another writer keeps moving the stream on).
struct AlwaysRacing {
    inner: InMemoryEventStore,
    appends: AtomicU32,
}

#[async_trait]
impl EventStore for AlwaysRacing {
    async fn append(&self, request: AppendRequest) -> Result<(), StoreError> {
        self.appends.fetch_add(1, Ordering::SeqCst);
        Err(StoreError::Conflict {
            stream_id: request.stream_id,
            expected_version: request.expected_version,
        })
    }
    async fn load(&self, stream_id: &StreamId) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.load(stream_id).await
    }
}

#[tokio::test]
async fn an_action_that_keeps_losing_races_ends_in_409_after_bounded_retries() {
    let h = scheduled().await;
    let racing = Arc::new(AlwaysRacing {
        inner: h.store.clone(),
        appends: AtomicU32::new(0),
    });
    let mut app = h.app.clone();
    app.store = racing.clone();
    let answer = send(&app, act(ID, Dispatch, &dispatch_body())).await;
    answer.assert_status_problem(409);
    assert_eq!(
        answer.body["type"],
        "urn:orderflow:problem:concurrent-modification"
    );
    assert_eq!(answer.body["retryable"], false);
    assert_eq!(
        racing.appends.load(Ordering::SeqCst),
        app.settings.max_attempts,
        "each attempt reloads and decides again, and the attempts end"
    );
    assert_eq!(app.settings.max_attempts, 3);
    assert_eq!(types(&h), ["DeliveryScheduled"]);
}

/// A store where another courier's request lands between the first load and the first append.
struct Overtaken {
    inner: InMemoryEventStore,
    rival: std::sync::Mutex<Option<(DeliveryCommand, Actor)>>,
}

#[async_trait]
impl EventStore for Overtaken {
    async fn append(&self, request: AppendRequest) -> Result<(), StoreError> {
        let rival = self.rival.lock().unwrap().take();
        if let Some((command, actor)) = rival {
            let context = EventContext {
                correlation_id: CorrelationId::parse("rival").unwrap(),
                causation_id: "rival".into(),
                actor,
                occurred_at: request.events[0].occurred_at,
            };
            repository::execute::<Delivery>(
                &self.inner,
                &request.stream_id,
                &command,
                &context,
                None,
                1,
            )
            .await
            .unwrap();
        }
        self.inner.append(request).await
    }
    async fn load(&self, stream_id: &StreamId) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.load(stream_id).await
    }
}

async fn overtaken_by(h: &Harness, command: DeliveryCommand, rival: &str) -> crate::courier::App {
    let mut app = h.app.clone();
    app.store = Arc::new(Overtaken {
        inner: h.store.clone(),
        rival: std::sync::Mutex::new(Some((
            command,
            Actor::courier(&domain::ids::CourierId::parse(rival).unwrap()),
        ))),
    });
    app
}

#[tokio::test]
async fn a_lost_race_is_decided_again_on_the_new_state() {
    // Fail overtakes complete: the retry sees a failed delivery.
    let h = dispatched().await;
    let app = overtaken_by(
        &h,
        DeliveryCommand::Fail {
            courier_id: domain::ids::CourierId::parse("courier-7").unwrap(),
            reason: "lost".into(),
        },
        "courier-7",
    )
    .await;
    let answer = send(&app, act(ID, Complete, &courier("courier-7"))).await;
    answer.assert_status_problem(409);
    assert!(answer.body["detail"].as_str().unwrap().contains("failed"));
    assert_eq!(
        types(&h),
        ["DeliveryScheduled", "DeliveryDispatched", "DeliveryFailed"]
    );

    // A delay overtakes fail: the retry still fails the delivery, after the delay.
    let h = dispatched().await;
    let app = overtaken_by(
        &h,
        DeliveryCommand::ReportDelay {
            courier_id: domain::ids::CourierId::parse("courier-7").unwrap(),
            new_eta: promised_by() + Duration::hours(1),
            reason: "traffic".into(),
        },
        "courier-7",
    )
    .await;
    send(&app, act(ID, Fail, &fail()))
        .await
        .assert_accepted("failed", 4);
    assert_eq!(
        types(&h),
        [
            "DeliveryScheduled",
            "DeliveryDispatched",
            "DeliveryDelayed",
            "DeliveryFailed"
        ]
    );
}

#[tokio::test]
async fn a_dispatch_overtaken_by_another_couriers_dispatch_is_409() {
    let h = scheduled().await;
    let app = overtaken_by(
        &h,
        DeliveryCommand::Dispatch {
            courier_id: domain::ids::CourierId::parse("courier-8").unwrap(),
        },
        "courier-8",
    )
    .await;
    let answer = send(&app, act(ID, Dispatch, &dispatch_body())).await;
    answer.assert_status_problem(409);
    assert_eq!(
        answer.body["type"],
        "urn:orderflow:problem:already-dispatched"
    );
    let events = h.store.all_events();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].data["courier_id"], "courier-8");
}

#[tokio::test]
async fn a_delay_past_the_limit_is_a_409_and_a_repeat_of_the_last_is_still_a_200() {
    use domain::delivery::MAX_DELAYS;
    let h = dispatched().await;
    let eta = |n: u32| promised_by() + Duration::hours(i64::from(n));
    for n in 1..=MAX_DELAYS {
        send(
            &h.app,
            act(ID, Delay, &delay_by("courier-7", eta(n), "traffic")),
        )
        .await
        .assert_accepted("dispatched", 2 + u64::from(n));
    }
    let answer = send(
        &h.app,
        act(
            ID,
            Delay,
            &delay_by("courier-7", eta(MAX_DELAYS + 1), "traffic"),
        ),
    )
    .await;
    answer.assert_status_problem(409);
    assert_eq!(answer.body["type"], "urn:orderflow:problem:limit-reached");
    send(
        &h.app,
        act(
            ID,
            Delay,
            &delay_by("courier-7", eta(MAX_DELAYS), "traffic"),
        ),
    )
    .await
    .assert_accepted("dispatched", 2 + u64::from(MAX_DELAYS));
    assert_eq!(h.store.all_events().len(), 2 + MAX_DELAYS as usize);
}
