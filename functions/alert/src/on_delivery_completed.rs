//! `alert-on-delivery-completed`: tells the customer their order has been delivered.

use domain::delivery::DeliveryEvent;
use domain::envelope::StoredEvent;
use domain::ports::Notification;
use lambda_glue::consumer::HandlerError;

use crate::config::NotifierConfig;
use crate::notify::{AlertDeps, NotificationHandler, misrouted, notification};

/// The function's name.
pub const NAME: &str = "alert-on-delivery-completed";

/// The environment variables it reads.
pub const ENV_VARS: &[&str] = NotifierConfig::ENV_VARS;

/// The handler: `DeliveryCompleted` → one notification.
pub const HANDLER: NotificationHandler = NotificationHandler {
    name: NAME,
    event_type: "DeliveryCompleted",
    compose,
};

/// Handles one `DeliveryCompleted`.
pub async fn handle(deps: &AlertDeps<'_>, event: StoredEvent) -> Result<(), HandlerError> {
    HANDLER.handle(deps, event).await
}

fn compose(event: &StoredEvent) -> Result<Notification, HandlerError> {
    let DeliveryEvent::DeliveryCompleted(completed) = event.decode::<DeliveryEvent>()? else {
        return Err(misrouted(NAME, HANDLER.event_type, event));
    };
    Ok(notification(
        event,
        &completed.customer_id,
        format!("Your order {} has been delivered", completed.order_id),
        format!(
            "Your order {} has been delivered. Thank you for shopping with us.",
            completed.order_id
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{CUSTOMER, World, delivery_completed};
    use testkit::lambda::bus_event_body;

    #[tokio::test]
    async fn the_customer_hears_that_the_order_arrived() {
        let world = World::new();
        let event = delivery_completed();
        assert!(
            world
                .deliver(&HANDLER, &[bus_event_body(&event)])
                .await
                .is_empty()
        );
        assert_eq!(
            world.notifier.sent(),
            [Notification {
                event_type: "DeliveryCompleted".into(),
                customer_id: CUSTOMER.into(),
                event_id: event.event_id,
                subject: "Your order o-1001 has been delivered".into(),
                message: "Your order o-1001 has been delivered. Thank you for shopping with us."
                    .into(),
            }]
        );
    }
}
