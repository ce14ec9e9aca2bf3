//! What `orderflow-bridge run` plays, read from the template as plain data: the functions, the
//! HTTP routes with the authorization each requires, the HTTP API's JWT authorizers, the SQS event
//! source mappings (SAM `SQS` events), the DynamoDB stream mappings
//! (`AWS::Lambda::EventSourceMapping` resources and SAM `DynamoDB` events) and the schedules
//! (SAM `Schedule` events).
//!
//! A JWT authorizer's issuer and audience name the user pool and app client, whose ids the
//! emulator assigns when setup creates them: they stay [`Deferred`] here, and `run` fills them in
//! once it has found the ids by name ([`Stack::assigned`]).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_norway::Value;

use super::routes::{HttpRoute, RouteAuth, RouteTable};
use super::schedule::parse_rate;
use super::stream_retry::RetryPolicy;
use super::template::{Deferred, Resolver, TemplateError, assigned_by_emulator};

/// Lambda's default timeout when neither the function nor `Globals` set one.
const DEFAULT_TIMEOUT_SECONDS: u64 = 3;
/// SQS's default visibility timeout.
const DEFAULT_VISIBILITY_TIMEOUT_SECONDS: u64 = 30;
/// EventBridge's default retries for a target (a schedule's function).
const DEFAULT_SCHEDULE_RETRIES: u32 = 185;

/// A function: how to invoke it and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpec {
    /// Its logical id.
    pub logical_id: String,
    /// Its `Handler`: which function of the registry its bootstrap serves, and the name the local
    /// Invoke API knows it by.
    pub handler: String,
    /// Its `FunctionName`, resolved.
    pub name: String,
    /// Its `Timeout` (or the global one).
    pub timeout: Duration,
}

/// A queue, by logical id and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRef {
    /// Its logical id.
    pub logical_id: String,
    /// Its `QueueName`, resolved.
    pub name: String,
}

/// A function fed by a queue (a SAM `SQS` event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMapping {
    /// `Function.Event`, for logs.
    pub name: String,
    /// The function.
    pub function: FunctionSpec,
    /// The queue.
    pub queue: QueueRef,
    /// Messages per invoke (SQS default 10).
    pub batch_size: usize,
    /// How long to gather a batch.
    pub batching_window: Duration,
    /// `FunctionResponseTypes: [ReportBatchItemFailures]`.
    pub report_batch_item_failures: bool,
    /// The queue's `VisibilityTimeout`.
    pub visibility_timeout: Duration,
    /// `ScalingConfig.MaximumConcurrency`: how many batches of the queue may be in flight at once.
    pub max_concurrency: Option<usize>,
    /// `Enabled` (default true).
    pub enabled: bool,
}

/// Where a stream mapping starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartingPosition {
    /// The oldest record still in the stream.
    TrimHorizon,
    /// Only records written after the reader starts.
    Latest,
}

/// A function reading a table's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamMapping {
    /// The mapping's logical id (or `Function.Event`).
    pub name: String,
    /// The function.
    pub function: FunctionSpec,
    /// The table's logical id.
    pub table_logical_id: String,
    /// The table's name (its stream ARN is looked up at run time).
    pub table_name: String,
    /// Where to start.
    pub starting_position: StartingPosition,
    /// Records per invoke (default 100).
    pub batch_size: usize,
    /// How long to gather a batch (default 0).
    pub batching_window: Duration,
    /// Partial failures, bisection, retries and record age.
    pub policy: RetryPolicy,
    /// The `DestinationConfig.OnFailure` queue.
    pub on_failure: Option<QueueRef>,
    /// `Enabled` (default true).
    pub enabled: bool,
}

/// A function run on a schedule (a SAM `Schedule` event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleSpec {
    /// `Function.Event`.
    pub name: String,
    /// The function.
    pub function: FunctionSpec,
    /// The expression (`rate(5 minutes)`).
    pub expression: String,
    /// The period it means.
    pub period: Duration,
    /// `RetryPolicy.MaximumRetryAttempts` (EventBridge's default 185).
    pub max_retry_attempts: u32,
    /// `DeadLetterConfig.Arn`: where a run that failed every retry is sent.
    pub dead_letter: Option<QueueRef>,
    /// `Enabled` (default true).
    pub enabled: bool,
}

/// A JWT authorizer of an HTTP API (`Auth.Authorizers.<name>` with a `JwtConfiguration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtAuthorizerSpec {
    /// The API's logical id.
    pub api: String,
    /// Its name in the API's `Auth.Authorizers`.
    pub name: String,
    /// The header its `IdentitySource` (`$request.header.Authorization`) names, lower case.
    pub identity_header: String,
    /// `JwtConfiguration.issuer`.
    pub issuer: Deferred,
    /// `JwtConfiguration.audience`.
    pub audience: Vec<Deferred>,
}

impl JwtAuthorizerSpec {
    /// The logical ids whose emulator-assigned ids the issuer and audience need.
    pub fn needs(&self) -> std::collections::BTreeSet<&str> {
        let mut needs = self.issuer.needs();
        for audience in &self.audience {
            needs.extend(audience.needs());
        }
        needs
    }
}

/// A resource whose id the emulator assigns, and how `run` finds it: by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignedRef {
    /// A Cognito user pool.
    UserPool {
        /// Its logical id.
        logical_id: String,
        /// `UserPoolName`.
        name: String,
    },
    /// A user pool's app client.
    AppClient {
        /// Its logical id.
        logical_id: String,
        /// `ClientName`.
        name: String,
        /// Its pool's logical id.
        pool: String,
    },
}

impl AssignedRef {
    /// The logical id.
    pub fn logical_id(&self) -> &str {
        match self {
            Self::UserPool { logical_id, .. } | Self::AppClient { logical_id, .. } => logical_id,
        }
    }
}

/// Everything the bridge plays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stack {
    /// Every function.
    pub functions: Vec<FunctionSpec>,
    /// The HTTP API.
    pub routes: RouteTable,
    /// The JWT authorizers the routes use.
    pub authorizers: Vec<JwtAuthorizerSpec>,
    /// The resources whose ids the emulator assigns (user pools, app clients).
    pub assigned: Vec<AssignedRef>,
    /// SQS event source mappings.
    pub queues: Vec<QueueMapping>,
    /// DynamoDB stream mappings.
    pub streams: Vec<StreamMapping>,
    /// Schedules.
    pub schedules: Vec<ScheduleSpec>,
    /// What the template declares that the bridge does not play, in words.
    pub skipped: Vec<String>,
}

/// A whole number (YAML number or numeric string).
fn integer(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn seconds(value: Option<&Value>) -> Option<Duration> {
    integer(value)
        .and_then(|n| u64::try_from(n).ok())
        .map(Duration::from_secs)
}

fn boolean(value: Option<&Value>, default: bool) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => default,
    }
}

fn reports_item_failures(properties: &Value) -> bool {
    properties
        .get("FunctionResponseTypes")
        .and_then(Value::as_sequence)
        .is_some_and(|types| {
            types
                .iter()
                .any(|t| t.as_str() == Some("ReportBatchItemFailures"))
        })
}

impl Stack {
    /// Reads the stack from the template.
    pub fn from_template(resolver: &Resolver<'_>) -> Result<Self, TemplateError> {
        let template = resolver.template();
        let mut stack = Self::default();
        let mut routes = Vec::new();
        let mut apis: BTreeMap<String, ApiAuth> = BTreeMap::new();
        for (id, _) in template.of_type("AWS::Serverless::Function") {
            let function = function_spec(resolver, id)?;
            let events = template
                .properties(id)
                .get("Events")
                .and_then(Value::as_mapping);
            for (event_name, event) in events.into_iter().flatten() {
                let event_name = event_name.as_str().unwrap_or_default();
                let name = format!("{id}.{event_name}");
                let properties = event.get("Properties").unwrap_or(&Value::Null);
                match event.get("Type").and_then(Value::as_str) {
                    Some("HttpApi") => {
                        let mut route = http_route(&name, event_name, properties, &function)?;
                        route.auth = route_auth(resolver, &mut apis, &name, properties)?;
                        routes.push(route);
                    }
                    Some("SQS") => stack
                        .queues
                        .push(queue_mapping(resolver, &name, properties, &function)?),
                    Some("DynamoDB") => stack.streams.push(stream_mapping(
                        resolver,
                        &name,
                        properties,
                        properties.get("Stream"),
                        &function,
                    )?),
                    Some("Schedule") => match schedule(&name, properties, &function) {
                        Ok(mut schedule) => {
                            let dead_letter = properties.get("DeadLetterConfig");
                            match dead_letter.and_then(|d| d.get("Arn")) {
                                Some(arn) => {
                                    schedule.dead_letter =
                                        Some(queue_ref(resolver, &name, Some(arn))?);
                                }
                                None if dead_letter.is_some() => stack.skipped.push(format!(
                                    "{name}: the schedule's implicit dead-letter queue (SAM creates it on deploy)"
                                )),
                                None => {}
                            }
                            stack.schedules.push(schedule);
                        }
                        Err(reason) => stack.skipped.push(format!("{name}: {reason}")),
                    },
                    other => stack.skipped.push(format!(
                        "{name}: event type {other:?} is not played locally"
                    )),
                }
            }
            stack.functions.push(function);
        }
        for (id, mapping) in template.of_type("AWS::Lambda::EventSourceMapping") {
            let properties = mapping.get("Properties").unwrap_or(&Value::Null);
            let function = mapped_function(resolver, &stack.functions, id, properties)?;
            let source = properties.get("EventSourceArn");
            let is_table = source
                .and_then(Resolver::target)
                .is_some_and(|(target, _)| {
                    template.type_of(&target) == Some("AWS::DynamoDB::Table")
                });
            if is_table {
                stack
                    .streams
                    .push(stream_mapping(resolver, id, properties, source, &function)?);
            } else {
                stack.skipped.push(format!(
                    "{id}: only DynamoDB stream event source mappings are played locally"
                ));
            }
        }
        let used: std::collections::BTreeSet<(String, String)> = routes
            .iter()
            .filter_map(|r| r.auth.as_ref())
            .map(|a| (a.api.clone(), a.authorizer.clone()))
            .collect();
        stack.authorizers = apis
            .into_values()
            .flat_map(|api| api.authorizers.into_values())
            .filter_map(|authorizer| authorizer.jwt)
            .filter(|jwt| used.contains(&(jwt.api.clone(), jwt.name.clone())))
            .collect();
        stack.assigned = assigned_refs(resolver)?;
        stack.routes = RouteTable::new(routes);
        Ok(stack)
    }
}

/// One authorizer of an API, as routes refer to it.
#[derive(Debug, Clone)]
struct AuthorizerEntry {
    /// Its `AuthorizationScopes`: the scopes of routes that name none.
    default_scopes: Vec<String>,
    /// The JWT authorizer (`None`: a kind the bridge does not play, e.g. a Lambda authorizer).
    jwt: Option<JwtAuthorizerSpec>,
}

/// An HTTP API's `Auth`: its authorizers by name and its `DefaultAuthorizer`.
#[derive(Debug, Clone, Default)]
struct ApiAuth {
    default: Option<String>,
    authorizers: BTreeMap<String, AuthorizerEntry>,
}

fn strings(resolver: &Resolver<'_>, value: Option<&Value>) -> Result<Vec<String>, TemplateError> {
    value
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .map(|item| resolver.string(item))
        .collect()
}

/// SAM's `Auth` of an `AWS::Serverless::HttpApi`.
fn api_auth(resolver: &Resolver<'_>, api: &str) -> Result<ApiAuth, TemplateError> {
    let Some(auth) = resolver.template().properties(api).get("Auth") else {
        return Ok(ApiAuth::default());
    };
    let mut authorizers = BTreeMap::new();
    for (name, authorizer) in auth
        .get("Authorizers")
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
    {
        let name = name
            .as_str()
            .ok_or_else(|| TemplateError::invalid(api, "an authorizer name is not a string"))?;
        let owner = format!("{api}.Auth.Authorizers.{name}");
        let jwt = match authorizer.get("JwtConfiguration") {
            None => None,
            Some(configuration) => {
                let source = match authorizer.get("IdentitySource") {
                    Some(source) => resolver.string(source)?,
                    None => "$request.header.Authorization".to_owned(),
                };
                let header = source
                    .strip_prefix("$request.header.")
                    .filter(|h| !h.is_empty() && !h.contains(','))
                    .ok_or_else(|| {
                        TemplateError::invalid(
                            &owner,
                            format!("IdentitySource {source:?}: only one request header is played locally"),
                        )
                    })?;
                let issuer = configuration
                    .get("issuer")
                    .ok_or_else(|| TemplateError::invalid(&owner, "no JwtConfiguration.issuer"))?;
                Some(JwtAuthorizerSpec {
                    api: api.to_owned(),
                    name: name.to_owned(),
                    identity_header: header.to_ascii_lowercase(),
                    issuer: resolver.deferred(issuer)?,
                    audience: configuration
                        .get("audience")
                        .and_then(Value::as_sequence)
                        .into_iter()
                        .flatten()
                        .map(|a| resolver.deferred(a))
                        .collect::<Result<_, _>>()?,
                })
            }
        };
        authorizers.insert(
            name.to_owned(),
            AuthorizerEntry {
                default_scopes: strings(resolver, authorizer.get("AuthorizationScopes"))?,
                jwt,
            },
        );
    }
    Ok(ApiAuth {
        default: auth
            .get("DefaultAuthorizer")
            .map(|d| resolver.string(d))
            .transpose()?,
        authorizers,
    })
}

/// What an `HttpApi` event's route requires (SAM: the event's `Auth.Authorizer`, else the API's
/// `DefaultAuthorizer`; `NONE` opens the route; the event's `AuthorizationScopes`, else the
/// authorizer's). `None`: anyone may call it.
fn route_auth(
    resolver: &Resolver<'_>,
    apis: &mut BTreeMap<String, ApiAuth>,
    name: &str,
    properties: &Value,
) -> Result<Option<RouteAuth>, TemplateError> {
    let event_auth = properties.get("Auth");
    let named = event_auth
        .and_then(|a| a.get("Authorizer"))
        .map(|a| resolver.string(a))
        .transpose()?;
    let Some((api, _)) = properties.get("ApiId").and_then(Resolver::target) else {
        // The implicit API: no Auth of its own here.
        return match named.as_deref() {
            None | Some("NONE") => Ok(None),
            Some(other) => Err(TemplateError::invalid(
                name,
                format!("authorizer {other} on an event without an ApiId"),
            )),
        };
    };
    if !apis.contains_key(&api) {
        let auth = api_auth(resolver, &api)?;
        apis.insert(api.clone(), auth);
    }
    let api_auth = &apis[&api];
    let authorizer = match named {
        Some(named) if named == "NONE" => return Ok(None),
        Some(named) => named,
        None => match &api_auth.default {
            Some(default) => default.clone(),
            None => return Ok(None),
        },
    };
    let entry = api_auth.authorizers.get(&authorizer).ok_or_else(|| {
        TemplateError::invalid(
            name,
            format!("authorizer {authorizer} is not one of {api}'s Auth.Authorizers"),
        )
    })?;
    if entry.jwt.is_none() {
        return Err(TemplateError::invalid(
            name,
            format!("authorizer {authorizer}: only JWT authorizers are played locally"),
        ));
    }
    let scopes = match event_auth.and_then(|a| a.get("AuthorizationScopes")) {
        Some(scopes) => strings(resolver, Some(scopes))?,
        None => entry.default_scopes.clone(),
    };
    Ok(Some(RouteAuth {
        api,
        authorizer,
        scopes,
    }))
}

/// Every user pool and app client of the template, by name.
fn assigned_refs(resolver: &Resolver<'_>) -> Result<Vec<AssignedRef>, TemplateError> {
    let template = resolver.template();
    let mut refs = Vec::new();
    for (id, resource) in template.resources() {
        let kind = resource.get("Type").and_then(Value::as_str).unwrap_or("");
        if !assigned_by_emulator(kind) {
            continue;
        }
        let name = resolver.name_of(id)?;
        refs.push(match kind {
            "AWS::Cognito::UserPool" => AssignedRef::UserPool {
                logical_id: id.to_owned(),
                name,
            },
            _ => AssignedRef::AppClient {
                logical_id: id.to_owned(),
                name,
                pool: template
                    .properties(id)
                    .get("UserPoolId")
                    .and_then(Resolver::target)
                    .map(|(pool, _)| pool)
                    .ok_or_else(|| {
                        TemplateError::invalid(id, "UserPoolId is not a !Ref of a user pool")
                    })?,
            },
        });
    }
    Ok(refs)
}

fn function_spec(resolver: &Resolver<'_>, id: &str) -> Result<FunctionSpec, TemplateError> {
    let template = resolver.template();
    template
        .resource(id)
        .ok_or_else(|| TemplateError::UnknownReference(id.to_owned()))?;
    let properties = template.properties(id);
    let handler = properties
        .get("Handler")
        .and_then(Value::as_str)
        .ok_or_else(|| TemplateError::invalid(id, "no Handler"))?;
    let name = match properties.get("FunctionName") {
        Some(name) => resolver.string(name)?,
        None => handler.to_owned(),
    };
    let timeout = seconds(properties.get("Timeout"))
        .or_else(|| seconds(template.function_global("Timeout")))
        .unwrap_or(Duration::from_secs(DEFAULT_TIMEOUT_SECONDS));
    Ok(FunctionSpec {
        logical_id: id.to_owned(),
        handler: handler.to_owned(),
        name,
        timeout,
    })
}

fn http_route(
    name: &str,
    event_name: &str,
    properties: &Value,
    function: &FunctionSpec,
) -> Result<HttpRoute, TemplateError> {
    let method = properties
        .get("Method")
        .and_then(Value::as_str)
        .ok_or_else(|| TemplateError::invalid(name, "an HttpApi event without a Method"))?;
    let path = properties
        .get("Path")
        .and_then(Value::as_str)
        .ok_or_else(|| TemplateError::invalid(name, "an HttpApi event without a Path"))?;
    let method = match method.to_ascii_uppercase().as_str() {
        "X-AMAZON-APIGATEWAY-ANY-METHOD" => "ANY".to_owned(),
        other => other.to_owned(),
    };
    Ok(HttpRoute {
        event: event_name.to_owned(),
        method,
        path: path.to_owned(),
        function: function.clone(),
        auth: None,
    })
}

/// The queue a `!GetAtt Q.Arn` (or `!Ref Q`) names.
fn queue_ref(
    resolver: &Resolver<'_>,
    owner: &str,
    value: Option<&Value>,
) -> Result<QueueRef, TemplateError> {
    let (logical_id, _) = value.and_then(Resolver::target).ok_or_else(|| {
        TemplateError::invalid(
            owner,
            "the queue is not a !GetAtt/!Ref of a queue in the template",
        )
    })?;
    if resolver.template().type_of(&logical_id) != Some("AWS::SQS::Queue") {
        return Err(TemplateError::invalid(
            owner,
            format!("{logical_id} is not a queue"),
        ));
    }
    Ok(QueueRef {
        name: resolver.name_of(&logical_id)?,
        logical_id,
    })
}

fn queue_mapping(
    resolver: &Resolver<'_>,
    name: &str,
    properties: &Value,
    function: &FunctionSpec,
) -> Result<QueueMapping, TemplateError> {
    let queue = queue_ref(resolver, name, properties.get("Queue"))?;
    let visibility_timeout = seconds(
        resolver
            .template()
            .properties(&queue.logical_id)
            .get("VisibilityTimeout"),
    )
    .unwrap_or(Duration::from_secs(DEFAULT_VISIBILITY_TIMEOUT_SECONDS));
    Ok(QueueMapping {
        name: name.to_owned(),
        function: function.clone(),
        queue,
        batch_size: integer(properties.get("BatchSize"))
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n > 0)
            .unwrap_or(10),
        batching_window: seconds(properties.get("MaximumBatchingWindowInSeconds"))
            .unwrap_or_default(),
        report_batch_item_failures: reports_item_failures(properties),
        visibility_timeout,
        max_concurrency: integer(
            properties
                .get("ScalingConfig")
                .and_then(|c| c.get("MaximumConcurrency")),
        )
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| *n > 0),
        enabled: boolean(properties.get("Enabled"), true),
    })
}

/// The function an `AWS::Lambda::EventSourceMapping` invokes.
fn mapped_function(
    resolver: &Resolver<'_>,
    functions: &[FunctionSpec],
    id: &str,
    properties: &Value,
) -> Result<FunctionSpec, TemplateError> {
    let value = properties
        .get("FunctionName")
        .ok_or_else(|| TemplateError::invalid(id, "no FunctionName"))?;
    let found = match Resolver::target(value) {
        Some((target, _)) => functions.iter().find(|f| f.logical_id == target),
        None => {
            let name = resolver.string(value)?;
            functions
                .iter()
                .find(|f| f.name == name || f.handler == name)
        }
    };
    found
        .cloned()
        .ok_or_else(|| TemplateError::invalid(id, "FunctionName names no function of the template"))
}

fn stream_mapping(
    resolver: &Resolver<'_>,
    name: &str,
    properties: &Value,
    source: Option<&Value>,
    function: &FunctionSpec,
) -> Result<StreamMapping, TemplateError> {
    let (table_logical_id, attribute) = source.and_then(Resolver::target).ok_or_else(|| {
        TemplateError::invalid(name, "the stream is not a !GetAtt of a table's StreamArn")
    })?;
    if attribute.as_deref() != Some("StreamArn") {
        return Err(TemplateError::invalid(
            name,
            "the stream is not a !GetAtt of a table's StreamArn",
        ));
    }
    let starting_position = match properties.get("StartingPosition").and_then(Value::as_str) {
        Some("LATEST") => StartingPosition::Latest,
        Some("TRIM_HORIZON") | None => StartingPosition::TrimHorizon,
        Some(other) => {
            return Err(TemplateError::invalid(
                name,
                format!("StartingPosition {other}"),
            ));
        }
    };
    let on_failure = match properties
        .get("DestinationConfig")
        .and_then(|d| d.get("OnFailure"))
        .and_then(|o| o.get("Destination"))
    {
        Some(destination) => Some(queue_ref(resolver, name, Some(destination))?),
        None => None,
    };
    // -1 (the default) means "no limit".
    let limit = |key: &str| integer(properties.get(key)).and_then(|n| u64::try_from(n).ok());
    Ok(StreamMapping {
        name: name.to_owned(),
        function: function.clone(),
        table_name: resolver.name_of(&table_logical_id)?,
        table_logical_id,
        starting_position,
        batch_size: integer(properties.get("BatchSize"))
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n > 0)
            .unwrap_or(100),
        batching_window: seconds(properties.get("MaximumBatchingWindowInSeconds"))
            .unwrap_or_default(),
        policy: RetryPolicy {
            report_batch_item_failures: reports_item_failures(properties),
            bisect_on_function_error: boolean(properties.get("BisectBatchOnFunctionError"), false),
            max_retry_attempts: limit("MaximumRetryAttempts")
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
            max_record_age: limit("MaximumRecordAgeInSeconds").map(Duration::from_secs),
        },
        on_failure,
        enabled: boolean(properties.get("Enabled"), true),
    })
}

fn schedule(
    name: &str,
    properties: &Value,
    function: &FunctionSpec,
) -> Result<ScheduleSpec, String> {
    let expression = properties
        .get("Schedule")
        .and_then(Value::as_str)
        .ok_or("a Schedule event without a Schedule expression")?;
    let period = parse_rate(expression).map_err(|e| e.to_string())?;
    let max_retry_attempts = integer(
        properties
            .get("RetryPolicy")
            .and_then(|r| r.get("MaximumRetryAttempts")),
    )
    .and_then(|n| u32::try_from(n).ok())
    .unwrap_or(DEFAULT_SCHEDULE_RETRIES);
    Ok(ScheduleSpec {
        name: name.to_owned(),
        function: function.clone(),
        expression: expression.to_owned(),
        period,
        max_retry_attempts,
        dead_letter: None,
        enabled: boolean(properties.get("Enabled"), true)
            && properties.get("State").and_then(Value::as_str) != Some("DISABLED"),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::template::Template;
    use crate::template::tests::{local_env, real_template};

    fn stack() -> Stack {
        let template = real_template();
        let resolver = Resolver::new(&template, local_env());
        Stack::from_template(&resolver).unwrap()
    }

    #[test]
    fn every_http_api_event_of_the_template_is_a_route() {
        let stack = stack();
        let routes: BTreeSet<(String, String, String)> = stack
            .routes
            .routes()
            .iter()
            .map(|r| (r.function.handler.clone(), r.method.clone(), r.path.clone()))
            .collect();
        let expected: BTreeSet<(String, String, String)> = [
            ("order-api", "POST", "/orders"),
            ("order-api", "GET", "/orders/{id}"),
            ("order-api", "POST", "/orders/{id}/cancel"),
            ("order-api", "GET", "/orders/{id}/events"),
            ("order-api", "GET", "/customers/{id}/orders"),
            ("courier-api", "GET", "/deliveries/{id}"),
            ("courier-api", "POST", "/deliveries/{id}/dispatch"),
            ("courier-api", "POST", "/deliveries/{id}/delay"),
            ("courier-api", "POST", "/deliveries/{id}/complete"),
            ("courier-api", "POST", "/deliveries/{id}/fail"),
        ]
        .into_iter()
        .map(|(b, m, p)| (b.to_owned(), m.to_owned(), p.to_owned()))
        .collect();
        assert_eq!(routes, expected);
        let found = stack
            .routes
            .find("POST", "/deliveries/d-o-1/delay")
            .unwrap();
        assert_eq!(found.route.function.handler, "courier-api");
        assert_eq!(found.parameters["id"], "d-o-1");
    }

    #[test]
    fn every_route_requires_a_cognito_access_token_with_the_admin_scope() {
        let stack = stack();
        for route in stack.routes.routes() {
            assert_eq!(
                route.auth,
                Some(RouteAuth {
                    api: "HttpApi".into(),
                    authorizer: "CognitoJwt".into(),
                    scopes: vec!["aws.cognito.signin.user.admin".into()],
                }),
                "{}",
                route.route_key()
            );
        }
        let [authorizer] = stack.authorizers.as_slice() else {
            panic!("one authorizer: {:?}", stack.authorizers);
        };
        assert_eq!(authorizer.name, "CognitoJwt");
        assert_eq!(authorizer.identity_header, "authorization");
        assert_eq!(
            authorizer.needs(),
            std::collections::BTreeSet::from(["UserPool", "UserPoolClient"])
        );
        let ids = BTreeMap::from([
            ("UserPool".to_owned(), "us-east-1_pool".to_owned()),
            ("UserPoolClient".to_owned(), "client-1".to_owned()),
        ]);
        assert_eq!(
            authorizer.issuer.fill(&ids).unwrap(),
            "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pool"
        );
        let audience: Vec<String> = authorizer
            .audience
            .iter()
            .map(|a| a.fill(&ids).unwrap())
            .collect();
        assert_eq!(audience, ["client-1"]);
        assert_eq!(
            stack.assigned,
            [
                AssignedRef::UserPool {
                    logical_id: "UserPool".into(),
                    name: "orderflow-local-users".into(),
                },
                AssignedRef::AppClient {
                    logical_id: "UserPoolClient".into(),
                    name: "orderflow-local-api".into(),
                    pool: "UserPool".into(),
                },
            ]
        );
        // The names identity.rs looks the pool and client up by are the template's.
        assert_eq!(
            stack.assigned[0],
            AssignedRef::UserPool {
                logical_id: "UserPool".into(),
                name: crate::identity::pool_name("local"),
            }
        );
        assert_eq!(
            stack.assigned[1],
            AssignedRef::AppClient {
                logical_id: "UserPoolClient".into(),
                name: crate::identity::client_name("local"),
                pool: "UserPool".into(),
            }
        );
    }

    const AUTH: &str = r#"
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Jwt
        Authorizers:
          Jwt:
            IdentitySource: $request.header.X-Token
            AuthorizationScopes: [read]
            JwtConfiguration: {issuer: "https://issuer.example", audience: [a, b]}
          Unused:
            JwtConfiguration: {issuer: "https://other.example", audience: [c]}
  Fn:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: orderflow-lambda}}
    Properties:
      Handler: fn
      Events:
        Defaulted:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: GET, Path: /a}
        Scoped:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Method: GET
            Path: /b
            Auth: {Authorizer: Jwt, AuthorizationScopes: [write, admin]}
        Open:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: GET, Path: /c, Auth: {Authorizer: NONE}}
"#;

    #[test]
    fn routes_take_the_default_authorizer_its_scopes_or_their_own_and_none_opts_out() {
        let template = Template::parse(AUTH).unwrap();
        let stack = Stack::from_template(&Resolver::new(&template, local_env())).unwrap();
        let auth = |path: &str| stack.routes.find("GET", path).unwrap().route.auth.clone();
        let jwt = |scopes: &[&str]| {
            Some(RouteAuth {
                api: "Api".into(),
                authorizer: "Jwt".into(),
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            })
        };
        assert_eq!(auth("/a"), jwt(&["read"]));
        assert_eq!(auth("/b"), jwt(&["write", "admin"]));
        assert_eq!(auth("/c"), None);
        let names: Vec<&str> = stack.authorizers.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["Jwt"], "only the authorizers routes use");
        assert_eq!(stack.authorizers[0].identity_header, "x-token");
        assert!(stack.authorizers[0].needs().is_empty());
        assert!(stack.assigned.is_empty());
    }

    #[test]
    fn an_unknown_or_unplayable_authorizer_is_an_error() {
        let unknown = AUTH.replace("Authorizer: Jwt,", "Authorizer: Nope,");
        let template = Template::parse(&unknown).unwrap();
        let error = Stack::from_template(&Resolver::new(&template, local_env())).unwrap_err();
        assert!(error.to_string().contains("Nope"), "{error}");
        let lambda = AUTH.replace(
            "JwtConfiguration: {issuer: \"https://issuer.example\", audience: [a, b]}",
            "FunctionArn: arn:aws:lambda:us-east-1:123456789012:function:auth",
        );
        let template = Template::parse(&lambda).unwrap();
        let error = Stack::from_template(&Resolver::new(&template, local_env())).unwrap_err();
        assert!(error.to_string().contains("only JWT"), "{error}");
    }

    #[test]
    fn every_sqs_fed_function_has_its_queue_batch_and_partial_failures() {
        let stack = stack();
        let template = real_template();
        let mut sqs_fed = BTreeSet::new();
        for (id, function) in template.of_type("AWS::Serverless::Function") {
            let events = function["Properties"]["Events"].as_mapping();
            if events
                .into_iter()
                .flatten()
                .any(|(_, e)| e["Type"].as_str() == Some("SQS"))
            {
                sqs_fed.insert(id.to_owned());
            }
        }
        let mapped: BTreeSet<String> = stack
            .queues
            .iter()
            .map(|q| q.function.logical_id.clone())
            .collect();
        assert_eq!(mapped, sqs_fed);
        assert_eq!(stack.queues.len(), 12);
        for mapping in &stack.queues {
            assert_eq!(mapping.batch_size, 10, "{}", mapping.name);
            assert_eq!(mapping.batching_window, Duration::ZERO);
            assert!(mapping.report_batch_item_failures, "{}", mapping.name);
            assert_eq!(mapping.visibility_timeout, Duration::from_secs(60));
            assert!(mapping.queue.name.starts_with("orderflow-local-"));
            assert!(!mapping.queue.name.ends_with("-dlq"));
        }
        let placed = stack
            .queues
            .iter()
            .find(|q| q.function.handler == "delivery-on-order-placed")
            .unwrap();
        assert_eq!(
            placed.queue.name,
            "orderflow-local-delivery-on-order-placed"
        );
        assert_eq!(placed.queue.logical_id, "DeliveryOnOrderPlacedQueue");
    }

    #[test]
    fn a_queue_mappings_scaling_config_bounds_its_batches_in_flight() {
        let template = Template::parse(
            r#"
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties: {QueueName: q}
  Fn:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: orderflow-lambda}}
    Properties:
      Handler: fn
      Events:
        Capped:
          Type: SQS
          Properties:
            Queue: !GetAtt Queue.Arn
            ScalingConfig: {MaximumConcurrency: 3}
        Uncapped:
          Type: SQS
          Properties: {Queue: !GetAtt Queue.Arn}
"#,
        )
        .unwrap();
        let stack = Stack::from_template(&Resolver::new(&template, local_env())).unwrap();
        let concurrency: BTreeSet<(String, Option<usize>)> = stack
            .queues
            .iter()
            .map(|q| (q.name.clone(), q.max_concurrency))
            .collect();
        assert_eq!(
            concurrency,
            BTreeSet::from([
                ("Fn.Capped".to_owned(), Some(3)),
                ("Fn.Uncapped".to_owned(), None)
            ])
        );
    }

    #[test]
    fn the_two_stream_mappings_carry_their_failure_handling() {
        let stack = stack();
        let mut readers: Vec<(&str, &str)> = stack
            .streams
            .iter()
            .map(|s| {
                (
                    s.function.handler.as_str(),
                    s.on_failure.as_ref().map_or("", |q| q.name.as_str()),
                )
            })
            .collect();
        readers.sort_unstable();
        assert_eq!(
            readers,
            [
                (
                    "event-publisher",
                    "orderflow-local-event-publisher-stream-failures"
                ),
                ("projector", "orderflow-local-projector-stream-failures"),
            ]
        );
        for mapping in &stack.streams {
            assert_eq!(mapping.table_name, "orderflow-local-events");
            assert_eq!(mapping.starting_position, StartingPosition::TrimHorizon);
            assert_eq!(mapping.batch_size, 100);
            assert_eq!(mapping.batching_window, Duration::ZERO);
            assert_eq!(
                mapping.policy,
                RetryPolicy {
                    report_batch_item_failures: true,
                    bisect_on_function_error: true,
                    // MaximumRetryAttempts: -1 is no count limit; the record-age budget is 6 h.
                    max_retry_attempts: None,
                    max_record_age: Some(Duration::from_secs(6 * 3600)),
                }
            );
            assert!(mapping.enabled);
        }
    }

    #[test]
    fn the_overdue_check_runs_every_five_minutes_and_timeouts_come_from_the_template() {
        let stack = stack();
        assert_eq!(stack.schedules.len(), 1);
        let schedule = &stack.schedules[0];
        assert_eq!(schedule.function.handler, "delivery-overdue-check");
        assert_eq!(schedule.period, Duration::from_secs(300));
        assert_eq!(schedule.max_retry_attempts, 2);
        assert_eq!(schedule.function.timeout, Duration::from_secs(60));
        let api = stack
            .functions
            .iter()
            .find(|f| f.handler == "order-api")
            .unwrap();
        assert_eq!(
            api.timeout,
            Duration::from_secs(10),
            "Globals.Function.Timeout"
        );
        assert_eq!(api.name, "orderflow-local-order-api");
        // The schedule's dead-letter queue, when the template names one.
        let template = real_template();
        let declared = template
            .properties("DeliveryOverdueCheckFunction")
            .get("Events")
            .and_then(|e| e.get("Every5Minutes"))
            .and_then(|e| e.get("Properties"))
            .and_then(|p| p.get("DeadLetterConfig"))
            .and_then(|d| d.get("Arn"))
            .and_then(Resolver::target);
        assert_eq!(
            schedule.dead_letter.as_ref().map(|q| q.logical_id.clone()),
            declared.map(|(id, _)| id)
        );
    }
}
