//! `alert-on-delivery-delayed` Lambda entry point: only wiring ([`alert::lambda::run_notifier`]). The notification
//! is composed by [`alert::on_delivery_delayed`].

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    alert::lambda::run_notifier(alert::on_delivery_delayed::HANDLER).await
}
