//! What `orderflow-bridge setup` creates on the emulator, read from the template as plain data
//! (names, keys and ARNs resolved): DynamoDB tables, event buses, SQS queues (attributes and
//! redrive policy), EventBridge rules with their SQS/SNS targets, SNS topics, Cognito user pools
//! with their groups and app clients — and the environment the functions get (the union of every
//! function's `Environment.Variables`).
//!
//! Left out on purpose, because moto ignores or cannot serve them: queue policies, encryption
//! settings (`SqsManagedSseEnabled`, `KmsMasterKeyId`, `SSESpecification`), point-in-time
//! recovery, alarms, log groups (the functions log to the terminal), a function's
//! `EventInvokeConfig` (the local scheduler keeps the schedule's own retries), and rule targets that
//! are not queues or topics.

use std::collections::BTreeMap;

use serde_json::Value as Json;
use serde_norway::Value;

use super::template::{Environment, Resolver, Template, TemplateError};

/// A key of a table or an index: attribute name and `HASH`/`RANGE`.
pub type Key = (String, String);

/// A secondary index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSpec {
    /// Its name.
    pub name: String,
    /// Its key.
    pub keys: Vec<Key>,
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`.
    pub projection_type: String,
    /// For `INCLUDE`.
    pub non_key_attributes: Vec<String>,
}

/// A table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    /// Its logical id.
    pub logical_id: String,
    /// Its name.
    pub name: String,
    /// Attribute definitions: name and `S`/`N`/`B`.
    pub attributes: Vec<(String, String)>,
    /// The primary key.
    pub keys: Vec<Key>,
    /// Global secondary indexes.
    pub global_indexes: Vec<IndexSpec>,
    /// Local secondary indexes.
    pub local_indexes: Vec<IndexSpec>,
    /// `PAY_PER_REQUEST` or `PROVISIONED`.
    pub billing_mode: String,
    /// The stream's view type, when the table has a stream.
    pub stream_view_type: Option<String>,
    /// The TTL attribute, when TTL is enabled.
    pub ttl_attribute: Option<String>,
}

/// A queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    /// Its logical id.
    pub logical_id: String,
    /// Its name.
    pub name: String,
    /// SQS attributes (`VisibilityTimeout`, `RedrivePolicy` as JSON with the DLQ's ARN …).
    pub attributes: BTreeMap<String, String>,
}

/// A named resource with nothing else to set (a topic, a bus).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedSpec {
    /// Its logical id.
    pub logical_id: String,
    /// Its name.
    pub name: String,
}

/// A rule target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    /// Its id within the rule.
    pub id: String,
    /// The queue's or topic's ARN.
    pub arn: String,
    /// `Input`, if set.
    pub input: Option<String>,
    /// `InputPath`, if set.
    pub input_path: Option<String>,
    /// The target's dead-letter queue ARN.
    pub dead_letter_arn: Option<String>,
    /// `RetryPolicy.MaximumRetryAttempts`.
    pub max_retry_attempts: Option<i32>,
    /// `RetryPolicy.MaximumEventAgeInSeconds`.
    pub max_event_age_seconds: Option<i32>,
}

/// An EventBridge rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    /// Its logical id.
    pub logical_id: String,
    /// Its name.
    pub name: String,
    /// Its bus (`None`: the default bus).
    pub bus: Option<String>,
    /// The event pattern, as JSON text.
    pub event_pattern: Option<String>,
    /// `ENABLED` unless the template says otherwise.
    pub state: String,
    /// Its SQS/SNS targets.
    pub targets: Vec<TargetSpec>,
}

/// A user pool's password policy (`Policies.PasswordPolicy`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PasswordPolicySpec {
    /// `MinimumLength`.
    pub minimum_length: Option<i32>,
    /// `RequireLowercase`.
    pub require_lowercase: Option<bool>,
    /// `RequireUppercase`.
    pub require_uppercase: Option<bool>,
    /// `RequireNumbers`.
    pub require_numbers: Option<bool>,
    /// `RequireSymbols`.
    pub require_symbols: Option<bool>,
    /// `TemporaryPasswordValidityDays`.
    pub temporary_password_validity_days: Option<i32>,
}

/// A user pool group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    /// Its logical id.
    pub logical_id: String,
    /// `GroupName`.
    pub name: String,
    /// `Description`.
    pub description: Option<String>,
    /// `Precedence`.
    pub precedence: Option<i32>,
}

/// A user pool app client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppClientSpec {
    /// Its logical id.
    pub logical_id: String,
    /// `ClientName`.
    pub name: String,
    /// `GenerateSecret`.
    pub generate_secret: bool,
    /// `ExplicitAuthFlows` (`ALLOW_ADMIN_USER_PASSWORD_AUTH` …).
    pub explicit_auth_flows: Vec<String>,
    /// `PreventUserExistenceErrors`.
    pub prevent_user_existence_errors: Option<String>,
    /// `AccessTokenValidity`, in `TokenValidityUnits.AccessToken`.
    pub access_token_validity: Option<i32>,
    /// `IdTokenValidity`, in `TokenValidityUnits.IdToken`.
    pub id_token_validity: Option<i32>,
    /// `RefreshTokenValidity`, in `TokenValidityUnits.RefreshToken`.
    pub refresh_token_validity: Option<i32>,
    /// `TokenValidityUnits`: access, id and refresh token units (`minutes`, `hours`, `days`).
    pub token_validity_units: [Option<String>; 3],
}

/// A Cognito user pool, with the groups and app clients that name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPoolSpec {
    /// Its logical id.
    pub logical_id: String,
    /// `UserPoolName`.
    pub name: String,
    /// `Policies.PasswordPolicy`.
    pub password_policy: PasswordPolicySpec,
    /// `AdminCreateUserConfig.AllowAdminCreateUserOnly`.
    pub admin_create_user_only: Option<bool>,
    /// `UsernameConfiguration.CaseSensitive`.
    pub username_case_sensitive: Option<bool>,
    /// Its groups.
    pub groups: Vec<GroupSpec>,
    /// Its app clients.
    pub clients: Vec<AppClientSpec>,
}

/// Everything setup creates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// Tables.
    pub tables: Vec<TableSpec>,
    /// Event buses.
    pub buses: Vec<NamedSpec>,
    /// Queues, every dead-letter queue before the queues that redrive to it.
    pub queues: Vec<QueueSpec>,
    /// Topics.
    pub topics: Vec<NamedSpec>,
    /// Rules.
    pub rules: Vec<RuleSpec>,
    /// Cognito user pools.
    pub user_pools: Vec<UserPoolSpec>,
    /// The functions' environment (union of every function's variables).
    pub environment: BTreeMap<String, String>,
    /// What was left out, in words.
    pub skipped: Vec<String>,
}

/// The SQS attributes a queue's properties map to (the rest is left out).
const QUEUE_ATTRIBUTES: &[&str] = &[
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
];

fn text(
    resolver: &Resolver<'_>,
    owner: &str,
    value: Option<&Value>,
    what: &str,
) -> Result<String, TemplateError> {
    let value = value.ok_or_else(|| TemplateError::invalid(owner, format!("no {what}")))?;
    resolver.string(value)
}

fn keys(
    resolver: &Resolver<'_>,
    owner: &str,
    value: Option<&Value>,
) -> Result<Vec<Key>, TemplateError> {
    value
        .and_then(Value::as_sequence)
        .ok_or_else(|| TemplateError::invalid(owner, "no KeySchema"))?
        .iter()
        .map(|key| {
            Ok((
                text(resolver, owner, key.get("AttributeName"), "AttributeName")?,
                text(resolver, owner, key.get("KeyType"), "KeyType")?,
            ))
        })
        .collect()
}

fn indexes(
    resolver: &Resolver<'_>,
    owner: &str,
    value: Option<&Value>,
) -> Result<Vec<IndexSpec>, TemplateError> {
    value
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .map(|index| {
            let projection = index.get("Projection");
            Ok(IndexSpec {
                name: text(resolver, owner, index.get("IndexName"), "IndexName")?,
                keys: keys(resolver, owner, index.get("KeySchema"))?,
                projection_type: match projection.and_then(|p| p.get("ProjectionType")) {
                    Some(kind) => resolver.string(kind)?,
                    None => "ALL".to_owned(),
                },
                non_key_attributes: projection
                    .and_then(|p| p.get("NonKeyAttributes"))
                    .and_then(Value::as_sequence)
                    .into_iter()
                    .flatten()
                    .map(|a| resolver.string(a))
                    .collect::<Result<_, _>>()?,
            })
        })
        .collect()
}

fn table(resolver: &Resolver<'_>, id: &str) -> Result<TableSpec, TemplateError> {
    let p = resolver.template().properties(id);
    let attributes = p
        .get("AttributeDefinitions")
        .and_then(Value::as_sequence)
        .ok_or_else(|| TemplateError::invalid(id, "no AttributeDefinitions"))?
        .iter()
        .map(|a| {
            Ok((
                text(resolver, id, a.get("AttributeName"), "AttributeName")?,
                text(resolver, id, a.get("AttributeType"), "AttributeType")?,
            ))
        })
        .collect::<Result<_, TemplateError>>()?;
    let stream_view_type = match p
        .get("StreamSpecification")
        .and_then(|s| s.get("StreamViewType"))
    {
        Some(kind) => Some(resolver.string(kind)?),
        None => None,
    };
    let ttl = p.get("TimeToLiveSpecification");
    let ttl_attribute = match ttl.and_then(|t| t.get("AttributeName")) {
        Some(name)
            if ttl.and_then(|t| t.get("Enabled")).and_then(Value::as_bool) != Some(false) =>
        {
            Some(resolver.string(name)?)
        }
        _ => None,
    };
    Ok(TableSpec {
        logical_id: id.to_owned(),
        name: resolver.name_of(id)?,
        attributes,
        keys: keys(resolver, id, p.get("KeySchema"))?,
        global_indexes: indexes(resolver, id, p.get("GlobalSecondaryIndexes"))?,
        local_indexes: indexes(resolver, id, p.get("LocalSecondaryIndexes"))?,
        billing_mode: match p.get("BillingMode") {
            Some(mode) => resolver.string(mode)?,
            None => "PROVISIONED".to_owned(),
        },
        stream_view_type,
        ttl_attribute,
    })
}

fn queue(resolver: &Resolver<'_>, id: &str) -> Result<QueueSpec, TemplateError> {
    let p = resolver.template().properties(id);
    let mut attributes = BTreeMap::new();
    for name in QUEUE_ATTRIBUTES {
        let Some(value) = p.get(*name) else { continue };
        let value = match resolver.json(value)? {
            Json::String(s) => s,
            Json::Object(object) => Json::Object(object).to_string(),
            other => other.to_string(),
        };
        attributes.insert((*name).to_owned(), value);
    }
    Ok(QueueSpec {
        logical_id: id.to_owned(),
        name: resolver.name_of(id)?,
        attributes,
    })
}

fn optional_text(
    resolver: &Resolver<'_>,
    value: Option<&Value>,
) -> Result<Option<String>, TemplateError> {
    value.map(|v| resolver.string(v)).transpose()
}

fn optional_i32(value: Option<&Value>) -> Option<i32> {
    value
        .and_then(Value::as_i64)
        .and_then(|n| i32::try_from(n).ok())
}

fn rule(
    resolver: &Resolver<'_>,
    id: &str,
    skipped: &mut Vec<String>,
) -> Result<RuleSpec, TemplateError> {
    let p = resolver.template().properties(id);
    if p.get("ScheduleExpression").is_some() {
        skipped.push(format!(
            "{id}: its schedule (schedules of functions are played by the bridge)"
        ));
    }
    let mut targets = Vec::new();
    for target in p
        .get("Targets")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        let target_id = text(resolver, id, target.get("Id"), "target Id")?;
        let arn = text(resolver, id, target.get("Arn"), "target Arn")?;
        if !(arn.starts_with("arn:aws:sqs:") || arn.starts_with("arn:aws:sns:")) {
            skipped.push(format!(
                "{id}: target {target_id} ({arn}) is not a queue or a topic"
            ));
            continue;
        }
        if target.get("InputTransformer").is_some() {
            skipped.push(format!("{id}: target {target_id}'s input transformer"));
        }
        let retry = target.get("RetryPolicy");
        targets.push(TargetSpec {
            id: target_id,
            arn,
            input: optional_text(resolver, target.get("Input"))?,
            input_path: optional_text(resolver, target.get("InputPath"))?,
            dead_letter_arn: optional_text(
                resolver,
                target.get("DeadLetterConfig").and_then(|d| d.get("Arn")),
            )?,
            max_retry_attempts: optional_i32(retry.and_then(|r| r.get("MaximumRetryAttempts"))),
            max_event_age_seconds: optional_i32(
                retry.and_then(|r| r.get("MaximumEventAgeInSeconds")),
            ),
        });
    }
    Ok(RuleSpec {
        logical_id: id.to_owned(),
        name: resolver.name_of(id)?,
        bus: optional_text(resolver, p.get("EventBusName"))?,
        event_pattern: p
            .get("EventPattern")
            .map(|pattern| resolver.json(pattern).map(|json| json.to_string()))
            .transpose()?,
        state: optional_text(resolver, p.get("State"))?.unwrap_or_else(|| "ENABLED".to_owned()),
        targets,
    })
}

fn optional_bool(
    resolver: &Resolver<'_>,
    value: Option<&Value>,
) -> Result<Option<bool>, TemplateError> {
    Ok(match value {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => Some(resolver.string(other)?.eq_ignore_ascii_case("true")),
    })
}

fn optional_number(
    resolver: &Resolver<'_>,
    owner: &str,
    value: Option<&Value>,
) -> Result<Option<i32>, TemplateError> {
    value
        .map(|v| {
            let text = resolver.string(v)?;
            text.trim()
                .parse()
                .map_err(|_| TemplateError::invalid(owner, format!("{text:?} is not a number")))
        })
        .transpose()
}

/// The user pool a group's or client's `UserPoolId: !Ref Pool` names (its logical id).
fn pool_of(resolver: &Resolver<'_>, id: &str) -> Result<String, TemplateError> {
    resolver
        .template()
        .properties(id)
        .get("UserPoolId")
        .and_then(Resolver::target)
        .map(|(pool, _)| pool)
        .filter(|pool| resolver.template().type_of(pool) == Some("AWS::Cognito::UserPool"))
        .ok_or_else(|| TemplateError::invalid(id, "UserPoolId is not a !Ref of a user pool"))
}

fn user_pool(resolver: &Resolver<'_>, id: &str) -> Result<UserPoolSpec, TemplateError> {
    let template = resolver.template();
    let p = template.properties(id);
    let policy = p.get("Policies").and_then(|p| p.get("PasswordPolicy"));
    let field = |name: &str| policy.and_then(|p| p.get(name));
    let password_policy = PasswordPolicySpec {
        minimum_length: optional_number(resolver, id, field("MinimumLength"))?,
        require_lowercase: optional_bool(resolver, field("RequireLowercase"))?,
        require_uppercase: optional_bool(resolver, field("RequireUppercase"))?,
        require_numbers: optional_bool(resolver, field("RequireNumbers"))?,
        require_symbols: optional_bool(resolver, field("RequireSymbols"))?,
        temporary_password_validity_days: optional_number(
            resolver,
            id,
            field("TemporaryPasswordValidityDays"),
        )?,
    };
    let mut groups = Vec::new();
    for (group, _) in template.of_type("AWS::Cognito::UserPoolGroup") {
        if pool_of(resolver, group)? != id {
            continue;
        }
        let g = template.properties(group);
        groups.push(GroupSpec {
            logical_id: group.to_owned(),
            name: resolver.name_of(group)?,
            description: optional_text(resolver, g.get("Description"))?,
            precedence: optional_number(resolver, group, g.get("Precedence"))?,
        });
    }
    let mut clients = Vec::new();
    for (client, _) in template.of_type("AWS::Cognito::UserPoolClient") {
        if pool_of(resolver, client)? != id {
            continue;
        }
        let c = template.properties(client);
        let units = |token: &str| {
            optional_text(
                resolver,
                c.get("TokenValidityUnits").and_then(|u| u.get(token)),
            )
        };
        clients.push(AppClientSpec {
            logical_id: client.to_owned(),
            name: resolver.name_of(client)?,
            generate_secret: optional_bool(resolver, c.get("GenerateSecret"))?.unwrap_or(false),
            explicit_auth_flows: c
                .get("ExplicitAuthFlows")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .map(|flow| resolver.string(flow))
                .collect::<Result<_, _>>()?,
            prevent_user_existence_errors: optional_text(
                resolver,
                c.get("PreventUserExistenceErrors"),
            )?,
            access_token_validity: optional_number(resolver, client, c.get("AccessTokenValidity"))?,
            id_token_validity: optional_number(resolver, client, c.get("IdTokenValidity"))?,
            refresh_token_validity: optional_number(
                resolver,
                client,
                c.get("RefreshTokenValidity"),
            )?,
            token_validity_units: [
                units("AccessToken")?,
                units("IdToken")?,
                units("RefreshToken")?,
            ],
        });
    }
    Ok(UserPoolSpec {
        logical_id: id.to_owned(),
        name: resolver.name_of(id)?,
        password_policy,
        admin_create_user_only: optional_bool(
            resolver,
            p.get("AdminCreateUserConfig")
                .and_then(|c| c.get("AllowAdminCreateUserOnly")),
        )?,
        username_case_sensitive: optional_bool(
            resolver,
            p.get("UsernameConfiguration")
                .and_then(|c| c.get("CaseSensitive")),
        )?,
        groups,
        clients,
    })
}

/// The functions' environment: every function's `Environment.Variables` (and the global ones),
/// resolved; two functions giving one variable different values is an error.
fn environment(resolver: &Resolver<'_>) -> Result<BTreeMap<String, String>, TemplateError> {
    let template = resolver.template();
    let mut sources: Vec<(String, &Value)> = Vec::new();
    if let Some(globals) = template
        .function_global("Environment")
        .and_then(|e| e.get("Variables"))
    {
        sources.push(("Globals".to_owned(), globals));
    }
    for (id, _) in template.of_type("AWS::Serverless::Function") {
        if let Some(variables) = template
            .properties(id)
            .get("Environment")
            .and_then(|e| e.get("Variables"))
        {
            sources.push((id.to_owned(), variables));
        }
    }
    let mut environment: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (owner, variables) in sources {
        for (name, value) in variables.as_mapping().into_iter().flatten() {
            let name = name
                .as_str()
                .ok_or_else(|| TemplateError::invalid(&owner, "a variable name is not a string"))?;
            let value = resolver.string(value)?;
            match environment.get(name) {
                Some((other, existing)) if *existing != value => {
                    return Err(TemplateError::invalid(
                        &owner,
                        format!(
                            "{name}={value:?}, but {other} sets {name}={existing:?}: one env file cannot serve both"
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    environment.insert(name.to_owned(), (owner.clone(), value));
                }
            }
        }
    }
    Ok(environment.into_iter().map(|(k, (_, v))| (k, v)).collect())
}

impl Resources {
    /// Reads everything setup creates from the template.
    pub fn from_template(resolver: &Resolver<'_>) -> Result<Self, TemplateError> {
        let template = resolver.template();
        let mut resources = Self {
            environment: environment(resolver)?,
            ..Self::default()
        };
        for (id, _) in template.of_type("AWS::DynamoDB::Table") {
            resources.tables.push(table(resolver, id)?);
        }
        for (id, _) in template.of_type("AWS::Events::EventBus") {
            resources.buses.push(NamedSpec {
                logical_id: id.to_owned(),
                name: resolver.name_of(id)?,
            });
        }
        let mut queues: Vec<QueueSpec> = template
            .of_type("AWS::SQS::Queue")
            .map(|(id, _)| queue(resolver, id))
            .collect::<Result<_, _>>()?;
        // Dead-letter queues (no redrive policy of their own) first.
        queues.sort_by_key(|q| q.attributes.contains_key("RedrivePolicy"));
        resources.queues = queues;
        for (id, _) in template.of_type("AWS::SNS::Topic") {
            resources.topics.push(NamedSpec {
                logical_id: id.to_owned(),
                name: resolver.name_of(id)?,
            });
        }
        let mut skipped = Vec::new();
        for (id, _) in template.of_type("AWS::Events::Rule") {
            resources.rules.push(rule(resolver, id, &mut skipped)?);
        }
        for (id, _) in template.of_type("AWS::Cognito::UserPool") {
            resources.user_pools.push(user_pool(resolver, id)?);
        }
        for kind in [
            "AWS::SQS::QueuePolicy",
            "AWS::CloudWatch::Alarm",
            "AWS::CloudWatch::Dashboard",
            "AWS::Logs::LogGroup",
            "AWS::EventSchemas::Registry",
            "AWS::EventSchemas::Schema",
        ] {
            let count = template.of_type(kind).count();
            if count > 0 {
                skipped.push(format!("{count} × {kind} (moto ignores them)"));
            }
        }
        resources.skipped = skipped;
        Ok(resources)
    }

    /// Everything the repository's template ([`Template::builtin`]) describes in `environment`.
    pub fn builtin(environment: Environment) -> Result<Self, TemplateError> {
        let template = Template::builtin()?;
        Self::from_template(&Resolver::new(&template, environment))
    }

    /// The table with this logical id.
    pub fn table(&self, logical_id: &str) -> Option<&TableSpec> {
        self.tables.iter().find(|t| t.logical_id == logical_id)
    }

    /// The topic with this logical id.
    pub fn topic(&self, logical_id: &str) -> Option<&NamedSpec> {
        self.topics.iter().find(|t| t.logical_id == logical_id)
    }
}

/// The SDKs' variable for the Cognito user pools endpoint (`cognito-idp`), when it is not
/// `AWS_ENDPOINT_URL`'s.
pub const COGNITO_ENDPOINT_VARIABLE: &str = "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER";

/// The SDKs' per-service endpoint variables the local stack may set beside `AWS_ENDPOINT_URL`
/// (`scripts/lib.sh`: DynamoDB Local serves DynamoDB and its streams, moto the rest).
pub const SERVICE_ENDPOINT_VARIABLES: [&str; 3] = [
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
    COGNITO_ENDPOINT_VARIABLE,
];

/// The per-service endpoints set in this process's environment ([`SERVICE_ENDPOINT_VARIABLES`]).
pub fn service_endpoints_from_env() -> BTreeMap<String, String> {
    SERVICE_ENDPOINT_VARIABLES
        .iter()
        .filter_map(|name| {
            let value = std::env::var(name).ok().filter(|v| !v.is_empty())?;
            Some(((*name).to_owned(), value))
        })
        .collect()
}

/// Where the user pools are served: the Cognito endpoint among `service_endpoints`, else the
/// emulator's `endpoint` (aws-config chooses the same way for the SDK's Cognito client). A pool's
/// keys are at `{this}/{pool id}/.well-known/jwks.json`.
pub fn cognito_endpoint(service_endpoints: &BTreeMap<String, String>, endpoint: &str) -> String {
    service_endpoints
        .get(COGNITO_ENDPOINT_VARIABLE)
        .map_or(endpoint, String::as_str)
        .trim_end_matches('/')
        .to_owned()
}

/// The env file every function gets (`orderflow-bridge functions --env-file`): the functions' environment plus the
/// emulator's endpoint, the per-service endpoints (`service_endpoints`), dummy credentials and the
/// region (`KEY=VALUE` lines, sorted).
pub fn env_file(
    environment: &BTreeMap<String, String>,
    endpoint: &str,
    service_endpoints: &BTreeMap<String, String>,
    region: &str,
) -> String {
    let mut all = environment.clone();
    all.extend(service_endpoints.clone());
    for (name, value) in [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", region),
        ("AWS_DEFAULT_REGION", region),
    ] {
        all.insert(name.to_owned(), value.to_owned());
    }
    all.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Template;
    use crate::template::tests::{local_env, real_template};

    fn resources() -> Resources {
        let template = real_template();
        Resources::from_template(&Resolver::new(&template, local_env())).unwrap()
    }

    #[test]
    fn the_four_tables_have_their_keys_indexes_stream_and_ttl() {
        let resources = resources();
        let names: Vec<&str> = resources.tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "orderflow-local-catalogue",
                "orderflow-local-events",
                "orderflow-local-idempotency",
                "orderflow-local-views"
            ]
        );
        let table = |name: &str| {
            resources
                .tables
                .iter()
                .find(|t| t.name == format!("orderflow-local-{name}"))
                .unwrap()
        };
        let catalogue = table("catalogue");
        assert_eq!(catalogue.keys, [("sku".into(), "HASH".into())]);
        assert_eq!(catalogue.stream_view_type, None);
        let events = table("events");
        assert_eq!(
            events.keys,
            [
                ("stream_id".into(), "HASH".into()),
                ("version".into(), "RANGE".into())
            ]
        );
        assert_eq!(events.stream_view_type.as_deref(), Some("NEW_IMAGE"));
        assert_eq!(events.billing_mode, "PAY_PER_REQUEST");
        let idempotency = table("idempotency");
        assert_eq!(idempotency.ttl_attribute.as_deref(), Some("expires_at"));
        let views = table("views");
        let indexes: Vec<&str> = views
            .global_indexes
            .iter()
            .map(|i| i.name.as_str())
            .collect();
        assert_eq!(indexes, ["by-customer", "delivery-board"]);
        assert_eq!(views.attributes.len(), 5);
    }

    #[test]
    fn queues_redrive_to_their_dlq_by_arn_and_come_after_it() {
        let resources = resources();
        let position = |name: &str| {
            resources
                .queues
                .iter()
                .position(|q| q.name == name)
                .unwrap()
        };
        let queue = &resources.queues[position("orderflow-local-delivery-on-order-placed")];
        assert_eq!(queue.attributes["VisibilityTimeout"], "60");
        let redrive: Json = serde_json::from_str(&queue.attributes["RedrivePolicy"]).unwrap();
        assert_eq!(
            redrive,
            serde_json::json!({
                "deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:orderflow-local-delivery-on-order-placed-dlq",
                "maxReceiveCount": 5
            })
        );
        assert!(
            position("orderflow-local-delivery-on-order-placed-dlq")
                < position("orderflow-local-delivery-on-order-placed")
        );
        assert!(!queue.attributes.contains_key("SqsManagedSseEnabled"));
        // Every queue of the template, nothing else.
        let template = real_template();
        assert_eq!(
            resources.queues.len(),
            template.of_type("AWS::SQS::Queue").count()
        );
        assert!(
            resources.queues.len() >= 26,
            "12 handlers × (queue + DLQ) + 2 stream-failure queues"
        );
    }

    #[test]
    fn rules_route_by_pattern_to_their_queue() {
        let resources = resources();
        let rule = resources
            .rules
            .iter()
            .find(|r| r.name == "orderflow-local-delivery-on-order-placed")
            .unwrap();
        assert_eq!(rule.bus.as_deref(), Some("orderflow-local-bus"));
        let pattern: Json = serde_json::from_str(rule.event_pattern.as_deref().unwrap()).unwrap();
        assert_eq!(pattern["source"][0]["prefix"], "orderflow.");
        assert_eq!(pattern["detail-type"][0], "OrderPlaced");
        assert_eq!(rule.targets.len(), 1);
        assert_eq!(
            rule.targets[0].arn,
            "arn:aws:sqs:us-east-1:123456789012:orderflow-local-delivery-on-order-placed"
        );
        assert_eq!(rule.targets[0].max_retry_attempts, Some(10));
        assert_eq!(resources.buses[0].name, "orderflow-local-bus");
        assert_eq!(
            resources.topic("CustomerNotificationsTopic").unwrap().name,
            "orderflow-local-customer-notifications"
        );
    }

    #[test]
    fn the_environment_is_every_functions_variables_resolved() {
        let resources = resources();
        let env = &resources.environment;
        assert_eq!(env["EVENTS_TABLE"], "orderflow-local-events");
        assert_eq!(env["IDEMPOTENCY_TABLE"], "orderflow-local-idempotency");
        assert_eq!(env["VIEWS_TABLE"], "orderflow-local-views");
        assert_eq!(env["EVENT_BUS_NAME"], "orderflow-local-bus");
        assert_eq!(
            env["TOPIC_ARN"],
            "arn:aws:sns:us-east-1:123456789012:orderflow-local-customer-notifications"
        );
        assert_eq!(env["DELIVERY_SLA_HOURS"], "48");
        // Each stream reader's poison queue, under a name of its own: one env file serves both.
        for (variable, queue) in [
            (
                "PUBLISHER_POISON_QUEUE_URL",
                "orderflow-local-event-publisher-poison",
            ),
            (
                "PROJECTOR_POISON_QUEUE_URL",
                "orderflow-local-projector-poison",
            ),
        ] {
            assert!(
                env[variable].ends_with(&format!("/123456789012/{queue}")),
                "{variable}: {}",
                env[variable]
            );
            assert!(
                resources.queues.iter().any(|q| q.name == queue),
                "{queue} is created"
            );
        }
        assert!(
            resources
                .queues
                .iter()
                .any(|q| q.name == "orderflow-local-delivery-overdue-check-failures")
        );
        for kind in [
            "AWS::Logs::LogGroup",
            "AWS::CloudWatch::Dashboard",
            "AWS::EventSchemas::Registry",
            "AWS::EventSchemas::Schema",
        ] {
            assert!(
                resources.skipped.iter().any(|s| s.contains(kind)),
                "{kind}: {:?}",
                resources.skipped
            );
        }
        let dynamodb = BTreeMap::from([(
            "AWS_ENDPOINT_URL_DYNAMODB".to_owned(),
            "http://127.0.0.1:8000".to_owned(),
        )]);
        let file = env_file(env, "http://127.0.0.1:5000", &dynamodb, "us-east-1");
        assert!(file.contains("AWS_ENDPOINT_URL=http://127.0.0.1:5000\n"));
        assert!(file.contains("AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:8000\n"));
        assert!(file.contains("EVENTS_TABLE=orderflow-local-events\n"));
        assert!(file.lines().all(|l| l.split_once('=').is_some()));
    }

    #[test]
    fn the_user_pool_has_its_policy_groups_and_app_client() {
        let resources = resources();
        let [pool] = resources.user_pools.as_slice() else {
            panic!("one user pool: {:?}", resources.user_pools);
        };
        assert_eq!(pool.logical_id, "UserPool");
        assert_eq!(pool.name, "orderflow-local-users");
        assert_eq!(
            pool.password_policy,
            PasswordPolicySpec {
                minimum_length: Some(12),
                require_lowercase: Some(true),
                require_uppercase: Some(true),
                require_numbers: Some(true),
                require_symbols: Some(false),
                temporary_password_validity_days: None,
            }
        );
        assert_eq!(pool.admin_create_user_only, Some(true));
        assert_eq!(pool.username_case_sensitive, Some(false));
        let groups: Vec<&str> = pool.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(groups, ["couriers", "customers", "support"]);
        let [client] = pool.clients.as_slice() else {
            panic!("one app client: {:?}", pool.clients);
        };
        assert_eq!(client.name, "orderflow-local-api");
        assert!(!client.generate_secret);
        assert!(
            client
                .explicit_auth_flows
                .contains(&"ALLOW_ADMIN_USER_PASSWORD_AUTH".to_owned())
        );
        assert_eq!(client.access_token_validity, Some(60));
        assert_eq!(client.refresh_token_validity, Some(30));
        assert_eq!(
            client.token_validity_units,
            [
                Some("minutes".to_owned()),
                Some("minutes".to_owned()),
                Some("days".to_owned())
            ]
        );
        assert_eq!(
            client.prevent_user_existence_errors.as_deref(),
            Some("ENABLED")
        );
    }

    #[test]
    fn the_cognito_endpoint_is_its_own_variable_or_the_emulators() {
        let moto = "http://127.0.0.1:5000";
        assert_eq!(cognito_endpoint(&BTreeMap::new(), moto), moto);
        let own = BTreeMap::from([(
            COGNITO_ENDPOINT_VARIABLE.to_owned(),
            "http://127.0.0.1:7000/".to_owned(),
        )]);
        assert_eq!(cognito_endpoint(&own, moto), "http://127.0.0.1:7000");
    }

    #[test]
    fn two_functions_disagreeing_on_a_variable_is_an_error() {
        let template = Template::parse(
            r#"
Resources:
  A:
    Type: AWS::Serverless::Function
    Properties: {Environment: {Variables: {X: "1"}}}
  B:
    Type: AWS::Serverless::Function
    Properties: {Environment: {Variables: {X: "2"}}}
"#,
        )
        .unwrap();
        let error = environment(&Resolver::new(&template, local_env())).unwrap_err();
        assert!(error.to_string().contains("X="), "{error}");
    }
}
