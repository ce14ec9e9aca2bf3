//! The bridge's stream poller (`bridge::stream_poller`) against a DynamoDB whose stream
//! iterators stop seeing new records after a cancelled transaction: moto's own DynamoDB, the fault
//! that made the local saga freeze (docs/local-emulators.md). The default stack avoids it by
//! serving DynamoDB with DynamoDB Local; this test keeps it on purpose, in one table of its own,
//! to prove the bridge's guard — a shard that reads nothing for a while is checked with a fresh
//! iterator and read on from it — delivers every record to the function all the same. On
//! LocalStack (no such fault) the same test simply sees every record delivered.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use adapters::dynamo::DynamoEventStore;
use bridge::invoke::Invoker;
use bridge::stack::{FunctionSpec, StartingPosition, StreamMapping};
use bridge::stream_poller::StreamPoller;
use bridge::stream_retry::RetryPolicy;
use domain::Aggregate;
use domain::envelope::StoredEvent;
use domain::ids::StreamId;
use domain::order::{CancellationReason, Order, OrderCommand};
use domain::ports::{AppendRequest, EventStore, StoreError};
use domain::repository;
use integration_tests::{
    EmulatorKind, customer_request, emulator, place, place_order, unique_name,
};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The event ids the fake function was invoked with, in order.
type Invoked = Arc<Mutex<Vec<String>>>;

/// A Lambda invoke API on 127.0.0.1 whose one function records the event ids of every DynamoDB
/// stream batch it is given and answers success.
async fn fake_function() -> (String, Invoked) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
    let address = listener.local_addr().expect("an address");
    let invoked: Invoked = Arc::default();
    let seen = invoked.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                loop {
                    let mut length = 0_usize;
                    loop {
                        let mut line = String::new();
                        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if stream.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let ids = event["Records"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|r| {
                            r["dynamodb"]["NewImage"]["event_id"]["S"]
                                .as_str()
                                .map(str::to_owned)
                        });
                    seen.lock().expect("the list").extend(ids);
                    let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
                    if stream.get_mut().write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{address}"), invoked)
}

/// Waits (at most `within`) until the function has been invoked with `expected`, in order.
async fn wait_for(invoked: &Invoked, expected: &[String], within: Duration) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let seen = invoked.lock().expect("the list").clone();
        if seen == expected || tokio::time::Instant::now() >= deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ids(events: &[StoredEvent]) -> Vec<String> {
    events.iter().map(|e| e.event_id.clone()).collect()
}

#[tokio::test]
async fn the_stream_poller_reads_on_after_a_cancelled_transaction_detached_its_iterator() {
    let emulator = emulator().await;
    // The DynamoDB under test: moto's own beside moto (its iterators detach after a cancelled
    // transaction), LocalStack's on LocalStack.
    let (dynamodb, streams) = match emulator.kind {
        EmulatorKind::Moto => (
            aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&emulator.config)
                    .endpoint_url(&emulator.endpoint)
                    .build(),
            ),
            aws_sdk_dynamodbstreams::Client::from_conf(
                aws_sdk_dynamodbstreams::config::Builder::from(&emulator.config)
                    .endpoint_url(&emulator.endpoint)
                    .build(),
            ),
        ),
        EmulatorKind::LocalStack => (emulator.dynamodb(), emulator.dynamodb_streams()),
    };
    let table = unique_name("poller-events");
    let stream_arn = bridge::setup::create_template_table(&dynamodb, "EventsTable", &table)
        .await
        .expect("creating the events table")
        .expect("the events table has a stream");
    let store = DynamoEventStore::reader(dynamodb, &table);

    let (functions, invoked) = fake_function().await;
    let poller = StreamPoller {
        mapping: StreamMapping {
            name: "Projector.Stream".into(),
            function: FunctionSpec {
                logical_id: "Projector".into(),
                handler: "projector".into(),
                name: "projector".into(),
                timeout: Duration::from_secs(10),
            },
            table_logical_id: "EventsTable".into(),
            table_name: table.clone(),
            starting_position: StartingPosition::TrimHorizon,
            batch_size: 100,
            batching_window: Duration::ZERO,
            policy: RetryPolicy {
                report_batch_item_failures: true,
                bisect_on_function_error: false,
                max_retry_attempts: Some(1),
                max_record_age: None,
            },
            on_failure: None,
            enabled: true,
        },
        stream_arn,
        on_failure_url: None,
        function_arn: "arn:aws:lambda:us-east-1:123456789012:function:projector".into(),
        region: "us-east-1".into(),
    };
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    tokio::spawn(poller.run(
        streams,
        emulator.sqs(),
        Invoker::new(&functions, Duration::ZERO),
        shutdown,
    ));

    let context = customer_request("cust-poller");
    let order = place_order("cust-poller", 1);
    let stream = StreamId::order(&order.order_id);
    let mut expected =
        ids(
            &repository::execute::<Order>(&store, &stream, &place(&order), &context, None, 1)
                .await
                .expect("placing"),
        );
    let seen = wait_for(&invoked, &expected, Duration::from_secs(10)).await;
    assert_eq!(seen, expected, "the first record reaches the function");

    // A lost race: the order's first event again at version 1 — a cancelled transaction.
    let placed_again = Order::default().decide(&place(&order)).expect("deciding");
    let refused = store
        .append(AppendRequest {
            stream_id: stream.clone(),
            expected_version: 0,
            events: StoredEvent::stamp(&stream, 0, &placed_again, &context),
            idempotency: None,
        })
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict { .. })),
        "a second version 1 is a typed conflict: {refused:?}"
    );

    let later = place_order("cust-poller", 2);
    let later_stream = StreamId::order(&later.order_id);
    expected.extend(ids(&repository::execute::<Order>(
        &store,
        &later_stream,
        &place(&later),
        &context,
        None,
        1,
    )
    .await
    .expect("placing after the conflict")));
    let cancel = OrderCommand::Cancel {
        reason: CancellationReason::CustomerRequest,
    };
    expected.extend(ids(&repository::execute::<Order>(
        &store, &stream, &cancel, &context, None, 1,
    )
    .await
    .expect("cancelling after the conflict")));

    // The poller checks a shard that has read nothing for 10 s with a fresh iterator.
    let seen = wait_for(&invoked, &expected, Duration::from_secs(30)).await;
    assert_eq!(
        seen,
        expected,
        "every record written after the cancelled transaction reaches the function ({})",
        emulator.kind.name()
    );
}
