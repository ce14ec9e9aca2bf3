//! The delivery aggregate (`delivery#<delivery_id>`, the id derived from the order id). Scheduled in
//! reaction to `OrderPlaced`; couriers dispatch, delay, complete or fail it; a scheduled check marks
//! it delayed when it is overdue; an order cancellation cancels it before dispatch, and after
//! dispatch is refused explicitly with `DeliveryCancellationRefused`.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{Aggregate, DomainError};
use crate::address::Address;
use crate::events::event_enum;
use crate::ids::{CourierId, CustomerId, DeliveryId, OrderId};
use crate::validation::{ValidationError, text};

/// Longest accepted free-text reason.
pub const MAX_REASON_LEN: usize = 500;

/// What can be asked of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryCommand {
    /// Reaction to `OrderPlaced`: schedule the order's delivery, promised by `placed_at + sla`.
    Schedule {
        /// The order.
        order_id: OrderId,
        /// Its customer.
        customer_id: CustomerId,
        /// Where to.
        delivery_address: Address,
        /// When the order was placed.
        placed_at: DateTime<Utc>,
        /// The delivery promise.
        sla: Duration,
    },
    /// A courier picked it up.
    Dispatch {
        /// Who.
        courier_id: CourierId,
    },
    /// A courier reports a delay.
    ReportDelay {
        /// The new estimated arrival; later than the current one.
        new_eta: DateTime<Utc>,
        /// Why, in words.
        reason: String,
    },
    /// The overdue check: if the delivery is past its ETA at `now`, mark it delayed until `new_eta`.
    MarkOverdue {
        /// When the check runs.
        now: DateTime<Utc>,
        /// The ETA to promise instead.
        new_eta: DateTime<Utc>,
    },
    /// A courier delivered it.
    Complete,
    /// A courier could not deliver it.
    Fail {
        /// Why, in words.
        reason: String,
    },
    /// Reaction to `OrderCancelled`.
    Cancel {
        /// The order (the delivery may not be known yet when the cancellation overtakes the placement).
        order_id: OrderId,
        /// Its customer.
        customer_id: CustomerId,
    },
}

/// `DeliveryScheduled` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryScheduled {
    /// The delivery.
    pub delivery_id: DeliveryId,
    /// Its order.
    pub order_id: OrderId,
    /// Its customer.
    pub customer_id: CustomerId,
    /// Where to.
    pub delivery_address: Address,
    /// The promise: delivered by then.
    pub promised_by: DateTime<Utc>,
}

/// `DeliveryDispatched` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryDispatched {
    /// The delivery.
    pub delivery_id: DeliveryId,
    /// Its order.
    pub order_id: OrderId,
    /// Its customer.
    pub customer_id: CustomerId,
    /// The courier carrying it.
    pub courier_id: CourierId,
}

/// `DeliveryDelayed` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryDelayed {
    /// The delivery.
    pub delivery_id: DeliveryId,
    /// Its order.
    pub order_id: OrderId,
    /// Its customer.
    pub customer_id: CustomerId,
    /// 1 for the first delay of this delivery, 2 for the second …: identifies the delay.
    pub delay_number: u32,
    /// The ETA before the delay.
    pub previous_eta: DateTime<Utc>,
    /// The new ETA.
    pub new_eta: DateTime<Utc>,
    /// Why.
    pub reason: String,
}

/// `DeliveryCompleted` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryCompleted {
    /// The delivery.
    pub delivery_id: DeliveryId,
    /// Its order.
    pub order_id: OrderId,
    /// Its customer.
    pub customer_id: CustomerId,
}

/// `DeliveryFailed` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryFailed {
    /// The delivery.
    pub delivery_id: DeliveryId,
    /// Its order.
    pub order_id: OrderId,
    /// Its customer.
    pub customer_id: CustomerId,
    /// Why.
    pub reason: String,
}

/// `DeliveryCancelled` data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryCancelled {
    /// The delivery.
    pub delivery_id: DeliveryId,
    /// Its order.
    pub order_id: OrderId,
    /// Its customer.
    pub customer_id: CustomerId,
}

/// `DeliveryCancellationRefused` data: the order was cancelled after its delivery was dispatched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryCancellationRefused {
    /// The delivery.
    pub delivery_id: DeliveryId,
    /// Its order.
    pub order_id: OrderId,
    /// Its customer.
    pub customer_id: CustomerId,
    /// The status that made cancelling impossible.
    pub status: DeliveryStatus,
}

event_enum! {
    /// Everything that happens to a delivery.
    DeliveryEvent {
        DeliveryScheduled(DeliveryScheduled) = 1,
        DeliveryDispatched(DeliveryDispatched) = 1,
        DeliveryDelayed(DeliveryDelayed) = 1,
        DeliveryCompleted(DeliveryCompleted) = 1,
        DeliveryFailed(DeliveryFailed) = 1,
        DeliveryCancelled(DeliveryCancelled) = 1,
        DeliveryCancellationRefused(DeliveryCancellationRefused) = 1,
    }
}

/// Where a delivery is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for a courier.
    Scheduled,
    /// On its way.
    Dispatched,
    /// Delivered.
    Completed,
    /// Could not be delivered.
    Failed,
    /// Cancelled before dispatch.
    Cancelled,
}

impl DeliveryStatus {
    /// The status in words.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Dispatched => "dispatched",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// The delivery's decision state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    known: Option<Known>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Known {
    delivery_id: DeliveryId,
    order_id: OrderId,
    customer_id: CustomerId,
    status: DeliveryStatus,
    eta: Option<DateTime<Utc>>,
    delays: u32,
    cancellation_refused: bool,
}

impl Delivery {
    /// The status, or `None` before anything happened to it.
    pub fn status(&self) -> Option<DeliveryStatus> {
        self.known.as_ref().map(|k| k.status)
    }

    /// The current ETA (the promise, or the latest delay's new ETA).
    pub fn eta(&self) -> Option<DateTime<Utc>> {
        self.known.as_ref().and_then(|k| k.eta)
    }
}

impl Known {
    fn delayed(
        &self,
        previous_eta: DateTime<Utc>,
        new_eta: DateTime<Utc>,
        reason: String,
    ) -> DeliveryEvent {
        DeliveryEvent::DeliveryDelayed(DeliveryDelayed {
            delivery_id: self.delivery_id.clone(),
            order_id: self.order_id.clone(),
            customer_id: self.customer_id.clone(),
            delay_number: self.delays + 1,
            previous_eta,
            new_eta,
            reason,
        })
    }

    fn refuse(&self, command: &'static str) -> DomainError {
        DomainError::InvalidTransition {
            kind: Delivery::KIND,
            command,
            status: self.status.as_str(),
        }
    }
}

impl Aggregate for Delivery {
    type Command = DeliveryCommand;
    type Event = DeliveryEvent;
    const KIND: &'static str = "delivery";

    fn decide(&self, command: &DeliveryCommand) -> Result<Vec<DeliveryEvent>, DomainError> {
        use DeliveryStatus::{Cancelled, Completed, Dispatched, Failed, Scheduled};
        let Some(known) = &self.known else {
            return match command {
                DeliveryCommand::Schedule {
                    order_id,
                    customer_id,
                    delivery_address,
                    placed_at,
                    sla,
                } => {
                    if *sla <= Duration::zero() {
                        return Err(ValidationError::new("sla", "must be positive").into());
                    }
                    Ok(vec![DeliveryEvent::DeliveryScheduled(DeliveryScheduled {
                        delivery_id: DeliveryId::for_order(order_id),
                        order_id: order_id.clone(),
                        customer_id: customer_id.clone(),
                        delivery_address: delivery_address.clone(),
                        promised_by: *placed_at + *sla,
                    })])
                }
                // The cancellation overtook the placement: the delivery is cancelled before it exists.
                DeliveryCommand::Cancel {
                    order_id,
                    customer_id,
                } => Ok(vec![DeliveryEvent::DeliveryCancelled(DeliveryCancelled {
                    delivery_id: DeliveryId::for_order(order_id),
                    order_id: order_id.clone(),
                    customer_id: customer_id.clone(),
                })]),
                _ => Err(DomainError::NotFound { kind: Self::KIND }),
            };
        };
        let ids = || {
            (
                known.delivery_id.clone(),
                known.order_id.clone(),
                known.customer_id.clone(),
            )
        };
        match (command, known.status) {
            // Created once by construction: a repeated (or overtaken) scheduling is a no-op.
            (DeliveryCommand::Schedule { .. }, _) => Ok(vec![]),

            (DeliveryCommand::Dispatch { courier_id }, Scheduled) => {
                let (delivery_id, order_id, customer_id) = ids();
                Ok(vec![DeliveryEvent::DeliveryDispatched(
                    DeliveryDispatched {
                        delivery_id,
                        order_id,
                        customer_id,
                        courier_id: courier_id.clone(),
                    },
                )])
            }
            (DeliveryCommand::Dispatch { .. }, Dispatched) => Ok(vec![]),
            (DeliveryCommand::Dispatch { .. }, _) => Err(known.refuse("dispatch")),

            (DeliveryCommand::ReportDelay { new_eta, reason }, Scheduled | Dispatched) => {
                let reason = text("reason", reason, MAX_REASON_LEN)?;
                let previous_eta = known.eta.unwrap_or(*new_eta);
                if *new_eta <= previous_eta {
                    return Err(ValidationError::new(
                        "new_eta",
                        "must be later than the current ETA",
                    )
                    .into());
                }
                Ok(vec![known.delayed(previous_eta, *new_eta, reason)])
            }
            (DeliveryCommand::ReportDelay { .. }, _) => Err(known.refuse("delay")),

            (DeliveryCommand::MarkOverdue { now, new_eta }, Scheduled | Dispatched) => {
                match known.eta {
                    // Once per delay: after marking, the ETA lies ahead until the new one passes too.
                    Some(eta) if *now > eta && *new_eta > *now => {
                        Ok(vec![known.delayed(eta, *new_eta, "overdue".to_owned())])
                    }
                    _ => Ok(vec![]),
                }
            }
            (DeliveryCommand::MarkOverdue { .. }, _) => Ok(vec![]),

            (DeliveryCommand::Complete, Dispatched) => {
                let (delivery_id, order_id, customer_id) = ids();
                Ok(vec![DeliveryEvent::DeliveryCompleted(DeliveryCompleted {
                    delivery_id,
                    order_id,
                    customer_id,
                })])
            }
            (DeliveryCommand::Complete, Completed) => Ok(vec![]),
            (DeliveryCommand::Complete, _) => Err(known.refuse("complete")),

            (DeliveryCommand::Fail { reason }, Scheduled | Dispatched) => {
                let (delivery_id, order_id, customer_id) = ids();
                Ok(vec![DeliveryEvent::DeliveryFailed(DeliveryFailed {
                    delivery_id,
                    order_id,
                    customer_id,
                    reason: text("reason", reason, MAX_REASON_LEN)?,
                })])
            }
            (DeliveryCommand::Fail { .. }, Failed) => Ok(vec![]),
            (DeliveryCommand::Fail { .. }, _) => Err(known.refuse("fail")),

            (DeliveryCommand::Cancel { .. }, Scheduled) => {
                let (delivery_id, order_id, customer_id) = ids();
                Ok(vec![DeliveryEvent::DeliveryCancelled(DeliveryCancelled {
                    delivery_id,
                    order_id,
                    customer_id,
                })])
            }
            // The race: the order was cancelled after dispatch. Say so, once.
            (DeliveryCommand::Cancel { .. }, status @ (Dispatched | Completed)) => {
                if known.cancellation_refused {
                    return Ok(vec![]);
                }
                let (delivery_id, order_id, customer_id) = ids();
                Ok(vec![DeliveryEvent::DeliveryCancellationRefused(
                    DeliveryCancellationRefused {
                        delivery_id,
                        order_id,
                        customer_id,
                        status,
                    },
                )])
            }
            (DeliveryCommand::Cancel { .. }, Cancelled | Failed) => Ok(vec![]),
        }
    }

    fn evolve(mut self, event: &DeliveryEvent) -> Self {
        let known = match (event, self.known.as_mut()) {
            (DeliveryEvent::DeliveryScheduled(e), None) => {
                self.known = Some(Known {
                    delivery_id: e.delivery_id.clone(),
                    order_id: e.order_id.clone(),
                    customer_id: e.customer_id.clone(),
                    status: DeliveryStatus::Scheduled,
                    eta: Some(e.promised_by),
                    delays: 0,
                    cancellation_refused: false,
                });
                return self;
            }
            (DeliveryEvent::DeliveryCancelled(e), None) => {
                self.known = Some(Known {
                    delivery_id: e.delivery_id.clone(),
                    order_id: e.order_id.clone(),
                    customer_id: e.customer_id.clone(),
                    status: DeliveryStatus::Cancelled,
                    eta: None,
                    delays: 0,
                    cancellation_refused: false,
                });
                return self;
            }
            (_, Some(known)) => known,
            (_, None) => return self,
        };
        match event {
            DeliveryEvent::DeliveryScheduled(_) => {}
            DeliveryEvent::DeliveryDispatched(_) => known.status = DeliveryStatus::Dispatched,
            DeliveryEvent::DeliveryDelayed(e) => {
                known.delays = e.delay_number;
                known.eta = Some(e.new_eta);
            }
            DeliveryEvent::DeliveryCompleted(_) => known.status = DeliveryStatus::Completed,
            DeliveryEvent::DeliveryFailed(_) => known.status = DeliveryStatus::Failed,
            DeliveryEvent::DeliveryCancelled(_) => known.status = DeliveryStatus::Cancelled,
            DeliveryEvent::DeliveryCancellationRefused(_) => known.cancellation_refused = true,
        }
        self
    }
}
