//! A choreography harness on the emulator: what template.yaml describes for a stage of the
//! saga's own (the events table and its stream, the bus with its rules, each handler's queue and
//! DLQ, the topics), created by the local bridge's set-up code, and the bridge's own event source
//! mappings — its SQS pollers and stream pollers — played round by round, invoking the functions
//! in this process ([`InProcess`]): stream records to the publisher and the projector, queue
//! messages to each handler as SQS events, what succeeded deleted and what failed left for the
//! queue's redrive policy. A queue subscribed to the notifications topic observes the customers'
//! notifications.
//!
//! Its functions are the function registry's (`functions/registry`): every queue function and both
//! stream readers, each built as its bootstrap builds it, from the SDK configuration and the
//! environment the template gives it. (The HTTP functions and the scheduled check are not wired:
//! the tests act as customers and couriers through the aggregates; the end-to-end suite runs the
//! same scenarios over HTTP through real processes.)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use adapters::dynamo_views::DynamoOrderViews;
use adapters::eventbridge::EventBridgePublisher;
use async_trait::async_trait;
use bridge::invoke::Invoker;
use bridge::resources::QueueSpec;
use bridge::sqs_poller::SqsPoller;
use bridge::stream_poller::{StreamPoller, StreamState};
use domain::delivery::{Delivery, DeliveryCommand};
use domain::envelope::{Actor, CorrelationId, EventContext, StoredEvent};
use domain::ids::{CourierId, DeliveryId, OrderId, StreamId};
use domain::order::{CancellationReason, Order, OrderCommand};
use domain::ports::{EventPublisher, EventStore};
use domain::read_model::OrderViews;
use domain::repository::{self, CommandError};
use function_registry::{FUNCTIONS, Handler, Trigger, Wiring};
use serde_json::Value;

use crate::in_process::InProcess;
use crate::scenarios::{Courier, Driver, Refused, ViewSummary};
use crate::stage::{StageFixture, redrive_of};
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
    /// The bridge's pollers of the template's SQS event source mappings.
    sqs_pollers: Vec<SqsPoller>,
    /// The bridge's pollers of the events table's stream mappings, with their state.
    stream_pollers: Vec<(StreamPoller, StreamState)>,
    /// The registry's functions, invoked in this process.
    functions: Arc<InProcess>,
    invoker: Invoker,
    /// The stage: what template.yaml describes, created for the saga.
    pub stage: StageFixture,
    /// The notifications read so far, by customer: their event types.
    seen: BTreeMap<String, Vec<String>>,
}

impl Saga {
    /// Creates what template.yaml describes for a stage of its own (tables, bus, rules, queues
    /// with their redrive policies, topics; not the user pools: no function here takes a token)
    /// with the local bridge's set-up code, subscribes a queue to the notifications topic, and
    /// wires every queue function and both stream readers of the registry to them, each with the
    /// environment the template gives it.
    pub async fn new(emulator: Emulator, test: &str) -> Self {
        let stage = emulator.stage(test).await;
        let StageFixture {
            region,
            resources,
            stack,
            ..
        } = &stage;
        let region = region.clone();
        let table = |logical_id: &str| stage.table(logical_id);
        let events = emulator
            .event_store_on(&table("EventsTable"), &table("IdempotencyTable"))
            .await;
        let client = emulator.dynamodb();
        let views = DynamoOrderViews::new(client, table("ViewsTable"));
        let variable = |name: &str| stage.variable(name);
        let poison_urls = vec![
            variable("PUBLISHER_POISON_QUEUE_URL"),
            variable("PROJECTOR_POISON_QUEUE_URL"),
        ];
        let mut functions = InProcess::default();
        let mut queues = BTreeMap::new();
        let mut readers = 0;
        let lookup = |name: &str| resources.environment.get(name).cloned();
        let event_driven = FUNCTIONS
            .iter()
            .filter(|f| matches!(f.trigger, Trigger::Queue { .. } | Trigger::EventsStream));
        for function in event_driven {
            let handler = function
                .handler(Wiring {
                    aws: &emulator.config,
                    lookup: &lookup,
                })
                .unwrap_or_else(|e| panic!("{}: {e}", function.name));
            match &handler {
                Handler::Queue(_) => {
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
                    queues.insert(function.name.to_owned(), handler_queue(&stage, queue));
                }
                Handler::Stream(_) => readers += 1,
                _ => panic!(
                    "{}: a handler not of its {:?}",
                    function.name, function.trigger
                ),
            }
            functions.add(function.name, handler);
        }
        assert_eq!(readers, 2, "the publisher and the projector");
        let sqs = emulator.sqs();
        let mut sqs_pollers = Vec::new();
        for mapping in &stack.queues {
            // Failed messages return at once (Lambda waits for the queue's visibility timeout).
            let poller = SqsPoller::resolve(&sqs, mapping.clone(), &region, Duration::ZERO)
                .await
                .unwrap_or_else(|e| panic!("{}: {e:#}", mapping.name));
            sqs_pollers.push(poller);
        }
        let mut stream_pollers = Vec::new();
        let mut on_failure_urls = Vec::new();
        for mapping in &stack.streams {
            let on_failure_url = mapping
                .on_failure
                .as_ref()
                .map(|queue| stage.queue_url(&queue.logical_id).to_owned());
            on_failure_urls.extend(on_failure_url.clone());
            let poller = StreamPoller {
                stream_arn: events.stream_arn.clone(),
                on_failure_url,
                function_arn: format!(
                    "arn:aws:lambda:{region}:{}:function:{}",
                    emulator.kind.account(),
                    mapping.function.name
                ),
                region: region.clone(),
                mapping: mapping.clone(),
            };
            stream_pollers.push((poller, StreamState::default()));
        }
        assert_eq!(
            stream_pollers.len(),
            2,
            "the publisher's and the projector's mappings"
        );
        let functions = Arc::new(functions);
        let mut saga = Self {
            bus_name: variable("EVENT_BUS_NAME"),
            topic_arn: variable("TOPIC_ARN"),
            notifications_url: stage.inbox_url.clone(),
            emulator,
            events,
            views,
            queues,
            poison_urls,
            sqs_pollers,
            stream_pollers,
            invoker: Invoker::over(functions.clone()),
            functions,
            seen: BTreeMap::new(),
            stage,
        };
        saga.poison_urls.extend(on_failure_urls);
        saga
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

    /// One round of the bridge's stream pollers (publisher, projector): records read since the
    /// last round delivered in batches. Returns how many were read.
    async fn pump_stream(&mut self) -> usize {
        let streams = self.emulator.dynamodb_streams();
        let sqs = self.emulator.sqs();
        let mut read = 0;
        for (poller, state) in &mut self.stream_pollers {
            read += poller.step(state, &streams, &sqs, &self.invoker).await;
        }
        // A saga stores no poison and gives up on no batch.
        for url in &self.poison_urls {
            let poisoned = sqs
                .receive_message()
                .queue_url(url)
                .send()
                .await
                .expect("receive_message");
            assert!(
                poisoned.messages().is_empty(),
                "set aside in {url}: {poisoned:?}"
            );
        }
        read
    }

    /// One round of the bridge's SQS pollers: each queue's waiting messages (up to a batch) to
    /// its function; succeeded ones deleted, failed ones visible again at once. Returns how many
    /// messages.
    async fn pump_queues(&self) -> usize {
        let sqs = self.emulator.sqs();
        let mut moved = 0;
        for poller in &self.sqs_pollers {
            moved += poller
                .poll_once(&sqs, &self.invoker)
                .await
                .unwrap_or_else(|e| panic!("polling {}: {e:#}", poller.mapping.name));
        }
        moved
    }

    /// How many invocations the saga's functions have served.
    pub fn invocations(&self) -> usize {
        self.functions.invocations()
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
}

/// A handler's queue as the template describes it: its URL, its DLQ's, and after how many
/// receives a message goes there.
fn handler_queue(stage: &StageFixture, queue: &QueueSpec) -> HandlerQueue {
    let (dlq_name, max_receive_count) = redrive_of(queue)
        .unwrap_or_else(|| panic!("{}: no redrive policy in template.yaml", queue.name));
    HandlerQueue {
        queue_url: stage.queue_url(&queue.logical_id).to_owned(),
        dlq_url: stage.queue_url_named(&dlq_name).to_owned(),
        max_receive_count,
    }
}

/// The system in process: commands through the aggregates on the saga's event store, the system
/// let move by rounds of the bridge's pollers.
#[async_trait]
impl Driver for Saga {
    async fn advance(&mut self) {
        let moved = self.pump_stream().await + self.pump_queues().await;
        if moved == 0 {
            let pause = Duration::from_millis(50).max(self.emulator.kind.delivery_grace() / 2);
            tokio::time::sleep(pause).await;
        }
    }

    async fn settle(&mut self) {
        self.pump(80).await;
    }

    fn patience(&self) -> Duration {
        Duration::from_secs(60)
    }

    async fn place_order(&mut self, customer: &str, correlation_id: &str) -> String {
        let order = crate::place_order(customer, 2);
        let mut context = crate::customer_request(customer);
        context.correlation_id = CorrelationId::parse(correlation_id).expect("a correlation id");
        context.causation_id = correlation_id.to_owned();
        repository::execute::<Order>(
            &self.events.store,
            &StreamId::order(&order.order_id),
            &crate::place(&order),
            &context,
            None,
            1,
        )
        .await
        .expect("placing an order");
        order.order_id.to_string()
    }

    async fn courier(&mut self, order_id: &str, action: &Courier) -> Result<(), Refused> {
        let courier_id = CourierId::parse("courier-7").expect("a courier id");
        let command = match action {
            Courier::Dispatch => DeliveryCommand::Dispatch { courier_id },
            Courier::Complete => DeliveryCommand::Complete { courier_id },
            Courier::Fail(reason) => DeliveryCommand::Fail {
                courier_id,
                reason: (*reason).to_owned(),
            },
            Courier::Delay { new_eta, reason } => DeliveryCommand::ReportDelay {
                courier_id,
                new_eta: *new_eta,
                reason: (*reason).to_owned(),
            },
        };
        let correlation_id = CorrelationId::generate();
        let context = EventContext {
            causation_id: correlation_id.as_str().to_owned(),
            correlation_id,
            actor: Actor::courier(&CourierId::parse("courier-7").expect("a courier id")),
            occurred_at: chrono::Utc::now(),
        };
        let order_id = OrderId::parse(order_id).expect("an order id");
        let stream = StreamId::delivery(DeliveryId::for_order(&order_id));
        refused(
            repository::execute::<Delivery>(
                &self.events.store,
                &stream,
                &command,
                &context,
                None,
                3,
            )
            .await,
        )
    }

    async fn cancel(&mut self, customer: &str, order_id: &str) -> Result<(), Refused> {
        let order_id = OrderId::parse(order_id).expect("an order id");
        let cancel = OrderCommand::Cancel {
            reason: CancellationReason::CustomerRequest,
        };
        refused(
            repository::execute::<Order>(
                &self.events.store,
                &StreamId::order(&order_id),
                &cancel,
                &crate::customer_request(customer),
                None,
                3,
            )
            .await,
        )
    }

    async fn events(&self, kind: &str, id: &str) -> Vec<StoredEvent> {
        let stream = StreamId::new(kind, id);
        self.events
            .store
            .load(&stream)
            .await
            .unwrap_or_else(|e| panic!("loading {stream}: {e}"))
    }

    async fn view(&self, order_id: &str) -> Option<ViewSummary> {
        let order_id = OrderId::parse(order_id).expect("an order id");
        let view = self.views.get(&order_id).await.expect("reading a view")?;
        Some(ViewSummary {
            order: view.status.map_or("-", |s| s.as_str()).to_owned(),
            delivery: view
                .delivery
                .as_ref()
                .map_or("-", |d| d.status.as_str())
                .to_owned(),
            eta: view.delivery.as_ref().map(|d| d.eta),
            delays: view.delivery.as_ref().map_or(0, |d| u64::from(d.delays)),
            coupons: view.coupons.len(),
        })
    }

    async fn notifications(&mut self, customer: &str, expected: usize) -> Vec<String> {
        let started = std::time::Instant::now();
        loop {
            self.settle().await;
            for (event_type, to, _) in Saga::notifications(self).await {
                self.seen.entry(to).or_default().push(event_type);
            }
            let mut seen = self.seen.get(customer).cloned().unwrap_or_default();
            if seen.len() >= expected || started.elapsed() > self.patience() {
                seen.sort_unstable();
                return seen;
            }
        }
    }

    async fn publish_again(&mut self, event: &StoredEvent) {
        EventBridgePublisher::new(self.emulator.eventbridge(), &self.bus_name)
            .publish(std::slice::from_ref(event))
            .await
            .unwrap_or_else(|e| panic!("publishing {} again: {e:?}", event.event_type));
    }

    async fn send(&mut self, queue: &str, body: &str) {
        self.emulator
            .sqs()
            .send_message()
            .queue_url(self.queue_url(queue))
            .message_body(body)
            .send()
            .await
            .expect("send_message");
    }

    async fn peek(&self, queue: &str) -> Vec<String> {
        let received = self
            .emulator
            .sqs()
            .receive_message()
            .queue_url(self.queue_url(queue))
            .max_number_of_messages(10)
            .visibility_timeout(0)
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

impl Saga {
    /// The URL of the stage's queue with this logical id.
    fn queue_url(&self, logical_id: &str) -> &str {
        self.stage.queue_url(logical_id)
    }
}

/// A command's outcome as a scenario sees it: done, or refused by the domain.
fn refused<T>(result: Result<T, CommandError>) -> Result<(), Refused> {
    match result {
        Ok(_) => Ok(()),
        Err(CommandError::Domain(refusal)) => Err(Refused(refusal.to_string())),
        Err(other) => panic!("the store failed: {other}"),
    }
}
