//! `orderflow` — the operator's tool. Every subcommand talks to AWS (or the emulator named by
//! `AWS_ENDPOINT_URL`) through the same adapters the functions use.
//!
//! ```text
//! orderflow create-tables          create the events, idempotency and views tables (skips existing ones)
//! orderflow demo                   place, and cancel, a few demo orders and print their timelines
//! ```
//!
//! Table names come from `EVENTS_TABLE`, `IDEMPOTENCY_TABLE` and `VIEWS_TABLE` (defaults: the
//! `dev` stage names of `template.yaml`).

use anyhow::{Context, Result, bail};
use aws_config::BehaviorVersion;
use shared::adapters::clock::SystemClock;
use shared::adapters::dynamo::{DynamoEventStore, tables};
use shared::address::{Address, UncheckedAddress};
use shared::domain::order::{CancellationReason, LineItem, Order, OrderCommand, PlaceOrder};
use shared::envelope::{Actor, CorrelationId, EventContext, StoredEvent};
use shared::events::DomainEvent;
use shared::ids::{CustomerId, OrderId, Sku, StreamId};
use shared::money::{Currency, Money};
use shared::ports::{Clock, EventStore};
use shared::repository;

const USAGE: &str = "usage: orderflow <create-tables | demo>";

struct Tables {
    events: String,
    idempotency: String,
    views: String,
}

impl Tables {
    fn from_env() -> Self {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
        Self {
            events: var("EVENTS_TABLE", "orderflow-dev-events"),
            idempotency: var("IDEMPOTENCY_TABLE", "orderflow-dev-idempotency"),
            views: var("VIEWS_TABLE", "orderflow-dev-views"),
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let command = std::env::args().nth(1).unwrap_or_default();
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let names = Tables::from_env();
    match command.as_str() {
        "create-tables" => create_tables(&client, &names).await,
        "demo" => demo(&client, &names).await,
        _ => bail!("{USAGE}"),
    }
}

async fn create_tables(client: &aws_sdk_dynamodb::Client, names: &Tables) -> Result<()> {
    let existing = client
        .list_tables()
        .send()
        .await
        .context("listing tables")?
        .table_names
        .unwrap_or_default();
    if existing.contains(&names.events) {
        eprintln!("table {} exists", names.events);
    } else {
        tables::create_events_table(client, &names.events)
            .await
            .with_context(|| format!("creating {}", names.events))?;
        eprintln!("created table {} (stream NEW_IMAGE)", names.events);
    }
    if existing.contains(&names.idempotency) {
        eprintln!("table {} exists", names.idempotency);
    } else {
        tables::create_idempotency_table(client, &names.idempotency)
            .await
            .with_context(|| format!("creating {}", names.idempotency))?;
        eprintln!("created table {} (TTL expires_at)", names.idempotency);
    }
    if existing.contains(&names.views) {
        eprintln!("table {} exists", names.views);
    } else {
        tables::create_views_table(client, &names.views)
            .await
            .with_context(|| format!("creating {}", names.views))?;
        eprintln!("created table {} (GSI by-customer)", names.views);
    }
    Ok(())
}

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

async fn demo(client: &aws_sdk_dynamodb::Client, names: &Tables) -> Result<()> {
    let store = DynamoEventStore::new(client.clone(), &names.events, &names.idempotency);
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
        let stream = StreamId::new("order", &order.order_id);
        let correlation_id = CorrelationId::generate();
        let context = EventContext {
            causation_id: correlation_id.as_str().to_owned(),
            correlation_id,
            actor: Actor::customer(&customer),
            occurred_at: SystemClock.now(),
        };
        repository::execute::<Order>(
            &store,
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
            repository::execute::<Order>(&store, &stream, &command, &context, None, 3)
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

fn describe(event: &shared::domain::order::OrderEvent) -> String {
    use shared::domain::order::OrderEvent;
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
