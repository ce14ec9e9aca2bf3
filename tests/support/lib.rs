//! Support for orderflow's integration suites: the connection to the AWS API emulator and the
//! resources each test owns.
//!
//! The emulator is started by `scripts/test.sh`: moto server (with DynamoDB Local serving DynamoDB
//! and its streams, through `AWS_ENDPOINT_URL_DYNAMODB` and `AWS_ENDPOINT_URL_DYNAMODB_STREAMS`)
//! for every suite, then LocalStack on the host (through `scripts/with-localstack.sh`, with
//! `ORDERFLOW_EMULATOR=localstack`) for the emulator suite again. It is reached through the standard `AWS_ENDPOINT_URL`; [`emulator`] checks
//! that the server answering there is the one `ORDERFLOW_EMULATOR` names. A test run without a
//! reachable emulator fails with the reason: nothing here ever skips.
//!
//! Isolation: every test creates its own tables, buses and queues with [`unique_name`], so tests run
//! in parallel against one emulator.
// Test support: a panic with a message is how a fixture reports a broken precondition.
#![allow(clippy::expect_used)]

pub mod in_process;
pub mod saga;
pub mod scenarios;
pub mod stack;
pub mod stage;
pub mod streams;
#[cfg(test)]
mod template;
pub mod tokens;

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use adapters::dynamo::DynamoEventStore;
use adapters::dynamo_views::DynamoOrderViews;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_eventbridge::types::{DeadLetterConfig, RetryPolicy, RuleState, Target};
use aws_sdk_sqs::types::QueueAttributeName;
use chrono::{TimeZone, Utc};
use domain::address::{Address, UncheckedAddress};
use domain::envelope::{Actor, CorrelationId, EventContext};
use domain::ids::{CustomerId, OrderId, Sku};
use domain::money::Currency;
use domain::order::{LineItem, OrderCommand, PlaceOrder};
use serde_json::{Value, json};

/// The emulator the suite talks to, with SDK configuration pointing at it.
#[derive(Debug, Clone)]
pub struct Emulator {
    /// Shared SDK configuration (endpoint, region, dummy credentials).
    pub config: SdkConfig,
    /// The endpoint, for messages.
    pub endpoint: String,
    /// Which emulator it is (`ORDERFLOW_EMULATOR`), checked against what answers at the endpoint.
    pub kind: EmulatorKind,
}

/// The AWS API emulators the suite runs against; `ORDERFLOW_EMULATOR` names the one at
/// `AWS_ENDPOINT_URL` (`moto` when unset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmulatorKind {
    /// moto server (`scripts/test.sh`).
    Moto,
    /// LocalStack on the host (`scripts/with-localstack.sh`).
    LocalStack,
}

impl EmulatorKind {
    /// The emulator `ORDERFLOW_EMULATOR` names; panics on a value it does not know.
    pub fn from_env() -> Self {
        match std::env::var("ORDERFLOW_EMULATOR").as_deref() {
            Err(_) | Ok("" | "moto") => Self::Moto,
            Ok("localstack") => Self::LocalStack,
            Ok(other) => panic!("ORDERFLOW_EMULATOR={other}: expected `moto` or `localstack`"),
        }
    }

    /// Its name, as `ORDERFLOW_EMULATOR` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Moto => "moto",
            Self::LocalStack => "localstack",
        }
    }

    /// The account its resources live in with the suites' credentials (`test`): moto's default,
    /// LocalStack's.
    pub fn account(self) -> &'static str {
        match self {
            Self::Moto => "123456789012",
            Self::LocalStack => "000000000000",
        }
    }

    /// How to run the suites against it.
    fn how_to_run(self) -> &'static str {
        match self {
            Self::Moto => {
                "`scripts/test.sh`, which installs and starts DynamoDB Local and moto on 127.0.0.1"
            }
            Self::LocalStack => {
                "`scripts/with-localstack.sh cargo test --workspace --test emulator`, \
                 which installs and starts LocalStack on 127.0.0.1"
            }
        }
    }

    /// How long a delivery the emulator makes on its own (an EventBridge rule's target, an SNS
    /// subscription) may take to reach its queue after the call that caused it has returned.
    /// moto delivers inside the `PutEvents` / `Publish` call; LocalStack delivers from background
    /// threads (AWS does too), seen taking 10–130 ms here: a harness that decides "nothing more is
    /// coming" must wait at least this long.
    pub fn delivery_grace(self) -> Duration {
        match self {
            Self::Moto => Duration::ZERO,
            Self::LocalStack => Duration::from_secs(1),
        }
    }

    /// A path only this emulator serves (with a 200), to tell which one answers.
    fn probe_path(self) -> &'static str {
        match self {
            Self::Moto => "/moto-api/",
            Self::LocalStack => "/_localstack/health",
        }
    }
}

/// Connects to the emulator named by `AWS_ENDPOINT_URL`, or panics saying how to start one.
/// Panics too when the emulator answering there is not the one `ORDERFLOW_EMULATOR` names, so a
/// run meant for LocalStack cannot pass against moto (or the other way round).
pub async fn emulator() -> Emulator {
    let kind = EmulatorKind::from_env();
    let endpoint = match std::env::var("AWS_ENDPOINT_URL") {
        Ok(endpoint) if !endpoint.is_empty() => endpoint,
        _ => panic!(
            "AWS_ENDPOINT_URL is not set: the integration suites need an AWS API emulator. \
             Run them with {}.",
            kind.how_to_run()
        ),
    };
    assert_reachable(&endpoint, kind);
    assert_identity(&endpoint, kind);
    assert_dynamodb_endpoint(kind);
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(
            std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
        ))
        .load()
        .await;
    Emulator {
        config,
        endpoint,
        kind,
    }
}

/// Asserts (once per test process) that the server at `endpoint` is `kind`: it answers `kind`'s
/// own probe path with a 200.
fn assert_identity(endpoint: &str, kind: EmulatorKind) {
    static CHECKED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let checked = CHECKED.get_or_init(|| {
        let status = http_get_status(endpoint, kind.probe_path())?;
        if status == 200 {
            Ok(())
        } else {
            Err(format!(
                "ORDERFLOW_EMULATOR={} but the server at {endpoint} answers {} with {status}: \
                 it is not {}",
                kind.name(),
                kind.probe_path(),
                kind.name()
            ))
        }
    });
    if let Err(reason) = checked {
        panic!("{reason}");
    }
}

/// The status code of a plain HTTP/1.0 GET of `path` on `endpoint` (`http://host:port`).
fn http_get_status(endpoint: &str, path: &str) -> Result<u16, String> {
    use std::io::{Read, Write};
    let authority = authority(endpoint);
    let address = authority
        .to_socket_addrs()
        .ok()
        .and_then(|mut addresses| addresses.next())
        .ok_or_else(|| format!("AWS_ENDPOINT_URL={endpoint} is not host:port"))?;
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))
        .map_err(|e| format!("connecting to {endpoint}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("asking {endpoint}{path}: {e}"))?;
    let mut head = [0_u8; 12];
    stream
        .read_exact(&mut head)
        .map_err(|e| format!("reading the answer of {endpoint}{path}: {e}"))?;
    // "HTTP/1.x NNN"
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("{endpoint}{path} did not answer HTTP: {head:?}"))
}

fn authority(endpoint: &str) -> &str {
    endpoint
        .split("://")
        .nth(1)
        .unwrap_or(endpoint)
        .trim_end_matches('/')
}

/// The variables through which DynamoDB Local serves DynamoDB and its streams beside moto.
const DYNAMODB_ENDPOINT_VARIABLES: [&str; 2] = [
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
];

/// Beside moto, DynamoDB is DynamoDB Local (moto's own DynamoDB detaches its streams after a
/// cancelled transaction; docs/local-emulators.md): asserts that both per-service endpoints are
/// set and answer. LocalStack serves DynamoDB itself, so there they must not be set.
fn assert_dynamodb_endpoint(kind: EmulatorKind) {
    for name in DYNAMODB_ENDPOINT_VARIABLES {
        let value = std::env::var(name).ok().filter(|v| !v.is_empty());
        match (kind, value) {
            (EmulatorKind::Moto, None) => panic!(
                "{name} is not set: beside moto, DynamoDB is served by DynamoDB Local. Run the \
                 suites with {}, which starts both",
                kind.how_to_run()
            ),
            (EmulatorKind::Moto, Some(endpoint)) => assert_reachable(&endpoint, kind),
            (EmulatorKind::LocalStack, Some(endpoint)) => {
                panic!("{name}={endpoint} is set, but LocalStack serves DynamoDB itself: unset it")
            }
            (EmulatorKind::LocalStack, None) => {}
        }
    }
}

fn assert_reachable(endpoint: &str, kind: EmulatorKind) {
    let addresses: Vec<_> = authority(endpoint)
        .to_socket_addrs()
        .unwrap_or_else(|e| panic!("AWS_ENDPOINT_URL={endpoint} is not host:port: {e}"))
        .collect();
    let reachable = addresses
        .iter()
        .any(|address| TcpStream::connect_timeout(address, Duration::from_secs(2)).is_ok());
    assert!(
        reachable,
        "the AWS API emulator ({}) at {endpoint} does not accept connections; start it with \
         {} (or check its log under target/)",
        kind.name(),
        kind.how_to_run()
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

    /// An EventBridge client on the emulator.
    pub fn eventbridge(&self) -> aws_sdk_eventbridge::Client {
        aws_sdk_eventbridge::Client::new(&self.config)
    }

    /// An SQS client on the emulator.
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.config)
    }

    /// An SNS client on the emulator.
    pub fn sns(&self) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::new(&self.config)
    }

    /// The customer-notifications topic of a stage of the test's own (template.yaml, created by
    /// the bridge's set-up code) and the queue the set-up subscribes to it with raw message
    /// delivery off, so each message body is the SNS JSON envelope: `Type`, `MessageId`,
    /// `TopicArn`, `Subject`, `Message`, `Timestamp`, `MessageAttributes`
    /// (`{"<name>": {"Type": "String", "Value": …}}`) and the signature fields.
    pub async fn topic_to_queue(&self, test: &str) -> TopicFixture {
        let stage = self.stage(test).await;
        TopicFixture {
            topic_arn: stage.variable("TOPIC_ARN"),
            queue_url: stage.inbox_url,
        }
    }

    /// Creates what docs/architecture.md, "Delivery semantics" puts between the bus and a handler:
    /// a custom bus; an SQS queue with a redrive policy to its own dead-letter queue (after
    /// [`max_receive_count`] receives, as in template.yaml); and a rule on the bus matching orderflow sources
    /// (`{"prefix": "orderflow."}`) and, unless `detail_types` is empty, only those detail types,
    /// targeting the queue (with the dead-letter queue and a retry policy on the target). Both
    /// queues get the policy AWS needs to let EventBridge send to them from this rule.
    pub async fn bus_to_queue(&self, test: &str, detail_types: &[&str]) -> BusFixture {
        let events = self.eventbridge();
        let sqs = self.sqs();
        let bus_name = unique_name(&format!("{test}-bus"));
        let rule_name = unique_name(&format!("{test}-rule"));
        let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
            panic!("{what} on {}: {e}", self.endpoint)
        };

        let bus_arn = events
            .create_event_bus()
            .name(&bus_name)
            .send()
            .await
            .unwrap_or_else(|e| fail(&format!("creating bus {bus_name}"), &DisplayError(&e)))
            .event_bus_arn
            .expect("a created bus has an ARN");

        let dlq_url = self.create_queue(&format!("{test}-dlq"), None).await;
        let dlq_arn = self.queue_arn(&dlq_url).await;
        let redrive =
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count()});
        let queue_url = self
            .create_queue(&format!("{test}-queue"), Some(redrive.to_string()))
            .await;
        let queue_arn = self.queue_arn(&queue_url).await;

        let mut pattern = json!({"source": [{"prefix": domain::envelope::SOURCE_PREFIX}]});
        if !detail_types.is_empty() {
            pattern["detail-type"] = json!(detail_types);
        }
        let rule_arn = events
            .put_rule()
            .name(&rule_name)
            .event_bus_name(&bus_name)
            .event_pattern(pattern.to_string())
            .state(RuleState::Enabled)
            .send()
            .await
            .unwrap_or_else(|e| fail(&format!("creating rule {rule_name}"), &DisplayError(&e)))
            .rule_arn
            .expect("a created rule has an ARN");

        for (url, arn) in [(&queue_url, &queue_arn), (&dlq_url, &dlq_arn)] {
            let policy = json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "orderflow-rule-sends",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                }],
            });
            sqs.set_queue_attributes()
                .queue_url(url)
                .attributes(QueueAttributeName::Policy, policy.to_string())
                .send()
                .await
                .unwrap_or_else(|e| {
                    fail(&format!("setting the policy of {url}"), &DisplayError(&e))
                });
        }

        let target = Target::builder()
            .id("handler-queue")
            .arn(&queue_arn)
            .dead_letter_config(DeadLetterConfig::builder().arn(&dlq_arn).build())
            .retry_policy(
                RetryPolicy::builder()
                    .maximum_retry_attempts(3)
                    .maximum_event_age_in_seconds(3_600)
                    .build(),
            )
            .build()
            .expect("a target with an id and an ARN");
        let targets = events
            .put_targets()
            .rule(&rule_name)
            .event_bus_name(&bus_name)
            .targets(target)
            .send()
            .await
            .unwrap_or_else(|e| fail(&format!("targeting rule {rule_name}"), &DisplayError(&e)));
        assert_eq!(
            targets.failed_entry_count(),
            0,
            "put_targets on {rule_name}: {:?}",
            targets.failed_entries()
        );

        BusFixture {
            bus_name,
            bus_arn,
            queue_url,
            queue_arn,
            dlq_url,
            rule_name,
            rule_arn,
        }
    }

    async fn create_queue(&self, prefix: &str, redrive_policy: Option<String>) -> String {
        // SQS queue names: at most 80 characters.
        let mut name = unique_name(prefix);
        name.truncate(80);
        self.sqs()
            .create_queue()
            .queue_name(&name)
            .set_attributes(redrive_policy.map(|policy| {
                std::collections::HashMap::from([(QueueAttributeName::RedrivePolicy, policy)])
            }))
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "creating queue {name} on {}: {}",
                    self.endpoint,
                    DisplayError(&e)
                )
            })
            .queue_url
            .expect("a created queue has a URL")
    }

    /// The ARN of the queue at `queue_url`.
    pub async fn queue_arn(&self, queue_url: &str) -> String {
        self.sqs()
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap_or_else(|e| panic!("reading the ARN of {queue_url}: {}", DisplayError(&e)))
            .attributes
            .and_then(|mut attributes| attributes.remove(&QueueAttributeName::QueueArn))
            .expect("a queue has an ARN")
    }

    /// Long-polls `queue_url` until `expected` messages have arrived, deleting each, and returns
    /// their bodies parsed as JSON (for a rule's target: the EventBridge event, `detail` and all).
    /// Panics, naming what did arrive, if they have not all arrived within `timeout`, or if a body is
    /// not JSON. More messages than `expected` are returned too if they come in the same receive.
    pub async fn receive_all(
        &self,
        queue_url: &str,
        expected: usize,
        timeout: Duration,
    ) -> Vec<Value> {
        let sqs = self.sqs();
        let deadline = Instant::now() + timeout;
        let mut bodies: Vec<Value> = Vec::new();
        while bodies.len() < expected {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let types: Vec<&Value> = bodies.iter().map(|b| &b["detail-type"]).collect();
                panic!(
                    "{queue_url}: {} of {expected} messages arrived within {timeout:?}; \
                     detail types seen: {types:?}",
                    bodies.len()
                );
            }
            let wait = i32::try_from(left.as_secs().clamp(1, 5)).unwrap_or(1);
            let received = sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(wait)
                .send()
                .await
                .unwrap_or_else(|e| panic!("receiving from {queue_url}: {}", DisplayError(&e)));
            for message in received.messages() {
                let body = message.body().unwrap_or_default();
                let parsed: Value = serde_json::from_str(body).unwrap_or_else(|e| {
                    panic!("{queue_url}: a message body is not JSON ({e}): {body}")
                });
                bodies.push(parsed);
                if let Some(handle) = message.receipt_handle() {
                    sqs.delete_message()
                        .queue_url(queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .unwrap_or_else(|e| {
                            panic!("deleting from {queue_url}: {}", DisplayError(&e))
                        });
                }
            }
        }
        bodies
    }

    /// Asserts that no message arrives on `queue_url` within `wait`.
    pub async fn assert_no_message(&self, queue_url: &str, wait: Duration) {
        let received = self
            .sqs()
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(i32::try_from(wait.as_secs().max(1)).unwrap_or(1))
            .send()
            .await
            .unwrap_or_else(|e| panic!("receiving from {queue_url}: {}", DisplayError(&e)));
        let bodies: Vec<&str> = received
            .messages()
            .iter()
            .map(|m| m.body().unwrap_or_default())
            .collect();
        assert!(
            bodies.is_empty(),
            "{queue_url} should be empty, got {bodies:?}"
        );
    }

    /// Creates template.yaml's table `logical_id` named `name` (the bridge's code: the tables are
    /// described once, in the template); its stream's ARN when it has one.
    pub async fn template_table(&self, logical_id: &str, name: &str) -> Option<String> {
        bridge::setup::create_template_table(&self.dynamodb(), logical_id, name)
            .await
            .unwrap_or_else(|e| panic!("creating {name} on {}: {e:#}", self.endpoint))
    }

    /// Creates a fresh events table and idempotency table and a store on them.
    pub async fn event_store(&self, test: &str) -> EventStoreFixture {
        let events_table = unique_name(&format!("{test}-events"));
        let idempotency_table = unique_name(&format!("{test}-idem"));
        self.template_table("EventsTable", &events_table)
            .await
            .expect("the events table has a stream");
        self.template_table("IdempotencyTable", &idempotency_table)
            .await;
        self.event_store_on(&events_table, &idempotency_table).await
    }

    /// A store on existing events and idempotency tables (a stage's).
    pub async fn event_store_on(
        &self,
        events_table: &str,
        idempotency_table: &str,
    ) -> EventStoreFixture {
        let client = self.dynamodb();
        let (events_table, idempotency_table) =
            (events_table.to_owned(), idempotency_table.to_owned());
        let stream_arn = client
            .describe_table()
            .table_name(&events_table)
            .send()
            .await
            .unwrap_or_else(|e| panic!("describing {events_table}: {}", DisplayError(&e)))
            .table
            .and_then(|t| t.latest_stream_arn)
            .expect("the events table has a stream");
        EventStoreFixture {
            store: DynamoEventStore::new(client.clone(), &events_table, &idempotency_table),
            client,
            events_table,
            idempotency_table,
            stream_arn,
        }
    }

    /// Creates a fresh catalogue table, loaded with the repository's sample catalogue.
    pub async fn catalogue(&self, test: &str) -> adapters::dynamo_catalogue::DynamoCatalogue {
        use domain::ports::Catalogue;
        let client = self.dynamodb();
        let table = unique_name(&format!("{test}-catalogue"));
        self.template_table("CatalogueTable", &table).await;
        let catalogue = adapters::dynamo_catalogue::DynamoCatalogue::new(client, &table);
        let entries = domain::catalogue::parse_catalogue(SAMPLE_CATALOGUE)
            .expect("the sample catalogue parses");
        catalogue
            .put_entries(&entries)
            .await
            .unwrap_or_else(|e| panic!("loading the sample catalogue into {table}: {e}"));
        catalogue
    }

    /// Creates a fresh order views table (with its `by-customer` index) and views on it.
    pub async fn order_views(&self, test: &str) -> OrderViewsFixture {
        let client = self.dynamodb();
        let table = unique_name(&format!("{test}-views"));
        self.template_table("ViewsTable", &table).await;
        OrderViewsFixture {
            views: DynamoOrderViews::new(client.clone(), &table),
            client,
            table,
        }
    }
}

/// The sample catalogue the repository ships.
pub const SAMPLE_CATALOGUE: &str = include_str!("../../catalogue/sample.json");

/// How many receives before SQS moves a message to the dead-letter queue: the handler queues'
/// redrive policy in template.yaml (all of them say the same; the template test checks it).
pub fn max_receive_count() -> u64 {
    static COUNT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *COUNT.get_or_init(|| {
        let resources = bridge::resources::Resources::builtin(
            bridge::template::Environment::local("local", "us-east-1", "http://127.0.0.1"),
        )
        .expect("template.yaml's resources");
        let counts: std::collections::BTreeSet<u64> = resources
            .queues
            .iter()
            .filter_map(stage::redrive_of)
            .map(|(_, count)| count)
            .collect();
        assert_eq!(
            counts.len(),
            1,
            "one maxReceiveCount in template.yaml: {counts:?}"
        );
        counts.into_iter().next().unwrap_or_default()
    })
}

/// A bus whose rule routes orderflow events to a queue with a dead-letter queue.
#[derive(Debug, Clone)]
pub struct BusFixture {
    /// The custom bus.
    pub bus_name: String,
    /// Its ARN.
    pub bus_arn: String,
    /// The rule's target queue.
    pub queue_url: String,
    /// Its ARN.
    pub queue_arn: String,
    /// The dead-letter queue of the target queue (redrive) and of the rule target.
    pub dlq_url: String,
    /// The rule on the bus.
    pub rule_name: String,
    /// Its ARN.
    pub rule_arn: String,
}

/// A topic with an SQS queue subscribed to it (raw message delivery off).
#[derive(Debug, Clone)]
pub struct TopicFixture {
    /// The topic.
    pub topic_arn: String,
    /// The subscribed queue: its bodies are SNS envelopes.
    pub queue_url: String,
}

/// Shows an SDK error with its causes.
pub(crate) struct DisplayError<'a, E>(&'a E);

impl<E: std::error::Error> std::fmt::Display for DisplayError<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
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

impl EventStoreFixture {
    /// Stores, bypassing the store, an event of `event_type` no reader knows (a poison record)
    /// at version 1 of `stream_id`.
    pub async fn put_unreadable_event(&self, stream_id: &str, event_type: &str) {
        use aws_sdk_dynamodb::types::AttributeValue;
        let mut item = std::collections::HashMap::new();
        for (name, value) in [
            ("stream_id", stream_id),
            ("event_id", "poison-event-1"),
            ("event_type", event_type),
            ("occurred_at", "2026-11-28T10:00:00Z"),
            ("correlation_id", "c-poison"),
            ("causation_id", "c-poison"),
            ("actor", "system/test"),
        ] {
            item.insert(name.to_owned(), AttributeValue::S(value.to_owned()));
        }
        item.insert("version".into(), AttributeValue::N("1".into()));
        item.insert("schema_version".into(), AttributeValue::N("1".into()));
        // Not an empty map: LocalStack's stream images write an empty map as `{}` instead of
        // `{"M": {}}`, which the SDK cannot read. What makes the record poison is its type.
        item.insert(
            "data".into(),
            AttributeValue::M(std::collections::HashMap::from([(
                "destination".to_owned(),
                AttributeValue::S("somewhere no reader knows".to_owned()),
            )])),
        );
        self.client
            .put_item()
            .table_name(&self.events_table)
            .set_item(Some(item))
            .send()
            .await
            .expect("put_item");
    }
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

/// Places an order for `customer` (one line) in `store`: one event; its order id.
pub async fn place_one(store: &DynamoEventStore, customer: &str) -> OrderId {
    let order = place_order(customer, 1);
    domain::repository::execute::<domain::order::Order>(
        store,
        &domain::ids::StreamId::order(&order.order_id),
        &place(&order),
        &customer_request(customer),
        None,
        1,
    )
    .await
    .expect("placing");
    order.order_id
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
