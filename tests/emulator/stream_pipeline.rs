//! The stream pipeline against the emulator: the events table's real stream records, handed to the
//! publisher and the projector as Lambda hands them, reach a queue behind a real EventBridge rule
//! and the read model; duplicates and replays; the rebuild and republish tools. Poison records:
//! `stream_poison`.

use std::time::Duration;

use adapters::eventbridge::EventBridgePublisher;
use chrono::Utc;
use domain::envelope::StoredEvent;
use domain::ids::{OrderId, StreamId};
use domain::order::{CancellationReason, Order, OrderCommand};
use domain::read_model::OrderViews;
use domain::repository;
use integration_tests::streams::{lambda_event, read_stream};
use integration_tests::{EventStoreFixture, customer_request, emulator, place, place_order};
use stream_pipeline::projector::project_batch;
use stream_pipeline::publisher::publish_batch;
use stream_pipeline::{Deadline, StreamEvent};
use testkit::memory::InMemoryDeadLetters;

/// Places an order and cancels it: two events on one stream.
async fn place_and_cancel(fixture: &EventStoreFixture, customer: &str) -> Vec<StoredEvent> {
    let order = place_order(customer, 2);
    let stream = StreamId::order(&order.order_id);
    let context = customer_request(customer);
    let mut stored =
        repository::execute::<Order>(&fixture.store, &stream, &place(&order), &context, None, 1)
            .await
            .expect("placing");
    let cancel = OrderCommand::Cancel {
        reason: CancellationReason::CustomerRequest,
    };
    stored.extend(
        repository::execute::<Order>(&fixture.store, &stream, &cancel, &context, None, 1)
            .await
            .expect("cancelling"),
    );
    stored
}

/// The table's stream as one Lambda batch.
async fn stream_batch(fixture: &EventStoreFixture, at_least: usize) -> (StreamEvent, Vec<String>) {
    let emulator = emulator().await;
    let records = read_stream(&emulator.dynamodb_streams(), &fixture.stream_arn, at_least).await;
    let sequence_numbers = records
        .iter()
        .filter_map(|r| {
            r.dynamodb()
                .and_then(|d| d.sequence_number())
                .map(str::to_owned)
        })
        .collect();
    let event = serde_json::from_value(lambda_event(&records, &fixture.stream_arn))
        .expect("the records read as a Lambda DynamoDB event");
    (event, sequence_numbers)
}

#[tokio::test]
async fn stored_events_reach_a_queue_behind_a_rule_and_the_read_model() {
    let emulator = emulator().await;
    let fixture = emulator.event_store("pipe").await;
    let views = emulator.order_views("pipe").await;
    let bus = emulator.bus_to_queue("pipe", &[]).await;
    let stored = place_and_cancel(&fixture, "cust-pipe").await;
    let (batch, _) = stream_batch(&fixture, 2).await;

    let publisher = EventBridgePublisher::new(emulator.eventbridge(), &bus.bus_name);
    let published = publish_batch(
        &publisher,
        &InMemoryDeadLetters::default(),
        &batch,
        Deadline::none(),
    )
    .await;
    assert!(published.batch_item_failures.is_empty(), "{published:?}");
    let messages = emulator
        .receive_all(&bus.queue_url, 2, Duration::from_secs(10))
        .await;
    let mut details: Vec<StoredEvent> = messages
        .iter()
        .map(|m| serde_json::from_value(m["detail"].clone()).expect("the detail is the envelope"))
        .collect();
    details.sort_by_key(|e| e.version);
    assert_eq!(details, stored, "the bus carries the envelopes as stored");
    let types: Vec<&str> = messages
        .iter()
        .filter_map(|m| m["detail-type"].as_str())
        .collect();
    assert!(types.contains(&"OrderPlaced") && types.contains(&"OrderCancelled"));
    assert!(messages.iter().all(|m| m["source"] == "orderflow.order"));

    let projected = project_batch(
        &fixture.store,
        &views.views,
        &InMemoryDeadLetters::default(),
        &batch,
        Deadline::none(),
    )
    .await;
    assert!(projected.batch_item_failures.is_empty(), "{projected:?}");
    let order_id = OrderId::parse(stored[0].data["order_id"].as_str().expect("id")).expect("id");
    let view = views
        .views
        .get(&order_id)
        .await
        .expect("get")
        .expect("the projector wrote the view");
    assert_eq!(view.status.map(|s| s.as_str()), Some("cancelled"));
    assert_eq!(view.timeline.len(), 2);
}

#[tokio::test]
async fn a_duplicated_and_a_replayed_batch_change_nothing() {
    let emulator = emulator().await;
    let fixture = emulator.event_store("replay").await;
    let views = emulator.order_views("replay").await;
    let stored = place_and_cancel(&fixture, "cust-replay").await;
    let (batch, _) = stream_batch(&fixture, 2).await;
    let order_id = OrderId::parse(stored[0].data["order_id"].as_str().expect("id")).expect("id");

    assert!(
        project_batch(
            &fixture.store,
            &views.views,
            &InMemoryDeadLetters::default(),
            &batch,
            Deadline::none()
        )
        .await
        .batch_item_failures
        .is_empty()
    );
    let first = views.views.get(&order_id).await.expect("get");
    // Lambda delivers the same batch again (a retry), then each record once more on its own.
    assert!(
        project_batch(
            &fixture.store,
            &views.views,
            &InMemoryDeadLetters::default(),
            &batch,
            Deadline::none()
        )
        .await
        .batch_item_failures
        .is_empty()
    );
    for record in &batch.records {
        let mut single = batch.clone();
        single.records = vec![record.clone()];
        assert!(
            project_batch(
                &fixture.store,
                &views.views,
                &InMemoryDeadLetters::default(),
                &single,
                Deadline::none()
            )
            .await
            .batch_item_failures
            .is_empty()
        );
    }
    assert_eq!(views.views.get(&order_id).await.expect("get"), first);
}

#[tokio::test]
async fn rebuilding_the_read_model_twice_gives_the_same_rows() {
    let emulator = emulator().await;
    let fixture = emulator.event_store("rebuild").await;
    let views = emulator.order_views("rebuild").await;
    let first = place_and_cancel(&fixture, "cust-rebuild").await;
    let second = place_and_cancel(&fixture, "cust-rebuild").await;

    let mut reports = 0;
    let done = tools::replay::rebuild_views(&fixture.store, &views.views, |_| reports += 1)
        .await
        .expect("rebuild");
    assert!(reports >= 1, "progress is reported");
    assert_eq!((done.scanned, done.done, done.skipped), (4, 4, 0));
    let page = views
        .views
        .list_for_customer(
            &first[0].data["customer_id"]
                .as_str()
                .and_then(|c| domain::ids::CustomerId::parse(c).ok())
                .expect("customer"),
            10,
            None,
        )
        .await
        .expect("list");
    assert_eq!(page.orders.len(), 2);
    assert!(
        page.orders
            .iter()
            .all(|v| v.status.map(|s| s.as_str()) == Some("cancelled"))
    );

    let again = tools::replay::rebuild_views(&fixture.store, &views.views, |_| {})
        .await
        .expect("second rebuild");
    assert_eq!((again.scanned, again.done, again.skipped), (4, 0, 4));
    let order_id = OrderId::parse(second[0].data["order_id"].as_str().expect("id")).expect("id");
    assert_eq!(
        views
            .views
            .get(&order_id)
            .await
            .expect("get")
            .map(|v| v.timeline.len()),
        Some(2)
    );
}

#[tokio::test]
async fn republishing_a_time_range_sends_just_those_events() {
    let emulator = emulator().await;
    let fixture = emulator.event_store("republish").await;
    let bus = emulator.bus_to_queue("republish", &["OrderPlaced"]).await;
    let before = place_and_cancel(&fixture, "cust-old").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let from = Utc::now();
    // Envelope times have millisecond precision: leave the millisecond `from` falls in.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let inside = place_and_cancel(&fixture, "cust-new").await;
    let to = Utc::now() + chrono::Duration::seconds(1);
    assert!(before[0].occurred_at < from && inside[0].occurred_at >= from);

    let publisher = EventBridgePublisher::new(emulator.eventbridge(), &bus.bus_name);
    let done = tools::replay::republish(&fixture.store, &publisher, from, to, |_| {})
        .await
        .expect("republish");
    assert_eq!((done.scanned, done.done, done.skipped), (4, 2, 2));
    // The rule passes OrderPlaced only: one message, the order placed inside the range.
    let messages = emulator
        .receive_all(&bus.queue_url, 1, Duration::from_secs(10))
        .await;
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0]["detail"]["event_id"],
        inside[0].event_id.as_str()
    );
    emulator
        .assert_no_message(&bus.queue_url, Duration::from_secs(1))
        .await;

    let bad = tools::replay::republish(&fixture.store, &publisher, to, from, |_| {}).await;
    assert!(bad.is_err(), "an empty range is refused");
}
