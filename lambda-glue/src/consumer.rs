//! SQS consumers (docs/architecture.md, "Delivery semantics"): every per-event handler is fed by
//! its own queue, which an EventBridge rule fills with the bus's events (the envelope as `detail`,
//! no input transformer).
//!
//! [`handle_sqs_batch`] runs a handler over a batch and answers `batchItemFailures` naming exactly
//! the messages that failed, so succeeded messages are deleted and failed ones come back after the
//! visibility timeout, until the queue's redrive policy moves them to the handler's DLQ. One bad
//! message never fails its batch-mates. A message that can never succeed (not an EventBridge event,
//! an envelope that does not decode, an unknown event type or schema version) fails at once, without
//! calling the handler, so it reaches the DLQ after `maxReceiveCount` receives.

use std::future::Future;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::stream::{self, StreamExt};
use serde::Deserialize;
use serde_json::Value;
use tracing::{Instrument, error, info, info_span, warn};

use domain::envelope::StoredEvent;
use domain::events::DecodeError;
use domain::telemetry::{self, ErrorKind};
use domain::upcasting::upcast;

/// Why a handler did not finish with a message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HandlerError {
    /// The message can never succeed (undecodable, or a domain refusal that no retry changes).
    #[error("poison message: {0}")]
    Poison(String),
    /// A dependency failed; a later delivery may succeed.
    #[error("retryable failure: {0}")]
    Retryable(String),
}

impl From<DecodeError> for HandlerError {
    fn from(error: DecodeError) -> Self {
        Self::Poison(error.to_string())
    }
}

impl From<&HandlerError> for ErrorKind {
    fn from(error: &HandlerError) -> Self {
        match error {
            HandlerError::Poison(_) => ErrorKind::Poison,
            HandlerError::Retryable(_) => ErrorKind::Transient,
        }
    }
}

/// What a reaction's command outcome means for its message.
///
/// - stored events, or none (a repeat or an overtaken reaction): done;
/// - the domain refusing the transition: done, with a warning — a reaction arriving after the
///   aggregate moved on (a dispatch after the customer cancelled) is a race that another event
///   resolves explicitly, and no redelivery could change the answer;
/// - a transient store failure or a lost version race (after the bounded retries): retryable;
/// - anything else (invalid data, corrupt stream, an aggregate that should exist and does not):
///   poison, for a person to look at in the DLQ.
pub fn reaction_result(
    result: Result<Vec<StoredEvent>, domain::repository::CommandError>,
) -> Result<(), HandlerError> {
    use domain::DomainError;
    use domain::ports::StoreError;
    use domain::repository::CommandError;
    match result {
        Ok(stored) => {
            if stored.is_empty() {
                info!("nothing to do: already applied");
            } else {
                let types: Vec<&str> = stored.iter().map(|e| e.event_type.as_str()).collect();
                info!(events = ?types, "stored");
            }
            Ok(())
        }
        Err(CommandError::Domain(refusal @ DomainError::InvalidTransition { .. })) => {
            warn!(%refusal, "the aggregate moved on: nothing to do");
            Ok(())
        }
        Err(CommandError::Store(
            error @ (StoreError::Unavailable(_) | StoreError::Conflict { .. }),
        )) => Err(HandlerError::Retryable(error.to_string())),
        Err(error) => Err(HandlerError::Poison(error.to_string())),
    }
}

/// The parts of an EventBridge event a consumer reads.
#[derive(Deserialize)]
struct BusEvent {
    #[serde(rename = "detail-type")]
    detail_type: String,
    detail: Value,
}

/// Reads an SQS message body that an EventBridge rule delivered: the stored event, upcast to the
/// current schema version.
pub fn event_from_sqs_body(body: &str) -> Result<StoredEvent, DecodeError> {
    let malformed = |reason: String| DecodeError::Malformed {
        event_type: "(EventBridge event)".into(),
        reason,
    };
    let bus_event: BusEvent = serde_json::from_str(body).map_err(|e| malformed(e.to_string()))?;
    let event: StoredEvent =
        serde_json::from_value(bus_event.detail).map_err(|e| malformed(e.to_string()))?;
    if event.event_type != bus_event.detail_type {
        return Err(malformed(format!(
            "detail-type {} does not match the envelope's event type {}",
            bus_event.detail_type, event.event_type
        )));
    }
    upcast(event)
}

/// The one convention of every function fed by a queue (one event type, routed by its rule): it
/// handles one decoded event at a time; the batch around it (decoding, `batchItemFailures`, how
/// many at once) is [`handle_queue_batch`]'s, the same for all of them.
#[async_trait::async_trait]
pub trait EventHandler: Send + Sync {
    /// The function's name (its Lambda, its actor, its log field).
    fn name(&self) -> &'static str;

    /// How many of a batch's events it handles at once: 1 (in order) unless its work is mostly
    /// waiting on other services (see [`handle_sqs_batch_concurrently`]).
    fn events_at_once(&self) -> usize {
        1
    }

    /// Handles one event.
    async fn handle(&self, event: StoredEvent) -> Result<(), HandlerError>;
}

/// Runs an [`EventHandler`] over an SQS batch, naming the messages that failed.
pub async fn handle_queue_batch(handler: &dyn EventHandler, batch: &SqsEvent) -> SqsBatchResponse {
    let handle = |event| handler.handle(event);
    match handler.events_at_once() {
        0 | 1 => handle_sqs_batch(handler.name(), batch, handle).await,
        at_once => handle_sqs_batch_concurrently(handler.name(), batch, at_once, handle).await,
    }
}

/// Runs `handler` on every message of `batch`, in order, and names the failed ones.
pub async fn handle_sqs_batch<F, Fut>(
    handler_name: &str,
    batch: &SqsEvent,
    handler: F,
) -> SqsBatchResponse
where
    F: Fn(StoredEvent) -> Fut,
    Fut: Future<Output = Result<(), HandlerError>>,
{
    let mut response = SqsBatchResponse::default();
    for message in &batch.records {
        if let Some(failed) = handle_message(handler_name, message, &handler).await {
            response.add_failure(failed);
        }
    }
    response
}

/// [`handle_sqs_batch`] with up to `parallel` messages handled at once: for handlers whose work
/// is mostly waiting on other services (a notification: a marker read, a publish, a marker
/// write). Messages that carry the same event (a duplicate delivery in one batch) are still
/// handled one after the other, so a handler's processed-event marker written for the first is
/// seen by the second.
pub async fn handle_sqs_batch_concurrently<F, Fut>(
    handler_name: &str,
    batch: &SqsEvent,
    parallel: usize,
    handler: F,
) -> SqsBatchResponse
where
    F: Fn(StoredEvent) -> Fut,
    Fut: Future<Output = Result<(), HandlerError>>,
{
    // Messages by event, as positions in the batch: owned values, so the batch's future is `Send`
    // whenever the handler's is (a closure over borrowed messages is not provably so).
    let mut by_event: Vec<(String, Vec<usize>)> = Vec::new();
    for (index, message) in batch.records.iter().enumerate() {
        let key = event_key(message);
        match by_event.iter_mut().find(|(k, _)| *k == key) {
            Some((_, messages)) => messages.push(index),
            None => by_event.push((key, vec![index])),
        }
    }
    let handler = &handler;
    let records = &batch.records;
    let failed: Vec<Vec<String>> = stream::iter(by_event)
        .map(|(_, messages)| async move {
            let mut failed = Vec::new();
            for index in messages {
                failed.extend(handle_message(handler_name, &records[index], handler).await);
            }
            failed
        })
        .buffer_unordered(parallel.max(1))
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    for message_id in failed.into_iter().flatten() {
        response.add_failure(message_id);
    }
    response
}

/// What tells two messages of one event apart from two events: the envelope's event id in the
/// EventBridge detail, or (a body that is no envelope) the message's own id.
fn event_key(message: &SqsMessage) -> String {
    serde_json::from_str::<Value>(message.body.as_deref().unwrap_or_default())
        .ok()
        .and_then(|body| body["detail"]["event_id"].as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("message:{}", message.message_id.as_deref().unwrap_or("")))
}

/// Handles one message: the id of the message when it failed (to be named in the response).
async fn handle_message<F, Fut>(
    handler_name: &str,
    message: &SqsMessage,
    handler: &F,
) -> Option<String>
where
    F: Fn(StoredEvent) -> Fut,
    Fut: Future<Output = Result<(), HandlerError>>,
{
    let message_id = message.message_id.clone().unwrap_or_default();
    let receive_count = message
        .attributes
        .get("ApproximateReceiveCount")
        .cloned()
        .unwrap_or_default();
    let event = match event_from_sqs_body(message.body.as_deref().unwrap_or_default()) {
        Ok(event) => event,
        Err(reason) => {
            error!(handler = handler_name, %message_id, %receive_count, %reason, "poison message: fails at once, bound for the DLQ");
            telemetry::handler_error(ErrorKind::Poison);
            return Some(message_id);
        }
    };
    let span = info_span!(
        "message",
        handler = handler_name,
        %message_id,
        event_id = %event.event_id,
        event_type = %event.event_type,
        stream_id = %event.stream_id,
        correlation_id = %event.correlation_id,
    );
    let outcome = handler(event).instrument(span.clone()).await;
    let _entered = span.enter();
    match outcome {
        Ok(()) => {
            info!("handled");
            None
        }
        Err(failure) => {
            telemetry::handler_error(ErrorKind::from(&failure));
            match failure {
                HandlerError::Poison(reason) => {
                    error!(%receive_count, %reason, "message can never succeed: bound for the DLQ");
                }
                HandlerError::Retryable(reason) => {
                    warn!(%receive_count, %reason, "failed; the queue will redeliver");
                }
            }
            Some(message_id)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fixtures::{bus_event_body, failed_ids, sqs_event};

    #[test]
    fn handler_errors_map_to_their_kind() {
        assert_eq!(
            ErrorKind::from(&HandlerError::Poison("x".into())),
            ErrorKind::Poison
        );
        assert_eq!(
            ErrorKind::from(&HandlerError::Retryable("x".into())),
            ErrorKind::Transient
        );
    }

    const V1: &str = include_str!("../../schemas/samples/OrderPlaced-v1.json");

    fn stored() -> StoredEvent {
        serde_json::from_str(V1).unwrap()
    }

    #[test]
    fn a_rule_delivered_body_reads_back_as_the_upcast_envelope() {
        let event = event_from_sqs_body(&bus_event_body(&stored())).unwrap();
        assert_eq!(event.event_id, stored().event_id);
        assert_eq!(event.schema_version, 2, "upcast on read");
        assert_eq!(event.data["currency"], "EUR");
    }

    #[test]
    fn bodies_that_are_not_envelopes_are_malformed() {
        assert!(event_from_sqs_body("not json").is_err());
        assert!(
            event_from_sqs_body(&json!({"detail-type": "X", "detail": {}}).to_string()).is_err()
        );
        let mut body: Value = serde_json::from_str(&bus_event_body(&stored())).unwrap();
        body["detail-type"] = json!("OrderShipped");
        assert!(
            event_from_sqs_body(&body.to_string()).is_err(),
            "detail-type must match"
        );
        body["detail-type"] = json!("OrderPlaced");
        body["detail"]["schema_version"] = json!(9);
        assert!(matches!(
            event_from_sqs_body(&body.to_string()),
            Err(DecodeError::UnsupportedSchemaVersion { .. })
        ));
    }

    #[tokio::test]
    async fn exactly_the_failed_messages_are_reported() {
        let good = bus_event_body(&stored());
        let batch = sqs_event(&[good.clone(), "garbage".into(), good.clone(), good]);
        let calls = std::sync::atomic::AtomicU32::new(0);
        let response = handle_sqs_batch("test", &batch, |_event| {
            let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                match n {
                    1 => Err(HandlerError::Retryable("down".into())),
                    _ => Ok(()),
                }
            }
        })
        .await;
        assert_eq!(failed_ids(&response), ["m-1", "m-2"]);
        assert_eq!(
            calls.load(std::sync::atomic::Ordering::SeqCst),
            3,
            "the poison message never reaches the handler"
        );
    }

    #[tokio::test]
    async fn distinct_events_are_handled_side_by_side_and_one_events_copies_one_after_another() {
        use std::sync::Mutex;
        use std::sync::atomic::{AtomicUsize, Ordering};

        let event = |id: &str| {
            let mut event = stored();
            event.event_id = id.to_owned();
            bus_event_body(&event)
        };
        // Two copies of event a (a duplicate delivery), b, c and a poison body.
        let batch = sqs_event(&[
            event("a"),
            event("b"),
            event("a"),
            event("c"),
            "garbage".into(),
        ]);
        let in_flight = AtomicUsize::new(0);
        let most_in_flight = AtomicUsize::new(0);
        let copies_of_a_in_flight = AtomicUsize::new(0);
        let overlapping_copies = AtomicUsize::new(0);
        let handled = Mutex::new(Vec::new());
        let response = handle_sqs_batch_concurrently("test", &batch, 3, |event| {
            let (in_flight, most, copies, overlapping, handled) = (
                &in_flight,
                &most_in_flight,
                &copies_of_a_in_flight,
                &overlapping_copies,
                &handled,
            );
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let is_a = event.event_id == "a";
                if is_a && copies.fetch_add(1, Ordering::SeqCst) > 0 {
                    overlapping.fetch_add(1, Ordering::SeqCst);
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                if is_a {
                    copies.fetch_sub(1, Ordering::SeqCst);
                }
                in_flight.fetch_sub(1, Ordering::SeqCst);
                handled.lock().unwrap().push(event.event_id.clone());
                match event.event_id.as_str() {
                    "c" => Err(HandlerError::Retryable("down".into())),
                    _ => Ok(()),
                }
            }
        })
        .await;
        let mut failed = failed_ids(&response);
        failed.sort();
        assert_eq!(failed, ["m-3", "m-4"], "the failed event and the poison");
        let mut handled = handled.into_inner().unwrap();
        handled.sort();
        assert_eq!(handled, ["a", "a", "b", "c"]);
        assert_eq!(
            most_in_flight.load(Ordering::SeqCst),
            3,
            "three events at once"
        );
        assert_eq!(
            overlapping_copies.load(Ordering::SeqCst),
            0,
            "the two copies of one event never overlap"
        );
    }
}
