//! The command path without I/O: what `POST /orders` costs in CPU before the DynamoDB call.
//! decide (validation + total) → evolve → envelope stamping → serialisation to the DynamoDB item
//! (and to JSON, the EventBridge detail).
//!
//! Run: `cargo bench -p adapters --bench command_path`. Figures: BENCHMARKS.md.
#![allow(missing_docs)]

use std::hint::black_box;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use domain::Aggregate;
use domain::address::{Address, UncheckedAddress};
use domain::envelope::{Actor, CorrelationId, EventContext, StoredEvent};
use domain::ids::{CustomerId, OrderId, Sku, StreamId};
use domain::money::Currency;
use domain::order::{LineItem, Order, OrderCommand, PlaceOrder};

type Item = std::collections::HashMap<String, AttributeValue>;

fn place_order(lines: u32) -> Result<PlaceOrder, Box<dyn std::error::Error>> {
    let items = (1..=lines)
        .map(|n| {
            Ok(LineItem {
                sku: Sku::parse(format!("SKU-{n:04}"))?,
                quantity: n.try_into()?,
                unit_price: (999 + u64::from(n)).try_into()?,
            })
        })
        .collect::<Result<_, Box<dyn std::error::Error>>>()?;
    Ok(PlaceOrder {
        order_id: OrderId::parse("018f1c2e-7b3a-7000-8000-000000000001")?,
        customer_id: CustomerId::parse("cust-42")?,
        items,
        currency: Currency::EUR,
        delivery_address: Address::parse(UncheckedAddress {
            recipient: "Bench Recipient".into(),
            line1: "1 Bench Street".into(),
            line2: None,
            city: "Benchville".into(),
            postal_code: "10115".into(),
            country: "DE".into(),
        })?,
    })
}

fn context() -> Result<EventContext, Box<dyn std::error::Error>> {
    Ok(EventContext {
        correlation_id: CorrelationId::parse("req-bench")?,
        causation_id: "req-bench".into(),
        actor: Actor::customer(&CustomerId::parse("cust-42")?),
        occurred_at: Utc
            .with_ymd_and_hms(2026, 11, 28, 12, 0, 0)
            .single()
            .ok_or("bad instant")?,
    })
}

/// One PlaceOrder through the whole in-process command path; returns the item and JSON size.
fn command_path(
    command: &OrderCommand,
    stream: &StreamId,
    context: &EventContext,
) -> Result<(Item, usize), Box<dyn std::error::Error>> {
    let state = Order::default();
    let events = state.decide(command)?;
    let state = events.iter().fold(Order::default(), Order::evolve);
    black_box(state);
    let stamped = StoredEvent::stamp(stream, 0, &events, context);
    let item: Item = serde_dynamo::to_item(&stamped[0])?;
    let detail = serde_json::to_vec(&stamped[0])?;
    Ok((item, detail.len()))
}

fn bench(c: &mut Criterion) {
    let context = match context() {
        Ok(context) => context,
        Err(error) => panic!("bench setup: {error}"),
    };
    for lines in [1u32, 10, 50] {
        let order = match place_order(lines) {
            Ok(order) => order,
            Err(error) => panic!("bench setup: {error}"),
        };
        let stream = StreamId::order(&order.order_id);
        let command = OrderCommand::Place(order);
        if let Err(error) = command_path(&command, &stream, &context) {
            panic!("the command path failed: {error}");
        }
        c.bench_function(&format!("place_order/{lines}_lines"), |b| {
            b.iter(|| command_path(black_box(&command), &stream, &context))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
