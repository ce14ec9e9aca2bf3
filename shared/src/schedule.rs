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
