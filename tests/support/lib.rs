//! Support for orderflow's integration suites: the connection to the AWS API emulator and the
//! resources each test owns.
//!
//! The emulator is started by `scripts/test.sh` (moto server by default, LocalStack on the host with
//! `ORDERFLOW_EMULATOR=localstack`) and reached through the standard `AWS_ENDPOINT_URL`. A test run
//! without a reachable emulator fails with the reason: nothing here ever skips.
//!
//! Isolation: every test creates its own tables with [`unique_name`], so tests run in parallel
//! against one emulator.
// Test support: a panic with a message is how a fixture reports a broken precondition.
#![allow(clippy::expect_used)]

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use chrono::{TimeZone, Utc};
use shared::adapters::dynamo::{DynamoEventStore, tables};
use shared::adapters::dynamo_views::DynamoOrderViews;
use shared::address::{Address, UncheckedAddress};
use shared::domain::order::{LineItem, OrderCommand, PlaceOrder};
use shared::envelope::{Actor, CorrelationId, EventContext};
use shared::ids::{CustomerId, OrderId, Sku};
use shared::money::Currency;

/// The emulator the suite talks to, with SDK configuration pointing at it.
#[derive(Debug, Clone)]
pub struct Emulator {
    /// Shared SDK configuration (endpoint, region, dummy credentials).
    pub config: SdkConfig,
    /// The endpoint, for messages.
    pub endpoint: String,
}

/// Connects to the emulator named by `AWS_ENDPOINT_URL`, or panics saying how to start one.
pub async fn emulator() -> Emulator {
    let endpoint = match std::env::var("AWS_ENDPOINT_URL") {
        Ok(endpoint) if !endpoint.is_empty() => endpoint,
        _ => panic!(
            "AWS_ENDPOINT_URL is not set: the integration suites need an AWS API emulator. \
             Run them with `scripts/test.sh`, which installs and starts moto on 127.0.0.1."
        ),
    };
    assert_reachable(&endpoint);
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(
            std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
        ))
        .load()
        .await;
    Emulator { config, endpoint }
}

fn assert_reachable(endpoint: &str) {
    let authority = endpoint
        .split("://")
        .nth(1)
        .unwrap_or(endpoint)
        .trim_end_matches('/');
    let addresses: Vec<_> = authority
        .to_socket_addrs()
        .unwrap_or_else(|e| panic!("AWS_ENDPOINT_URL={endpoint} is not host:port: {e}"))
        .collect();
    let reachable = addresses
        .iter()
        .any(|address| TcpStream::connect_timeout(address, Duration::from_secs(2)).is_ok());
    assert!(
        reachable,
        "the AWS API emulator at {endpoint} does not accept connections; start it with \
         `scripts/test.sh` (or check its log under target/)"
    );
}

impl Emulator {
    /// A DynamoDB client on the emulator.
    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.config)
    }

    /// A DynamoDB Streams client on the emulator.
    pub fn dynamodb_streams(&self) -> aws_sdk_dynamodbstreams::Client {
        aws_sdk_dynamodbstreams::Client::new(&self.config)
    }

    /// Creates a fresh events table and idempotency table and a store on them.
    pub async fn event_store(&self, test: &str) -> EventStoreFixture {
        let client = self.dynamodb();
        let events_table = unique_name(&format!("{test}-events"));
        let idempotency_table = unique_name(&format!("{test}-idem"));
        let stream_arn = tables::create_events_table(&client, &events_table)
            .await
            .unwrap_or_else(|e| panic!("creating {events_table} on {}: {e}", self.endpoint));
        tables::create_idempotency_table(&client, &idempotency_table)
            .await
            .unwrap_or_else(|e| panic!("creating {idempotency_table} on {}: {e}", self.endpoint));
        EventStoreFixture {
            store: DynamoEventStore::new(client.clone(), &events_table, &idempotency_table),
            client,
            events_table,
            idempotency_table,
            stream_arn,
        }
    }

    /// Creates a fresh order views table (with its `by-customer` index) and views on it.
    pub async fn order_views(&self, test: &str) -> OrderViewsFixture {
        let client = self.dynamodb();
        let table = unique_name(&format!("{test}-views"));
        tables::create_views_table(&client, &table)
            .await
            .unwrap_or_else(|e| panic!("creating {table} on {}: {e}", self.endpoint));
        OrderViewsFixture {
            views: DynamoOrderViews::new(client.clone(), &table),
            client,
            table,
        }
    }
}

/// Order views on their own table.
#[derive(Debug, Clone)]
pub struct OrderViewsFixture {
    /// The views under test.
    pub views: DynamoOrderViews,
    /// The raw client, to look at the table directly.
    pub client: aws_sdk_dynamodb::Client,
    /// The views table.
    pub table: String,
}

/// An event store on its own tables.
#[derive(Debug, Clone)]
pub struct EventStoreFixture {
    /// The store under test.
    pub store: DynamoEventStore,
    /// The raw client, to look at the tables directly.
    pub client: aws_sdk_dynamodb::Client,
    /// The events table.
    pub events_table: String,
    /// The idempotency table.
    pub idempotency_table: String,
    /// The events table's stream.
    pub stream_arn: String,
}

/// A resource name no other test (or earlier run against the same emulator) uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = Utc::now().timestamp_subsec_nanos();
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}

/// A valid order for `customer`, with `lines` line items.
pub fn place_order(customer: &str, lines: u32) -> PlaceOrder {
    let items = (1..=lines)
        .map(|n| LineItem {
            sku: Sku::parse(format!("SKU-{n}")).expect("valid sku"),
            quantity: n.try_into().expect("valid quantity"),
            unit_price: (1_000 + u64::from(n)).try_into().expect("valid price"),
        })
        .collect();
    PlaceOrder {
        order_id: OrderId::generate(),
        customer_id: CustomerId::parse(customer).expect("valid customer id"),
        items,
        currency: Currency::EUR,
        delivery_address: Address::parse(UncheckedAddress {
            recipient: "Test Recipient".into(),
            line1: "1 Test Street".into(),
            line2: None,
            city: "Testville".into(),
            postal_code: "10115".into(),
            country: "DE".into(),
        })
        .expect("valid address"),
    }
}

/// The command placing `order`.
pub fn place(order: &PlaceOrder) -> OrderCommand {
    OrderCommand::Place(order.clone())
}

/// The context of a customer request with a fresh correlation id.
pub fn customer_request(customer: &str) -> EventContext {
    let correlation_id = CorrelationId::generate();
    EventContext {
        causation_id: correlation_id.as_str().to_owned(),
        correlation_id,
        actor: Actor::customer(&CustomerId::parse(customer).expect("valid customer id")),
        occurred_at: Utc
            .timestamp_millis_opt(Utc::now().timestamp_millis())
            .single()
            .expect("a valid instant"),
    }
}
