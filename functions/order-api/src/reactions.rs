//! The order context's reactions to delivery events, each its own Lambda fed by its own queue:
//!
//! - `order-on-delivery-dispatched`: `DeliveryDispatched` → `OrderShipped`;
//! - `order-on-delivery-completed`: `DeliveryCompleted` → `OrderCompleted`;
//! - `order-on-delivery-failed`: `DeliveryFailed` → `OrderCancelled` with the failure as the reason
//!   (compensation).
//!
//! Idempotent by the aggregate: a repeat, or news overtaken by later news, decides nothing; a
//! dispatch or completion of an order the customer cancelled meanwhile is a race the delivery
//! context resolves explicitly (`DeliveryCancellationRefused`), acknowledged here with a warning.

use domain::delivery::DeliveryEvent;
use domain::envelope::{Actor, EventContext, StoredEvent};
use domain::ids::StreamId;
use domain::order::{CancellationReason, Order, OrderCommand};
use domain::ports::{Clock, EventStore};
use domain::repository;
use lambda_glue::consumer::{EventHandler, HandlerError, reaction_result};

/// Load-decide-append attempts on version conflicts per message.
pub const MAX_ATTEMPTS: u32 = 3;
/// `DeliveryDispatched` → `OrderShipped`.
pub const ON_DELIVERY_DISPATCHED: &str = "order-on-delivery-dispatched";
/// `DeliveryCompleted` → `OrderCompleted`.
pub const ON_DELIVERY_COMPLETED: &str = "order-on-delivery-completed";
/// `DeliveryFailed` → `OrderCancelled`.
pub const ON_DELIVERY_FAILED: &str = "order-on-delivery-failed";
/// The environment every reaction reads.
pub const ENV_VARS: &[&str] = &["EVENTS_TABLE"];

/// What the reactions need.
pub struct Reactions<'a> {
    /// The event store.
    pub store: &'a dyn EventStore,
    /// Where time comes from.
    pub clock: &'a dyn Clock,
}

impl Reactions<'_> {
    /// Handles one event for the reaction named `handler`.
    pub async fn react(&self, handler: &str, event: StoredEvent) -> Result<(), HandlerError> {
        let delivery_event = event.decode::<DeliveryEvent>()?;
        let (order_id, command) = match (handler, delivery_event) {
            (ON_DELIVERY_DISPATCHED, DeliveryEvent::DeliveryDispatched(d)) => (
                d.order_id,
                OrderCommand::Ship {
                    delivery_id: d.delivery_id,
                },
            ),
            (ON_DELIVERY_COMPLETED, DeliveryEvent::DeliveryCompleted(d)) => (
                d.order_id,
                OrderCommand::Complete {
                    delivery_id: d.delivery_id,
                },
            ),
            (ON_DELIVERY_FAILED, DeliveryEvent::DeliveryFailed(d)) => (
                d.order_id,
                OrderCommand::Cancel {
                    reason: CancellationReason::DeliveryFailed { detail: d.reason },
                },
            ),
            (handler, _) => {
                return Err(HandlerError::Poison(format!(
                    "{handler} does not handle {}",
                    event.event_type
                )));
            }
        };
        let context = EventContext::caused_by(&event, Actor::system(handler), self.clock.now());
        let stream = StreamId::order(&order_id);
        reaction_result(
            repository::execute::<Order>(
                self.store,
                &stream,
                &command,
                &context,
                None,
                MAX_ATTEMPTS,
            )
            .await,
        )
    }
}

/// One of the three reactions, as its function runs it (the queue convention, [`EventHandler`]).
pub struct Reaction<'a> {
    /// Which: [`ON_DELIVERY_DISPATCHED`], [`ON_DELIVERY_COMPLETED`] or [`ON_DELIVERY_FAILED`].
    pub name: &'static str,
    /// What it needs.
    pub reactions: Reactions<'a>,
}

#[async_trait::async_trait]
impl EventHandler for Reaction<'_> {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn handle(&self, event: StoredEvent) -> Result<(), HandlerError> {
        self.reactions.react(self.name, event).await
    }
}

#[cfg(test)]
mod tests;
