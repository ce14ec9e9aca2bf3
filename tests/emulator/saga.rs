//! The choreography saga on the emulator, in process: the saga's scenarios
//! (`integration_tests::scenarios`, which the end-to-end suite runs over HTTP through real
//! processes) on what template.yaml describes — bus → rule → SQS → handler → events table →
//! stream → publisher → bus … — with the local bridge's own pollers invoking the registry's
//! functions in this process, and an SQS queue subscribed to the SNS topic observing the customer
//! notifications (see `integration_tests::saga`).

use integration_tests::emulator;
use integration_tests::saga::Saga;
use integration_tests::scenarios;

/// Every queue function and both stream readers of the registry, on a stage of the test's own.
async fn saga(test: &str) -> Saga {
    Saga::new(emulator().await, test).await
}

#[tokio::test]
async fn happy_path_placed_scheduled_dispatched_completed() {
    let mut saga = saga("saga-happy").await;
    scenarios::happy_path(&mut saga).await;
    assert!(saga.invocations() > 0, "the functions ran in process");
}

#[tokio::test]
async fn a_delay_delivered_three_times_issues_one_coupon_and_one_notification() {
    scenarios::a_delay_delivered_three_times(&mut saga("saga-delay").await).await;
}

#[tokio::test]
async fn a_failed_delivery_cancels_the_order_and_the_customer_hears_of_it() {
    scenarios::a_failed_delivery(&mut saga("saga-fail").await).await;
}

#[tokio::test]
async fn a_cancel_before_dispatch_cancels_the_delivery() {
    scenarios::a_cancel_before_dispatch(&mut saga("saga-cancel").await).await;
}

#[tokio::test]
async fn a_cancel_racing_the_dispatch_is_resolved_explicitly_with_an_alert() {
    scenarios::a_cancel_racing_the_dispatch(&mut saga("saga-race").await).await;
}

#[tokio::test]
async fn a_poison_message_ends_in_its_handlers_dlq_while_its_batch_mates_succeed() {
    let mut saga = saga("saga-poison").await;
    scenarios::a_poison_message(&mut saga).await;
    let handler = delivery::reactions::ON_ORDER_PLACED;
    assert_eq!(
        saga.queues[handler].max_receive_count, 5,
        "the template's redrive policy"
    );
}
