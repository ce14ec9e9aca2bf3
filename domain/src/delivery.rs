//! The delivery aggregate (`delivery#<delivery_id>`, the id derived from the order id). Scheduled in
//! reaction to `OrderPlaced`; couriers dispatch, delay, complete or fail it; a scheduled check marks
//! it delayed when it is overdue; an order cancellation cancels it before dispatch, and after
//! dispatch is refused explicitly with `DeliveryCancellationRefused`.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::events::event_enum;
use crate::ids::{CourierId, CustomerId, DeliveryId, OrderId};
use crate::validation::{ValidationError, text};
use crate::{Aggregate, DomainError};

/// Longest accepted free-text reason.
pub const MAX_REASON_LEN: usize = 500;
/// Most delays one delivery may have (each brings the customer a coupon and a notification).
/// Past it a courier's further delay report is refused and the overdue check stops marking the
/// delivery: a delivery that late needs a person (fail it, or escalate), not another coupon.
pub const MAX_DELAYS: u32 = 5;

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
    /// The courier who dispatched it reports a delay.
    ReportDelay {
        /// Who reports it: only the courier who dispatched the delivery may.
        courier_id: CourierId,
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
    /// The courier who dispatched it delivered it.
    Complete {
        /// Who: only the courier who dispatched the delivery may.
        courier_id: CourierId,
    },
    /// The courier who dispatched it could not deliver it.
    Fail {
        /// Who: only the courier who dispatched the delivery may.
        courier_id: CourierId,
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
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
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
    courier_id: Option<CourierId>,
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

    /// Refuses `command` unless `courier_id` dispatched the delivery.
    fn check_courier(
        &self,
        courier_id: &CourierId,
        command: &'static str,
    ) -> Result<(), DomainError> {
        match &self.courier_id {
            Some(assigned) if assigned == courier_id => Ok(()),
            Some(_) => Err(DomainError::NotAssigned {
                kind: Delivery::KIND,
                command,
            }),
            None => Err(self.refuse(command)),
        }
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

            (
                DeliveryCommand::ReportDelay {
                    courier_id,
                    new_eta,
                    reason,
                },
                Dispatched,
            ) => {
                known.check_courier(courier_id, "delay")?;
                let reason = text("reason", reason, MAX_REASON_LEN)?;
                let previous_eta = known.eta.unwrap_or(*new_eta);
                if *new_eta <= previous_eta {
                    return Err(ValidationError::new(
                        "new_eta",
                        "must be later than the current ETA",
                    )
                    .into());
                }
                if known.delays >= MAX_DELAYS {
                    return Err(DomainError::LimitReached {
                        kind: Delivery::KIND,
                        command: "delay",
                        limit: MAX_DELAYS,
                    });
                }
                Ok(vec![known.delayed(previous_eta, *new_eta, reason)])
            }
            (DeliveryCommand::ReportDelay { .. }, _) => Err(known.refuse("delay")),

            (DeliveryCommand::MarkOverdue { now, new_eta }, Scheduled | Dispatched) => {
                // Not once the order was cancelled under a dispatched delivery (that is for a
                // person to resolve), nor past the delay limit.
                if known.cancellation_refused || known.delays >= MAX_DELAYS {
                    return Ok(vec![]);
                }
                match known.eta {
                    // Once per delay: after marking, the ETA lies ahead until the new one passes too.
                    Some(eta) if *now > eta && *new_eta > *now => {
                        Ok(vec![known.delayed(eta, *new_eta, "overdue".to_owned())])
                    }
                    _ => Ok(vec![]),
                }
            }
            (DeliveryCommand::MarkOverdue { .. }, _) => Ok(vec![]),

            (DeliveryCommand::Complete { courier_id }, Dispatched) => {
                known.check_courier(courier_id, "complete")?;
                // The order was cancelled while the delivery was under way: the cancellation
                // stands, the parcel goes back (the courier fails the delivery), so the order and
                // its delivery agree that nothing was delivered.
                if known.cancellation_refused {
                    return Err(DomainError::InvalidTransition {
                        kind: Delivery::KIND,
                        command: "complete",
                        status: "recalled: its order was cancelled",
                    });
                }
                let (delivery_id, order_id, customer_id) = ids();
                Ok(vec![DeliveryEvent::DeliveryCompleted(DeliveryCompleted {
                    delivery_id,
                    order_id,
                    customer_id,
                })])
            }
            (DeliveryCommand::Complete { courier_id }, Completed) => {
                known.check_courier(courier_id, "complete").map(|()| vec![])
            }
            (DeliveryCommand::Complete { .. }, _) => Err(known.refuse("complete")),

            (DeliveryCommand::Fail { courier_id, reason }, Dispatched) => {
                known.check_courier(courier_id, "fail")?;
                let (delivery_id, order_id, customer_id) = ids();
                Ok(vec![DeliveryEvent::DeliveryFailed(DeliveryFailed {
                    delivery_id,
                    order_id,
                    customer_id,
                    reason: text("reason", reason, MAX_REASON_LEN)?,
                })])
            }
            (DeliveryCommand::Fail { courier_id, .. }, Failed) => {
                known.check_courier(courier_id, "fail").map(|()| vec![])
            }
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
                    courier_id: None,
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
                    courier_id: None,
                });
                return self;
            }
            (_, Some(known)) => known,
            (_, None) => return self,
        };
        match event {
            DeliveryEvent::DeliveryScheduled(_) => {}
            DeliveryEvent::DeliveryDispatched(e) => {
                known.status = DeliveryStatus::Dispatched;
                known.courier_id = Some(e.courier_id.clone());
            }
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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::events::Event;
    use crate::testing::given;

    fn order_id() -> OrderId {
        OrderId::parse("o1").unwrap()
    }

    fn customer_id() -> CustomerId {
        CustomerId::parse("c1").unwrap()
    }

    fn delivery_id() -> DeliveryId {
        DeliveryId::for_order(&order_id())
    }

    fn courier_id() -> CourierId {
        CourierId::parse("courier-7").unwrap()
    }

    /// 1 May 2024 at `hour:minute` UTC.
    fn at(hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, hour, minute, 0).unwrap()
    }

    /// Placed at 10:00 with a two-hour SLA: promised by 12:00.
    fn schedule() -> DeliveryCommand {
        DeliveryCommand::Schedule {
            order_id: order_id(),
            customer_id: customer_id(),
            delivery_address: crate::address::sample(),
            placed_at: at(10, 0),
            sla: Duration::hours(2),
        }
    }

    fn dispatch() -> DeliveryCommand {
        DeliveryCommand::Dispatch {
            courier_id: courier_id(),
        }
    }

    fn report_delay(new_eta: DateTime<Utc>, reason: &str) -> DeliveryCommand {
        DeliveryCommand::ReportDelay {
            courier_id: courier_id(),
            new_eta,
            reason: reason.into(),
        }
    }

    fn mark_overdue(now: DateTime<Utc>, new_eta: DateTime<Utc>) -> DeliveryCommand {
        DeliveryCommand::MarkOverdue { now, new_eta }
    }

    fn fail(reason: &str) -> DeliveryCommand {
        DeliveryCommand::Fail {
            courier_id: courier_id(),
            reason: reason.into(),
        }
    }

    fn complete() -> DeliveryCommand {
        DeliveryCommand::Complete {
            courier_id: courier_id(),
        }
    }

    fn cancel() -> DeliveryCommand {
        DeliveryCommand::Cancel {
            order_id: order_id(),
            customer_id: customer_id(),
        }
    }

    fn scheduled() -> DeliveryEvent {
        DeliveryEvent::DeliveryScheduled(DeliveryScheduled {
            delivery_id: delivery_id(),
            order_id: order_id(),
            customer_id: customer_id(),
            delivery_address: crate::address::sample(),
            promised_by: at(12, 0),
        })
    }

    fn dispatched() -> DeliveryEvent {
        DeliveryEvent::DeliveryDispatched(DeliveryDispatched {
            delivery_id: delivery_id(),
            order_id: order_id(),
            customer_id: customer_id(),
            courier_id: courier_id(),
        })
    }

    fn delayed(
        delay_number: u32,
        previous_eta: DateTime<Utc>,
        new_eta: DateTime<Utc>,
        reason: &str,
    ) -> DeliveryEvent {
        DeliveryEvent::DeliveryDelayed(DeliveryDelayed {
            delivery_id: delivery_id(),
            order_id: order_id(),
            customer_id: customer_id(),
            delay_number,
            previous_eta,
            new_eta,
            reason: reason.into(),
        })
    }

    fn completed() -> DeliveryEvent {
        DeliveryEvent::DeliveryCompleted(DeliveryCompleted {
            delivery_id: delivery_id(),
            order_id: order_id(),
            customer_id: customer_id(),
        })
    }

    fn failed(reason: &str) -> DeliveryEvent {
        DeliveryEvent::DeliveryFailed(DeliveryFailed {
            delivery_id: delivery_id(),
            order_id: order_id(),
            customer_id: customer_id(),
            reason: reason.into(),
        })
    }

    fn cancelled() -> DeliveryEvent {
        DeliveryEvent::DeliveryCancelled(DeliveryCancelled {
            delivery_id: delivery_id(),
            order_id: order_id(),
            customer_id: customer_id(),
        })
    }

    fn cancellation_refused(status: DeliveryStatus) -> DeliveryEvent {
        DeliveryEvent::DeliveryCancellationRefused(DeliveryCancellationRefused {
            delivery_id: delivery_id(),
            order_id: order_id(),
            customer_id: customer_id(),
            status,
        })
    }

    fn refused(command: &'static str, status: &'static str) -> DomainError {
        DomainError::InvalidTransition {
            kind: "delivery",
            command,
            status,
        }
    }

    /// The histories that end a delivery, with the status each ends in.
    fn finished() -> [(Vec<DeliveryEvent>, &'static str); 4] {
        [
            (vec![scheduled(), dispatched(), completed()], "completed"),
            (vec![scheduled(), dispatched(), failed("lost")], "failed"),
            (vec![scheduled(), cancelled()], "cancelled"),
            (vec![cancelled()], "cancelled"),
        ]
    }

    // --- Schedule ------------------------------------------------------------------------------

    #[test]
    fn scheduling_promises_delivery_by_the_placement_time_plus_the_sla() {
        let state = given::<Delivery>([]).when(&schedule()).then([scheduled()]);
        assert_eq!(state.status(), Some(DeliveryStatus::Scheduled));
        assert_eq!(state.eta(), Some(at(12, 0)));
    }

    #[test]
    fn the_delivery_id_is_derived_from_the_order_id() {
        let events = given::<Delivery>([]).when(&schedule()).then_events();
        let [DeliveryEvent::DeliveryScheduled(scheduled)] = events.as_slice() else {
            panic!("expected one DeliveryScheduled, got {events:?}");
        };
        assert_eq!(scheduled.delivery_id.as_str(), "d-o1");
    }

    #[test]
    fn a_zero_or_negative_sla_is_refused() {
        for sla in [Duration::zero(), Duration::minutes(-30)] {
            let command = DeliveryCommand::Schedule {
                order_id: order_id(),
                customer_id: customer_id(),
                delivery_address: crate::address::sample(),
                placed_at: at(10, 0),
                sla,
            };
            given::<Delivery>([]).when(&command).then_invalid("sla");
        }
    }

    #[test]
    fn scheduling_a_delivery_twice_decides_nothing() {
        given::<Delivery>([scheduled()])
            .when(&schedule())
            .then_nothing();
    }

    #[test]
    fn a_scheduling_overtaken_by_later_events_decides_nothing() {
        for history in [
            vec![scheduled(), dispatched()],
            vec![scheduled(), dispatched(), completed()],
            vec![scheduled(), failed("lost")],
        ] {
            given::<Delivery>(history).when(&schedule()).then_nothing();
        }
    }

    #[test]
    fn a_scheduling_that_arrives_after_the_cancellation_decides_nothing() {
        given::<Delivery>([cancelled()])
            .when(&schedule())
            .then_nothing();
    }

    #[test]
    fn a_delivery_that_was_never_scheduled_cannot_be_acted_on() {
        for command in [
            dispatch(),
            report_delay(at(13, 0), "traffic"),
            mark_overdue(at(13, 0), at(14, 0)),
            complete(),
            fail("lost"),
        ] {
            given::<Delivery>([])
                .when(&command)
                .then_error(DomainError::NotFound { kind: "delivery" });
        }
    }

    // --- Dispatch ------------------------------------------------------------------------------

    #[test]
    fn a_scheduled_delivery_is_dispatched_by_a_courier() {
        let state = given::<Delivery>([scheduled()])
            .when(&dispatch())
            .then([dispatched()]);
        assert_eq!(state.status(), Some(DeliveryStatus::Dispatched));
    }

    #[test]
    fn a_delayed_delivery_can_still_be_dispatched() {
        given::<Delivery>([scheduled(), delayed(1, at(12, 0), at(13, 0), "traffic")])
            .when(&dispatch())
            .then([dispatched()]);
    }

    #[test]
    fn dispatching_a_delivery_twice_decides_nothing() {
        given::<Delivery>([scheduled(), dispatched()])
            .when(&dispatch())
            .then_nothing();
    }

    #[test]
    fn a_cancelled_delivery_cannot_be_dispatched() {
        given::<Delivery>([scheduled(), cancelled()])
            .when(&dispatch())
            .then_error(refused("dispatch", "cancelled"));
    }

    #[test]
    fn a_finished_delivery_cannot_be_dispatched() {
        for (history, status) in finished() {
            given::<Delivery>(history)
                .when(&dispatch())
                .then_error(refused("dispatch", status));
        }
    }

    // --- Report a delay ------------------------------------------------------------------------

    #[test]
    fn a_reported_delay_moves_the_eta_and_is_numbered_one() {
        let state = given::<Delivery>([scheduled(), dispatched()])
            .when(&report_delay(at(13, 30), "  traffic jam  "))
            .then([delayed(1, at(12, 0), at(13, 30), "traffic jam")]);
        assert_eq!(state.eta(), Some(at(13, 30)));
        assert_eq!(
            state.status(),
            Some(DeliveryStatus::Dispatched),
            "a delay does not change the status"
        );
    }

    #[test]
    fn only_a_dispatched_delivery_can_be_delayed_failed_or_completed_by_a_courier() {
        // Nobody dispatched it yet, so no courier holds it (the overdue check still marks it).
        let commands = [
            (report_delay(at(15, 0), "warehouse backlog"), "delay"),
            (fail("damaged"), "fail"),
            (complete(), "complete"),
        ];
        for (command, name) in commands {
            given::<Delivery>([scheduled()]).when(&command).then_error(
                DomainError::InvalidTransition {
                    kind: "delivery",
                    command: name,
                    status: "scheduled",
                },
            );
        }
    }

    #[test]
    fn only_the_courier_who_dispatched_a_delivery_may_delay_complete_or_fail_it() {
        let other = CourierId::parse("courier-8").unwrap();
        let delay = DeliveryCommand::ReportDelay {
            courier_id: other.clone(),
            new_eta: at(15, 0),
            reason: "traffic".into(),
        };
        let complete = DeliveryCommand::Complete {
            courier_id: other.clone(),
        };
        let fail = DeliveryCommand::Fail {
            courier_id: other,
            reason: "lost".into(),
        };
        let not_assigned = |command| DomainError::NotAssigned {
            kind: "delivery",
            command,
        };
        for (command, name) in [(&delay, "delay"), (&complete, "complete"), (&fail, "fail")] {
            given::<Delivery>([scheduled(), dispatched()])
                .when(command)
                .then_error(not_assigned(name));
        }
        // Repeats by another courier are refused too, not answered as no-ops.
        given::<Delivery>([scheduled(), dispatched(), completed()])
            .when(&complete)
            .then_error(not_assigned("complete"));
        given::<Delivery>([scheduled(), dispatched(), failed("lost")])
            .when(&fail)
            .then_error(not_assigned("fail"));
    }

    #[test]
    fn a_second_delay_is_numbered_two_and_starts_from_the_first_delays_eta() {
        let state = given::<Delivery>([
            scheduled(),
            dispatched(),
            delayed(1, at(12, 0), at(13, 0), "traffic"),
        ])
        .when(&report_delay(at(14, 0), "flat tyre"))
        .then([delayed(2, at(13, 0), at(14, 0), "flat tyre")]);
        assert_eq!(state.eta(), Some(at(14, 0)));
    }

    #[test]
    fn a_delay_must_move_the_eta_later() {
        let history = || [scheduled(), dispatched()];
        for new_eta in [at(12, 0), at(11, 0)] {
            given::<Delivery>(history())
                .when(&report_delay(new_eta, "traffic"))
                .then_invalid("new_eta");
        }
        given::<Delivery>([
            scheduled(),
            dispatched(),
            delayed(1, at(12, 0), at(13, 0), "traffic"),
        ])
        .when(&report_delay(at(12, 30), "traffic"))
        .then_invalid("new_eta");
    }

    #[test]
    fn a_delay_needs_a_short_plain_reason() {
        for reason in [
            String::new(),
            "   ".into(),
            "x".repeat(MAX_REASON_LEN + 1),
            "bad\nreason".into(),
        ] {
            given::<Delivery>([scheduled(), dispatched()])
                .when(&report_delay(at(13, 0), &reason))
                .then_invalid("reason");
        }
        given::<Delivery>([scheduled(), dispatched()])
            .when(&report_delay(at(13, 0), &"x".repeat(MAX_REASON_LEN)))
            .then([delayed(
                1,
                at(12, 0),
                at(13, 0),
                &"x".repeat(MAX_REASON_LEN),
            )]);
    }

    #[test]
    fn a_finished_delivery_cannot_be_delayed() {
        for (history, status) in finished() {
            given::<Delivery>(history)
                .when(&report_delay(at(13, 0), "traffic"))
                .then_error(refused("delay", status));
        }
    }

    // --- Mark overdue --------------------------------------------------------------------------

    #[test]
    fn an_overdue_delivery_is_marked_delayed() {
        let state = given::<Delivery>([scheduled(), dispatched()])
            .when(&mark_overdue(at(12, 1), at(13, 0)))
            .then([delayed(1, at(12, 0), at(13, 0), "overdue")]);
        assert_eq!(state.eta(), Some(at(13, 0)));
    }

    #[test]
    fn a_scheduled_delivery_that_was_never_picked_up_is_marked_overdue_too() {
        given::<Delivery>([scheduled()])
            .when(&mark_overdue(at(12, 5), at(14, 0)))
            .then([delayed(1, at(12, 0), at(14, 0), "overdue")]);
    }

    #[test]
    fn an_overdue_delivery_is_marked_once_per_delay() {
        let history = [
            scheduled(),
            dispatched(),
            delayed(1, at(12, 0), at(13, 0), "overdue"),
        ];
        for now in [at(12, 1), at(12, 30), at(13, 0)] {
            given::<Delivery>(history.clone())
                .when(&mark_overdue(now, at(14, 0)))
                .then_nothing();
        }
    }

    #[test]
    fn a_delivery_overdue_again_after_its_new_eta_is_marked_a_second_time() {
        given::<Delivery>([
            scheduled(),
            dispatched(),
            delayed(1, at(12, 0), at(13, 0), "overdue"),
        ])
        .when(&mark_overdue(at(13, 1), at(14, 0)))
        .then([delayed(2, at(13, 0), at(14, 0), "overdue")]);
    }

    #[test]
    fn a_delivery_that_is_not_past_its_eta_is_not_marked() {
        for now in [at(11, 0), at(12, 0)] {
            given::<Delivery>([scheduled(), dispatched()])
                .when(&mark_overdue(now, at(14, 0)))
                .then_nothing();
        }
    }

    #[test]
    fn an_overdue_mark_whose_new_eta_is_not_in_the_future_decides_nothing() {
        for new_eta in [at(12, 30), at(12, 10)] {
            given::<Delivery>([scheduled(), dispatched()])
                .when(&mark_overdue(at(12, 30), new_eta))
                .then_nothing();
        }
    }

    #[test]
    fn a_finished_delivery_is_never_marked_overdue() {
        for (history, _) in finished() {
            given::<Delivery>(history)
                .when(&mark_overdue(at(18, 0), at(19, 0)))
                .then_nothing();
        }
    }

    // --- Complete ------------------------------------------------------------------------------

    #[test]
    fn a_dispatched_delivery_is_completed() {
        let state = given::<Delivery>([scheduled(), dispatched()])
            .when(&complete())
            .then([completed()]);
        assert_eq!(state.status(), Some(DeliveryStatus::Completed));
    }

    #[test]
    fn a_delayed_delivery_is_completed() {
        given::<Delivery>([
            scheduled(),
            dispatched(),
            delayed(1, at(12, 0), at(13, 0), "traffic"),
        ])
        .when(&complete())
        .then([completed()]);
    }

    #[test]
    fn a_delivery_cannot_be_completed_before_it_is_dispatched() {
        given::<Delivery>([scheduled()])
            .when(&complete())
            .then_error(refused("complete", "scheduled"));
    }

    #[test]
    fn completing_a_delivery_twice_decides_nothing() {
        given::<Delivery>([scheduled(), dispatched(), completed()])
            .when(&complete())
            .then_nothing();
    }

    #[test]
    fn a_failed_or_cancelled_delivery_cannot_be_completed() {
        for (history, status) in finished()
            .into_iter()
            .filter(|(_, status)| *status != "completed")
        {
            given::<Delivery>(history)
                .when(&complete())
                .then_error(refused("complete", status));
        }
    }

    // --- Fail ----------------------------------------------------------------------------------

    #[test]
    fn a_dispatched_delivery_fails_with_the_couriers_reason() {
        let state = given::<Delivery>([scheduled(), dispatched()])
            .when(&fail(" recipient not at home "))
            .then([failed("recipient not at home")]);
        assert_eq!(state.status(), Some(DeliveryStatus::Failed));
    }

    #[test]
    fn a_failure_needs_a_short_plain_reason() {
        for reason in [String::new(), " ".into(), "x".repeat(MAX_REASON_LEN + 1)] {
            given::<Delivery>([scheduled(), dispatched()])
                .when(&fail(&reason))
                .then_invalid("reason");
        }
    }

    #[test]
    fn failing_a_delivery_twice_decides_nothing() {
        given::<Delivery>([scheduled(), dispatched(), failed("lost")])
            .when(&fail("lost"))
            .then_nothing();
    }

    #[test]
    fn a_completed_or_cancelled_delivery_cannot_fail() {
        for (history, status) in finished()
            .into_iter()
            .filter(|(_, status)| *status != "failed")
        {
            given::<Delivery>(history)
                .when(&fail("lost"))
                .then_error(refused("fail", status));
        }
    }

    // --- Cancel (reaction to OrderCancelled) ---------------------------------------------------

    #[test]
    fn a_scheduled_delivery_is_cancelled_with_its_order() {
        let state = given::<Delivery>([scheduled()])
            .when(&cancel())
            .then([cancelled()]);
        assert_eq!(state.status(), Some(DeliveryStatus::Cancelled));
    }

    #[test]
    fn a_cancellation_that_overtakes_the_placement_cancels_the_delivery_before_it_exists() {
        let state = given::<Delivery>([]).when(&cancel()).then([cancelled()]);
        assert_eq!(state.status(), Some(DeliveryStatus::Cancelled));
        assert_eq!(state.eta(), None);
        given::<Delivery>([cancelled()])
            .when(&schedule())
            .then_nothing();
        given::<Delivery>([cancelled()])
            .when(&dispatch())
            .then_error(refused("dispatch", "cancelled"));
    }

    #[test]
    fn cancelling_a_delivery_twice_decides_nothing() {
        for history in [vec![scheduled(), cancelled()], vec![cancelled()]] {
            given::<Delivery>(history).when(&cancel()).then_nothing();
        }
    }

    #[test]
    fn a_cancellation_after_dispatch_is_refused_explicitly_by_an_event() {
        let state = given::<Delivery>([scheduled(), dispatched()])
            .when(&cancel())
            .then([cancellation_refused(DeliveryStatus::Dispatched)]);
        assert_eq!(
            state.status(),
            Some(DeliveryStatus::Dispatched),
            "the parcel stays on its way"
        );
        // The cancellation stands: the parcel is recalled, so the delivery fails, never completes.
        given::<Delivery>([
            scheduled(),
            dispatched(),
            cancellation_refused(DeliveryStatus::Dispatched),
        ])
        .when(&fail("returned: the order was cancelled"))
        .then_events();
    }

    #[test]
    fn a_cancellation_after_completion_is_refused_explicitly_too() {
        given::<Delivery>([scheduled(), dispatched(), completed()])
            .when(&cancel())
            .then([cancellation_refused(DeliveryStatus::Completed)]);
    }

    #[test]
    fn the_cancel_after_dispatch_race_is_reported_once() {
        given::<Delivery>([
            scheduled(),
            dispatched(),
            cancellation_refused(DeliveryStatus::Dispatched),
        ])
        .when(&cancel())
        .then_nothing();
        given::<Delivery>([
            scheduled(),
            dispatched(),
            cancellation_refused(DeliveryStatus::Dispatched),
            completed(),
        ])
        .when(&cancel())
        .then_nothing();
    }

    #[test]
    fn cancelling_a_failed_delivery_decides_nothing() {
        given::<Delivery>([scheduled(), dispatched(), failed("lost")])
            .when(&cancel())
            .then_nothing();
    }

    #[test]
    fn the_refused_cancellation_names_the_status_on_the_wire() {
        let data = cancellation_refused(DeliveryStatus::Dispatched).to_data();
        assert_eq!(
            data,
            json!({
                "delivery_id": "d-o1",
                "order_id": "o1",
                "customer_id": "c1",
                "status": "dispatched",
            })
        );
    }

    // --- Evolve --------------------------------------------------------------------------------

    #[test]
    fn a_delivery_has_no_status_or_eta_before_anything_happens() {
        let state = Delivery::default();
        assert_eq!((state.status(), state.eta()), (None, None));
    }

    #[test]
    fn each_event_moves_the_delivery_to_its_status_and_eta() {
        let steps = [
            (scheduled(), DeliveryStatus::Scheduled, at(12, 0)),
            (dispatched(), DeliveryStatus::Dispatched, at(12, 0)),
            (
                delayed(1, at(12, 0), at(13, 0), "traffic"),
                DeliveryStatus::Dispatched,
                at(13, 0),
            ),
            (
                cancellation_refused(DeliveryStatus::Dispatched),
                DeliveryStatus::Dispatched,
                at(13, 0),
            ),
            (completed(), DeliveryStatus::Completed, at(13, 0)),
        ];
        let mut state = Delivery::default();
        for (event, status, eta) in steps {
            state = state.evolve(&event);
            assert_eq!(
                (state.status(), state.eta()),
                (Some(status), Some(eta)),
                "after {}",
                event.event_type()
            );
        }
    }

    #[test]
    fn failing_and_cancelling_set_their_statuses() {
        assert_eq!(
            Delivery::replay(&[scheduled(), dispatched(), failed("lost")]).status(),
            Some(DeliveryStatus::Failed)
        );
        assert_eq!(
            Delivery::replay(&[scheduled(), cancelled()]).status(),
            Some(DeliveryStatus::Cancelled)
        );
        let cancelled_first = Delivery::replay(&[cancelled()]);
        assert_eq!(
            (cancelled_first.status(), cancelled_first.eta()),
            (Some(DeliveryStatus::Cancelled), None)
        );
    }

    #[test]
    fn evolve_counts_delays_and_remembers_a_refused_cancellation() {
        let state = Delivery::replay(&[
            scheduled(),
            dispatched(),
            delayed(1, at(12, 0), at(13, 0), "traffic"),
            delayed(2, at(13, 0), at(14, 0), "overdue"),
            cancellation_refused(DeliveryStatus::Dispatched),
        ]);
        let known = state.known.expect("known");
        assert_eq!(known.delays, 2);
        assert_eq!(known.eta, Some(at(14, 0)));
        assert!(known.cancellation_refused);
        assert_eq!(known.delivery_id, delivery_id());
    }

    #[test]
    fn a_late_scheduled_event_does_not_revive_a_cancelled_delivery() {
        let state = Delivery::replay(&[cancelled(), scheduled()]);
        assert_eq!(
            (state.status(), state.eta()),
            (Some(DeliveryStatus::Cancelled), None)
        );
    }

    #[test]
    fn events_of_an_unknown_delivery_other_than_scheduled_or_cancelled_change_nothing() {
        for event in [
            dispatched(),
            delayed(1, at(12, 0), at(13, 0), "traffic"),
            completed(),
            failed("lost"),
            cancellation_refused(DeliveryStatus::Dispatched),
        ] {
            assert_eq!(Delivery::default().evolve(&event), Delivery::default());
        }
    }

    #[test]
    fn statuses_read_as_words() {
        let words = [
            DeliveryStatus::Scheduled,
            DeliveryStatus::Dispatched,
            DeliveryStatus::Completed,
            DeliveryStatus::Failed,
            DeliveryStatus::Cancelled,
        ]
        .map(DeliveryStatus::as_str);
        assert_eq!(
            words,
            [
                "scheduled",
                "dispatched",
                "completed",
                "failed",
                "cancelled"
            ]
        );
    }

    /// Scheduled, dispatched and delayed `count` times, an hour each (ETA 12:00 + `count` h).
    fn delayed_times(count: u32) -> Vec<DeliveryEvent> {
        let mut history = vec![scheduled(), dispatched()];
        for n in 1..=count {
            let previous = at(11 + n, 0);
            history.push(delayed(n, previous, at(12 + n, 0), "traffic"));
        }
        history
    }

    #[test]
    fn a_delivery_is_delayed_at_most_max_delays_times() {
        let history = delayed_times(MAX_DELAYS - 1);
        given::<Delivery>(history.clone())
            .when(&report_delay(at(23, 0), "traffic"))
            .then_events();
        let full = delayed_times(MAX_DELAYS);
        given::<Delivery>(full.clone())
            .when(&report_delay(at(23, 30), "still traffic"))
            .then_error(DomainError::LimitReached {
                kind: "delivery",
                command: "delay",
                limit: MAX_DELAYS,
            });
        // A repeat of the last report is still told apart (the API answers it as a retry).
        given::<Delivery>(full)
            .when(&report_delay(at(12 + MAX_DELAYS, 0), "traffic"))
            .then_invalid("new_eta");
    }

    #[test]
    fn the_overdue_check_stops_at_the_delay_limit_and_for_an_order_cancelled_under_way() {
        let late = at(23, 59);
        given::<Delivery>(delayed_times(MAX_DELAYS))
            .when(&mark_overdue(late, late + Duration::hours(24)))
            .then_nothing();
        given::<Delivery>(delayed_times(MAX_DELAYS - 1))
            .when(&mark_overdue(late, late + Duration::hours(24)))
            .then_events();
        given::<Delivery>([
            scheduled(),
            dispatched(),
            cancellation_refused(DeliveryStatus::Dispatched),
        ])
        .when(&mark_overdue(late, late + Duration::hours(24)))
        .then_nothing();
    }

    #[test]
    fn a_delivery_whose_order_was_cancelled_under_way_is_failed_not_completed() {
        let history = [
            scheduled(),
            dispatched(),
            cancellation_refused(DeliveryStatus::Dispatched),
        ];
        given::<Delivery>(history.clone())
            .when(&complete())
            .then_error(DomainError::InvalidTransition {
                kind: "delivery",
                command: "complete",
                status: "recalled: its order was cancelled",
            });
        given::<Delivery>(history)
            .when(&fail("returned: the order was cancelled"))
            .then_events();
    }
}
