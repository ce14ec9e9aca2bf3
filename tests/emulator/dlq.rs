//! `orderflow dlq` against the emulator: a handler's real poison (a consumer that fails each
//! message until SQS moves it to the dead-letter queue by the redrive policy) is listed, shown
//! without being taken, and redriven to its source — interrupted halfway, then finished, with
//! nothing lost and nothing sent twice; a stream reader's poison record and on-failure record
//! are replayed through the projector and the event publisher.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use adapters::eventbridge::EventBridgePublisher;
use domain::envelope::StoredEvent;
use domain::ids::OrderId;
use domain::read_model::OrderViews;
use integration_tests::stage::StageFixture;
use integration_tests::streams::read_stream;
use integration_tests::{Emulator, emulator, place_one};
use serde_json::{Value, json};
use testkit::lambda::bus_event_body;
use tokio_util::sync::CancellationToken;
use tools::cli::MoveMethod;
use tools::dlq::ops::{Queue, Queues};
use tools::dlq::redrive::Replay;
use tools::dlq::{QueueKind, Reader};
use tools::progress::Progress;

const FIXTURE: &str = include_str!("../../schemas/samples/OrderPlaced-v1.json");

/// `count` distinct `OrderPlaced` events (schema v1, as stored long ago).
fn placed_events(count: usize) -> Vec<StoredEvent> {
    (0..count)
        .map(|n| {
            let mut event: Value = serde_json::from_str(FIXTURE).expect("the fixture");
            let order = OrderId::generate();
            event["event_id"] = json!(format!("018f1c2e-7b3a-7000-8000-{n:012}"));
            event["stream_id"] = json!(format!("order#{order}"));
            event["data"]["order_id"] = json!(order.as_str());
            serde_json::from_value(event).expect("an envelope")
        })
        .collect()
}

/// A stage of the test's own (template.yaml, created by the bridge's set-up code) whose handler
/// queue `delivery-on-order-placed` has redriven `events` to its dead-letter queue as real poison:
/// each message received and never deleted until SQS moved it there (after the template's
/// maxReceiveCount receives). The source's and the DLQ's URLs.
async fn poisoned(emulator: &Emulator, events: &[StoredEvent]) -> (StageFixture, String, String) {
    let stage = emulator.stage("dlq").await;
    let source_url = stage.queue_url("DeliveryOnOrderPlacedQueue").to_owned();
    let dlq_url = stage
        .queue_url("DeliveryOnOrderPlacedDeadLetterQueue")
        .to_owned();
    let sqs = emulator.sqs();
    for event in events {
        sqs.send_message()
            .queue_url(&source_url)
            .message_body(bus_event_body(event))
            .send()
            .await
            .expect("send_message");
    }
    let queues = Queues::new(sqs.clone(), &stage.stage);
    let deadline = Instant::now() + Duration::from_secs(60);
    while queues.depth(&dlq_url).await.expect("the DLQ's depth") < events.len() as u64 {
        assert!(
            Instant::now() < deadline,
            "SQS did not move the failed messages to the DLQ"
        );
        // The failing consumer: takes each message and lets it come back at once.
        sqs.receive_message()
            .queue_url(&source_url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .send()
            .await
            .expect("receive_message");
    }
    (stage, source_url, dlq_url)
}

/// The event ids of every message in the queue at `url` (each received and deleted).
async fn drain(emulator: &Emulator, url: &str, expected: usize) -> Vec<String> {
    emulator
        .receive_all(url, expected, Duration::from_secs(20))
        .await
        .iter()
        .map(|body| {
            body["detail"]["event_id"]
                .as_str()
                .unwrap_or("?")
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn dead_letters_are_listed_shown_and_redriven_without_loss_or_doubles_when_interrupted() {
    let emulator = emulator().await;
    let events = placed_events(12);
    let (fixture, source_url, dlq_url) = poisoned(&emulator, &events).await;
    let stage = fixture.stage.as_str();
    let queues = Queues::new(emulator.sqs(), stage);

    // The stage's 18 dead-letter, on-failure and poison queues (template.yaml), none of the
    // handler queues they hold failures of; only the one with poison in it is not empty.
    let list = queues.list().await.expect("dlq list");
    assert_eq!(list.len(), 18, "{list:?}");
    let sources: BTreeSet<&str> = fixture
        .resources
        .queues
        .iter()
        .filter(|q| q.attributes.contains_key("RedrivePolicy"))
        .map(|q| q.name.as_str())
        .collect();
    assert_eq!(sources.len(), 12, "the handler queues");
    assert!(
        list.iter().all(|q| !sources.contains(q.name.as_str())),
        "no source is listed: {list:?}"
    );
    let dlq_name = format!("orderflow-{stage}-delivery-on-order-placed-dlq");
    let poisoned: Vec<_> = list.iter().filter(|q| q.depth > 0).collect();
    assert_eq!(poisoned.len(), 1, "{list:?}");
    assert_eq!(poisoned[0].name, dlq_name);
    assert_eq!(poisoned[0].depth, 12);
    assert!(
        poisoned[0].oldest_age_seconds.is_some(),
        "{:?}",
        poisoned[0]
    );

    let queue = queues.resolve(&dlq_name).await.expect("the queue");
    assert_eq!(
        queue.kind,
        QueueKind::DeadLetters {
            source: format!("orderflow-{stage}-delivery-on-order-placed")
        }
    );
    let letters = queues.show(&queue, 20).await.expect("dlq show");
    let shown: BTreeSet<&str> = letters
        .iter()
        .filter_map(|l| l.event_id.as_deref())
        .collect();
    let sent: BTreeSet<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(shown, sent, "each message shown once, decoded");
    assert!(
        letters
            .iter()
            .all(|l| l.event_type.as_deref() == Some("OrderPlaced")
                && l.order_id.is_some()
                && l.receive_count >= 1)
    );
    assert_eq!(
        queues.depth(&dlq_url).await.expect("depth"),
        12,
        "showing takes nothing"
    );

    // Interrupted once 3 messages are back in the source (as Ctrl-C does), paced so it is halfway.
    let stop = CancellationToken::new();
    let watcher = {
        let (queues, stop, source_url) = (queues.clone(), stop.clone(), source_url.clone());
        tokio::spawn(async move {
            while queues.depth(&source_url).await.unwrap_or(0) < 3 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            stop.cancel();
        })
    };
    let first = queues
        .move_to_source(
            &queue,
            MoveMethod::Copy,
            Some(10),
            &Progress::new(false),
            &stop,
        )
        .await
        .expect("the first redrive");
    watcher.abort();
    assert_eq!(first.stopped.as_deref(), Some("interrupted"), "{first:?}");
    assert!((3..12).contains(&first.moved), "{first:?}");
    assert_eq!(
        first.moved + first.left,
        12,
        "nothing lost or doubled: {first:?}"
    );
    assert_eq!(queues.depth(&source_url).await.expect("depth"), first.moved);

    let rest = queues
        .move_to_source(
            &queue,
            MoveMethod::Copy,
            None,
            &Progress::new(false),
            &CancellationToken::new(),
        )
        .await
        .expect("the second redrive");
    assert_eq!((rest.stopped, rest.left), (None, 0));
    assert_eq!(first.moved + rest.moved, 12);
    let back = drain(&emulator, &source_url, 12).await;
    assert_eq!(back.len(), 12, "no message twice: {back:?}");
    assert_eq!(
        back.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        sent,
        "every message back in its source, as it was"
    );
}

#[tokio::test]
async fn auto_redrive_uses_the_move_task_where_sqs_has_it_and_copies_elsewhere() {
    let emulator = emulator().await;
    let events = placed_events(3);
    let (fixture, source_url, _) = poisoned(&emulator, &events).await;
    let stage = fixture.stage.as_str();
    let queues = Queues::new(emulator.sqs(), stage);
    let queue = queues
        .resolve(&format!("orderflow-{stage}-delivery-on-order-placed-dlq"))
        .await
        .expect("the queue");
    let moved = queues
        .move_to_source(
            &queue,
            MoveMethod::Auto,
            None,
            &Progress::new(false),
            &CancellationToken::new(),
        )
        .await
        .expect("the redrive");
    assert!(
        ["move-task", "copy"].contains(&moved.method.as_str()),
        "{moved:?}"
    );
    assert_eq!(
        (moved.stopped.as_deref(), moved.left),
        (None, 0),
        "{moved:?}"
    );
    let back = drain(&emulator, &source_url, 3).await;
    assert_eq!(back.len(), 3, "{back:?}");
}

#[tokio::test]
async fn stream_failures_and_poison_records_are_replayed_through_their_reader() {
    let emulator = emulator().await;
    let stage_fixture = emulator.stage("dlq-stream").await;
    let stage = stage_fixture.stage.as_str();
    let fixture = emulator
        .event_store_on(
            &stage_fixture.table("EventsTable"),
            &stage_fixture.table("IdempotencyTable"),
        )
        .await;
    let views = adapters::dynamo_views::DynamoOrderViews::new(
        emulator.dynamodb(),
        stage_fixture.table("ViewsTable"),
    );
    let first = place_one(&fixture.store, "cust-dlq-1").await;
    let second = place_one(&fixture.store, "cust-dlq-2").await;
    let records = read_stream(&emulator.dynamodb_streams(), &fixture.stream_arn, 2).await;
    let sequence = |n: usize| {
        records[n]
            .dynamodb()
            .and_then(|d| d.sequence_number())
            .expect("a sequence number")
            .to_owned()
    };
    let shard = emulator
        .dynamodb_streams()
        .describe_stream()
        .stream_arn(&fixture.stream_arn)
        .send()
        .await
        .expect("describe_stream")
        .stream_description
        .and_then(|d| d.shards.and_then(|s| s.into_iter().next()))
        .and_then(|s| s.shard_id)
        .expect("a shard");

    // The projector's poison queue holds the first order's record; the publisher's on-failure
    // queue a batch of both, as Lambda and the readers write them.
    let poison_url = stage_fixture.queue_url("ProjectorPoisonQueue").to_owned();
    let failures_url = stage_fixture
        .queue_url("PublisherStreamFailuresQueue")
        .to_owned();
    let sqs = emulator.sqs();
    let poison = json!({
        "consumer": "projector", "reason": "poison event: a view too large (fixed since)",
        "event_source_arn": fixture.stream_arn, "sequence_number": sequence(0),
        "event_name": "INSERT",
        "keys": {"stream_id": {"S": format!("order#{first}")}, "version": {"N": "1"}},
        "new_image": {},
    });
    let failure = json!({
        "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 3},
        "responseContext": {"functionError": "Unhandled"},
        "version": "1.0",
        "DDBStreamBatchInfo": {
            "shardId": shard, "startSequenceNumber": sequence(0),
            "endSequenceNumber": sequence(1), "batchSize": 2, "streamArn": fixture.stream_arn,
        },
    });
    for (url, body) in [(&poison_url, poison), (&failures_url, failure)] {
        sqs.send_message()
            .queue_url(url)
            .message_body(body.to_string())
            .send()
            .await
            .expect("send_message");
    }

    let queues = Queues::new(sqs, stage);
    let replay = Replay {
        store: fixture.store.clone(),
        streams: emulator.dynamodb_streams(),
        publisher: EventBridgePublisher::new(
            emulator.eventbridge(),
            stage_fixture.variable("EVENT_BUS_NAME"),
        ),
        views: views.clone(),
    };
    let resolve = |name: String| {
        let queues = queues.clone();
        async move { queues.resolve(&name).await.expect("the queue") }
    };
    let poison_queue: Queue = resolve(format!("orderflow-{stage}-projector-poison")).await;
    assert_eq!(
        poison_queue.kind,
        QueueKind::Poison {
            reader: Reader::Projector
        }
    );
    let shown = queues.show(&poison_queue, 5).await.expect("show");
    assert_eq!(shown[0].order_id.as_deref(), Some(first.as_str()));

    let done = replay
        .redrive(
            &queues,
            &poison_queue,
            &Progress::new(false),
            &CancellationToken::new(),
        )
        .await
        .expect("the poison redrive");
    assert_eq!((done.moved, done.left, done.stopped), (1, 0, None));
    let view = views.get(&first).await.expect("the views");
    assert!(
        view.is_some_and(|v| v.status.is_some()),
        "the order is in the views now"
    );
    assert_eq!(
        views.get(&second).await.expect("the views"),
        None,
        "only the record's event was projected"
    );

    let failures_queue =
        resolve(format!("orderflow-{stage}-event-publisher-stream-failures")).await;
    let done = replay
        .redrive(
            &queues,
            &failures_queue,
            &Progress::new(false),
            &CancellationToken::new(),
        )
        .await
        .expect("the stream failure redrive");
    assert_eq!((done.moved, done.left, done.stopped), (1, 0, None));
    // On the stage's bus, the template's rule for OrderPlaced takes them to the delivery's queue.
    let published: BTreeSet<String> = emulator
        .receive_all(
            stage_fixture.queue_url("DeliveryOnOrderPlacedQueue"),
            2,
            Duration::from_secs(20),
        )
        .await
        .iter()
        .map(|body| {
            body["detail"]["stream_id"]
                .as_str()
                .unwrap_or("?")
                .to_owned()
        })
        .collect();
    assert_eq!(
        published,
        BTreeSet::from([format!("order#{first}"), format!("order#{second}")]),
        "the range's two events are on the bus again"
    );
}
