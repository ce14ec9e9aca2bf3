//! The application services over the ports — projection and command handling — on the
//! testkit's in-memory adapters (integration tests: the in-memory adapters live in testkit, which
//! depends on this crate).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod projection {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::{DateTime, Duration, TimeZone, Utc};

    use domain::address::{Address, UncheckedAddress};
    use domain::coupon::{CouponEvent, CouponIssued};
    use domain::delivery::{
        DeliveryDelayed, DeliveryDispatched, DeliveryEvent, DeliveryScheduled, DeliveryStatus,
    };
    use domain::envelope::StoredEvent;
    use domain::envelope::{Actor, CorrelationId, EventContext};
    use domain::events::DecodeError;
    use domain::events::Event;
    use domain::ids::StreamId;
    use domain::ids::{CouponId, CourierId, CustomerId, DeliveryId, OrderId, Sku};
    use domain::money::{Cents, Currency};
    use domain::order::{LineItem, OrderEvent, OrderPlaced, OrderShipped, OrderStatus};
    use domain::ports::AppendRequest;
    use domain::ports::{EventStore, StoreError};
    use domain::projection::*;
    use domain::read_model::{OrderPage, OrderView};
    use domain::read_model::{OrderViews, ViewError};
    use testkit::memory::{InMemoryEventStore, InMemoryOrderViews};

    fn order_id() -> OrderId {
        OrderId::parse("o1").unwrap()
    }
    fn customer_id() -> CustomerId {
        CustomerId::parse("c1").unwrap()
    }
    fn delivery_id() -> DeliveryId {
        DeliveryId::for_order(&order_id())
    }
    fn order_stream() -> StreamId {
        StreamId::order(order_id())
    }
    fn delivery_stream() -> StreamId {
        StreamId::delivery(delivery_id())
    }
    fn at(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap() + Duration::minutes(minutes)
    }

    fn context(minute: i64) -> EventContext {
        EventContext {
            correlation_id: CorrelationId::parse("req-1").unwrap(),
            causation_id: "req-1".into(),
            actor: Actor::system("test"),
            occurred_at: at(minute),
        }
    }

    fn placed() -> OrderEvent {
        OrderEvent::OrderPlaced(OrderPlaced {
            order_id: order_id(),
            customer_id: customer_id(),
            items: vec![LineItem {
                sku: Sku::parse("TEA").unwrap(),
                quantity: 2.try_into().unwrap(),
                unit_price: 1_250.try_into().unwrap(),
            }],
            total: Cents::new(2_500),
            currency: Currency::EUR,
            delivery_address: Address::parse(UncheckedAddress {
                recipient: "R".into(),
                line1: "1 Street".into(),
                line2: None,
                city: "City".into(),
                postal_code: "10115".into(),
                country: "DE".into(),
            })
            .unwrap(),
        })
    }
    fn shipped() -> OrderEvent {
        OrderEvent::OrderShipped(OrderShipped {
            order_id: order_id(),
            customer_id: customer_id(),
            delivery_id: delivery_id(),
        })
    }
    fn scheduled() -> DeliveryEvent {
        let OrderEvent::OrderPlaced(p) = placed() else {
            unreachable!()
        };
        DeliveryEvent::DeliveryScheduled(DeliveryScheduled {
            delivery_id: delivery_id(),
            order_id: order_id(),
            customer_id: customer_id(),
            delivery_address: p.delivery_address,
            promised_by: at(24 * 60),
        })
    }
    fn dispatched() -> DeliveryEvent {
        DeliveryEvent::DeliveryDispatched(DeliveryDispatched {
            delivery_id: delivery_id(),
            order_id: order_id(),
            customer_id: customer_id(),
            courier_id: CourierId::parse("courier-1").unwrap(),
        })
    }
    fn delayed(delay_number: u32) -> DeliveryEvent {
        DeliveryEvent::DeliveryDelayed(DeliveryDelayed {
            delivery_id: delivery_id(),
            order_id: order_id(),
            customer_id: customer_id(),
            delay_number,
            previous_eta: at(24 * 60),
            new_eta: at(26 * 60),
            reason: "traffic".into(),
        })
    }
    fn coupon() -> CouponEvent {
        CouponEvent::CouponIssued(CouponIssued {
            coupon_id: CouponId::for_delay(&delivery_id(), 1),
            customer_id: customer_id(),
            order_id: order_id(),
            delivery_id: delivery_id(),
            delay_number: 1,
            discount_percent: 10,
        })
    }

    /// Appends `events` to `stream` in the store, each a minute after `minute`, and returns them.
    async fn append<E: Event>(
        store: &InMemoryEventStore,
        stream: &StreamId,
        minute: i64,
        events: &[E],
    ) -> Vec<StoredEvent> {
        let current = store.load(stream).await.unwrap().len() as u64;
        let mut stored = Vec::new();
        for (offset, event) in (0..).zip(events) {
            stored.extend(StoredEvent::stamp(
                stream,
                current + offset as u64,
                std::slice::from_ref(event),
                &context(minute + offset),
            ));
        }
        store
            .append(AppendRequest {
                stream_id: stream.clone(),
                expected_version: current,
                events: stored.clone(),
                idempotency: None,
            })
            .await
            .unwrap();
        stored
    }

    async fn project(
        store: &InMemoryEventStore,
        views: &dyn OrderViews,
        event: &StoredEvent,
    ) -> Result<Projected, ProjectionError> {
        project_order_view(store, views, event, 3).await
    }

    async fn view(views: &InMemoryOrderViews) -> OrderView {
        views.get(&order_id()).await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn events_in_order_build_the_view_one_write_each() {
        let store = InMemoryEventStore::new();
        let views = InMemoryOrderViews::new();
        let mut all = append(&store, &order_stream(), 0, &[placed()]).await;
        all.extend(append(&store, &delivery_stream(), 1, &[scheduled(), dispatched()]).await);
        all.extend(append(&store, &order_stream(), 3, &[shipped()]).await);
        for event in &all {
            assert_eq!(project(&store, &views, event).await, Ok(Projected::Applied));
        }
        assert_eq!(views.writes(), 4);
        let view = view(&views).await;
        assert_eq!(view.status, Some(OrderStatus::Shipped));
        assert_eq!(
            view.delivery.map(|d| d.status),
            Some(DeliveryStatus::Dispatched)
        );
        assert_eq!(view.timeline.len(), 4);
        assert_eq!(view.versions.len(), 2);
    }

    #[tokio::test]
    async fn a_duplicate_writes_nothing() {
        let store = InMemoryEventStore::new();
        let views = InMemoryOrderViews::new();
        let events = append(&store, &order_stream(), 0, &[placed(), shipped()]).await;
        for event in &events {
            project(&store, &views, event).await.unwrap();
        }
        let before = view(&views).await;
        let writes = views.writes();
        for event in events.iter().chain(&events) {
            assert_eq!(
                project(&store, &views, event).await,
                Ok(Projected::Duplicate)
            );
        }
        assert_eq!(views.writes(), writes, "no write for a duplicate");
        assert_eq!(view(&views).await, before);
    }

    #[tokio::test]
    async fn a_gap_in_a_stream_is_healed_from_the_event_store() {
        let store = InMemoryEventStore::new();
        let views = InMemoryOrderViews::new();
        let order = append(&store, &order_stream(), 0, &[placed()]).await;
        let delivery = append(
            &store,
            &delivery_stream(),
            1,
            &[scheduled(), dispatched(), delayed(1)],
        )
        .await;
        project(&store, &views, &order[0]).await.unwrap();

        // v1 and v2 of the delivery stream were lost or are late: v3 arrives first.
        assert_eq!(
            project(&store, &views, &delivery[2]).await,
            Ok(Projected::Applied)
        );
        assert_eq!(views.writes(), 2, "healing and applying is one write");
        let healed = view(&views).await;
        assert_eq!(healed.version_of(&delivery_stream()), 3);
        let delivery_view = healed.delivery.clone().unwrap();
        assert_eq!(
            (
                delivery_view.status,
                delivery_view.delays,
                delivery_view.eta
            ),
            (DeliveryStatus::Dispatched, 1, at(26 * 60))
        );
        let types: Vec<_> = healed
            .timeline
            .iter()
            .map(|e| e.event_type.as_str())
            .collect();
        assert_eq!(
            types,
            [
                "OrderPlaced",
                "DeliveryScheduled",
                "DeliveryDispatched",
                "DeliveryDelayed"
            ]
        );

        // The late ones are duplicates now.
        for late in &delivery[..2] {
            assert_eq!(
                project(&store, &views, late).await,
                Ok(Projected::Duplicate)
            );
        }
        assert_eq!(view(&views).await, healed);

        // The same view as if everything had arrived in order.
        let in_order = InMemoryOrderViews::new();
        for event in order.iter().chain(&delivery) {
            project(&store, &in_order, event).await.unwrap();
        }
        assert_eq!(view(&in_order).await, healed);
    }

    #[tokio::test]
    async fn a_gap_the_store_cannot_close_yet_is_retryable_and_writes_nothing() {
        let store = InMemoryEventStore::new();
        let views = InMemoryOrderViews::new();
        let order = append(&store, &order_stream(), 0, &[placed()]).await;
        project(&store, &views, &order[0]).await.unwrap();
        // A v3 the store does not hold v2 of (e.g. a stream from another table).
        let elsewhere = InMemoryEventStore::new();
        let delivery = append(
            &elsewhere,
            &delivery_stream(),
            1,
            &[scheduled(), dispatched(), delayed(1)],
        )
        .await;
        store.insert_raw(delivery[0].clone());

        let error = project(&store, &views, &delivery[2]).await.unwrap_err();
        assert_eq!(
            error,
            ProjectionError::MissingEvents {
                stream_id: delivery_stream(),
                from: 2,
                to: 2,
            }
        );
        assert!(error.is_retryable());
        assert_eq!(views.writes(), 1);
        assert_eq!(view(&views).await.version_of(&delivery_stream()), 0);
    }

    #[tokio::test]
    async fn delivery_and_coupon_events_before_the_order_still_give_the_full_view() {
        let store = InMemoryEventStore::new();
        let views = InMemoryOrderViews::new();
        let order = append(&store, &order_stream(), 0, &[placed()]).await;
        let delivery = append(&store, &delivery_stream(), 1, &[scheduled()]).await;
        let coupons = append(
            &store,
            &StreamId::coupon(CouponId::for_delay(&delivery_id(), 1)),
            2,
            &[coupon()],
        )
        .await;

        // The coupon overtakes everything.
        assert_eq!(
            project(&store, &views, &coupons[0]).await,
            Ok(Projected::Applied)
        );
        let first = view(&views).await;
        assert_eq!(first.status, Some(OrderStatus::Placed));
        assert_eq!(first.customer_id, Some(customer_id()));
        assert_eq!(first.total, Some(Cents::new(2_500)));
        assert_eq!(first.coupons.len(), 1);
        assert_eq!(
            first.delivery, None,
            "the delivery stream comes with its own events"
        );

        assert_eq!(
            project(&store, &views, &delivery[0]).await,
            Ok(Projected::Applied)
        );
        assert_eq!(
            project(&store, &views, &order[0]).await,
            Ok(Projected::Duplicate),
            "OrderPlaced was brought in already"
        );
        let full = view(&views).await;
        assert_eq!(full.timeline.len(), 3);
        assert_eq!(
            full.timeline
                .iter()
                .map(|e| e.event_type.as_str())
                .collect::<Vec<_>>(),
            ["OrderPlaced", "DeliveryScheduled", "CouponIssued"]
        );
        assert_eq!(views.writes(), 2);
    }

    #[tokio::test]
    async fn a_delivery_event_for_an_order_not_stored_yet_makes_a_partial_view() {
        let store = InMemoryEventStore::new();
        let views = InMemoryOrderViews::new();
        let delivery = append(&store, &delivery_stream(), 1, &[scheduled()]).await;
        assert_eq!(
            project(&store, &views, &delivery[0]).await,
            Ok(Projected::Applied)
        );
        let partial = view(&views).await;
        assert_eq!((partial.status, partial.customer_id), (None, None));
        assert!(partial.delivery.is_some());
        assert_eq!(
            views
                .list_for_customer(&customer_id(), 10, None)
                .await
                .unwrap(),
            OrderPage {
                orders: vec![],
                next_cursor: None
            },
            "an order not placed yet is not listed"
        );
        let order = append(&store, &order_stream(), 0, &[placed()]).await;
        project(&store, &views, &order[0]).await.unwrap();
        let listed = views
            .list_for_customer(&customer_id(), 10, None)
            .await
            .unwrap();
        assert_eq!(listed.orders.len(), 1);
    }

    /// Views on which another projector writes between this one's read and its write, `races`
    /// times.
    struct Racing {
        inner: InMemoryOrderViews,
        store: InMemoryEventStore,
        rival: Mutex<Vec<StoredEvent>>,
    }

    #[async_trait]
    impl OrderViews for Racing {
        async fn get(&self, order_id: &OrderId) -> Result<Option<OrderView>, ViewError> {
            self.inner.get(order_id).await
        }
        async fn list_for_customer(
            &self,
            customer_id: &CustomerId,
            limit: u32,
            cursor: Option<&str>,
        ) -> Result<OrderPage, ViewError> {
            self.inner
                .list_for_customer(customer_id, limit, cursor)
                .await
        }
        async fn save(
            &self,
            view: &OrderView,
            previous: Option<&OrderView>,
        ) -> Result<(), ViewError> {
            let rival = self.rival.lock().unwrap().pop();
            if let Some(rival) = rival {
                project_order_view(&self.store, &self.inner, &rival, 1)
                    .await
                    .unwrap();
            }
            self.inner.save(view, previous).await
        }
    }

    #[tokio::test]
    async fn a_concurrent_write_is_read_again_and_both_events_end_up_in_the_view() {
        let store = InMemoryEventStore::new();
        let order = append(&store, &order_stream(), 0, &[placed(), shipped()]).await;
        let delivery = append(&store, &delivery_stream(), 1, &[scheduled()]).await;
        let racing = Racing {
            inner: InMemoryOrderViews::new(),
            store: store.clone(),
            rival: Mutex::new(vec![delivery[0].clone(), order[0].clone()]),
        };
        // OrderShipped (v2) needs v1 too: the rival writes v1, then the delivery event, each
        // right before this projector's write.
        assert_eq!(
            project_order_view(&store, &racing, &order[1], 3).await,
            Ok(Projected::Applied)
        );
        assert_eq!(racing.inner.writes(), 3, "two rival writes and one of ours");
        let view = view(&racing.inner).await;
        assert_eq!(view.status, Some(OrderStatus::Shipped));
        assert_eq!(view.version_of(&order_stream()), 2);
        assert_eq!(view.version_of(&delivery_stream()), 1);
        assert_eq!(view.timeline.len(), 3);
    }

    #[tokio::test]
    async fn a_view_that_keeps_changing_is_a_retryable_conflict_after_the_attempts() {
        let store = InMemoryEventStore::new();
        let order = append(&store, &order_stream(), 0, &[placed(), shipped()]).await;
        let delivery = append(&store, &delivery_stream(), 1, &[scheduled(), dispatched()]).await;
        let racing = Racing {
            inner: InMemoryOrderViews::new(),
            store: store.clone(),
            rival: Mutex::new(vec![delivery[1].clone(), delivery[0].clone()]),
        };
        project(&store, &racing.inner, &order[0]).await.unwrap();
        let error = project_order_view(&store, &racing, &order[1], 2)
            .await
            .unwrap_err();
        assert_eq!(
            error,
            ProjectionError::View(ViewError::Conflict(order_id()))
        );
        assert!(error.is_retryable());
        assert_eq!(
            view(&racing.inner).await.version_of(&order_stream()),
            1,
            "the losing write never landed"
        );
    }

    #[tokio::test]
    async fn a_poison_event_is_not_retryable_and_writes_nothing() {
        let store = InMemoryEventStore::new();
        let views = InMemoryOrderViews::new();
        let mut poison = append(&store, &order_stream(), 0, &[placed()])
            .await
            .remove(0);
        poison.event_type = "OrderTeleported".into();
        let error = project(&store, &views, &poison).await.unwrap_err();
        assert_eq!(
            error,
            ProjectionError::Poison(DecodeError::UnknownEventType("OrderTeleported".into()))
        );
        assert!(!error.is_retryable());

        let mut malformed = append(&store, &delivery_stream(), 1, &[scheduled()])
            .await
            .remove(0);
        malformed.data["promised_by"] = "tomorrow-ish".into();
        let error = project(&store, &views, &malformed).await.unwrap_err();
        assert!(matches!(
            error,
            ProjectionError::Poison(DecodeError::Malformed { .. })
        ));
        assert!(!error.is_retryable());
        assert_eq!(views.writes(), 0);
        assert!(views.all().is_empty());
    }

    #[tokio::test]
    async fn an_unreadable_event_met_while_healing_is_a_corrupt_store_not_a_retry() {
        let store = InMemoryEventStore::new();
        let views = InMemoryOrderViews::new();
        let mut broken = StoredEvent::stamp(&delivery_stream(), 0, &[scheduled()], &context(1));
        broken[0].data["promised_by"] = "soon".into();
        store.insert_raw(broken[0].clone());
        let order = append(&store, &order_stream(), 0, &[placed()]).await;
        project(&store, &views, &order[0]).await.unwrap();
        let later = StoredEvent::stamp(&delivery_stream(), 1, &[dispatched()], &context(2));
        store.insert_raw(later[0].clone());

        let error = project(&store, &views, &later[0]).await.unwrap_err();
        assert!(
            matches!(
                error,
                ProjectionError::Store(StoreError::Corrupt { version: 1, .. })
            ),
            "{error:?}"
        );
        assert!(!error.is_retryable());
    }

    #[tokio::test]
    async fn unavailable_views_and_store_are_retryable() {
        let store = InMemoryEventStore::new();
        let views = InMemoryOrderViews::new();
        let order = append(&store, &order_stream(), 0, &[placed()]).await;
        views.fail_next(1);
        let error = project(&store, &views, &order[0]).await.unwrap_err();
        assert!(matches!(
            error,
            ProjectionError::View(ViewError::Unavailable(_))
        ));
        assert!(error.is_retryable());
        assert!(ProjectionError::Store(StoreError::Unavailable("down".into())).is_retryable());
        assert!(!ProjectionError::View(ViewError::InvalidCursor).is_retryable());
        assert!(!ProjectionError::View(ViewError::TooLarge(order_id())).is_retryable());
        // The retry succeeds.
        assert_eq!(
            project(&store, &views, &order[0]).await,
            Ok(Projected::Applied)
        );
    }
}

mod repository {
    use chrono::{TimeZone, Utc};
    use domain::envelope::EventContext;
    use domain::ids::StreamId;
    use domain::ports::StoreError;
    use domain::repository::*;

    use domain::envelope::{Actor, CorrelationId};
    use domain::ids::{CustomerId, OrderId, Sku};
    use domain::money::Currency;
    use domain::order::{LineItem, Order, OrderCommand, PlaceOrder};
    use testkit::memory::InMemoryEventStore;

    fn place_order(customer: &str) -> PlaceOrder {
        PlaceOrder {
            order_id: OrderId::parse("o-new").unwrap(),
            customer_id: CustomerId::parse(customer).unwrap(),
            items: vec![LineItem {
                sku: Sku::parse("TEA").unwrap(),
                quantity: 1.try_into().unwrap(),
                unit_price: 1_250.try_into().unwrap(),
            }],
            currency: Currency::EUR,
            delivery_address: domain::address::sample(),
        }
    }

    fn customer_context(customer: &str) -> EventContext {
        EventContext {
            correlation_id: CorrelationId::parse("req-1").unwrap(),
            causation_id: "req-1".into(),
            actor: Actor::customer(&CustomerId::parse(customer).unwrap()),
            occurred_at: Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
        }
    }

    #[tokio::test]
    async fn a_new_stream_is_appended_at_version_one_without_a_read() {
        let store = InMemoryEventStore::new();
        let place = place_order("cust-1");
        let stream = StreamId::order(&place.order_id);
        let context = customer_context("cust-1");
        let stored = execute_new::<Order>(
            &store,
            &stream,
            &OrderCommand::Place(place),
            &context,
            None,
            3,
        )
        .await
        .unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].version, 1);
        assert_eq!(store.all_events(), stored);
    }

    #[tokio::test]
    async fn a_new_stream_that_exists_after_all_is_loaded_and_decided_again() {
        let store = InMemoryEventStore::new();
        let place = place_order("cust-1");
        let stream = StreamId::order(&place.order_id);
        let context = customer_context("cust-1");
        let command = OrderCommand::Place(place);
        execute::<Order>(&store, &stream, &command, &context, None, 3)
            .await
            .unwrap();
        // Placing the same order again: the append at version 0 conflicts, the fallback loads
        // the stream and the aggregate decides (a repeated place changes nothing or is refused).
        let again = execute_new::<Order>(&store, &stream, &command, &context, None, 3).await;
        assert!(
            !matches!(again, Err(CommandError::Store(StoreError::Conflict { .. }))),
            "the conflict is not leaked: {again:?}"
        );
        assert_eq!(store.all_events().len(), 1, "nothing stored twice");
    }
}
