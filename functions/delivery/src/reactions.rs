//! The delivery context's reactions to order events, each its own Lambda fed by its own queue:
//!
//! - `delivery-on-order-placed`: `OrderPlaced` → `DeliveryScheduled` (promised by placed_at + SLA);
//! - `delivery-on-order-cancelled`: `OrderCancelled` → `DeliveryCancelled` before dispatch, or
//!   `DeliveryCancellationRefused` after it (the race made explicit; the alert context tells the
//!   customer).
//!
//! Both are idempotent by the aggregate: the delivery id is derived from the order id, scheduling
//! or cancelling twice decides nothing, and a cancel that overtakes the scheduling cancels first.

use chrono::Duration;
use domain::delivery::{Delivery, DeliveryCommand};
use domain::envelope::{Actor, EventContext, StoredEvent};
use domain::ids::{DeliveryId, StreamId};
use domain::order::OrderEvent;
use domain::ports::{Clock, EventStore};
use domain::repository;
use lambda_glue::consumer::{EventHandler, HandlerError, reaction_result};

/// Load-decide-append attempts on version conflicts per message.
pub const MAX_ATTEMPTS: u32 = 3;

/// The name of the scheduling handler (its actor and log field).
pub const ON_ORDER_PLACED: &str = "delivery-on-order-placed";
/// The name of the cancelling handler.
pub const ON_ORDER_CANCELLED: &str = "delivery-on-order-cancelled";

/// What the reactions need.
pub struct Reactions<'a> {
    /// The event store.
    pub store: &'a dyn EventStore,
    /// Where time comes from.
    pub clock: &'a dyn Clock,
    /// How long after placement a delivery is promised.
    pub sla: Duration,
}

fn delivery_stream(order_id: &domain::ids::OrderId) -> StreamId {
    StreamId::delivery(DeliveryId::for_order(order_id))
}

impl Reactions<'_> {
    /// `OrderPlaced` → schedule the delivery.
    pub async fn on_order_placed(&self, event: StoredEvent) -> Result<(), HandlerError> {
        let OrderEvent::OrderPlaced(placed) = event.decode::<OrderEvent>()? else {
            return Err(HandlerError::Poison(format!(
                "{ON_ORDER_PLACED} received {}",
                event.event_type
            )));
        };
        let command = DeliveryCommand::Schedule {
            order_id: placed.order_id.clone(),
            customer_id: placed.customer_id,
            delivery_address: placed.delivery_address,
            placed_at: event.occurred_at,
            sla: self.sla,
        };
        // The delivery's stream starts here: appended without a read first (a redelivered
        // OrderPlaced finds it there, and is decided again on what is stored).
        self.execute(ON_ORDER_PLACED, &event, &placed.order_id, &command, true)
            .await
    }

    /// `OrderCancelled` → cancel the delivery, or refuse explicitly once it is dispatched.
    pub async fn on_order_cancelled(&self, event: StoredEvent) -> Result<(), HandlerError> {
        let OrderEvent::OrderCancelled(cancelled) = event.decode::<OrderEvent>()? else {
            return Err(HandlerError::Poison(format!(
                "{ON_ORDER_CANCELLED} received {}",
                event.event_type
            )));
        };
        let command = DeliveryCommand::Cancel {
            order_id: cancelled.order_id.clone(),
            customer_id: cancelled.customer_id,
        };
        self.execute(
            ON_ORDER_CANCELLED,
            &event,
            &cancelled.order_id,
            &command,
            false,
        )
        .await
    }

    async fn execute(
        &self,
        handler: &str,
        cause: &StoredEvent,
        order_id: &domain::ids::OrderId,
        command: &DeliveryCommand,
        new_stream: bool,
    ) -> Result<(), HandlerError> {
        let context = EventContext::caused_by(cause, Actor::system(handler), self.clock.now());
        let stream = delivery_stream(order_id);
        let result = if new_stream {
            repository::execute_new::<Delivery>(
                self.store,
                &stream,
                command,
                &context,
                None,
                MAX_ATTEMPTS,
            )
            .await
        } else {
            repository::execute::<Delivery>(
                self.store,
                &stream,
                command,
                &context,
                None,
                MAX_ATTEMPTS,
            )
            .await
        };
        reaction_result(result)
    }
}

/// One of the two reactions, as its function runs it (the queue convention, [`EventHandler`]).
pub struct Reaction<'a> {
    /// Which: [`ON_ORDER_PLACED`] or [`ON_ORDER_CANCELLED`].
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
        match self.name {
            ON_ORDER_PLACED => self.reactions.on_order_placed(event).await,
            ON_ORDER_CANCELLED => self.reactions.on_order_cancelled(event).await,
            other => Err(HandlerError::Poison(format!(
                "{other} is not a delivery reaction"
            ))),
        }
    }
}

#[cfg(test)]
mod tests;
