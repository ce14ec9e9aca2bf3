//! Functions run on a schedule (an EventBridge Scheduler or rule invoking them with a
//! `Scheduled Event`): the convention every one follows.

use crate::consumer::HandlerError;

/// The one convention of every scheduled function: one run per invocation, answering what it did
/// (a JSON summary) or why it could not run (the invocation fails: the schedule's retries, then its
/// dead-letter queue).
#[async_trait::async_trait]
pub trait ScheduledHandler: Send + Sync {
    /// One run.
    async fn run(&self) -> Result<serde_json::Value, HandlerError>;
}

/// One run of `handler`, its failure counted by kind (the convention's one wrapper, as
/// [`handle_queue_batch`](crate::consumer::handle_queue_batch) is the queues').
pub async fn run_scheduled(
    handler: &dyn ScheduledHandler,
) -> Result<serde_json::Value, HandlerError> {
    let outcome = handler.run().await;
    if let Err(failure) = &outcome {
        domain::telemetry::handler_error(failure.into());
    }
    outcome
}
