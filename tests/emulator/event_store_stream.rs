//! The events table's DynamoDB stream: every appended event appears as an INSERT with a
//! `NEW_IMAGE` that decodes back into the full envelope (what the publisher and projector read).

use std::time::Duration;

use aws_sdk_dynamodbstreams::types::{ShardIteratorType, StreamViewType};
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

    let mut seen: Vec<(String, StoredEvent)> = Vec::new();
    for _attempt in 0..20 {
        seen.clear();
        for shard in description.shards() {
            let shard_id = shard.shard_id().expect("a shard id");
            let mut iterator = streams
                .get_shard_iterator()
                .stream_arn(&fixture.stream_arn)
                .shard_id(shard_id)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .expect("get_shard_iterator")
                .shard_iterator;
            while let Some(current) = iterator.take() {
                let page = streams
                    .get_records()
                    .shard_iterator(current)
                    .send()
                    .await
                    .expect("get_records");
                if page.records().is_empty() {
                    break;
                }
                for record in page.records() {
                    let name = record
                        .event_name()
                        .map(|n| n.as_str().to_owned())
                        .unwrap_or_default();
                    let image = record
                        .dynamodb()
                        .and_then(|d| d.new_image())
                        .expect("NEW_IMAGE records carry the new image")
                        .clone();
                    let event: StoredEvent = serde_dynamo::from_item(image)
                        .expect("the image decodes into the envelope");
                    seen.push((name, event));
                }
                iterator = page.next_shard_iterator;
            }
        }
        if seen.len() >= appended.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["INSERT", "INSERT"], "one INSERT per appended event");
    let images: Vec<StoredEvent> = seen.into_iter().map(|(_, e)| e).collect();
    assert_eq!(images, appended, "every envelope field survives the stream");
    assert_eq!(images[1].correlation_id, context.correlation_id);
    assert_eq!(images[1].causation_id, context.causation_id);
}
