//! `alert-on-order-placed` Lambda entry point: only wiring ([`alert::lambda::run_notifier`]). The notification
//! is composed by [`alert::on_order_placed`].

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    alert::lambda::run_notifier(alert::on_order_placed::HANDLER).await
}
