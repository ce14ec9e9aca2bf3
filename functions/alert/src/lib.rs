//! # alert
//!
//! The alert context (docs/architecture.md, "Domain"): it tells customers what happened to their
//! orders over SNS, and compensates delivery delays with coupons. Seven functions, each its own
//! Lambda fed by its own SQS queue (an EventBridge rule per event type fills it;
//! docs/architecture.md, "Delivery semantics"). Each is a [`lambda_glue::consumer::EventHandler`] (the
//! queue convention: one event in, `batchItemFailures` naming exactly the failed messages out); the
//! function registry (`functions/registry`) wires it.
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
