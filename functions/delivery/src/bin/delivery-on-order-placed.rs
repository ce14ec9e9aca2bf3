//! `delivery-on-order-placed` Lambda entry point (SQS, fed by the `OrderPlaced` rule): only wiring.

use aws_lambda_events::event::sqs::SqsEvent;
use delivery::config::ReactionConfig;
use delivery::reactions::{ON_ORDER_PLACED, Reactions};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::adapters::clock::SystemClock;
use shared::adapters::dynamo::DynamoEventStore;
use shared::consumer::handle_sqs_batch;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = ReactionConfig::from_env()?;
    let aws = shared::adapters::sdk::load().await;
    let store = DynamoEventStore::reader(aws_sdk_dynamodb::Client::new(&aws), &config.events_table);
    let reactions = &Reactions {
        store: &store,
        clock: &SystemClock,
        sla: config.sla,
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(
            handle_sqs_batch(ON_ORDER_PLACED, &event.payload, |e| {
                reactions.on_order_placed(e)
            })
            .await,
        )
    }))
    .await
}
