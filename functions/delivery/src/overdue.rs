//! `delivery-overdue-check`: on a schedule, every delivery still on its way whose ETA has passed
//! is marked delayed (`DeliveryDelayed`, reason "overdue", a new ETA one extension ahead) — once
//! per delay: the aggregate decides nothing for a delivery already marked for this ETA, and the
//! board (the read model) lists it only while it is on its way.

use chrono::Duration;
use domain::delivery::{Delivery, DeliveryCommand};
use domain::envelope::{Actor, CorrelationId, EventContext};
use domain::ids::StreamId;
use domain::ports::{Clock, EventStore};
use domain::read_model::DeliveryBoard;
use domain::repository::{self, CommandError};
use lambda_glue::consumer::HandlerError;
use lambda_glue::schedule::ScheduledHandler;
use tracing::{info, warn};

/// The handler's name (its actor and log field).
pub const NAME: &str = "delivery-overdue-check";
/// Most deliveries one run marks (the next run takes the rest).
pub const MAX_PER_RUN: u32 = 200;

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checked {
    /// Overdue deliveries on the board.
    pub overdue: u32,
    /// Marked delayed now.
    pub marked: u32,
    /// Already marked, or moved on since the board was read.
    pub unchanged: u32,
    /// Failed (left for the next run).
    pub failed: u32,
}

/// Why a run could not even read the board.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("delivery board unavailable: {0}")]
pub struct BoardUnavailable(pub String);

/// The check as its function runs it (the schedule convention, [`ScheduledHandler`]).
pub struct OverdueCheck<'a> {
    /// The board of deliveries on their way.
    pub board: &'a dyn DeliveryBoard,
    /// The event store.
    pub store: &'a dyn EventStore,
    /// Where time comes from.
    pub clock: &'a dyn Clock,
    /// How far ahead a delay moves the ETA.
    pub extension: Duration,
}

#[async_trait::async_trait]
impl ScheduledHandler for OverdueCheck<'_> {
    async fn run(&self) -> Result<serde_json::Value, HandlerError> {
        // A board that cannot be read fails the run (the schedule's retries, then its DLQ).
        let checked = check_overdue(self.board, self.store, self.clock, self.extension)
            .await
            .map_err(|e| HandlerError::Retryable(e.to_string()))?;
        Ok(serde_json::json!({
            "overdue": checked.overdue,
            "marked": checked.marked,
            "unchanged": checked.unchanged,
            "failed": checked.failed,
        }))
    }
}

/// One run of the check.
pub async fn check_overdue(
    board: &dyn DeliveryBoard,
    store: &dyn EventStore,
    clock: &dyn Clock,
    extension: Duration,
) -> Result<Checked, BoardUnavailable> {
    let now = clock.now();
    let overdue = board
        .overdue(now, MAX_PER_RUN)
        .await
        .map_err(|e| BoardUnavailable(e.to_string()))?;
    let run = CorrelationId::generate();
    let mut checked = Checked {
        overdue: u32::try_from(overdue.len()).unwrap_or(u32::MAX),
        ..Checked::default()
    };
    for delivery in overdue {
        let context = EventContext {
            correlation_id: run.clone(),
            causation_id: run.as_str().to_owned(),
            actor: Actor::system(NAME),
            occurred_at: now,
        };
        let command = DeliveryCommand::MarkOverdue {
            now,
            new_eta: now + extension,
        };
        let stream = StreamId::delivery(&delivery.delivery_id);
        match repository::execute::<Delivery>(store, &stream, &command, &context, None, 3).await {
            Ok(stored) if stored.is_empty() => checked.unchanged += 1,
            Ok(_) => {
                info!(delivery_id = %delivery.delivery_id, order_id = %delivery.order_id, eta = %delivery.eta, "marked overdue");
                checked.marked += 1;
            }
            Err(CommandError::Domain(refusal)) => {
                info!(delivery_id = %delivery.delivery_id, %refusal, "moved on since the board was read");
                checked.unchanged += 1;
            }
            Err(CommandError::Store(error)) => {
                warn!(delivery_id = %delivery.delivery_id, %error, "not marked; the next run retries");
                checked.failed += 1;
            }
        }
    }
    info!(correlation_id = %run, overdue = checked.overdue, marked = checked.marked, unchanged = checked.unchanged, failed = checked.failed, "overdue check done");
    Ok(checked)
}

#[cfg(test)]
mod tests;
