//! `alert-on-order-placed`: tells the customer their order was received — its id, how many items
//! and the total, never the delivery address.

use domain::envelope::StoredEvent;
use domain::money::Money;
use domain::order::OrderEvent;
use domain::ports::Notification;
use lambda_glue::consumer::HandlerError;

use crate::config::NotifierConfig;
use crate::notify::{AlertDeps, NotificationHandler, misrouted, notification};

/// The function's name.
pub const NAME: &str = "alert-on-order-placed";

/// The environment variables it reads.
pub const ENV_VARS: &[&str] = NotifierConfig::ENV_VARS;

/// The handler: `OrderPlaced` → one notification.
pub const HANDLER: NotificationHandler = NotificationHandler {
    name: NAME,
    event_type: "OrderPlaced",
    compose,
};

/// Handles one `OrderPlaced`.
pub async fn handle(deps: &AlertDeps<'_>, event: StoredEvent) -> Result<(), HandlerError> {
    HANDLER.handle(deps, event).await
}

fn compose(event: &StoredEvent) -> Result<Notification, HandlerError> {
    let OrderEvent::OrderPlaced(placed) = event.decode::<OrderEvent>()? else {
        return Err(misrouted(NAME, HANDLER.event_type, event));
    };
    let units: u64 = placed
        .items
        .iter()
        .map(|item| u64::from(item.quantity.get()))
        .sum();
    let items = if units == 1 {
        "1 item".to_owned()
    } else {
        format!("{units} items")
    };
    let total = Money {
        amount: placed.total,
        currency: placed.currency,
    };
    Ok(notification(
        event,
        &placed.customer_id,
        format!("We received your order {}", placed.order_id),
        format!(
            "Thank you for your order {}: {items}, {total} in total. \
             We will let you know when its delivery is scheduled.",
            placed.order_id
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{CUSTOMER, World, order_placed};
    use testkit::lambda::bus_event_body;

    #[tokio::test]
    async fn the_customer_hears_the_order_id_the_items_and_the_exact_total() {
        let world = World::new();
        let event = order_placed();
        assert!(
            world
                .deliver(&HANDLER, &[bus_event_body(&event)])
                .await
                .is_empty()
        );
        assert_eq!(
            world.notifier.sent(),
            [Notification {
                event_type: "OrderPlaced".into(),
                customer_id: CUSTOMER.into(),
                event_id: event.event_id,
                subject: "We received your order o-1001".into(),
                message: "Thank you for your order o-1001: 5 items, 30.97 EUR in total. \
                          We will let you know when its delivery is scheduled."
                    .into(),
            }]
        );
    }

    #[test]
    fn one_unit_is_one_item_and_yen_have_no_decimals() {
        let mut event = order_placed();
        event.data["items"] =
            serde_json::json!([{"sku": "ramen", "quantity": 1, "unit_price": 980}]);
        event.data["total"] = serde_json::json!(980);
        event.data["currency"] = serde_json::json!("JPY");
        let sent = compose(&event).unwrap();
        assert!(
            sent.message.contains(": 1 item, 980 JPY in total."),
            "{}",
            sent.message
        );
    }
}
