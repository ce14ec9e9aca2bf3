//! # alert
//!
//! The alert context (DESIGN §2): it tells customers what happened to their orders over SNS, and
//! compensates delivery delays with coupons. Seven functions, each its own Lambda fed by its own SQS
//! queue (an EventBridge rule per event type fills it; DESIGN §5). Every binary in `src/bin/` only
//! wires configuration, clients and one handler into [`shared::consumer::handle_sqs_batch`], which
//! answers `batchItemFailures` naming exactly the failed messages.
//!
//! ## Layout
//!
//! | module | function | on | does |
//! | --- | --- | --- | --- |
//! | [`on_order_placed`] | `alert-on-order-placed` | `OrderPlaced` | "we received your order": id, items, total |
//! | [`on_delivery_scheduled`] | `alert-on-delivery-scheduled` | `DeliveryScheduled` | the promised arrival time |
//! | [`on_delivery_delayed`] | `alert-on-delivery-delayed` | `DeliveryDelayed` | the new estimated arrival |
//! | [`on_delivery_completed`] | `alert-on-delivery-completed` | `DeliveryCompleted` | "delivered" |
//! | [`on_order_cancelled`] | `alert-on-order-cancelled` | `OrderCancelled` | the cancellation and its reason in words |
//! | [`on_delivery_cancellation_refused`] | `alert-on-delivery-cancellation-refused` | `DeliveryCancellationRefused` | the cancellation came after dispatch: the parcel comes back (or, delivered, could not be stopped) |
//! | [`coupon_on_delivery_delayed`] | `coupon-on-delivery-delayed` | `DeliveryDelayed` | issues a 10 % coupon, at most one per delay |
//! | [`notify`] | | | the notification handlers' common path: processed-event markers for an exactly-once effect |
//! | [`config`] | | | `Config::from_env` of each function |
//! | [`lambda`] | | | the notification functions' Lambda wiring (each binary is one call) |
//!
//! Notifications carry ids, amounts and times; never the delivery address, nor free text from
//! couriers (delay reasons, failure details), which may name people or places.
//!
//! Failures: a message whose event cannot be read, or is of a type the handler does not serve, is
//! poison (it fails at once and reaches the queue's DLQ after `maxReceiveCount` receives); a
//! dependency out of reach is retryable (the queue redelivers after the visibility timeout).
#![forbid(unsafe_code)]

pub mod config;
pub mod coupon_on_delivery_delayed;
pub mod lambda;
pub mod notify;
pub mod on_delivery_cancellation_refused;
pub mod on_delivery_completed;
pub mod on_delivery_delayed;
pub mod on_delivery_scheduled;
pub mod on_order_cancelled;
pub mod on_order_placed;

#[cfg(test)]
pub(crate) mod testing;

use notify::NotificationHandler;

/// The six notification handlers.
pub const NOTIFICATION_HANDLERS: &[NotificationHandler] = &[
    on_order_placed::HANDLER,
    on_delivery_scheduled::HANDLER,
    on_delivery_delayed::HANDLER,
    on_delivery_completed::HANDLER,
    on_order_cancelled::HANDLER,
    on_delivery_cancellation_refused::HANDLER,
];

/// One Lambda function of the alert context, as `template.yaml` must declare it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Function {
    /// The function's (and its binary's) name.
    pub name: &'static str,
    /// The event type its queue's rule routes to it.
    pub event_type: &'static str,
    /// The environment variables it reads.
    pub env_vars: &'static [&'static str],
}

/// Every function of the alert context.
pub const FUNCTIONS: &[Function] = &[
    notification_function(on_order_placed::HANDLER, on_order_placed::ENV_VARS),
    notification_function(
        on_delivery_scheduled::HANDLER,
        on_delivery_scheduled::ENV_VARS,
    ),
    notification_function(on_delivery_delayed::HANDLER, on_delivery_delayed::ENV_VARS),
    notification_function(
        on_delivery_completed::HANDLER,
        on_delivery_completed::ENV_VARS,
    ),
    notification_function(on_order_cancelled::HANDLER, on_order_cancelled::ENV_VARS),
    notification_function(
        on_delivery_cancellation_refused::HANDLER,
        on_delivery_cancellation_refused::ENV_VARS,
    ),
    Function {
        name: coupon_on_delivery_delayed::NAME,
        event_type: coupon_on_delivery_delayed::EVENT_TYPE,
        env_vars: coupon_on_delivery_delayed::ENV_VARS,
    },
];

const fn notification_function(
    handler: NotificationHandler,
    env_vars: &'static [&'static str],
) -> Function {
    Function {
        name: handler.name,
        event_type: handler.event_type,
        env_vars,
    }
}

#[cfg(test)]
mod tests {
    use shared::events::DomainEvent;

    use super::*;

    #[test]
    fn every_function_serves_a_known_event_type_and_has_its_own_binary() {
        let manifest = include_str!("../Cargo.toml");
        for function in FUNCTIONS {
            assert!(
                DomainEvent::current_schema_version(function.event_type).is_some(),
                "{}: {}",
                function.name,
                function.event_type
            );
            let bin = format!(
                "[[bin]]\nname = \"{0}\"\npath = \"src/bin/{0}.rs\"",
                function.name
            );
            assert!(manifest.contains(&bin), "Cargo.toml lacks {bin}");
            let path = format!(
                "{}/src/bin/{}.rs",
                env!("CARGO_MANIFEST_DIR"),
                function.name
            );
            assert!(std::path::Path::new(&path).exists(), "{path}");
        }
        let mut names: Vec<_> = FUNCTIONS.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 7);
        assert_eq!(
            manifest.matches("[[bin]]").count(),
            7,
            "no binary without a function"
        );
    }

    #[test]
    fn notifiers_read_the_topic_and_marker_table_and_the_coupon_function_the_events_table() {
        for function in FUNCTIONS {
            let expected: &[&str] = if function.name.starts_with("alert-on-") {
                &["TOPIC_ARN", "IDEMPOTENCY_TABLE"]
            } else {
                &["EVENTS_TABLE"]
            };
            assert_eq!(function.env_vars, expected, "{}", function.name);
        }
    }

    #[test]
    fn the_functions_cover_what_design_asks_of_the_alert_context() {
        for event_type in [
            "OrderPlaced",
            "DeliveryScheduled",
            "DeliveryDelayed",
            "DeliveryCompleted",
            "OrderCancelled",
            "DeliveryCancellationRefused",
        ] {
            let name = format!("alert-on-{}", kebab(event_type));
            assert!(
                FUNCTIONS
                    .iter()
                    .any(|f| f.name == name && f.event_type == event_type),
                "{name} on {event_type}"
            );
        }
        assert!(
            FUNCTIONS.iter().any(
                |f| f.name == "coupon-on-delivery-delayed" && f.event_type == "DeliveryDelayed"
            )
        );
    }

    fn kebab(name: &str) -> String {
        let mut out = String::new();
        for (i, c) in name.chars().enumerate() {
            if c.is_uppercase() && i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        }
        out
    }
}
