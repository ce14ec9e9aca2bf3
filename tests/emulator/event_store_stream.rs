//! The events table's DynamoDB stream: every appended event appears as an INSERT with a
//! `NEW_IMAGE` that decodes back into the full envelope (what the publisher and projector read).

use aws_sdk_dynamodbstreams::types::StreamViewType;
use integration_tests::streams::read_stream;
use integration_tests::{customer_request, emulator, place, place_order};
use shared::domain::order::{CancellationReason, Order, OrderCommand};
use shared::envelope::StoredEvent;
use shared::ids::StreamId;
use shared::repository;

#[tokio::test]
async fn the_stream_shows_each_appended_event_as_a_new_image_with_its_envelope() {
    let emulator = emulator().await;
    let fixture = emulator.event_store("stream").await;
    let order = place_order("cust-stream", 2);
    let stream = StreamId::new("order", &order.order_id);
    let context = customer_request("cust-stream");
    let mut appended =
        repository::execute::<Order>(&fixture.store, &stream, &place(&order), &context, None, 1)
            .await
            .expect("placing");
    appended.extend(
        repository::execute::<Order>(
            &fixture.store,
            &stream,
            &OrderCommand::Cancel {
                reason: CancellationReason::CustomerRequest,
            },
            &context,
            None,
            1,
        )
        .await
        .expect("cancelling"),
    );
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
                let image = record
                    .dynamodb()
                    .and_then(|d| d.new_image())
                    .expect("NEW_IMAGE records carry the new image")
                    .clone();
                let event: StoredEvent =
                    serde_dynamo::from_item(image).expect("the image decodes into the envelope");
                (name, event)
            })
            .collect();

    let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["INSERT", "INSERT"], "one INSERT per appended event");
    let images: Vec<StoredEvent> = seen.into_iter().map(|(_, e)| e).collect();
    assert_eq!(images, appended, "every envelope field survives the stream");
    assert_eq!(images[1].correlation_id, context.correlation_id);
    assert_eq!(images[1].causation_id, context.causation_id);
}
