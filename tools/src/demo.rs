//! `orderflow demo`: places a few orders (one of them cancelled) through the event store and
//! prints each order's timeline, as a person reads it.

use adapters::clock::SystemClock;
use adapters::dynamo::DynamoEventStore;
use anyhow::{Context, Result};
use domain::address::{Address, UncheckedAddress};
use domain::envelope::{Actor, CorrelationId, EventContext, StoredEvent};
use domain::events::DomainEvent;
use domain::ids::{CustomerId, OrderId, Sku, StreamId};
use domain::money::{Currency, Money};
use domain::order::{CancellationReason, LineItem, Order, OrderCommand, PlaceOrder};
use domain::ports::{Clock, EventStore};
use domain::repository;

fn demo_order(customer: &CustomerId, lines: &[(&str, u32, u64)]) -> Result<PlaceOrder> {
    let items = lines
        .iter()
        .map(|&(sku, quantity, cents)| {
            Ok(LineItem {
                sku: Sku::parse(sku)?,
                quantity: quantity.try_into()?,
                unit_price: cents.try_into()?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(PlaceOrder {
        order_id: OrderId::generate(),
        customer_id: customer.clone(),
        items,
        currency: Currency::EUR,
        delivery_address: Address::parse(UncheckedAddress {
            recipient: "Demo Customer".into(),
            line1: "1 Demo Street".into(),
            line2: None,
            city: "Berlin".into(),
            postal_code: "10115".into(),
            country: "DE".into(),
        })?,
    })
}

/// Places the demo orders and prints their timelines.
pub async fn demo(store: &DynamoEventStore) -> Result<()> {
    let customer = CustomerId::parse("demo-customer")?;
    let orders = [
        (
            demo_order(
                &customer,
                &[("TEA-GREEN-100G", 2, 1299), ("MUG-STONE", 1, 1899)],
            )?,
            false,
        ),
        (demo_order(&customer, &[("KETTLE-1L", 1, 3450)])?, true),
    ];
    for (order, cancel) in orders {
        let stream = StreamId::order(&order.order_id);
        let correlation_id = CorrelationId::generate();
        let context = EventContext {
            causation_id: correlation_id.as_str().to_owned(),
            correlation_id,
            actor: Actor::customer(&customer),
            occurred_at: SystemClock.now(),
        };
        repository::execute::<Order>(
            store,
            &stream,
            &OrderCommand::Place(order),
            &context,
            None,
            3,
        )
        .await
        .context("placing a demo order")?;
        if cancel {
            let context = EventContext {
                occurred_at: SystemClock.now(),
                ..context
            };
            let command = OrderCommand::Cancel {
                reason: CancellationReason::CustomerRequest,
            };
            repository::execute::<Order>(store, &stream, &command, &context, None, 3)
                .await
                .context("cancelling a demo order")?;
        }
        print_timeline(&store.load(&stream).await?);
    }
    Ok(())
}

/// What a person reads: one line per event.
#[allow(clippy::print_stdout)]
fn print_timeline(events: &[StoredEvent]) {
    let Some(first) = events.first() else {
        return;
    };
    println!(
        "{}  (correlation {})",
        first.stream_id, first.correlation_id
    );
    for event in events {
        let detail = match event.decode_any() {
            Ok(DomainEvent::Order(order)) => describe(&order),
            Ok(other) => format!("{other:?}"),
            Err(error) => format!("(unreadable: {error})"),
        };
        println!(
            "  v{:<3} {}  {:<16} by {:<24} {}",
            event.version,
            event.occurred_at.format("%Y-%m-%d %H:%M:%S%.3f"),
            event.event_type,
            event.actor.as_str(),
            detail
        );
    }
}

fn describe(event: &domain::order::OrderEvent) -> String {
    use domain::order::OrderEvent;
    match event {
        OrderEvent::OrderPlaced(placed) => format!(
            "{} line(s), total {}",
            placed.items.len(),
            Money {
                amount: placed.total,
                currency: placed.currency
            }
        ),
        OrderEvent::OrderShipped(shipped) => format!("delivery {}", shipped.delivery_id),
        OrderEvent::OrderCompleted(completed) => format!("delivery {}", completed.delivery_id),
        OrderEvent::OrderCancelled(cancelled) => match &cancelled.reason {
            CancellationReason::CustomerRequest => "customer request".into(),
            CancellationReason::DeliveryFailed { detail } => format!("delivery failed: {detail}"),
        },
    }
}
