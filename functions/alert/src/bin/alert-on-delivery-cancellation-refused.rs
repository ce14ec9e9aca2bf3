//! `alert-on-delivery-cancellation-refused` Lambda entry point: only wiring ([`alert::lambda::run_notifier`]). The notification
//! is composed by [`alert::on_delivery_cancellation_refused`].

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    alert::lambda::run_notifier(alert::on_delivery_cancellation_refused::HANDLER).await
}
