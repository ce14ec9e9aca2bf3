//! A choreography harness on the emulator: the events table, its stream, the bus with one rule and
//! one queue (+ DLQ) per handler, the customer-notifications topic with a queue subscribed to it —
//! and a pump that plays Lambda's event source mappings in-process: stream records to the
//! publisher and the projector, queue messages to each handler as SQS events, deleting what
//! succeeded and leaving what failed for the queue's redrive policy.
//!
//! Its functions are the function registry's (`functions/registry`): every queue function and both
//! stream readers, each built as its bootstrap builds it, from the SDK configuration and an
//! environment naming this saga's tables, bus, topic and poison queues. (The HTTP functions and
//! the scheduled check are not wired: the tests act as customers and couriers through the
//! aggregates.)

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use adapters::dynamo::DynamoEventStore;
use adapters::dynamo_views::DynamoOrderViews;
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use bridge::resources::{QueueSpec, Resources};
use bridge::setup;
use bridge::stack::Stack;
use bridge::template::{Environment, Resolver, Template};
use function_registry::{FUNCTIONS, Handler, Trigger, Wiring};
use lambda_glue::consumer::{EventHandler, handle_queue_batch};
use serde_json::Value;
use stream_pipeline::{Deadline, StreamEvent, StreamHandler};

use crate::streams::lambda_event;
use crate::{Emulator, EventStoreFixture};

/// One handler's queue.
#[derive(Debug, Clone)]
pub struct HandlerQueue {
    /// The queue its rule fills.
    pub queue_url: String,
    /// Its dead-letter queue.
    pub dlq_url: String,
    /// Receives after which a message goes to the DLQ (the template's redrive policy).
    pub max_receive_count: u64,
}

/// The wired-up system on the emulator.
pub struct Saga {
    /// The emulator.
    pub emulator: Emulator,
    /// The events and idempotency tables.
    pub events: EventStoreFixture,
    /// The order views.
    pub views: DynamoOrderViews,
    /// The bus.
    pub bus_name: String,
    /// The customer-notifications topic.
    pub topic_arn: String,
    /// The queue subscribed to the topic (raw delivery off: SNS envelopes).
    pub notifications_url: String,
    /// Each handler's queues, by handler name.
    pub queues: BTreeMap<String, HandlerQueue>,
    /// The stream readers' poison queues (publisher's, projector's): a saga stores no poison.
    pub poison_urls: Vec<String>,
    handlers: BTreeMap<String, Arc<dyn EventHandler>>,
    readers: Vec<(&'static str, Arc<dyn StreamHandler>)>,
    shard_iterators: HashMap<String, Option<String>>,
}

impl Saga {
    /// Creates what template.yaml describes for a stage of its own (tables, bus, rules, queues
    /// with their redrive policies, topics; not the user pools: no function here takes a token)
    /// with the local bridge's set-up code, subscribes a queue to the notifications topic, and
    /// wires every queue function and both stream readers of the registry to them, each with the
    /// environment the template gives it.
    pub async fn new(emulator: Emulator, test: &str) -> Self {
        let stage = stage_name();
        let region = emulator
            .config
            .region()
            .map_or_else(|| "us-east-1".to_owned(), ToString::to_string);
        let mut environment = Environment::local(&stage, &region, &emulator.endpoint);
        environment.account = emulator.kind.account().to_owned();
        let template = Template::builtin().expect("template.yaml parses");
        let resolver = Resolver::new(&template, environment);
        let mut resources = Resources::from_template(&resolver).expect("template.yaml's resources");
        resources.user_pools.clear();
        let report = setup::create(&emulator.config, &resources, NOTIFICATIONS_TOPIC)
            .await
            .unwrap_or_else(|e| panic!("{test}: creating stage {stage}'s resources: {e:#}"));
        let stack = Stack::from_template(&resolver).expect("template.yaml's functions");
        let table = |logical_id: &str| {
            resources
                .table(logical_id)
                .unwrap_or_else(|| panic!("template.yaml has no {logical_id}"))
                .name
                .clone()
        };
        let (events_table, idempotency_table) = (table("EventsTable"), table("IdempotencyTable"));
        let client = emulator.dynamodb();
        let stream_arn = client
            .describe_table()
            .table_name(&events_table)
            .send()
            .await
            .expect("describe_table")
            .table
            .and_then(|t| t.latest_stream_arn)
            .expect("the events table has a stream");
        let events = EventStoreFixture {
            store: DynamoEventStore::new(client.clone(), &events_table, &idempotency_table),
            client: client.clone(),
            events_table,
            idempotency_table,
            stream_arn,
        };
        let views = DynamoOrderViews::new(client, table("ViewsTable"));
        let variable = |name: &str| {
            resources
                .environment
                .get(name)
                .unwrap_or_else(|| panic!("no function of template.yaml reads {name}"))
                .clone()
        };
        let poison_urls = vec![
            variable("PUBLISHER_POISON_QUEUE_URL"),
            variable("PROJECTOR_POISON_QUEUE_URL"),
        ];
        let mut saga = Self {
            bus_name: variable("EVENT_BUS_NAME"),
            topic_arn: variable("TOPIC_ARN"),
            notifications_url: report.inbox_url.expect("the notifications topic's inbox"),
            emulator,
            events,
            views,
            queues: BTreeMap::new(),
            poison_urls,
            handlers: BTreeMap::new(),
            readers: Vec::new(),
            shard_iterators: HashMap::new(),
        };
        let lookup = |name: &str| resources.environment.get(name).cloned();
        let event_driven = FUNCTIONS
            .iter()
            .filter(|f| matches!(f.trigger, Trigger::Queue { .. } | Trigger::EventsStream));
        for function in event_driven {
            let handler = function
                .handler(Wiring {
                    aws: &saga.emulator.config,
                    lookup: &lookup,
                })
                .unwrap_or_else(|e| panic!("{}: {e}", function.name));
            match handler {
                Handler::Queue(handler) => {
                    let mapping = stack
                        .queues
                        .iter()
                        .find(|m| m.function.handler == function.name)
                        .unwrap_or_else(|| {
                            panic!("template.yaml maps no queue to {}", function.name)
                        });
                    let queue = resources
                        .queues
                        .iter()
                        .find(|q| q.logical_id == mapping.queue.logical_id)
                        .expect("the mapped queue is a resource");
                    saga.handler(function.name, queue, handler).await;
                }
                Handler::Stream(reader) => saga.readers.push((function.name, reader)),
                _ => panic!(
                    "{}: a handler not of its {:?}",
                    function.name, function.trigger
                ),
            }
        }
        assert_eq!(saga.readers.len(), 2, "the publisher and the projector");
        saga
    }

    /// Adds a handler fed by its queue (the template's, filled by the template's rule).
    async fn handler(&mut self, name: &str, queue: &QueueSpec, handler: Arc<dyn EventHandler>) {
        let sqs = self.emulator.sqs();
        let url_of = |queue_name: String| {
            let sqs = sqs.clone();
            async move {
                sqs.get_queue_url()
                    .queue_name(&queue_name)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("get_queue_url {queue_name}: {e}"))
                    .queue_url
                    .expect("a queue URL")
            }
        };
        let redrive: Value = serde_json::from_str(
            queue
                .attributes
                .get("RedrivePolicy")
                .unwrap_or_else(|| panic!("{}: no redrive policy in template.yaml", queue.name)),
        )
        .expect("a redrive policy is JSON");
        let dlq_name = redrive["deadLetterTargetArn"]
            .as_str()
            .and_then(|arn| arn.rsplit(':').next())
            .expect("a dead-letter target ARN")
            .to_owned();
        let max_receive_count = redrive["maxReceiveCount"]
            .as_u64()
            .or_else(|| redrive["maxReceiveCount"].as_str()?.parse().ok())
            .expect("a maxReceiveCount");
        let queue_url = url_of(queue.name.clone()).await;
        let dlq_url = url_of(dlq_name).await;
        self.queues.insert(
            name.to_owned(),
            HandlerQueue {
                queue_url,
                dlq_url,
                max_receive_count,
            },
        );
        self.handlers.insert(name.to_owned(), handler);
    }

    /// Plays the event source mappings until nothing moves for a few rounds (or `max_rounds`).
    /// The pauses between the quiet rounds add up to at least the emulator's
    /// [`delivery_grace`](crate::EmulatorKind::delivery_grace), so a rule's or a topic's delivery
    /// still on its way is waited for.
    pub async fn pump(&mut self, max_rounds: u32) {
        const QUIET_ROUNDS: u32 = 3;
        let pause =
            Duration::from_millis(50).max(self.emulator.kind.delivery_grace() / (QUIET_ROUNDS - 1));
        let mut quiet = 0;
        for _ in 0..max_rounds {
            let moved = self.pump_stream().await + self.pump_queues().await;
            if moved == 0 {
                quiet += 1;
                if quiet >= QUIET_ROUNDS {
                    return;
                }
                tokio::time::sleep(pause).await;
            } else {
                quiet = 0;
            }
        }
    }

    /// Stream records since the last call → publisher and projector. Returns how many.
    async fn pump_stream(&mut self) -> usize {
        let streams = self.emulator.dynamodb_streams();
        let arn = self.events.stream_arn.clone();
        let description = streams
            .describe_stream()
            .stream_arn(&arn)
            .send()
            .await
            .expect("describe_stream")
            .stream_description
            .expect("a stream description");
        let mut records = Vec::new();
        for shard in description.shards() {
            let shard_id = shard.shard_id().expect("a shard id").to_owned();
            let iterator = match self.shard_iterators.get(&shard_id) {
                Some(iterator) => iterator.clone(),
                None => {
                    streams
                        .get_shard_iterator()
                        .stream_arn(&arn)
                        .shard_id(&shard_id)
                        .shard_iterator_type(ShardIteratorType::TrimHorizon)
                        .send()
                        .await
                        .expect("get_shard_iterator")
                        .shard_iterator
                }
            };
            let Some(iterator) = iterator else { continue };
            let page = streams
                .get_records()
                .shard_iterator(iterator)
                .send()
                .await
                .expect("get_records");
            records.extend(page.records().iter().cloned());
            self.shard_iterators
                .insert(shard_id, page.next_shard_iterator);
        }
        if records.is_empty() {
            return 0;
        }
        let batch: StreamEvent =
            serde_json::from_value(lambda_event(&records, &arn)).expect("a stream event");
        for (name, reader) in &self.readers {
            let response = reader.handle(&batch, Deadline::none()).await;
            assert!(
                response.batch_item_failures.is_empty(),
                "{name} failed: {response:?}"
            );
        }
        // A saga stores no poison.
        for url in &self.poison_urls {
            let poisoned = self
                .emulator
                .sqs()
                .receive_message()
                .queue_url(url)
                .send()
                .await
                .expect("receive_message");
            assert!(
                poisoned.messages().is_empty(),
                "poison set aside: {poisoned:?}"
            );
        }
        records.len()
    }

    /// One receive per handler queue → the handler; succeeded messages deleted, failed ones made
    /// visible again at once (the visibility timeout, shortened). Returns how many messages.
    async fn pump_queues(&self) -> usize {
        let sqs = self.emulator.sqs();
        let mut moved = 0;
        for (name, queue) in &self.queues {
            let received = sqs
                .receive_message()
                .queue_url(&queue.queue_url)
                .max_number_of_messages(10)
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
                .send()
                .await
                .expect("receive_message");
            let messages = received.messages();
            if messages.is_empty() {
                continue;
            }
            moved += messages.len();
            let queue_arn = format!("arn:aws:sqs:us-east-1:123456789012:{name}");
            let event: SqsEvent = serde_json::from_value(bridge::sqs_event::lambda_event(
                messages,
                &queue_arn,
                "us-east-1",
            ))
            .expect("an SQS event");
            let response = handle_queue_batch(self.handlers[name].as_ref(), &event).await;
            let failed: Vec<&str> = response
                .batch_item_failures
                .iter()
                .map(|f| f.item_identifier.as_str())
                .collect();
            for message in messages {
                let id = message.message_id().unwrap_or_default();
                let receipt = message.receipt_handle().unwrap_or_default();
                if failed.contains(&id) {
                    sqs.change_message_visibility()
                        .queue_url(&queue.queue_url)
                        .receipt_handle(receipt)
                        .visibility_timeout(0)
                        .send()
                        .await
                        .expect("change_message_visibility");
                } else {
                    sqs.delete_message()
                        .queue_url(&queue.queue_url)
                        .receipt_handle(receipt)
                        .send()
                        .await
                        .expect("delete_message");
                }
            }
        }
        moved
    }

    /// Sends `body` to a handler's queue, as a rule would (e.g. to deliver a message again).
    pub async fn send_to(&self, handler: &str, body: &str) {
        self.emulator
            .sqs()
            .send_message()
            .queue_url(&self.queues[handler].queue_url)
            .message_body(body)
            .send()
            .await
            .expect("send_message");
    }

    /// Every notification that reached the topic so far: (event_type, customer_id, subject).
    pub async fn notifications(&self) -> Vec<(String, String, String)> {
        let sqs = self.emulator.sqs();
        let mut seen = Vec::new();
        loop {
            let received = sqs
                .receive_message()
                .queue_url(&self.notifications_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive_message");
            if received.messages().is_empty() {
                return seen;
            }
            for message in received.messages() {
                let envelope: Value =
                    serde_json::from_str(message.body().unwrap_or_default()).expect("SNS JSON");
                let attribute = |name: &str| {
                    envelope["MessageAttributes"][name]["Value"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                };
                seen.push((
                    attribute("event_type"),
                    attribute("customer_id"),
                    envelope["Subject"].as_str().unwrap_or_default().to_owned(),
                ));
                sqs.delete_message()
                    .queue_url(&self.notifications_url)
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("delete_message");
            }
        }
    }

    /// The bodies waiting in a handler's DLQ.
    pub async fn dead_letters(&self, handler: &str) -> Vec<String> {
        let received = self
            .emulator
            .sqs()
            .receive_message()
            .queue_url(&self.queues[handler].dlq_url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive_message");
        received
            .messages()
            .iter()
            .map(|m| m.body().unwrap_or_default().to_owned())
            .collect()
    }
}

/// The topic (logical id) whose messages the saga reads back.
const NOTIFICATIONS_TOPIC: &str = "CustomerNotificationsTopic";

/// A stage of the saga's own (template names are `orderflow-<stage>-…`; the longest, a rule's,
/// leaves 15 characters of EventBridge's 64 for the stage).
fn stage_name() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = chrono::Utc::now().timestamp_subsec_nanos() % 1_000;
    format!("s{}x{n}n{nanos}", std::process::id() % 100_000)
}
