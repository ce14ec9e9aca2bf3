//! The SQS adapter: [`SqsDeadLetters`] sets a stream reader's poison records aside in a queue of its
//! own (`template.yaml`: `PublisherPoisonQueue`, `ProjectorPoisonQueue`; README, "Failure
//! handling").
//!
//! One [`PoisonRecord`] is one `SendMessage` whose body is the record as JSON:
//! `{"consumer", "reason", "event_source_arn", "sequence_number", "event_name", "keys",
//! "new_image"}`, the image exactly as the stream delivered it (DynamoDB JSON), so that it can be
//! read, fixed and written back. An image too large for a message ([`MAX_MESSAGE_BYTES`]) is left
//! out, with a note in `reason`: the item is still in the events table under `keys`.
//!
//! Failures become a [`DeadLetterError`] naming the error code and HTTP status, never the body.

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::operation::send_message::SendMessageError;
use serde_json::Value;
use tracing::{debug, instrument};

use domain::ports::{DeadLetterError, DeadLetters, PoisonRecord};

/// The largest message body SQS takes (256 KiB).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Sends poison records to an SQS queue, one message each.
#[derive(Debug, Clone)]
pub struct SqsDeadLetters {
    client: Client,
    queue_url: String,
}

impl SqsDeadLetters {
    /// Dead letters to the queue at `queue_url`.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// The queue poison records go to.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }
}

/// The message body of `record`: the record as JSON, without its image when that would not fit.
pub fn message_body(record: &PoisonRecord) -> Result<String, DeadLetterError> {
    let serialise = |record: &PoisonRecord| {
        serde_json::to_string(record)
            .map_err(|e| DeadLetterError(format!("poison record not serialised: {e}")))
    };
    let body = serialise(record)?;
    if body.len() <= MAX_MESSAGE_BYTES {
        return Ok(body);
    }
    let mut without_image = record.clone();
    without_image.new_image = Value::Null;
    without_image.reason = format!(
        "{}; the image ({} bytes as a message) is left out: SQS takes at most {MAX_MESSAGE_BYTES}, \
         read the item from the events table by its keys",
        record.reason,
        body.len()
    );
    serialise(&without_image)
}

/// Why a `SendMessage` failed: the error code and HTTP status, or the transport failure.
fn reason(error: &SdkError<SendMessageError, HttpResponse>) -> String {
    match error {
        SdkError::ServiceError(service) => format!(
            "SendMessage failed: {} (HTTP {})",
            service.err().code().unwrap_or("unknown"),
            service.raw().status().as_u16()
        ),
        _ => format!("SendMessage failed: {}", DisplayErrorContext(error)),
    }
}

#[async_trait]
impl DeadLetters for SqsDeadLetters {
    #[instrument(skip_all, fields(consumer = %record.consumer, sequence_number = %record.sequence_number))]
    async fn dead_letter(&self, record: &PoisonRecord) -> Result<(), DeadLetterError> {
        let output = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(message_body(record)?)
            .send()
            .await
            .map_err(|error| DeadLetterError(reason(&error)))?;
        debug!(
            sqs_message_id = output.message_id().unwrap_or_default(),
            "poison record dead-lettered"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(image_bytes: usize) -> PoisonRecord {
        PoisonRecord {
            consumer: "event-publisher".into(),
            reason: "unsupported schema version 7".into(),
            event_source_arn: "arn:aws:dynamodb:eu-west-1:123456789012:table/t/stream/s".into(),
            sequence_number: "42".into(),
            event_name: "INSERT".into(),
            keys: json!({"stream_id": {"S": "order#o1"}, "version": {"N": "2"}}),
            new_image: json!({"blob": {"S": "x".repeat(image_bytes)}}),
        }
    }

    #[test]
    fn the_body_is_the_whole_record_and_reads_back() {
        let record = record(100);
        let body = message_body(&record).unwrap();
        let read: PoisonRecord = serde_json::from_str(&body).unwrap();
        assert_eq!(read, record);
    }

    #[test]
    fn an_image_too_large_for_a_message_is_left_out_with_the_keys_kept() {
        let body = message_body(&record(MAX_MESSAGE_BYTES)).unwrap();
        assert!(body.len() <= MAX_MESSAGE_BYTES);
        let read: PoisonRecord = serde_json::from_str(&body).unwrap();
        assert_eq!(read.new_image, Value::Null);
        assert_eq!(read.keys["stream_id"]["S"], "order#o1");
        assert!(
            read.reason
                .starts_with("unsupported schema version 7; the image")
        );
    }
}
