//! # function-registry
//!
//! Every Lambda function of orderflow, once: its name (as in `template.yaml`), its trigger, the
//! environment it reads, the AWS services its role may reach, and how its handler is built from the
//! SDK configuration. Everything else reads this list:
//!
//! - the one `bootstrap` every function ships ([`run`], binary `orderflow-lambda`): Lambda gives
//!   it the function's `Handler` from `template.yaml` as `_HANDLER`, and it serves that function
//!   (one build, one link of the AWS SDKs, for all seventeen — docs/functions.md);
//! - the template test (`tests/support/template.rs`) checks `template.yaml` against it: names,
//!   triggers, environment, policies' services;
//! - the in-process saga harness (`tests/support/saga.rs`) builds its handlers from it.
//!
//! One handler convention per trigger kind ([`Handler`]): an HTTP function is an
//! [`HttpHandler`](lambda_glue::http::serve::HttpHandler), a queue's function an
//! [`EventHandler`](lambda_glue::consumer::EventHandler) (one event at a time; the batch around it is
//! the same for all), a stream reader a [`StreamHandler`](stream_pipeline::StreamHandler), a
//! scheduled function a [`ScheduledHandler`](lambda_glue::schedule::ScheduledHandler).
//!
//! Every invocation's metrics are written as CloudWatch Embedded Metric Format when it ends
//! ([`emf`], docs/metrics.md).

pub mod emf;

use std::convert::Infallible;
use std::sync::Arc;

use adapters::clock::SystemClock;
use adapters::dynamo::{DynamoEventStore, DynamoIdempotencyStore};
use adapters::dynamo_catalogue::DynamoCatalogue;
use adapters::dynamo_views::DynamoOrderViews;
use adapters::eventbridge::EventBridgePublisher;
use adapters::sns::SnsNotifier;
use adapters::sqs::SqsDeadLetters;
use aws_config::SdkConfig;
use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_glue::config::{ConfigError, Lookup};
use lambda_glue::consumer::{EventHandler, handle_queue_batch};
use lambda_glue::http::routes::RouteSpec;
use lambda_glue::http::serve::HttpHandler;
use lambda_glue::schedule::{ScheduledHandler, run_scheduled};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use stream_pipeline::{Deadline, StreamEvent, StreamHandler};

use crate::emf::Emf;

/// What starts a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// API Gateway HTTP API routes (payload v2), each behind the Cognito JWT authorizer.
    Http {
        /// The routes it answers.
        routes: &'static [RouteSpec],
    },
    /// Its own SQS queue, which the bus's rule for one event type fills.
    Queue {
        /// The event type (`detail-type`) its rule routes.
        event_type: &'static str,
    },
    /// The events table's stream.
    EventsStream,
    /// A schedule.
    Schedule,
}

/// An AWS service a function's role may reach (its policies' action prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    /// `dynamodb:` (tables, indexes and the events table's stream).
    DynamoDb,
    /// `events:` (the bus).
    EventBridge,
    /// `sns:` (the customer-notifications topic).
    Sns,
    /// `sqs:` (poison queues).
    Sqs,
}

impl Service {
    /// The IAM action prefix.
    pub fn action_prefix(self) -> &'static str {
        match self {
            Self::DynamoDb => "dynamodb",
            Self::EventBridge => "events",
            Self::Sns => "sns",
            Self::Sqs => "sqs",
        }
    }
}

/// A function's handler, by the kind of its trigger: the one convention of each kind.
#[derive(Clone)]
pub enum Handler {
    /// An HTTP function.
    Http(Arc<dyn HttpHandler>),
    /// A queue's function.
    Queue(Arc<dyn EventHandler>),
    /// A reader of the events table's stream.
    Stream(Arc<dyn StreamHandler>),
    /// A scheduled function.
    Schedule(Arc<dyn ScheduledHandler>),
}

/// What a handler is built from: the SDK configuration (one HTTP client shared by every client)
/// and the function's environment.
#[derive(Clone, Copy)]
pub struct Wiring<'a> {
    /// The SDK configuration.
    pub aws: &'a SdkConfig,
    /// The function's environment variables (the process environment, or a map in tests).
    pub lookup: Lookup<'a>,
}

/// One Lambda function.
#[derive(Clone, Copy)]
pub struct Function {
    /// Its name: its `Handler` and the suffix of its `FunctionName` in `template.yaml`.
    pub name: &'static str,
    /// What starts it.
    pub trigger: Trigger,
    /// Exactly the environment variables it reads.
    pub env_vars: &'static [&'static str],
    /// The AWS services its role may reach.
    pub services: &'static [Service],
    build: fn(&'static str, Wiring<'_>) -> Result<Handler, ConfigError>,
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Function")
            .field("name", &self.name)
            .field("trigger", &self.trigger)
            .field("env_vars", &self.env_vars)
            .field("services", &self.services)
            .finish_non_exhaustive()
    }
}

impl Function {
    /// Builds its handler: reads its configuration through `wiring.lookup` and its clients from
    /// `wiring.aws`. Only configuration can fail (a missing or invalid variable).
    pub fn handler(&self, wiring: Wiring<'_>) -> Result<Handler, ConfigError> {
        (self.build)(self.name, wiring)
    }
}

const DYNAMODB: &[Service] = &[Service::DynamoDb];
const NOTIFIER: &[Service] = &[Service::DynamoDb, Service::Sns];

/// A queue function of `event_type`, reading `env_vars`, built by `build`.
const fn queue(
    name: &'static str,
    event_type: &'static str,
    env_vars: &'static [&'static str],
    services: &'static [Service],
    build: fn(&'static str, Wiring<'_>) -> Result<Handler, ConfigError>,
) -> Function {
    Function {
        name,
        trigger: Trigger::Queue { event_type },
        env_vars,
        services,
        build,
    }
}

/// A notification function (the alert context's six).
const fn notifier(handler: alert::notify::NotificationHandler) -> Function {
    queue(
        handler.name,
        handler.event_type,
        alert::config::NotifierConfig::ENV_VARS,
        NOTIFIER,
        build_notifier,
    )
}

/// Every function, in `template.yaml`'s order.
pub const FUNCTIONS: &[Function] = &[
    Function {
        name: "order-api",
        trigger: Trigger::Http {
            routes: order_api::routes::ROUTES,
        },
        env_vars: order_api::config::ENV_VARS,
        services: DYNAMODB,
        build: build_order_api,
    },
    Function {
        name: "event-publisher",
        trigger: Trigger::EventsStream,
        env_vars: stream_pipeline::config::PublisherConfig::ENV_VARS,
        services: &[Service::DynamoDb, Service::EventBridge, Service::Sqs],
        build: build_publisher,
    },
    Function {
        name: "projector",
        trigger: Trigger::EventsStream,
        env_vars: stream_pipeline::config::ProjectorConfig::ENV_VARS,
        services: &[Service::DynamoDb, Service::Sqs],
        build: build_projector,
    },
    queue(
        order_api::reactions::ON_DELIVERY_DISPATCHED,
        "DeliveryDispatched",
        order_api::reactions::ENV_VARS,
        DYNAMODB,
        build_order_reaction,
    ),
    queue(
        order_api::reactions::ON_DELIVERY_COMPLETED,
        "DeliveryCompleted",
        order_api::reactions::ENV_VARS,
        DYNAMODB,
        build_order_reaction,
    ),
    queue(
        order_api::reactions::ON_DELIVERY_FAILED,
        "DeliveryFailed",
        order_api::reactions::ENV_VARS,
        DYNAMODB,
        build_order_reaction,
    ),
    queue(
        delivery::reactions::ON_ORDER_PLACED,
        "OrderPlaced",
        delivery::config::ReactionConfig::ENV_VARS,
        DYNAMODB,
        build_delivery_reaction,
    ),
    queue(
        delivery::reactions::ON_ORDER_CANCELLED,
        "OrderCancelled",
        delivery::config::ReactionConfig::ENV_VARS,
        DYNAMODB,
        build_delivery_reaction,
    ),
    notifier(alert::on_order_placed::HANDLER),
    notifier(alert::on_delivery_scheduled::HANDLER),
    notifier(alert::on_delivery_delayed::HANDLER),
    notifier(alert::on_delivery_completed::HANDLER),
    notifier(alert::on_order_cancelled::HANDLER),
    notifier(alert::on_delivery_cancellation_refused::HANDLER),
    queue(
        alert::coupon_on_delivery_delayed::NAME,
        alert::coupon_on_delivery_delayed::EVENT_TYPE,
        alert::coupon_on_delivery_delayed::ENV_VARS,
        DYNAMODB,
        build_coupon,
    ),
    Function {
        name: "courier-api",
        trigger: Trigger::Http {
            routes: delivery::courier::routes::ROUTES,
        },
        env_vars: delivery::courier::config::ENV_VARS,
        services: DYNAMODB,
        build: build_courier_api,
    },
    Function {
        name: delivery::overdue::NAME,
        trigger: Trigger::Schedule,
        env_vars: delivery::config::OverdueConfig::ENV_VARS,
        services: DYNAMODB,
        build: build_overdue_check,
    },
];

/// The function named `name`.
pub fn find(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// Why the bootstrap could not start serving.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Neither `_HANDLER` nor `AWS_LAMBDA_FUNCTION_NAME` names a function of the registry.
    #[error("no function is named {named:?} (from {source_var}); known: {known}")]
    UnknownFunction {
        /// What was asked for.
        named: String,
        /// Which variable named it.
        source_var: &'static str,
        /// The registry's names.
        known: String,
    },
    /// The function's configuration is missing or invalid.
    #[error("{function}: {error}")]
    Config {
        /// The function.
        function: &'static str,
        /// What is wrong.
        error: ConfigError,
    },
    /// The metrics recorder could not be installed.
    #[error(transparent)]
    Metrics(#[from] emf::InstallError),
}

/// The function this process serves: `_HANDLER` (Lambda, and the local stack's Lambda, set it to
/// the function's `Handler`), or, where that is unset or the runtimes' default `bootstrap`,
/// `AWS_LAMBDA_FUNCTION_NAME` (e.g. `cargo lambda watch`, which names a process by the function
/// it was invoked as).
pub fn selected(lookup: Lookup<'_>) -> Result<&'static Function, StartError> {
    let (named, source_var) = match lookup("_HANDLER").filter(|h| !h.is_empty() && h != "bootstrap")
    {
        Some(handler) => (handler, "_HANDLER"),
        None => (
            lookup("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default(),
            "AWS_LAMBDA_FUNCTION_NAME",
        ),
    };
    find(&named).ok_or_else(|| StartError::UnknownFunction {
        named,
        source_var,
        known: FUNCTIONS
            .iter()
            .map(|f| f.name)
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// The bootstrap: picks the function ([`selected`]), installs its metrics recorder, builds its
/// handler from the process environment and the SDK configuration, and serves it until the
/// runtime stops.
pub async fn run() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let function = selected(&lambda_glue::config::env)?;
    let metrics = keep(
        Emf::install(&emf::function_dimension(
            &lambda_glue::config::env,
            function.name,
        ))
        .map_err(StartError::from)?,
    );
    let aws = adapters::sdk::load().await;
    let handler = function
        .handler(Wiring {
            aws: &aws,
            lookup: &lambda_glue::config::env,
        })
        .map_err(|error| StartError::Config {
            function: function.name,
            error,
        })?;
    serve(handler, metrics).await
}

/// Serves `handler` as the Lambda runtime's handler of its trigger's event, writing each
/// invocation's metrics to stdout when it ends.
pub async fn serve(handler: Handler, metrics: &'static Emf) -> Result<(), Error> {
    match handler {
        Handler::Http(http) => {
            lambda_http::run(service_fn(move |request: lambda_http::Request| {
                let http = http.clone();
                async move {
                    let work = http.handle(request);
                    Ok::<_, Infallible>(metrics.invocation(work, &mut std::io::stdout()).await)
                }
            }))
            .await
        }
        Handler::Queue(queue) => {
            lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
                let queue = queue.clone();
                async move {
                    let work = handle_queue_batch(queue.as_ref(), &event.payload);
                    Ok::<_, Error>(metrics.invocation(work, &mut std::io::stdout()).await)
                }
            }))
            .await
        }
        Handler::Stream(stream) => {
            lambda_runtime::run(service_fn(move |event: LambdaEvent<StreamEvent>| {
                let stream = stream.clone();
                async move {
                    let deadline = Deadline::of_invocation(event.context.deadline());
                    let work = stream.handle(&event.payload, deadline);
                    Ok::<_, Error>(metrics.invocation(work, &mut std::io::stdout()).await)
                }
            }))
            .await
        }
        Handler::Schedule(scheduled) => {
            lambda_runtime::run(service_fn(move |_: LambdaEvent<CloudWatchEvent>| {
                let scheduled = scheduled.clone();
                async move {
                    let work = run_scheduled(scheduled.as_ref());
                    metrics
                        .invocation(work, &mut std::io::stdout())
                        .await
                        .map_err(Error::from)
                }
            }))
            .await
        }
    }
}

/// Keeps `value` for the rest of the process: a function's adapters are built once, in Lambda's
/// init phase, and live as long as it does; the handlers borrow them.
fn keep<T: Send + Sync + 'static>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

fn dynamodb(wiring: Wiring<'_>) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(wiring.aws)
}

fn build_order_api(_: &'static str, wiring: Wiring<'_>) -> Result<Handler, ConfigError> {
    let config = order_api::config::Config::from_lookup(wiring.lookup)?;
    let dynamodb = dynamodb(wiring);
    Ok(Handler::Http(Arc::new(order_api::App {
        store: Arc::new(DynamoEventStore::new(
            dynamodb.clone(),
            &config.events_table,
            &config.idempotency_table,
        )),
        idempotency: Arc::new(DynamoIdempotencyStore::new(
            dynamodb.clone(),
            &config.idempotency_table,
        )),
        views: Arc::new(DynamoOrderViews::new(dynamodb.clone(), &config.views_table)),
        catalogue: Arc::new(DynamoCatalogue::new(dynamodb, &config.catalogue_table)),
        clock: Arc::new(SystemClock),
        settings: config.settings,
    })))
}

fn build_courier_api(_: &'static str, wiring: Wiring<'_>) -> Result<Handler, ConfigError> {
    let config = delivery::courier::config::Config::from_lookup(wiring.lookup)?;
    Ok(Handler::Http(Arc::new(delivery::courier::App {
        store: Arc::new(DynamoEventStore::reader(
            dynamodb(wiring),
            &config.events_table,
        )),
        clock: Arc::new(SystemClock),
        settings: delivery::courier::Settings::default(),
    })))
}

fn build_publisher(_: &'static str, wiring: Wiring<'_>) -> Result<Handler, ConfigError> {
    let config = stream_pipeline::config::PublisherConfig::from_lookup(wiring.lookup)?;
    Ok(Handler::Stream(Arc::new(stream_pipeline::Publisher {
        bus: keep(EventBridgePublisher::new(
            aws_sdk_eventbridge::Client::new(wiring.aws),
            &config.event_bus_name,
        )),
        poison: keep(SqsDeadLetters::new(
            aws_sdk_sqs::Client::new(wiring.aws),
            &config.poison_queue_url,
        )),
    })))
}

fn build_projector(_: &'static str, wiring: Wiring<'_>) -> Result<Handler, ConfigError> {
    let config = stream_pipeline::config::ProjectorConfig::from_lookup(wiring.lookup)?;
    let dynamodb = dynamodb(wiring);
    Ok(Handler::Stream(Arc::new(stream_pipeline::Projector {
        store: keep(DynamoEventStore::reader(
            dynamodb.clone(),
            &config.events_table,
        )),
        views: keep(DynamoOrderViews::new(dynamodb, &config.views_table)),
        poison: keep(SqsDeadLetters::new(
            aws_sdk_sqs::Client::new(wiring.aws),
            &config.poison_queue_url,
        )),
    })))
}

fn build_order_reaction(name: &'static str, wiring: Wiring<'_>) -> Result<Handler, ConfigError> {
    let events_table = order_api::config::reactions_events_table(wiring.lookup)?;
    Ok(Handler::Queue(Arc::new(order_api::reactions::Reaction {
        name,
        reactions: order_api::reactions::Reactions {
            store: keep(DynamoEventStore::reader(dynamodb(wiring), events_table)),
            clock: &SystemClock,
        },
    })))
}

fn build_delivery_reaction(name: &'static str, wiring: Wiring<'_>) -> Result<Handler, ConfigError> {
    let config = delivery::config::ReactionConfig::from_lookup(wiring.lookup)?;
    Ok(Handler::Queue(Arc::new(delivery::reactions::Reaction {
        name,
        reactions: delivery::reactions::Reactions {
            store: keep(DynamoEventStore::reader(
                dynamodb(wiring),
                &config.events_table,
            )),
            clock: &SystemClock,
            sla: config.sla,
        },
    })))
}

fn build_notifier(name: &'static str, wiring: Wiring<'_>) -> Result<Handler, ConfigError> {
    let config = alert::config::NotifierConfig::from_lookup(wiring.lookup)?;
    let handler = alert::NOTIFICATION_HANDLERS
        .iter()
        .find(|h| h.name == name)
        .copied()
        .ok_or(ConfigError::Missing("a notification handler of this name"))?;
    Ok(Handler::Queue(Arc::new(
        alert::notify::NotificationFunction {
            handler,
            deps: alert::notify::AlertDeps {
                notifier: keep(SnsNotifier::new(
                    aws_sdk_sns::Client::new(wiring.aws),
                    &config.topic_arn,
                )),
                markers: keep(DynamoIdempotencyStore::new(
                    dynamodb(wiring),
                    &config.idempotency_table,
                )),
                clock: &SystemClock,
            },
        },
    )))
}

fn build_coupon(_: &'static str, wiring: Wiring<'_>) -> Result<Handler, ConfigError> {
    let config = alert::config::CouponConfig::from_lookup(wiring.lookup)?;
    // No idempotency table: the coupon's id is derived from the delay it compensates.
    Ok(Handler::Queue(Arc::new(
        alert::coupon_on_delivery_delayed::CouponDeps {
            store: keep(DynamoEventStore::reader(
                dynamodb(wiring),
                &config.events_table,
            )),
            clock: &SystemClock,
        },
    )))
}

fn build_overdue_check(_: &'static str, wiring: Wiring<'_>) -> Result<Handler, ConfigError> {
    let config = delivery::config::OverdueConfig::from_lookup(wiring.lookup)?;
    let dynamodb = dynamodb(wiring);
    Ok(Handler::Schedule(Arc::new(
        delivery::overdue::OverdueCheck {
            board: keep(DynamoOrderViews::new(dynamodb.clone(), &config.views_table)),
            store: keep(DynamoEventStore::reader(dynamodb, &config.events_table)),
            clock: &SystemClock,
            extension: config.extension,
        },
    )))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn lookup_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn names_are_unique_and_each_queue_function_is_the_one_of_its_event_type_and_name() {
        let names: BTreeSet<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
        assert_eq!(names.len(), FUNCTIONS.len());
        assert_eq!(FUNCTIONS.len(), 17);
        for function in FUNCTIONS {
            assert_eq!(find(function.name).map(|f| f.name), Some(function.name));
        }
    }

    #[test]
    fn the_handler_names_the_function_and_the_function_name_is_the_fallback() {
        let by_handler = lookup_of(&[
            ("_HANDLER", "projector"),
            ("AWS_LAMBDA_FUNCTION_NAME", "order-api"),
        ]);
        assert_eq!(
            selected(&by_handler).map(|f| f.name).ok(),
            Some("projector")
        );
        let by_name = lookup_of(&[
            ("_HANDLER", "bootstrap"),
            ("AWS_LAMBDA_FUNCTION_NAME", "courier-api"),
        ]);
        assert_eq!(selected(&by_name).map(|f| f.name).ok(), Some("courier-api"));
        let unknown = lookup_of(&[("_HANDLER", "orderflow-dev-order-api")]);
        let error = selected(&unknown)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("orderflow-dev-order-api"), "{error}");
        assert!(error.contains("_HANDLER"), "{error}");
        assert!(error.contains("event-publisher"), "{error}");
    }

    #[tokio::test]
    async fn every_function_builds_from_its_environment_and_names_what_is_missing() {
        let aws = SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        for function in FUNCTIONS {
            let env_vars = function.env_vars;
            // Every variable it reads, with a value each accepts.
            let full = move |name: &str| {
                env_vars.contains(&name).then(|| {
                    if name.ends_with("_HOURS") || name.ends_with("_SECONDS") {
                        "6".to_owned()
                    } else {
                        format!("{name}-value")
                    }
                })
            };
            let handler = function.handler(Wiring {
                aws: &aws,
                lookup: &full,
            });
            let kind_matches = matches!(
                (&handler, function.trigger),
                (Ok(Handler::Http(_)), Trigger::Http { .. })
                    | (Ok(Handler::Queue(_)), Trigger::Queue { .. })
                    | (Ok(Handler::Stream(_)), Trigger::EventsStream)
                    | (Ok(Handler::Schedule(_)), Trigger::Schedule)
            );
            assert!(kind_matches, "{}: {:?}", function.name, handler.err());
            if let Ok(Handler::Queue(queue)) = &handler {
                assert_eq!(queue.name(), function.name);
            }
            let empty = |_: &str| None;
            let missing = function.handler(Wiring {
                aws: &aws,
                lookup: &empty,
            });
            assert!(
                matches!(missing, Err(ConfigError::Missing(name)) if env_vars.contains(&name)),
                "{}: a missing variable is named",
                function.name
            );
        }
    }
}
