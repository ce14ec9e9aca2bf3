//! `SnsNotifier` and the alert handlers against the emulator: a notification arrives on a queue
//! subscribed to the topic as the SNS envelope, with its subject, message and both message
//! attributes; a topic that does not exist is a `NotifyError`; an alert handler on SNS and the
//! DynamoDB marker table notifies once when its message is handled twice; the coupon handler on the
//! DynamoDB events table issues one coupon for a delay delivered three times.

use std::time::Duration;

use adapters::clock::SystemClock;
use adapters::dynamo::DynamoIdempotencyStore;
use adapters::sns::SnsNotifier;
use alert::coupon_on_delivery_delayed::{self, CouponDeps};
use alert::notify::{AlertDeps, marker_key};
use alert::on_delivery_delayed;
use chrono::Utc;
use domain::delivery::{Delivery, DeliveryCommand};
use domain::envelope::{Actor, EventContext, StoredEvent};
use domain::ids::{DeliveryId, StreamId};
use domain::ports::{EventStore, Notification, Notifier};
use domain::repository;
use integration_tests::{Emulator, TopicFixture, customer_request, emulator, place_order};
use lambda_glue::consumer::handle_sqs_batch;
use serde_json::{Value, json};
use testkit::lambda::{bus_event_body, failed_ids, sqs_event};
use testkit::memory::InMemoryEventStore;

const ARRIVAL: Duration = Duration::from_secs(20);
const QUIET: Duration = Duration::from_secs(2);

fn notifier(emulator: &Emulator, topic: &TopicFixture) -> SnsNotifier {
    SnsNotifier::new(emulator.sns(), &topic.topic_arn)
}

/// The one SNS envelope that arrives on the topic's queue.
async fn the_envelope(emulator: &Emulator, topic: &TopicFixture) -> Value {
    let mut bodies = emulator.receive_all(&topic.queue_url, 1, ARRIVAL).await;
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    bodies.remove(0)
}

/// A `DeliveryDelayed` as the delivery context stores it: an order's delivery scheduled, then
/// delayed by its courier.
async fn delivery_delayed(customer: &str) -> StoredEvent {
    let store = InMemoryEventStore::new();
    let order = place_order(customer, 2);
    let stream = StreamId::delivery(DeliveryId::for_order(&order.order_id));
    let context = customer_request(customer);
    let promised_by = context.occurred_at + chrono::Duration::hours(48);
    let schedule = DeliveryCommand::Schedule {
        order_id: order.order_id.clone(),
        customer_id: order.customer_id.clone(),
        delivery_address: order.delivery_address.clone(),
        placed_at: context.occurred_at,
        sla: chrono::Duration::hours(48),
    };
    repository::execute::<Delivery>(&store, &stream, &schedule, &context, None, 1)
        .await
        .expect("scheduling");
    let courier_id = domain::ids::CourierId::parse("courier-1").expect("id");
    let dispatch = DeliveryCommand::Dispatch {
        courier_id: courier_id.clone(),
    };
    repository::execute::<Delivery>(&store, &stream, &dispatch, &context, None, 1)
        .await
        .expect("dispatching");
    let delay = DeliveryCommand::ReportDelay {
        courier_id,
        new_eta: promised_by + chrono::Duration::hours(6),
        reason: "Van broke down on 1 Test Street".into(),
    };
    let delay_context = EventContext {
        actor: Actor::system("test"),
        ..context
    };
    repository::execute::<Delivery>(&store, &stream, &delay, &delay_context, None, 1)
        .await
        .expect("delaying")
        .remove(0)
}

#[tokio::test]
async fn a_notification_arrives_on_the_subscribed_queue_with_its_subject_message_and_attributes() {
    let emulator = emulator().await;
    let topic = emulator.topic_to_queue("sns-notify").await;
    let notification = Notification {
        event_type: "DeliveryDelayed".into(),
        customer_id: "cust-sns-1".into(),
        event_id: "e-sns-1".into(),
        subject: "Your order o-1 is running late".into(),
        message: "We are sorry: the delivery of your order o-1 is running late.".into(),
    };

    notifier(&emulator, &topic)
        .notify(&notification)
        .await
        .expect("publishing");

    let envelope = the_envelope(&emulator, &topic).await;
    assert_eq!(envelope["Type"], "Notification", "{envelope}");
    assert_eq!(envelope["TopicArn"], json!(topic.topic_arn));
    assert_eq!(envelope["Subject"], json!(notification.subject));
    assert_eq!(envelope["Message"], json!(notification.message));
    assert_eq!(
        envelope["MessageAttributes"],
        json!({
            "event_type": {"Type": "String", "Value": "DeliveryDelayed"},
            "customer_id": {"Type": "String", "Value": "cust-sns-1"},
            "event_id": {"Type": "String", "Value": notification.event_id},
        }),
        "exactly the three attributes"
    );
    assert!(
        envelope["MessageId"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    emulator.assert_no_message(&topic.queue_url, QUIET).await;
}

#[tokio::test]
async fn a_topic_that_does_not_exist_is_a_notify_error_without_the_content() {
    let emulator = emulator().await;
    let missing = SnsNotifier::new(
        emulator.sns(),
        "arn:aws:sns:us-east-1:123456789012:orderflow-no-such-topic",
    );
    let notification = Notification {
        event_type: "OrderPlaced".into(),
        customer_id: "cust-sns-2".into(),
        event_id: "e-sns-2".into(),
        subject: "We received your order o-2".into(),
        message: "Private words for the customer".into(),
    };
    let error = missing
        .notify(&notification)
        .await
        .expect_err("no such topic");
    assert!(error.0.contains("NotFound"), "{error}");
    assert!(!error.0.contains("Private"), "{error}");
}

#[tokio::test]
async fn the_alert_handler_notifies_through_sns_once_when_its_message_is_handled_twice() {
    let emulator = emulator().await;
    let topic = emulator.topic_to_queue("sns-alert").await;
    let tables = emulator.event_store("sns-alert").await;
    let sns = notifier(&emulator, &topic);
    let markers = DynamoIdempotencyStore::new(tables.client.clone(), &tables.idempotency_table);
    let deps = AlertDeps {
        notifier: &sns,
        markers: &markers,
        clock: &SystemClock,
    };
    let delayed = delivery_delayed("cust-sns-alert").await;
    let batch = sqs_event(&[bus_event_body(&delayed)]);
    let handler = on_delivery_delayed::HANDLER;

    let first = handle_sqs_batch(handler.name, &batch, |e| handler.handle(&deps, e)).await;
    assert!(failed_ids(&first).is_empty(), "{first:?}");
    let envelope = the_envelope(&emulator, &topic).await;
    let data = &delayed.data;
    assert_eq!(
        envelope["Subject"],
        json!(format!(
            "Your order {} is running late",
            data["order_id"].as_str().unwrap_or_default()
        ))
    );
    let message = envelope["Message"].as_str().unwrap_or_default();
    assert!(message.contains("running late"), "{message}");
    assert!(
        !message.contains("Test Street"),
        "no address, no courier text: {message}"
    );
    assert_eq!(
        envelope["MessageAttributes"]["event_type"],
        json!({"Type": "String", "Value": "DeliveryDelayed"})
    );
    assert_eq!(
        envelope["MessageAttributes"]["customer_id"],
        json!({"Type": "String", "Value": "cust-sns-alert"})
    );

    let second = handle_sqs_batch(handler.name, &batch, |e| handler.handle(&deps, e)).await;
    assert!(failed_ids(&second).is_empty(), "{second:?}");
    emulator.assert_no_message(&topic.queue_url, QUIET).await;

    let marker = tables
        .client
        .get_item()
        .table_name(&tables.idempotency_table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(marker_key(handler.name, &delayed.event_id)),
        )
        .consistent_read(true)
        .send()
        .await
        .expect("reading the marker")
        .item
        .expect("a marker");
    let number = |name: &str| -> i64 {
        marker
            .get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("the marker has no {name}: {marker:?}"))
    };
    assert_eq!(
        marker
            .get("marker_status")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str),
        Some("COMPLETED"),
        "{marker:?}"
    );
    let week = chrono::Duration::days(7).num_seconds();
    let expires_in = number("expires_at") - Utc::now().timestamp();
    assert!(
        (week - 60..=week).contains(&expires_in),
        "the marker expires in about a week: {expires_in} s"
    );
}

#[tokio::test]
async fn the_coupon_handler_issues_one_coupon_for_a_delay_delivered_three_times() {
    let emulator = emulator().await;
    let tables = emulator.event_store("sns-coupon").await;
    let deps = CouponDeps {
        store: &tables.store,
        clock: &SystemClock,
    };
    let delayed = delivery_delayed("cust-sns-coupon").await;
    let body = bus_event_body(&delayed);
    for batch in [
        sqs_event(std::slice::from_ref(&body)),
        sqs_event(&[body.clone(), body]),
    ] {
        let response = handle_sqs_batch(coupon_on_delivery_delayed::NAME, &batch, |e| {
            coupon_on_delivery_delayed::handle(&deps, e)
        })
        .await;
        assert!(failed_ids(&response).is_empty(), "{response:?}");
    }
    let delivery_id = DeliveryId::parse(delayed.data["delivery_id"].as_str().unwrap_or_default())
        .expect("a delivery id");
    let stream = coupon_on_delivery_delayed::coupon_stream(&delivery_id, 1);
    let coupon = tables
        .store
        .load(&stream)
        .await
        .expect("loading the coupon");
    let [issued] = coupon.as_slice() else {
        panic!("one CouponIssued, got {coupon:?}");
    };
    assert_eq!(issued.event_type, "CouponIssued");
    assert_eq!(issued.data["discount_percent"], 10);
    assert_eq!(issued.data["customer_id"], "cust-sns-coupon");
    assert_eq!(issued.causation_id, delayed.event_id);
    assert_eq!(issued.actor.as_str(), "system/coupon-on-delivery-delayed");
}

#[tokio::test]
async fn effect_markers_are_claimed_once_completed_released_and_taken_over_after_their_lease() {
    use domain::ports::{Claim, EffectMarkers, IdempotencyRecord, IdempotencyStore};
    let emulator = emulator().await;
    let tables = emulator.event_store("markers").await;
    let markers = DynamoIdempotencyStore::new(tables.client.clone(), &tables.idempotency_table);
    let now = 1_000_000_i64;
    let lease = now + 30_000;
    let expires = 2_000_000_000_i64;
    let claim = |key: &'static str, holder: &'static str, at: i64| {
        let markers = markers.clone();
        async move {
            markers
                .claim(key, holder, at, at + 30_000, expires)
                .await
                .expect("claiming")
        }
    };
    // Two deliveries of one event at once: one claims, the other is told to come back.
    assert_eq!(claim("m-1", "a", now).await, Claim::Claimed);
    assert_eq!(claim("m-1", "b", now + 10).await, Claim::InProgress);
    assert!(
        markers
            .complete("m-1", "a", json!({"ok": true}), expires)
            .await
            .expect("completing")
    );
    assert_eq!(
        claim("m-1", "b", lease + 1).await,
        Claim::Completed,
        "done is done, lease or not"
    );

    // A failed effect releases its claim: the next delivery claims it.
    assert_eq!(claim("m-2", "a", now).await, Claim::Claimed);
    markers.release("m-2", "a").await.expect("releasing");
    assert_eq!(claim("m-2", "b", now + 10).await, Claim::Claimed);
    // Only the holder releases or completes.
    markers
        .release("m-2", "a")
        .await
        .expect("releasing another's claim is a no-op");
    assert_eq!(claim("m-2", "c", now + 20).await, Claim::InProgress);

    // A holder that crashed: its lease runs out and the claim is taken over; its late completion
    // is refused and says so.
    assert_eq!(claim("m-3", "a", now).await, Claim::Claimed);
    assert_eq!(claim("m-3", "b", lease + 1).await, Claim::Claimed);
    assert!(
        !markers
            .complete("m-3", "a", json!({}), expires)
            .await
            .expect("completing")
    );
    assert!(
        markers
            .complete("m-3", "b", json!({}), expires)
            .await
            .expect("completing")
    );

    // A claim or a completion whose answer was lost is retried by the SDK with the same holder:
    // the retry finds the holder's own marker and goes on (the soak lost both answers and the
    // event's notifications went to the DLQ, "another delivery is notifying").
    assert_eq!(claim("m-5", "a", now).await, Claim::Claimed);
    assert_eq!(claim("m-5", "a", now + 5).await, Claim::Claimed);
    assert_eq!(claim("m-5", "b", now + 10).await, Claim::InProgress);
    for attempt in ["first", "retried"] {
        assert!(
            markers
                .complete("m-5", "a", json!({}), expires)
                .await
                .expect("completing"),
            "{attempt} completion"
        );
    }
    assert_eq!(claim("m-5", "b", lease + 1).await, Claim::Completed);

    // A marker of the old kind (a record put if absent) counts as completed.
    markers
        .put_if_absent(IdempotencyRecord {
            key: "m-4".into(),
            request_hash: "e-4".into(),
            response: json!({}),
            expires_at: expires,
        })
        .await
        .expect("putting");
    assert_eq!(claim("m-4", "a", now).await, Claim::Completed);
}
