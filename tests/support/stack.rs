//! The whole system running locally (`scripts/e2e.sh` brings it up: DynamoDB Local and moto, every resource of
//! `template.yaml`, the functions (processes of the one bootstrap), the bridge), as the
//! end-to-end suite sees it: commands go in over real HTTP through the bridge's API Gateway; the
//! read model, the stored events, the customer notifications (a queue of the test's own,
//! subscribed to the topic for one customer) and the dead-letter queues are observed out, over
//! real SDK calls on the emulator.
//!
//! Where things are comes from the environment `scripts/e2e.sh` sets: `ORDERFLOW_API` (the HTTP
//! API's base URL), `ORDERFLOW_STAGE` (the stage the resources were created for),
//! `ORDERFLOW_FUNCTION_LOG` (the functions' log file) and the
//! functions' env file (`AWS_ENDPOINT_URL`, `EVENTS_TABLE`, `TOPIC_ARN` …). Missing, the suite
//! fails saying how to run it; it never skips.
//!
//! Every request is made as a user of the stage's user pool, signed in for real (the bridge checks
//! the access token as API Gateway's JWT authorizer does): a test names its customers and couriers,
//! and [`Stack::user`] creates them in their group on first use. Reads of order views go as a
//! `support` user, who may read every order.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use adapters::dynamo::DynamoEventStore;
use adapters::eventbridge::EventBridgePublisher;
use async_trait::async_trait;
use aws_sdk_sqs::types::QueueAttributeName;
use bridge::http_client::{HttpClient, json_request};
use bridge::identity::Identity;
use bridge::resources::Resources;
use bridge::template::{Environment, Resolver, Template};
use domain::envelope::StoredEvent;
use domain::identity::Group;
use domain::ids::StreamId;
use domain::ports::{EventPublisher, EventStore};
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tools::demo_api::SignedIn;

use crate::scenarios::{Courier, Driver, Refused, ViewSummary};
use crate::{DisplayError, Emulator, emulator, unique_name};

/// How long a request may take (a function's first invoke starts its process).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the effects of one step may take to show (three 1 s batching windows when warm, a
/// cold function's start on the first order).
pub const STEP_TIMEOUT: Duration = Duration::from_secs(90);

/// An HTTP answer: status, headers, the body as JSON (`Null` when empty, a string when not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Value,
}

/// The running stack.
pub struct Stack {
    /// The HTTP API's base URL (no trailing slash).
    pub api: String,
    /// The emulator the stack runs on.
    pub emulator: Emulator,
    /// The names of everything the stack's stage created (from `template.yaml`).
    pub resources: Resources,
    /// The events table.
    pub events_table: String,
    /// The customer-notifications topic.
    pub topic_arn: String,
    /// Where the functions' logs go (`orderflow-bridge functions`' output).
    pub function_log: PathBuf,
    http: HttpClient,
    identity: Identity,
    /// Each customer's inbox (subscribed when their first order is placed) and what it brought.
    inboxes: BTreeMap<String, (Inbox, Vec<String>)>,
}

/// The users signed in so far, shared by every test of the process: a sign-in sets the user's
/// password first, so two tests signing one user in at once would undo each other.
static USERS: std::sync::LazyLock<Mutex<HashMap<String, SignedIn>>> =
    std::sync::LazyLock::new(Mutex::default);

/// The courier the tests act as unless they name one.
pub const COURIER: &str = "e2e-courier";
/// The support user that reads order views.
pub const SUPPORT: &str = "e2e-support";

/// Reads a variable `scripts/e2e.sh` sets, or panics saying how to run the suite.
fn required(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{name} is not set: the end-to-end suite runs against the whole local stack. Run it \
             with `scripts/e2e.sh` (scripts/test.sh does), which starts the emulators, the functions \
             and the bridge on 127.0.0.1 and sets {name}."
        ),
    }
}

impl Stack {
    /// Connects to the stack `scripts/e2e.sh` started; panics if there is none.
    pub async fn from_env() -> Self {
        let api = required("ORDERFLOW_API").trim_end_matches('/').to_owned();
        let stage = required("ORDERFLOW_STAGE");
        let events_table = required("EVENTS_TABLE");
        let topic_arn = required("TOPIC_ARN");
        let function_log = PathBuf::from(required("ORDERFLOW_FUNCTION_LOG"));
        let emulator = emulator().await;
        let template_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        let template = Template::load(&template_path)
            .unwrap_or_else(|e| panic!("{}: {e}", template_path.display()));
        let resolver = Resolver::new(
            &template,
            Environment::local(
                &stage,
                &std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
                &emulator.endpoint,
            ),
        );
        let resources = Resources::from_template(&resolver)
            .unwrap_or_else(|e| panic!("reading the resources of template.yaml: {e}"));
        let identity = Identity::discover(&emulator.config, &stage)
            .await
            .unwrap_or_else(|e| panic!("the user pool of stage {stage}: {e:#}"));
        let stack = Self {
            api,
            emulator,
            resources,
            events_table,
            topic_arn,
            function_log,
            http: HttpClient::new(),
            identity,
            inboxes: BTreeMap::new(),
        };
        let health = stack
            .call(Method::GET, "/orders/e2e-probe", None, &[])
            .await;
        assert!(
            health.status == StatusCode::UNAUTHORIZED,
            "the stack at {} does not answer as orderflow's API behind its JWT authorizer \
             (GET /orders/e2e-probe without a token: {} {})",
            stack.api,
            health.status,
            health.body
        );
        stack
    }

    /// The user `name`, in `group` (created there on first use), signed in.
    pub async fn user(&self, name: &str, group: Group) -> SignedIn {
        let mut users = USERS.lock().await;
        if let Some(user) = users.get(name) {
            return user.clone();
        }
        let subject = self
            .identity
            .ensure_user(name, group.name())
            .await
            .unwrap_or_else(|e| panic!("creating user {name} in {group}: {e:#}"));
        let tokens = self
            .identity
            .sign_in(name)
            .await
            .unwrap_or_else(|e| panic!("signing {name} in: {e:#}"));
        let user = SignedIn {
            subject,
            access_token: tokens.access_token,
        };
        users.insert(name.to_owned(), user.clone());
        user
    }

    /// The customer `name` (created in `customers` on first use), signed in.
    pub async fn customer(&self, name: &str) -> SignedIn {
        self.user(name, Group::Customers).await
    }

    /// Sends a request as `user`.
    pub async fn call_as(
        &self,
        user: &SignedIn,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let bearer = user.bearer();
        let mut all = vec![("authorization", bearer.as_str())];
        all.extend_from_slice(headers);
        self.call(method, path, body, &all).await
    }

    /// Sends a request to the API; panics if no answer comes.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let request = json_request(
            method.clone(),
            &format!("{}{path}", self.api),
            body,
            headers,
        )
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let reply = self
            .http
            .send(request, REQUEST_TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("{method} {path} on {}: {e}", self.api));
        let body = reply.json_body();
        Reply {
            status: reply.status,
            headers: reply.headers,
            body,
        }
    }

    /// A request as support that must answer `expected`; returns the body.
    pub async fn expect(
        &self,
        expected: StatusCode,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Value {
        let support = self.user(SUPPORT, Group::Support).await;
        let reply = self
            .call_as(&support, method.clone(), path, body, &[])
            .await;
        assert_eq!(
            reply.status, expected,
            "{method} {path} answered {}: {}",
            reply.status, reply.body
        );
        reply.body
    }

    /// Places an order as the customer named `customer` (two lines) with `POST /orders`, under the
    /// correlation id given; returns the order id.
    pub async fn place_order(&self, customer: &str, correlation_id: &str) -> String {
        let body = order_body();
        let key = unique_name("e2e-key");
        let customer = self.customer(customer).await;
        let reply = self
            .call_as(
                &customer,
                Method::POST,
                "/orders",
                Some(&body),
                &[
                    ("idempotency-key", key.as_str()),
                    ("x-correlation-id", correlation_id),
                ],
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "POST /orders: {}",
            reply.body
        );
        reply.body["order_id"]
            .as_str()
            .unwrap_or_else(|| panic!("POST /orders answered without an order_id: {}", reply.body))
            .to_owned()
    }

    /// A courier's action on the order's delivery (`dispatch`, `delay`, `complete`, `fail`), as
    /// the courier the body's `courier_id` names (a user of that name; [`COURIER`] when it names
    /// none). The name is taken out of the body: the courier is the caller.
    pub async fn courier(&self, order_id: &str, action: &str, body: &Value) -> Reply {
        let path = format!("/deliveries/d-{order_id}/{action}");
        let mut body = body.clone();
        let name = body
            .as_object_mut()
            .and_then(|b| b.remove("courier_id"))
            .and_then(|n| n.as_str().map(str::to_owned))
            .unwrap_or_else(|| COURIER.to_owned());
        let courier = self.user(&name, Group::Couriers).await;
        self.call_as(&courier, Method::POST, &path, Some(&body), &[])
            .await
    }

    /// Polls `GET /orders/{id}` until `done` holds for the view; panics with what it shows after
    /// [`STEP_TIMEOUT`].
    pub async fn wait_for_view(
        &self,
        order_id: &str,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        let support = self.user(SUPPORT, Group::Support).await;
        loop {
            let reply = self
                .call_as(
                    &support,
                    Method::GET,
                    &format!("/orders/{order_id}"),
                    None,
                    &[],
                )
                .await;
            if reply.status == StatusCode::OK && done(&reply.body) {
                return reply.body;
            }
            assert!(
                started.elapsed() < STEP_TIMEOUT,
                "order {order_id}: {what} did not show within {STEP_TIMEOUT:?}; GET /orders/{order_id} \
                 answers {} {}",
                reply.status,
                reply.body
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The functions' log lines so far that contain `needle`.
    pub fn log_lines_with(&self, needle: &str) -> Vec<String> {
        std::fs::read_to_string(&self.function_log)
            .unwrap_or_else(|e| panic!("reading {}: {e}", self.function_log.display()))
            .lines()
            .filter(|line| line.contains(needle))
            .map(str::to_owned)
            .collect()
    }

    /// The event store the functions write, read through the DynamoDB adapter.
    pub fn store(&self) -> DynamoEventStore {
        DynamoEventStore::reader(self.emulator.dynamodb(), &self.events_table)
    }

    /// The events stored in stream `kind-id`.
    pub async fn events(&self, kind: &str, id: impl std::fmt::Display) -> Vec<StoredEvent> {
        let stream = StreamId::new(kind, id);
        self.store()
            .load(&stream)
            .await
            .unwrap_or_else(|e| panic!("loading {stream}: {e}"))
    }

    /// The types of the events stored in stream `kind-id`.
    pub async fn event_types(&self, kind: &str, id: impl std::fmt::Display) -> Vec<String> {
        self.events(kind, id)
            .await
            .into_iter()
            .map(|e| e.event_type)
            .collect()
    }

    /// Polls stream `kind-id` until its event types are `expected`; panics with what is stored
    /// after [`STEP_TIMEOUT`].
    pub async fn wait_for_events(&self, kind: &str, id: &str, expected: &[&str]) {
        let started = Instant::now();
        loop {
            let types = self.event_types(kind, id).await;
            if types == expected {
                return;
            }
            assert!(
                started.elapsed() < STEP_TIMEOUT,
                "stream {kind}-{id} holds {types:?}, not {expected:?}, after {STEP_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The name of the queue with this logical id in the template.
    pub fn queue_name(&self, logical_id: &str) -> &str {
        self.resources
            .queues
            .iter()
            .find(|q| q.logical_id == logical_id)
            .map(|q| q.name.as_str())
            .unwrap_or_else(|| panic!("template.yaml has no queue {logical_id}"))
    }

    /// The URL of the queue with this logical id in the template.
    pub async fn queue_url(&self, logical_id: &str) -> String {
        let name = self.queue_name(logical_id);
        self.emulator
            .sqs()
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("the queue {name}: {}", DisplayError(&e)))
            .queue_url
            .unwrap_or_else(|| panic!("the queue {name} has no URL"))
    }

    /// Messages visible plus in flight in the queue with this logical id.
    pub async fn queue_depth(&self, logical_id: &str) -> u64 {
        let url = self.queue_url(logical_id).await;
        let attributes = self
            .emulator
            .sqs()
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap_or_else(|e| panic!("the attributes of {url}: {}", DisplayError(&e)))
            .attributes
            .unwrap_or_default();
        [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        ]
        .iter()
        .map(|name| {
            attributes
                .get(name)
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
    }

    /// Waits until the queues with these logical ids have been empty (nothing visible, nothing in
    /// flight) on three checks in a row, 500 ms apart: what was sent to them has been handled.
    pub async fn wait_until_drained(&self, logical_ids: &[&str]) {
        let started = Instant::now();
        let mut quiet = 0;
        while quiet < 3 {
            let mut depths = BTreeMap::new();
            for id in logical_ids {
                depths.insert(*id, self.queue_depth(id).await);
            }
            if depths.values().all(|d| *d == 0) {
                quiet += 1;
            } else {
                quiet = 0;
            }
            assert!(
                started.elapsed() < STEP_TIMEOUT,
                "the queues did not drain within {STEP_TIMEOUT:?}: {depths:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The message bodies waiting in the queue with this logical id (received with a short
    /// visibility timeout, not deleted: what is dead-lettered stays for whoever looks next).
    pub async fn peek(&self, logical_id: &str) -> Vec<String> {
        let url = self.queue_url(logical_id).await;
        let received = self
            .emulator
            .sqs()
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .visibility_timeout(1)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap_or_else(|e| panic!("receiving from {url}: {}", DisplayError(&e)));
        received
            .messages()
            .iter()
            .map(|m| m.body().unwrap_or_default().to_owned())
            .collect()
    }

    /// Sends `body` to the queue with this logical id.
    pub async fn send(&self, logical_id: &str, body: &str) {
        let url = self.queue_url(logical_id).await;
        self.emulator
            .sqs()
            .send_message()
            .queue_url(&url)
            .message_body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("sending to {url}: {}", DisplayError(&e)));
    }

    /// A queue of this test's own, subscribed to the customer-notifications topic for the customer
    /// named `customer` only (a filter policy on the `customer_id` message attribute: the user's id).
    pub async fn inbox(&self, customer: &str) -> Inbox {
        let customer = self.customer(customer).await.subject;
        let sqs = self.emulator.sqs();
        let name = unique_name("e2e-inbox");
        let url = sqs
            .create_queue()
            .queue_name(&name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("creating {name}: {}", DisplayError(&e)))
            .queue_url
            .unwrap_or_else(|| panic!("{name} has no URL"));
        let arn = self.emulator.queue_arn(&url).await;
        self.emulator
            .sns()
            .subscribe()
            .topic_arn(&self.topic_arn)
            .protocol("sqs")
            .endpoint(&arn)
            .attributes("RawMessageDelivery", "false")
            .attributes(
                "FilterPolicy",
                json!({ "customer_id": [customer.as_str()] }).to_string(),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("subscribing {name}: {}", DisplayError(&e)));
        Inbox { url }
    }

    /// Reads `inbox` until `expected` notifications have arrived and nothing more comes for 2 s
    /// (or panics, naming what came, after [`STEP_TIMEOUT`]); returns their event types.
    pub async fn notifications(&self, inbox: &Inbox, expected: usize) -> Vec<String> {
        let sqs = self.emulator.sqs();
        let started = Instant::now();
        let mut last_new = Instant::now();
        let mut seen = Vec::new();
        while seen.len() < expected || last_new.elapsed() < Duration::from_secs(2) {
            assert!(
                started.elapsed() < STEP_TIMEOUT,
                "{} of {expected} notifications within {STEP_TIMEOUT:?}: {seen:?}",
                seen.len()
            );
            let received = sqs
                .receive_message()
                .queue_url(&inbox.url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap_or_else(|e| panic!("receiving from {}: {}", inbox.url, DisplayError(&e)));
            for message in received.messages() {
                let envelope: Value = serde_json::from_str(message.body().unwrap_or_default())
                    .unwrap_or_else(|e| panic!("a notification is not SNS JSON: {e}"));
                seen.push(
                    envelope["MessageAttributes"]["event_type"]["Value"]
                        .as_str()
                        .unwrap_or("?")
                        .to_owned(),
                );
                last_new = Instant::now();
                sqs.delete_message()
                    .queue_url(&inbox.url)
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .unwrap_or_else(|e| {
                        panic!("deleting from {}: {}", inbox.url, DisplayError(&e))
                    });
            }
        }
        seen.sort_unstable();
        seen
    }
}

/// A test's own notifications queue.
#[derive(Debug, Clone)]
pub struct Inbox {
    /// The queue's URL.
    pub url: String,
}

/// A `POST /orders` body: two lines of the sample catalogue, at the prices the client showed.
pub fn order_body() -> Value {
    json!({
        "currency": "EUR",
        "items": [
            {"sku": "TEA-GREEN-100G", "quantity": 2, "unit_price": 1299},
            {"sku": "MUG-STONE", "quantity": 1},
        ],
        "delivery_address": {
            "recipient": "E2E Customer",
            "line1": "1 Test Street",
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE",
        },
    })
}

/// A courier action's path segment and body.
fn courier_request(action: &Courier) -> (&'static str, Value) {
    let courier_id = "courier-7";
    match action {
        Courier::Dispatch => ("dispatch", json!({ "courier_id": courier_id })),
        Courier::Complete => ("complete", json!({ "courier_id": courier_id })),
        Courier::Fail(reason) => (
            "fail",
            json!({ "courier_id": courier_id, "reason": reason }),
        ),
        Courier::Delay { new_eta, reason } => (
            "delay",
            json!({ "courier_id": courier_id, "new_eta": new_eta.to_rfc3339(), "reason": reason }),
        ),
    }
}

/// A command's answer as a scenario sees it: done (200), or refused (409).
fn outcome(what: &str, reply: &Reply) -> Result<(), Refused> {
    match reply.status {
        StatusCode::OK => Ok(()),
        StatusCode::CONFLICT => Err(Refused(reply.body.to_string())),
        other => panic!("{what} answered {other}: {}", reply.body),
    }
}

/// The system through its real processes: every command over HTTP as a signed-in user, the
/// system left to move on its own.
#[async_trait]
impl Driver for Stack {
    async fn advance(&mut self) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    async fn settle(&mut self) {
        let handler_queues: Vec<String> = self
            .resources
            .queues
            .iter()
            .filter(|q| q.attributes.contains_key("RedrivePolicy"))
            .map(|q| q.logical_id.clone())
            .collect();
        let ids: Vec<&str> = handler_queues.iter().map(String::as_str).collect();
        self.wait_until_drained(&ids).await;
    }

    fn patience(&self) -> Duration {
        STEP_TIMEOUT
    }

    async fn place_order(&mut self, customer: &str, correlation_id: &str) -> String {
        if !self.inboxes.contains_key(customer) {
            let inbox = self.inbox(customer).await;
            self.inboxes
                .insert(customer.to_owned(), (inbox, Vec::new()));
        }
        Stack::place_order(self, customer, correlation_id).await
    }

    async fn courier(&mut self, order_id: &str, action: &Courier) -> Result<(), Refused> {
        let (segment, body) = courier_request(action);
        let reply = Stack::courier(self, order_id, segment, &body).await;
        outcome(&format!("POST /deliveries/d-{order_id}/{segment}"), &reply)
    }

    async fn cancel(&mut self, customer: &str, order_id: &str) -> Result<(), Refused> {
        let customer = self.customer(customer).await;
        let path = format!("/orders/{order_id}/cancel");
        let reply = self
            .call_as(&customer, Method::POST, &path, None, &[])
            .await;
        outcome(&format!("POST {path}"), &reply)
    }

    async fn events(&self, kind: &str, id: &str) -> Vec<StoredEvent> {
        Stack::events(self, kind, id).await
    }

    async fn view(&self, order_id: &str) -> Option<ViewSummary> {
        let support = self.user(SUPPORT, Group::Support).await;
        let path = format!("/orders/{order_id}");
        let reply = self.call_as(&support, Method::GET, &path, None, &[]).await;
        match reply.status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return None,
            other => panic!("GET {path} answered {other}: {}", reply.body),
        }
        let view = &reply.body;
        Some(ViewSummary {
            order: view["status"].as_str().unwrap_or("-").to_owned(),
            delivery: view["delivery"]["status"]
                .as_str()
                .unwrap_or("-")
                .to_owned(),
            eta: view["delivery"]["eta"]
                .as_str()
                .and_then(|eta| chrono::DateTime::parse_from_rfc3339(eta).ok())
                .map(|eta| eta.with_timezone(&chrono::Utc)),
            delays: view["delivery"]["delays"].as_u64().unwrap_or(0),
            coupons: view["coupons"].as_array().map_or(0, Vec::len),
        })
    }

    async fn notifications(&mut self, customer: &str, expected: usize) -> Vec<String> {
        let (inbox, seen) = self
            .inboxes
            .get(customer)
            .cloned()
            .unwrap_or_else(|| panic!("{customer} placed no order: no inbox"));
        let more = Stack::notifications(self, &inbox, expected.saturating_sub(seen.len())).await;
        let mut all = seen;
        all.extend(more);
        all.sort_unstable();
        self.inboxes
            .insert(customer.to_owned(), (inbox, all.clone()));
        all
    }

    async fn publish_again(&mut self, event: &StoredEvent) {
        let bus = required("EVENT_BUS_NAME");
        EventBridgePublisher::new(self.emulator.eventbridge(), bus)
            .publish(std::slice::from_ref(event))
            .await
            .unwrap_or_else(|e| panic!("publishing {} again: {e:?}", event.event_type));
    }

    async fn send(&mut self, queue: &str, body: &str) {
        Stack::send(self, queue, body).await;
    }

    async fn peek(&self, queue: &str) -> Vec<String> {
        Stack::peek(self, queue).await
    }
}
