//! A stage of a test's own: everything template.yaml describes (tables, the bus and its rules,
//! every queue with its redrive policy, the topics), created on the emulator by the local bridge's
//! set-up code (`bridge::setup::create`), and a queue subscribed to the customer-notifications
//! topic — so no test describes orderflow's resources a second time. The user pools are left out
//! (LocalStack's community edition has no Cognito; no in-process function takes a token).

use std::collections::BTreeMap;

use bridge::resources::{QueueSpec, Resources};
use bridge::setup;
use bridge::stack::Stack;
use bridge::template::{Environment, Resolver, Template};
use serde_json::Value;

use crate::Emulator;

/// The topic (logical id) the stage's inbox queue is subscribed to.
pub const NOTIFICATIONS_TOPIC: &str = "CustomerNotificationsTopic";

/// A stage's resources on the emulator.
pub struct StageFixture {
    /// The stage (resources are named `orderflow-<stage>-…`).
    pub stage: String,
    /// The region.
    pub region: String,
    /// What the template describes for it: names, the functions' environment.
    pub resources: Resources,
    /// Its functions, routes and event source mappings.
    pub stack: Stack,
    /// The queue subscribed to the customer-notifications topic (raw delivery off: SNS
    /// envelopes).
    pub inbox_url: String,
    queue_urls: BTreeMap<String, String>,
}

impl StageFixture {
    /// The URL of the stage's queue with this logical id.
    pub fn queue_url(&self, logical_id: &str) -> &str {
        self.queue_urls
            .get(logical_id)
            .unwrap_or_else(|| panic!("template.yaml has no queue {logical_id}"))
    }

    /// The URL of the stage's queue named `name`.
    pub fn queue_url_named(&self, name: &str) -> &str {
        let queue = self
            .resources
            .queues
            .iter()
            .find(|q| q.name == name)
            .unwrap_or_else(|| panic!("template.yaml has no queue named {name}"));
        self.queue_url(&queue.logical_id)
    }

    /// The value the template gives a function's environment variable `name`.
    pub fn variable(&self, name: &str) -> String {
        self.resources
            .environment
            .get(name)
            .unwrap_or_else(|| panic!("no function of template.yaml reads {name}"))
            .clone()
    }

    /// The name of the stage's table with this logical id.
    pub fn table(&self, logical_id: &str) -> String {
        self.resources
            .table(logical_id)
            .unwrap_or_else(|| panic!("template.yaml has no table {logical_id}"))
            .name
            .clone()
    }
}

/// A queue's redrive policy as template.yaml gives it: the dead-letter queue's name and after how
/// many receives a message goes there. `None` for a queue without one.
pub fn redrive_of(queue: &QueueSpec) -> Option<(String, u64)> {
    let policy: Value = serde_json::from_str(queue.attributes.get("RedrivePolicy")?).ok()?;
    let dlq_name = policy["deadLetterTargetArn"]
        .as_str()?
        .rsplit(':')
        .next()?
        .to_owned();
    let count = &policy["maxReceiveCount"];
    let max_receive_count = count.as_u64().or_else(|| count.as_str()?.parse().ok())?;
    Some((dlq_name, max_receive_count))
}

/// A stage name of the test's own: template names are `orderflow-<stage>-…`, and the longest, a
/// rule's, leaves 15 of EventBridge's 64 characters for the stage.
pub fn stage_name() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = chrono::Utc::now().timestamp_subsec_nanos() % 1_000;
    format!("s{}x{n}n{nanos}", std::process::id() % 100_000)
}

impl Emulator {
    /// Creates a stage of the test's own from template.yaml, with the bridge's set-up code.
    pub async fn stage(&self, test: &str) -> StageFixture {
        let stage = stage_name();
        let region = self
            .config
            .region()
            .map_or_else(|| "us-east-1".to_owned(), ToString::to_string);
        let mut environment = Environment::local(&stage, &region, &self.endpoint);
        environment.account = self.kind.account().to_owned();
        let template = Template::builtin().expect("template.yaml parses");
        let resolver = Resolver::new(&template, environment);
        let mut resources = Resources::from_template(&resolver).expect("template.yaml's resources");
        resources.user_pools.clear();
        let report = setup::create(&self.config, &resources, NOTIFICATIONS_TOPIC)
            .await
            .unwrap_or_else(|e| panic!("{test}: creating stage {stage}'s resources: {e:#}"));
        let stack = Stack::from_template(&resolver).expect("template.yaml's functions");
        let sqs = self.sqs();
        let mut queue_urls = BTreeMap::new();
        for queue in &resources.queues {
            let url = sqs
                .get_queue_url()
                .queue_name(&queue.name)
                .send()
                .await
                .unwrap_or_else(|e| panic!("get_queue_url {}: {e}", queue.name))
                .queue_url
                .expect("a queue URL");
            queue_urls.insert(queue.logical_id.clone(), url);
        }
        StageFixture {
            stage,
            region,
            resources,
            stack,
            inbox_url: report
                .inbox_url
                .expect("the customer-notifications topic's inbox"),
            queue_urls,
        }
    }
}
