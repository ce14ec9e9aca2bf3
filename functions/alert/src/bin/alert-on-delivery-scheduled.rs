//! `alert-on-delivery-scheduled` Lambda entry point: only wiring. The handler is [`alert::on_delivery_scheduled::handle`].

use alert::config::NotifierConfig;
use alert::notify::AlertDeps;
use alert::on_delivery_scheduled::{NAME, handle};
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::adapters::{clock::SystemClock, dynamo::DynamoIdempotencyStore, sns::SnsNotifier};
use shared::consumer::handle_sqs_batch;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = NotifierConfig::from_env()?;
    let aws = aws_config::load_from_env().await;
    let notifier = SnsNotifier::new(aws_sdk_sns::Client::new(&aws), &config.topic_arn);
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let idempotency = DynamoIdempotencyStore::new(dynamodb, &config.idempotency_table);
    let deps = &AlertDeps {
        notifier: &notifier,
        idempotency: &idempotency,
        clock: &SystemClock,
    };
    lambda_runtime::run(service_fn(move |e: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(handle_sqs_batch(NAME, &e.payload, |event| handle(deps, event)).await)
    }))
    .await
}
