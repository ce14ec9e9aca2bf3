//! # stream-pipeline
//!
//! The two readers of the events table's DynamoDB stream (DESIGN §5 — at most two per shard):
//!
//! | module | responsibility |
//! | --- | --- |
//! | [`records`] | stream records as Lambda delivers them → stored events (upcast); undecodable = poison |
//! | [`publisher`] | `event-publisher`: every stored event → EventBridge, failures as `batchItemFailures` |
//! | [`projector`] | `projector`: every stored event → the order read model, idempotently |
//! | [`config`] | `Config::from_env` of each function |
//!
//! Both answer with `batchItemFailures` naming exactly the records that failed (the event source
//! mapping has `ReportBatchItemFailures`, bisect, bounded retries and an on-failure destination),
//! so a poison record ends in the on-failure queue while its batch-mates are processed.
#![forbid(unsafe_code)]

pub mod config;
pub mod projector;
pub mod publisher;
pub mod records;

use aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};

/// The response naming `failed` records (sequence numbers, stream order kept).
pub fn failures(failed: Vec<String>) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(id);
            failure
        })
        .collect();
    response
}

/// A DynamoDB stream event, re-exported for the binaries and tests.
pub type StreamEvent = DynamoDbEvent;

#[cfg(test)]
pub(crate) mod testing {
    //! The stream fixture: a real Lambda DynamoDB stream event with three INSERT records
    //! (OrderPlaced, DeliveryScheduled, OrderCancelled of one order).
    use super::StreamEvent;

    pub const BATCH: &str = include_str!("../fixtures/dynamodb_stream_batch.json");

    pub fn batch() -> StreamEvent {
        serde_json::from_str(BATCH).unwrap()
    }

    /// The fixture with record `index`'s new image changed by `change`.
    pub fn batch_with(index: usize, change: impl FnOnce(&mut serde_json::Value)) -> StreamEvent {
        let mut value: serde_json::Value = serde_json::from_str(BATCH).unwrap();
        change(&mut value["Records"][index]["dynamodb"]["NewImage"]);
        serde_json::from_value(value).unwrap()
    }

    pub fn ids(response: &aws_lambda_events::event::streams::DynamoDbEventResponse) -> Vec<String> {
        response
            .batch_item_failures
            .iter()
            .filter_map(|f| f.item_identifier.clone())
            .collect()
    }
}
