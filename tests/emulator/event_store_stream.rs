//! The events table's DynamoDB stream: every appended event appears as an INSERT with a
//! `NEW_IMAGE` that decodes back into the full envelope (what the publisher and projector read),
//! and a reader that follows its iterators keeps seeing new records after a cancelled transaction
//! (the emulator fidelity check moto's DynamoDB fails; docs/local-emulators.md).

use std::time::Duration;

use aws_sdk_dynamodbstreams::types::StreamViewType;
use domain::Aggregate;
use domain::envelope::StoredEvent;
use domain::ids::StreamId;
use domain::order::{CancellationReason, Order, OrderCommand};
use domain::ports::{AppendRequest, EventStore, StoreError};
use domain::repository;
use integration_tests::streams::{StreamFollower, read_stream};
use integration_tests::{customer_request, emulator, place, place_order};

/// The customer cancels the order of `stream`: the events stored.
async fn cancel(
    store: &adapters::dynamo::DynamoEventStore,
    stream: &StreamId,
    context: &domain::envelope::EventContext,
) -> Vec<StoredEvent> {
    let command = OrderCommand::Cancel {
        reason: CancellationReason::CustomerRequest,
    };
    repository::execute::<Order>(store, stream, &command, context, None, 1)
        .await
        .expect("cancelling")
}

/// The stored event a stream record's new image holds.
fn stored(record: &aws_sdk_dynamodbstreams::types::Record) -> StoredEvent {
    let image = record
        .dynamodb()
        .and_then(|d| d.new_image())
        .expect("NEW_IMAGE records carry the new image")
        .clone();
    serde_dynamo::from_item(image).expect("the image decodes into the envelope")
}

#[tokio::test]
async fn a_stream_reader_sees_every_record_written_after_a_cancelled_transaction() {
    let emulator = emulator().await;
    let fixture = emulator.event_store("fidelity").await;
    let context = customer_request("cust-fidelity");
    let order = place_order("cust-fidelity", 1);
    let stream = StreamId::order(&order.order_id);
    repository::execute::<Order>(&fixture.store, &stream, &place(&order), &context, None, 1)
        .await
        .expect("placing");
    let mut follower =
        StreamFollower::from_start(&emulator.dynamodb_streams(), &fixture.stream_arn).await;
    let first = follower.read(1, Duration::from_secs(5)).await;
    assert_eq!(first.len(), 1, "the follower reads the placed order");

    // The optimistic-concurrency conflict every racing command meets: a second "version 1" of
    // the stream, refused by `attribute_not_exists` — a cancelled TransactWriteItems.
    let placed_again = Order::default().decide(&place(&order)).expect("deciding");
    let conflicting = AppendRequest {
        stream_id: stream.clone(),
        expected_version: 0,
        events: StoredEvent::stamp(&stream, 0, &placed_again, &context),
        idempotency: None,
    };
    let refused = fixture.store.append(conflicting).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict { .. })),
        "the second version 1 is a typed conflict, got {refused:?}"
    );

    // Writes after the cancelled transaction: another order, then a cancel of the first.
    let later = place_order("cust-fidelity", 2);
    let later_stream = StreamId::order(&later.order_id);
    let mut written = repository::execute::<Order>(
        &fixture.store,
        &later_stream,
        &place(&later),
        &context,
        None,
        1,
    )
    .await
    .expect("placing after the conflict");
    written.extend(cancel(&fixture.store, &stream, &context).await);

    let seen: Vec<StoredEvent> = follower
        .read(written.len(), Duration::from_secs(10))
        .await
        .iter()
        .map(stored)
        .collect();
    assert_eq!(
        seen,
        written,
        "the same iterator chain, followed across the cancelled transaction, shows every later \
         record ({} emulator)",
        emulator.kind.name()
    );
}

#[tokio::test]
async fn the_stream_shows_each_appended_event_as_a_new_image_with_its_envelope() {
    let emulator = emulator().await;
    let fixture = emulator.event_store("stream").await;
    let order = place_order("cust-stream", 2);
    let stream = StreamId::order(&order.order_id);
    let context = customer_request("cust-stream");
    let mut appended =
        repository::execute::<Order>(&fixture.store, &stream, &place(&order), &context, None, 1)
            .await
            .expect("placing");
    appended.extend(cancel(&fixture.store, &stream, &context).await);
    assert_eq!(appended.len(), 2);

    let streams = emulator.dynamodb_streams();
    let description = streams
        .describe_stream()
        .stream_arn(&fixture.stream_arn)
        .send()
        .await
        .expect("describe_stream")
        .stream_description
        .expect("a stream description");
    assert_eq!(
        description.stream_view_type(),
        Some(&StreamViewType::NewImage)
    );

    let seen: Vec<(String, StoredEvent)> =
        read_stream(&streams, &fixture.stream_arn, appended.len())
            .await
            .iter()
            .map(|record| {
                let name = record
                    .event_name()
                    .map(|n| n.as_str().to_owned())
                    .unwrap_or_default();
                (name, stored(record))
            })
            .collect();

    let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["INSERT", "INSERT"], "one INSERT per appended event");
    let images: Vec<StoredEvent> = seen.into_iter().map(|(_, e)| e).collect();
    assert_eq!(images, appended, "every envelope field survives the stream");
    assert_eq!(images[1].correlation_id, context.correlation_id);
    assert_eq!(images[1].causation_id, context.causation_id);
}
