//! `courier-api` Lambda entry point: only wiring. The handler is [`delivery::courier::App::handle`].

use std::convert::Infallible;
use std::sync::Arc;

use delivery::courier::config::Config;
use delivery::courier::{App, Settings};
use lambda_http::{Error, Request, service_fn};
use shared::adapters::clock::SystemClock;
use shared::adapters::dynamo::DynamoEventStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let aws = shared::adapters::sdk::load().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let app = App {
        store: Arc::new(DynamoEventStore::reader(dynamodb, &config.events_table)),
        clock: Arc::new(SystemClock),
        settings: Settings::default(),
    };
    let app = &app;
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, Infallible>(app.handle(request).await)
    }))
    .await
}
