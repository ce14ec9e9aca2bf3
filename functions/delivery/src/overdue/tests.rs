//! The overdue check with in-memory adapters: the board read from projected views.

use adapters::clock::FixedClock;
use chrono::{TimeZone, Utc};
use domain::address::{Address, UncheckedAddress};
use domain::delivery::{Delivery, DeliveryCommand};
use domain::envelope::StoredEvent;
use domain::ids::{CustomerId, OrderId};
use domain::projection::project_order_view;
use testkit::memory::{InMemoryEventStore, InMemoryOrderViews};

use super::*;

fn address() -> Address {
    Address::parse(UncheckedAddress {
        recipient: "R".into(),
        line1: "1 Street".into(),
        line2: None,
        city: "City".into(),
        postal_code: "10115".into(),
        country: "DE".into(),
    })
    .unwrap()
}

/// Schedules the delivery of order `id`, promised `hours` after 2026-11-28 00:00.
async fn schedule(store: &InMemoryEventStore, id: &str, hours: i64) -> Vec<StoredEvent> {
    let placed_at = Utc.with_ymd_and_hms(2026, 11, 28, 0, 0, 0).unwrap();
    let command = DeliveryCommand::Schedule {
        order_id: OrderId::parse(id).unwrap(),
        customer_id: CustomerId::parse("cust-1").unwrap(),
        delivery_address: address(),
        placed_at,
        sla: Duration::hours(hours),
    };
    let context = EventContext {
        correlation_id: CorrelationId::parse("req").unwrap(),
        causation_id: "req".into(),
        actor: Actor::system("test"),
        occurred_at: placed_at,
    };
    let stream = StreamId::new(
        "delivery",
        domain::ids::DeliveryId::for_order(&OrderId::parse(id).unwrap()),
    );
    repository::execute::<Delivery>(store, &stream, &command, &context, None, 1)
        .await
        .unwrap()
}

async fn project(store: &InMemoryEventStore, views: &InMemoryOrderViews) {
    for event in store.all_events() {
        project_order_view(store, views, &event, 3).await.unwrap();
    }
}

#[tokio::test]
async fn deliveries_past_their_eta_are_marked_delayed_once_per_delay() {
    let store = InMemoryEventStore::new();
    let views = InMemoryOrderViews::default();
    schedule(&store, "late", 10).await;
    schedule(&store, "on-time", 100).await;
    project(&store, &views).await;
    let clock = FixedClock::at(Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap());

    let first = check_overdue(&views, &store, &clock, Duration::hours(24))
        .await
        .unwrap();
    assert_eq!(
        (first.overdue, first.marked, first.unchanged, first.failed),
        (1, 1, 0, 0)
    );
    let late = store
        .load(&StreamId::new("delivery", "d-late"))
        .await
        .unwrap();
    assert_eq!(late.last().unwrap().event_type, "DeliveryDelayed");
    assert_eq!(late.last().unwrap().data["new_eta"], "2026-11-29T12:00:00Z");
    assert_eq!(
        late.last().unwrap().actor.as_str(),
        "system/delivery-overdue-check"
    );

    // The board has not caught up yet: the next run finds the same delivery, the aggregate
    // decides nothing.
    let again = check_overdue(&views, &store, &clock, Duration::hours(24))
        .await
        .unwrap();
    assert_eq!((again.marked, again.unchanged), (0, 1));
    // Caught up: the new ETA is in the future, nothing is overdue.
    project(&store, &views).await;
    let caught_up = check_overdue(&views, &store, &clock, Duration::hours(24))
        .await
        .unwrap();
    assert_eq!(caught_up.overdue, 0);
    assert_eq!(
        store
            .load(&StreamId::new("delivery", "d-on-time"))
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn an_unreadable_board_fails_the_run_and_a_store_outage_is_counted() {
    let store = InMemoryEventStore::new();
    let views = InMemoryOrderViews::default();
    schedule(&store, "late", 1).await;
    project(&store, &views).await;
    let clock = FixedClock::at(Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap());
    views.fail_next(1);
    assert!(
        check_overdue(&views, &store, &clock, Duration::hours(24))
            .await
            .is_err()
    );
    store.fail_next_appends(1);
    let run = check_overdue(&views, &store, &clock, Duration::hours(24))
        .await
        .unwrap();
    assert_eq!((run.overdue, run.failed), (1, 1));
    let retry = check_overdue(&views, &store, &clock, Duration::hours(24))
        .await
        .unwrap();
    assert_eq!(retry.marked, 1);
}
