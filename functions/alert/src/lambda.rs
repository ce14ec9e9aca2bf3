//! The Lambda wiring every notification function shares: configuration from the environment
//! ([`NotifierConfig`]), the SNS notifier and the markers table, and each SQS batch through
//! [`handle_sqs_batch_concurrently`] (a notification mostly waits on DynamoDB and SNS: up to
//! [`NOTIFICATIONS_AT_ONCE`] of a batch's events at once, one event's copies one after another).
//! Each `alert-on-…` binary is one call to [`run_notifier`].

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::adapters::{clock::SystemClock, dynamo::DynamoIdempotencyStore, sns::SnsNotifier};
use shared::consumer::handle_sqs_batch_concurrently;

use crate::config::NotifierConfig;
use crate::notify::{AlertDeps, NotificationHandler};

/// How many of a batch's events a notification function handles at once.
pub const NOTIFICATIONS_AT_ONCE: usize = 5;

/// Runs `handler` as its Lambda function until the runtime stops it.
pub async fn run_notifier(handler: NotificationHandler) -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = NotifierConfig::from_env()?;
    let aws = shared::adapters::sdk::load().await;
    let notifier = SnsNotifier::new(aws_sdk_sns::Client::new(&aws), &config.topic_arn);
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let idempotency = DynamoIdempotencyStore::new(dynamodb, &config.idempotency_table);
    let deps = &AlertDeps {
        notifier: &notifier,
        markers: &idempotency,
        clock: &SystemClock,
    };
    lambda_runtime::run(service_fn(move |e: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(
            handle_sqs_batch_concurrently(
                handler.name,
                &e.payload,
                NOTIFICATIONS_AT_ONCE,
                |event| handler.handle(deps, event),
            )
            .await,
        )
    }))
    .await
}
