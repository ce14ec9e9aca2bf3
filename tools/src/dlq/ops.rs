//! The SQS side of `orderflow dlq`: finding the stage's dead-letter queues, reading their
//! messages without taking them, and moving a dead-letter queue's messages back to its source.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageSystemAttributeName,
    QueueAttributeName,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{Letter, QueueKind, QueueSummary, Received, decode};
use crate::cli::MoveMethod;
use crate::progress::Progress;

/// How long `show` holds the messages it reads (so a second read returns others); they are
/// released as soon as it is done, and reappear by themselves after this if it is stopped.
const PEEK_HOLD_SECONDS: i32 = 30;
/// How long `redrive --method copy` holds a message between receiving and deleting it.
const MOVE_HOLD_SECONDS: i32 = 60;
/// Attributes EventBridge adds to what a rule could not deliver; not sent back to the source.
const DELIVERY_ERROR_ATTRIBUTES: [&str; 4] =
    ["ERROR_CODE", "ERROR_MESSAGE", "RULE_ARN", "TARGET_ARN"];

/// A dead-letter queue of the stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// What it holds.
    pub kind: QueueKind,
}

/// What a redrive of a dead-letter queue did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Moved {
    /// How the messages were moved (`move-task` or `copy`).
    pub method: String,
    /// Messages now in the source queue.
    pub moved: u64,
    /// Messages left in the dead-letter queue (when the move was interrupted or failed).
    pub left: u64,
    /// Why it stopped before the queue was empty.
    pub stopped: Option<String>,
}

/// The stage's queues, through SQS.
#[derive(Debug, Clone)]
pub struct Queues {
    sqs: Client,
    stage: String,
}

fn sqs_error<E>(error: aws_sdk_sqs::error::SdkError<E>) -> anyhow::Error
where
    E: std::error::Error + Send + Sync + 'static,
    aws_sdk_sqs::Error: From<aws_sdk_sqs::error::SdkError<E>>,
{
    anyhow::Error::new(aws_sdk_sqs::Error::from(error))
}

impl Queues {
    /// The queues of `stage`.
    pub fn new(sqs: Client, stage: impl Into<String>) -> Self {
        Self {
            sqs,
            stage: stage.into(),
        }
    }

    /// Every dead-letter queue of the stage, by name, with its depth and oldest message.
    pub async fn list(&self) -> Result<Vec<QueueSummary>> {
        let mut summaries = Vec::new();
        for queue in self.all().await? {
            let depth = self.depth(&queue.url).await?;
            let oldest = if depth == 0 {
                None
            } else {
                self.sample(&queue.url, 10, 0)
                    .await?
                    .iter()
                    .filter_map(|m| m.sent_at)
                    .min()
                    .map(|sent| (Utc::now() - sent).num_seconds())
            };
            summaries.push(QueueSummary {
                name: queue.name,
                kind: queue.kind,
                depth,
                oldest_age_seconds: oldest,
            });
        }
        Ok(summaries)
    }

    async fn all(&self) -> Result<Vec<Queue>> {
        let mut queues: Vec<Queue> = stage_queues(&self.sqs, &self.stage)
            .await?
            .into_iter()
            .filter_map(|(name, url)| {
                let kind = QueueKind::of(&self.stage, &name)?;
                Some(Queue { name, url, kind })
            })
            .collect();
        queues.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(queues)
    }

    /// The dead-letter queue `queue` names (its name or URL); fails for any other queue.
    pub async fn resolve(&self, queue: &str) -> Result<Queue> {
        let name = queue.rsplit('/').next().unwrap_or(queue).to_owned();
        let Some(kind) = QueueKind::of(&self.stage, &name) else {
            bail!(
                "{name} is not a dead-letter queue of stage {} (`orderflow dlq list` shows them)",
                self.stage
            );
        };
        let url = self.url(&name).await?;
        Ok(Queue { name, url, kind })
    }

    async fn url(&self, name: &str) -> Result<String> {
        self.sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(sqs_error)
            .with_context(|| format!("no queue {name}"))?
            .queue_url
            .with_context(|| format!("no URL for the queue {name}"))
    }

    /// Messages in the queue at `url`, visible or in flight.
    pub async fn depth(&self, url: &str) -> Result<u64> {
        queue_depth(&self.sqs, url).await
    }

    async fn arn(&self, url: &str) -> Result<String> {
        self.sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(sqs_error)
            .with_context(|| format!("the ARN of {url}"))?
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .with_context(|| format!("no ARN for {url}"))
    }

    /// Up to `limit` messages of the queue at `url`, each read once, held for `hold` seconds.
    async fn sample(&self, url: &str, limit: usize, hold: i32) -> Result<Vec<Received>> {
        let mut seen: Vec<(Received, String)> = Vec::new();
        while seen.len() < limit {
            let wanted = i32::try_from((limit - seen.len()).min(10)).unwrap_or(10);
            let messages = self.receive(url, wanted, hold, 0).await?;
            let before = seen.len();
            for message in messages {
                let received = received(&message);
                if seen
                    .iter()
                    .all(|(s, _)| s.message_id != received.message_id)
                {
                    seen.push((received, message.receipt_handle.unwrap_or_default()));
                }
            }
            if seen.len() == before || hold == 0 {
                break;
            }
        }
        if hold > 0 {
            self.release(url, seen.iter().map(|(_, receipt)| receipt.as_str()))
                .await?;
        }
        Ok(seen.into_iter().map(|(received, _)| received).collect())
    }

    pub(super) async fn receive(
        &self,
        url: &str,
        max: i32,
        hold: i32,
        wait: i32,
    ) -> Result<Vec<Message>> {
        Ok(self
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max)
            .visibility_timeout(hold)
            .wait_time_seconds(wait)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(sqs_error)
            .with_context(|| format!("receiving from {url}"))?
            .messages
            .unwrap_or_default())
    }

    /// Makes the messages of `receipts` visible again now.
    pub(super) async fn release<'a>(
        &self,
        url: &str,
        receipts: impl Iterator<Item = &'a str>,
    ) -> Result<()> {
        let receipts: Vec<&str> = receipts.collect();
        for chunk in receipts.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(n, receipt)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(n.to_string())
                        .receipt_handle(*receipt)
                        .visibility_timeout(0)
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .context("releasing messages")?;
            self.sqs
                .change_message_visibility_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(sqs_error)
                .with_context(|| format!("releasing the messages read from {url}"))?;
        }
        Ok(())
    }

    /// Deletes a message of the queue at `url` that was dealt with.
    pub(super) async fn delete(&self, url: &str, receipt: &str) -> Result<()> {
        self.sqs
            .delete_message()
            .queue_url(url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(sqs_error)
            .with_context(|| format!("deleting a message from {}", queue_name(url)))?;
        Ok(())
    }

    /// Up to `limit` messages of `queue`, decoded; they stay in the queue.
    pub async fn show(&self, queue: &Queue, limit: usize) -> Result<Vec<Letter>> {
        let messages = self.sample(&queue.url, limit, PEEK_HOLD_SECONDS).await?;
        Ok(messages.iter().map(|m| decode(&queue.kind, m)).collect())
    }

    /// The messages of `queue` (whose kind must be a handler's dead letters) back into their
    /// source queue, by `method`, at most `rate` a second, until the queue is empty or `stop` is
    /// cancelled (then the message in hand is finished first: nothing is lost or sent twice).
    pub async fn move_to_source(
        &self,
        queue: &Queue,
        method: MoveMethod,
        rate: Option<u32>,
        progress: &Progress,
        stop: &CancellationToken,
    ) -> Result<Moved> {
        let QueueKind::DeadLetters { source } = &queue.kind else {
            bail!("{} holds no messages of a source queue", queue.name);
        };
        let source_url = self.url(source).await?;
        if method != MoveMethod::Copy {
            match self
                .move_task(queue, &source_url, rate, progress, stop)
                .await
            {
                Ok(moved) => return Ok(moved),
                Err(MoveTaskError::Unsupported(code)) if method == MoveMethod::Auto => {
                    progress.update(format!(
                        "this SQS has no message move task ({code}): copying one message at a time"
                    ));
                }
                Err(MoveTaskError::Unsupported(code)) => {
                    bail!("this SQS has no message move task ({code}); try --method copy")
                }
                Err(MoveTaskError::Failed(error)) => return Err(error),
            }
        }
        self.copy(queue, &source_url, rate, progress, stop).await
    }

    async fn move_task(
        &self,
        queue: &Queue,
        source_url: &str,
        rate: Option<u32>,
        progress: &Progress,
        stop: &CancellationToken,
    ) -> Result<Moved, MoveTaskError> {
        let from = self.arn(&queue.url).await.map_err(MoveTaskError::Failed)?;
        let to = self.arn(source_url).await.map_err(MoveTaskError::Failed)?;
        let started = self
            .sqs
            .start_message_move_task()
            .source_arn(&from)
            .destination_arn(&to)
            .set_max_number_of_messages_per_second(rate.and_then(|r| i32::try_from(r).ok()))
            .send()
            .await;
        if let Err(error) = started {
            let code = error.code().unwrap_or_default().to_owned();
            if is_unsupported(&code, error.raw_response().map(|r| r.status().as_u16())) {
                let status = error.raw_response().map(|r| r.status().as_u16());
                return Err(MoveTaskError::Unsupported(if code.is_empty() {
                    format!(
                        "it answered HTTP {} without an error code",
                        status.map_or_else(|| "?".into(), |s| s.to_string())
                    )
                } else {
                    code
                }));
            }
            return Err(MoveTaskError::Failed(sqs_error(error).context(format!(
                "starting a message move task from {}",
                queue.name
            ))));
        }
        let mut interrupted = false;
        loop {
            tokio::select! {
                () = stop.cancelled(), if !interrupted => {
                    // The task runs in SQS: stopping this command does not stop it.
                    progress.update("the move task runs on in SQS; waiting for it to end (it cannot lose a message)");
                    interrupted = true;
                }
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            let tasks = self
                .sqs
                .list_message_move_tasks()
                .source_arn(&from)
                .max_results(1)
                .send()
                .await
                .map_err(|e| {
                    MoveTaskError::Failed(sqs_error(e).context("reading the move task"))
                })?;
            let Some(task) = tasks.results().first() else {
                continue;
            };
            let moved = u64::try_from(task.approximate_number_of_messages_moved()).unwrap_or(0);
            let status = task.status().unwrap_or("RUNNING");
            progress.update(format!(
                "move task {status}: {moved} of {} moved",
                task.approximate_number_of_messages_to_move()
                    .map_or_else(|| "?".into(), |n| n.to_string())
            ));
            if matches!(status, "COMPLETED" | "FAILED" | "CANCELLED") {
                let left = self
                    .depth(&queue.url)
                    .await
                    .map_err(MoveTaskError::Failed)?;
                return Ok(Moved {
                    method: "move-task".into(),
                    moved,
                    left,
                    stopped: (status != "COMPLETED").then(|| {
                        format!(
                            "the move task {}: {}",
                            status.to_lowercase(),
                            task.failure_reason().unwrap_or("no reason given")
                        )
                    }),
                });
            }
        }
    }

    async fn copy(
        &self,
        queue: &Queue,
        source_url: &str,
        rate: Option<u32>,
        progress: &Progress,
        stop: &CancellationToken,
    ) -> Result<Moved> {
        let pause = rate.map(|r| Duration::from_secs_f64(1.0 / f64::from(r.max(1))));
        let mut moved = 0;
        let mut empty_rounds = 0;
        let mut stopped = None;
        'rounds: while empty_rounds < 2 {
            if stop.is_cancelled() {
                stopped = Some("interrupted".to_owned());
                break;
            }
            let messages = self.receive(&queue.url, 10, MOVE_HOLD_SECONDS, 1).await?;
            if messages.is_empty() {
                empty_rounds += 1;
                continue;
            }
            empty_rounds = 0;
            let mut messages = messages.into_iter();
            while let Some(message) = messages.next() {
                if stop.is_cancelled() {
                    // Not yet sent: give it and the rest of the batch back right away.
                    let rest: Vec<Message> = std::iter::once(message).chain(messages).collect();
                    self.release(
                        &queue.url,
                        rest.iter().filter_map(|m| m.receipt_handle.as_deref()),
                    )
                    .await?;
                    stopped = Some("interrupted".to_owned());
                    break 'rounds;
                }
                self.send_back(source_url, &message).await?;
                self.delete(
                    &queue.url,
                    message.receipt_handle.as_deref().unwrap_or_default(),
                )
                .await?;
                moved += 1;
                progress.update(format!("{moved} moved to {}", queue_name(source_url)));
                if let Some(pause) = pause {
                    tokio::time::sleep(pause).await;
                }
            }
        }
        let left = self.depth(&queue.url).await?;
        Ok(Moved {
            method: "copy".into(),
            moved,
            left,
            stopped,
        })
    }

    async fn send_back(&self, source_url: &str, message: &Message) -> Result<()> {
        let attributes = message.message_attributes.clone().map(|mut attributes| {
            attributes.retain(|name, _| !DELIVERY_ERROR_ATTRIBUTES.contains(&name.as_str()));
            attributes
        });
        self.sqs
            .send_message()
            .queue_url(source_url)
            .message_body(message.body.as_deref().unwrap_or_default())
            .set_message_attributes(attributes.filter(|a| !a.is_empty()))
            .send()
            .await
            .map_err(sqs_error)
            .with_context(|| format!("sending a message back to {}", queue_name(source_url)))?;
        Ok(())
    }
}

/// Every queue of `stage` (named `orderflow-<stage>-…`): (name, URL), all pages.
pub async fn stage_queues(sqs: &Client, stage: &str) -> Result<Vec<(String, String)>> {
    let prefix = format!("orderflow-{stage}-");
    let mut queues = Vec::new();
    let mut token = None;
    loop {
        let page = sqs
            .list_queues()
            .queue_name_prefix(&prefix)
            .max_results(1000)
            .set_next_token(token)
            .send()
            .await
            .map_err(sqs_error)
            .context("listing the stage's queues")?;
        for url in page.queue_urls() {
            queues.push((queue_name(url).to_owned(), url.clone()));
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(queues);
        }
    }
}

/// Messages in the queue at `url`, visible or in flight.
pub async fn queue_depth(sqs: &Client, url: &str) -> Result<u64> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(sqs_error)
        .with_context(|| format!("the depth of {url}"))?;
    let count = |name: QueueAttributeName| {
        attributes
            .attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(count(QueueAttributeName::ApproximateNumberOfMessages)
        + count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
}

fn queue_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

/// Why a move task did not run.
enum MoveTaskError {
    /// The service has no such operation (the emulators): copy instead.
    Unsupported(String),
    /// It failed.
    Failed(anyhow::Error),
}

/// Whether an error starting a move task means the service does not have the operation: an
/// unknown-action code, or an answer with no error code at all (moto answers an HTML 500 page).
fn is_unsupported(code: &str, status: Option<u16>) -> bool {
    matches!(
        code,
        "InvalidAction" | "UnsupportedOperation" | "NotImplemented" | "UnknownOperationException"
    ) || (code.is_empty() && matches!(status, Some(404 | 500 | 501)))
}

/// What decoding needs of a received message.
fn received(message: &Message) -> Received {
    let system = |name: MessageSystemAttributeName| {
        message
            .attributes()
            .and_then(|a| a.get(&name))
            .map(String::as_str)
    };
    let attributes: HashMap<String, String> = message
        .message_attributes()
        .map(|attributes| {
            attributes
                .iter()
                .filter_map(|(name, value)| Some((name.clone(), value.string_value()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    Received {
        message_id: message.message_id().unwrap_or_default().to_owned(),
        body: message.body().unwrap_or_default().to_owned(),
        receive_count: system(MessageSystemAttributeName::ApproximateReceiveCount)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        sent_at: system(MessageSystemAttributeName::SentTimestamp)
            .and_then(|ms| ms.parse::<i64>().ok())
            .and_then(DateTime::<Utc>::from_timestamp_millis),
        attributes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_operations_are_told_from_failures() {
        assert!(is_unsupported("InvalidAction", Some(400)));
        assert!(is_unsupported("", Some(501)));
        assert!(is_unsupported("", Some(500)), "moto's HTML page");
        assert!(!is_unsupported("InternalError", Some(500)));
        assert!(!is_unsupported("AccessDenied", Some(403)));
        assert!(!is_unsupported("ResourceNotFoundException", Some(400)));
    }
}
