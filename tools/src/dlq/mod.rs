//! `orderflow dlq`: the stage's dead-letter queues — list them, read their messages, send them
//! back (docs/operating.md, "Dead letters").
//!
//! Four kinds of queue hold what a function could not process, told apart by their names
//! (`template.yaml`):
//!
//! | queue | holds | redrive |
//! | --- | --- | --- |
//! | `<handler>-dlq` | bus events the handler failed `maxReceiveCount` times, or the rule could not deliver | the messages back to `<handler>`'s queue |
//! | `<reader>-stream-failures` | Lambda's on-failure records: a stream batch given up on (shard, sequence range) | the events of that range, through the reader again |
//! | `<reader>-poison` | stream records the reader could never read, each whole with the reason | the record's event, through the reader again |
//! | `delivery-overdue-check-failures`, `…-dlq` | schedule runs that failed or could not start | nothing to move: the next run does the same work |
//!
//! "Through the reader again": the event publisher's events are published to the bus; the
//! projector's are projected into the order views. Both are idempotent downstream (consumers
//! keep a marker per event id; a view holds each stream's version), so a redrive never doubles an
//! effect.

pub mod ops;
pub mod redrive;

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};
use lambda_glue::consumer::event_from_sqs_body;
use serde::Serialize;
use serde_json::Value;

/// What a dead-letter queue is for, from its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum QueueKind {
    /// A handler's dead-letter queue; its messages go back to `source` (a queue name).
    DeadLetters {
        /// The handler's queue.
        source: String,
    },
    /// A stream reader's on-failure destination (`event-publisher`, `projector`).
    StreamFailures {
        /// The reader.
        reader: Reader,
    },
    /// A stream reader's poison records.
    Poison {
        /// The reader.
        reader: Reader,
    },
    /// A scheduled function's failed or unstarted runs.
    ScheduleFailures {
        /// The function.
        function: String,
    },
}

/// A reader of the events table's stream, whose failures a redrive replays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reader {
    /// Publishes stored events to the bus.
    EventPublisher,
    /// Projects stored events into the order views.
    Projector,
}

impl Reader {
    /// The function's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::EventPublisher => "event-publisher",
            Self::Projector => "projector",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "event-publisher" => Some(Self::EventPublisher),
            "projector" => Some(Self::Projector),
            _ => None,
        }
    }
}

/// The functions that run on a schedule (their failures have nothing to redrive).
const SCHEDULED: &[&str] = &["delivery-overdue-check"];

impl QueueKind {
    /// The kind of the queue `name` of `stage`, `None` for a queue that holds no dead letters.
    pub fn of(stage: &str, name: &str) -> Option<Self> {
        let rest = name.strip_prefix(&format!("orderflow-{stage}-"))?;
        for function in SCHEDULED {
            if rest == format!("{function}-failures") || rest == format!("{function}-dlq") {
                return Some(Self::ScheduleFailures {
                    function: (*function).to_owned(),
                });
            }
        }
        if let Some(reader) = rest.strip_suffix("-stream-failures") {
            return Reader::from_name(reader).map(|reader| Self::StreamFailures { reader });
        }
        if let Some(reader) = rest.strip_suffix("-poison") {
            return Reader::from_name(reader).map(|reader| Self::Poison { reader });
        }
        let handler = rest.strip_suffix("-dlq")?;
        Some(Self::DeadLetters {
            source: format!("orderflow-{stage}-{handler}"),
        })
    }

    /// A short label for tables.
    pub fn label(&self) -> String {
        match self {
            Self::DeadLetters { .. } => "dead letters".into(),
            Self::StreamFailures { reader } => format!("{} stream failures", reader.name()),
            Self::Poison { reader } => format!("{} poison", reader.name()),
            Self::ScheduleFailures { .. } => "schedule failures".into(),
        }
    }
}

/// One dead-letter queue of the stage, as `dlq list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueSummary {
    /// The queue's name.
    pub name: String,
    /// What it holds.
    #[serde(flatten)]
    pub kind: QueueKind,
    /// Messages it holds (visible and in flight).
    pub depth: u64,
    /// The oldest message's age in seconds, among those sampled; `None` when empty.
    pub oldest_age_seconds: Option<i64>,
}

/// One message of a dead-letter queue, decoded as far as its kind allows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Letter {
    /// The SQS message id.
    pub message_id: String,
    /// The event's type, when the message names one event.
    pub event_type: Option<String>,
    /// The event's id.
    pub event_id: Option<String>,
    /// The order it belongs to.
    pub order_id: Option<String>,
    /// The event's stream (`order-…`, `delivery-…`) and version, when known.
    pub stream: Option<String>,
    /// How many times the message has been received (in its queues so far).
    pub receive_count: u32,
    /// When it was first sent.
    pub sent_at: Option<DateTime<Utc>>,
    /// Why it failed, when the message says.
    pub why: Option<String>,
}

/// The attributes of a received message that decoding uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Received {
    /// The SQS message id.
    pub message_id: String,
    /// The body.
    pub body: String,
    /// `ApproximateReceiveCount`.
    pub receive_count: u32,
    /// `SentTimestamp`.
    pub sent_at: Option<DateTime<Utc>>,
    /// String message attributes (EventBridge adds `ERROR_CODE`, `ERROR_MESSAGE` to what a
    /// rule could not deliver).
    pub attributes: HashMap<String, String>,
}

/// Decodes `message` of a queue of `kind`.
pub fn decode(kind: &QueueKind, message: &Received) -> Letter {
    let mut letter = Letter {
        message_id: message.message_id.clone(),
        receive_count: message.receive_count,
        sent_at: message.sent_at,
        ..Letter::default()
    };
    let body: Value = serde_json::from_str(&message.body).unwrap_or(Value::Null);
    match kind {
        QueueKind::DeadLetters { source } => {
            match event_from_sqs_body(&message.body) {
                Ok(event) => {
                    letter.event_type = Some(event.event_type.clone());
                    letter.event_id = Some(event.event_id.clone());
                    letter.order_id = domain::read_model::order_id_of(&event)
                        .ok()
                        .map(|id| id.to_string());
                    letter.stream = Some(format!("{}@{}", event.stream_id, event.version));
                }
                Err(error) => {
                    // What the envelope says, read without the code that refused it.
                    let detail = &body["detail"];
                    let text = |value: &Value| value.as_str().map(str::to_owned);
                    letter.event_type = text(&body["detail-type"]);
                    letter.event_id = text(&detail["event_id"]);
                    letter.order_id = text(&detail["stream_id"]).and_then(|s| order_of_stream(&s));
                    letter.stream = text(&detail["stream_id"]).map(|stream| {
                        format!("{stream}@{}", detail["version"].as_u64().unwrap_or(0))
                    });
                    letter.why = Some(format!("unreadable: {error}"));
                }
            }
            let delivery = match (
                message.attributes.get("ERROR_CODE"),
                message.attributes.get("ERROR_MESSAGE"),
            ) {
                (Some(code), Some(text)) => {
                    Some(format!("the rule could not deliver it: {code}: {text}"))
                }
                (Some(code), None) => Some(format!("the rule could not deliver it: {code}")),
                _ => None,
            };
            letter.why = delivery.or(letter.why).or_else(|| {
                Some(format!(
                    "{source} failed it {} time(s) (the queue's maxReceiveCount); the handler's log has each error",
                    message.receive_count.max(1)
                ))
            });
        }
        QueueKind::Poison { .. } => {
            letter.why = body["reason"].as_str().map(str::to_owned);
            let key = |name: &str| {
                body["keys"][name]
                    .as_object()
                    .and_then(|v| v.values().next().and_then(Value::as_str).map(str::to_owned))
            };
            let image = |name: &str| body["new_image"][name]["S"].as_str().map(str::to_owned);
            letter.event_type = image("event_type");
            letter.event_id = image("event_id");
            if let (Some(stream), Some(version)) = (key("stream_id"), key("version")) {
                letter.order_id = order_of_stream(&stream);
                letter.stream = Some(format!("{stream}@{version}"));
            }
        }
        QueueKind::StreamFailures { .. } => {
            let info = &body["DDBStreamBatchInfo"];
            letter.stream = Some(format!(
                "shard {} records {}..{} ({} in the batch)",
                info["shardId"].as_str().unwrap_or("?"),
                info["startSequenceNumber"].as_str().unwrap_or("?"),
                info["endSequenceNumber"].as_str().unwrap_or("?"),
                info["batchSize"].as_u64().unwrap_or(0),
            ));
            letter.why = Some(invoke_failure(&body));
        }
        QueueKind::ScheduleFailures { .. } => {
            letter.why = Some(if body["requestContext"].is_object() {
                invoke_failure(&body)
            } else {
                "the schedule could not invoke the function".into()
            });
        }
    }
    letter
}

/// `RetryAttemptsExhausted after 3 invoke(s): Unhandled` — an on-failure record's reason.
fn invoke_failure(record: &Value) -> String {
    let context = &record["requestContext"];
    let mut why = format!(
        "{} after {} invoke(s)",
        context["condition"].as_str().unwrap_or("failed"),
        context["approximateInvokeCount"].as_u64().unwrap_or(0)
    );
    if let Some(error) = record["responseContext"]["functionError"].as_str() {
        why.push_str(&format!(": {error}"));
    }
    why
}

/// The order id in an order or delivery stream id (`order#<id>`, `delivery#d-<id>`).
fn order_of_stream(stream: &str) -> Option<String> {
    if let Some(order) = stream.strip_prefix("order#") {
        return Some(order.to_owned());
    }
    stream.strip_prefix("delivery#d-").map(str::to_owned)
}

impl fmt::Display for QueueSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let oldest = match self.oldest_age_seconds {
            None => "-".to_owned(),
            Some(seconds) => age(seconds),
        };
        write!(
            f,
            "{:<58} {:>6} {:>10}  {}",
            self.name,
            self.depth,
            oldest,
            self.kind.label()
        )
    }
}

/// `3d 4h`, `12m 5s`: an age as a person reads it.
pub fn age(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let (days, hours, minutes, secs) = (
        seconds / 86_400,
        seconds % 86_400 / 3_600,
        seconds % 3_600 / 60,
        seconds % 60,
    );
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else if minutes > 0 {
        format!("{minutes}m {secs}s")
    } else {
        format!("{secs}s")
    }
}

impl fmt::Display for Letter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or_dash = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".into());
        writeln!(f, "message {}", self.message_id)?;
        writeln!(
            f,
            "  event     {} {}",
            or_dash(&self.event_type),
            or_dash(&self.event_id)
        )?;
        writeln!(f, "  order     {}", or_dash(&self.order_id))?;
        writeln!(f, "  stream    {}", or_dash(&self.stream))?;
        writeln!(
            f,
            "  received  {} time(s), first sent {}",
            self.receive_count,
            self.sent_at
                .map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        )?;
        write!(f, "  why       {}", or_dash(&self.why))
    }
}

#[cfg(test)]
mod tests {
    use domain::envelope::StoredEvent;
    use serde_json::json;
    use testkit::lambda::bus_event_body;

    use super::*;

    const ORDER: &str = "018f1c2e-7b3a-7000-8000-000000000001";

    fn placed() -> StoredEvent {
        serde_json::from_str(include_str!("../../../schemas/samples/OrderPlaced-v1.json"))
            .unwrap_or_else(|e| panic!("the fixture: {e}"))
    }

    #[test]
    fn queues_are_told_apart_by_their_names() {
        let kind = |name: &str| QueueKind::of("dev", name);
        assert_eq!(
            kind("orderflow-dev-alert-on-order-placed-dlq"),
            Some(QueueKind::DeadLetters {
                source: "orderflow-dev-alert-on-order-placed".into()
            })
        );
        assert_eq!(
            kind("orderflow-dev-projector-stream-failures"),
            Some(QueueKind::StreamFailures {
                reader: Reader::Projector
            })
        );
        assert_eq!(
            kind("orderflow-dev-event-publisher-poison"),
            Some(QueueKind::Poison {
                reader: Reader::EventPublisher
            })
        );
        for scheduled in [
            "orderflow-dev-delivery-overdue-check-dlq",
            "orderflow-dev-delivery-overdue-check-failures",
        ] {
            assert_eq!(
                kind(scheduled),
                Some(QueueKind::ScheduleFailures {
                    function: "delivery-overdue-check".into()
                }),
                "{scheduled}"
            );
        }
        for not_dead_letters in [
            "orderflow-dev-alert-on-order-placed",
            "orderflow-prod-alert-on-order-placed-dlq",
            "orderflow-dev-customers-inbox",
            "orderflow-dev-someone-stream-failures",
        ] {
            assert_eq!(kind(not_dead_letters), None, "{not_dead_letters}");
        }
    }

    fn received(body: String) -> Received {
        Received {
            message_id: "m-1".into(),
            body,
            receive_count: 5,
            sent_at: None,
            attributes: HashMap::new(),
        }
    }

    #[test]
    fn a_handler_dead_letter_names_its_event_and_order() {
        let event = placed();
        let kind = QueueKind::DeadLetters {
            source: "orderflow-dev-delivery-on-order-placed".into(),
        };
        let letter = decode(&kind, &received(bus_event_body(&event)));
        assert_eq!(letter.event_type.as_deref(), Some("OrderPlaced"));
        assert_eq!(letter.event_id.as_deref(), Some(event.event_id.as_str()));
        assert_eq!(letter.order_id.as_deref(), Some(ORDER));
        assert_eq!(letter.receive_count, 5);
        assert!(
            letter
                .why
                .as_deref()
                .is_some_and(|why| why
                    .contains("orderflow-dev-delivery-on-order-placed failed it 5 time(s)")),
            "{letter:?}"
        );

        let mut undelivered = received(bus_event_body(&event));
        undelivered
            .attributes
            .insert("ERROR_CODE".into(), "SQSPermissionDenied".into());
        let letter = decode(&kind, &undelivered);
        assert_eq!(
            letter.why.as_deref(),
            Some("the rule could not deliver it: SQSPermissionDenied")
        );

        let mut future: Value = serde_json::from_str(&bus_event_body(&event)).unwrap_or_default();
        future["detail"]["schema_version"] = serde_json::json!(9);
        let letter = decode(&kind, &received(future.to_string()));
        assert_eq!(
            (
                letter.event_type.as_deref(),
                letter.event_id.as_deref(),
                letter.order_id.as_deref()
            ),
            (
                Some("OrderPlaced"),
                Some(event.event_id.as_str()),
                Some(ORDER)
            ),
            "an event the code refuses is still named"
        );
        assert!(
            letter
                .why
                .is_some_and(|why| why.contains("schema version 9")),
            "why it is unreadable"
        );
    }

    #[test]
    fn a_poison_record_and_a_stream_failure_say_why() {
        let poison = json!({
            "consumer": "projector",
            "reason": "poison event: OrderPlaced v9 is not a known schema version",
            "event_source_arn": "arn:aws:dynamodb:eu-west-1:1:table/t/stream/x",
            "sequence_number": "100",
            "event_name": "INSERT",
            "keys": {"stream_id": {"S": "order#o-2"}, "version": {"N": "1"}},
            "new_image": {"event_type": {"S": "OrderPlaced"}, "event_id": {"S": "e-2"}},
        });
        let letter = decode(
            &QueueKind::Poison {
                reader: Reader::Projector,
            },
            &received(poison.to_string()),
        );
        assert_eq!(
            (
                letter.event_type.as_deref(),
                letter.event_id.as_deref(),
                letter.order_id.as_deref(),
                letter.stream.as_deref()
            ),
            (
                Some("OrderPlaced"),
                Some("e-2"),
                Some("o-2"),
                Some("order#o-2@1")
            )
        );
        assert!(letter.why.is_some_and(|why| why.contains("v9")));

        let failure = json!({
            "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 3},
            "responseContext": {"functionError": "Unhandled"},
            "DDBStreamBatchInfo": {"shardId": "shard-1", "startSequenceNumber": "100", "endSequenceNumber": "102", "batchSize": 3},
        });
        let letter = decode(
            &QueueKind::StreamFailures {
                reader: Reader::EventPublisher,
            },
            &received(failure.to_string()),
        );
        assert_eq!(
            letter.why.as_deref(),
            Some("RetryAttemptsExhausted after 3 invoke(s): Unhandled")
        );
        assert_eq!(
            letter.stream.as_deref(),
            Some("shard shard-1 records 100..102 (3 in the batch)")
        );
    }

    #[test]
    fn ages_read_as_a_person_says_them() {
        assert_eq!(
            [5, 65, 3_700, 90_000].map(age),
            ["5s", "1m 5s", "1h 1m", "1d 1h"].map(String::from)
        );
    }
}
