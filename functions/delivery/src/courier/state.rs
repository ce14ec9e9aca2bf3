//! `GET /deliveries/{id}`: the delivery's current state, folded from its event stream (a delivery
//! stream is a handful of events, read whole with one consistent `Query`), with the history it was
//! folded from. Status and ETA come from the domain's own fold ([`Delivery`]), so this view never
//! disagrees with what a command would be decided on.

use chrono::{DateTime, Utc};
use domain::Aggregate;
use domain::address::strip_addresses;
use domain::delivery::{Delivery, DeliveryEvent, DeliveryStatus};
use domain::envelope::{Actor, CorrelationId, StoredEvent};
use domain::ids::{CourierId, CustomerId, DeliveryId, OrderId, StreamId};
use domain::ports::StoreError;
use lambda_glue::http::caller::{Caller, Group};
use lambda_glue::http::problem::{Problem, json_response};
use lambda_http::Request;
use lambda_http::http::StatusCode;
use serde_json::{Value, json};

use super::{App, Handled, delivery_id};

/// A delivery as its events say it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryState {
    /// The delivery.
    pub delivery_id: DeliveryId,
    /// Its order.
    pub order_id: OrderId,
    /// Its customer.
    pub customer_id: CustomerId,
    /// Where it is in its life.
    pub status: DeliveryStatus,
    /// The promise made when it was scheduled (`None` if it was cancelled before that).
    pub promised_by: Option<DateTime<Utc>>,
    /// The current estimated arrival: the promise, or the latest delay's new ETA.
    pub eta: Option<DateTime<Utc>>,
    /// How many delays were reported (by couriers or the overdue check).
    pub delays: u32,
    /// The courier who dispatched it.
    pub courier_id: Option<CourierId>,
    /// The latest delay, as reported.
    pub latest_delay: Option<DelayReport>,
    /// The stream version the state is at.
    pub version: u64,
}

/// One reported delay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelayReport {
    /// The ETA it set.
    pub new_eta: DateTime<Utc>,
    /// Why.
    pub reason: String,
    /// Who reported it.
    pub actor: Actor,
}

impl DeliveryState {
    /// Folds a stream's events (oldest first, as loaded). `None` when the stream holds nothing
    /// that makes a delivery exist — the same cases in which a command is answered 404.
    pub fn fold(history: &[StoredEvent]) -> Result<Option<Self>, StoreError> {
        let mut aggregate = Delivery::default();
        let mut state: Option<Self> = None;
        for stored in history {
            let event = stored
                .decode::<DeliveryEvent>()
                .map_err(|source| StoreError::Corrupt {
                    stream_id: stored.stream_id.clone(),
                    version: stored.version,
                    source,
                })?;
            aggregate = aggregate.evolve(&event);
            if aggregate.status().is_none() {
                continue;
            }
            let current = state.get_or_insert_with(|| Self::new(&event));
            match &event {
                DeliveryEvent::DeliveryScheduled(scheduled) if aggregate.eta().is_some() => {
                    current.promised_by = Some(scheduled.promised_by);
                }
                DeliveryEvent::DeliveryDispatched(dispatched) => {
                    current.courier_id = Some(dispatched.courier_id.clone());
                }
                DeliveryEvent::DeliveryDelayed(delayed) => {
                    current.delays = current.delays.max(delayed.delay_number);
                    current.latest_delay = Some(DelayReport {
                        new_eta: delayed.new_eta,
                        reason: delayed.reason.clone(),
                        actor: stored.actor.clone(),
                    });
                }
                _ => {}
            }
            current.version = stored.version;
        }
        Ok(state.and_then(|mut state| {
            state.status = aggregate.status()?;
            state.eta = aggregate.eta();
            Some(state)
        }))
    }

    fn new(first: &DeliveryEvent) -> Self {
        let (delivery_id, order_id, customer_id) = ids(first);
        Self {
            delivery_id,
            order_id,
            customer_id,
            status: DeliveryStatus::Scheduled,
            promised_by: None,
            eta: None,
            delays: 0,
            courier_id: None,
            latest_delay: None,
            version: 0,
        }
    }

    /// The state as the API shows it.
    pub fn body(&self) -> Value {
        json!({
            "delivery_id": self.delivery_id.as_str(),
            "order_id": self.order_id.as_str(),
            "customer_id": self.customer_id.as_str(),
            "status": self.status.as_str(),
            "promised_by": self.promised_by,
            "eta": self.eta,
            "delays": self.delays,
            "courier_id": self.courier_id.as_ref().map(CourierId::as_str),
            "version": self.version,
        })
    }
}

/// The ids every delivery event carries.
fn ids(event: &DeliveryEvent) -> (DeliveryId, OrderId, CustomerId) {
    macro_rules! ids {
        ($e:expr) => {
            (
                $e.delivery_id.clone(),
                $e.order_id.clone(),
                $e.customer_id.clone(),
            )
        };
    }
    match event {
        DeliveryEvent::DeliveryScheduled(e) => ids!(e),
        DeliveryEvent::DeliveryDispatched(e) => ids!(e),
        DeliveryEvent::DeliveryDelayed(e) => ids!(e),
        DeliveryEvent::DeliveryCompleted(e) => ids!(e),
        DeliveryEvent::DeliveryFailed(e) => ids!(e),
        DeliveryEvent::DeliveryCancelled(e) => ids!(e),
        DeliveryEvent::DeliveryCancellationRefused(e) => ids!(e),
    }
}

/// `GET /deliveries/{id}`.
pub async fn get_delivery(
    app: &App,
    raw_id: &str,
    request: &Request,
    correlation_id: &CorrelationId,
) -> Handled {
    let caller = Caller::from_request(request)?;
    let support = caller.is(Group::Support);
    if !support {
        caller.require(Group::Couriers)?;
    }
    let delivery_id = delivery_id(raw_id)?;
    let stream = StreamId::new(Delivery::KIND, &delivery_id);
    let mut history = app
        .store
        .load(&stream)
        .await
        .map_err(|e| Problem::from_store(&e, "delivery"))?;
    let Some(state) =
        DeliveryState::fold(&history).map_err(|e| Problem::from_store(&e, "delivery"))?
    else {
        return Err(Problem::not_found(format!(
            "delivery {delivery_id} not found"
        )));
    };
    let mut body = state.body();
    if !support {
        // Only support sees stored events with the delivery address.
        strip_addresses(&mut history);
    }
    body["events"] = json!(history);
    Ok(json_response(StatusCode::OK, &body, correlation_id))
}

#[cfg(test)]
mod tests;
