//! Reading, listing and cancelling orders on real API Gateway v2 events, with in-memory adapters.

use async_trait::async_trait;
use chrono::Duration;
use domain::envelope::StoredEvent;
use domain::ids::{DeliveryId, StreamId};
use domain::order::{OrderEvent, OrderShipped};
use domain::ports::{AppendRequest, EventStore, StoreError};
use domain::projection::project_order_view;
use domain::read_model::OrderViews;
use serde_json::{Value, json};

use super::*;
use crate::testing::{
    Harness, as_courier, as_customer, as_support, harness, order_body, post_orders, request, send,
    without_caller,
};
use domain::envelope::Actor;

/// Places the fixture order (for `customer`) and returns its id.
async fn place(h: &Harness, customer: &str) -> String {
    let answer = send(
        &h.app,
        as_customer(post_orders(&order_body(), &[]), customer),
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer.body["order_id"].as_str().unwrap().to_owned()
}

/// Runs every stored event through the projector into the in-memory read model.
async fn project_all(h: &Harness) {
    for event in h.store.all_events() {
        project_order_view(&h.store, &h.views, &event, 3)
            .await
            .unwrap();
    }
}

fn get(path: &str) -> lambda_http::Request {
    request("GET", path, None, &[])
}

fn cancel(id: &str) -> lambda_http::Request {
    request("POST", &format!("/orders/{id}/cancel"), None, &[])
}

async fn ship(h: &Harness, id: &str) {
    let stream = StreamId::new("order", id);
    let loaded = h.store.load(&stream).await.unwrap();
    let placed = &loaded[0];
    let event = OrderEvent::OrderShipped(OrderShipped {
        order_id: OrderId::parse(id).unwrap(),
        customer_id: CustomerId::parse(placed.data["customer_id"].as_str().unwrap()).unwrap(),
        delivery_id: DeliveryId::for_order(&OrderId::parse(id).unwrap()),
    });
    let context = EventContext::caused_by(placed, Actor::system("test"), placed.occurred_at);
    h.store
        .append(AppendRequest {
            stream_id: stream.clone(),
            expected_version: loaded.len() as u64,
            events: StoredEvent::stamp(&stream, loaded.len() as u64, &[event], &context),
            idempotency: None,
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_new_order_reads_back_before_the_projector_has_run() {
    let h = harness();
    let id = place(&h, "cust-42").await;
    let answer = send(&h.app, get(&format!("/orders/{id}"))).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["order_id"], id.as_str());
    assert_eq!(answer.body["status"], "placed");
    assert_eq!(answer.body["total"], 4497);
    assert_eq!(answer.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(answer.body["timeline"][0]["event_type"], "OrderPlaced");
    assert!(
        answer.body.get("versions").is_none(),
        "bookkeeping stays inside"
    );
}

#[tokio::test]
async fn the_order_view_comes_from_the_read_model() {
    let h = harness();
    let id = place(&h, "cust-42").await;
    project_all(&h).await;
    let mut view = h
        .views
        .get(&OrderId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    // Mark the stored row so the answer shows where it came from.
    view.cancellation_reason = Some("from the read model".into());
    let previous = h.views.get(&view.order_id).await.unwrap();
    h.views.save(&view, previous.as_ref()).await.unwrap();
    let answer = send(&h.app, get(&format!("/orders/{id}"))).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["cancellation_reason"], "from the read model");
}

#[tokio::test]
async fn an_unknown_or_malformed_order_id_is_404_or_400() {
    let h = harness();
    let answer = send(&h.app, get("/orders/018f1c2e-7b3a-7000-8000-000000000001")).await;
    assert_eq!(answer.status, 404, "{}", answer.body);
    assert_eq!(answer.headers["content-type"], "application/problem+json");
    send(&h.app, get("/orders/not%20an%20id"))
        .await
        .assert_problem(400, "id");
    send(&h.app, get(&format!("/orders/{}", "x".repeat(200))))
        .await
        .assert_problem(400, "id");
    assert_eq!(send(&h.app, get("/orders/nope/events")).await.status, 404);
    assert_eq!(send(&h.app, cancel("nope")).await.status, 404);
}

#[tokio::test]
async fn the_history_is_upcast_for_audit() {
    let h = harness();
    let v1: StoredEvent = serde_json::from_str(include_str!(
        "../../../../schemas/samples/OrderPlaced-v1.json"
    ))
    .unwrap();
    h.store.insert_raw(v1.clone());
    let answer = send(
        &h.app,
        as_support(
            get(&format!(
                "/orders/{}/events",
                v1.data["order_id"].as_str().unwrap()
            )),
            "s-1",
        ),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let events = answer.body["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["schema_version"], 2);
    assert_eq!(events[0]["data"]["currency"], "EUR");
    assert_eq!(events[0]["data"]["total"], 4497);
    assert_eq!(events[0]["event_id"], v1.event_id);
}

#[tokio::test]
async fn a_placed_order_is_cancelled_once() {
    let h = harness();
    let id = place(&h, "cust-42").await;
    h.clock.advance(Duration::minutes(5));
    let answer = send(&h.app, cancel(&id)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["status"], "cancelled");
    let events = h.store.all_events();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].event_type, "OrderCancelled");
    assert_eq!(events[1].actor.as_str(), "customer/cust-42");
    assert_eq!(
        events[1].correlation_id.as_str(),
        answer.headers["x-correlation-id"].to_str().unwrap(),
        "the cancel request's own correlation id"
    );
    assert_eq!(events[1].data["reason"]["kind"], "customer_request");

    let again = send(&h.app, cancel(&id)).await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.body["detail"].as_str().unwrap().contains("cancelled"));
    assert_eq!(h.store.all_events().len(), 2);
    let view = send(&h.app, get(&format!("/orders/{id}"))).await;
    assert_eq!(view.body["status"], "cancelled");
}

#[tokio::test]
async fn a_shipped_order_cannot_be_cancelled() {
    let h = harness();
    let id = place(&h, "cust-42").await;
    ship(&h, &id).await;
    let answer = send(&h.app, cancel(&id)).await;
    assert_eq!(answer.status, 409, "{}", answer.body);
    assert_eq!(
        answer.body["type"],
        "urn:orderflow:problem:invalid-transition"
    );
    assert!(answer.body["detail"].as_str().unwrap().contains("shipped"));
    assert_eq!(h.store.all_events().len(), 2);
}

/// A store whose appends always lose the race (another writer keeps moving the stream on).
struct AlwaysRacing {
    inner: testkit::memory::InMemoryEventStore,
    appends: std::sync::atomic::AtomicU32,
}

#[async_trait]
impl EventStore for AlwaysRacing {
    async fn append(&self, request: AppendRequest) -> Result<(), StoreError> {
        self.appends
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Err(StoreError::Conflict {
            stream_id: request.stream_id,
            expected_version: request.expected_version,
        })
    }
    async fn load(&self, stream_id: &StreamId) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.load(stream_id).await
    }
}

#[tokio::test]
async fn a_cancel_that_keeps_losing_races_ends_in_409_after_bounded_retries() {
    let h = harness();
    let id = place(&h, "cust-42").await;
    let racing = std::sync::Arc::new(AlwaysRacing {
        inner: h.store.clone(),
        appends: Default::default(),
    });
    let mut app = h.app.clone();
    app.store = racing.clone();
    let answer = send(&app, cancel(&id)).await;
    assert_eq!(answer.status, 409, "{}", answer.body);
    assert_eq!(
        answer.body["type"],
        "urn:orderflow:problem:concurrent-modification"
    );
    assert_eq!(
        racing.appends.load(std::sync::atomic::Ordering::SeqCst),
        app.settings.max_attempts,
        "each attempt reloads and decides again, and the attempts end"
    );
}

#[tokio::test]
async fn a_store_outage_while_cancelling_is_a_503() {
    let h = harness();
    let id = place(&h, "cust-42").await;
    h.store.fail_next_appends(1);
    let answer = send(&h.app, cancel(&id)).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.headers["retry-after"], "1");
}

#[tokio::test]
async fn a_customers_orders_are_listed_newest_first_page_by_page() {
    let h = harness();
    let mut placed = Vec::new();
    for _ in 0..3 {
        placed.push(place(&h, "cust-7").await);
        h.clock.advance(Duration::minutes(1));
    }
    place(&h, "someone-else").await;
    project_all(&h).await;

    let first = send(
        &h.app,
        as_customer(get("/customers/me/orders?limit=2"), "cust-7"),
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let ids: Vec<&str> = first.body["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [placed[2].as_str(), placed[1].as_str()]);
    assert_eq!(first.body["orders"][0]["status"], "placed");
    assert_eq!(first.body["orders"][0]["total"], 4497);
    let cursor = first.body["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();

    let second = send(
        &h.app,
        as_customer(
            get(&format!("/customers/cust-7/orders?limit=2&cursor={cursor}")),
            "cust-7",
        ),
    )
    .await;
    assert_eq!(second.status, 200, "{}", second.body);
    let ids: Vec<&str> = second.body["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [placed[0].as_str()]);
    assert_eq!(second.body["next_cursor"], Value::Null);

    let none = send(&h.app, as_support(get("/customers/nobody/orders"), "s-1")).await;
    assert_eq!(none.status, 200);
    assert_eq!(none.body["orders"], json!([]));
}

#[tokio::test]
async fn list_parameters_are_checked() {
    let h = harness();
    for limit in ["0", "101", "abc", "-1", "2.5"] {
        send(&h.app, get(&format!("/customers/me/orders?limit={limit}")))
            .await
            .assert_problem(400, "limit");
    }
    send(&h.app, get("/customers/me/orders?cursor=garbage"))
        .await
        .assert_problem(400, "cursor");
    send(&h.app, as_support(get("/customers/bad%20id/orders"), "s-1"))
        .await
        .assert_problem(400, "id");
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems_not_500s() {
    let h = harness();
    let answer = send(&h.app, get("/nothing/here")).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.headers["content-type"], "application/problem+json");
    let answer = send(&h.app, request("DELETE", "/orders/o-1", None, &[])).await;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.headers["allow"], "GET");
}

#[tokio::test]
async fn a_customer_reads_and_cancels_only_their_own_orders_and_others_are_not_disclosed() {
    let h = harness();
    let id = place(&h, "cust-42").await;
    let theirs = |request| as_customer(request, "cust-99");
    for request in [
        get(&format!("/orders/{id}")),
        get(&format!("/orders/{id}/events")),
        cancel(&id),
    ] {
        let answer = send(&h.app, theirs(request)).await;
        assert_eq!(answer.status, 404, "{}", answer.body);
        assert_eq!(answer.body["type"], "urn:orderflow:problem:not-found");
    }
    // A courier is nobody's customer either.
    let answer = send(
        &h.app,
        as_courier(get(&format!("/orders/{id}")), "courier-7"),
    )
    .await;
    assert_eq!(answer.status, 404);
    assert_eq!(h.store.all_events().len(), 1, "nothing was cancelled");

    let mine = send(&h.app, get(&format!("/orders/{id}"))).await;
    assert_eq!(mine.status, 200, "{}", mine.body);
}

#[tokio::test]
async fn the_customer_sees_their_history_without_the_address_and_support_sees_all_of_it() {
    let h = harness();
    let id = place(&h, "cust-42").await;
    let own = send(&h.app, get(&format!("/orders/{id}/events"))).await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(own.body["events"][0]["event_type"], "OrderPlaced");
    assert!(
        own.body["events"][0]["data"]
            .get("delivery_address")
            .is_none()
    );
    assert!(!own.body.to_string().contains("Sample Street"));

    let support = send(
        &h.app,
        as_support(get(&format!("/orders/{id}/events")), "s-1"),
    )
    .await;
    assert_eq!(support.status, 200, "{}", support.body);
    assert_eq!(
        support.body["events"][0]["data"]["delivery_address"]["line1"],
        "1 Sample Street"
    );
    let view = send(&h.app, as_support(get(&format!("/orders/{id}")), "s-1")).await;
    assert_eq!(view.status, 200);
    // Support reads; it does not cancel.
    let refused = send(&h.app, as_support(cancel(&id), "s-1")).await;
    refused.assert_status_problem(403);
}

#[tokio::test]
async fn a_customer_lists_only_their_own_orders_and_support_lists_anyones() {
    let h = harness();
    place(&h, "cust-42").await;
    project_all(&h).await;
    let other = send(&h.app, get("/customers/cust-99/orders")).await;
    assert_eq!(other.status, 403, "{}", other.body);
    let own_by_id = send(&h.app, get("/customers/cust-42/orders")).await;
    assert_eq!(own_by_id.status, 200, "{}", own_by_id.body);
    assert_eq!(own_by_id.body["orders"].as_array().unwrap().len(), 1);
    let me = send(&h.app, get("/customers/me/orders")).await;
    assert_eq!(me.body["customer_id"], "cust-42");
    let support = send(&h.app, as_support(get("/customers/cust-42/orders"), "s-1")).await;
    assert_eq!(support.body["orders"].as_array().unwrap().len(), 1);
    // `me` names a customer: support has no orders of its own.
    let support_me = send(&h.app, as_support(get("/customers/me/orders"), "s-1")).await;
    assert_eq!(support_me.status, 403);
}

#[tokio::test]
async fn a_request_without_the_authorizers_claims_is_401_on_every_route() {
    let h = harness();
    let id = place(&h, "cust-42").await;
    for request in [
        get(&format!("/orders/{id}")),
        get(&format!("/orders/{id}/events")),
        cancel(&id),
        get("/customers/me/orders"),
        post_orders(&order_body(), &[]),
    ] {
        let answer = send(&h.app, without_caller(request)).await;
        assert_eq!(answer.status, 401, "{}", answer.body);
        assert_eq!(answer.headers["www-authenticate"], "Bearer");
    }
    assert_eq!(h.store.all_events().len(), 1);
}

/// Appends `count` events to the placed order `id`'s delivery stream (scheduled, then refused
/// cancellations) and a coupon for each of its `delays`, a minute apart from the placement.
async fn long_history(h: &Harness, id: &str, count: u64, delays: u32) {
    use domain::coupon::{CouponEvent, CouponIssued};
    use domain::delivery::{
        DeliveryCancellationRefused, DeliveryEvent, DeliveryScheduled, DeliveryStatus,
    };
    use domain::ids::CouponId;

    let order_id = OrderId::parse(id).unwrap();
    let delivery_id = DeliveryId::for_order(&order_id);
    let placed = h.store.load(&StreamId::new("order", id)).await.unwrap()[0].clone();
    let customer_id = CustomerId::parse(placed.data["customer_id"].as_str().unwrap()).unwrap();
    let address = serde_json::from_value(placed.data["delivery_address"].clone()).unwrap();
    let at = |minute: u64| {
        EventContext::caused_by(
            &placed,
            Actor::system("test"),
            placed.occurred_at + Duration::minutes(minute as i64),
        )
    };
    let delivery = StreamId::delivery(&delivery_id);
    let mut events = StoredEvent::stamp(
        &delivery,
        0,
        &[DeliveryEvent::DeliveryScheduled(DeliveryScheduled {
            delivery_id: delivery_id.clone(),
            order_id: order_id.clone(),
            customer_id: customer_id.clone(),
            delivery_address: address,
            promised_by: placed.occurred_at + Duration::days(1),
        })],
        &at(1),
    );
    for version in 1..count {
        events.extend(StoredEvent::stamp(
            &delivery,
            version,
            &[DeliveryEvent::DeliveryCancellationRefused(
                DeliveryCancellationRefused {
                    delivery_id: delivery_id.clone(),
                    order_id: order_id.clone(),
                    customer_id: customer_id.clone(),
                    status: DeliveryStatus::Dispatched,
                },
            )],
            &at(version + 1),
        ));
    }
    for event in events {
        h.store.insert_raw(event);
    }
    for delay in 1..=delays {
        let coupon_id = CouponId::for_delay(&delivery_id, delay);
        let stream = StreamId::coupon(&coupon_id);
        let issued = CouponEvent::CouponIssued(CouponIssued {
            coupon_id,
            customer_id: customer_id.clone(),
            order_id: order_id.clone(),
            delivery_id: delivery_id.clone(),
            delay_number: delay,
            discount_percent: 10,
        });
        // Coupons fall between delivery events (and one at the very same minute as one).
        let minute = u64::from(delay) * 3 + 1;
        for event in StoredEvent::stamp(&stream, 0, &[issued], &at(minute)) {
            h.store.insert_raw(event);
        }
    }
}

/// Follows `next_cursor` from the first page of `id`'s history with `limit`, as `caller` sends
/// it; returns the event ids of every page in turn.
async fn every_page(
    app: &App,
    id: &str,
    limit: u32,
    caller: impl Fn(lambda_http::Request) -> lambda_http::Request,
) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => format!("/orders/{id}/events?limit={limit}"),
            Some(cursor) => format!("/orders/{id}/events?limit={limit}&cursor={cursor}"),
        };
        let answer = send(app, caller(get(&path))).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let events = answer.body["events"].as_array().unwrap();
        assert!(events.len() <= limit as usize);
        pages.push(
            events
                .iter()
                .map(|e| e["event_id"].as_str().unwrap().to_owned())
                .collect(),
        );
        match answer.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => {
                assert_eq!(answer.body["next_cursor"], Value::Null);
                return pages;
            }
        }
    }
}

/// Every stored event of the order `id`, in the order the whole history is shown.
async fn expected_history(h: &Harness, id: &str) -> Vec<String> {
    let order_id = OrderId::parse(id).unwrap();
    let mut all: Vec<StoredEvent> = h
        .store
        .all_events()
        .into_iter()
        .filter(|e| domain::read_model::order_id_of(e).is_ok_and(|of| of == order_id))
        .collect();
    all.sort_by(|a, b| {
        (a.occurred_at, a.stream_id.as_str(), a.version).cmp(&(
            b.occurred_at,
            b.stream_id.as_str(),
            b.version,
        ))
    });
    all.into_iter().map(|e| e.event_id).collect()
}

#[tokio::test]
async fn the_history_is_paged_in_history_order_and_every_event_shows_once() {
    let h = harness();
    let id = place(&h, "cust-42").await;
    place(&h, "cust-42").await;
    long_history(&h, &id, 60, 5).await;
    ship(&h, &id).await;
    let expected = expected_history(&h, &id).await;
    assert_eq!(expected.len(), 1 + 60 + 5 + 1);

    let pages = every_page(&h.app, &id, 7, |r| r).await;
    assert_eq!(pages.len(), expected.len().div_ceil(7));
    assert!(pages[..pages.len() - 1].iter().all(|p| p.len() == 7));
    assert_eq!(pages.concat(), expected, "the order of the whole history");

    let by_support = every_page(&h.app, &id, 100, |r| as_support(r, "s-1")).await;
    assert_eq!(
        by_support,
        std::slice::from_ref(&expected),
        "one page holds up to 100"
    );
    let by_default = send(&h.app, get(&format!("/orders/{id}/events"))).await;
    assert_eq!(
        by_default.body["events"].as_array().unwrap().len(),
        expected.len()
    );
    assert_eq!(by_default.body["next_cursor"], Value::Null);
}

#[tokio::test]
async fn every_page_of_a_customers_history_is_theirs_only_and_without_the_address() {
    let h = harness();
    let id = place(&h, "cust-42").await;
    long_history(&h, &id, 30, 2).await;
    let first = send(&h.app, get(&format!("/orders/{id}/events?limit=10"))).await;
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second_path = format!("/orders/{id}/events?limit=10&cursor={cursor}");

    let second = send(&h.app, get(&second_path)).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.body["events"].as_array().unwrap().len(), 10);
    let scheduled = send(&h.app, get(&format!("/orders/{id}/events?limit=2"))).await;
    assert_eq!(
        scheduled.body["events"][1]["event_type"],
        "DeliveryScheduled"
    );
    assert!(!scheduled.body.to_string().contains("Sample Street"));

    // A later page carries no OrderPlaced; whose order it is still decides.
    let theirs = send(&h.app, as_customer(get(&second_path), "cust-99")).await;
    assert_eq!(theirs.status, 404, "{}", theirs.body);
    let support = send(&h.app, as_support(get(&second_path), "s-1")).await;
    assert_eq!(support.body, second.body);
    let with_address = send(
        &h.app,
        as_support(get(&format!("/orders/{id}/events?limit=2")), "s-1"),
    )
    .await;
    assert!(with_address.body.to_string().contains("Sample Street"));
}

#[tokio::test]
async fn history_parameters_are_checked() {
    let h = harness();
    let id = place(&h, "cust-42").await;
    let other = place(&h, "cust-42").await;
    long_history(&h, &other, 5, 0).await;
    for limit in ["0", "101", "abc", "-1", "2.5", ""] {
        send(&h.app, get(&format!("/orders/{id}/events?limit={limit}")))
            .await
            .assert_problem(400, "limit");
    }
    let elsewhere = send(&h.app, get(&format!("/orders/{other}/events?limit=1"))).await;
    let foreign = elsewhere.body["next_cursor"].as_str().unwrap().to_owned();
    let too_long = "a".repeat(MAX_CURSOR_LEN + 2);
    for cursor in ["garbage", "7b7d", "", foreign.as_str(), too_long.as_str()] {
        send(&h.app, get(&format!("/orders/{id}/events?cursor={cursor}")))
            .await
            .assert_problem(400, "cursor");
    }
}

/// A store that counts the events its reads return, and refuses whole-stream loads.
struct CountingStore {
    inner: testkit::memory::InMemoryEventStore,
    read: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl EventStore for CountingStore {
    async fn append(&self, request: AppendRequest) -> Result<(), StoreError> {
        self.inner.append(request).await
    }
    async fn load(&self, stream_id: &StreamId) -> Result<Vec<StoredEvent>, StoreError> {
        panic!("{stream_id} loaded whole")
    }
    async fn load_from(
        &self,
        stream_id: &StreamId,
        after_version: u64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let events = self
            .inner
            .load_from(stream_id, after_version, limit)
            .await?;
        self.read
            .fetch_add(events.len(), std::sync::atomic::Ordering::SeqCst);
        Ok(events)
    }
}

#[tokio::test]
async fn a_page_of_a_ten_thousand_event_history_reads_about_a_page() {
    let h = harness();
    let id = place(&h, "cust-42").await;
    long_history(&h, &id, 10_000, 5).await;
    let counting = std::sync::Arc::new(CountingStore {
        inner: h.store.clone(),
        read: Default::default(),
    });
    let mut app = h.app.clone();
    app.store = counting.clone();
    let first = send(&app, get(&format!("/orders/{id}/events"))).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["events"].as_array().unwrap().len(), 100);
    let read = counting.read.swap(0, std::sync::atomic::Ordering::SeqCst);
    assert!(read <= 1 + 101 + 5, "{read} events read for a page of 100");

    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = send(&app, get(&format!("/orders/{id}/events?cursor={cursor}"))).await;
    assert_eq!(second.status, 200, "{}", second.body);
    // The first page: the placement, the five coupons and delivery events v1 to v94.
    let last = &first.body["events"][99];
    assert_eq!(
        (&last["stream_id"], &last["version"]),
        (&json!(format!("delivery#d-{id}")), &json!(94))
    );
    let next = &second.body["events"][0];
    assert_eq!(
        (&next["stream_id"], &next["version"]),
        (&last["stream_id"], &json!(95))
    );
    let read = counting.read.load(std::sync::atomic::Ordering::SeqCst);
    assert!(read <= 1 + 101, "{read} events read for the second page");
}
