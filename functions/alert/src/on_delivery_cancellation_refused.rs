//! `alert-on-delivery-cancellation-refused`: the order was cancelled after its delivery had left
//! (the race is resolved explicitly, with an event and an alert). The cancellation stands: a parcel
//! still on its way is recalled (its courier may no longer complete the delivery, only fail it, so
//! order and delivery agree nothing was delivered) and the customer is told it comes back; a parcel
//! delivered already cannot be undone, and the customer is told how to return it.

use domain::delivery::{DeliveryEvent, DeliveryStatus};
use domain::envelope::StoredEvent;
use domain::ports::Notification;
use lambda_glue::consumer::HandlerError;

use crate::config::NotifierConfig;
use crate::notify::{AlertDeps, NotificationHandler, misrouted, notification};

/// The function's name.
pub const NAME: &str = "alert-on-delivery-cancellation-refused";

/// The environment variables it reads.
pub const ENV_VARS: &[&str] = NotifierConfig::ENV_VARS;

/// The handler: `DeliveryCancellationRefused` → one notification.
pub const HANDLER: NotificationHandler = NotificationHandler {
    name: NAME,
    event_type: "DeliveryCancellationRefused",
    compose,
};

/// Handles one `DeliveryCancellationRefused`.
pub async fn handle(deps: &AlertDeps<'_>, event: StoredEvent) -> Result<(), HandlerError> {
    HANDLER.handle(deps, event).await
}

/// Where the parcel was when the cancellation arrived, as the customer reads it.
fn where_it_was(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Completed => "it had already been delivered",
        DeliveryStatus::Dispatched => "it was already on its way to you",
        DeliveryStatus::Scheduled | DeliveryStatus::Failed | DeliveryStatus::Cancelled => {
            "its delivery could no longer be changed"
        }
    }
}

fn compose(event: &StoredEvent) -> Result<Notification, HandlerError> {
    let DeliveryEvent::DeliveryCancellationRefused(refused) = event.decode::<DeliveryEvent>()?
    else {
        return Err(misrouted(NAME, HANDLER.event_type, event));
    };
    if refused.status == DeliveryStatus::Dispatched {
        return Ok(notification(
            event,
            &refused.customer_id,
            format!("Your order {} is on its way back", refused.order_id),
            format!(
                "Your order {} was cancelled while it was on its way to you: the courier brings \
                 the parcel back and nothing is charged.",
                refused.order_id
            ),
        ));
    }
    Ok(notification(
        event,
        &refused.customer_id,
        format!("Your order {} could not be stopped", refused.order_id),
        format!(
            "Your order {} was cancelled, but {}, so the delivery could not be stopped. \
             Please contact us if you wish to return it.",
            refused.order_id,
            where_it_was(refused.status)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{CUSTOMER, World, cancellation_refused};
    use testkit::lambda::bus_event_body;

    #[tokio::test]
    async fn the_customer_hears_the_parcel_comes_back_or_could_not_be_stopped() {
        let world = World::new();
        let event = cancellation_refused(DeliveryStatus::Dispatched);
        assert!(
            world
                .deliver(&HANDLER, &[bus_event_body(&event)])
                .await
                .is_empty()
        );
        let [sent] = world.notifier.sent().try_into().unwrap();
        assert_eq!(sent.subject, "Your order o-1001 is on its way back");
        assert!(
            sent.message.contains("brings the parcel back"),
            "{}",
            sent.message
        );
        for (status, why) in [(DeliveryStatus::Completed, "it had already been delivered")] {
            let world = World::new();
            let event = cancellation_refused(status);
            assert!(
                world
                    .deliver(&HANDLER, &[bus_event_body(&event)])
                    .await
                    .is_empty()
            );
            assert_eq!(
                world.notifier.sent(),
                [Notification {
                    event_type: "DeliveryCancellationRefused".into(),
                    customer_id: CUSTOMER.into(),
                    event_id: event.event_id,
                    subject: "Your order o-1001 could not be stopped".into(),
                    message: format!(
                        "Your order o-1001 was cancelled, but {why}, so the delivery could not \
                         be stopped. Please contact us if you wish to return it."
                    ),
                }]
            );
        }
    }
}
