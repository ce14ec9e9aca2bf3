//! What `orderflow-bridge run` plays, read from the template as plain data: the functions, the
//! HTTP routes, the SQS event source mappings (SAM `SQS` events), the DynamoDB stream mappings
//! (`AWS::Lambda::EventSourceMapping` resources and SAM `DynamoDB` events) and the schedules
//! (SAM `Schedule` events).

use std::time::Duration;

use serde_norway::Value;

use super::routes::{HttpRoute, RouteTable};
use super::schedule::parse_rate;
use super::stream_retry::RetryPolicy;
use super::template::{Resolver, TemplateError};

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
    /// The cargo binary that is its code (`Metadata.BuildProperties.Binary`): the name
    /// `cargo lambda watch` invokes it by.
    pub binary: String,
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

/// Everything the bridge plays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stack {
    /// Every function.
    pub functions: Vec<FunctionSpec>,
    /// The HTTP API.
    pub routes: RouteTable,
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
                        routes.push(http_route(&name, event_name, properties, &function)?)
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
        stack.routes = RouteTable::new(routes);
        Ok(stack)
    }
}

fn function_spec(resolver: &Resolver<'_>, id: &str) -> Result<FunctionSpec, TemplateError> {
    let template = resolver.template();
    let resource = template
        .resource(id)
        .ok_or_else(|| TemplateError::UnknownReference(id.to_owned()))?;
    let binary = resource
        .get("Metadata")
        .and_then(|m| m.get("BuildProperties"))
        .and_then(|b| b.get("Binary"))
        .and_then(Value::as_str)
        .ok_or_else(|| TemplateError::invalid(id, "no Metadata.BuildProperties.Binary"))?;
    let properties = template.properties(id);
    let name = match properties.get("FunctionName") {
        Some(name) => resolver.string(name)?,
        None => binary.to_owned(),
    };
    let timeout = seconds(properties.get("Timeout"))
        .or_else(|| seconds(template.function_global("Timeout")))
        .unwrap_or(Duration::from_secs(DEFAULT_TIMEOUT_SECONDS));
    Ok(FunctionSpec {
        logical_id: id.to_owned(),
        binary: binary.to_owned(),
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
                .find(|f| f.name == name || f.binary == name)
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
    use crate::bridge::template::Template;
    use crate::bridge::template::tests::{local_env, real_template};

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
            .map(|r| (r.function.binary.clone(), r.method.clone(), r.path.clone()))
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
        assert_eq!(found.route.function.binary, "courier-api");
        assert_eq!(found.parameters["id"], "d-o-1");
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
            .find(|q| q.function.binary == "delivery-on-order-placed")
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
    Metadata: {BuildProperties: {Binary: fn}}
    Properties:
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
                    s.function.binary.as_str(),
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
                    max_retry_attempts: Some(10),
                    max_record_age: Some(Duration::from_secs(3600)),
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
        assert_eq!(schedule.function.binary, "delivery-overdue-check");
        assert_eq!(schedule.period, Duration::from_secs(300));
        assert_eq!(schedule.max_retry_attempts, 2);
        assert_eq!(schedule.function.timeout, Duration::from_secs(60));
        let api = stack
            .functions
            .iter()
            .find(|f| f.binary == "order-api")
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
