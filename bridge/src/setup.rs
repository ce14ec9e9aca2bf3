//! `orderflow-bridge setup`: creates on the emulator, idempotently, every resource
//! [`Resources`] reads from the template, plus `<topic>-inbox`, a queue subscribed to the
//! customer-notifications topic so people and tests can read what customers were told; then
//! writes the functions' env file. Running it twice changes nothing the second time (existing
//! tables are kept, queue attributes are set again, rules and targets are upserted, user pools
//! and app clients are found by name, existing groups are kept).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use aws_config::SdkConfig;
use aws_sdk_cognitoidentityprovider::types::{
    AdminCreateUserConfigType, ExplicitAuthFlowsType, PasswordPolicyType,
    PreventUserExistenceErrorTypes, TimeUnitsType, TokenValidityUnitsType, UserPoolPolicyType,
    UsernameConfigurationType,
};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ProvisionedThroughput, ScalarAttributeType,
    StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_eventbridge::types::{DeadLetterConfig, RetryPolicy, RuleState, Target};
use aws_sdk_sqs::types::QueueAttributeName;
use tracing::info;

use super::resources::{
    AppClientSpec, IndexSpec, Key, QueueSpec, Resources, RuleSpec, TableSpec, UserPoolSpec,
    env_file, service_endpoints_from_env,
};
use super::template::Environment;
use crate::identity::{find_app_client, find_user_pool};

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
    /// The ids the emulator gave the user pools and app clients, by logical id.
    pub assigned: BTreeMap<String, String>,
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

/// Creates `table` as its spec says (keys, indexes, billing, stream, TTL).
pub async fn create_table(client: &aws_sdk_dynamodb::Client, table: &TableSpec) -> Result<()> {
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

/// Creates the repository template's table `logical_id` under the name `name` (a test's own, or
/// an operator's choice), and returns its stream's ARN when it has one.
pub async fn create_template_table(
    client: &aws_sdk_dynamodb::Client,
    logical_id: &str,
    name: &str,
) -> Result<Option<String>> {
    let resources =
        Resources::builtin(Environment::local("local", "us-east-1", "http://127.0.0.1"))?;
    let spec = resources
        .table(logical_id)
        .with_context(|| format!("template.yaml has no table {logical_id}"))?;
    let table = TableSpec {
        name: name.to_owned(),
        ..spec.clone()
    };
    create_table(client, &table)
        .await
        .with_context(|| format!("creating table {name} ({logical_id})"))?;
    let described = client
        .describe_table()
        .table_name(name)
        .send()
        .await
        .map_err(aws_sdk_dynamodb::Error::from)
        .with_context(|| format!("describing table {name}"))?;
    Ok(described.table.and_then(|t| t.latest_stream_arn))
}

/// Every table's name.
pub async fn existing_tables(client: &aws_sdk_dynamodb::Client) -> Result<Vec<String>> {
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

type CognitoError = aws_sdk_cognitoidentityprovider::Error;

/// The pool's id: the one named so, or a new one with the template's settings.
async fn ensure_user_pool(
    config: &SdkConfig,
    cognito: &aws_sdk_cognitoidentityprovider::Client,
    pool: &UserPoolSpec,
) -> Result<String> {
    if let Some(id) = find_user_pool(config, &pool.name).await? {
        return Ok(id);
    }
    let policy = &pool.password_policy;
    let created = cognito
        .create_user_pool()
        .pool_name(&pool.name)
        .policies(
            UserPoolPolicyType::builder()
                .password_policy(
                    PasswordPolicyType::builder()
                        .set_minimum_length(policy.minimum_length)
                        .set_require_lowercase(policy.require_lowercase)
                        .set_require_uppercase(policy.require_uppercase)
                        .set_require_numbers(policy.require_numbers)
                        .set_require_symbols(policy.require_symbols)
                        .set_temporary_password_validity_days(
                            policy.temporary_password_validity_days,
                        )
                        .build(),
                )
                .build(),
        )
        .set_admin_create_user_config(pool.admin_create_user_only.map(|only| {
            AdminCreateUserConfigType::builder()
                .allow_admin_create_user_only(only)
                .build()
        }))
        .set_username_configuration(
            pool.username_case_sensitive
                .map(|sensitive| {
                    UsernameConfigurationType::builder()
                        .case_sensitive(sensitive)
                        .build()
                })
                .transpose()?,
        )
        .send()
        .await
        .map_err(CognitoError::from)?;
    let id = created
        .user_pool
        .and_then(|p| p.id)
        .context("the new user pool has no id")?;
    info!(pool = %pool.name, %id, "user pool created");
    Ok(id)
}

fn time_unit(unit: Option<&String>) -> Option<TimeUnitsType> {
    unit.map(|u| TimeUnitsType::from(u.as_str()))
}

/// The app client's id: the one named so in the pool, or a new one with the template's settings.
async fn ensure_app_client(
    config: &SdkConfig,
    cognito: &aws_sdk_cognitoidentityprovider::Client,
    pool_id: &str,
    client: &AppClientSpec,
) -> Result<String> {
    if let Some(id) = find_app_client(config, pool_id, &client.name).await? {
        return Ok(id);
    }
    let [access, id_token, refresh] = &client.token_validity_units;
    let units = (access.is_some() || id_token.is_some() || refresh.is_some()).then(|| {
        TokenValidityUnitsType::builder()
            .set_access_token(time_unit(access.as_ref()))
            .set_id_token(time_unit(id_token.as_ref()))
            .set_refresh_token(time_unit(refresh.as_ref()))
            .build()
    });
    let created = cognito
        .create_user_pool_client()
        .user_pool_id(pool_id)
        .client_name(&client.name)
        .generate_secret(client.generate_secret)
        .set_explicit_auth_flows(Some(
            client
                .explicit_auth_flows
                .iter()
                .map(|flow| ExplicitAuthFlowsType::from(flow.as_str()))
                .collect(),
        ))
        .set_prevent_user_existence_errors(
            client
                .prevent_user_existence_errors
                .as_deref()
                .map(PreventUserExistenceErrorTypes::from),
        )
        .set_access_token_validity(client.access_token_validity)
        .set_id_token_validity(client.id_token_validity)
        .set_refresh_token_validity(client.refresh_token_validity)
        .set_token_validity_units(units)
        .send()
        .await
        .map_err(CognitoError::from)?;
    let id = created
        .user_pool_client
        .and_then(|c| c.client_id)
        .context("the new app client has no id")?;
    info!(client = %client.name, pool = %pool_id, "app client created");
    Ok(id)
}

/// Every user pool with its groups and app clients; the ids the emulator gave them, by logical id.
pub async fn ensure_user_pools(
    config: &SdkConfig,
    pools: &[UserPoolSpec],
) -> Result<BTreeMap<String, String>> {
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(config);
    let mut assigned = BTreeMap::new();
    for pool in pools {
        let pool_id = ensure_user_pool(config, &cognito, pool)
            .await
            .with_context(|| format!("creating user pool {} ({})", pool.name, pool.logical_id))?;
        for group in &pool.groups {
            let created = cognito
                .create_group()
                .user_pool_id(&pool_id)
                .group_name(&group.name)
                .set_description(group.description.clone())
                .set_precedence(group.precedence)
                .send()
                .await;
            match created {
                Ok(_) => info!(group = %group.name, pool = %pool.name, "group created"),
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|e| e.is_group_exists_exception()) => {}
                Err(error) => {
                    return Err(CognitoError::from(error)).with_context(|| {
                        format!("creating group {} ({})", group.name, group.logical_id)
                    });
                }
            }
        }
        for client in &pool.clients {
            let client_id = ensure_app_client(config, &cognito, &pool_id, client)
                .await
                .with_context(|| {
                    format!(
                        "creating app client {} ({})",
                        client.name, client.logical_id
                    )
                })?;
            assigned.insert(client.logical_id.clone(), client_id);
        }
        assigned.insert(pool.logical_id.clone(), pool_id);
    }
    Ok(assigned)
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
    let mut report = create(config, resources, inbox_topic).await?;
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

/// Creates every resource of `resources` on the emulator `config` points at (idempotently) and
/// subscribes `<topic>-inbox` to the topic with logical id `inbox_topic`: the local stack's
/// set-up, and the saga tests' (which is why they describe no resource of their own).
pub async fn create(
    config: &SdkConfig,
    resources: &Resources,
    inbox_topic: &str,
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
    report.assigned = ensure_user_pools(config, &resources.user_pools).await?;
    for pool in &resources.user_pools {
        info!(
            pool = %pool.name,
            id = %report.assigned.get(&pool.logical_id).map_or("", String::as_str),
            groups = pool.groups.len(),
            clients = pool.clients.len(),
            "user pool ready"
        );
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
    Ok(report)
}
