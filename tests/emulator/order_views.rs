//! `DynamoOrderViews` and the projection against the emulator: the view stored as native
//! attributes, conditional saves, a customer's orders newest first page by page through the
//! `by-customer` index, and real appended events projected with duplicates and gaps.

use adapters::dynamo_views::DynamoOrderViews;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::delivery::{Delivery, DeliveryCommand, DeliveryStatus};
use domain::envelope::{Actor, EventContext, StoredEvent};
use domain::ids::{CourierId, CustomerId, OrderId, StreamId};
use domain::order::{
    CancellationReason, Order, OrderEvent, OrderPlaced, OrderStatus, PlaceOrder, order_total,
};
use domain::projection::{Projected, project_order_view};
use domain::read_model::{OrderView, OrderViews, ViewError};
use domain::repository;
use integration_tests::{customer_request, emulator, place, place_order};

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0)
        .single()
        .expect("a valid instant")
}

/// The `OrderPlaced` of `order`, stored at `base() + minute`.
fn placed_event(order: &PlaceOrder, minute: i64) -> StoredEvent {
    let event = OrderEvent::OrderPlaced(OrderPlaced {
        order_id: order.order_id.clone(),
        customer_id: order.customer_id.clone(),
        items: order.items.clone(),
        total: order_total(&order.items).expect("a total"),
        currency: order.currency,
        delivery_address: order.delivery_address.clone(),
    });
    let context = EventContext {
        occurred_at: base() + Duration::minutes(minute),
        ..customer_request(order.customer_id.as_str())
    };
    StoredEvent::stamp(&StreamId::order(&order.order_id), 0, &[event], &context).remove(0)
}

/// The view of `order` placed at `base() + minute`.
fn placed_view(order: &PlaceOrder, minute: i64) -> OrderView {
    let mut view = OrderView::new(order.order_id.clone());
    assert!(view.apply(&placed_event(order, minute)).expect("applies"));
    view
}

fn s<'a>(item: &'a std::collections::HashMap<String, AttributeValue>, name: &str) -> &'a str {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .unwrap_or_else(|| panic!("{name} is a string attribute: {item:?}"))
}

#[tokio::test]
async fn a_view_round_trips_and_is_stored_as_native_attributes() {
    let fixture = emulator().await.order_views("views-native").await;
    let order = place_order("cust-native", 3);
    let view = placed_view(&order, 0);
    fixture.views.save(&view, None).await.expect("saving");

    let loaded = fixture
        .views
        .get(&order.order_id)
        .await
        .expect("get")
        .expect("the view exists");
    assert_eq!(loaded, view, "get returns exactly what was saved");
    assert_eq!(
        fixture
            .views
            .get(&OrderId::generate())
            .await
            .expect("get of an unknown order"),
        None
    );

    let item = fixture
        .client
        .get_item()
        .table_name(&fixture.table)
        .key("pk", AttributeValue::S(format!("order#{}", order.order_id)))
        .consistent_read(true)
        .send()
        .await
        .expect("get_item")
        .item
        .expect("the view is stored under pk = order#<id>");
    assert_eq!(s(&item, "status"), "placed");
    assert_eq!(s(&item, "customer_id"), "cust-native");
    assert_eq!(s(&item, "currency"), "EUR");
    assert_eq!(
        s(&item, "placed_key"),
        format!("2026-11-22T10:00:00.000Z#{}", order.order_id)
    );
    assert_eq!(
        item.get("total")
            .and_then(|t| t.as_n().ok())
            .map(String::as_str),
        Some("6014"),
        "money is a number of cents"
    );
    let items = item
        .get("items")
        .and_then(|i| i.as_l().ok())
        .expect("items is a list");
    assert_eq!(items.len(), 3);
    assert!(
        items.iter().all(|line| line.as_m().is_ok()),
        "lines are maps"
    );
    let versions = item
        .get("versions")
        .and_then(|v| v.as_m().ok())
        .expect("versions is a map");
    assert_eq!(
        versions
            .get(&format!("order#{}", order.order_id))
            .and_then(|v| v.as_n().ok())
            .map(String::as_str),
        Some("1")
    );
    let timeline = item
        .get("timeline")
        .and_then(|t| t.as_l().ok())
        .expect("timeline is a list");
    let entry = timeline[0].as_m().expect("a timeline entry is a map");
    assert_eq!(s(entry, "event_type"), "OrderPlaced");
    assert_eq!(
        s(entry, "summary"),
        "Order placed: 3 line(s), total 60.14 EUR"
    );
    for absent in ["cancellation_reason", "delivery"] {
        assert!(
            !item.contains_key(absent),
            "{absent} is left out while unset"
        );
    }
    for personal in ["Test Recipient", "Test Street", "Testville"] {
        assert!(
            !format!("{item:?}").contains(personal),
            "the view holds no address ({personal})"
        );
    }
}

#[tokio::test]
async fn a_view_beyond_the_item_limit_is_too_large_not_unavailable() {
    use domain::read_model::TimelineEntry;

    let fixture = emulator().await.order_views("views-too-large").await;
    let order = place_order("cust-too-large", 1);
    let mut view = placed_view(&order, 0);
    // No projection writes such a view (the timeline is bounded): this one is built by hand to
    // see what DynamoDB says to an item over 400 KB.
    let entry = view.timeline[0].clone();
    view.timeline = (0..500)
        .map(|n| TimelineEntry {
            summary: format!("{n}: {}", "x".repeat(1_000)),
            ..entry.clone()
        })
        .collect();
    let size = adapters::dynamo_views::item_size(&view).expect("a size");
    assert!(size > adapters::dynamo_views::MAX_ITEM_BYTES, "{size}");

    let error = fixture
        .views
        .save(&view, None)
        .await
        .expect_err("too large for one item");
    assert_eq!(error, ViewError::TooLarge(order.order_id.clone()));
    assert!(
        !domain::projection::ProjectionError::View(error).is_retryable(),
        "dead-letter the record"
    );
    assert_eq!(fixture.views.get(&order.order_id).await, Ok(None));

    // Over a stored row (the conditional put) too.
    let stored = placed_view(&order, 0);
    fixture.views.save(&stored, None).await.expect("creating");
    let mut grown = view.clone();
    grown.versions = stored.versions.clone();
    grown.versions.insert("delivery#d-x".into(), 1);
    assert_eq!(
        fixture.views.save(&grown, Some(&stored)).await,
        Err(ViewError::TooLarge(order.order_id.clone()))
    );
}

#[tokio::test]
async fn a_save_over_a_changed_view_is_a_conflict() {
    let fixture = emulator().await.order_views("views-conflict").await;
    let order = place_order("cust-conflict", 1);
    let first = placed_view(&order, 0);
    fixture.views.save(&first, None).await.expect("creating");
    assert_eq!(
        fixture.views.save(&first, None).await,
        Err(ViewError::Conflict(order.order_id.clone())),
        "a second creation loses"
    );

    let mut cancelled = first.clone();
    let stream = StreamId::order(&order.order_id);
    let cancel = StoredEvent::stamp(
        &stream,
        1,
        &[OrderEvent::OrderCancelled(domain::order::OrderCancelled {
            order_id: order.order_id.clone(),
            customer_id: order.customer_id.clone(),
            reason: CancellationReason::CustomerRequest,
        })],
        &customer_request("cust-conflict"),
    );
    assert!(cancelled.apply(&cancel[0]).expect("applies"));
    fixture
        .views
        .save(&cancelled, Some(&first))
        .await
        .expect("replacing the row that was read");

    // A writer that read `first` too is too late now.
    let mut rival = first.clone();
    rival.versions.insert("delivery#d-x".into(), 1);
    assert_eq!(
        fixture.views.save(&rival, Some(&first)).await,
        Err(ViewError::Conflict(order.order_id.clone()))
    );
    let stored = fixture
        .views
        .get(&order.order_id)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(stored, cancelled);
    assert_eq!(stored.status, Some(OrderStatus::Cancelled));

    // Replacing a row that does not exist is a conflict as well.
    let other = placed_view(&place_order("cust-conflict", 1), 1);
    assert!(matches!(
        fixture.views.save(&other, Some(&other)).await,
        Err(ViewError::Conflict(_))
    ));
}

#[tokio::test]
async fn a_customers_orders_are_listed_newest_first_across_pages() {
    let fixture = emulator().await.order_views("views-list").await;
    let customer = CustomerId::parse("cust-list").expect("valid");
    let mut expected = Vec::new();
    for minute in [5, 1, 4, 2, 3] {
        let order = place_order("cust-list", 1);
        fixture
            .views
            .save(&placed_view(&order, minute), None)
            .await
            .expect("saving");
        expected.push((minute, order.order_id));
    }
    expected.sort_by(|a, b| b.cmp(a));
    let expected: Vec<OrderId> = expected.into_iter().map(|(_, id)| id).collect();

    // Another customer's order and an order whose OrderPlaced was not projected yet.
    let other = place_order("cust-other", 1);
    fixture
        .views
        .save(&placed_view(&other, 9), None)
        .await
        .expect("saving");
    let mut unplaced = OrderView::new(OrderId::generate());
    unplaced.versions.insert("delivery#d-x".into(), 1);
    fixture
        .views
        .save(&unplaced, None)
        .await
        .expect("saving a partial view");

    let mut listed = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let page = fixture
            .views
            .list_for_customer(&customer, 2, cursor.as_deref())
            .await
            .expect("listing");
        pages += 1;
        assert!(page.orders.len() <= 2);
        assert!(
            page.orders
                .iter()
                .all(|v| v.customer_id.as_ref() == Some(&customer)),
            "only this customer's orders"
        );
        listed.extend(page.orders.iter().map(|v| v.order_id.clone()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages < 10, "pagination ends");
    }
    assert_eq!(listed, expected, "newest first, each order once");
    assert_eq!(pages, 3, "2 + 2 + 1");

    let whole = fixture
        .views
        .list_for_customer(&customer, 5, None)
        .await
        .expect("listing");
    assert_eq!(whole.orders.len(), 5);
    assert_eq!(whole.next_cursor, None, "no empty last page");

    let first = fixture
        .views
        .list_for_customer(&customer, 2, None)
        .await
        .expect("listing");
    let cursor = first.next_cursor.expect("a next page");
    for bad in ["not-a-cursor", "7b7d", ""] {
        assert_eq!(
            fixture
                .views
                .list_for_customer(&customer, 2, Some(bad))
                .await,
            Err(ViewError::InvalidCursor),
            "{bad:?}"
        );
    }
    assert_eq!(
        fixture
            .views
            .list_for_customer(&other.customer_id, 2, Some(&cursor))
            .await,
        Err(ViewError::InvalidCursor),
        "a cursor of another customer's list"
    );
}

async fn project(
    fixture: &integration_tests::EventStoreFixture,
    views: &DynamoOrderViews,
    event: &StoredEvent,
) -> Projected {
    project_order_view(&fixture.store, views, event, 3)
        .await
        .unwrap_or_else(|e| panic!("projecting {} v{}: {e}", event.event_type, event.version))
}

/// Places an order and runs its delivery through schedule, dispatch and a delay; returns the
/// order's and the delivery's stored events.
async fn order_with_delivery(
    fixture: &integration_tests::EventStoreFixture,
    customer: &str,
) -> (Vec<StoredEvent>, Vec<StoredEvent>) {
    let order = place_order(customer, 2);
    let order_stream = StreamId::order(&order.order_id);
    let context = customer_request(customer);
    let placed = repository::execute::<Order>(
        &fixture.store,
        &order_stream,
        &place(&order),
        &context,
        None,
        1,
    )
    .await
    .expect("placing");
    let delivery_stream = StreamId::new(
        "delivery",
        domain::ids::DeliveryId::for_order(&order.order_id),
    );
    let mut delivery = Vec::new();
    for (second, command) in (1..).zip([
        DeliveryCommand::Schedule {
            order_id: order.order_id.clone(),
            customer_id: order.customer_id.clone(),
            delivery_address: order.delivery_address.clone(),
            placed_at: placed[0].occurred_at,
            sla: Duration::hours(24),
        },
        DeliveryCommand::Dispatch {
            courier_id: CourierId::parse("courier-1").expect("valid"),
        },
        DeliveryCommand::ReportDelay {
            courier_id: CourierId::parse("courier-1").expect("valid"),
            new_eta: placed[0].occurred_at + Duration::hours(30),
            reason: "traffic".into(),
        },
    ]) {
        // Each reaction happens a little after what it reacts to.
        let system = EventContext::caused_by(
            &placed[0],
            Actor::system("delivery-handler"),
            placed[0].occurred_at + Duration::seconds(second),
        );
        delivery.extend(
            repository::execute::<Delivery>(
                &fixture.store,
                &delivery_stream,
                &command,
                &system,
                None,
                1,
            )
            .await
            .expect("a delivery command"),
        );
    }
    (placed, delivery)
}

#[tokio::test]
async fn projecting_appended_events_skips_duplicates_and_heals_gaps() {
    let emulator = emulator().await;
    let events = emulator.event_store("project").await;
    let views = emulator.order_views("project").await.views;
    let (order, delivery) = order_with_delivery(&events, "cust-project").await;
    assert_eq!(delivery.len(), 3);
    let order_id = OrderId::parse(
        order[0].data["order_id"]
            .as_str()
            .expect("the event names its order"),
    )
    .expect("valid");

    assert_eq!(
        project(&events, &views, &order[0]).await,
        Projected::Applied
    );
    let placed = views.get(&order_id).await.expect("get").expect("exists");
    assert_eq!(placed.status, Some(OrderStatus::Placed));

    // The same record again (a stream retry): nothing changes.
    assert_eq!(
        project(&events, &views, &order[0]).await,
        Projected::Duplicate
    );
    assert_eq!(
        views.get(&order_id).await.expect("get").expect("exists"),
        placed
    );

    // The delay (v3) arrives before the schedule (v1) and the dispatch (v2): they are loaded
    // from the events table first.
    assert_eq!(
        project(&events, &views, &delivery[2]).await,
        Projected::Applied
    );
    let healed = views.get(&order_id).await.expect("get").expect("exists");
    assert_eq!(healed.version_of(&delivery[0].stream_id), 3);
    let view = healed.delivery.clone().expect("a delivery");
    assert_eq!(view.status, DeliveryStatus::Dispatched);
    assert_eq!(view.delays, 1);
    assert_eq!(view.promised_by, order[0].occurred_at + Duration::hours(24));
    assert_eq!(view.eta, order[0].occurred_at + Duration::hours(30));
    let types: Vec<_> = healed
        .timeline
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(
        types,
        [
            "OrderPlaced",
            "DeliveryScheduled",
            "DeliveryDispatched",
            "DeliveryDelayed"
        ]
    );

    // The late records are duplicates now.
    for late in &delivery[..2] {
        assert_eq!(project(&events, &views, late).await, Projected::Duplicate);
    }
    assert_eq!(
        views.get(&order_id).await.expect("get").expect("exists"),
        healed
    );
}

#[tokio::test]
async fn a_delivery_event_before_its_order_brings_the_order_in_from_the_events_table() {
    let emulator = emulator().await;
    let events = emulator.event_store("early").await;
    let views = emulator.order_views("early").await.views;
    let (order, delivery) = order_with_delivery(&events, "cust-early").await;

    assert_eq!(
        project(&events, &views, &delivery[0]).await,
        Projected::Applied
    );
    let customer = CustomerId::parse("cust-early").expect("valid");
    let page = views
        .list_for_customer(&customer, 10, None)
        .await
        .expect("listing");
    assert_eq!(page.orders.len(), 1, "listed as soon as OrderPlaced is in");
    let view = &page.orders[0];
    assert_eq!(view.status, Some(OrderStatus::Placed));
    assert_eq!(view.items.len(), 2);
    assert_eq!(
        view.delivery.as_ref().map(|d| d.status),
        Some(DeliveryStatus::Scheduled)
    );
    assert_eq!(
        project(&events, &views, &order[0]).await,
        Projected::Duplicate
    );
}

#[tokio::test]
async fn a_missing_views_table_is_unavailable() {
    let emulator = emulator().await;
    let views = DynamoOrderViews::new(emulator.dynamodb(), "no-such-views-table");
    let error = views
        .get(&OrderId::generate())
        .await
        .expect_err("the table does not exist");
    assert!(matches!(error, ViewError::Unavailable(_)), "{error:?}");
}
