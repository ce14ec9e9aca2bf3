//! The EventBridge adapter: [`EventBridgePublisher`] forwards stored events to the orderflow bus
//! (docs/architecture.md, "Delivery semantics": the publisher reading the events table's stream).
//!
//! One stored event is one `PutEvents` entry:
//!
//! | entry field | value |
//! | --- | --- |
//! | `EventBusName` | the bus |
//! | `Source` | [`event_source`] of the event's stream: `orderflow.order`, `orderflow.delivery`, `orderflow.alert` |
//! | `DetailType` | the event type, e.g. `OrderPlaced` |
//! | `Detail` | the whole [`StoredEvent`] envelope as JSON: a consumer deserialises `detail` back into it |
//! | `Time` | `occurred_at` |
//!
//! Rules deliver the EventBridge event as it is (no input transformer), so a consumer's SQS message
//! body is `{"detail-type": …, "source": …, "time": …, "detail": <envelope>, …}`.
//!
//! ## Batches, retries and order
//!
//! Entries go in batches of at most [`MAX_ENTRIES_PER_CALL`] entries and [`MAX_BYTES_PER_CALL`]
//! bytes (an entry's size counted as EventBridge counts it, plus the bus name for margin), one batch
//! after the other in the order given. Entries a call reports as failed (`FailedEntryCount`, an
//! `ErrorCode` per entry) are sent again, alone, after the [`Backoff`]'s wait; a call that fails as a
//! whole (throttling, a 5xx, the network) is repeated the same way. The SDK client's own retry for
//! transient call errors runs inside each of those attempts. What retrying cannot cure stops at once:
//! an event too large for an entry of its own, an entry refused as malformed or not authorised, a
//! call refused as invalid or not allowed.
//!
//! Once an event cannot be published, nothing after it is attempted, so a stream consumer that
//! retries from the first failed event keeps each stream's order. See [`EventBridgePublisher`] for
//! exactly what `publish` returns.

use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::config::http::HttpResponse;
use aws_sdk_eventbridge::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_eventbridge::operation::put_events::PutEventsError;
use aws_sdk_eventbridge::primitives::DateTime;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use tracing::{debug, info, instrument, warn};

use domain::envelope::{StoredEvent, UNKNOWN_SOURCE, event_source};
use domain::ports::{Backoff, EventPublisher, PublishError};

/// Most entries one `PutEvents` call takes (an EventBridge limit).
pub const MAX_ENTRIES_PER_CALL: usize = 10;

/// Most bytes of entries one `PutEvents` call takes, and so also the largest single entry
/// (an EventBridge limit: 256 KB).
pub const MAX_BYTES_PER_CALL: usize = 256 * 1024;

/// What EventBridge counts for an entry's `Time`.
const TIME_BYTES: usize = 14;

/// A retry policy suitable for a stream-triggered function: 4 attempts, waiting 100 ms, 200 ms,
/// 400 ms between them (under a second in all, on top of the SDK client's own retries).
pub const DEFAULT_BACKOFF: Backoff = Backoff {
    max_attempts: 4,
    initial: Duration::from_millis(100),
    max: Duration::from_secs(1),
};

/// Per-entry error codes that the same entry would get again: retrying cannot help.
const PERMANENT_ENTRY_ERRORS: &[&str] = &[
    "AccessDeniedException",
    "InvalidAccountIdException",
    "InvalidArgument",
    "MalformedDetail",
    "NotAuthorizedForDetailTypeException",
    "NotAuthorizedForSourceException",
    "RedactionFailure",
];

/// Call error codes that a later attempt may not get (besides any HTTP 5xx or 429).
const TRANSIENT_CALL_ERRORS: &[&str] = &[
    "InternalException",
    "InternalFailure",
    "RequestLimitExceeded",
    "RequestTimeout",
    "RequestTimeoutException",
    "ServiceUnavailable",
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
];

/// Publishes stored events to an EventBridge bus with `PutEvents`.
///
/// `publish(events)` returns:
/// - `Ok(())` when EventBridge accepted every event (an empty slice makes no call);
/// - `Err(PublishError::Unavailable(reason))` when not one event was accepted because the
///   `PutEvents` calls themselves failed (bus out of reach, throttled through every attempt, access
///   denied): the first event to retry is `events[0]`;
/// - `Err(PublishError::Partial { failed_event_ids })` otherwise: the ids of `events[k..]`, where
///   `events[k]` is the first event that could not be published, in their original order. Every
///   event before it was accepted. Events after it in the same batch may have been accepted too;
///   publishing them again from `events[k]` makes duplicates, which consumers tolerate
///   (at-least-once delivery), and keeps each stream's order.
///
/// The reasons carry error codes and HTTP statuses, never event payloads.
#[derive(Debug, Clone)]
pub struct EventBridgePublisher {
    client: Client,
    bus_name: String,
    backoff: Backoff,
}

impl EventBridgePublisher {
    /// A publisher to the bus `bus_name` (a name or an ARN), retrying with [`DEFAULT_BACKOFF`].
    pub fn new(client: Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
            backoff: DEFAULT_BACKOFF,
        }
    }

    /// The same publisher retrying with `backoff` instead.
    #[must_use]
    pub fn with_backoff(self, backoff: Backoff) -> Self {
        Self { backoff, ..self }
    }

    /// The bus events go to.
    pub fn bus_name(&self) -> &str {
        &self.bus_name
    }

    /// Sends one batch until every entry is accepted, an entry is refused for good, or the attempts
    /// run out. Sets `accepted_any` once EventBridge accepts an entry.
    async fn put_batch(
        &self,
        batch: &[Prepared<'_>],
        accepted_any: &mut bool,
    ) -> Result<(), BatchFailure> {
        let mut pending: Vec<usize> = (0..batch.len()).collect();
        // The first entry refused for good, and why: nothing from there on can be published.
        let mut refused: Option<(usize, String)> = None;
        let mut attempt = 1;
        loop {
            let entries: Vec<PutEventsRequestEntry> = pending
                .iter()
                .filter_map(|&index| batch.get(index))
                .map(|prepared| prepared.entry.clone())
                .collect();
            let sent = entries.len();
            let answer = self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await;
            let (retry, reason, call_failed) = match answer {
                Ok(output) => {
                    let mut retry = Vec::new();
                    let mut codes = Vec::new();
                    for (position, &index) in pending.iter().enumerate() {
                        match output.entries().get(position) {
                            Some(result) if result.error_code().is_none() => *accepted_any = true,
                            Some(result) => {
                                let code = result.error_code().unwrap_or("unknown");
                                if PERMANENT_ENTRY_ERRORS.contains(&code) {
                                    if refused.as_ref().is_none_or(|(at, _)| index < *at) {
                                        let id = batch.get(index).map_or("", |p| &p.event.event_id);
                                        refused =
                                            Some((index, format!("event {id} refused: {code}")));
                                    }
                                } else {
                                    retry.push(index);
                                    codes.push(code.to_owned());
                                }
                            }
                            // No result for the entry: it is not known to be accepted.
                            None => {
                                retry.push(index);
                                codes.push("no result entry".to_owned());
                            }
                        }
                    }
                    debug!(
                        attempt,
                        sent,
                        failed_entry_count = output.failed_entry_count(),
                        "PutEvents answered"
                    );
                    codes.dedup();
                    let reason = format!("entries failed: {}", codes.join(", "));
                    (retry, reason, false)
                }
                Err(error) => {
                    let (transient, reason) = classify(&error);
                    debug!(attempt, sent, transient, reason = %reason, "PutEvents failed");
                    if !transient {
                        return Err(BatchFailure {
                            first_failed: pending.first().copied().unwrap_or(0),
                            reason,
                            call_failed: true,
                        });
                    }
                    (pending.clone(), reason, true)
                }
            };
            pending = retry
                .into_iter()
                .filter(|&index| refused.as_ref().is_none_or(|(at, _)| index < *at))
                .collect();
            let Some(&first_pending) = pending.first() else {
                return match refused {
                    None => Ok(()),
                    Some((first_failed, reason)) => Err(BatchFailure {
                        first_failed,
                        reason,
                        call_failed: false,
                    }),
                };
            };
            if attempt >= self.backoff.max_attempts {
                return Err(BatchFailure {
                    first_failed: first_pending,
                    reason: format!("{reason} (after {attempt} attempts)"),
                    call_failed,
                });
            }
            tokio::time::sleep(self.backoff.delay(attempt)).await;
            attempt += 1;
        }
    }

    /// The error for giving up at `events[first]`, logged.
    fn give_up(
        &self,
        events: &[StoredEvent],
        first: usize,
        nothing_accepted: bool,
        reason: String,
    ) -> PublishError {
        let failed = events.get(first..).unwrap_or_default();
        warn!(
            published = first,
            failed = failed.len(),
            first_failed_event_id = failed.first().map_or("", |e| e.event_id.as_str()),
            reason = %reason,
            "publishing stopped"
        );
        if nothing_accepted {
            PublishError::Unavailable(reason)
        } else {
            PublishError::Partial {
                failed_event_ids: failed.iter().map(|e| e.event_id.clone()).collect(),
            }
        }
    }
}

#[async_trait]
impl EventPublisher for EventBridgePublisher {
    #[instrument(skip_all, fields(bus = %self.bus_name, events = events.len()))]
    async fn publish(&self, events: &[StoredEvent]) -> Result<(), PublishError> {
        let mut prepared = Vec::with_capacity(events.len());
        // The first event that cannot become an entry: only the events before it are sent.
        let mut unsendable: Option<(usize, String)> = None;
        for (index, event) in events.iter().enumerate() {
            match prepare(&self.bus_name, event) {
                Ok(entry) => prepared.push(entry),
                Err(reason) => {
                    unsendable = Some((index, reason));
                    break;
                }
            }
        }
        let sizes: Vec<usize> = prepared.iter().map(|p| p.size).collect();
        let batches = plan_batches(&sizes);
        let mut accepted_any = false;
        for batch in &batches {
            let Some(entries) = prepared.get(batch.clone()) else {
                continue;
            };
            if let Err(failure) = self.put_batch(entries, &mut accepted_any).await {
                let nothing_accepted = failure.call_failed && !accepted_any;
                return Err(self.give_up(
                    events,
                    batch.start + failure.first_failed,
                    nothing_accepted,
                    failure.reason,
                ));
            }
        }
        if let Some((index, reason)) = unsendable {
            return Err(self.give_up(events, index, false, reason));
        }
        if !events.is_empty() {
            info!(
                batches = batches.len(),
                published = events.len(),
                "published"
            );
        }
        Ok(())
    }
}

/// An event made into an entry.
struct Prepared<'a> {
    event: &'a StoredEvent,
    entry: PutEventsRequestEntry,
    size: usize,
}

/// How a batch ended when not every entry was accepted.
struct BatchFailure {
    /// Index within the batch of the first entry not accepted.
    first_failed: usize,
    /// Why (codes and statuses only).
    reason: String,
    /// Whether the last answer was a failed call rather than refused entries.
    call_failed: bool,
}

/// The `PutEvents` entry of one event, or why it cannot have one.
fn prepare<'a>(bus_name: &str, event: &'a StoredEvent) -> Result<Prepared<'a>, String> {
    let detail = serde_json::to_string(event)
        .map_err(|e| format!("event {} cannot be serialised: {e}", event.event_id))?;
    let source = event_source(&event.stream_id);
    if source == UNKNOWN_SOURCE {
        warn!(event_id = %event.event_id, stream_kind = event.stream_id.kind(), "event of an unknown stream kind");
    }
    let size = entry_size(bus_name, source, &event.event_type, &detail);
    if size > MAX_BYTES_PER_CALL {
        return Err(format!(
            "event {} needs a {size}-byte entry; EventBridge takes at most {MAX_BYTES_PER_CALL}",
            event.event_id
        ));
    }
    let entry = PutEventsRequestEntry::builder()
        .event_bus_name(bus_name)
        .source(source)
        .detail_type(&event.event_type)
        .detail(detail)
        .time(DateTime::from_millis(event.occurred_at.timestamp_millis()))
        .build();
    Ok(Prepared { event, entry, size })
}

/// An entry's size as EventBridge counts it (UTF-8 bytes of `Source`, `DetailType` and `Detail`,
/// 14 for `Time`), plus the bus name's bytes for margin.
fn entry_size(bus_name: &str, source: &str, detail_type: &str, detail: &str) -> usize {
    TIME_BYTES + bus_name.len() + source.len() + detail_type.len() + detail.len()
}

/// Splits entries of the given sizes, in order, into consecutive batches of at most
/// [`MAX_ENTRIES_PER_CALL`] entries and [`MAX_BYTES_PER_CALL`] bytes. An entry larger than the
/// limit on its own (which [`prepare`] never lets through) would get a batch of its own.
fn plan_batches(sizes: &[usize]) -> Vec<Range<usize>> {
    let mut batches = Vec::new();
    let mut start = 0;
    let mut bytes = 0usize;
    for (index, &size) in sizes.iter().enumerate() {
        let count = index - start;
        if count == MAX_ENTRIES_PER_CALL
            || (count > 0 && bytes.saturating_add(size) > MAX_BYTES_PER_CALL)
        {
            batches.push(start..index);
            start = index;
            bytes = 0;
        }
        bytes = bytes.saturating_add(size);
    }
    if start < sizes.len() {
        batches.push(start..sizes.len());
    }
    batches
}

/// Whether a failed call may succeed when repeated, and why it failed (code and status only: the
/// service's message may quote the entries).
fn classify(error: &SdkError<PutEventsError, HttpResponse>) -> (bool, String) {
    match error {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("unknown");
            let transient = matches!(service.err(), PutEventsError::InternalException(_))
                || status >= 500
                || status == 429
                || TRANSIENT_CALL_ERRORS.contains(&code);
            (
                transient,
                format!("PutEvents failed: {code} (HTTP {status})"),
            )
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => (
            true,
            format!("PutEvents failed: {}", DisplayErrorContext(error)),
        ),
        _ => (
            false,
            format!("PutEvents not sent: {}", DisplayErrorContext(error)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use aws_sdk_eventbridge::config::retry::RetryConfig;
    use aws_sdk_eventbridge::error::ErrorMetadata;
    use aws_sdk_eventbridge::operation::put_events::{PutEventsInput, PutEventsOutput};
    use aws_sdk_eventbridge::types::PutEventsResultEntry;
    use aws_sdk_eventbridge::types::error::InternalException;
    use aws_smithy_mocks::{MockResponse, RuleMode, mock, mock_client};
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use super::*;
    use domain::envelope::{Actor, CorrelationId};
    use domain::ids::StreamId;

    const BUS: &str = "orderflow-bus";
    const KB: usize = 1024;

    // ---- batching: pure functions ----

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // one batch, written as its range
    fn batches_hold_at_most_ten_entries() {
        let batches = plan_batches(&[100; 25]);
        assert_eq!(batches, [0..10, 10..20, 20..25]);
        assert_eq!(plan_batches(&[100; 10]), [0..10]);
        assert_eq!(plan_batches(&[]), Vec::<Range<usize>>::new());
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // one batch, written as its range
    fn batches_hold_at_most_256_kb() {
        // 3 × 100 KB: two fit (200 KB), the third starts a new batch.
        assert_eq!(plan_batches(&[100 * KB; 3]), [0..2, 2..3]);
        // Exactly the limit fits; one byte more does not.
        assert_eq!(plan_batches(&[128 * KB, 128 * KB]), [0..2]);
        assert_eq!(plan_batches(&[128 * KB, 128 * KB + 1]), [0..1, 1..2]);
        // Small entries after a large one fill up to the byte limit, then to ten.
        let mut sizes = vec![250 * KB];
        sizes.extend([KB; 12]);
        assert_eq!(plan_batches(&sizes), [0..7, 7..13]);
        // A full-size entry goes alone.
        assert_eq!(
            plan_batches(&[10, MAX_BYTES_PER_CALL, 10]),
            [0..1, 1..2, 2..3]
        );
    }

    #[test]
    fn batches_keep_the_order_and_cover_every_entry_once() {
        let sizes: Vec<usize> = (0..57).map(|i| (i * 7919) % (120 * KB) + 1).collect();
        let batches = plan_batches(&sizes);
        let covered: Vec<usize> = batches.iter().flat_map(|b| b.clone()).collect();
        assert_eq!(covered, (0..57).collect::<Vec<_>>());
        for batch in &batches {
            assert!(!batch.is_empty() && batch.len() <= MAX_ENTRIES_PER_CALL);
            assert!(sizes[batch.clone()].iter().sum::<usize>() <= MAX_BYTES_PER_CALL);
        }
    }

    #[test]
    fn an_entry_is_counted_the_way_eventbridge_counts_it_plus_the_bus() {
        // 14 for Time, then UTF-8 bytes (é is two).
        assert_eq!(
            entry_size("bus", "src", "Type", "{\"a\":\"é\"}"),
            14 + 3 + 3 + 4 + 10
        );
    }

    // ---- entries ----

    fn event(stream: &str, version: u64, data: serde_json::Value) -> StoredEvent {
        let (kind, id) = stream.split_once('#').unwrap();
        StoredEvent {
            event_id: format!("e-{id}-{version}"),
            event_type: "OrderPlaced".into(),
            schema_version: 1,
            stream_id: StreamId::new(kind, id),
            version,
            occurred_at: Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
                + chrono::Duration::milliseconds(250),
            correlation_id: CorrelationId::parse("req-1").unwrap(),
            causation_id: "req-1".into(),
            actor: Actor::system("test"),
            data,
        }
    }

    fn events(count: usize) -> Vec<StoredEvent> {
        (1..=count)
            .map(|n| event(&format!("order#o{n}"), 1, json!({"n": n})))
            .collect()
    }

    fn ids(events: &[StoredEvent]) -> Vec<String> {
        events.iter().map(|e| e.event_id.clone()).collect()
    }

    #[test]
    fn an_event_becomes_one_entry_with_the_envelope_as_detail() {
        let stored = event("delivery#d-o1", 3, json!({"reason": "traffic"}));
        let prepared = prepare(BUS, &stored).unwrap();
        let entry = &prepared.entry;
        assert_eq!(entry.event_bus_name(), Some(BUS));
        assert_eq!(entry.source(), Some("orderflow.delivery"));
        assert_eq!(entry.detail_type(), Some("OrderPlaced"));
        assert_eq!(
            entry.time().map(|t| t.to_millis().unwrap()),
            Some(stored.occurred_at.timestamp_millis())
        );
        assert!(entry.resources().is_empty());
        let detail: StoredEvent = serde_json::from_str(entry.detail().unwrap()).unwrap();
        assert_eq!(detail, stored);
        assert_eq!(
            prepared.size,
            14 + BUS.len()
                + "orderflow.delivery".len()
                + "OrderPlaced".len()
                + entry.detail().unwrap().len()
        );
    }

    #[test]
    fn an_event_too_large_for_an_entry_is_refused() {
        let big = event(
            "order#o1",
            1,
            json!({"blob": "x".repeat(MAX_BYTES_PER_CALL)}),
        );
        let reason = prepare(BUS, &big).err().unwrap();
        assert!(reason.contains("e-o1-1"), "{reason}");
        assert!(!reason.contains("xxxx"), "no payload in the reason");
    }

    // ---- the adapter against a mocked client ----

    /// What each PutEvents call carried: the event ids of its entries, in order.
    type Calls = Arc<Mutex<Vec<Vec<String>>>>;

    fn entry_ids(input: &PutEventsInput) -> Vec<String> {
        input
            .entries()
            .iter()
            .map(|entry| {
                serde_json::from_str::<StoredEvent>(entry.detail().unwrap())
                    .unwrap()
                    .event_id
            })
            .collect()
    }

    fn accepted(n: usize) -> PutEventsResultEntry {
        PutEventsResultEntry::builder()
            .event_id(format!("eb-{n}"))
            .build()
    }

    fn failed(code: &str) -> PutEventsResultEntry {
        PutEventsResultEntry::builder()
            .error_code(code)
            .error_message("test")
            .build()
    }

    /// A `PutEvents` answer with these per-entry results and the matching `FailedEntryCount`.
    fn output(results: Vec<PutEventsResultEntry>) -> PutEventsOutput {
        let failed = results.iter().filter(|r| r.error_code().is_some()).count();
        PutEventsOutput::builder()
            .failed_entry_count(i32::try_from(failed).unwrap())
            .set_entries(Some(results))
            .build()
    }

    type Answer = MockResponse<PutEventsOutput, PutEventsError>;

    /// A publisher whose client answers call number `n` (0-based) carrying `ids` with
    /// `answer(n, ids)`, recording every call.
    fn publisher<F>(max_attempts: u32, answer: F) -> (EventBridgePublisher, Calls)
    where
        F: Fn(usize, &[String]) -> Answer + Send + Sync + 'static,
    {
        let calls: Calls = Arc::default();
        let recorded = calls.clone();
        let rule = mock!(Client::put_events).then_compute_response(move |input| {
            let ids = entry_ids(input);
            let mut calls = recorded.lock().unwrap();
            let n = calls.len();
            calls.push(ids.clone());
            answer(n, &ids)
        });
        let client = mock_client!(
            aws_sdk_eventbridge,
            RuleMode::MatchAny,
            &[&rule],
            |config| config.retry_config(RetryConfig::disabled())
        );
        let backoff = Backoff {
            max_attempts,
            initial: Duration::from_millis(1),
            max: Duration::from_millis(2),
        };
        (
            EventBridgePublisher::new(client, BUS).with_backoff(backoff),
            calls,
        )
    }

    /// Accepts every entry.
    fn accept_all(ids: &[String]) -> Answer {
        MockResponse::Output(output((0..ids.len()).map(accepted).collect()))
    }

    /// Fails the entries whose ids are in `failing` with `code`, accepts the rest.
    fn fail_some(ids: &[String], failing: &[&str], code: &str) -> Answer {
        MockResponse::Output(output(
            ids.iter()
                .enumerate()
                .map(|(n, id)| {
                    if failing.contains(&id.as_str()) {
                        failed(code)
                    } else {
                        accepted(n)
                    }
                })
                .collect(),
        ))
    }

    fn throttled() -> Answer {
        MockResponse::Error(PutEventsError::generic(
            ErrorMetadata::builder()
                .code("ThrottlingException")
                .message("Rate exceeded")
                .build(),
        ))
    }

    fn calls_of(calls: &Calls) -> Vec<Vec<String>> {
        calls.lock().unwrap().clone()
    }

    fn strs(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    #[tokio::test]
    async fn nothing_to_publish_makes_no_call() {
        let (publisher, calls) = publisher(3, |_, ids| accept_all(ids));
        assert_eq!(publisher.publish(&[]).await, Ok(()));
        assert!(calls_of(&calls).is_empty());
    }

    #[tokio::test]
    async fn events_go_in_order_in_batches_of_ten() {
        let (publisher, calls) = publisher(3, |_, ids| accept_all(ids));
        let events = events(25);
        assert_eq!(publisher.publish(&events).await, Ok(()));
        let calls = calls_of(&calls);
        assert_eq!(calls.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
        assert_eq!(calls.concat(), ids(&events));
    }

    #[tokio::test]
    async fn large_events_are_split_by_bytes() {
        let (publisher, calls) = publisher(3, |_, ids| accept_all(ids));
        let events: Vec<StoredEvent> = (1..=5)
            .map(|n| {
                event(
                    &format!("order#o{n}"),
                    1,
                    json!({"blob": "x".repeat(100 * KB)}),
                )
            })
            .collect();
        assert_eq!(publisher.publish(&events).await, Ok(()));
        assert_eq!(
            calls_of(&calls).iter().map(Vec::len).collect::<Vec<_>>(),
            [2, 2, 1]
        );
    }

    #[tokio::test]
    async fn a_failed_entry_is_retried_alone_and_then_succeeds() {
        let (publisher, calls) = publisher(3, |n, ids| match n {
            0 => fail_some(ids, &["e-o2-1"], "ThrottlingException"),
            _ => accept_all(ids),
        });
        let events = events(3);
        assert_eq!(publisher.publish(&events).await, Ok(()));
        assert_eq!(
            calls_of(&calls),
            [strs(&["e-o1-1", "e-o2-1", "e-o3-1"]), strs(&["e-o2-1"])]
        );
    }

    #[tokio::test]
    async fn failures_past_the_attempts_are_reported_with_every_later_event() {
        // Two batches (10 + 2); in the first, o4 and o7 fail at every attempt.
        let (publisher, calls) = publisher(3, |_, ids| {
            fail_some(ids, &["e-o4-1", "e-o7-1"], "InternalFailure")
        });
        let events = events(12);
        let result = publisher.publish(&events).await;
        assert_eq!(
            result,
            Err(PublishError::Partial {
                failed_event_ids: ids(&events[3..])
            }),
            "the first failed event and every later one, in order"
        );
        assert_eq!(
            calls_of(&calls),
            [
                ids(&events[..10]),
                strs(&["e-o4-1", "e-o7-1"]),
                strs(&["e-o4-1", "e-o7-1"]),
            ],
            "three attempts, then the second batch is not attempted"
        );
    }

    #[tokio::test]
    async fn a_refused_entry_stops_at_once_after_earlier_ones_are_retried() {
        let (publisher, calls) = publisher(5, |n, ids| match n {
            0 => MockResponse::Output(output(vec![
                failed("ThrottlingException"),
                failed("MalformedDetail"),
                failed("ThrottlingException"),
                accepted(3),
            ])),
            _ => accept_all(ids),
        });
        let events = events(4);
        assert_eq!(
            publisher.publish(&events).await,
            Err(PublishError::Partial {
                failed_event_ids: ids(&events[1..])
            })
        );
        assert_eq!(
            calls_of(&calls),
            [ids(&events), strs(&["e-o1-1"])],
            "only the entry before the refused one is retried"
        );
    }

    #[tokio::test]
    async fn a_throttled_call_is_retried_whole() {
        let (publisher, calls) = publisher(3, |n, ids| match n {
            0 => throttled(),
            _ => accept_all(ids),
        });
        let events = events(4);
        assert_eq!(publisher.publish(&events).await, Ok(()));
        assert_eq!(calls_of(&calls), [ids(&events), ids(&events)]);
    }

    #[tokio::test]
    async fn a_bus_failing_every_call_is_unavailable_after_the_attempts() {
        let (publisher, calls) = publisher(4, |_, _| {
            MockResponse::Error(PutEventsError::InternalException(
                InternalException::builder().message("boom").build(),
            ))
        });
        let events = events(12);
        let result = publisher.publish(&events).await;
        assert!(
            matches!(&result, Err(PublishError::Unavailable(reason)) if reason.contains("4 attempts")),
            "{result:?}"
        );
        assert_eq!(calls_of(&calls), vec![ids(&events[..10]); 4]);
    }

    #[tokio::test]
    async fn a_call_refused_for_good_is_not_repeated() {
        let (publisher, calls) = publisher(4, |_, _| {
            MockResponse::Error(PutEventsError::generic(
                ErrorMetadata::builder()
                    .code("AccessDeniedException")
                    .build(),
            ))
        });
        let result = publisher.publish(&events(2)).await;
        assert!(
            matches!(&result, Err(PublishError::Unavailable(reason)) if reason.contains("AccessDeniedException")),
            "{result:?}"
        );
        assert_eq!(calls_of(&calls).len(), 1);
    }

    #[tokio::test]
    async fn a_call_failing_after_earlier_batches_were_accepted_is_partial() {
        let (publisher, calls) = publisher(2, |n, ids| match n {
            0 => accept_all(ids),
            _ => throttled(),
        });
        let events = events(15);
        assert_eq!(
            publisher.publish(&events).await,
            Err(PublishError::Partial {
                failed_event_ids: ids(&events[10..])
            })
        );
        assert_eq!(calls_of(&calls).len(), 3);
    }

    #[tokio::test]
    async fn a_call_failing_after_some_entries_were_accepted_is_partial() {
        // o1 fails as an entry, o2 is accepted; the retry of o1 then fails as a call.
        let (publisher, _calls) = publisher(2, |n, ids| match n {
            0 => fail_some(ids, &["e-o1-1"], "InternalFailure"),
            _ => throttled(),
        });
        let events = events(2);
        assert_eq!(
            publisher.publish(&events).await,
            Err(PublishError::Partial {
                failed_event_ids: ids(&events)
            }),
            "not Unavailable: o2 was published"
        );
    }

    #[tokio::test]
    async fn an_event_too_large_is_reported_and_nothing_after_it_is_sent() {
        let (publisher, calls) = publisher(3, |_, ids| accept_all(ids));
        let mut events = events(3);
        events[1].data = json!({"blob": "x".repeat(MAX_BYTES_PER_CALL)});
        assert_eq!(
            publisher.publish(&events).await,
            Err(PublishError::Partial {
                failed_event_ids: ids(&events[1..])
            })
        );
        assert_eq!(calls_of(&calls), [strs(&["e-o1-1"])]);
    }

    #[tokio::test]
    async fn a_missing_result_entry_counts_as_failed() {
        let (publisher, calls) = publisher(3, |n, ids| match n {
            0 => MockResponse::Output(output(vec![accepted(0)])),
            _ => accept_all(ids),
        });
        let events = events(2);
        assert_eq!(publisher.publish(&events).await, Ok(()));
        assert_eq!(calls_of(&calls), [ids(&events), strs(&["e-o2-1"])]);
    }
}
