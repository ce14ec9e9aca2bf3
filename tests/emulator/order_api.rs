//! The order API's handler on the real DynamoDB adapters against the emulator: API Gateway v2
//! request fixtures in, the stored events, idempotency records and read-model rows out.

use std::sync::Arc;

use adapters::clock::SystemClock;
use adapters::dynamo::{DynamoEventStore, DynamoIdempotencyStore};
use adapters::dynamo_catalogue::DynamoCatalogue;
use adapters::dynamo_views::DynamoOrderViews;
use domain::ids::StreamId;
use domain::ports::{EventStore, IdempotencyStore};
use domain::projection::project_order_view;
use domain::read_model::OrderViews;
use integration_tests::emulator;
use order_api::testing::{Answer, as_customer, order_body, post_orders, request, send};
use order_api::{App, Settings};
use serde_json::json;

struct Stack {
    app: App,
    store: DynamoEventStore,
    idempotency: DynamoIdempotencyStore,
    views: DynamoOrderViews,
}

async fn stack(test: &str) -> Stack {
    let emulator = emulator().await;
    let events = emulator.event_store(test).await;
    let views = emulator.order_views(test).await;
    let catalogue = emulator.catalogue(test).await;
    let idempotency = DynamoIdempotencyStore::new(events.client.clone(), &events.idempotency_table);
    let app = App {
        store: Arc::new(events.store.clone()),
        idempotency: Arc::new(idempotency.clone()),
        views: Arc::new(views.views.clone()),
        catalogue: Arc::new(catalogue),
        clock: Arc::new(SystemClock),
        settings: Settings::default(),
    };
    Stack {
        app,
        store: events.store,
        idempotency,
        views: views.views,
    }
}

async fn place(stack: &Stack, customer: &str, key: Option<&str>) -> Answer {
    let headers: Vec<(&str, &str)> = key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
    send(
        &stack.app,
        as_customer(post_orders(&order_body(), &headers), customer),
    )
    .await
}

/// Projects every event of `order_id`'s stream into the read model, as the projector would.
async fn project(stack: &Stack, order_id: &str) {
    for event in stack
        .store
        .load(&StreamId::new("order", order_id))
        .await
        .expect("loading")
    {
        project_order_view(&stack.store, &stack.views, &event, 3)
            .await
            .expect("projecting");
    }
}

fn order_id(answer: &Answer) -> String {
    answer.body["order_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no order id in {}", answer.body))
        .to_owned()
}

#[tokio::test]
async fn placing_with_an_idempotency_key_stores_one_order_and_one_record() {
    let stack = stack("api-idem").await;
    let first = place(&stack, "cust-api-1", Some("api-key-1")).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let id = order_id(&first);
    let retry = place(&stack, "cust-api-1", Some("api-key-1")).await;
    assert_eq!(retry.status, 201, "{}", retry.body);
    assert_eq!(order_id(&retry), id);

    let stored = stack
        .store
        .load(&StreamId::new("order", &id))
        .await
        .expect("loading");
    assert_eq!(stored.len(), 1, "the retry stored nothing");
    assert_eq!(stored[0].event_type, "OrderPlaced");
    assert_eq!(stored[0].correlation_id.as_str(), "fixture-correlation-1");
    let record = stack
        .idempotency
        .get("order-api#place#cust-api-1#api-key-1")
        .await
        .expect("get")
        .expect("the key is recorded with the event");
    assert_eq!(record.response["order_id"], id.as_str());

    // Another body under the same key is refused; another customer's same key is their own.
    let mut other = order_body();
    other["items"][0]["quantity"] = json!(5);
    let reused = send(
        &stack.app,
        as_customer(
            post_orders(&other, &[("Idempotency-Key", "api-key-1")]),
            "cust-api-1",
        ),
    )
    .await;
    reused.assert_problem(422, "Idempotency-Key");
    let theirs = place(&stack, "cust-api-2", Some("api-key-1")).await;
    assert_eq!(theirs.status, 201, "{}", theirs.body);
    assert_ne!(order_id(&theirs), id, "keys are scoped to the caller");
}

#[tokio::test]
async fn an_order_reads_back_at_once_and_then_from_the_read_model() {
    let stack = stack("api-read").await;
    let id = order_id(&place(&stack, "cust-api-read", None).await);
    let path = format!("/orders/{id}");

    let get = |path: &str| as_customer(request("GET", path, None, &[]), "cust-api-read");
    let before = send(&stack.app, get(&path)).await;
    assert_eq!(before.status, 200, "{}", before.body);
    assert_eq!(before.body["status"], "placed");

    project(&stack, &id).await;
    let row = stack
        .views
        .get(&domain::ids::OrderId::parse(&id).expect("id"))
        .await
        .expect("get");
    assert!(row.is_some(), "the projector wrote the row");
    let after = send(&stack.app, get(&path)).await;
    assert_eq!(after.status, 200);
    assert_eq!(
        after.body, before.body,
        "the read model shows what the events say"
    );

    let history = send(&stack.app, get(&format!("{path}/events"))).await;
    assert_eq!(history.status, 200);
    assert_eq!(history.body["events"][0]["event_type"], "OrderPlaced");
    assert_eq!(history.body["events"][0]["data"]["total"], 4497);
}

#[tokio::test]
async fn an_orders_history_pages_through_the_events_table_in_order() {
    use domain::delivery::{
        DeliveryCancellationRefused, DeliveryEvent, DeliveryScheduled, DeliveryStatus,
    };
    use domain::envelope::{Actor, EventContext, StoredEvent};
    use domain::ids::{CustomerId, DeliveryId, OrderId};
    use domain::ports::AppendRequest;

    let stack = stack("api-history").await;
    let id = order_id(&place(&stack, "cust-api-history", None).await);
    let order_id = OrderId::parse(&id).expect("id");
    let delivery_id = DeliveryId::for_order(&order_id);
    let customer_id = CustomerId::parse("cust-api-history").expect("id");
    let placed = stack
        .store
        .load(&StreamId::new("order", &id))
        .await
        .expect("loading")
        .remove(0);
    let address = serde_json::from_value(placed.data["delivery_address"].clone()).expect("address");
    let delivery = StreamId::delivery(&delivery_id);
    let mut events = vec![DeliveryEvent::DeliveryScheduled(DeliveryScheduled {
        delivery_id: delivery_id.clone(),
        order_id: order_id.clone(),
        customer_id: customer_id.clone(),
        delivery_address: address,
        promised_by: placed.occurred_at + chrono::Duration::days(1),
    })];
    events.extend((0..24).map(|_| {
        DeliveryEvent::DeliveryCancellationRefused(DeliveryCancellationRefused {
            delivery_id: delivery_id.clone(),
            order_id: order_id.clone(),
            customer_id: customer_id.clone(),
            status: DeliveryStatus::Dispatched,
        })
    }));
    let context = EventContext::caused_by(
        &placed,
        Actor::system("test"),
        placed.occurred_at + chrono::Duration::seconds(1),
    );
    stack
        .store
        .append(AppendRequest {
            stream_id: delivery.clone(),
            expected_version: 0,
            events: StoredEvent::stamp(&delivery, 0, &events, &context),
            idempotency: None,
        })
        .await
        .expect("appending");

    let get = |path: &str| as_customer(request("GET", path, None, &[]), "cust-api-history");
    let mut shown = Vec::new();
    let mut bodies = String::new();
    let mut path = format!("/orders/{id}/events?limit=10");
    loop {
        let page = send(&stack.app, get(&path)).await;
        assert_eq!(page.status, 200, "{}", page.body);
        bodies.push_str(&page.body.to_string());
        let events = page.body["events"].as_array().expect("events");
        assert!(events.len() <= 10);
        shown.extend(events.iter().map(|e| {
            (
                e["stream_id"].as_str().unwrap_or_default().to_owned(),
                e["version"].as_u64().unwrap_or_default(),
            )
        }));
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/orders/{id}/events?limit=10&cursor={cursor}"),
            None => break,
        }
    }
    let mut expected = vec![(format!("order#{id}"), 1)];
    expected.extend((1..=25).map(|v| (format!("delivery#d-{id}"), v)));
    assert_eq!(
        shown, expected,
        "every event once, oldest first, over 3 pages"
    );
    assert!(
        !bodies.contains("Sample Street"),
        "the customer's history carries no address"
    );

    let bad = send(&stack.app, get(&format!("/orders/{id}/events?cursor=abcd"))).await;
    bad.assert_problem(400, "cursor");
}

#[tokio::test]
async fn a_customers_orders_page_through_the_index_newest_first() {
    let stack = stack("api-list").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = order_id(&place(&stack, "cust-api-list", None).await);
        project(&stack, &id).await;
        ids.push(id);
        // Distinct placement times (millisecond precision).
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let first = send(
        &stack.app,
        as_customer(
            request("GET", "/customers/me/orders?limit=2", None, &[]),
            "cust-api-list",
        ),
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let page: Vec<&str> = first.body["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .filter_map(|o| o["order_id"].as_str())
        .collect();
    assert_eq!(page, [ids[2].as_str(), ids[1].as_str()]);
    let cursor = first.body["next_cursor"].as_str().expect("a second page");
    let second = send(
        &stack.app,
        as_customer(
            request(
                "GET",
                &format!("/customers/cust-api-list/orders?limit=2&cursor={cursor}"),
                None,
                &[],
            ),
            "cust-api-list",
        ),
    )
    .await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.body["orders"][0]["order_id"], ids[0].as_str());
    assert_eq!(second.body["orders"].as_array().map(Vec::len), Some(1));

    send(
        &stack.app,
        as_customer(
            request(
                "GET",
                "/customers/cust-api-list/orders?cursor=bm90LWEtY3Vyc29y",
                None,
                &[],
            ),
            "cust-api-list",
        ),
    )
    .await
    .assert_problem(400, "cursor");
}

#[tokio::test]
async fn concurrent_cancels_store_one_cancellation_and_answer_200_and_409() {
    let stack = stack("api-cancel").await;
    let id = order_id(&place(&stack, "cust-api-cancel", None).await);
    let path = format!("/orders/{id}/cancel");
    let (a, b) = tokio::join!(
        send(
            &stack.app,
            as_customer(request("POST", &path, None, &[]), "cust-api-cancel")
        ),
        send(
            &stack.app,
            as_customer(request("POST", &path, None, &[]), "cust-api-cancel")
        )
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{} / {}", a.body, b.body);

    let stored = stack
        .store
        .load(&StreamId::new("order", &id))
        .await
        .expect("loading");
    let types: Vec<&str> = stored.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["OrderPlaced", "OrderCancelled"]);
}

#[tokio::test]
async fn a_missing_table_is_a_503_not_a_500() {
    let emulator = emulator().await;
    let client = emulator.dynamodb();
    let app = App {
        store: Arc::new(DynamoEventStore::new(
            client.clone(),
            "absent-events",
            "absent-idem",
        )),
        idempotency: Arc::new(DynamoIdempotencyStore::new(client.clone(), "absent-idem")),
        views: Arc::new(DynamoOrderViews::new(client.clone(), "absent-views")),
        catalogue: Arc::new(DynamoCatalogue::new(client, "absent-catalogue")),
        clock: Arc::new(SystemClock),
        settings: Settings::default(),
    };
    let placed = send(&app, post_orders(&order_body(), &[])).await;
    assert_eq!(placed.status, 503, "{}", placed.body);
    assert_eq!(placed.body["retryable"], true);
    let read = send(&app, request("GET", "/orders/o-1", None, &[])).await;
    assert_eq!(read.status, 503, "{}", read.body);
}

#[tokio::test]
async fn the_catalogue_adapter_reads_what_an_operator_loaded_and_prices_orders_from_it() {
    use domain::catalogue::parse_catalogue;
    use domain::ids::Sku;
    use domain::ports::Catalogue;
    let emulator = emulator().await;
    let catalogue = emulator.catalogue("catalogue-adapter").await;
    let sku = |s: &str| Sku::parse(s).expect("sku");
    let mut found = catalogue
        .entries(&[
            sku("MUG-STONE"),
            sku("NO-SUCH-SKU"),
            sku("TEA-GREEN-100G"),
            sku("MUG-STONE"),
        ])
        .await
        .expect("reading the catalogue");
    found.sort_by(|a, b| a.sku.cmp(&b.sku));
    let summary: Vec<(String, u64, bool)> = found
        .iter()
        .map(|e| (e.sku.to_string(), u64::from(e.unit_price), e.active))
        .collect();
    assert_eq!(
        summary,
        [
            ("MUG-STONE".to_owned(), 1899, true),
            ("TEA-GREEN-100G".to_owned(), 1299, true)
        ],
        "unknown SKUs are absent, duplicates asked once"
    );
    // A price change is a reload; the next read sees it.
    let changed = parse_catalogue(
        r#"{"items":[{"sku":"MUG-STONE","name":"Stoneware mug, 350 ml","unit_price":1999,"currency":"EUR","active":true}]}"#,
    )
    .expect("valid");
    catalogue.put_entries(&changed).await.expect("reloading");
    let mug = catalogue
        .entries(&[sku("MUG-STONE")])
        .await
        .expect("reading");
    assert_eq!(u64::from(mug[0].unit_price), 1999);
    // 120 SKUs at once: more than one BatchGetItem.
    let many: Vec<Sku> = (0..120).map(|n| sku(&format!("SKU-{n}"))).collect();
    assert!(catalogue.entries(&many).await.expect("reading").is_empty());
}

#[tokio::test]
async fn an_order_is_priced_from_the_catalogue_table_and_a_stale_price_is_refused() {
    let stack = stack("priced").await;
    let placed = place(&stack, "cust-priced", None).await;
    assert_eq!(placed.status, 201, "{}", placed.body);
    assert_eq!(placed.body["total"], 2 * 1299 + 1899);
    let mut stale = order_body();
    stale["items"][0]["unit_price"] = json!(999);
    let refused = send(&stack.app, post_orders(&stale, &[])).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(refused.body["current_prices"][0]["unit_price"], 1299);
}
