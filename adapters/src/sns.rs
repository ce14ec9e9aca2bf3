//! The SNS adapter: [`SnsNotifier`] tells customers what happened by publishing to the
//! customer-notifications topic (docs/architecture.md, "Domain", alert context).
//!
//! One [`Notification`] is one `Publish`:
//!
//! | `Publish` field | value |
//! | --- | --- |
//! | `TopicArn` | the topic |
//! | `Subject` | [`Notification::subject`] (SNS takes at most [`MAX_SUBJECT_LEN`] ASCII characters, no line breaks) |
//! | `Message` | [`Notification::message`] |
//! | `MessageAttributes` | `event_type` and `customer_id`, both `DataType` `String`, so subscriptions can filter on them |
//!
//! A subscriber without raw message delivery (an SQS queue, say) receives the SNS JSON envelope:
//! `{"Type": "Notification", "Subject": …, "Message": …, "MessageAttributes": {"event_type":
//! {"Type": "String", "Value": …}, …}, …}`.
//!
//! Failures become a [`NotifyError`] naming the error code and HTTP status: never the subject or
//! the message, which are meant for the customer, not for the logs.

use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::config::http::HttpResponse;
use aws_sdk_sns::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sns::operation::publish::PublishError;
use aws_sdk_sns::types::MessageAttributeValue;
use tracing::{debug, instrument};

use domain::ports::{Notification, Notifier, NotifyError};

/// The longest `Subject` SNS accepts.
pub const MAX_SUBJECT_LEN: usize = 100;

/// The message attribute naming the event the customer hears about.
pub const EVENT_TYPE_ATTRIBUTE: &str = "event_type";

/// The message attribute naming the customer.
pub const CUSTOMER_ID_ATTRIBUTE: &str = "customer_id";

/// The message attribute naming the event the notification is for (its `event_id`): a subscriber
/// can drop a repeat, and a soak can count notifications per event.
pub const EVENT_ID_ATTRIBUTE: &str = "event_id";

/// Publishes notifications to an SNS topic, one `Publish` each.
#[derive(Debug, Clone)]
pub struct SnsNotifier {
    client: Client,
    topic_arn: String,
}

impl SnsNotifier {
    /// A notifier publishing to the topic `topic_arn`.
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }

    /// The topic notifications go to.
    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }
}

/// A `String` message attribute.
fn string_attribute(value: &str) -> Result<MessageAttributeValue, NotifyError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| NotifyError(format!("message attribute not built: {e}")))
}

/// Why a `Publish` failed: the error code and HTTP status, or the transport failure. The service's
/// message is left out, as it may quote the request.
fn reason(error: &SdkError<PublishError, HttpResponse>) -> String {
    match error {
        SdkError::ServiceError(service) => format!(
            "Publish failed: {} (HTTP {})",
            service.err().code().unwrap_or("unknown"),
            service.raw().status().as_u16()
        ),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            format!("Publish failed: {}", DisplayErrorContext(error))
        }
        _ => format!("Publish not sent: {}", DisplayErrorContext(error)),
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    #[instrument(skip_all, fields(event_type = %notification.event_type, event_id = %notification.event_id))]
    async fn notify(&self, notification: &Notification) -> Result<(), NotifyError> {
        let output = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(&notification.subject)
            .message(&notification.message)
            .message_attributes(
                EVENT_TYPE_ATTRIBUTE,
                string_attribute(&notification.event_type)?,
            )
            .message_attributes(
                CUSTOMER_ID_ATTRIBUTE,
                string_attribute(&notification.customer_id)?,
            )
            .message_attributes(
                EVENT_ID_ATTRIBUTE,
                string_attribute(&notification.event_id)?,
            )
            .send()
            .await
            .map_err(|error| NotifyError(reason(&error)))?;
        debug!(
            sns_message_id = output.message_id().unwrap_or_default(),
            "published"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use aws_sdk_sns::error::ErrorMetadata;
    use aws_sdk_sns::operation::publish::{PublishInput, PublishOutput};
    use aws_sdk_sns::types::error::NotFoundException;
    use aws_smithy_mocks::{MockResponse, RuleMode, mock, mock_client};

    use super::*;

    const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:orderflow-dev-customer-notifications";

    fn notification() -> Notification {
        Notification {
            event_type: "DeliveryDelayed".into(),
            customer_id: "c1".into(),
            event_id: "e-1".into(),
            subject: "Your order o1 is running late".into(),
            message: "Secret body for the customer only".into(),
        }
    }

    /// A notifier whose client answers every `Publish` with `answer`, recording the inputs.
    fn notifier<F>(answer: F) -> (SnsNotifier, Arc<Mutex<Vec<PublishInput>>>)
    where
        F: Fn() -> MockResponse<PublishOutput, PublishError> + Send + Sync + 'static,
    {
        let inputs: Arc<Mutex<Vec<PublishInput>>> = Arc::default();
        let recorded = inputs.clone();
        let rule = mock!(Client::publish).then_compute_response(move |input| {
            recorded.lock().unwrap().push(input.clone());
            answer()
        });
        let client = mock_client!(aws_sdk_sns, RuleMode::MatchAny, &[&rule], |config| config
            .retry_config(aws_sdk_sns::config::retry::RetryConfig::disabled()));
        (SnsNotifier::new(client, TOPIC), inputs)
    }

    #[tokio::test]
    async fn one_notification_is_one_publish_with_subject_message_and_three_string_attributes() {
        let (notifier, inputs) =
            notifier(|| MockResponse::Output(PublishOutput::builder().message_id("sns-1").build()));
        assert_eq!(notifier.notify(&notification()).await, Ok(()));
        let inputs = inputs.lock().unwrap();
        let [input] = inputs.as_slice() else {
            panic!("expected one Publish, got {inputs:?}");
        };
        assert_eq!(input.topic_arn(), Some(TOPIC));
        assert_eq!(input.subject(), Some("Your order o1 is running late"));
        assert_eq!(input.message(), Some("Secret body for the customer only"));
        let attributes = input.message_attributes().unwrap();
        assert_eq!(attributes.len(), 3);
        for (name, value) in [
            ("event_type", "DeliveryDelayed"),
            ("customer_id", "c1"),
            ("event_id", "e-1"),
        ] {
            assert_eq!(attributes[name].data_type(), "String", "{name}");
            assert_eq!(attributes[name].string_value(), Some(value), "{name}");
        }
    }

    #[tokio::test]
    async fn a_refused_publish_is_a_notify_error_naming_the_code_not_the_content() {
        let (notifier, inputs) = notifier(|| {
            MockResponse::Error(PublishError::NotFoundException(
                NotFoundException::builder()
                    .message("Topic does not exist: Secret body")
                    .meta(
                        ErrorMetadata::builder()
                            .code("NotFound")
                            .message("Topic does not exist: Secret body")
                            .build(),
                    )
                    .build(),
            ))
        });
        let NotifyError(reason) = notifier.notify(&notification()).await.unwrap_err();
        assert!(reason.contains("NotFound"), "{reason}");
        assert!(
            !reason.contains("Secret"),
            "no content in the reason: {reason}"
        );
        assert_eq!(inputs.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_throttled_publish_is_a_notify_error_too() {
        let (notifier, _) = notifier(|| {
            MockResponse::Error(PublishError::generic(
                ErrorMetadata::builder()
                    .code("Throttling")
                    .message("Rate exceeded")
                    .build(),
            ))
        });
        let NotifyError(reason) = notifier.notify(&notification()).await.unwrap_err();
        assert!(reason.contains("Throttling"), "{reason}");
    }
}
