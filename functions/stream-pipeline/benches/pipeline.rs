//! The stream readers in-process: records per second through `publish_batch` (the real
//! `EventBridgePublisher` on a mocked client that accepts every entry) and through `project_batch`
//! (in-memory event store and views), and the AWS calls each makes per record.
//!
//! Run: `cargo bench -p stream-pipeline --bench pipeline`. Figures: BENCHMARKS.md.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use adapters::eventbridge::EventBridgePublisher;
use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::config::retry::RetryConfig;
use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
use aws_sdk_eventbridge::types::PutEventsResultEntry;
use aws_smithy_mocks::{MockResponse, RuleMode, mock, mock_client};
use chrono::{TimeZone, Utc};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use domain::address::{Address, UncheckedAddress};
use domain::envelope::{Actor, CorrelationId, EventContext, StoredEvent};
use domain::ids::{CustomerId, OrderId, Sku, StreamId};
use domain::money::{Cents, Currency};
use domain::order::{CancellationReason, OrderCancelled, OrderEvent, OrderPlaced};
use domain::ports::{AppendRequest, EventStore, StoreError};
use serde_json::{Value, json};
use stream_pipeline::projector::project_batch;
use stream_pipeline::publisher::publish_batch;
use stream_pipeline::{Deadline, StreamEvent};
use testkit::memory::{InMemoryDeadLetters, InMemoryEventStore, InMemoryOrderViews};

const RECORDS: usize = 100;

/// `RECORDS` stored events: half the orders placed, then cancelled (two per order stream).
fn events() -> Vec<StoredEvent> {
    let context = EventContext {
        correlation_id: CorrelationId::parse("bench").unwrap(),
        causation_id: "bench".into(),
        actor: Actor::system("bench"),
        occurred_at: Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap(),
    };
    let address = Address::parse(UncheckedAddress {
        recipient: "Bench".into(),
        line1: "1 Bench Street".into(),
        line2: None,
        city: "Benchville".into(),
        postal_code: "10115".into(),
        country: "DE".into(),
    })
    .unwrap();
    (0..RECORDS / 2)
        .flat_map(|n| {
            let order_id = OrderId::parse(format!("bench-order-{n}")).unwrap();
            let customer_id = CustomerId::parse(format!("bench-customer-{}", n % 7)).unwrap();
            let stream = StreamId::order(&order_id);
            let placed = OrderEvent::OrderPlaced(OrderPlaced {
                order_id: order_id.clone(),
                customer_id: customer_id.clone(),
                items: vec![domain::order::LineItem {
                    sku: Sku::parse("SKU-1").unwrap(),
                    quantity: 2u32.try_into().unwrap(),
                    unit_price: 1299u64.try_into().unwrap(),
                }],
                total: Cents::new(2598),
                currency: Currency::EUR,
                delivery_address: address.clone(),
            });
            let cancelled = OrderEvent::OrderCancelled(OrderCancelled {
                order_id,
                customer_id,
                reason: CancellationReason::CustomerRequest,
            });
            StoredEvent::stamp(&stream, 0, &[placed, cancelled], &context)
        })
        .collect()
}

/// The events as one Lambda DynamoDB stream batch.
fn batch(events: &[StoredEvent]) -> StreamEvent {
    let records: Vec<Value> = events
        .iter()
        .enumerate()
        .map(|(n, event)| {
            let image: serde_dynamo::Item = serde_dynamo::to_item(event).unwrap();
            json!({
                "eventID": format!("e{n}"),
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "eu-west-1",
                "dynamodb": {
                    "ApproximateCreationDateTime": 1_795_860_000,
                    "Keys": {"stream_id": {"S": event.stream_id.as_str()}, "version": {"N": event.version.to_string()}},
                    "NewImage": image,
                    "SequenceNumber": format!("{:030}", n + 1),
                    "SizeBytes": 512,
                    "StreamViewType": "NEW_IMAGE",
                },
                "eventSourceARN": "arn:aws:dynamodb:eu-west-1:123456789012:table/bench/stream/x",
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

/// A publisher whose mocked client accepts every entry and counts the calls.
fn publisher(calls: Arc<AtomicUsize>) -> EventBridgePublisher {
    let rule = mock!(Client::put_events).then_compute_response(move |input| {
        calls.fetch_add(1, Ordering::Relaxed);
        let accepted = (0..input.entries().len())
            .map(|n| {
                PutEventsResultEntry::builder()
                    .event_id(format!("id-{n}"))
                    .build()
            })
            .collect();
        MockResponse::Output(
            PutEventsOutput::builder()
                .failed_entry_count(0)
                .set_entries(Some(accepted))
                .build(),
        )
    });
    let client = mock_client!(
        aws_sdk_eventbridge,
        RuleMode::MatchAny,
        &[&rule],
        |config| { config.retry_config(RetryConfig::disabled()) }
    );
    EventBridgePublisher::new(client, "bench-bus")
}

/// An event store that counts loads (the projector's reads to heal gaps).
#[derive(Clone, Default)]
struct CountingStore {
    inner: InMemoryEventStore,
    loads: Arc<AtomicUsize>,
}

#[async_trait]
impl EventStore for CountingStore {
    async fn append(&self, request: AppendRequest) -> Result<(), StoreError> {
        self.inner.append(request).await
    }
    async fn load(&self, stream_id: &StreamId) -> Result<Vec<StoredEvent>, StoreError> {
        self.loads.fetch_add(1, Ordering::Relaxed);
        self.inner.load(stream_id).await
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let events = events();
    let batch = batch(&events);

    let letters = InMemoryDeadLetters::default();
    // AWS calls per record, measured once on one batch.
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = publisher(calls.clone());
    let response = runtime.block_on(publish_batch(&counted, &letters, &batch, Deadline::none()));
    assert!(response.batch_item_failures.is_empty());
    let put_events = calls.load(Ordering::Relaxed);
    let store = CountingStore::default();
    for event in &events {
        store.inner.insert_raw(event.clone());
    }
    let views = InMemoryOrderViews::default();
    let response = runtime.block_on(project_batch(
        &store,
        &views,
        &letters,
        &batch,
        Deadline::none(),
    ));
    assert!(response.batch_item_failures.is_empty());
    let (writes, loads) = (views.writes(), store.loads.load(Ordering::Relaxed));
    let replay_writes = {
        runtime.block_on(project_batch(
            &store,
            &views,
            &letters,
            &batch,
            Deadline::none(),
        ));
        views.writes() - writes
    };
    println!(
        "per {RECORDS} records: publisher {put_events} PutEvents call(s); projector {writes} view write(s), \
         {loads} event-store read(s); a replayed batch: {replay_writes} write(s)"
    );

    let mut group = c.benchmark_group("stream");
    group.throughput(Throughput::Elements(RECORDS as u64));
    let quiet = publisher(Arc::new(AtomicUsize::new(0)));
    group.bench_function("publisher/100_records", |b| {
        b.iter(|| runtime.block_on(publish_batch(&quiet, &letters, &batch, Deadline::none())))
    });
    group.bench_function("projector/100_records_new_views", |b| {
        b.iter_batched(
            InMemoryOrderViews::default,
            |views| {
                runtime.block_on(project_batch(
                    &store,
                    &views,
                    &letters,
                    &batch,
                    Deadline::none(),
                ))
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("projector/100_records_replayed", |b| {
        b.iter(|| {
            runtime.block_on(project_batch(
                &store,
                &views,
                &letters,
                &batch,
                Deadline::none(),
            ))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
