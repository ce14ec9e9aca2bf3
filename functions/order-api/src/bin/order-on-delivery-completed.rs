//! `order-on-delivery-completed` Lambda entry point (SQS, fed by its rule): only wiring.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use order_api::config::events_table_from_env;
use order_api::reactions::{ON_DELIVERY_COMPLETED, Reactions};
use shared::adapters::clock::SystemClock;
use shared::adapters::dynamo::DynamoEventStore;
use shared::consumer::handle_sqs_batch;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let events_table = events_table_from_env()?;
    let aws = shared::adapters::sdk::load().await;
    let store = DynamoEventStore::reader(aws_sdk_dynamodb::Client::new(&aws), events_table);
    let reactions = &Reactions {
        store: &store,
        clock: &SystemClock,
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(
            handle_sqs_batch(ON_DELIVERY_COMPLETED, &event.payload, |e| {
                reactions.react(ON_DELIVERY_COMPLETED, e)
            })
            .await,
        )
    }))
    .await
}
