//! In-memory adapters with the same semantics as the real ones (optimistic concurrency, the
//! idempotency record in the same all-or-nothing append, upcast on load, conditional view writes,
//! opaque cursors), for unit and handler tests. They can be told to fail, to test what a handler does when a dependency is down.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use domain::catalogue::CatalogueEntry;
use domain::envelope::StoredEvent;
use domain::ids::{CustomerId, OrderId, Sku, StreamId};
use domain::ports::{
    AppendRequest, Catalogue, Claim, DeadLetterError, DeadLetters, EffectMarkers, EventPublisher,
    EventStore, IdempotencyRecord, IdempotencyStore, Notification, Notifier, NotifyError,
    PoisonRecord, PublishError, StoreError,
};
use domain::read_model::{
    DeliveryBoard, OrderPage, OrderView, OrderViews, OverdueDelivery, ViewError,
};
use domain::storage_rules::{cursor, page_size, placed_key, validate_append};
use domain::upcasting::upcast;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Counts down injected failures.
#[derive(Debug, Default)]
struct Faults(Mutex<u32>);

impl Faults {
    fn set(&self, count: u32) {
        *lock(&self.0) = count;
    }
    fn take(&self) -> bool {
        let mut left = lock(&self.0);
        if *left > 0 {
            *left -= 1;
            true
        } else {
            false
        }
    }
}

/// Idempotency records and effect markers in maps.
#[derive(Debug, Clone, Default)]
pub struct InMemoryIdempotencyStore {
    records: Arc<Mutex<HashMap<String, IdempotencyRecord>>>,
    markers: Arc<Mutex<HashMap<String, Marker>>>,
}

/// An effect marker: claimed by `holder` until `lease_until_ms`, or completed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Marker {
    holder: String,
    lease_until_ms: i64,
    completed: bool,
    response: serde_json::Value,
    expires_at: i64,
}

/// An effect marker as a test sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkerState {
    /// Claimed, the effect not confirmed.
    InProgress,
    /// The effect was done: what was recorded, and when the marker expires (epoch seconds).
    Completed {
        /// The response recorded.
        response: serde_json::Value,
        /// When the marker may be forgotten.
        expires_at: i64,
    },
}

impl InMemoryIdempotencyStore {
    /// The effect marker under `key`, if any.
    pub fn marker(&self, key: &str) -> Option<MarkerState> {
        lock(&self.markers).get(key).map(|m| {
            if m.completed {
                MarkerState::Completed {
                    response: m.response.clone(),
                    expires_at: m.expires_at,
                }
            } else {
                MarkerState::InProgress
            }
        })
    }
}

#[async_trait]
impl EffectMarkers for InMemoryIdempotencyStore {
    async fn claim(
        &self,
        key: &str,
        holder: &str,
        now_ms: i64,
        lease_until_ms: i64,
        expires_at: i64,
    ) -> Result<Claim, StoreError> {
        if lock(&self.records).contains_key(key) {
            return Ok(Claim::Completed);
        }
        let mut markers = lock(&self.markers);
        match markers.get(key) {
            Some(marker) if marker.completed => Ok(Claim::Completed),
            Some(marker) if marker.lease_until_ms >= now_ms && marker.holder != holder => {
                Ok(Claim::InProgress)
            }
            _ => {
                markers.insert(
                    key.to_owned(),
                    Marker {
                        holder: holder.to_owned(),
                        lease_until_ms,
                        completed: false,
                        response: serde_json::Value::Null,
                        expires_at,
                    },
                );
                Ok(Claim::Claimed)
            }
        }
    }

    async fn complete(
        &self,
        key: &str,
        holder: &str,
        response: serde_json::Value,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let mut markers = lock(&self.markers);
        match markers.get_mut(key) {
            Some(marker) if marker.holder == holder => {
                marker.completed = true;
                marker.response = response;
                marker.expires_at = expires_at;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release(&self, key: &str, holder: &str) -> Result<(), StoreError> {
        let mut markers = lock(&self.markers);
        if markers
            .get(key)
            .is_some_and(|m| m.holder == holder && !m.completed)
        {
            markers.remove(key);
        }
        Ok(())
    }
}

#[async_trait]
impl IdempotencyStore for InMemoryIdempotencyStore {
    async fn get(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(lock(&self.records).get(key).cloned())
    }

    async fn put_if_absent(&self, record: IdempotencyRecord) -> Result<bool, StoreError> {
        let mut records = lock(&self.records);
        if records.contains_key(&record.key) {
            return Ok(false);
        }
        records.insert(record.key.clone(), record);
        Ok(true)
    }
}

#[derive(Debug, Default)]
struct Streams {
    by_stream: HashMap<StreamId, Vec<StoredEvent>>,
    /// Every event in append order: what a DynamoDB stream would show.
    log: Vec<StoredEvent>,
}

/// Event streams in a map. Clones share the same streams.
#[derive(Debug, Clone, Default)]
pub struct InMemoryEventStore {
    streams: Arc<Mutex<Streams>>,
    idempotency: InMemoryIdempotencyStore,
    append_faults: Arc<Faults>,
}

impl InMemoryEventStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The idempotency store its appends write to (shared, as the real tables are).
    pub fn idempotency(&self) -> InMemoryIdempotencyStore {
        self.idempotency.clone()
    }

    /// Makes the next `count` appends fail as if the database were unreachable.
    pub fn fail_next_appends(&self, count: u32) {
        self.append_faults.set(count);
    }

    /// Every stored event in append order (the events table's change stream).
    pub fn all_events(&self) -> Vec<StoredEvent> {
        lock(&self.streams).log.clone()
    }

    /// Stores an event as it is, bypassing every check: for seeding old schema versions in tests.
    pub fn insert_raw(&self, event: StoredEvent) {
        let mut streams = lock(&self.streams);
        streams.log.push(event.clone());
        streams
            .by_stream
            .entry(event.stream_id.clone())
            .or_default()
            .push(event);
    }
}

#[async_trait]
impl EventStore for InMemoryEventStore {
    async fn append(&self, request: AppendRequest) -> Result<(), StoreError> {
        validate_append(&request)?;
        if self.append_faults.take() {
            return Err(StoreError::Unavailable("injected fault".into()));
        }
        let mut streams = lock(&self.streams);
        let mut records = lock(&self.idempotency.records);
        if let Some(record) = &request.idempotency
            && records.contains_key(&record.key)
        {
            return Err(StoreError::DuplicateRequest {
                key: record.key.clone(),
            });
        }
        let current = streams
            .by_stream
            .get(&request.stream_id)
            .map_or(0, |s| s.len() as u64);
        if current != request.expected_version {
            return Err(StoreError::Conflict {
                stream_id: request.stream_id,
                expected_version: request.expected_version,
            });
        }
        if let Some(record) = request.idempotency {
            records.insert(record.key.clone(), record);
        }
        streams.log.extend(request.events.iter().cloned());
        streams
            .by_stream
            .entry(request.stream_id)
            .or_default()
            .extend(request.events);
        Ok(())
    }

    async fn load(&self, stream_id: &StreamId) -> Result<Vec<StoredEvent>, StoreError> {
        self.load_from(stream_id, 0, u32::MAX).await
    }

    async fn load_from(
        &self,
        stream_id: &StreamId,
        after_version: u64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let stored: Vec<StoredEvent> = lock(&self.streams)
            .by_stream
            .get(stream_id)
            .map(|events| {
                events
                    .iter()
                    .filter(|event| event.version > after_version)
                    .take(limit as usize)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        stored
            .into_iter()
            .map(|event| {
                let version = event.version;
                upcast(event).map_err(|source| StoreError::Corrupt {
                    stream_id: stream_id.clone(),
                    version,
                    source,
                })
            })
            .collect()
    }
}

/// Records what was published; can be told to reject events.
#[derive(Debug, Clone, Default)]
pub struct InMemoryPublisher {
    published: Arc<Mutex<Vec<StoredEvent>>>,
    faults: Arc<Faults>,
}

impl InMemoryPublisher {
    /// Everything published so far, in order.
    pub fn published(&self) -> Vec<StoredEvent> {
        lock(&self.published).clone()
    }

    /// Makes the next `count` publish calls fail as if the bus were unreachable.
    pub fn fail_next(&self, count: u32) {
        self.faults.set(count);
    }
}

#[async_trait]
impl EventPublisher for InMemoryPublisher {
    async fn publish(&self, events: &[StoredEvent]) -> Result<(), PublishError> {
        if self.faults.take() {
            return Err(PublishError::Unavailable("injected fault".into()));
        }
        lock(&self.published).extend_from_slice(events);
        Ok(())
    }
}

/// Records the notifications sent; can be told to fail.
#[derive(Debug, Clone, Default)]
pub struct InMemoryNotifier {
    sent: Arc<Mutex<Vec<Notification>>>,
    faults: Arc<Faults>,
}

impl InMemoryNotifier {
    /// Every notification sent so far, in order.
    pub fn sent(&self) -> Vec<Notification> {
        lock(&self.sent).clone()
    }

    /// Makes the next `count` sends fail.
    pub fn fail_next(&self, count: u32) {
        self.faults.set(count);
    }
}

#[async_trait]
impl Notifier for InMemoryNotifier {
    async fn notify(&self, notification: &Notification) -> Result<(), NotifyError> {
        if self.faults.take() {
            return Err(NotifyError("injected fault".into()));
        }
        lock(&self.sent).push(notification.clone());
        Ok(())
    }
}

/// Keeps the poison records set aside; can be told to fail.
#[derive(Debug, Clone, Default)]
pub struct InMemoryDeadLetters {
    letters: Arc<Mutex<Vec<PoisonRecord>>>,
    faults: Arc<Faults>,
}

impl InMemoryDeadLetters {
    /// Every poison record set aside so far, in order.
    pub fn letters(&self) -> Vec<PoisonRecord> {
        lock(&self.letters).clone()
    }

    /// Makes the next `count` sends fail as if the queue were unreachable.
    pub fn fail_next(&self, count: u32) {
        self.faults.set(count);
    }
}

#[async_trait]
impl DeadLetters for InMemoryDeadLetters {
    async fn dead_letter(&self, record: &PoisonRecord) -> Result<(), DeadLetterError> {
        if self.faults.take() {
            return Err(DeadLetterError("injected fault".into()));
        }
        lock(&self.letters).push(record.clone());
        Ok(())
    }
}

/// Order views in a map, written with the same condition as the DynamoDB adapter. Clones share
/// the same views.
#[derive(Debug, Clone, Default)]
pub struct InMemoryOrderViews {
    views: Arc<Mutex<HashMap<OrderId, OrderView>>>,
    faults: Arc<Faults>,
    writes: Arc<AtomicU32>,
}

impl InMemoryOrderViews {
    /// No views.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `count` calls (of any kind) fail as if the table were unreachable.
    pub fn fail_next(&self, count: u32) {
        self.faults.set(count);
    }

    /// How many saves succeeded so far: what a test counts to prove a duplicate wrote nothing.
    pub fn writes(&self) -> u32 {
        self.writes.load(Ordering::SeqCst)
    }

    /// Every stored view, by order id.
    pub fn all(&self) -> Vec<OrderView> {
        let mut views: Vec<_> = lock(&self.views).values().cloned().collect();
        views.sort_by(|a, b| a.order_id.cmp(&b.order_id));
        views
    }

    fn fault(&self) -> Result<(), ViewError> {
        if self.faults.take() {
            Err(ViewError::Unavailable("injected fault".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl DeliveryBoard for InMemoryOrderViews {
    async fn overdue(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<Vec<OverdueDelivery>, ViewError> {
        self.fault()?;
        let mut overdue: Vec<OverdueDelivery> = lock(&self.views)
            .values()
            .filter(|view| view.delivery_active())
            .filter_map(|view| {
                let delivery = view.delivery.as_ref()?;
                (delivery.eta < now).then(|| OverdueDelivery {
                    delivery_id: delivery.delivery_id.clone(),
                    order_id: view.order_id.clone(),
                    eta: delivery.eta,
                })
            })
            .collect();
        overdue.sort_by(|a, b| (a.eta, &a.delivery_id).cmp(&(b.eta, &b.delivery_id)));
        overdue.truncate(limit as usize);
        Ok(overdue)
    }
}

#[async_trait]
impl OrderViews for InMemoryOrderViews {
    async fn get(&self, order_id: &OrderId) -> Result<Option<OrderView>, ViewError> {
        self.fault()?;
        Ok(lock(&self.views).get(order_id).cloned())
    }

    async fn list_for_customer(
        &self,
        customer_id: &CustomerId,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<OrderPage, ViewError> {
        self.fault()?;
        let after = match cursor {
            None => None,
            Some(cursor) => {
                let position = cursor::decode(cursor)?;
                match (position.get("customer_id"), position.get("placed_key")) {
                    (Some(customer), Some(key)) if customer == customer_id.as_str() => {
                        Some(key.clone())
                    }
                    _ => return Err(ViewError::InvalidCursor),
                }
            }
        };
        let mut listed: Vec<(String, OrderView)> = lock(&self.views)
            .values()
            .filter(|view| view.customer_id.as_ref() == Some(customer_id))
            .filter_map(|view| placed_key(view).map(|key| (key, view.clone())))
            .filter(|(key, _)| after.as_ref().is_none_or(|after| key < after))
            .collect();
        listed.sort_by(|(a, _), (b, _)| b.cmp(a));
        let limit = page_size(limit) as usize;
        let more = listed.len() > limit;
        listed.truncate(limit);
        let next_cursor = match listed.last() {
            Some((key, _)) if more => Some(cursor::encode(&BTreeMap::from([
                ("customer_id".to_owned(), customer_id.to_string()),
                ("placed_key".to_owned(), key.clone()),
            ]))),
            _ => None,
        };
        Ok(OrderPage {
            orders: listed.into_iter().map(|(_, view)| view).collect(),
            next_cursor,
        })
    }

    async fn save(&self, view: &OrderView, previous: Option<&OrderView>) -> Result<(), ViewError> {
        self.fault()?;
        let mut views = lock(&self.views);
        let unchanged = match (views.get(&view.order_id), previous) {
            (None, None) => true,
            (Some(stored), Some(previous)) => stored.versions == previous.versions,
            _ => false,
        };
        if !unchanged {
            return Err(ViewError::Conflict(view.order_id.clone()));
        }
        views.insert(view.order_id.clone(), view.clone());
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;

    fn view(order: &str, customer: Option<&str>, minute: Option<i64>) -> OrderView {
        let mut view = OrderView::new(OrderId::parse(order).unwrap());
        view.customer_id = customer.map(|c| CustomerId::parse(c).unwrap());
        view.placed_at = minute
            .map(|m| Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap() + Duration::minutes(m));
        view.versions.insert(format!("order#{order}"), 1);
        view
    }

    fn ids(page: &OrderPage) -> Vec<&str> {
        page.orders.iter().map(|v| v.order_id.as_str()).collect()
    }

    #[tokio::test]
    async fn a_stream_is_loaded_page_by_page_after_a_version() {
        use domain::envelope::{Actor, CorrelationId, EventContext};
        use domain::ids::DeliveryId;
        use domain::order::{OrderEvent, OrderShipped};

        let store = InMemoryEventStore::new();
        let order_id = OrderId::parse("o1").unwrap();
        let stream = StreamId::order(&order_id);
        let shipped = OrderEvent::OrderShipped(OrderShipped {
            order_id: order_id.clone(),
            customer_id: CustomerId::parse("c1").unwrap(),
            delivery_id: DeliveryId::for_order(&order_id),
        });
        let context = EventContext {
            correlation_id: CorrelationId::parse("req-1").unwrap(),
            causation_id: "req-1".into(),
            actor: Actor::system("test"),
            occurred_at: Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
        };
        store
            .append(AppendRequest {
                stream_id: stream.clone(),
                expected_version: 0,
                events: StoredEvent::stamp(&stream, 0, &vec![shipped; 5], &context),
                idempotency: None,
            })
            .await
            .unwrap();
        let versions =
            |events: Vec<StoredEvent>| -> Vec<u64> { events.iter().map(|e| e.version).collect() };
        let page = |after, limit| store.load_from(&stream, after, limit);
        assert_eq!(versions(page(0, 2).await.unwrap()), [1, 2]);
        assert_eq!(versions(page(2, 2).await.unwrap()), [3, 4]);
        assert_eq!(versions(page(4, 2).await.unwrap()), [5]);
        assert_eq!(versions(page(5, 2).await.unwrap()), Vec::<u64>::new());
        assert_eq!(
            versions(store.load(&stream).await.unwrap()),
            [1, 2, 3, 4, 5]
        );
        let nothing = StreamId::new("order", "o2");
        assert!(store.load_from(&nothing, 0, 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn views_are_saved_only_over_what_was_read() {
        let views = InMemoryOrderViews::new();
        let first = view("o1", Some("c1"), Some(0));
        views.save(&first, None).await.unwrap();
        assert_eq!(
            views.save(&first, None).await,
            Err(ViewError::Conflict(first.order_id.clone())),
            "a second creation loses"
        );
        let mut second = first.clone();
        second.versions.insert("delivery#d-o1".into(), 1);
        views.save(&second, Some(&first)).await.unwrap();
        let mut stale = first.clone();
        stale.versions.insert("order#o1".into(), 2);
        assert_eq!(
            views.save(&stale, Some(&first)).await,
            Err(ViewError::Conflict(first.order_id.clone()))
        );
        assert_eq!(
            views.save(&view("o2", None, None), Some(&first)).await,
            Err(ViewError::Conflict(OrderId::parse("o2").unwrap())),
            "no row to replace"
        );
        assert_eq!(views.get(&first.order_id).await.unwrap(), Some(second));
        assert_eq!(views.writes(), 2);
    }

    #[tokio::test]
    async fn a_customers_placed_orders_are_listed_newest_first_page_by_page() {
        let views = InMemoryOrderViews::new();
        for (order, customer, minute) in [
            ("o1", Some("c1"), Some(1)),
            ("o2", Some("c1"), Some(3)),
            ("o3", Some("c1"), Some(2)),
            ("o4", Some("c1"), Some(3)), // same instant as o2: order id breaks the tie
            ("o5", Some("c2"), Some(9)),
            ("o6", None, None), // not placed yet
        ] {
            views
                .save(&view(order, customer, minute), None)
                .await
                .unwrap();
        }
        let c1 = CustomerId::parse("c1").unwrap();
        let first = views.list_for_customer(&c1, 3, None).await.unwrap();
        assert_eq!(ids(&first), ["o4", "o2", "o3"]);
        let cursor = first.next_cursor.clone().unwrap();
        let second = views
            .list_for_customer(&c1, 3, Some(&cursor))
            .await
            .unwrap();
        assert_eq!(ids(&second), ["o1"]);
        assert_eq!(second.next_cursor, None);

        let all = views.list_for_customer(&c1, 4, None).await.unwrap();
        assert_eq!(ids(&all), ["o4", "o2", "o3", "o1"]);
        assert_eq!(all.next_cursor, None, "no empty last page");

        let c2 = CustomerId::parse("c2").unwrap();
        assert_eq!(
            views.list_for_customer(&c2, 3, Some(&cursor)).await,
            Err(ViewError::InvalidCursor),
            "a cursor of another customer's list"
        );
        assert_eq!(
            views.list_for_customer(&c1, 3, Some("nope")).await,
            Err(ViewError::InvalidCursor)
        );
        assert_eq!(
            ids(&views.list_for_customer(&c1, 0, None).await.unwrap()),
            ["o4"],
            "the page size is at least one"
        );
    }

    #[tokio::test]
    async fn injected_faults_fail_each_call_once() {
        let views = InMemoryOrderViews::new();
        views.fail_next(3);
        let v = view("o1", Some("c1"), Some(0));
        let c1 = CustomerId::parse("c1").unwrap();
        assert!(matches!(
            views.save(&v, None).await,
            Err(ViewError::Unavailable(_))
        ));
        assert!(matches!(
            views.get(&v.order_id).await,
            Err(ViewError::Unavailable(_))
        ));
        assert!(matches!(
            views.list_for_customer(&c1, 1, None).await,
            Err(ViewError::Unavailable(_))
        ));
        views.save(&v, None).await.unwrap();
        assert_eq!(views.all(), [v]);
    }
}

/// A catalogue in memory; can be told to fail.
#[derive(Debug, Clone, Default)]
pub struct InMemoryCatalogue {
    entries: Arc<Mutex<BTreeMap<Sku, CatalogueEntry>>>,
    faults: Arc<Faults>,
}

impl InMemoryCatalogue {
    /// A catalogue holding `entries`.
    pub fn with(entries: impl IntoIterator<Item = CatalogueEntry>) -> Self {
        let catalogue = Self::default();
        lock(&catalogue.entries).extend(entries.into_iter().map(|e| (e.sku.clone(), e)));
        catalogue
    }

    /// The next `count` calls fail as unavailable.
    pub fn fail_next(&self, count: u32) {
        self.faults.set(count);
    }
}

#[async_trait]
impl Catalogue for InMemoryCatalogue {
    async fn entries(&self, skus: &[Sku]) -> Result<Vec<CatalogueEntry>, StoreError> {
        if self.faults.take() {
            return Err(StoreError::Unavailable("injected catalogue failure".into()));
        }
        let entries = lock(&self.entries);
        let mut found: Vec<CatalogueEntry> = skus
            .iter()
            .filter_map(|sku| entries.get(sku).cloned())
            .collect();
        found.dedup_by(|a, b| a.sku == b.sku);
        Ok(found)
    }

    async fn put_entries(&self, entries: &[CatalogueEntry]) -> Result<(), StoreError> {
        if self.faults.take() {
            return Err(StoreError::Unavailable("injected catalogue failure".into()));
        }
        lock(&self.entries).extend(entries.iter().map(|e| (e.sku.clone(), e.clone())));
        Ok(())
    }
}
