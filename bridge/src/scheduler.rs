//! Schedules: every period, the function is invoked with EventBridge's scheduled event
//! (`"detail-type": "Scheduled Event"`, `"source": "aws.events"`), retried up to the event's
//! `RetryPolicy.MaximumRetryAttempts` on failure, then sent to the event's
//! `DeadLetterConfig` queue. `ORDERFLOW_SCHEDULE_SECONDS` overrides every period (for demos and
//! tests).

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::invoke::Invoker;
use super::stack::ScheduleSpec;

/// The environment variable that overrides every schedule's period, in seconds.
pub const PERIOD_OVERRIDE_VAR: &str = "ORDERFLOW_SCHEDULE_SECONDS";
/// Pause between retries of a failed scheduled invoke.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// The period to run `schedule` with: the override when it is a positive number of seconds.
pub fn effective_period(schedule: &ScheduleSpec, override_seconds: Option<&str>) -> Duration {
    override_seconds
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map_or(schedule.period, Duration::from_secs)
}

/// The scheduled event EventBridge sends for a rule named `rule_arn` at `at`.
pub fn scheduled_event(
    id: &str,
    rule_arn: &str,
    account: &str,
    region: &str,
    at: DateTime<Utc>,
) -> Value {
    json!({
        "version": "0",
        "id": id,
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    })
}

/// A schedule at work.
#[derive(Debug, Clone)]
pub struct ScheduleRunner {
    /// The schedule.
    pub schedule: ScheduleSpec,
    /// Its period (after the override).
    pub period: Duration,
    /// The account, for the event.
    pub account: String,
    /// The region, for the event.
    pub region: String,
    /// The dead-letter queue's URL, when the schedule has one.
    pub dead_letter_url: Option<String>,
}

impl ScheduleRunner {
    /// Runs the schedule until `shutdown` (the first run one period after the start).
    pub async fn run(
        self,
        sqs: aws_sdk_sqs::Client,
        invoker: Invoker,
        shutdown: CancellationToken,
    ) {
        let schedule = &self.schedule;
        let function = schedule.function.handler.as_str();
        let rule_arn = format!(
            "arn:aws:events:{}:{}:rule/{}-{}",
            self.region,
            self.account,
            schedule.function.name,
            schedule.name.rsplit('.').next().unwrap_or_default()
        );
        info!(function, expression = %schedule.expression, period_s = self.period.as_secs(), dead_letter = ?schedule.dead_letter.as_ref().map(|q| &q.name), "schedule started");
        let mut ticks =
            tokio::time::interval_at(tokio::time::Instant::now() + self.period, self.period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let event = scheduled_event(
                &uuid::Uuid::now_v7().to_string(),
                &rule_arn,
                &self.account,
                &self.region,
                Utc::now(),
            );
            for attempt in 0..=schedule.max_retry_attempts {
                match invoker.invoke(&schedule.function, &event).await {
                    Ok(result) => {
                        info!(function, attempt, %result, "scheduled run done");
                        break;
                    }
                    Err(error) if attempt < schedule.max_retry_attempts => {
                        warn!(function, attempt, reason = %error.reason(), "scheduled run failed; retrying");
                        tokio::select! {
                            () = shutdown.cancelled() => return,
                            () = tokio::time::sleep(RETRY_DELAY) => {}
                        }
                    }
                    Err(error) => {
                        self.dead_letter(&sqs, &event, &rule_arn, &error.reason())
                            .await;
                    }
                }
            }
        }
    }

    /// Sends a run that failed every retry to the dead-letter queue, as EventBridge does: the
    /// event as the body, the rule, target and error as message attributes.
    async fn dead_letter(
        &self,
        sqs: &aws_sdk_sqs::Client,
        event: &Value,
        rule_arn: &str,
        reason: &str,
    ) {
        let function = self.schedule.function.handler.as_str();
        let Some(url) = &self.dead_letter_url else {
            warn!(function, %reason, "scheduled run failed; retries exhausted (no dead-letter queue)");
            return;
        };
        let attribute = |value: &str| {
            aws_sdk_sqs::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
        };
        let target_arn = format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.region, self.account, self.schedule.function.name
        );
        let mut send = sqs
            .send_message()
            .queue_url(url)
            .message_body(event.to_string());
        for (name, value) in [
            ("RULE_ARN", rule_arn),
            ("TARGET_ARN", target_arn.as_str()),
            ("ERROR_CODE", "RetriesExhausted"),
            ("ERROR_MESSAGE", reason),
        ] {
            if let Ok(value) = attribute(value) {
                send = send.message_attributes(name, value);
            }
        }
        match send.send().await {
            Ok(_) => {
                warn!(function, %reason, "scheduled run failed; retries exhausted, event sent to the dead-letter queue")
            }
            Err(error) => {
                warn!(function, %reason, error = %aws_sdk_sqs::error::DisplayErrorContext(error), "scheduled run failed; retries exhausted, and the dead-letter queue refused the event")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;

    use super::*;
    use crate::stack::FunctionSpec;

    fn schedule() -> ScheduleSpec {
        ScheduleSpec {
            name: "Fn.Every5Minutes".into(),
            function: FunctionSpec {
                logical_id: "Fn".into(),
                handler: "fn".into(),
                name: "fn".into(),
                timeout: Duration::from_secs(60),
            },
            expression: "rate(5 minutes)".into(),
            period: Duration::from_secs(300),
            max_retry_attempts: 2,
            dead_letter: None,
            enabled: true,
        }
    }

    #[test]
    fn the_override_replaces_the_period_when_it_is_a_positive_number() {
        assert_eq!(
            effective_period(&schedule(), None),
            Duration::from_secs(300)
        );
        assert_eq!(
            effective_period(&schedule(), Some("5")),
            Duration::from_secs(5)
        );
        assert_eq!(
            effective_period(&schedule(), Some("0")),
            Duration::from_secs(300)
        );
        assert_eq!(
            effective_period(&schedule(), Some("x")),
            Duration::from_secs(300)
        );
    }

    #[test]
    fn the_scheduled_event_is_what_the_function_deserializes() {
        let at = DateTime::<Utc>::from_timestamp(1_795_860_942, 0).unwrap();
        let event = scheduled_event(
            "e-1",
            "arn:aws:events:us-east-1:123456789012:rule/r",
            "123456789012",
            "us-east-1",
            at,
        );
        assert_eq!(event["detail-type"], "Scheduled Event");
        assert_eq!(event["time"], "2026-11-28T10:15:42Z");
        let typed: CloudWatchEvent = serde_json::from_value(event).unwrap();
        assert_eq!(typed.source.as_deref(), Some("aws.events"));
    }
}
