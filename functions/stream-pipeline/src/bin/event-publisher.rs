//! `event-publisher` Lambda entry point: only wiring. The handler is
//! [`stream_pipeline::publisher::publish_batch`].

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::adapters::eventbridge::EventBridgePublisher;
use shared::adapters::sqs::SqsDeadLetters;
use stream_pipeline::config::PublisherConfig;
use stream_pipeline::publisher::publish_batch;
use stream_pipeline::{Deadline, StreamEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = PublisherConfig::from_env()?;
    let aws = shared::adapters::sdk::load().await;
    let publisher = EventBridgePublisher::new(
        aws_sdk_eventbridge::Client::new(&aws),
        &config.event_bus_name,
    );
    let poison = SqsDeadLetters::new(aws_sdk_sqs::Client::new(&aws), &config.poison_queue_url);
    let (publisher, poison) = (&publisher, &poison);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<StreamEvent>| async move {
            let deadline = Deadline::of_invocation(event.context.deadline());
            Ok::<_, Error>(publish_batch(publisher, poison, &event.payload, deadline).await)
        },
    ))
    .await
}
