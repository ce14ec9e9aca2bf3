//! Reading a table's DynamoDB stream from the emulator and handing its records to a function the
//! way Lambda does: the `aws_lambda_events` DynamoDB event JSON (`Records[].dynamodb.NewImage` in
//! DynamoDB JSON, `SequenceNumber`, `eventSourceARN` …).

use std::time::Duration;

use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use serde_json::Value;

/// Reads every record of the stream from its start, waiting (up to ~5 s) until at least
/// `at_least` have arrived; panics with what it saw otherwise.
pub async fn read_stream(
    client: &aws_sdk_dynamodbstreams::Client,
    stream_arn: &str,
    at_least: usize,
) -> Vec<Record> {
    let records = StreamFollower::from_start(client, stream_arn)
        .await
        .read(at_least, Duration::from_secs(5))
        .await;
    assert!(
        records.len() >= at_least,
        "the stream {stream_arn} showed {} record(s), expected at least {at_least}",
        records.len()
    );
    records
}

/// The records as the DynamoDB event Lambda delivers (one batch): the bridge's own builder
/// (`bridge::stream_event`), the one place that JSON is made.
pub fn lambda_event(records: &[Record], stream_arn: &str) -> Value {
    bridge::stream_event::lambda_event(records, stream_arn, REGION)
}

/// The region the emulators' clients use (tests/support `Emulator`).
const REGION: &str = "us-east-1";

/// A stream reader that behaves like a long-running poller (the bridge's, Lambda's): it takes one
/// iterator per shard once, at the stream's start, and from then on only follows
/// `NextShardIterator` — it never asks for a fresh iterator. An emulator whose open iterators stop
/// seeing new records (moto's after a cancelled transaction) starves it, as it would starve a
/// poller.
pub struct StreamFollower {
    client: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    iterators: Vec<Option<String>>,
}

impl StreamFollower {
    /// Takes a `TRIM_HORIZON` iterator on every shard the stream has now.
    pub async fn from_start(client: &aws_sdk_dynamodbstreams::Client, stream_arn: &str) -> Self {
        let description = client
            .describe_stream()
            .stream_arn(stream_arn)
            .send()
            .await
            .expect("describe_stream")
            .stream_description
            .expect("a stream description");
        let mut iterators = Vec::new();
        for shard in description.shards() {
            let iterator = client
                .get_shard_iterator()
                .stream_arn(stream_arn)
                .shard_id(shard.shard_id().expect("a shard id"))
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .expect("get_shard_iterator")
                .shard_iterator;
            iterators.push(iterator);
        }
        assert!(
            !iterators.is_empty(),
            "the stream {stream_arn} has no shard"
        );
        Self {
            client: client.clone(),
            stream_arn: stream_arn.to_owned(),
            iterators,
        }
    }

    /// Follows the iterators (only `NextShardIterator`) until `count` more records have been read
    /// or `within` has passed, and returns what was read.
    pub async fn read(&mut self, count: usize, within: Duration) -> Vec<Record> {
        let deadline = tokio::time::Instant::now() + within;
        let mut records = Vec::new();
        loop {
            for slot in &mut self.iterators {
                let Some(current) = slot.take() else { continue };
                let page = self
                    .client
                    .get_records()
                    .shard_iterator(current)
                    .send()
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "get_records on {}: {}",
                            self.stream_arn,
                            aws_sdk_dynamodbstreams::error::DisplayErrorContext(e)
                        )
                    });
                records.extend(page.records().iter().cloned());
                *slot = page.next_shard_iterator;
            }
            if records.len() >= count || tokio::time::Instant::now() >= deadline {
                return records;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
