//! The SQS event source mapping: pollers per queue-fed function (as many as the mapping's
//! `ScalingConfig.MaximumConcurrency`, Lambda's five by default, at most the instances the local
//! Lambda emulator runs per function), each with one batch in flight. A poller long-polls the queue,
//! gathers up to `BatchSize` messages for at most `MaximumBatchingWindowInSeconds`, invokes the
//! function with the SQS event and then, as Lambda does:
//!
//! - success: deletes every message (`DeleteMessageBatch`);
//! - `ReportBatchItemFailures` with named failures: deletes the others and leaves the failed ones,
//!   which return after the visibility timeout (so the queue's redrive policy moves a message that
//!   keeps failing to its DLQ after `maxReceiveCount` receives);
//! - a function error, timeout or invalid partial response: deletes nothing.
//!
//! Failed messages are made visible again after the queue's `VisibilityTimeout` capped at
//! [`SqsPoller::retry_after`] (a few seconds), so local retries do not take a minute.

use std::time::{Duration, Instant};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::batch_response::{BatchVerdict, parse_batch_response};
use super::invoke::Invoker;
use super::sqs_event::lambda_event;
use super::stack::QueueMapping;

/// SQS's largest receive.
const MAX_RECEIVE: usize = 10;
/// SQS's longest long poll.
const LONG_POLL_SECONDS: i32 = 20;
/// The same, as a duration (the SQS client's call timeout allows for it).
pub const LONG_POLL: Duration = Duration::from_secs(LONG_POLL_SECONDS as u64);

/// A running poller's settings.
#[derive(Debug, Clone)]
pub struct SqsPoller {
    /// The mapping.
    pub mapping: QueueMapping,
    /// The queue's URL.
    pub queue_url: String,
    /// The queue's ARN.
    pub queue_arn: String,
    /// The region, for records.
    pub region: String,
    /// The local cap on the visibility timeout of failed messages.
    pub retry_after: Duration,
}

/// Which messages to delete after an invoke (indices into the batch), and why the rest stay.
pub fn to_delete(
    mapping: &QueueMapping,
    result: Result<&serde_json::Value, &str>,
    message_ids: &[&str],
) -> (Vec<usize>, Option<String>) {
    let all: Vec<usize> = (0..message_ids.len()).collect();
    match result {
        Err(reason) => (Vec::new(), Some(reason.to_owned())),
        Ok(_) if !mapping.report_batch_item_failures => (all, None),
        Ok(answer) => match parse_batch_response(answer, message_ids) {
            BatchVerdict::AllSucceeded => (all, None),
            BatchVerdict::Failed(failed) => {
                let reason = format!("{} message(s) reported failed", failed.len());
                (
                    all.into_iter().filter(|i| !failed.contains(i)).collect(),
                    Some(reason),
                )
            }
            BatchVerdict::Invalid(reason) => (
                Vec::new(),
                Some(format!("invalid batch response: {reason}")),
            ),
        },
    }
}

impl SqsPoller {
    /// The visibility timeout given to failed messages.
    pub fn failed_visibility(&self) -> Duration {
        self.mapping.visibility_timeout.min(self.retry_after)
    }

    /// Looks up the queue's URL and ARN.
    pub async fn resolve(
        sqs: &Client,
        mapping: QueueMapping,
        region: &str,
        retry_after: Duration,
    ) -> anyhow::Result<Self> {
        let queue_url = sqs
            .get_queue_url()
            .queue_name(&mapping.queue.name)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "queue {} of {}: {}",
                    mapping.queue.name,
                    mapping.name,
                    aws_sdk_sqs::error::DisplayErrorContext(e)
                )
            })?
            .queue_url
            .unwrap_or_default();
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "queue {}: {}",
                    mapping.queue.name,
                    aws_sdk_sqs::error::DisplayErrorContext(e)
                )
            })?
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .unwrap_or_default();
        Ok(Self {
            mapping,
            queue_url,
            queue_arn,
            region: region.to_owned(),
            retry_after,
        })
    }

    /// Polls until `shutdown`.
    pub async fn run(self, sqs: Client, invoker: Invoker, shutdown: CancellationToken) {
        let function = self.mapping.function.handler.as_str();
        info!(function, queue = %self.mapping.queue.name, batch_size = self.mapping.batch_size, window_ms = self.mapping.batching_window.as_millis() as u64, "SQS poller started");
        while !shutdown.is_cancelled() {
            let batch = tokio::select! {
                () = shutdown.cancelled() => return,
                batch = self.gather(&sqs) => batch,
            };
            let messages = match batch {
                Ok(messages) if messages.is_empty() => continue,
                Ok(messages) => messages,
                Err(error) => {
                    warn!(function, queue = %self.mapping.queue.name, %error, "receive failed; retrying in 1 s");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            // An invoke in flight finishes even on shutdown, so its messages are settled.
            self.deliver(&sqs, &invoker, &messages).await;
        }
    }

    /// One round without waiting: the messages there are now (up to a batch) delivered and
    /// settled as [`Self::run`] does. Returns how many. The saga tests call it step by step, with
    /// the functions in their process.
    pub async fn poll_once(&self, sqs: &Client, invoker: &Invoker) -> anyhow::Result<usize> {
        let messages = self.receive(sqs, self.mapping.batch_size, 0).await?;
        if !messages.is_empty() {
            self.deliver(sqs, invoker, &messages).await;
        }
        Ok(messages.len())
    }

    /// One batch: a long poll for the first message, then more until the batch is full or the
    /// window has passed.
    async fn gather(&self, sqs: &Client) -> anyhow::Result<Vec<Message>> {
        let batch_size = self.mapping.batch_size;
        let mut messages = self.receive(sqs, batch_size, LONG_POLL_SECONDS).await?;
        if messages.is_empty() {
            return Ok(messages);
        }
        let window_ends = Instant::now() + self.mapping.batching_window;
        while messages.len() < batch_size {
            let left = window_ends.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let wait = i32::try_from(left.as_secs()).unwrap_or(LONG_POLL_SECONDS);
            let more = self.receive(sqs, batch_size - messages.len(), wait).await?;
            if more.is_empty() && wait == 0 {
                tokio::time::sleep(left.min(Duration::from_millis(100))).await;
            }
            messages.extend(more);
        }
        Ok(messages)
    }

    async fn receive(
        &self,
        sqs: &Client,
        wanted: usize,
        wait_seconds: i32,
    ) -> anyhow::Result<Vec<Message>> {
        let received = sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(i32::try_from(wanted.min(MAX_RECEIVE)).unwrap_or(1))
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        Ok(received.messages.unwrap_or_default())
    }

    /// Deletes the messages at `delete` (`DeleteMessageBatch`, ten at a time, as Lambda does) and
    /// gives the others the failed-message visibility timeout, so they return for a retry.
    async fn settle(&self, sqs: &Client, messages: &[Message], ids: &[&str], delete: &[usize]) {
        let function = &self.mapping.function.handler;
        let entries: Vec<DeleteMessageBatchRequestEntry> = delete
            .iter()
            .filter_map(|&index| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .receipt_handle(messages[index].receipt_handle().unwrap_or_default())
                    .build()
                    .ok()
            })
            .collect();
        for chunk in entries.chunks(MAX_RECEIVE) {
            match sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(chunk.to_vec()))
                .send()
                .await
            {
                Ok(output) => {
                    for failed in output.failed() {
                        let message_id = failed
                            .id()
                            .parse::<usize>()
                            .ok()
                            .and_then(|index| ids.get(index))
                            .copied()
                            .unwrap_or_default();
                        warn!(%function, message_id, code = failed.code(), reason = ?failed.message(), "could not delete a processed message; it will be delivered again");
                    }
                }
                Err(error) => {
                    warn!(%function, messages = chunk.len(), error = %aws_sdk_sqs::error::DisplayErrorContext(&error), "could not delete processed messages; they will be delivered again")
                }
            }
        }
        for (index, message) in messages.iter().enumerate() {
            if delete.contains(&index) {
                continue;
            }
            let returned = sqs
                .change_message_visibility()
                .queue_url(&self.queue_url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .visibility_timeout(i32::try_from(self.failed_visibility().as_secs()).unwrap_or(0))
                .send()
                .await;
            if let Err(error) = returned {
                warn!(%function, message_id = ids[index], error = %aws_sdk_sqs::error::DisplayErrorContext(&error), "could not return a failed message early; it returns after the queue's visibility timeout");
            }
        }
    }

    /// Invokes the function with `messages` and settles them.
    async fn deliver(&self, sqs: &Client, invoker: &Invoker, messages: &[Message]) {
        let function = &self.mapping.function;
        let event = lambda_event(messages, &self.queue_arn, &self.region);
        let started = Instant::now();
        let result = invoker.deliver_batch(function, &event).await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let ids: Vec<&str> = messages
            .iter()
            .map(|m| m.message_id().unwrap_or_default())
            .collect();
        let reason = result.as_ref().err().map(|e| e.reason());
        let (delete, failure) = to_delete(
            &self.mapping,
            result
                .as_ref()
                .map_err(|_| reason.as_deref().unwrap_or_default()),
            &ids,
        );
        self.settle(sqs, messages, &ids, &delete).await;
        match failure {
            None => {
                info!(function = %function.handler, queue = %self.mapping.queue.name, messages = messages.len(), elapsed_ms, "SQS batch processed")
            }
            Some(reason) => warn!(
                function = %function.handler,
                queue = %self.mapping.queue.name,
                messages = messages.len(),
                deleted = delete.len(),
                failed = messages.len() - delete.len(),
                retry_in_s = self.failed_visibility().as_secs(),
                receive_counts = ?messages.iter().map(|m| m.attributes().and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount)).cloned().unwrap_or_default()).collect::<Vec<_>>(),
                elapsed_ms,
                %reason,
                "SQS batch failed"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::stack::{FunctionSpec, QueueRef};

    fn mapping(report: bool) -> QueueMapping {
        QueueMapping {
            name: "Fn.Queue".into(),
            function: FunctionSpec {
                logical_id: "Fn".into(),
                handler: "fn".into(),
                name: "fn".into(),
                timeout: Duration::from_secs(10),
            },
            queue: QueueRef {
                logical_id: "Q".into(),
                name: "q".into(),
            },
            batch_size: 10,
            batching_window: Duration::from_secs(1),
            report_batch_item_failures: report,
            visibility_timeout: Duration::from_secs(60),
            max_concurrency: None,
            enabled: true,
        }
    }

    const IDS: &[&str] = &["m1", "m2", "m3"];

    #[test]
    fn success_deletes_everything() {
        let (delete, failure) =
            to_delete(&mapping(true), Ok(&json!({"batchItemFailures": []})), IDS);
        assert_eq!(delete, [0, 1, 2]);
        assert_eq!(failure, None);
    }

    #[test]
    fn reported_failures_stay_and_the_rest_is_deleted() {
        let answer = json!({"batchItemFailures": [{"itemIdentifier": "m2"}]});
        let (delete, failure) = to_delete(&mapping(true), Ok(&answer), IDS);
        assert_eq!(delete, [0, 2]);
        assert!(failure.is_some());
        // Without ReportBatchItemFailures the response is not read.
        let (delete, failure) = to_delete(&mapping(false), Ok(&answer), IDS);
        assert_eq!(delete, [0, 1, 2]);
        assert_eq!(failure, None);
    }

    #[test]
    fn errors_and_invalid_responses_delete_nothing() {
        let (delete, failure) = to_delete(&mapping(true), Err("timed out after 10s"), IDS);
        assert!(delete.is_empty());
        assert_eq!(failure.as_deref(), Some("timed out after 10s"));
        let answer = json!({"batchItemFailures": [{"itemIdentifier": "nope"}]});
        let (delete, _) = to_delete(&mapping(true), Ok(&answer), IDS);
        assert!(delete.is_empty());
    }

    #[test]
    fn failed_messages_come_back_after_the_capped_visibility_timeout() {
        let poller = SqsPoller {
            mapping: mapping(true),
            queue_url: String::new(),
            queue_arn: String::new(),
            region: "us-east-1".into(),
            retry_after: Duration::from_secs(3),
        };
        assert_eq!(poller.failed_visibility(), Duration::from_secs(3));
    }
}
