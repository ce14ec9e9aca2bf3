//! The saga's scenarios, written once and run two ways: in process (`tests/emulator/saga.rs`: the
//! registry's functions invoked in the test's process by the local bridge's own pollers, the
//! customers and couriers acting through the aggregates) and end to end (`tests/e2e`: every
//! command over HTTP through the bridge's API Gateway to the functions' processes). A [`Driver`]
//! is what differs: how a command goes in, how the system is let move, how long a step may take.
//! What each scenario asserts is the same for both; the end-to-end tests add what only HTTP and
//! real processes show (the API's other routes, the functions' logs).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::envelope::StoredEvent;

use crate::unique_name;

/// A courier's action on a delivery.
#[derive(Debug, Clone)]
pub enum Courier {
    /// Picks the parcel up.
    Dispatch,
    /// Hands it over.
    Complete,
    /// Gives up, saying why.
    Fail(&'static str),
    /// Promises a later arrival, saying why.
    Delay {
        /// The new ETA.
        new_eta: DateTime<Utc>,
        /// Why.
        reason: &'static str,
    },
}

/// A command the system refused (the domain's answer; a 409 over HTTP).
#[derive(Debug, Clone)]
pub struct Refused(pub String);

/// What the order's view shows, as both drivers can read it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ViewSummary {
    /// The order's status (`placed`, `shipped`, `completed`, `cancelled`).
    pub order: String,
    /// The delivery's status, `-` before it is scheduled.
    pub delivery: String,
    /// The delivery's ETA.
    pub eta: Option<DateTime<Utc>>,
    /// How often the delivery was delayed.
    pub delays: u64,
    /// How many coupons the order shows.
    pub coupons: usize,
}

/// How a scenario reaches the system.
#[async_trait]
pub trait Driver: Send {
    /// Lets the system move a step: in process, one round of the event source mappings; end to
    /// end, a short wait while the bridge's pollers work.
    async fn advance(&mut self);
    /// Until everything in flight is handled: no message left in a handler's queue.
    async fn settle(&mut self);
    /// How long one step's effects may take to show.
    fn patience(&self) -> Duration;
    /// Places an order of two lines for `customer` under `correlation_id`; its id.
    async fn place_order(&mut self, customer: &str, correlation_id: &str) -> String;
    /// A courier acts on the order's delivery.
    async fn courier(&mut self, order_id: &str, action: &Courier) -> Result<(), Refused>;
    /// The customer cancels the order.
    async fn cancel(&mut self, customer: &str, order_id: &str) -> Result<(), Refused>;
    /// The events of stream `kind#id`.
    async fn events(&self, kind: &str, id: &str) -> Vec<StoredEvent>;
    /// The order's view, when there is one.
    async fn view(&self, order_id: &str) -> Option<ViewSummary>;
    /// The types of the notifications `customer` got, once `expected` have come (and nothing more
    /// for a moment), sorted: SNS does not order them.
    async fn notifications(&mut self, customer: &str, expected: usize) -> Vec<String>;
    /// Publishes a stored event on the bus again (the publisher's at-least-once delivery).
    async fn publish_again(&mut self, event: &StoredEvent);
    /// Sends `body` to the queue with this logical id in template.yaml.
    async fn send(&mut self, queue: &str, body: &str);
    /// The bodies waiting in the queue with this logical id, left there.
    async fn peek(&self, queue: &str) -> Vec<String>;
}

/// What a scenario placed, for the checks a driver adds.
#[derive(Debug, Clone)]
pub struct Placed {
    /// The customer.
    pub customer: String,
    /// The order.
    pub order_id: String,
    /// The correlation id its request carried.
    pub correlation_id: String,
}

async fn event_types(driver: &impl Driver, kind: &str, id: &str) -> Vec<String> {
    driver
        .events(kind, id)
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}

/// Lets the system move until stream `kind#id` holds exactly `expected`.
pub async fn wait_for_events(driver: &mut impl Driver, kind: &str, id: &str, expected: &[&str]) {
    let started = Instant::now();
    loop {
        let types = event_types(driver, kind, id).await;
        if types == expected {
            return;
        }
        assert!(
            started.elapsed() < driver.patience(),
            "stream {kind}#{id} holds {types:?}, not {expected:?}, after {:?}",
            driver.patience()
        );
        driver.advance().await;
    }
}

/// Lets the system move until the order's view shows `what` (`done`); the view.
pub async fn wait_for_view(
    driver: &mut impl Driver,
    order_id: &str,
    what: &str,
    done: impl Fn(&ViewSummary) -> bool + Send,
) -> ViewSummary {
    let started = Instant::now();
    loop {
        let view = driver.view(order_id).await;
        if let Some(view) = view.as_ref().filter(|v| done(v)) {
            return view.clone();
        }
        assert!(
            started.elapsed() < driver.patience(),
            "order {order_id}: {what} did not show within {:?}; the view: {view:?}",
            driver.patience()
        );
        driver.advance().await;
    }
}

fn statuses(order: &'static str, delivery: &'static str) -> impl Fn(&ViewSummary) -> bool + Send {
    move |v| v.order == order && v.delivery == delivery
}

/// A new customer's order, its delivery scheduled.
pub async fn a_scheduled_order(driver: &mut impl Driver, test: &str) -> Placed {
    let customer = unique_name(&format!("cust-{test}"));
    let correlation_id = unique_name(&format!("corr-{test}"));
    let order_id = driver.place_order(&customer, &correlation_id).await;
    wait_for_events(
        driver,
        "delivery",
        &format!("d-{order_id}"),
        &["DeliveryScheduled"],
    )
    .await;
    wait_for_view(
        driver,
        &order_id,
        "the delivery scheduled",
        statuses("placed", "scheduled"),
    )
    .await;
    Placed {
        customer,
        order_id,
        correlation_id,
    }
}

async fn act(driver: &mut impl Driver, order_id: &str, action: Courier) {
    if let Err(Refused(why)) = driver.courier(order_id, &action).await {
        panic!("the courier's {action:?} on order {order_id} was refused: {why}");
    }
}

/// Placed, scheduled, dispatched, completed: the order and the delivery agree at each step, the
/// delivery context carries the order's correlation, the customer hears of each stage.
pub async fn happy_path(driver: &mut impl Driver) -> Placed {
    let placed = a_scheduled_order(driver, "happy").await;
    let order_id = placed.order_id.as_str();
    act(driver, order_id, Courier::Dispatch).await;
    wait_for_view(
        driver,
        order_id,
        "the order shipped",
        statuses("shipped", "dispatched"),
    )
    .await;
    act(driver, order_id, Courier::Complete).await;
    wait_for_view(
        driver,
        order_id,
        "the order completed",
        statuses("completed", "completed"),
    )
    .await;

    assert_eq!(
        event_types(driver, "order", order_id).await,
        ["OrderPlaced", "OrderShipped", "OrderCompleted"]
    );
    let delivery = driver.events("delivery", &format!("d-{order_id}")).await;
    let types: Vec<&str> = delivery.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "DeliveryScheduled",
            "DeliveryDispatched",
            "DeliveryCompleted"
        ]
    );
    // The correlation id the customer's request carried reaches the delivery context, caused by
    // the order's placement: one order can be traced across the API, the publisher, the bus and
    // the delivery function.
    assert_eq!(delivery[0].correlation_id.as_str(), placed.correlation_id);
    let order_placed = &driver.events("order", order_id).await[0];
    assert_eq!(delivery[0].causation_id, order_placed.event_id);
    assert_eq!(
        driver.notifications(&placed.customer, 3).await,
        ["DeliveryCompleted", "DeliveryScheduled", "OrderPlaced"]
    );
    placed
}

/// A delay, and its `DeliveryDelayed` delivered twice more to its consumers: one coupon, one
/// notification.
pub async fn a_delay_delivered_three_times(driver: &mut impl Driver) -> Placed {
    let placed = a_scheduled_order(driver, "delay").await;
    let order_id = placed.order_id.as_str();
    act(driver, order_id, Courier::Dispatch).await;
    let view = wait_for_view(
        driver,
        order_id,
        "the order shipped",
        statuses("shipped", "dispatched"),
    )
    .await;
    let eta = view
        .eta
        .unwrap_or_else(|| panic!("the view has no ETA: {view:?}"));
    let delay = Courier::Delay {
        new_eta: eta + chrono::Duration::hours(24),
        reason: "van broke down",
    };
    act(driver, order_id, delay).await;
    wait_for_view(driver, order_id, "the delay and its coupon", |v| {
        v.delays == 1 && v.coupons == 1
    })
    .await;

    let delivery = driver.events("delivery", &format!("d-{order_id}")).await;
    let delayed = delivery
        .iter()
        .find(|e| e.event_type == "DeliveryDelayed")
        .unwrap_or_else(|| panic!("no DeliveryDelayed stored: {delivery:?}"))
        .clone();
    for _ in 0..2 {
        driver.publish_again(&delayed).await;
    }
    driver.settle().await;

    let view = driver.view(order_id).await;
    assert_eq!(
        view.as_ref().map(|v| v.coupons),
        Some(1),
        "one coupon for one delay: {view:?}"
    );
    let coupon = domain::ids::CouponId::for_delay(
        &domain::ids::DeliveryId::parse(format!("d-{order_id}")).expect("a delivery id"),
        1,
    );
    assert_eq!(
        event_types(driver, "coupon", coupon.as_str()).await,
        ["CouponIssued"],
        "the coupon is issued once"
    );
    assert_eq!(
        driver.notifications(&placed.customer, 3).await,
        ["DeliveryDelayed", "DeliveryScheduled", "OrderPlaced"],
        "one notification for one delay"
    );
    placed
}

/// A failed delivery cancels the order, and the customer hears of it.
pub async fn a_failed_delivery(driver: &mut impl Driver) -> Placed {
    let placed = a_scheduled_order(driver, "fail").await;
    let order_id = placed.order_id.as_str();
    act(driver, order_id, Courier::Dispatch).await;
    wait_for_view(
        driver,
        order_id,
        "the order shipped",
        statuses("shipped", "dispatched"),
    )
    .await;
    act(driver, order_id, Courier::Fail("address not found")).await;
    wait_for_view(
        driver,
        order_id,
        "the order cancelled",
        statuses("cancelled", "failed"),
    )
    .await;
    let events = driver.events("order", order_id).await;
    let last = events.last().unwrap_or_else(|| panic!("no order events"));
    assert_eq!(last.event_type, "OrderCancelled");
    assert_eq!(last.data["reason"]["kind"], "delivery_failed");
    let notified = driver.notifications(&placed.customer, 3).await;
    assert!(
        notified.contains(&"OrderCancelled".to_owned()),
        "{notified:?}"
    );
    placed
}

/// A cancellation before dispatch cancels the delivery, which can then not be dispatched.
pub async fn a_cancel_before_dispatch(driver: &mut impl Driver) -> Placed {
    let placed = a_scheduled_order(driver, "cancel").await;
    let order_id = placed.order_id.as_str();
    if let Err(Refused(why)) = driver.cancel(&placed.customer, order_id).await {
        panic!("cancelling order {order_id}: {why}");
    }
    wait_for_events(
        driver,
        "delivery",
        &format!("d-{order_id}"),
        &["DeliveryScheduled", "DeliveryCancelled"],
    )
    .await;
    wait_for_view(
        driver,
        order_id,
        "the delivery cancelled",
        statuses("cancelled", "cancelled"),
    )
    .await;
    assert!(
        driver.courier(order_id, &Courier::Dispatch).await.is_err(),
        "a cancelled delivery cannot be dispatched"
    );
    placed
}

/// The customer cancels and the courier dispatches before the cancellation has reached the
/// delivery: both commands succeed on their own aggregates; the delivery refuses the
/// cancellation out loud, the customer hears of it, the order stays cancelled, and the recalled
/// parcel can only fail.
pub async fn a_cancel_racing_the_dispatch(driver: &mut impl Driver) -> Placed {
    // End to end the reactions run on their own: should the cancellation still reach the delivery
    // first (the dispatch refused), the race did not happen and a new order tries again.
    let mut race = None;
    for attempt in 1..=3 {
        let placed = a_scheduled_order(driver, "race").await;
        if let Err(Refused(why)) = driver.cancel(&placed.customer, &placed.order_id).await {
            panic!("cancelling order {}: {why}", placed.order_id);
        }
        match driver.courier(&placed.order_id, &Courier::Dispatch).await {
            Ok(()) => {
                race = Some(placed);
                break;
            }
            Err(Refused(why)) => {
                eprintln!(
                    "attempt {attempt}: the cancellation reached the delivery first ({why}); again"
                );
            }
        }
    }
    let placed = race.expect("in three attempts the dispatch never landed before the cancellation");
    let order_id = placed.order_id.as_str();
    wait_for_events(
        driver,
        "delivery",
        &format!("d-{order_id}"),
        &[
            "DeliveryScheduled",
            "DeliveryDispatched",
            "DeliveryCancellationRefused",
        ],
    )
    .await;
    driver.settle().await;
    assert_eq!(
        event_types(driver, "order", order_id).await,
        ["OrderPlaced", "OrderCancelled"],
        "the late dispatch news does not ship a cancelled order"
    );
    let notified = driver.notifications(&placed.customer, 4).await;
    assert!(
        notified.contains(&"DeliveryCancellationRefused".to_owned()),
        "{notified:?}"
    );
    assert!(
        driver.courier(order_id, &Courier::Complete).await.is_err(),
        "a recalled parcel cannot be delivered"
    );
    act(
        driver,
        order_id,
        Courier::Fail("returned: the order was cancelled"),
    )
    .await;
    wait_for_view(
        driver,
        order_id,
        "the recalled delivery failed",
        statuses("cancelled", "failed"),
    )
    .await;
    placed
}

/// A message no handler can read ends in its handler's dead-letter queue (after the template's
/// maxReceiveCount receives), while an order placed meanwhile goes through.
pub async fn a_poison_message(driver: &mut impl Driver) -> Placed {
    let marker = unique_name("poison");
    let poison = format!(r#"{{"detail-type": "OrderPlaced", "detail": 42, "marker": "{marker}"}}"#);
    driver.send("DeliveryOnOrderPlacedQueue", &poison).await;
    let placed = a_scheduled_order(driver, "poison").await;
    let started = Instant::now();
    loop {
        let dead = driver.peek("DeliveryOnOrderPlacedDeadLetterQueue").await;
        if dead.iter().any(|body| body.contains(&marker)) {
            break;
        }
        assert!(
            started.elapsed() < driver.patience(),
            "the poison message did not reach the DLQ within {:?}; it holds {dead:?}",
            driver.patience()
        );
        driver.advance().await;
    }
    assert_eq!(
        event_types(driver, "delivery", &format!("d-{}", placed.order_id)).await,
        ["DeliveryScheduled"]
    );
    assert!(
        driver
            .peek("DeliveryOnOrderCancelledDeadLetterQueue")
            .await
            .is_empty(),
        "nothing else is dead-lettered"
    );
    placed
}
