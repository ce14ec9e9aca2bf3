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

use adapters::dynamo_views::DynamoOrderViews;
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use function_registry::{FUNCTIONS, Handler, Trigger, Wiring};
use lambda_glue::consumer::{EventHandler, handle_queue_batch};
use serde_json::{Value, json};
use stream_pipeline::{Deadline, StreamEvent, StreamHandler};

use crate::streams::lambda_event;
use crate::{Emulator, EventStoreFixture, unique_name};

/// Receives after which a message goes to the handler's DLQ.
pub const MAX_RECEIVE_COUNT: i32 = 3;

/// One handler's queue.
#[derive(Debug, Clone)]
pub struct HandlerQueue {
    /// The queue its rule fills.
    pub queue_url: String,
    /// Its dead-letter queue.
    pub dlq_url: String,
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
    /// Creates the tables, bus, topic, the notifications queue and the poison queues, and wires
    /// every queue function and both stream readers of the registry to them.
    pub async fn new(emulator: Emulator, test: &str) -> Self {
        let events = emulator.event_store(test).await;
        let views = emulator.order_views(test).await;
        let bus_name = unique_name(&format!("{test}-bus"));
        emulator
            .eventbridge()
            .create_event_bus()
            .name(&bus_name)
            .send()
            .await
            .expect("create_event_bus");
        let sns = aws_sdk_sns::Client::new(&emulator.config);
        let topic_arn = sns
            .create_topic()
            .name(unique_name(&format!("{test}-notify")))
            .send()
            .await
            .expect("create_topic")
            .topic_arn
            .expect("a topic ARN");
        let (notifications_url, notifications_arn) =
            create_queue(&emulator, &format!("{test}-inbox"), None).await;
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(&notifications_arn)
            .send()
            .await
            .expect("subscribe");
        let (publisher_poison, _) =
            create_queue(&emulator, &format!("{test}-pub-poison"), None).await;
        let (projector_poison, _) =
            create_queue(&emulator, &format!("{test}-proj-poison"), None).await;
        let environment: BTreeMap<&str, String> = BTreeMap::from([
            ("EVENTS_TABLE", events.events_table.clone()),
            ("IDEMPOTENCY_TABLE", events.idempotency_table.clone()),
            ("VIEWS_TABLE", views.table.clone()),
            ("EVENT_BUS_NAME", bus_name.clone()),
            ("TOPIC_ARN", topic_arn.clone()),
            ("PUBLISHER_POISON_QUEUE_URL", publisher_poison.clone()),
            ("PROJECTOR_POISON_QUEUE_URL", projector_poison.clone()),
        ]);
        let mut saga = Self {
            emulator,
            events,
            views: views.views,
            bus_name,
            topic_arn,
            notifications_url,
            queues: BTreeMap::new(),
            poison_urls: vec![publisher_poison, projector_poison],
            handlers: BTreeMap::new(),
            readers: Vec::new(),
            shard_iterators: HashMap::new(),
        };
        let lookup = |name: &str| environment.get(name).cloned();
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
            match (function.trigger, handler) {
                (Trigger::Queue { event_type }, Handler::Queue(handler)) => {
                    saga.handler(function.name, event_type, handler).await;
                }
                (Trigger::EventsStream, Handler::Stream(reader)) => {
                    saga.readers.push((function.name, reader));
                }
                (trigger, _) => panic!("{}: a handler not of its {trigger:?}", function.name),
            }
        }
        assert_eq!(saga.readers.len(), 2, "the publisher and the projector");
        saga
    }

    /// Adds a handler fed by its own queue, which a rule for `detail_type` fills.
    async fn handler(&mut self, name: &str, detail_type: &str, handler: Arc<dyn EventHandler>) {
        let (dlq_url, dlq_arn) = create_queue(&self.emulator, &format!("{name}-dlq"), None).await;
        let (queue_url, queue_arn) = create_queue(&self.emulator, name, Some(&dlq_arn)).await;
        let events = self.emulator.eventbridge();
        let rule = unique_name(name);
        events
            .put_rule()
            .name(&rule)
            .event_bus_name(&self.bus_name)
            .event_pattern(
                json!({"source": [{"prefix": "orderflow."}], "detail-type": [detail_type]})
                    .to_string(),
            )
            .send()
            .await
            .expect("put_rule");
        events
            .put_targets()
            .rule(&rule)
            .event_bus_name(&self.bus_name)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("queue")
                    .arn(queue_arn)
                    .build()
                    .expect("a target"),
            )
            .send()
            .await
            .expect("put_targets");
        self.queues
            .insert(name.to_owned(), HandlerQueue { queue_url, dlq_url });
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
            let records: Vec<Value> = messages
                .iter()
                .map(|m| {
                    let attributes: BTreeMap<String, String> = m
                        .attributes()
                        .map(|a| {
                            a.iter()
                                .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                                .collect()
                        })
                        .unwrap_or_default();
                    json!({
                        "messageId": m.message_id(),
                        "receiptHandle": m.receipt_handle(),
                        "body": m.body(),
                        "attributes": attributes,
                        "messageAttributes": {},
                        "md5OfBody": m.md5_of_body(),
                        "eventSource": "aws:sqs",
                        "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{name}"),
                        "awsRegion": "us-east-1",
                    })
                })
                .collect();
            let event: SqsEvent =
                serde_json::from_value(json!({ "Records": records })).expect("an SQS event");
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

/// Creates a queue (with a redrive policy to `dlq_arn`) and returns its URL and ARN.
async fn create_queue(emulator: &Emulator, name: &str, dlq_arn: Option<&str>) -> (String, String) {
    use aws_sdk_sqs::types::QueueAttributeName;
    let sqs = emulator.sqs();
    let mut create = sqs.create_queue().queue_name(unique_name(name));
    if let Some(dlq_arn) = dlq_arn {
        create = create.attributes(
            QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT})
                .to_string(),
        );
    }
    let url = create
        .send()
        .await
        .expect("create_queue")
        .queue_url
        .expect("a queue URL");
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("get_queue_attributes")
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("a queue ARN");
    (url, arn)
}
