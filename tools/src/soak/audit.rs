//! The soak's audit: once the stack has settled, reads the end state around the faults (straight
//! from the emulators, not through the proxy) and checks every invariant the system promises:
//!
//! - every order answered 201 exists exactly once, and no other order of the run's customers does;
//! - every order reaches the terminal state its lifecycle implies, in the store and in its view;
//! - every stream's versions are contiguous (1, 2, 3 … without gaps);
//! - exactly one `DeliveryScheduled` per order, exactly one coupon per delay;
//! - exactly one notification per (customer-visible event, customer) — a second one only where the
//!   proxy's journal shows that SNS's answer to that publish was lost (the one duplicate window
//!   left, counted apart);
//! - each stream reader's poison queue holds exactly the poison records the run wrote (each at
//!   least once: a batch delivered twice sets its poison aside twice), every other dead-letter and
//!   on-failure queue nothing;
//! - no function or bridge log holds a panic.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use adapters::dynamo::DynamoEventStore;
use adapters::dynamo_views::DynamoOrderViews;
use anyhow::{Context, Result};
use domain::envelope::StoredEvent;
use domain::ids::OrderId;
use domain::read_model::OrderViews;
use serde_json::Value;

use super::{Lifecycle, Placed, Race, Report, Violation};

/// The event types a customer hears about: one notification each.
pub const NOTIFIED: &[&str] = &[
    "OrderPlaced",
    "OrderCancelled",
    "DeliveryScheduled",
    "DeliveryDelayed",
    "DeliveryCompleted",
    "DeliveryCancellationRefused",
];

/// How long the stack may take to settle after the last command.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the views may show no further order at its end before the audit stops waiting.
const NO_PROGRESS: Duration = Duration::from_secs(60);
/// How long the queues must stay empty to count as settled.
const QUIET: Duration = Duration::from_secs(5);

/// Where the audit reads, around the faults.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The events table, read directly.
    pub store: DynamoEventStore,
    /// The views table, read directly.
    pub views: DynamoOrderViews,
    /// SQS, directly.
    pub sqs: aws_sdk_sqs::Client,
    /// The stage (its queues are `orderflow-<stage>-…`).
    pub stage: String,
    /// The proxy's fault journal, if it ran.
    pub journal: Option<PathBuf>,
    /// Logs to search for panics (functions, bridge).
    pub logs: Vec<PathBuf>,
    /// DynamoDB, directly (to remove the poison records once they are accounted for).
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// The events table.
    pub events_table: String,
    /// The stream ids of the poison records the run wrote.
    pub poison: Vec<String>,
}

/// What an order's lifecycle implies at the end: the last order event, the last delivery event,
/// and how many delays.
fn expected_end(placed: &Placed) -> (&'static str, &'static str, u32) {
    match placed.lifecycle {
        Lifecycle::Completed => ("OrderCompleted", "DeliveryCompleted", 0),
        Lifecycle::Delayed(k) => ("OrderCompleted", "DeliveryCompleted", k),
        Lifecycle::Failed => ("OrderCancelled", "DeliveryFailed", 0),
        Lifecycle::Cancelled => ("OrderCancelled", "DeliveryCancelled", 0),
        Lifecycle::CancelRacingDispatch => match placed.race {
            Some(Race::Recalled) => ("OrderCancelled", "DeliveryFailed", 0),
            Some(Race::ShippedFirst) => ("OrderCompleted", "DeliveryCompleted", 0),
            Some(Race::CancelFirst) | None => ("OrderCancelled", "DeliveryCancelled", 0),
        },
    }
}

/// The view's statuses an end state shows as.
fn view_statuses(order_end: &str, delivery_end: &str) -> (&'static str, &'static str) {
    let order = if order_end == "OrderCompleted" {
        "completed"
    } else {
        "cancelled"
    };
    let delivery = match delivery_end {
        "DeliveryCompleted" => "completed",
        "DeliveryFailed" => "failed",
        _ => "cancelled",
    };
    (order, delivery)
}

/// Runs the whole audit, adding what it counts and finds to `report`.
pub async fn audit(
    placed: &[Placed],
    customers: &BTreeSet<String>,
    observed: &Observed,
    inbox: InboxCollector,
    report: &mut Report,
) -> Result<()> {
    let started = Instant::now();
    settle_views(placed, observed).await;
    settle_queues(observed).await?;
    check_poison(observed, report).await?;
    let events = scan(&observed.store).await?;
    report
        .audited
        .insert("events in the store".into(), events.len() as u64);
    let mut streams: BTreeMap<String, Vec<&StoredEvent>> = BTreeMap::new();
    for event in &events {
        streams
            .entry(event.stream_id.to_string())
            .or_default()
            .push(event);
    }
    check_versions(&streams, report);
    check_orders(placed, customers, &streams, report);
    check_views(placed, observed, report).await;
    let lost = lost_publishes(observed.journal.as_ref())?;
    let seen = inbox.finish().await?;
    check_notifications(placed, &streams, seen, &lost, report)?;
    check_dead_letters(observed, report).await?;
    check_logs(observed, report);
    report.audit_time = started.elapsed();
    Ok(())
}

/// Waits until every order's view shows its end state (or [`SETTLE_TIMEOUT`] passes; what is
/// still not there is reported by the checks).
async fn settle_views(placed: &[Placed], observed: &Observed) {
    let started = Instant::now();
    let mut progress_at = Instant::now();
    let mut waiting: Vec<&Placed> = placed.iter().filter(|p| p.finished).collect();
    while !waiting.is_empty()
        && started.elapsed() < SETTLE_TIMEOUT
        && progress_at.elapsed() < NO_PROGRESS
    {
        let before = waiting.len();
        let mut still = Vec::new();
        for order in waiting {
            let (order_end, delivery_end, _) = expected_end(order);
            let (status, delivery) = view_statuses(order_end, delivery_end);
            let shows = match OrderId::parse(&order.order_id) {
                Ok(id) => observed
                    .views
                    .get(&id)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|v| {
                        v.status.map(|s| s.as_str()) == Some(status)
                            && v.delivery.as_ref().map(|d| d.status.as_str()) == Some(delivery)
                    }),
                Err(_) => true,
            };
            if !shows {
                still.push(order);
            }
        }
        waiting = still;
        if waiting.len() < before {
            progress_at = Instant::now();
        }
        if !waiting.is_empty() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// The stage's queues: (name, URL).
async fn stage_queues(observed: &Observed) -> Result<Vec<(String, String)>> {
    crate::dlq::ops::stage_queues(&observed.sqs, &observed.stage).await
}

/// Messages in a queue, visible or in flight.
async fn depth(observed: &Observed, url: &str) -> Result<u64> {
    crate::dlq::ops::queue_depth(&observed.sqs, url).await
}

/// Whether a queue holds what failed for good (a DLQ, an on-failure destination, a poison queue).
fn holds_failures(name: &str) -> bool {
    name.ends_with("-dlq") || name.contains("failures") || is_poison_queue(name)
}

/// Whether a queue is a stream reader's poison queue.
fn is_poison_queue(name: &str) -> bool {
    name.ends_with("-poison")
}

/// Reads every message of a poison queue (until it stays empty for [`QUIET`]) and deletes it:
/// the stream ids its records name, with how often.
async fn drain_poison(observed: &Observed, url: &str) -> Result<BTreeMap<String, usize>> {
    let mut named: BTreeMap<String, usize> = BTreeMap::new();
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < QUIET {
        let received = observed
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(aws_sdk_sqs::Error::from)
            .with_context(|| format!("reading {url}"))?;
        for message in received.messages() {
            quiet_since = Instant::now();
            let record: Value =
                serde_json::from_str(message.body().unwrap_or_default()).unwrap_or(Value::Null);
            let stream_id = record["keys"]["stream_id"]["S"]
                .as_str()
                .unwrap_or("(unreadable)")
                .to_owned();
            *named.entry(stream_id).or_default() += 1;
            observed
                .sqs
                .delete_message()
                .queue_url(url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .map_err(aws_sdk_sqs::Error::from)
                .with_context(|| format!("deleting from {url}"))?;
        }
    }
    Ok(named)
}

/// Each poison queue holds exactly the run's poison records (each at least once); then they are
/// removed from the events table so the store's scan reads only events.
async fn check_poison(observed: &Observed, report: &mut Report) -> Result<()> {
    let injected: BTreeSet<&str> = observed.poison.iter().map(String::as_str).collect();
    let mut set_aside = 0u64;
    for (name, url) in stage_queues(observed).await? {
        if !is_poison_queue(&name) {
            continue;
        }
        let named = drain_poison(observed, &url).await?;
        set_aside += named.values().sum::<usize>() as u64;
        let found: BTreeSet<&str> = named.keys().map(String::as_str).collect();
        if found != injected {
            report.violations.push(Violation::new(
                "dead-letter and on-failure queues hold only injected poison",
                format!("{name} holds {:?}; the run wrote {:?}", named, injected),
            ));
        }
    }
    report
        .audited
        .insert("poison records written".into(), injected.len() as u64);
    report
        .audited
        .insert("poison records set aside (all queues)".into(), set_aside);
    for stream_id in &observed.poison {
        observed
            .dynamodb
            .delete_item()
            .table_name(&observed.events_table)
            .key(
                "stream_id",
                aws_sdk_dynamodb::types::AttributeValue::S(stream_id.clone()),
            )
            .key(
                "version",
                aws_sdk_dynamodb::types::AttributeValue::N("1".into()),
            )
            .send()
            .await
            .map_err(aws_sdk_dynamodb::Error::from)
            .with_context(|| format!("removing the poison record {stream_id}"))?;
    }
    Ok(())
}

/// Waits until every handler queue of the stage has stayed empty for [`QUIET`].
async fn settle_queues(observed: &Observed) -> Result<()> {
    let queues = stage_queues(observed).await?;
    let started = Instant::now();
    let mut quiet_since = Instant::now();
    while started.elapsed() < SETTLE_TIMEOUT {
        let mut busy = 0;
        for (name, url) in &queues {
            // The stage's own notifications inbox (scripts/run.sh's) is nobody's to drain.
            if !holds_failures(name) && !name.ends_with("-inbox") {
                busy += depth(observed, url).await?;
            }
        }
        if busy > 0 {
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= QUIET {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

/// Every event of the store.
async fn scan(store: &DynamoEventStore) -> Result<Vec<StoredEvent>> {
    let mut events = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .scan_page(cursor)
            .await
            .context("scanning the events table")?;
        events.extend(page.events);
        cursor = page.next;
        if cursor.is_none() {
            return Ok(events);
        }
    }
}

fn check_versions(streams: &BTreeMap<String, Vec<&StoredEvent>>, report: &mut Report) {
    for (stream, events) in streams {
        let mut versions: Vec<u64> = events.iter().map(|e| e.version).collect();
        versions.sort_unstable();
        let contiguous = versions.iter().zip(1u64..).all(|(v, n)| *v == n);
        if !contiguous {
            report.violations.push(Violation::new(
                "per-stream versions are contiguous",
                format!("{stream}: versions {versions:?}"),
            ));
        }
    }
    report
        .audited
        .insert("streams".into(), streams.len() as u64);
}

fn count_of(events: Option<&Vec<&StoredEvent>>, event_type: &str) -> usize {
    events.map_or(0, |events| {
        events.iter().filter(|e| e.event_type == event_type).count()
    })
}

fn last_type<'a>(events: Option<&'a Vec<&StoredEvent>>, prefix: &str) -> &'a str {
    events
        .and_then(|events| {
            events
                .iter()
                .filter(|e| e.event_type.starts_with(prefix))
                .max_by_key(|e| e.version)
        })
        .map_or("(none)", |e| e.event_type.as_str())
}

fn check_orders(
    placed: &[Placed],
    customers: &BTreeSet<String>,
    streams: &BTreeMap<String, Vec<&StoredEvent>>,
    report: &mut Report,
) {
    let answered: BTreeSet<&str> = placed.iter().map(|p| p.order_id.as_str()).collect();
    // Orders of the run's customers that nobody was answered 201 for.
    for (stream, events) in streams {
        for event in events.iter().filter(|e| e.event_type == "OrderPlaced") {
            let customer = event.data["customer_id"].as_str().unwrap_or_default();
            let order_id = event.data["order_id"].as_str().unwrap_or_default();
            if customers.contains(customer) && !answered.contains(order_id) {
                report.violations.push(Violation::new(
                    "every order answered 201 exists exactly once",
                    format!("{stream}: an order of a soak customer no client was answered for"),
                ));
            }
        }
    }
    let mut coupons: HashMap<String, usize> = HashMap::new();
    for (stream, events) in streams {
        if stream.starts_with("coupon#") {
            for event in events.iter().filter(|e| e.event_type == "CouponIssued") {
                let delivery = event.data["delivery_id"].as_str().unwrap_or_default();
                *coupons.entry(delivery.to_owned()).or_default() += 1;
            }
            if count_of(Some(events), "CouponIssued") != 1 {
                report.violations.push(Violation::new(
                    "exactly one coupon per delay",
                    format!(
                        "{stream}: {} CouponIssued",
                        count_of(Some(events), "CouponIssued")
                    ),
                ));
            }
        }
    }
    let mut coupons_total = 0;
    for order in placed {
        let order_stream = streams.get(&format!("order#{}", order.order_id));
        let delivery_id = format!("d-{}", order.order_id);
        let delivery_stream = streams.get(&format!("delivery#{delivery_id}"));
        let (order_end, delivery_end, delays) = expected_end(order);
        let id = &order.order_id;
        let placed_count = count_of(order_stream, "OrderPlaced");
        if placed_count != 1 {
            report.violations.push(Violation::new(
                "every order answered 201 exists exactly once",
                format!("order {id}: {placed_count} OrderPlaced"),
            ));
        }
        let scheduled = count_of(delivery_stream, "DeliveryScheduled");
        if scheduled != 1 {
            report.violations.push(Violation::new(
                "exactly one DeliveryScheduled per order",
                format!("order {id}: {scheduled}"),
            ));
        }
        if !order.finished {
            continue;
        }
        let last_order = last_type(order_stream, "Order");
        let last_delivery = last_type(delivery_stream, "Delivery");
        // A refused cancellation may follow a delivery's end; the end is the last state change.
        let last_delivery = if last_delivery == "DeliveryCancellationRefused" {
            delivery_stream
                .and_then(|events| {
                    events
                        .iter()
                        .filter(|e| {
                            e.event_type.starts_with("Delivery")
                                && e.event_type != "DeliveryCancellationRefused"
                        })
                        .max_by_key(|e| e.version)
                })
                .map_or("(none)", |e| e.event_type.as_str())
        } else {
            last_delivery
        };
        if last_order != order_end || last_delivery != delivery_end {
            report.violations.push(Violation::new(
                "every order reaches the end its lifecycle implies (store)",
                format!(
                    "order {id} ({}): ends {last_order}/{last_delivery}, expected {order_end}/{delivery_end}",
                    order.lifecycle.name()
                ),
            ));
        }
        let delayed = count_of(delivery_stream, "DeliveryDelayed");
        let issued = coupons.get(&delivery_id).copied().unwrap_or(0);
        coupons_total += issued;
        if delayed != delays as usize || issued != delayed {
            report.violations.push(Violation::new(
                "exactly one coupon per delay",
                format!("order {id}: {delayed} delays (expected {delays}), {issued} coupons"),
            ));
        }
    }
    report
        .audited
        .insert("orders checked".into(), placed.len() as u64);
    report
        .audited
        .insert("coupons".into(), coupons_total as u64);
}

async fn check_views(placed: &[Placed], observed: &Observed, report: &mut Report) {
    for order in placed.iter().filter(|p| p.finished) {
        let (order_end, delivery_end, delays) = expected_end(order);
        let (status, delivery) = view_statuses(order_end, delivery_end);
        let id = &order.order_id;
        let view = match OrderId::parse(id) {
            Ok(order_id) => observed.views.get(&order_id).await,
            Err(_) => continue,
        };
        let shown = match view {
            Ok(Some(view)) => view,
            Ok(None) => {
                report.violations.push(Violation::new(
                    "every order reaches the end its lifecycle implies (view)",
                    format!("order {id}: no view"),
                ));
                continue;
            }
            Err(error) => {
                report.violations.push(Violation::new(
                    "every order reaches the end its lifecycle implies (view)",
                    format!("order {id}: the view cannot be read: {error}"),
                ));
                continue;
            }
        };
        let shown_status = shown.status.map_or("-", |s| s.as_str());
        let shown_delivery = shown.delivery.as_ref().map(|d| d.status.as_str());
        let shown_delays = shown.delivery.as_ref().map_or(0, |d| d.delays);
        if shown_status != status
            || shown_delivery != Some(delivery)
            || shown_delays != delays
            || shown.coupons.len() != delays as usize
        {
            report.violations.push(Violation::new(
                "every order reaches the end its lifecycle implies (view)",
                format!(
                    "order {id} ({}): the view shows {shown_status}/{}/{shown_delays} delays/{} coupons, expected {status}/{delivery}/{delays}",
                    order.lifecycle.name(),
                    shown_delivery.unwrap_or("-"),
                    shown.coupons.len()
                ),
            ));
        }
    }
}

/// The event ids whose notification's publish had its answer lost by the proxy (the publish was
/// applied, the SDK saw an error and may have published again), with how often.
fn lost_publishes(journal: Option<&PathBuf>) -> Result<HashMap<String, usize>> {
    let mut lost = HashMap::new();
    let Some(path) = journal else {
        return Ok(lost);
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(lost),
        Err(error) => {
            return Err(error).with_context(|| format!("reading the journal {}", path.display()));
        }
    };
    for line in text.lines() {
        let Ok(entry) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if entry["service"] == "sns"
            && entry["operation"] == "Publish"
            && entry["kind"] == "lost"
            && let Some(event_id) = entry["attributes"]["event_id"].as_str()
        {
            *lost.entry(event_id.to_owned()).or_default() += 1;
        }
    }
    Ok(lost)
}

/// Notifications by (event id, customer).
pub type Seen = HashMap<(String, String), usize>;

/// Reads the soak's inbox for the whole run (so the queue never grows: moto's receive walks the
/// whole queue), deleting what it counts; [`InboxCollector::finish`] reads on until the inbox stays
/// empty for [`QUIET`].
#[derive(Debug)]
pub struct InboxCollector {
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<Result<Seen>>,
}

impl InboxCollector {
    /// Starts reading the inbox at `url`.
    pub fn start(sqs: aws_sdk_sqs::Client, url: String) -> Self {
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(collect(sqs, url, stop.clone()));
        Self { stop, task }
    }

    /// Stops once the inbox stays empty for [`QUIET`]; what it counted.
    pub async fn finish(self) -> Result<Seen> {
        self.stop.cancel();
        self.task.await.context("the inbox reader")?
    }
}

async fn collect(
    sqs: aws_sdk_sqs::Client,
    url: String,
    stop: tokio_util::sync::CancellationToken,
) -> Result<Seen> {
    let mut seen = Seen::new();
    let mut quiet_since = Instant::now();
    while !(stop.is_cancelled() && quiet_since.elapsed() >= QUIET) {
        let received = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(aws_sdk_sqs::Error::from)
            .context("reading the soak's inbox")?;
        for message in received.messages() {
            quiet_since = Instant::now();
            let envelope: Value =
                serde_json::from_str(message.body().unwrap_or_default()).unwrap_or(Value::Null);
            let attribute = |name: &str| {
                envelope["MessageAttributes"][name]["Value"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned()
            };
            *seen
                .entry((attribute("event_id"), attribute("customer_id")))
                .or_default() += 1;
            sqs.delete_message()
                .queue_url(&url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .map_err(aws_sdk_sqs::Error::from)
                .context("deleting from the soak's inbox")?;
        }
    }
    Ok(seen)
}

fn check_notifications(
    placed: &[Placed],
    streams: &BTreeMap<String, Vec<&StoredEvent>>,
    mut seen: Seen,
    lost: &HashMap<String, usize>,
    report: &mut Report,
) -> Result<()> {
    let mut expected = 0u64;
    let mut explained = 0u64;
    for order in placed {
        let delivery_stream = format!("delivery#d-{}", order.order_id);
        let order_stream = format!("order#{}", order.order_id);
        for stream in [&order_stream, &delivery_stream] {
            for event in streams.get(stream).into_iter().flatten() {
                if !NOTIFIED.contains(&event.event_type.as_str()) {
                    continue;
                }
                expected += 1;
                let customer = event.data["customer_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let count = seen
                    .remove(&(event.event_id.clone(), customer))
                    .unwrap_or(0);
                let allowed = 1 + lost.get(&event.event_id).copied().unwrap_or(0);
                if count > 1 && count <= allowed {
                    explained += (count - 1) as u64;
                } else if count != 1 {
                    report.violations.push(Violation::new(
                        "exactly one notification per (customer-visible event, customer)",
                        format!(
                            "order {}: {} {} notified {count} times",
                            order.order_id, event.event_type, event.event_id
                        ),
                    ));
                }
            }
        }
    }
    for ((event_id, _), count) in seen {
        report.violations.push(Violation::new(
            "exactly one notification per (customer-visible event, customer)",
            format!("{count} notification(s) for event {event_id}, which no soak order stored"),
        ));
    }
    report
        .audited
        .insert("notifications expected".into(), expected);
    report.audited.insert(
        "notifications repeated after a publish whose answer was lost".into(),
        explained,
    );
    Ok(())
}

async fn check_dead_letters(observed: &Observed, report: &mut Report) -> Result<()> {
    let mut checked = 0;
    for (name, url) in stage_queues(observed).await? {
        if !holds_failures(&name) {
            continue;
        }
        checked += 1;
        let held = depth(observed, &url).await?;
        if held > 0 {
            report.violations.push(Violation::new(
                "dead-letter and on-failure queues hold only injected poison",
                format!("{name} holds {held} message(s)"),
            ));
        }
    }
    report
        .audited
        .insert("dead-letter and on-failure queues".into(), checked);
    Ok(())
}

fn check_logs(observed: &Observed, report: &mut Report) {
    for log in &observed.logs {
        let Ok(text) = std::fs::read_to_string(log) else {
            report.violations.push(Violation::new(
                "no panic in any log",
                format!("{} cannot be read", log.display()),
            ));
            continue;
        };
        let panics = text.matches("panicked at").count();
        if panics > 0 {
            report.violations.push(Violation::new(
                "no panic in any log",
                format!("{}: {panics} panic(s)", log.display()),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_lifecycle_implies_its_end() {
        let placed = |lifecycle, race| Placed {
            order_id: "o1".into(),
            customer_id: "c1".into(),
            lifecycle,
            race,
            finished: true,
        };
        assert_eq!(
            expected_end(&placed(Lifecycle::Delayed(2), None)),
            ("OrderCompleted", "DeliveryCompleted", 2)
        );
        for (race, end) in [
            (Race::Recalled, ("OrderCancelled", "DeliveryFailed", 0)),
            (
                Race::CancelFirst,
                ("OrderCancelled", "DeliveryCancelled", 0),
            ),
            (
                Race::ShippedFirst,
                ("OrderCompleted", "DeliveryCompleted", 0),
            ),
        ] {
            assert_eq!(
                expected_end(&placed(Lifecycle::CancelRacingDispatch, Some(race))),
                end
            );
        }
        assert_eq!(
            view_statuses("OrderCancelled", "DeliveryFailed"),
            ("cancelled", "failed")
        );
        assert!(holds_failures("orderflow-soak-alert-on-order-placed-dlq"));
        assert!(holds_failures(
            "orderflow-soak-event-publisher-stream-failures"
        ));
        assert!(!holds_failures("orderflow-soak-alert-on-order-placed"));
    }

    #[test]
    fn lost_publishes_are_read_from_the_journal() {
        let dir = std::env::temp_dir().join(format!("soak-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        let path = dir.join("journal.jsonl");
        std::fs::write(
            &path,
            concat!(
                r#"{"service":"sns","operation":"Publish","kind":"lost","attributes":{"event_id":"e1","customer_id":"c1"}}"#,
                "\n",
                r#"{"service":"sns","operation":"Publish","kind":"error","attributes":{"event_id":"e2"}}"#,
                "\n",
                r#"{"service":"dynamodb","operation":"PutItem","kind":"lost"}"#,
                "\n"
            ),
        )
        .ok();
        let lost = lost_publishes(Some(&path)).ok().unwrap_or_default();
        assert_eq!(lost, HashMap::from([("e1".to_owned(), 1)]));
        std::fs::remove_dir_all(&dir).ok();
    }
}
