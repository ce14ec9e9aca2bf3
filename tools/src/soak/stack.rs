//! What a soak needs of the stack before it drives: its users (signed in through whatever endpoint
//! the environment names — the proxy, in a soak), its own inbox on the customers' topic, and
//! clients that read around the faults for the audit.

use std::collections::BTreeSet;
use std::path::PathBuf;

use adapters::dynamo::DynamoEventStore;
use adapters::dynamo_views::DynamoOrderViews;
use anyhow::{Context, Result};
use aws_config::SdkConfig;
use domain::identity::Group;
use serde_json::json;

use super::audit::{InboxCollector, Observed, audit};
use super::{Actors, Report, Settings, drive};
use crate::demo_api::SignedIn;
use crate::identity::Identity;

/// Everything `orderflow soak` is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The API.
    pub api: String,
    /// Orders, concurrency, seed.
    pub settings: Settings,
    /// The stage.
    pub stage: String,
    /// The tables and the topic.
    pub events_table: String,
    /// The views table.
    pub views_table: String,
    /// The idempotency table.
    pub idempotency_table: String,
    /// The customers' topic.
    pub topic_arn: String,
    /// DynamoDB's endpoint around the proxy (`None`: the environment's).
    pub read_dynamodb: Option<String>,
    /// SQS's and SNS's endpoint around the proxy (`None`: the environment's).
    pub read_sqs: Option<String>,
    /// The proxy's journal.
    pub journal: Option<PathBuf>,
    /// The proxy's stats URL.
    pub proxy_stats: Option<String>,
    /// The bridge's fault counts.
    pub fault_stats: Option<PathBuf>,
    /// Logs to search for panics.
    pub logs: Vec<PathBuf>,
    /// How many poison records to write into the events table (around the proxy).
    pub poison: usize,
}

/// How many customers and couriers a soak signs in.
const CUSTOMERS: usize = 4;
const COURIERS: usize = 3;

async fn sign_in(identity: &Identity, name: &str, group: Group) -> Result<SignedIn> {
    let subject = identity.ensure_user(name, group.name()).await?;
    let tokens = identity.sign_in(name).await?;
    Ok(SignedIn {
        subject,
        access_token: tokens.access_token,
    })
}

/// Runs a whole soak: users, inbox, drive, audit. The report says what was found.
pub async fn soak(config: &SdkConfig, options: &Options) -> Result<Report> {
    let identity = Identity::discover(config, &options.stage).await?;
    let run = format!(
        "soak-{}-{}",
        options.settings.seed,
        chrono::Utc::now().format("%H%M%S")
    );
    let mut actors = Actors {
        customers: Vec::new(),
        couriers: Vec::new(),
    };
    for n in 1..=CUSTOMERS {
        let name = format!("{run}-customer-{n}");
        actors
            .customers
            .push(sign_in(&identity, &name, Group::Customers).await?);
    }
    for n in 1..=COURIERS {
        let name = format!("{run}-courier-{n}");
        actors
            .couriers
            .push(sign_in(&identity, &name, Group::Couriers).await?);
    }
    let customers: BTreeSet<String> = actors.customers.iter().map(|c| c.subject.clone()).collect();

    let dynamodb = {
        let mut builder = aws_sdk_dynamodb::config::Builder::from(config);
        if let Some(url) = &options.read_dynamodb {
            builder = builder.endpoint_url(url);
        }
        aws_sdk_dynamodb::Client::from_conf(builder.build())
    };
    let sqs = {
        let mut builder = aws_sdk_sqs::config::Builder::from(config);
        if let Some(url) = &options.read_sqs {
            builder = builder.endpoint_url(url);
        }
        aws_sdk_sqs::Client::from_conf(builder.build())
    };
    let sns = {
        let mut builder = aws_sdk_sns::config::Builder::from(config);
        if let Some(url) = &options.read_sqs {
            builder = builder.endpoint_url(url);
        }
        aws_sdk_sns::Client::from_conf(builder.build())
    };
    let inbox_url = inbox(&sqs, &sns, &run, &options.topic_arn, &customers).await?;
    let poison = inject_poison(&dynamodb, &options.events_table, &run, options.poison).await?;
    let collector = InboxCollector::start(sqs.clone(), inbox_url.clone());

    eprintln!(
        "soak {run}: {} orders, {} at once, seed {}, through {}",
        options.settings.orders, options.settings.concurrency, options.settings.seed, options.api
    );
    let (placed, mut report) = drive(&options.api, &options.settings, &actors).await;
    eprintln!(
        "  driven in {:.1} s; letting the stack settle, then auditing",
        report.drive_time.as_secs_f64()
    );
    let dynamodb_for_poison = dynamodb.clone();
    let observed = Observed {
        store: DynamoEventStore::new(
            dynamodb.clone(),
            &options.events_table,
            &options.idempotency_table,
        ),
        views: DynamoOrderViews::new(dynamodb.clone(), &options.views_table),
        sqs: sqs.clone(),
        stage: options.stage.clone(),
        journal: options.journal.clone(),
        logs: options.logs.clone(),
        dynamodb: dynamodb_for_poison,
        events_table: options.events_table.clone(),
        poison,
    };
    let audited = audit(&placed, &customers, &observed, collector, &mut report).await;
    if let Err(error) = sqs.delete_queue().queue_url(&inbox_url).send().await {
        eprintln!(
            "  the soak's inbox could not be deleted: {}",
            aws_sdk_sqs::error::DisplayErrorContext(&error)
        );
    }
    audited?;
    if let Some(url) = &options.proxy_stats {
        report.proxy = fetch_json(url).await;
    }
    if let Some(path) = &options.fault_stats {
        report.bridge = std::fs::read_to_string(path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
    }
    Ok(report)
}

/// Writes `count` records no consumer can read (an event type that does not exist) into the events
/// table, as a bad deployment or a hand edit would: the stream readers must set each aside in
/// their poison queues and go on. Returns their stream ids.
async fn inject_poison(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    run: &str,
    count: usize,
) -> Result<Vec<String>> {
    let mut injected = Vec::with_capacity(count);
    for n in 1..=count {
        let stream_id = format!("order#{run}-poison-{n}");
        let record = json!({
            "stream_id": stream_id,
            "version": 1,
            "event_id": uuid::Uuid::new_v4().to_string(),
            "event_type": "OrderTeleported",
            "schema_version": 1,
            "occurred_at": chrono::Utc::now().to_rfc3339(),
            "correlation_id": format!("{run}-poison-{n}"),
            "causation_id": format!("{run}-poison-{n}"),
            "actor": "system/soak",
            "data": {"order_id": format!("{run}-poison-{n}")},
        });
        let item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
            serde_dynamo::to_item(record).context("a poison record as an item")?;
        dynamodb
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(aws_sdk_dynamodb::Error::from)
            .with_context(|| format!("writing the poison record {stream_id}"))?;
        injected.push(stream_id);
    }
    Ok(injected)
}

/// A queue of the run's own, subscribed to the customers' topic for the run's customers.
async fn inbox(
    sqs: &aws_sdk_sqs::Client,
    sns: &aws_sdk_sns::Client,
    run: &str,
    topic_arn: &str,
    customers: &BTreeSet<String>,
) -> Result<String> {
    let name = format!("{run}-inbox");
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .map_err(aws_sdk_sqs::Error::from)
        .with_context(|| format!("creating {name}"))?
        .queue_url
        .with_context(|| format!("{name} has no URL"))?;
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(aws_sdk_sqs::Error::from)
        .with_context(|| format!("the ARN of {name}"))?
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .with_context(|| format!("{name} has no ARN"))?;
    sns.subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(&arn)
        .attributes("RawMessageDelivery", "false")
        .attributes(
            "FilterPolicy",
            json!({ "customer_id": customers.iter().collect::<Vec<_>>() }).to_string(),
        )
        .send()
        .await
        .map_err(aws_sdk_sns::Error::from)
        .with_context(|| format!("subscribing {name} to {topic_arn}"))?;
    Ok(url)
}

/// GETs `url` as JSON (the proxy's stats), or `None`.
async fn fetch_json(url: &str) -> Option<serde_json::Value> {
    let request = http::Request::get(url).body(bytes::Bytes::new()).ok()?;
    let reply = crate::http_client::HttpClient::new()
        .send(request, std::time::Duration::from_secs(5))
        .await
        .ok()?;
    serde_json::from_slice(&reply.body).ok()
}
