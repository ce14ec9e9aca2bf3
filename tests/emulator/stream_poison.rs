//! Poison records against the emulator, with the real SQS adapter: a record no reader understands
//! is set aside whole in the reader's poison queue and the records after it go on; a poison queue
//! out of reach stops the batch at the poison record, and nothing after it is published.

use std::time::Duration;

use adapters::eventbridge::EventBridgePublisher;
use adapters::sqs::SqsDeadLetters;
use domain::ids::OrderId;
use domain::read_model::OrderViews;
use integration_tests::streams::{lambda_event, read_stream};
use integration_tests::{EventStoreFixture, emulator, unique_name};
use serde_json::json;
use stream_pipeline::projector::project_batch;
use stream_pipeline::publisher::publish_batch;
use stream_pipeline::{Deadline, StreamEvent};

/// Places an order for `customer`: one event; its order id.
async fn place_one(fixture: &EventStoreFixture, customer: &str) -> OrderId {
    integration_tests::place_one(&fixture.store, customer).await
}

/// An order, a poison record, another order: the table's stream as one Lambda batch, and the
/// records' sequence numbers.
async fn poisoned_batch(fixture: &EventStoreFixture, test: &str) -> (StreamEvent, Vec<String>) {
    place_one(fixture, &format!("cust-{test}-1")).await;
    fixture
        .put_unreadable_event(&format!("order#{test}-poison"), "OrderTeleported")
        .await;
    place_one(fixture, &format!("cust-{test}-2")).await;
    let emulator = emulator().await;
    let records = read_stream(&emulator.dynamodb_streams(), &fixture.stream_arn, 3).await;
    let sequence_numbers = records
        .iter()
        .filter_map(|r| r.dynamodb().and_then(|d| d.sequence_number()))
        .map(str::to_owned)
        .collect();
    let batch = serde_json::from_value(lambda_event(&records, &fixture.stream_arn))
        .expect("the records read as a Lambda DynamoDB event");
    (batch, sequence_numbers)
}

async fn poison_queue(test: &str) -> String {
    emulator()
        .await
        .sqs()
        .create_queue()
        .queue_name(unique_name(&format!("{test}-poison")))
        .send()
        .await
        .expect("create_queue")
        .queue_url
        .expect("a queue URL")
}

fn failed(response: &aws_lambda_events::event::streams::DynamoDbEventResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .filter_map(|f| f.item_identifier.clone())
        .collect()
}

#[tokio::test]
async fn a_poison_record_is_set_aside_whole_in_the_poison_queue_and_the_rest_goes_on() {
    let emulator = emulator().await;
    let fixture = emulator.event_store("poisonq").await;
    let views = emulator.order_views("poisonq").await;
    let bus = emulator.bus_to_queue("poisonq", &[]).await;
    let (batch, sequence_numbers) = poisoned_batch(&fixture, "poisonq").await;

    let publisher_poison = poison_queue("publisher").await;
    let publisher = EventBridgePublisher::new(emulator.eventbridge(), &bus.bus_name);
    let dead_letters = SqsDeadLetters::new(emulator.sqs(), &publisher_poison);
    let published = publish_batch(&publisher, &dead_letters, &batch, Deadline::none()).await;
    assert!(failed(&published).is_empty(), "{published:?}");
    let on_bus = emulator
        .receive_all(&bus.queue_url, 2, Duration::from_secs(10))
        .await;
    assert!(on_bus.iter().all(|m| m["detail-type"] == "OrderPlaced"));
    let [letter] = emulator
        .receive_all(&publisher_poison, 1, Duration::from_secs(10))
        .await
        .try_into()
        .expect("one poison record");
    assert_eq!(letter["consumer"], "event-publisher");
    assert_eq!(letter["sequence_number"], json!(sequence_numbers[1]));
    assert_eq!(letter["event_name"], "INSERT");
    assert_eq!(letter["event_source_arn"], json!(fixture.stream_arn));
    assert_eq!(
        letter["keys"]["stream_id"],
        json!({"S": "order#poisonq-poison"})
    );
    // The whole image, as DynamoDB JSON.
    assert_eq!(
        letter["new_image"]["event_type"],
        json!({"S": "OrderTeleported"})
    );
    assert_eq!(
        letter["new_image"]["data"]["M"]["destination"],
        json!({"S": "somewhere no reader knows"})
    );
    assert!(letter["reason"].as_str().is_some_and(|r| !r.is_empty()));

    let projector_poison = poison_queue("projector").await;
    let dead_letters = SqsDeadLetters::new(emulator.sqs(), &projector_poison);
    let projected = project_batch(
        &fixture.store,
        &views.views,
        &dead_letters,
        &batch,
        Deadline::none(),
    )
    .await;
    assert!(failed(&projected).is_empty(), "{projected:?}");
    let [letter] = emulator
        .receive_all(&projector_poison, 1, Duration::from_secs(10))
        .await
        .try_into()
        .expect("one poison record");
    assert_eq!(letter["consumer"], "projector");
    assert_eq!(letter["sequence_number"], json!(sequence_numbers[1]));
    for record in [&batch.records[0], &batch.records[2]] {
        let order_id = record.change.new_image["data"].clone();
        let order_id: serde_json::Value = serde_json::to_value(order_id).expect("JSON");
        let order_id =
            OrderId::parse(order_id["M"]["order_id"]["S"].as_str().expect("an id")).expect("an id");
        assert!(views.views.get(&order_id).await.expect("get").is_some());
    }
}

#[tokio::test]
async fn an_unreachable_poison_queue_stops_the_batch_at_the_poison_record() {
    let emulator = emulator().await;
    let fixture = emulator.event_store("poisonx").await;
    let bus = emulator.bus_to_queue("poisonx", &[]).await;
    let (batch, sequence_numbers) = poisoned_batch(&fixture, "poisonx").await;
    let missing = format!(
        "{}/123456789012/{}",
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_default(),
        unique_name("no-such-queue")
    );

    let publisher = EventBridgePublisher::new(emulator.eventbridge(), &bus.bus_name);
    let dead_letters = SqsDeadLetters::new(emulator.sqs(), missing);
    let published = publish_batch(&publisher, &dead_letters, &batch, Deadline::none()).await;
    assert_eq!(failed(&published), sequence_numbers[1..]);
    let on_bus = emulator
        .receive_all(&bus.queue_url, 1, Duration::from_secs(10))
        .await;
    assert_eq!(on_bus.len(), 1);
    emulator
        .assert_no_message(&bus.queue_url, Duration::from_secs(2))
        .await;
}
