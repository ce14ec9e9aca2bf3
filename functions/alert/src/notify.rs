//! Customer notifications with an exactly-once effect on top of at-least-once delivery.
//!
//! A [`NotificationHandler`] serves one event type. For each event it:
//!
//! 1. refuses an event of another type as poison (the rule routed it to the wrong queue);
//! 2. decodes the event and composes the [`Notification`] (an undecodable event is poison);
//! 3. **claims** the event's marker `alert#<handler>#<event_id>` ([`marker_key`]) in the
//!    [`EffectMarkers`] store, `INPROGRESS` with a lease of [`CLAIM_LEASE`] (the function's
//!    timeout and more): a marker already `COMPLETED` means the customer was told, and the message
//!    is acknowledged; a claim another delivery holds fails the message as retryable (its
//!    redelivery finds the marker completed); an expired claim (its holder crashed) is taken over;
//! 4. sends the notification; if the [`Notifier`] fails, the claim is released and the message
//!    fails as retryable, so the queue's redelivery tries again;
//! 5. completes the marker, to expire after [`MARKER_TTL`] (the idempotency table's TTL; far longer
//!    than any redelivery or EventBridge retry lasts).
//!
//! This is the AWS Lambda Powertools idempotency pattern (`INPROGRESS` → `COMPLETED` with expiry).
//!
//! ## What is left: the window for a duplicate
//!
//! Concurrent deliveries of one event (EventBridge may deliver it twice; two instances may hold the
//! two messages at once) notify once: only one claims the marker. What remains is a publish whose
//! outcome is unknown — the function crashed inside the publish, or SNS applied it and the answer
//! was lost — and then only after the lease: a redelivery claims the expired marker and notifies
//! again. A marker that could not be completed after a successful publish is logged; its claim
//! lapses after the lease, so a later duplicate of the event could notify again. Claiming *without*
//! releasing on failure would turn those windows into lost notifications; a duplicate message is
//! the better failure for a customer.

use chrono::Duration;
use domain::envelope::StoredEvent;
use domain::ids::CustomerId;
use domain::ports::{Claim, Clock, EffectMarkers, Notification, Notifier, StoreError};
use lambda_glue::consumer::{EventHandler, HandlerError};
use serde_json::json;
use tracing::{info, warn};

/// How long a processed-event marker is kept.
pub const MARKER_TTL: Duration = Duration::days(7);
/// How long a claim holds before another delivery may take it over: longer than the function's
/// timeout (10 s in `template.yaml`), so a live holder is never overtaken.
pub const CLAIM_LEASE: Duration = Duration::seconds(30);

/// How many times a notified event's marker completion is tried before the handler gives up on it.
pub const COMPLETE_ATTEMPTS: u32 = 3;

/// How many of a batch's events a notification function handles at once (a notification mostly
/// waits on DynamoDB and SNS; one event's copies are still handled one after another).
pub const NOTIFICATIONS_AT_ONCE: usize = 5;

/// What the notification handlers talk through.
#[derive(Clone, Copy)]
pub struct AlertDeps<'a> {
    /// Where notifications go (SNS in production).
    pub notifier: &'a dyn Notifier,
    /// Where the processed-event markers are kept.
    pub markers: &'a dyn EffectMarkers,
    /// The markers' timestamps.
    pub clock: &'a dyn Clock,
}

/// A notification function: one event type in, one customer notification out, once.
#[derive(Debug, Clone, Copy)]
pub struct NotificationHandler {
    /// The function's name: its binary, its Lambda, the scope of its markers.
    pub name: &'static str,
    /// The one event type it serves.
    pub event_type: &'static str,
    /// Composes the customer's notification from an event of [`Self::event_type`].
    pub compose: fn(&StoredEvent) -> Result<Notification, HandlerError>,
}

/// The processed-event marker of `event_id` for the handler `handler`.
pub fn marker_key(handler: &str, event_id: &str) -> String {
    format!("alert#{handler}#{event_id}")
}

/// The failure of the marker store: retryable when the store may answer later.
fn marker_store_failed(error: StoreError) -> HandlerError {
    if error.is_retryable() {
        HandlerError::Retryable(format!("marker store: {error}"))
    } else {
        HandlerError::Poison(format!("marker store: {error}"))
    }
}

/// A notification function as it runs: its handler and what it talks through (the queue
/// convention, [`EventHandler`]).
pub struct NotificationFunction<'a> {
    /// Which notification.
    pub handler: NotificationHandler,
    /// Its markers, notifier and clock.
    pub deps: AlertDeps<'a>,
}

#[async_trait::async_trait]
impl EventHandler for NotificationFunction<'_> {
    fn name(&self) -> &'static str {
        self.handler.name
    }

    fn events_at_once(&self) -> usize {
        NOTIFICATIONS_AT_ONCE
    }

    async fn handle(&self, event: StoredEvent) -> Result<(), HandlerError> {
        self.handler.handle(&self.deps, event).await
    }
}

impl NotificationHandler {
    /// Handles one event: notifies the customer unless this handler did so for this event already.
    pub async fn handle(
        &self,
        deps: &AlertDeps<'_>,
        event: StoredEvent,
    ) -> Result<(), HandlerError> {
        if event.event_type != self.event_type {
            return Err(misrouted(self.name, self.event_type, &event));
        }
        let notification = (self.compose)(&event)?;
        let key = marker_key(self.name, &event.event_id);
        let holder = uuid::Uuid::now_v7().to_string();
        let now = deps.clock.now();
        let claim = match deps
            .markers
            .claim(
                &key,
                &holder,
                now.timestamp_millis(),
                (now + CLAIM_LEASE).timestamp_millis(),
                (now + MARKER_TTL).timestamp(),
            )
            .await
        {
            Ok(claim) => claim,
            Err(error) => {
                // The claim may have been applied with its answer lost: take it back, or every
                // redelivery within the lease is told another delivery is notifying.
                if let Err(release) = deps.markers.release(&key, &holder).await {
                    warn!(reason = %release, "a claim that may have been applied was not released: it lapses after its lease");
                }
                return Err(marker_store_failed(error));
            }
        };
        match claim {
            Claim::Completed => {
                info!("the customer was notified of this event already: skipped");
                return Ok(());
            }
            Claim::InProgress => {
                return Err(HandlerError::Retryable(
                    "another delivery of this event is notifying the customer; try again".into(),
                ));
            }
            Claim::Claimed => {}
        }
        if let Err(error) = deps.notifier.notify(&notification).await {
            if let Err(release) = deps.markers.release(&key, &holder).await {
                warn!(reason = %release, "the claim was not released: it lapses after its lease");
            }
            return Err(HandlerError::Retryable(error.to_string()));
        }
        domain::telemetry::notification_sent();
        let done = deps.clock.now();
        let response = json!({
            "handler": self.name,
            "event_type": event.event_type,
            "notified_at": done,
        });
        // After a publish the marker must say so, or a redelivery after the lease notifies again:
        // the completion is tried again (each try is itself retried by the SDK) before giving up.
        let mut completed = deps
            .markers
            .complete(
                &key,
                &holder,
                response.clone(),
                (done + MARKER_TTL).timestamp(),
            )
            .await;
        for _ in 1..COMPLETE_ATTEMPTS {
            if completed.is_ok() {
                break;
            }
            completed = deps
                .markers
                .complete(
                    &key,
                    &holder,
                    response.clone(),
                    (done + MARKER_TTL).timestamp(),
                )
                .await;
        }
        match completed {
            Ok(true) => info!("customer notified"),
            Ok(false) => warn!(
                "customer notified, but the claim had lapsed and was taken over: they may hear twice"
            ),
            Err(error) => warn!(
                reason = %error,
                "customer notified, but the marker was not completed: it lapses after its lease"
            ),
        }
        Ok(())
    }
}

/// The poison error for an event of a type `handler` does not serve.
pub fn misrouted(handler: &str, served: &str, event: &StoredEvent) -> HandlerError {
    HandlerError::Poison(format!(
        "misrouted: {handler} handles {served}, not {}",
        event.event_type
    ))
}

/// The notification of `event` to `customer_id`.
pub(crate) fn notification(
    event: &StoredEvent,
    customer_id: &CustomerId,
    subject_line: String,
    message: String,
) -> Notification {
    Notification {
        event_type: event.event_type.clone(),
        customer_id: customer_id.to_string(),
        event_id: event.event_id.clone(),
        subject: subject(subject_line),
        message,
    }
}

/// A subject SNS accepts: ASCII on one line, at most [`adapters::sns::MAX_SUBJECT_LEN`]
/// characters (AWS refuses anything else; moto only checks the length). The subjects are fixed
/// English text around ASCII ids, so this never changes one in practice.
pub(crate) fn subject(text: String) -> String {
    let one_line: String = text
        .chars()
        .map(|c| match c {
            ' '..='~' => c,
            c if c.is_whitespace() => ' ',
            _ => '?',
        })
        .take(adapters::sns::MAX_SUBJECT_LEN)
        .collect();
    one_line.trim_end().to_owned()
}

/// An instant the way a customer reads it: `2026-11-23 14:30 UTC`.
pub(crate) fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use domain::ids::OrderId;
    use lambda_glue::consumer::handle_sqs_batch;
    use testkit::lambda::{bus_event_body, failed_ids, sqs_event};
    use testkit::memory::MarkerState;

    use super::*;
    use crate::testing::{self, World, address_lines, sample};

    /// Every notification handler with an event it serves.
    fn every_handler() -> Vec<(NotificationHandler, StoredEvent)> {
        crate::NOTIFICATION_HANDLERS
            .iter()
            .map(|handler| (*handler, sample(handler.event_type)))
            .collect()
    }

    #[tokio::test]
    async fn every_handler_sends_one_notification_with_the_event_type_and_customer_id() {
        for (handler, event) in every_handler() {
            let world = World::new();
            let failed = world.deliver(&handler, &[bus_event_body(&event)]).await;
            assert!(failed.is_empty(), "{}: {failed:?}", handler.name);
            let [sent] = world.notifier.sent().try_into().unwrap();
            assert_eq!(sent.event_type, handler.event_type, "{}", handler.name);
            assert_eq!(sent.customer_id, testing::CUSTOMER, "{}", handler.name);
            assert_eq!(sent.event_id, event.event_id, "{}", handler.name);
            assert!(!sent.subject.is_empty() && !sent.message.is_empty());
        }
    }

    #[tokio::test]
    async fn a_message_delivered_twice_notifies_once() {
        for (handler, event) in every_handler() {
            let world = World::new();
            let body = bus_event_body(&event);
            for _ in 0..2 {
                let failed = world.deliver(&handler, std::slice::from_ref(&body)).await;
                assert!(failed.is_empty(), "{}: {failed:?}", handler.name);
            }
            assert_eq!(world.notifier.sent().len(), 1, "{}", handler.name);
        }
    }

    #[tokio::test]
    async fn both_copies_in_one_batch_notify_once() {
        let (handler, event) = every_handler().remove(0);
        let world = World::new();
        let body = bus_event_body(&event);
        assert!(
            world
                .deliver(&handler, &[body.clone(), body])
                .await
                .is_empty()
        );
        assert_eq!(world.notifier.sent().len(), 1);
    }

    #[tokio::test]
    async fn the_marker_names_handler_and_event_and_expires_after_seven_days() {
        let (handler, event) = every_handler().remove(2);
        let world = World::new();
        world.deliver(&handler, &[bus_event_body(&event)]).await;
        let key = format!("alert#{}#{}", handler.name, event.event_id);
        assert_eq!(marker_key(handler.name, &event.event_id), key);
        let Some(MarkerState::Completed {
            response,
            expires_at,
        }) = world.idempotency.marker(&key)
        else {
            panic!("no completed marker");
        };
        assert_eq!(expires_at, (testing::now() + Duration::days(7)).timestamp());
        assert_eq!(response["handler"], handler.name);
        assert!(
            !response
                .to_string()
                .contains(&world.notifier.sent()[0].message),
            "the marker keeps no message"
        );
    }

    #[tokio::test]
    async fn the_same_event_reaching_two_handlers_is_marked_once_per_handler() {
        // Not a real route, but it shows the marker's scope: another handler's marker never
        // silences this one.
        let event = sample("DeliveryDelayed");
        let world = World::new();
        let other = NotificationHandler {
            name: "alert-on-delivery-delayed-sms",
            ..crate::on_delivery_delayed::HANDLER
        };
        for handler in [crate::on_delivery_delayed::HANDLER, other] {
            assert!(
                world
                    .deliver(&handler, &[bus_event_body(&event)])
                    .await
                    .is_empty()
            );
        }
        assert_eq!(world.notifier.sent().len(), 2);
    }

    #[tokio::test]
    async fn notifier_down_fails_the_message_writes_no_marker_and_the_retry_notifies_once() {
        for (handler, event) in every_handler() {
            let world = World::new();
            let body = bus_event_body(&event);
            world.notifier.fail_next(1);
            assert_eq!(
                world.deliver(&handler, std::slice::from_ref(&body)).await,
                ["m-0"],
                "{}",
                handler.name
            );
            assert!(world.notifier.sent().is_empty());
            let key = marker_key(handler.name, &event.event_id);
            assert_eq!(
                world.idempotency.marker(&key),
                None,
                "the claim was released"
            );

            assert!(
                world
                    .deliver(&handler, std::slice::from_ref(&body))
                    .await
                    .is_empty()
            );
            assert!(world.deliver(&handler, &[body]).await.is_empty());
            assert_eq!(world.notifier.sent().len(), 1, "{}", handler.name);
        }
    }

    #[tokio::test]
    async fn notifier_failure_is_retryable() {
        let (handler, event) = every_handler().remove(0);
        let world = World::new();
        world.notifier.fail_next(1);
        let outcome = handler.handle(&world.alert(), event).await;
        assert!(
            matches!(outcome, Err(HandlerError::Retryable(_))),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_misrouted_event_type_is_poison_and_notifies_nothing() {
        for (handler, _) in every_handler() {
            let other = if handler.event_type == "OrderPlaced" {
                "DeliveryCompleted"
            } else {
                "OrderPlaced"
            };
            let world = World::new();
            let outcome = handler.handle(&world.alert(), sample(other)).await;
            let Err(HandlerError::Poison(reason)) = outcome else {
                panic!("{}: {outcome:?}", handler.name);
            };
            assert!(reason.contains("misrouted"), "{reason}");
            assert_eq!(
                world
                    .deliver(&handler, &[bus_event_body(&sample(other))])
                    .await,
                ["m-0"]
            );
            assert!(world.notifier.sent().is_empty(), "{}", handler.name);
        }
    }

    #[tokio::test]
    async fn an_event_of_the_served_type_whose_data_does_not_decode_is_poison() {
        for (handler, mut event) in every_handler() {
            event.data = serde_json::json!({"order_id": "o1"});
            let world = World::new();
            let outcome = handler.handle(&world.alert(), event).await;
            assert!(
                matches!(outcome, Err(HandlerError::Poison(_))),
                "{}: {outcome:?}",
                handler.name
            );
            assert!(world.notifier.sent().is_empty());
        }
    }

    #[tokio::test]
    async fn a_malformed_body_fails_without_calling_the_handler() {
        let world = World::new();
        let called = std::sync::atomic::AtomicBool::new(false);
        let batch = sqs_event(&["{\"detail-type\": \"OrderPlaced\", \"detail\": 7}".into()]);
        let response = handle_sqs_batch("test", &batch, |_event| {
            called.store(true, std::sync::atomic::Ordering::SeqCst);
            async { Ok(()) }
        })
        .await;
        assert_eq!(failed_ids(&response), ["m-0"]);
        assert!(!called.load(std::sync::atomic::Ordering::SeqCst));
        for (handler, _) in every_handler() {
            assert_eq!(world.deliver(&handler, &["not json".into()]).await, ["m-0"]);
        }
        assert!(world.notifier.sent().is_empty());
    }

    #[tokio::test]
    async fn a_batch_with_one_bad_message_reports_only_that_one() {
        let handler = crate::on_order_placed::HANDLER;
        let first = sample("OrderPlaced");
        let mut second = sample("OrderPlaced");
        second.event_id = "second-order-placed".into();
        let world = World::new();
        let failed = world
            .deliver(
                &handler,
                &[
                    bus_event_body(&first),
                    "{\"version\": \"0\"}".into(),
                    bus_event_body(&sample("DeliveryCompleted")),
                    bus_event_body(&second),
                ],
            )
            .await;
        assert_eq!(failed, ["m-1", "m-2"]);
        let ids: Vec<_> = world
            .notifier
            .sent()
            .into_iter()
            .map(|n| n.event_id)
            .collect();
        assert_eq!(ids, [first.event_id, second.event_id]);
    }

    #[tokio::test]
    async fn a_marker_store_that_cannot_be_read_fails_the_message_before_notifying() {
        let (handler, event) = every_handler().remove(0);
        let world = World::new();
        let broken = testing::BrokenMarkers::claims();
        let deps = AlertDeps {
            markers: &broken,
            ..world.alert()
        };
        let outcome = handler.handle(&deps, event).await;
        assert!(
            matches!(outcome, Err(HandlerError::Retryable(_))),
            "{outcome:?}"
        );
        assert!(world.notifier.sent().is_empty());
    }

    #[tokio::test]
    async fn a_marker_that_cannot_be_written_after_notifying_still_acknowledges_the_message() {
        let (handler, event) = every_handler().remove(0);
        let world = World::new();
        let broken = testing::BrokenMarkers::completions();
        let deps = AlertDeps {
            markers: &broken,
            ..world.alert()
        };
        assert_eq!(handler.handle(&deps, event).await, Ok(()));
        assert_eq!(world.notifier.sent().len(), 1, "notified once, not retried");
        assert_eq!(
            broken
                .completion_attempts
                .load(std::sync::atomic::Ordering::Relaxed),
            COMPLETE_ATTEMPTS
        );
    }

    #[tokio::test]
    async fn a_claim_applied_whose_answer_was_lost_is_taken_back_for_the_redelivery() {
        let (handler, event) = every_handler().remove(0);
        let world = World::new();
        let lost = testing::LostClaimAnswers(&world.idempotency);
        let deps = AlertDeps {
            markers: &lost,
            ..world.alert()
        };
        assert!(matches!(
            handler.handle(&deps, event.clone()).await,
            Err(HandlerError::Retryable(_))
        ));
        assert!(world.notifier.sent().is_empty());
        // The redelivery claims the marker at once, not after the lease.
        assert_eq!(handler.handle(&world.alert(), event).await, Ok(()));
        assert_eq!(world.notifier.sent().len(), 1);
    }

    #[tokio::test]
    async fn a_completion_that_fails_once_is_tried_again_so_the_marker_says_notified() {
        let (handler, event) = every_handler().remove(0);
        let world = World::new();
        let flaky = testing::BrokenMarkers::completions_failing(COMPLETE_ATTEMPTS - 1);
        let deps = AlertDeps {
            markers: &flaky,
            ..world.alert()
        };
        assert_eq!(handler.handle(&deps, event).await, Ok(()));
        assert_eq!(world.notifier.sent().len(), 1);
        assert_eq!(
            flaky
                .completion_attempts
                .load(std::sync::atomic::Ordering::Relaxed),
            COMPLETE_ATTEMPTS,
            "the last try completed the marker"
        );
    }

    #[tokio::test]
    async fn no_notification_carries_the_address_or_free_text_from_the_event() {
        for (handler, event) in every_handler() {
            let world = World::new();
            world.deliver(&handler, &[bus_event_body(&event)]).await;
            let sent = world.notifier.sent();
            let text = format!("{} {}", sent[0].subject, sent[0].message);
            for secret in address_lines().iter().chain(testing::FREE_TEXT) {
                assert!(
                    !text.contains(secret),
                    "{}: {secret:?} in {text:?}",
                    handler.name
                );
            }
        }
    }

    #[tokio::test]
    async fn subjects_fit_sns_even_with_the_longest_order_ids() {
        let long_id = OrderId::parse("o".repeat(domain::ids::MAX_ID_LEN)).unwrap();
        for (handler, mut event) in every_handler() {
            event.data["order_id"] = serde_json::json!(long_id);
            let notification = (handler.compose)(&event).unwrap();
            assert!(
                notification.subject.len() <= adapters::sns::MAX_SUBJECT_LEN,
                "{}: {:?}",
                handler.name,
                notification.subject
            );
            assert!(notification.subject.is_ascii() && !notification.subject.contains('\n'));
            assert!(
                notification.subject.contains(long_id.as_str()),
                "{}",
                handler.name
            );
        }
    }

    #[test]
    fn subjects_are_one_ascii_line_of_at_most_100_characters() {
        assert_eq!(subject("a\nb\tc".into()), "a b c");
        assert_eq!(subject("Caf\u{e9} \u{1F69A}".into()), "Caf? ?");
        assert_eq!(subject("x".repeat(150)).len(), 100);
    }

    #[test]
    fn instants_read_as_utc_minutes() {
        assert_eq!(when(testing::now()), "2026-11-22 10:00 UTC");
    }

    #[tokio::test]
    async fn two_deliveries_of_one_event_at_once_notify_once_the_second_comes_back_later() {
        let (handler, event) = every_handler().remove(1);
        let world = World::new();
        let key = marker_key(handler.name, &event.event_id);
        // The first delivery holds the claim (it is publishing right now).
        let now = testing::now();
        assert_eq!(
            world
                .idempotency
                .claim(
                    &key,
                    "first",
                    now.timestamp_millis(),
                    (now + CLAIM_LEASE).timestamp_millis(),
                    (now + MARKER_TTL).timestamp()
                )
                .await,
            Ok(Claim::Claimed)
        );
        let second = handler.handle(&world.alert(), event.clone()).await;
        assert!(
            matches!(second, Err(HandlerError::Retryable(_))),
            "{second:?}"
        );
        assert!(
            world.notifier.sent().is_empty(),
            "the second did not notify"
        );
        // The first completes; the second's redelivery finds it done.
        assert_eq!(
            world
                .idempotency
                .complete(&key, "first", json!({}), (now + MARKER_TTL).timestamp())
                .await,
            Ok(true)
        );
        assert_eq!(handler.handle(&world.alert(), event).await, Ok(()));
        assert!(world.notifier.sent().is_empty());
    }

    #[tokio::test]
    async fn a_claim_whose_holder_crashed_is_taken_over_after_its_lease() {
        let (handler, event) = every_handler().remove(3);
        let world = World::new();
        let key = marker_key(handler.name, &event.event_id);
        let then = testing::now() - CLAIM_LEASE - Duration::seconds(1);
        world
            .idempotency
            .claim(
                &key,
                "crashed",
                then.timestamp_millis(),
                (then + CLAIM_LEASE).timestamp_millis(),
                (then + MARKER_TTL).timestamp(),
            )
            .await
            .unwrap();
        assert_eq!(handler.handle(&world.alert(), event).await, Ok(()));
        assert_eq!(world.notifier.sent().len(), 1, "notified by the redelivery");
        assert!(matches!(
            world.idempotency.marker(&key),
            Some(MarkerState::Completed { .. })
        ));
    }
}
