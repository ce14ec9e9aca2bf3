//! `orderflow-bridge setup`: creates on the emulator, idempotently, every resource
//! [`Resources`] reads from the template, plus `<topic>-inbox`, a queue subscribed to the
//! customer-notifications topic so people and tests can read what customers were told; then
//! writes the functions' env file. Running it twice changes nothing the second time (existing
//! tables are kept, queue attributes are set again, rules and targets are upserted).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ProvisionedThroughput, ScalarAttributeType,
    StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_eventbridge::types::{DeadLetterConfig, RetryPolicy, RuleState, Target};
use aws_sdk_sqs::types::QueueAttributeName;
use tracing::info;

use super::resources::{
    IndexSpec, Key, QueueSpec, Resources, RuleSpec, TableSpec, env_file, service_endpoints_from_env,
};

/// What setup did, for the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetupReport {
    /// Tables created.
    pub tables_created: Vec<String>,
    /// Tables that existed.
    pub tables_kept: Vec<String>,
    /// Buses.
    pub buses: Vec<String>,
    /// Queues (created or updated).
    pub queues: usize,
    /// Rules (upserted) and their targets.
    pub rules: usize,
    /// Rule targets.
    pub targets: usize,
    /// Topics.
    pub topics: Vec<String>,
    /// The inbox queue's URL.
    pub inbox_url: Option<String>,
    /// Variables written to the env file.
    pub variables: usize,
    /// What was left out.
    pub skipped: Vec<String>,
}

/// The name of the queue subscribed to a topic for observation.
pub fn inbox_name(topic: &str) -> String {
    format!("{topic}-inbox")
}

fn key(key: &Key) -> Result<KeySchemaElement> {
    Ok(KeySchemaElement::builder()
        .attribute_name(&key.0)
        .key_type(KeyType::from(key.1.as_str()))
        .build()?)
}

fn projection(index: &IndexSpec) -> Projection {
    Projection::builder()
        .projection_type(ProjectionType::from(index.projection_type.as_str()))
        .set_non_key_attributes(
            (!index.non_key_attributes.is_empty()).then(|| index.non_key_attributes.clone()),
        )
        .build()
}

fn throughput() -> Result<ProvisionedThroughput> {
    Ok(ProvisionedThroughput::builder()
        .read_capacity_units(5)
        .write_capacity_units(5)
        .build()?)
}

async fn create_table(client: &aws_sdk_dynamodb::Client, table: &TableSpec) -> Result<()> {
    let provisioned = table.billing_mode != "PAY_PER_REQUEST";
    let mut create = client
        .create_table()
        .table_name(&table.name)
        .billing_mode(BillingMode::from(table.billing_mode.as_str()));
    for (name, kind) in &table.attributes {
        create = create.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::from(kind.as_str()))
                .build()?,
        );
    }
    for k in &table.keys {
        create = create.key_schema(key(k)?);
    }
    for index in &table.global_indexes {
        let mut gsi = GlobalSecondaryIndex::builder()
            .index_name(&index.name)
            .projection(projection(index));
        for k in &index.keys {
            gsi = gsi.key_schema(key(k)?);
        }
        if provisioned {
            gsi = gsi.provisioned_throughput(throughput()?);
        }
        create = create.global_secondary_indexes(gsi.build()?);
    }
    for index in &table.local_indexes {
        let mut lsi = LocalSecondaryIndex::builder()
            .index_name(&index.name)
            .projection(projection(index));
        for k in &index.keys {
            lsi = lsi.key_schema(key(k)?);
        }
        create = create.local_secondary_indexes(lsi.build()?);
    }
    if provisioned {
        create = create.provisioned_throughput(throughput()?);
    }
    if let Some(view) = &table.stream_view_type {
        create = create.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view.as_str()))
                .build()?,
        );
    }
    create.send().await.map_err(aws_sdk_dynamodb::Error::from)?;
    if let Some(attribute) = &table.ttl_attribute {
        client
            .update_time_to_live()
            .table_name(&table.name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(attribute)
                    .build()?,
            )
            .send()
            .await
            .map_err(aws_sdk_dynamodb::Error::from)?;
    }
    Ok(())
}

async fn existing_tables(client: &aws_sdk_dynamodb::Client) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let page = client
            .list_tables()
            .set_exclusive_start_table_name(start)
            .send()
            .await
            .map_err(aws_sdk_dynamodb::Error::from)?;
        names.extend(page.table_names().iter().cloned());
        match page.last_evaluated_table_name {
            Some(last) => start = Some(last),
            None => return Ok(names),
        }
    }
}

/// Creates the queue, or sets its attributes when it exists; returns its URL and ARN.
async fn ensure_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: &BTreeMap<String, String>,
) -> Result<(String, String)> {
    let attributes: std::collections::HashMap<QueueAttributeName, String> = attributes
        .iter()
        .map(|(k, v)| (QueueAttributeName::from(k.as_str()), v.clone()))
        .collect();
    let url = match sqs.get_queue_url().queue_name(name).send().await {
        Ok(found) => {
            let url = found.queue_url.unwrap_or_default();
            // FifoQueue cannot be changed on an existing queue.
            let settable: std::collections::HashMap<_, _> = attributes
                .iter()
                .filter(|(k, _)| **k != QueueAttributeName::FifoQueue)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if !settable.is_empty() {
                sqs.set_queue_attributes()
                    .queue_url(&url)
                    .set_attributes(Some(settable))
                    .send()
                    .await
                    .map_err(aws_sdk_sqs::Error::from)?;
            }
            url
        }
        Err(_) => sqs
            .create_queue()
            .queue_name(name)
            .set_attributes((!attributes.is_empty()).then_some(attributes))
            .send()
            .await
            .map_err(aws_sdk_sqs::Error::from)?
            .queue_url
            .unwrap_or_default(),
    };
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(aws_sdk_sqs::Error::from)?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap_or_default();
    Ok((url, arn))
}

async fn put_rule(events: &aws_sdk_eventbridge::Client, rule: &RuleSpec) -> Result<()> {
    events
        .put_rule()
        .name(&rule.name)
        .set_event_bus_name(rule.bus.clone())
        .set_event_pattern(rule.event_pattern.clone())
        .state(RuleState::from(rule.state.as_str()))
        .send()
        .await
        .map_err(aws_sdk_eventbridge::Error::from)?;
    if rule.targets.is_empty() {
        return Ok(());
    }
    let mut put = events
        .put_targets()
        .rule(&rule.name)
        .set_event_bus_name(rule.bus.clone());
    for target in &rule.targets {
        let mut built = Target::builder()
            .id(&target.id)
            .arn(&target.arn)
            .set_input(target.input.clone())
            .set_input_path(target.input_path.clone());
        if let Some(arn) = &target.dead_letter_arn {
            built = built.dead_letter_config(DeadLetterConfig::builder().arn(arn).build());
        }
        if target.max_retry_attempts.is_some() || target.max_event_age_seconds.is_some() {
            built = built.retry_policy(
                RetryPolicy::builder()
                    .set_maximum_retry_attempts(target.max_retry_attempts)
                    .set_maximum_event_age_in_seconds(target.max_event_age_seconds)
                    .build(),
            );
        }
        put = put.targets(built.build()?);
    }
    let output = put.send().await.map_err(aws_sdk_eventbridge::Error::from)?;
    if output.failed_entry_count > 0 {
        anyhow::bail!(
            "rule {}: {} target(s) refused: {:?}",
            rule.name,
            output.failed_entry_count,
            output.failed_entries()
        );
    }
    Ok(())
}

/// Creates every resource on the emulator `config` points at, subscribes `<topic>-inbox` to the
/// topic with logical id `inbox_topic`, and writes `env_path`.
pub async fn setup(
    config: &SdkConfig,
    resources: &Resources,
    inbox_topic: &str,
    endpoint: &str,
    region: &str,
    env_path: &Path,
) -> Result<SetupReport> {
    let mut report = SetupReport {
        skipped: resources.skipped.clone(),
        ..SetupReport::default()
    };
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let existing = existing_tables(&dynamodb).await.context("listing tables")?;
    for table in &resources.tables {
        if existing.contains(&table.name) {
            report.tables_kept.push(table.name.clone());
            continue;
        }
        create_table(&dynamodb, table)
            .await
            .with_context(|| format!("creating table {} ({})", table.name, table.logical_id))?;
        info!(table = %table.name, "table created");
        report.tables_created.push(table.name.clone());
    }
    let events = aws_sdk_eventbridge::Client::new(config);
    for bus in &resources.buses {
        if events
            .describe_event_bus()
            .name(&bus.name)
            .send()
            .await
            .is_err()
        {
            events
                .create_event_bus()
                .name(&bus.name)
                .send()
                .await
                .map_err(aws_sdk_eventbridge::Error::from)
                .with_context(|| format!("creating bus {}", bus.name))?;
        }
        report.buses.push(bus.name.clone());
    }
    let sqs = aws_sdk_sqs::Client::new(config);
    for QueueSpec {
        name,
        attributes,
        logical_id,
    } in &resources.queues
    {
        ensure_queue(&sqs, name, attributes)
            .await
            .with_context(|| format!("creating queue {name} ({logical_id})"))?;
        report.queues += 1;
    }
    let sns = aws_sdk_sns::Client::new(config);
    let mut topic_arns = BTreeMap::new();
    for topic in &resources.topics {
        let arn = sns
            .create_topic()
            .name(&topic.name)
            .send()
            .await
            .map_err(aws_sdk_sns::Error::from)
            .with_context(|| format!("creating topic {}", topic.name))?
            .topic_arn
            .unwrap_or_default();
        topic_arns.insert(topic.logical_id.clone(), arn);
        report.topics.push(topic.name.clone());
    }
    for rule in &resources.rules {
        put_rule(&events, rule)
            .await
            .with_context(|| format!("creating rule {} ({})", rule.name, rule.logical_id))?;
        report.rules += 1;
        report.targets += rule.targets.len();
    }
    if let (Some(topic), Some(topic_arn)) =
        (resources.topic(inbox_topic), topic_arns.get(inbox_topic))
    {
        let inbox = inbox_name(&topic.name);
        let (url, arn) = ensure_queue(&sqs, &inbox, &BTreeMap::new())
            .await
            .with_context(|| format!("creating queue {inbox}"))?;
        let subscribed = sns
            .list_subscriptions_by_topic()
            .topic_arn(topic_arn)
            .send()
            .await
            .map_err(aws_sdk_sns::Error::from)?
            .subscriptions()
            .iter()
            .any(|s| s.endpoint() == Some(arn.as_str()));
        if !subscribed {
            sns.subscribe()
                .topic_arn(topic_arn)
                .protocol("sqs")
                .endpoint(&arn)
                .send()
                .await
                .map_err(aws_sdk_sns::Error::from)
                .with_context(|| format!("subscribing {inbox} to {}", topic.name))?;
        }
        report.inbox_url = Some(url);
    } else {
        report.skipped.push(format!(
            "no topic {inbox_topic} in the template: no inbox queue"
        ));
    }
    if let Some(parent) = env_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let service_endpoints = service_endpoints_from_env();
    std::fs::write(
        env_path,
        env_file(&resources.environment, endpoint, &service_endpoints, region),
    )
    .with_context(|| format!("writing {}", env_path.display()))?;
    report.variables = resources.environment.len();
    Ok(report)
}
