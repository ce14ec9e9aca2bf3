//! What one event-store append (a `TransactWriteItems`) costs on the emulator as the events table
//! grows: the median and p90 of sequential appends with 100 items in the table, then again after
//! it has been filled to 20,000 — on DynamoDB the cost does not depend on the table's size, and an
//! emulator that serves the local stack must not either (moto's DynamoDB copies every table a
//! transaction touches: 64 ms at 1,000 items, 1.2 s at 16,000). Prints the figures and whether the
//! large table's median is within 2× of the small one's; it asserts nothing about time.
//!
//! Run against the emulators: `scripts/bench-dynamodb.sh` (DynamoDB Local beside moto) and
//! `scripts/bench-dynamodb.sh --localstack`. Under `cargo test` (no `--bench`) it runs a short
//! smoke version (100 and 1,000 items). Figures: BENCHMARKS.md.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use domain::ids::StreamId;
use domain::order::Order;
use domain::repository;
use integration_tests::{EmulatorKind, customer_request, emulator, place, place_order};

/// Items written per `BatchWriteItem` (DynamoDB's limit).
const BATCH: usize = 25;
/// `BatchWriteItem` calls in flight while filling.
const FILL_CONCURRENCY: usize = 8;

struct Plan {
    sizes: [usize; 2],
    appends: usize,
}

/// Fills `table` with `from..to` padded items (about the size of a stored event).
async fn fill(client: &aws_sdk_dynamodb::Client, table: &str, from: usize, to: usize) {
    let padding = "x".repeat(600);
    let batches: Vec<Vec<WriteRequest>> = (from..to)
        .collect::<Vec<_>>()
        .chunks(BATCH)
        .map(|chunk| {
            chunk
                .iter()
                .map(|n| {
                    let item = PutRequest::builder()
                        .item("stream_id", AttributeValue::S(format!("fill#{n:08}")))
                        .item("version", AttributeValue::N("1".into()))
                        .item("padding", AttributeValue::S(padding.clone()))
                        .build()
                        .expect("a put request");
                    WriteRequest::builder().put_request(item).build()
                })
                .collect()
        })
        .collect();
    for wave in batches.chunks(FILL_CONCURRENCY) {
        let mut calls = tokio::task::JoinSet::new();
        for requests in wave {
            let (client, table, mut pending) = (client.clone(), table.to_owned(), requests.clone());
            calls.spawn(async move {
                while !pending.is_empty() {
                    let output = client
                        .batch_write_item()
                        .request_items(&table, pending.clone())
                        .send()
                        .await
                        .expect("batch_write_item");
                    pending = output
                        .unprocessed_items
                        .and_then(|mut left| left.remove(&table))
                        .unwrap_or_default();
                }
            });
        }
        while let Some(done) = calls.join_next().await {
            done.expect("a fill call");
        }
    }
}

/// `count` sequential appends (one new order each, as `POST /orders` stores it); their durations.
async fn appends(fixture: &integration_tests::EventStoreFixture, count: usize) -> Vec<Duration> {
    let context = customer_request("cust-bench");
    let mut durations = Vec::with_capacity(count);
    for _ in 0..count {
        let order = place_order("cust-bench", 1);
        let stream = StreamId::order(&order.order_id);
        let started = Instant::now();
        repository::execute::<Order>(&fixture.store, &stream, &place(&order), &context, None, 1)
            .await
            .expect("appending");
        durations.push(started.elapsed());
    }
    durations.sort();
    durations
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let plan = if full {
        Plan {
            sizes: [100, 20_000],
            appends: 200,
        }
    } else {
        Plan {
            sizes: [100, 1_000],
            appends: 10,
        }
    };
    let emulator = emulator().await;
    let fixture = emulator.event_store("txbench").await;
    let server = match emulator.kind {
        EmulatorKind::Moto => "DynamoDB Local",
        EmulatorKind::LocalStack => "LocalStack",
    };
    println!(
        "event-store append (TransactWriteItems) on {server} ({}), {} sequential appends per size",
        std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_else(|_| emulator.endpoint.clone()),
        plan.appends
    );
    let mut filled = 0;
    let mut medians = Vec::new();
    for size in plan.sizes {
        let started = Instant::now();
        fill(&fixture.client, &fixture.events_table, filled, size).await;
        let fill_time = started.elapsed();
        filled = size;
        let durations = appends(&fixture, plan.appends).await;
        let median = percentile(&durations, 0.5);
        medians.push(median);
        println!(
            "  {size:>6} items in the table: p50 {:6.2} ms  p90 {:6.2} ms  max {:6.2} ms  (filled in {:.1} s)",
            ms(median),
            ms(percentile(&durations, 0.9)),
            ms(percentile(&durations, 1.0)),
            fill_time.as_secs_f64()
        );
    }
    let ratio = medians[1].as_secs_f64() / medians[0].as_secs_f64().max(1e-9);
    println!(
        "  p50 at {} items / p50 at {} items = {ratio:.2} ({} 2x)",
        plan.sizes[1],
        plan.sizes[0],
        if ratio <= 2.0 { "within" } else { "NOT within" }
    );
}
