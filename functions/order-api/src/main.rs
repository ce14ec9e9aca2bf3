//! `order-api` Lambda entry point: only wiring. The handler is [`order_api::App::handle`].

use std::convert::Infallible;
use std::sync::Arc;

use lambda_http::{Error, Request, service_fn};
use order_api::App;
use order_api::config::Config;
use shared::adapters::clock::SystemClock;
use shared::adapters::dynamo::{DynamoEventStore, DynamoIdempotencyStore};
use shared::adapters::dynamo_catalogue::DynamoCatalogue;
use shared::adapters::dynamo_views::DynamoOrderViews;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let aws = shared::adapters::sdk::load().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let app = App {
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
    };
    let app = &app;
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, Infallible>(app.handle(request).await)
    }))
    .await
}
