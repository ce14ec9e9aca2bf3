//! `DynamoEventStore` and `DynamoIdempotencyStore` against the emulator: round trip, native map
//! payload, optimistic concurrency, idempotency in the same transaction, paging, corrupt items and
//! an unreachable table.

use adapters::dynamo::{DynamoEventStore, DynamoIdempotencyStore};
use aws_sdk_dynamodb::types::AttributeValue;
use domain::DomainError;
use domain::envelope::StoredEvent;
use domain::ids::{DeliveryId, StreamId};
use domain::order::{CancellationReason, Order, OrderCommand, OrderEvent, OrderShipped};
use domain::ports::{AppendRequest, EventStore, IdempotencyRecord, IdempotencyStore, StoreError};
use domain::repository::{self, CommandError};
use integration_tests::{customer_request, emulator, place, place_order};
use serde_json::json;

fn order_stream(order: &domain::order::PlaceOrder) -> StreamId {
    StreamId::order(&order.order_id)
}

fn shipped(order: &domain::order::PlaceOrder) -> OrderEvent {
    OrderEvent::OrderShipped(OrderShipped {
        order_id: order.order_id.clone(),
        customer_id: order.customer_id.clone(),
        delivery_id: DeliveryId::for_order(&order.order_id),
    })
}

fn record(key: &str, order_id: &str) -> IdempotencyRecord {
    IdempotencyRecord {
        key: key.to_owned(),
        request_hash: "sha256:abc".into(),
        response: json!({"order_id": order_id}),
        expires_at: 1_900_000_000,
    }
}

#[tokio::test]
async fn append_then_load_round_trips_every_envelope_field() {
    let fixture = emulator().await.event_store("roundtrip").await;
    let order = place_order("cust-rt", 3);
    let stream = order_stream(&order);
    let context = customer_request("cust-rt");

    let stored =
        repository::execute::<Order>(&fixture.store, &stream, &place(&order), &context, None, 3)
            .await
            .expect("placing an order");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].event_type, "OrderPlaced");
    assert_eq!(stored[0].version, 1);

    let loaded = fixture.store.load(&stream).await.expect("loading");
    assert_eq!(loaded, stored, "load returns exactly what append stored");
    let OrderEvent::OrderPlaced(placed) = loaded[0].decode::<OrderEvent>().expect("decodes") else {
        panic!("expected OrderPlaced, got {:?}", loaded[0].event_type);
    };
    assert_eq!(placed.order_id, order.order_id);
    assert_eq!(placed.total.value(), 1001 + 1002 * 2 + 1003 * 3);
    assert_eq!(loaded[0].correlation_id, context.correlation_id);
    assert_eq!(loaded[0].actor.as_str(), "customer/cust-rt");

    let state = repository::load::<Order>(&fixture.store, &stream)
        .await
        .expect("loading the aggregate");
    assert_eq!(state.version, 1);
    assert_eq!(
        state.state.status().map(|s| s.as_str()),
        Some("placed"),
        "the aggregate folds its events"
    );
}

#[tokio::test]
async fn the_payload_is_a_native_dynamodb_map_not_a_blob() {
    let fixture = emulator().await.event_store("native").await;
    let order = place_order("cust-native", 2);
    let stream = order_stream(&order);
    repository::execute::<Order>(
        &fixture.store,
        &stream,
        &place(&order),
        &customer_request("cust-native"),
        None,
        1,
    )
    .await
    .expect("placing an order");

    let item = fixture
        .client
        .get_item()
        .table_name(&fixture.events_table)
        .key("stream_id", AttributeValue::S(stream.to_string()))
        .key("version", AttributeValue::N("1".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get_item")
        .item
        .expect("the event is stored under stream_id + version");
    let data = item
        .get("data")
        .and_then(|d| d.as_m().ok())
        .expect("data is a map attribute");
    assert_eq!(
        data.get("total")
            .and_then(|t| t.as_n().ok())
            .map(String::as_str),
        Some("3005"),
        "money is a number of cents"
    );
    assert_eq!(
        data.get("currency")
            .and_then(|c| c.as_s().ok())
            .map(String::as_str),
        Some("EUR")
    );
    let items = data
        .get("items")
        .and_then(|i| i.as_l().ok())
        .expect("items is a list");
    assert_eq!(items.len(), 2);
    for field in [
        "event_id",
        "event_type",
        "occurred_at",
        "correlation_id",
        "causation_id",
        "actor",
    ] {
        assert!(
            item.get(field).is_some_and(|v| v.as_s().is_ok()),
            "{field} is a string attribute"
        );
    }
    assert_eq!(
        item.get("schema_version")
            .and_then(|v| v.as_n().ok())
            .map(String::as_str),
        Some("2")
    );
}

#[tokio::test]
async fn of_two_concurrent_appends_at_one_version_exactly_one_wins() {
    let fixture = emulator().await.event_store("race").await;
    for round in 0..5 {
        let order = place_order("cust-race", 1);
        let stream = order_stream(&order);
        let context = customer_request("cust-race");
        repository::execute::<Order>(&fixture.store, &stream, &place(&order), &context, None, 1)
            .await
            .expect("placing an order");

        let contender = || AppendRequest {
            stream_id: stream.clone(),
            expected_version: 1,
            events: StoredEvent::stamp(&stream, 1, &[shipped(&order)], &context),
            idempotency: None,
        };
        let (first, second) = (contender(), contender());
        let (first_id, second_id) = (
            first.events[0].event_id.clone(),
            second.events[0].event_id.clone(),
        );
        let (a, b) = tokio::join!(fixture.store.append(first), fixture.store.append(second));

        let winner = match (&a, &b) {
            (
                Ok(()),
                Err(StoreError::Conflict {
                    expected_version: 1,
                    ..
                }),
            ) => first_id,
            (
                Err(StoreError::Conflict {
                    expected_version: 1,
                    ..
                }),
                Ok(()),
            ) => second_id,
            other => {
                panic!("round {round}: expected one winner and one typed conflict, got {other:?}")
            }
        };
        let loaded = fixture.store.load(&stream).await.expect("loading");
        assert_eq!(
            loaded.len(),
            2,
            "round {round}: exactly one event was added"
        );
        assert_eq!(
            loaded[1].event_id, winner,
            "round {round}: the stored event is the winner's"
        );
    }
}

#[tokio::test]
async fn concurrent_commands_retry_on_conflict_and_never_leak_it() {
    let fixture = emulator().await.event_store("retry").await;
    let order = place_order("cust-retry", 1);
    let stream = order_stream(&order);
    let context = customer_request("cust-retry");
    repository::execute::<Order>(&fixture.store, &stream, &place(&order), &context, None, 1)
        .await
        .expect("placing an order");

    let cancel = OrderCommand::Cancel {
        reason: CancellationReason::CustomerRequest,
    };
    let run = || repository::execute::<Order>(&fixture.store, &stream, &cancel, &context, None, 3);
    let (a, b) = tokio::join!(run(), run());
    let outcomes = [a, b];
    let accepted = outcomes
        .iter()
        .filter(|r| matches!(r, Ok(e) if e.len() == 1))
        .count();
    let refused = outcomes
        .iter()
        .filter(|r| {
            matches!(
                r,
                Err(CommandError::Domain(DomainError::InvalidTransition {
                    status: "cancelled",
                    ..
                }))
            )
        })
        .count();
    assert_eq!(
        (accepted, refused),
        (1, 1),
        "one cancel is stored, the other is refused as already cancelled: {outcomes:?}"
    );
    let loaded = fixture.store.load(&stream).await.expect("loading");
    let types: Vec<_> = loaded.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["OrderPlaced", "OrderCancelled"]);
}

#[tokio::test]
async fn a_retried_request_with_the_same_idempotency_key_stores_nothing_twice() {
    let fixture = emulator().await.event_store("idem").await;
    let idempotency =
        DynamoIdempotencyStore::new(fixture.client.clone(), &fixture.idempotency_table);
    let order = place_order("cust-idem", 1);
    let stream = order_stream(&order);
    let key = "order-api#key-1";
    let first = repository::execute::<Order>(
        &fixture.store,
        &stream,
        &place(&order),
        &customer_request("cust-idem"),
        Some(record(key, order.order_id.as_str())),
        3,
    )
    .await
    .expect("the first request is stored");
    assert_eq!(first.len(), 1);

    // The same request again, e.g. a client retry after a timeout: its events carry new ids.
    let retry = AppendRequest {
        stream_id: stream.clone(),
        expected_version: 0,
        events: StoredEvent::stamp(
            &stream,
            0,
            &[OrderEvent::OrderPlaced(domain::order::OrderPlaced {
                order_id: order.order_id.clone(),
                customer_id: order.customer_id.clone(),
                items: order.items.clone(),
                total: domain::order::order_total(&order.items).expect("total"),
                currency: order.currency,
                delivery_address: order.delivery_address.clone(),
            })],
            &customer_request("cust-idem"),
        ),
        idempotency: Some(record(key, order.order_id.as_str())),
    };
    assert_eq!(
        fixture.store.append(retry).await,
        Err(StoreError::DuplicateRequest { key: key.into() })
    );

    // The same key on another stream: refused as a whole, that stream stays empty.
    let other = place_order("cust-idem", 1);
    let other_stream = order_stream(&other);
    let reuse = repository::execute::<Order>(
        &fixture.store,
        &other_stream,
        &place(&other),
        &customer_request("cust-idem"),
        Some(record(key, other.order_id.as_str())),
        3,
    )
    .await;
    assert_eq!(
        reuse,
        Err(CommandError::Store(StoreError::DuplicateRequest {
            key: key.into()
        }))
    );
    assert!(
        fixture
            .store
            .load(&other_stream)
            .await
            .expect("loading")
            .is_empty()
    );

    let loaded = fixture.store.load(&stream).await.expect("loading");
    assert_eq!(
        loaded, first,
        "the stream holds the first request's event only"
    );
    let stored = idempotency
        .get(key)
        .await
        .expect("get")
        .expect("the record exists");
    assert_eq!(
        stored.response,
        json!({"order_id": order.order_id.as_str()})
    );
    assert_eq!(stored.request_hash, "sha256:abc");
}

#[tokio::test]
async fn put_if_absent_stores_a_marker_once() {
    let fixture = emulator().await.event_store("marker").await;
    let idempotency =
        DynamoIdempotencyStore::new(fixture.client.clone(), &fixture.idempotency_table);
    let marker = record("alert#evt-1", "o-1");
    assert!(
        idempotency
            .put_if_absent(marker.clone())
            .await
            .expect("first put")
    );
    assert!(
        !idempotency
            .put_if_absent(marker.clone())
            .await
            .expect("second put")
    );
    assert_eq!(
        idempotency.get("alert#evt-1").await.expect("get"),
        Some(marker)
    );
    assert_eq!(idempotency.get("alert#evt-2").await.expect("get"), None);
}

/// Appends `count` padded events of about `pad` bytes each to a fresh stream.
async fn append_padded(store: &DynamoEventStore, stream: &StreamId, count: u64, pad: usize) {
    let order = place_order("cust-big", 1);
    let context = customer_request("cust-big");
    let mut version = 0;
    while version < count {
        let batch = (count - version).min(10);
        let mut events = StoredEvent::stamp(
            stream,
            version,
            &vec![shipped(&order); usize::try_from(batch).expect("small")],
            &context,
        );
        for event in &mut events {
            event.data["note"] = json!("x".repeat(pad));
        }
        store
            .append(AppendRequest {
                stream_id: stream.clone(),
                expected_version: version,
                events,
                idempotency: None,
            })
            .await
            .expect("appending a batch");
        version += batch;
    }
}

#[tokio::test]
async fn a_stream_larger_than_one_megabyte_loads_completely_and_in_order() {
    let fixture = emulator().await.event_store("big").await;
    let stream = StreamId::new("order", "big-stream");
    // 40 events × ~40 KB ≈ 1.6 MB: more than one 1 MB Query page.
    append_padded(&fixture.store, &stream, 40, 40_000).await;

    let loaded = fixture.store.load(&stream).await.expect("loading");
    assert_eq!(loaded.len(), 40);
    let bytes: usize = loaded
        .iter()
        .map(|e| e.data["note"].as_str().map_or(0, str::len))
        .sum();
    assert!(
        bytes > 1_048_576,
        "the stream holds {bytes} bytes of payload"
    );
    let versions: Vec<u64> = loaded.iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=40).collect::<Vec<_>>());

    // Small pages force the pager through many Query calls: the result is the same.
    let paged = fixture
        .store
        .clone()
        .with_page_size(7)
        .load(&stream)
        .await
        .expect("paged load");
    assert_eq!(paged, loaded);
}

#[tokio::test]
async fn a_stream_is_read_a_page_at_a_time_after_a_version() {
    let fixture = emulator().await.event_store("load-from").await;
    let stream = StreamId::new("order", "paged-stream");
    append_padded(&fixture.store, &stream, 25, 10).await;
    let versions =
        |events: Vec<StoredEvent>| -> Vec<u64> { events.iter().map(|e| e.version).collect() };
    let page = |after, limit| fixture.store.load_from(&stream, after, limit);
    assert_eq!(versions(page(0, 3).await.expect("page")), [1, 2, 3]);
    assert_eq!(versions(page(20, 3).await.expect("page")), [21, 22, 23]);
    assert_eq!(versions(page(23, 10).await.expect("page")), [24, 25]);
    assert!(page(25, 10).await.expect("page").is_empty());
    // Query pages smaller than the page asked for still fill it.
    let small = fixture.store.clone().with_page_size(2);
    assert_eq!(
        versions(small.load_from(&stream, 10, 5).await.expect("page")),
        [11, 12, 13, 14, 15]
    );
    assert_eq!(
        small.load_from(&stream, 0, 100).await.expect("page"),
        fixture.store.load(&stream).await.expect("load")
    );
}

#[tokio::test]
async fn an_unreadable_stored_event_is_reported_as_corrupt_not_skipped() {
    let fixture = emulator().await.event_store("corrupt").await;
    let stream = StreamId::new("order", "corrupt-1");
    fixture
        .put_unreadable_event(stream.as_str(), "OrderBeamed")
        .await;

    match fixture.store.load(&stream).await {
        Err(StoreError::Corrupt {
            version: 1, source, ..
        }) => {
            assert!(source.to_string().contains("OrderBeamed"), "{source}");
        }
        other => panic!("expected a corrupt-event error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_table_is_a_retryable_unavailable_error() {
    let emulator = emulator().await;
    let store = DynamoEventStore::new(emulator.dynamodb(), "no-such-events-table", "no-such-idem");
    let error = store
        .load(&StreamId::new("order", "x"))
        .await
        .expect_err("the table does not exist");
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(error.is_retryable());
}
