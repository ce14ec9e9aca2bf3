//! `POST /orders` on real API Gateway v2 events, with in-memory adapters.

use domain::order::MAX_ITEMS;
use domain::ports::Clock;
use serde_json::{Value, json};

use super::*;
use crate::input::MAX_BODY_BYTES;
use crate::testing::{as_courier, as_customer, harness, order_body, post_orders, request, send};

#[tokio::test]
async fn the_fixture_request_places_an_order() {
    let h = harness();
    let answer = send(&h.app, post_orders(&order_body(), &[])).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let order_id = answer.body["order_id"].as_str().unwrap().to_owned();
    assert_eq!(answer.headers["location"], format!("/orders/{order_id}"));
    assert_eq!(answer.headers["content-type"], "application/json");
    assert_eq!(answer.headers["x-correlation-id"], "fixture-correlation-1");
    assert_eq!(answer.body["status"], "placed");
    assert_eq!(answer.body["total"], 2 * 1299 + 1899);
    assert_eq!(answer.body["currency"], "EUR");
    assert_eq!(answer.body["total_display"], "44.97 EUR");

    let events = h.store.all_events();
    assert_eq!(events.len(), 1);
    let placed = &events[0];
    assert_eq!(placed.event_type, "OrderPlaced");
    assert_eq!(placed.stream_id.to_string(), format!("order#{order_id}"));
    assert_eq!(placed.correlation_id.as_str(), "fixture-correlation-1");
    assert_eq!(placed.causation_id, "fixture-correlation-1");
    assert_eq!(placed.actor.as_str(), "customer/cust-42");
    assert_eq!(placed.occurred_at, h.clock.now());
    assert_eq!(placed.data["items"][0]["sku"], "TEA-GREEN-100G");
}

#[tokio::test]
async fn a_request_without_a_correlation_id_gets_one_in_the_response_and_the_event() {
    let h = harness();
    let mut event: Value = serde_json::from_str(crate::testing::POST_ORDERS).unwrap();
    event["headers"]
        .as_object_mut()
        .unwrap()
        .remove("x-correlation-id");
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let answer = send(&h.app, request).await;
    assert_eq!(answer.status, 201);
    let generated = answer.headers["x-correlation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!generated.is_empty());
    assert_eq!(h.store.all_events()[0].correlation_id.as_str(), generated);
}

#[tokio::test]
async fn a_retry_with_the_same_key_and_body_returns_the_original_order_and_stores_nothing() {
    let h = harness();
    let key = [("Idempotency-Key", "retry-key-1")];
    let first = send(&h.app, post_orders(&order_body(), &key)).await;
    assert_eq!(first.status, 201);
    // The same body with its keys in another order and other whitespace is the same request.
    let body = order_body();
    let reordered: Value = serde_json::from_str(&format!(
        "{{ \"delivery_address\": {}, \"items\": {}, \"currency\": \"EUR\" }}",
        body["delivery_address"], body["items"]
    ))
    .unwrap();
    let retry = send(&h.app, post_orders(&reordered, &key)).await;
    assert_eq!(retry.status, 201, "{}", retry.body);
    assert_eq!(retry.body["order_id"], first.body["order_id"]);
    assert_eq!(retry.headers["location"], first.headers["location"]);
    assert_eq!(h.store.all_events().len(), 1, "nothing is stored twice");
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused_with_422() {
    let h = harness();
    let key = [("Idempotency-Key", "reused-key")];
    assert_eq!(
        send(&h.app, post_orders(&order_body(), &key)).await.status,
        201
    );
    let mut other = order_body();
    other["items"][0]["quantity"] = json!(3);
    let answer = send(&h.app, post_orders(&other, &key)).await;
    answer.assert_problem(422, "Idempotency-Key");
    assert_eq!(
        answer.body["type"],
        "urn:orderflow:problem:idempotency-key-reused"
    );
    assert_eq!(h.store.all_events().len(), 1);
}

#[tokio::test]
async fn different_keys_place_different_orders() {
    let h = harness();
    let a = send(
        &h.app,
        post_orders(&order_body(), &[("Idempotency-Key", "a")]),
    )
    .await;
    let b = send(
        &h.app,
        post_orders(&order_body(), &[("Idempotency-Key", "b")]),
    )
    .await;
    assert_ne!(a.body["order_id"], b.body["order_id"]);
    assert_eq!(h.store.all_events().len(), 2);
}

#[tokio::test]
async fn a_malformed_idempotency_key_is_refused() {
    let h = harness();
    let long = "k".repeat(MAX_IDEMPOTENCY_KEY_LEN + 1);
    for key in [long.as_str(), "has space", "  "] {
        let answer = send(
            &h.app,
            post_orders(&order_body(), &[("Idempotency-Key", key)]),
        )
        .await;
        answer.assert_problem(400, "Idempotency-Key");
    }
    assert!(h.store.all_events().is_empty());
}

/// Sends a body that is not what the fixture holds and checks the rejection.
async fn rejects(body: &str, status: u16, field: &str) -> Value {
    let h = harness();
    let answer = send(&h.app, request("POST", "/orders", Some(body), &[])).await;
    answer.assert_problem(status, field);
    assert_eq!(answer.body["correlation_id"], "fixture-correlation-1");
    assert!(
        h.store.all_events().is_empty(),
        "a rejected request stores nothing"
    );
    answer.body
}

fn with(change: impl FnOnce(&mut Value)) -> String {
    with_value(change).to_string()
}

fn with_value(change: impl FnOnce(&mut Value)) -> Value {
    let mut body = order_body();
    change(&mut body);
    body
}

#[tokio::test]
async fn malformed_json_is_a_400_naming_the_body() {
    let body = rejects("{\"customer_id\": ", 400, "body").await;
    assert_eq!(body["type"], "urn:orderflow:problem:malformed-json");
    rejects("[1, 2]", 400, "body").await;
    rejects("", 400, "body").await;
    rejects("null", 400, "body").await;
}

#[tokio::test]
async fn each_missing_field_is_named() {
    for field in ["items", "currency", "delivery_address"] {
        rejects(
            &with(|b| drop(b.as_object_mut().unwrap().remove(field))),
            400,
            field,
        )
        .await;
    }
    rejects(
        &with(|b| drop(b["items"][1].as_object_mut().unwrap().remove("quantity"))),
        400,
        "items[1].quantity",
    )
    .await;
    rejects(
        &with(|b| {
            drop(
                b["delivery_address"]
                    .as_object_mut()
                    .unwrap()
                    .remove("city"),
            )
        }),
        400,
        "delivery_address.city",
    )
    .await;
}

#[tokio::test]
async fn wrong_types_are_named() {
    rejects(
        &with(|b| b["items"][0]["quantity"] = json!("two")),
        400,
        "items[0].quantity",
    )
    .await;
    rejects(
        &with(|b| b["items"][0]["quantity"] = json!(1.5)),
        400,
        "items[0].quantity",
    )
    .await;
    rejects(
        &with(|b| b["items"][0]["unit_price"] = json!(12.99)),
        400,
        "items[0].unit_price",
    )
    .await;
    rejects(
        &with(|b| b["items"][0]["unit_price"] = json!(-1)),
        400,
        "items[0].unit_price",
    )
    .await;
    rejects(&with(|b| b["items"] = json!({"sku": "A"})), 400, "items").await;
    rejects(&with(|b| b["customer_id"] = json!(42)), 400, "customer_id").await;
    rejects(
        &with(|b| b["items"][0]["name"] = json!("x")),
        400,
        "items[0].name",
    )
    .await;
    rejects(&with(|b| b["surprise"] = json!(true)), 400, "surprise").await;
}

#[tokio::test]
async fn empty_and_oversized_item_lists_are_refused() {
    let body = rejects(&with(|b| b["items"] = json!([])), 400, "items").await;
    assert!(body["rule"].as_str().unwrap().contains("1 to"), "{body}");
    let many: Vec<Value> = (0..=MAX_ITEMS)
        .map(|n| json!({"sku": format!("SKU-{n}"), "quantity": 1, "unit_price": 100}))
        .collect();
    let body = rejects(&with(|b| b["items"] = json!(many)), 400, "items").await;
    assert!(body["rule"].as_str().unwrap().contains("to 50"), "{body}");
}

#[tokio::test]
async fn quantities_and_prices_out_of_range_are_refused() {
    rejects(
        &with(|b| b["items"][0]["quantity"] = json!(0)),
        400,
        "items[0].quantity",
    )
    .await;
    rejects(
        &with(|b| b["items"][1]["quantity"] = json!(1001)),
        400,
        "items[1].quantity",
    )
    .await;
    rejects(
        &with(|b| b["items"][0]["quantity"] = json!(u64::MAX)),
        400,
        "items[0].quantity",
    )
    .await;
    rejects(
        &with(|b| b["items"][0]["unit_price"] = json!(0)),
        400,
        "items[0].unit_price",
    )
    .await;
    rejects(
        &with(|b| b["items"][0]["unit_price"] = json!(100_000_001)),
        400,
        "items[0].unit_price",
    )
    .await;
}

#[tokio::test]
async fn unknown_currencies_and_bad_ids_and_addresses_are_refused() {
    rejects(&with(|b| b["currency"] = json!("XXX")), 400, "currency").await;
    rejects(&with(|b| b["currency"] = json!("eur")), 400, "currency").await;
    rejects(
        &with(|b| b["customer_id"] = json!("../etc")),
        400,
        "customer_id",
    )
    .await;
    rejects(&with(|b| b["customer_id"] = json!("")), 400, "customer_id").await;
    rejects(
        &with(|b| b["items"][0]["sku"] = json!("a b")),
        400,
        "items[0].sku",
    )
    .await;
    rejects(
        &with(|b| b["delivery_address"]["country"] = json!("germany")),
        400,
        "delivery_address.country",
    )
    .await;
}

#[tokio::test]
async fn an_oversized_body_is_a_413() {
    let huge = with(|b| b["delivery_address"]["line1"] = json!("x".repeat(MAX_BODY_BYTES)));
    let body = rejects(&huge, 413, "body").await;
    assert_eq!(body["type"], "urn:orderflow:problem:body-too-large");
}

#[tokio::test]
async fn a_body_that_is_not_json_by_media_type_is_a_415() {
    let h = harness();
    let request = request(
        "POST",
        "/orders",
        Some(&order_body().to_string()),
        &[("content-type", "text/plain")],
    );
    send(&h.app, request)
        .await
        .assert_problem(415, "content-type");
    assert!(h.store.all_events().is_empty());
}

#[tokio::test]
async fn a_store_outage_is_a_retryable_503_and_stores_nothing() {
    let h = harness();
    h.store.fail_next_appends(1);
    let answer = send(
        &h.app,
        post_orders(&order_body(), &[("Idempotency-Key", "k-503")]),
    )
    .await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.headers["retry-after"], "1");
    assert_eq!(answer.body["retryable"], true);
    assert_eq!(answer.body["correlation_id"], "fixture-correlation-1");
    assert!(h.store.all_events().is_empty());
    // The key was not consumed: the retry places the order.
    let retry = send(
        &h.app,
        post_orders(&order_body(), &[("Idempotency-Key", "k-503")]),
    )
    .await;
    assert_eq!(retry.status, 201);
    assert_eq!(h.store.all_events().len(), 1);
}

#[test]
fn the_request_hash_ignores_key_order_but_not_values() {
    let a = json!({"a": 1, "b": [1, {"c": "x", "d": null}]});
    let b: Value = serde_json::from_str(r#"{"b": [1, {"d": null, "c": "x"}], "a": 1}"#).unwrap();
    let c = json!({"a": 2, "b": [1, {"c": "x", "d": null}]});
    assert_eq!(request_hash(&a), request_hash(&b));
    assert_ne!(request_hash(&a), request_hash(&c));
    assert!(request_hash(&a).starts_with("sha256:"));
}

#[tokio::test]
async fn the_server_prices_the_order_and_records_the_prices_it_used() {
    let h = harness();
    let mut body = order_body();
    for item in body["items"].as_array_mut().unwrap() {
        item.as_object_mut().unwrap().remove("unit_price");
    }
    let answer = send(&h.app, post_orders(&body, &[])).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.body["total"], 2 * 1299 + 1899);
    assert_eq!(answer.body["items"][1]["unit_price"], 1899);
    let placed = &h.store.all_events()[0];
    assert_eq!(placed.data["items"][0]["unit_price"], 1299);
    assert_eq!(placed.data["items"][1]["unit_price"], 1899);
    assert_eq!(
        placed.data["customer_id"], "cust-42",
        "the caller, from the token"
    );
}

#[tokio::test]
async fn a_price_the_client_showed_that_changed_is_a_409_with_the_current_prices() {
    let h = harness();
    let answer = send(
        &h.app,
        post_orders(
            &with_value(|b| b["items"][1]["unit_price"] = json!(1799)),
            &[],
        ),
    )
    .await;
    answer.assert_status_problem(409);
    assert_eq!(answer.body["type"], "urn:orderflow:problem:price-changed");
    assert_eq!(answer.body["field"], "items[1].unit_price");
    assert_eq!(answer.body["current_prices"][1]["sku"], "MUG-STONE");
    assert_eq!(answer.body["current_prices"][1]["unit_price"], 1899);
    assert_eq!(answer.body["current_prices"][0]["unit_price"], 1299);
    assert!(h.store.all_events().is_empty(), "nothing is stored");
}

#[tokio::test]
async fn unknown_inactive_and_otherwise_priced_skus_are_422_naming_the_item() {
    for (sku, kind) in [
        ("NO-SUCH-SKU", "unknown-sku"),
        ("KETTLE-GOOSENECK", "inactive-sku"),
        ("TEA-SAMPLER-US", "currency-not-priced"),
    ] {
        let body = rejects(
            &with(|b| {
                b["items"][1]["sku"] = json!(sku);
                b["items"][1].as_object_mut().unwrap().remove("unit_price");
            }),
            422,
            "items[1].sku",
        )
        .await;
        assert_eq!(body["type"], format!("urn:orderflow:problem:{kind}"));
    }
}

#[tokio::test]
async fn a_catalogue_outage_is_a_retryable_503() {
    let h = harness();
    h.catalogue.fail_next(1);
    let answer = send(&h.app, post_orders(&order_body(), &[])).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert!(h.store.all_events().is_empty());
}

#[tokio::test]
async fn a_body_naming_another_customer_is_a_403_and_the_callers_own_id_is_accepted() {
    let h = harness();
    let answer = send(
        &h.app,
        post_orders(&with_value(|b| b["customer_id"] = json!("cust-99")), &[]),
    )
    .await;
    answer.assert_status_problem(403);
    assert_eq!(
        answer.body["type"],
        "urn:orderflow:problem:customer-mismatch"
    );
    assert!(h.store.all_events().is_empty());
    let same = send(
        &h.app,
        post_orders(&with_value(|b| b["customer_id"] = json!("cust-42")), &[]),
    )
    .await;
    assert_eq!(same.status, 201, "{}", same.body);
}

#[tokio::test]
async fn only_customers_place_orders() {
    let h = harness();
    let answer = send(
        &h.app,
        as_courier(post_orders(&order_body(), &[]), "courier-7"),
    )
    .await;
    answer.assert_status_problem(403);
    assert!(h.store.all_events().is_empty());
}

#[tokio::test]
async fn idempotency_keys_are_the_callers_own() {
    let h = harness();
    let key = [("Idempotency-Key", "shared-key")];
    let mine = send(&h.app, post_orders(&order_body(), &key)).await;
    assert_eq!(mine.status, 201);
    let theirs = send(
        &h.app,
        as_customer(post_orders(&order_body(), &key), "cust-99"),
    )
    .await;
    assert_eq!(theirs.status, 201, "{}", theirs.body);
    assert_ne!(
        theirs.body["order_id"], mine.body["order_id"],
        "not my reply"
    );
    assert_eq!(theirs.body["customer_id"], "cust-99");
    assert_eq!(h.store.all_events().len(), 2);
}
