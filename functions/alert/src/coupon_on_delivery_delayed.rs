//! `coupon-on-delivery-delayed`: compensates every delivery delay with a coupon
//! (docs/architecture.md, "Domain": at most one per delay).
//!
//! On `DeliveryDelayed` it runs `CouponCommand::Issue` against the coupon stream
//! `coupon#<CouponId::for_delay(delivery_id, delay_number)>` through [`repository::execute`]. The
//! coupon's id is derived from the delay, so the delay delivered again (a duplicate, a redelivery
//! after a crash, a replay) loads the issued coupon and decides nothing: at most one coupon per delay
//! by construction, with no idempotency record. Two deliveries racing on the empty stream are
//! settled by the event store's optimistic concurrency: one append wins, the other reloads and
//! decides nothing.
//!
//! Failures: an event store out of reach, or a race lost more than [`MAX_ATTEMPTS`] times, is
//! retryable; a stored coupon that cannot be read, an append the store refuses, or a command the
//! domain refuses (a delay numbered 0) is poison, as no retry changes it.

use domain::Aggregate;
use domain::coupon::{Coupon, CouponCommand};
use domain::delivery::DeliveryEvent;
use domain::envelope::{Actor, EventContext, StoredEvent};
use domain::ids::{CouponId, DeliveryId, StreamId};
use domain::ports::{Clock, EventStore};
use domain::repository::{self, CommandError};
use lambda_glue::consumer::{EventHandler, HandlerError};
use tracing::info;

use crate::config::CouponConfig;
use crate::notify::misrouted;

/// The function's name (also its actor: `system/coupon-on-delivery-delayed`).
pub const NAME: &str = "coupon-on-delivery-delayed";

/// The environment variables it reads.
pub const ENV_VARS: &[&str] = CouponConfig::ENV_VARS;

/// The one event type it serves.
pub const EVENT_TYPE: &str = "DeliveryDelayed";

/// The compensation for a delay, in percent.
pub const DISCOUNT_PERCENT: u8 = 10;

/// Load → decide → append attempts when concurrent deliveries race on one coupon stream.
pub const MAX_ATTEMPTS: u32 = 3;

/// What the coupon handler talks through.
#[derive(Clone, Copy)]
pub struct CouponDeps<'a> {
    /// The event store holding the coupon streams.
    pub store: &'a dyn EventStore,
    /// When the coupon is issued.
    pub clock: &'a dyn Clock,
}

#[async_trait::async_trait]
impl EventHandler for CouponDeps<'_> {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn handle(&self, event: StoredEvent) -> Result<(), HandlerError> {
        handle(self, event).await
    }
}

/// The stream of the coupon compensating delay `delay_number` of `delivery_id`.
pub fn coupon_stream(delivery_id: &DeliveryId, delay_number: u32) -> StreamId {
    StreamId::new(Coupon::KIND, CouponId::for_delay(delivery_id, delay_number))
}

/// Handles one `DeliveryDelayed`: issues its coupon unless it was issued already.
pub async fn handle(deps: &CouponDeps<'_>, event: StoredEvent) -> Result<(), HandlerError> {
    if event.event_type != EVENT_TYPE {
        return Err(misrouted(NAME, EVENT_TYPE, &event));
    }
    let DeliveryEvent::DeliveryDelayed(delayed) = event.decode::<DeliveryEvent>()? else {
        return Err(misrouted(NAME, EVENT_TYPE, &event));
    };
    let stream_id = coupon_stream(&delayed.delivery_id, delayed.delay_number);
    let command = CouponCommand::Issue {
        customer_id: delayed.customer_id,
        order_id: delayed.order_id,
        delivery_id: delayed.delivery_id,
        delay_number: delayed.delay_number,
        discount_percent: DISCOUNT_PERCENT,
    };
    let context = EventContext::caused_by(&event, Actor::system(NAME), deps.clock.now());
    match repository::execute::<Coupon>(
        deps.store,
        &stream_id,
        &command,
        &context,
        None,
        MAX_ATTEMPTS,
    )
    .await
    {
        Ok(stored) if stored.is_empty() => {
            info!(coupon_stream = %stream_id, "the delay's coupon was issued already: nothing to do");
            Ok(())
        }
        Ok(_) => {
            info!(coupon_stream = %stream_id, discount_percent = DISCOUNT_PERCENT, "coupon issued");
            Ok(())
        }
        Err(CommandError::Store(error)) if error.is_retryable() => {
            Err(HandlerError::Retryable(error.to_string()))
        }
        Err(error) => Err(HandlerError::Poison(error.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use domain::coupon::{CouponEvent, CouponIssued};
    use domain::ids::{CustomerId, OrderId};
    use domain::ports::{AppendRequest, StoreError};
    use testkit::lambda::{bus_event_body, sqs_event};

    use super::*;
    use crate::testing::{self, World, delayed_fixture, delayed_fixture_body, delivery_delayed};

    fn coupons(world: &World) -> Vec<StoredEvent> {
        world
            .store
            .all_events()
            .into_iter()
            .filter(|e| e.stream_id.kind() == Coupon::KIND)
            .collect()
    }

    #[tokio::test]
    async fn a_delay_issues_one_ten_percent_coupon_named_after_the_delay() {
        let world = World::new();
        assert!(world.deliver_coupons(&delayed_fixture()).await.is_empty());
        let [coupon] = coupons(&world).try_into().unwrap();
        let delivery_id = DeliveryId::parse("d-018f1c2e-7b3a-7000-8000-0000000000a1").unwrap();
        assert_eq!(
            coupon.stream_id.as_str(),
            "coupon#c-d-018f1c2e-7b3a-7000-8000-0000000000a1-1"
        );
        assert_eq!(coupon.version, 1);
        assert_eq!(
            coupon.decode::<CouponEvent>().unwrap(),
            CouponEvent::CouponIssued(CouponIssued {
                coupon_id: CouponId::for_delay(&delivery_id, 1),
                customer_id: CustomerId::parse("cust-42").unwrap(),
                order_id: OrderId::parse("018f1c2e-7b3a-7000-8000-0000000000a1").unwrap(),
                delivery_id,
                delay_number: 1,
                discount_percent: 10,
            })
        );
    }

    #[tokio::test]
    async fn the_coupon_is_caused_by_the_delay_and_issued_by_the_system() {
        let world = World::new();
        world.deliver_coupons(&delayed_fixture()).await;
        let coupon = &coupons(&world)[0];
        assert_eq!(coupon.causation_id, "018f1c2e-7b3a-7000-8000-00000000e301");
        assert_eq!(coupon.correlation_id.as_str(), "req-fixture-1");
        assert_eq!(coupon.actor.as_str(), "system/coupon-on-delivery-delayed");
        assert_eq!(coupon.occurred_at, testing::now());
    }

    #[tokio::test]
    async fn the_delay_delivered_three_times_issues_one_coupon_and_one_notification() {
        let world = World::new();
        let notify = crate::on_delivery_delayed::HANDLER;
        for _ in 0..3 {
            assert!(world.deliver_coupons(&delayed_fixture()).await.is_empty());
            assert!(
                world
                    .deliver_batch(&notify, &delayed_fixture())
                    .await
                    .is_empty()
            );
        }
        let body = delayed_fixture_body();
        assert!(
            world
                .deliver_coupons(&sqs_event(&[body.clone(), body]))
                .await
                .is_empty()
        );
        assert_eq!(coupons(&world).len(), 1);
        assert_eq!(world.notifier.sent().len(), 1);
    }

    #[tokio::test]
    async fn each_delay_of_a_delivery_gets_its_own_coupon() {
        let world = World::new();
        let bodies: Vec<String> = [1, 2, 1, 2]
            .map(|n| bus_event_body(&delivery_delayed(n)))
            .into();
        assert!(world.deliver_coupons(&sqs_event(&bodies)).await.is_empty());
        let streams: Vec<String> = coupons(&world)
            .iter()
            .map(|c| c.stream_id.to_string())
            .collect();
        assert_eq!(streams, ["coupon#c-d-o-1001-1", "coupon#c-d-o-1001-2"]);
    }

    #[tokio::test]
    async fn a_store_out_of_reach_is_retryable_and_the_retry_issues_the_coupon() {
        let world = World::new();
        world.store.fail_next_appends(1);
        assert_eq!(
            world.deliver_coupons(&delayed_fixture()).await,
            ["2e1424d4-f796-459a-8184-9c92662be6da"],
            "the fixture's message id"
        );
        assert!(coupons(&world).is_empty());
        world.store.fail_next_appends(1);
        let outcome = handle(&world.coupons(), delivery_delayed(1)).await;
        assert!(
            matches!(outcome, Err(HandlerError::Retryable(_))),
            "{outcome:?}"
        );
        assert!(world.deliver_coupons(&delayed_fixture()).await.is_empty());
        assert_eq!(coupons(&world).len(), 1);
    }

    #[tokio::test]
    async fn a_race_lost_every_time_is_retryable() {
        /// A store on which every append loses the race.
        struct AlwaysConflicting;
        #[async_trait::async_trait]
        impl EventStore for AlwaysConflicting {
            async fn append(&self, request: AppendRequest) -> Result<(), StoreError> {
                Err(StoreError::Conflict {
                    stream_id: request.stream_id,
                    expected_version: request.expected_version,
                })
            }
            async fn load(&self, _: &StreamId) -> Result<Vec<StoredEvent>, StoreError> {
                Ok(Vec::new())
            }
        }
        let world = World::new();
        let deps = CouponDeps {
            store: &AlwaysConflicting,
            ..world.coupons()
        };
        let outcome = handle(&deps, delivery_delayed(1)).await;
        assert!(
            matches!(outcome, Err(HandlerError::Retryable(_))),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn an_unreadable_coupon_stream_is_poison() {
        let world = World::new();
        let mut corrupt = delivery_delayed(1);
        corrupt.stream_id = coupon_stream(&DeliveryId::parse("d-o-1001").unwrap(), 1);
        corrupt.version = 1;
        corrupt.event_type = "CouponIssued".into();
        corrupt.schema_version = 99;
        world.store.insert_raw(corrupt);
        let outcome = handle(&world.coupons(), delivery_delayed(1)).await;
        assert!(
            matches!(outcome, Err(HandlerError::Poison(_))),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_delay_numbered_zero_is_refused_by_the_domain_as_poison() {
        let world = World::new();
        let outcome = handle(&world.coupons(), delivery_delayed(0)).await;
        let Err(HandlerError::Poison(reason)) = outcome else {
            panic!("{outcome:?}");
        };
        assert!(reason.contains("delay_number"), "{reason}");
        assert!(coupons(&world).is_empty());
    }

    #[tokio::test]
    async fn a_misrouted_or_undecodable_event_is_poison() {
        let world = World::new();
        let mut undecodable = delivery_delayed(1);
        undecodable.data = serde_json::json!({"delivery_id": "d-o-1001"});
        for event in [testing::sample("DeliveryCompleted"), undecodable] {
            let outcome = handle(&world.coupons(), event).await;
            assert!(
                matches!(outcome, Err(HandlerError::Poison(_))),
                "{outcome:?}"
            );
        }
        let bodies = [
            bus_event_body(&testing::sample("OrderPlaced")),
            "garbage".into(),
            delayed_fixture_body(),
        ];
        assert_eq!(
            world.deliver_coupons(&sqs_event(&bodies)).await,
            ["m-0", "m-1"]
        );
        assert_eq!(
            coupons(&world).len(),
            1,
            "the good message of the batch still counts"
        );
    }

    #[test]
    fn the_fixture_is_a_real_sqs_event_from_an_eventbridge_rule() {
        let batch = delayed_fixture();
        let [record] = batch.records.as_slice() else {
            panic!("one record");
        };
        assert_eq!(record.event_source.as_deref(), Some("aws:sqs"));
        let body = record.body.as_deref().unwrap();
        let event = lambda_glue::consumer::event_from_sqs_body(body).unwrap();
        assert_eq!(event.event_type, "DeliveryDelayed");
        assert_eq!(event.stream_id.kind(), "delivery");
        let bus: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(bus["source"], "orderflow.delivery");
    }
}
