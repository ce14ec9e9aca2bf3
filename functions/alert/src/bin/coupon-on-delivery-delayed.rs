//! `coupon-on-delivery-delayed` Lambda entry point: only wiring. The handler is
//! [`alert::coupon_on_delivery_delayed::handle`].

use alert::config::CouponConfig;
use alert::coupon_on_delivery_delayed::{CouponDeps, NAME, handle};
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::adapters::{clock::SystemClock, dynamo::DynamoEventStore};
use shared::consumer::handle_sqs_batch;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = CouponConfig::from_env()?;
    let aws = shared::adapters::sdk::load().await;
    // No idempotency table: the coupon's id is derived from the delay it compensates.
    let store = DynamoEventStore::reader(aws_sdk_dynamodb::Client::new(&aws), &config.events_table);
    let deps = &CouponDeps {
        store: &store,
        clock: &SystemClock,
    };
    lambda_runtime::run(service_fn(move |e: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(handle_sqs_batch(NAME, &e.payload, |event| handle(deps, event)).await)
    }))
    .await
}
