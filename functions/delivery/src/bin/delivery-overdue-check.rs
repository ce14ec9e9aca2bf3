//! `delivery-overdue-check` Lambda entry point (an EventBridge schedule): only wiring.

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use delivery::config::OverdueConfig;
use delivery::overdue::check_overdue;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::adapters::clock::SystemClock;
use shared::adapters::dynamo::DynamoEventStore;
use shared::adapters::dynamo_views::DynamoOrderViews;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = OverdueConfig::from_env()?;
    let aws = shared::adapters::sdk::load().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let store = DynamoEventStore::reader(dynamodb.clone(), &config.events_table);
    let board = DynamoOrderViews::new(dynamodb, &config.views_table);
    let (store, board) = (&store, &board);
    lambda_runtime::run(service_fn(
        move |_: LambdaEvent<CloudWatchEvent>| async move {
            // A board that cannot be read fails the run (the schedule's retries, then its DLQ).
            let checked = check_overdue(board, store, &SystemClock, config.extension).await?;
            Ok::<_, Error>(serde_json::json!({
                "overdue": checked.overdue,
                "marked": checked.marked,
                "unchanged": checked.unchanged,
                "failed": checked.failed,
            }))
        },
    ))
    .await
}
