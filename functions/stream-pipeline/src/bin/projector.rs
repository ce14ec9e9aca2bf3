//! `projector` Lambda entry point: only wiring. The handler is
//! [`stream_pipeline::projector::project_batch`].

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::adapters::dynamo::DynamoEventStore;
use shared::adapters::dynamo_views::DynamoOrderViews;
use shared::adapters::sqs::SqsDeadLetters;
use stream_pipeline::config::ProjectorConfig;
use stream_pipeline::projector::project_batch;
use stream_pipeline::{Deadline, StreamEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = ProjectorConfig::from_env()?;
    let aws = shared::adapters::sdk::load().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let store = DynamoEventStore::reader(dynamodb.clone(), &config.events_table);
    let views = DynamoOrderViews::new(dynamodb, &config.views_table);
    let poison = SqsDeadLetters::new(aws_sdk_sqs::Client::new(&aws), &config.poison_queue_url);
    let (store, views, poison) = (&store, &views, &poison);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<StreamEvent>| async move {
            let deadline = Deadline::of_invocation(event.context.deadline());
            Ok::<_, Error>(project_batch(store, views, poison, &event.payload, deadline).await)
        },
    ))
    .await
}
