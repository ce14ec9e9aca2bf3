//! `alert-on-order-cancelled`: tells the customer their order was cancelled and why, in words:
//! at their request, or because it could not be delivered. The courier's failure detail is free
//! text and stays out.

use domain::envelope::StoredEvent;
use domain::order::{CancellationReason, OrderEvent};
use domain::ports::Notification;
use lambda_glue::consumer::HandlerError;

use crate::config::NotifierConfig;
use crate::notify::{AlertDeps, NotificationHandler, misrouted, notification};

/// The function's name.
pub const NAME: &str = "alert-on-order-cancelled";

/// The environment variables it reads.
pub const ENV_VARS: &[&str] = NotifierConfig::ENV_VARS;

/// The handler: `OrderCancelled` → one notification.
pub const HANDLER: NotificationHandler = NotificationHandler {
    name: NAME,
    event_type: "OrderCancelled",
    compose,
};

/// Handles one `OrderCancelled`.
pub async fn handle(deps: &AlertDeps<'_>, event: StoredEvent) -> Result<(), HandlerError> {
    HANDLER.handle(deps, event).await
}

/// Why, as the customer reads it.
fn because(reason: &CancellationReason) -> &'static str {
    match reason {
        CancellationReason::CustomerRequest => "as you asked",
        CancellationReason::DeliveryFailed { .. } => "because we could not deliver it",
    }
}

fn compose(event: &StoredEvent) -> Result<Notification, HandlerError> {
    let OrderEvent::OrderCancelled(cancelled) = event.decode::<OrderEvent>()? else {
        return Err(misrouted(NAME, HANDLER.event_type, event));
    };
    Ok(notification(
        event,
        &cancelled.customer_id,
        format!("Your order {} has been cancelled", cancelled.order_id),
        format!(
            "Your order {} has been cancelled {}.",
            cancelled.order_id,
            because(&cancelled.reason)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{CUSTOMER, World, delivery_failed, order_cancelled};
    use testkit::lambda::bus_event_body;

    #[tokio::test]
    async fn the_customer_hears_the_reason_in_words() {
        for (reason, message) in [
            (
                CancellationReason::CustomerRequest,
                "Your order o-1001 has been cancelled as you asked.",
            ),
            (
                delivery_failed(),
                "Your order o-1001 has been cancelled because we could not deliver it.",
            ),
        ] {
            let world = World::new();
            let event = order_cancelled(reason);
            assert!(
                world
                    .deliver(&HANDLER, &[bus_event_body(&event)])
                    .await
                    .is_empty()
            );
            assert_eq!(
                world.notifier.sent(),
                [Notification {
                    event_type: "OrderCancelled".into(),
                    customer_id: CUSTOMER.into(),
                    event_id: event.event_id,
                    subject: "Your order o-1001 has been cancelled".into(),
                    message: message.into(),
                }]
            );
        }
    }
}
