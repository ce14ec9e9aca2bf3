//! `alert-on-order-cancelled` Lambda entry point: only wiring ([`alert::lambda::run_notifier`]). The notification
//! is composed by [`alert::on_order_cancelled`].

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    alert::lambda::run_notifier(alert::on_order_cancelled::HANDLER).await
}
