//! `alert-on-delivery-scheduled`: tells the customer by when their order will arrive — never
//! where to.

use domain::delivery::DeliveryEvent;
use domain::envelope::StoredEvent;
use domain::ports::Notification;
use lambda_glue::consumer::HandlerError;

use crate::config::NotifierConfig;
use crate::notify::{AlertDeps, NotificationHandler, misrouted, notification, when};

/// The function's name.
pub const NAME: &str = "alert-on-delivery-scheduled";

/// The environment variables it reads.
pub const ENV_VARS: &[&str] = NotifierConfig::ENV_VARS;

/// The handler: `DeliveryScheduled` → one notification.
pub const HANDLER: NotificationHandler = NotificationHandler {
    name: NAME,
    event_type: "DeliveryScheduled",
    compose,
};

/// Handles one `DeliveryScheduled`.
pub async fn handle(deps: &AlertDeps<'_>, event: StoredEvent) -> Result<(), HandlerError> {
    HANDLER.handle(deps, event).await
}

fn compose(event: &StoredEvent) -> Result<Notification, HandlerError> {
    let DeliveryEvent::DeliveryScheduled(scheduled) = event.decode::<DeliveryEvent>()? else {
        return Err(misrouted(NAME, HANDLER.event_type, event));
    };
    Ok(notification(
        event,
        &scheduled.customer_id,
        format!("Delivery scheduled for order {}", scheduled.order_id),
        format!(
            "The delivery of your order {} is scheduled: it will arrive by {}.",
            scheduled.order_id,
            when(scheduled.promised_by)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{CUSTOMER, World, delivery_scheduled};
    use testkit::lambda::bus_event_body;

    #[tokio::test]
    async fn the_customer_hears_the_promised_time() {
        let world = World::new();
        let event = delivery_scheduled();
        assert!(
            world
                .deliver(&HANDLER, &[bus_event_body(&event)])
                .await
                .is_empty()
        );
        assert_eq!(
            world.notifier.sent(),
            [Notification {
                event_type: "DeliveryScheduled".into(),
                customer_id: CUSTOMER.into(),
                event_id: event.event_id,
                subject: "Delivery scheduled for order o-1001".into(),
                message: "The delivery of your order o-1001 is scheduled: \
                          it will arrive by 2026-11-24 18:00 UTC."
                    .into(),
            }]
        );
    }
}
