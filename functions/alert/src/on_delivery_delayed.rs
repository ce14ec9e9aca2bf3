//! `alert-on-delivery-delayed`: tells the customer their delivery is late and the new estimated
//! arrival. The courier's reason is free text that may name people or places: it stays out.
//! (The compensation coupon is issued by [`crate::coupon_on_delivery_delayed`], fed by its own
//! queue.)

use domain::delivery::DeliveryEvent;
use domain::envelope::StoredEvent;
use domain::ports::Notification;
use lambda_glue::consumer::HandlerError;

use crate::config::NotifierConfig;
use crate::notify::{AlertDeps, NotificationHandler, misrouted, notification, when};

/// The function's name.
pub const NAME: &str = "alert-on-delivery-delayed";

/// The environment variables it reads.
pub const ENV_VARS: &[&str] = NotifierConfig::ENV_VARS;

/// The handler: `DeliveryDelayed` → one notification.
pub const HANDLER: NotificationHandler = NotificationHandler {
    name: NAME,
    event_type: "DeliveryDelayed",
    compose,
};

/// Handles one `DeliveryDelayed`.
pub async fn handle(deps: &AlertDeps<'_>, event: StoredEvent) -> Result<(), HandlerError> {
    HANDLER.handle(deps, event).await
}

fn compose(event: &StoredEvent) -> Result<Notification, HandlerError> {
    let DeliveryEvent::DeliveryDelayed(delayed) = event.decode::<DeliveryEvent>()? else {
        return Err(misrouted(NAME, HANDLER.event_type, event));
    };
    Ok(notification(
        event,
        &delayed.customer_id,
        format!("Your order {} is running late", delayed.order_id),
        format!(
            "We are sorry: the delivery of your order {} is running late. It was due by {}; \
             it is now expected by {}.",
            delayed.order_id,
            when(delayed.previous_eta),
            when(delayed.new_eta)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{World, delayed_fixture, delivery_delayed};
    use testkit::lambda::bus_event_body;

    #[tokio::test]
    async fn the_customer_hears_the_new_eta_from_the_real_sqs_event() {
        let world = World::new();
        assert!(
            world
                .deliver_batch(&HANDLER, &delayed_fixture())
                .await
                .is_empty()
        );
        assert_eq!(
            world.notifier.sent(),
            [Notification {
                event_type: "DeliveryDelayed".into(),
                customer_id: "cust-42".into(),
                event_id: "018f1c2e-7b3a-7000-8000-00000000e301".into(),
                subject: "Your order 018f1c2e-7b3a-7000-8000-0000000000a1 is running late".into(),
                message: "We are sorry: the delivery of your order \
                          018f1c2e-7b3a-7000-8000-0000000000a1 is running late. \
                          It was due by 2026-11-23 10:00 UTC; it is now expected by 2026-11-23 14:30 UTC."
                    .into(),
            }]
        );
    }

    #[tokio::test]
    async fn the_couriers_reason_is_never_passed_on() {
        let world = World::new();
        world
            .deliver(&HANDLER, &[bus_event_body(&delivery_delayed(1))])
            .await;
        let sent = &world.notifier.sent()[0];
        assert!(!sent.message.contains("Van") && !sent.message.contains("Invalidenstrasse"));
    }

    #[tokio::test]
    async fn each_delay_is_its_own_notification() {
        let world = World::new();
        let bodies = [1, 2].map(|n| bus_event_body(&delivery_delayed(n)));
        assert!(world.deliver(&HANDLER, &bodies).await.is_empty());
        assert!(world.deliver(&HANDLER, &bodies).await.is_empty());
        assert_eq!(world.notifier.sent().len(), 2);
    }
}
