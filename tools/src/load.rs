//! `orderflow load --api URL [--orders N] [--concurrency C] [--rate R]`: measures a running stack
//! through its HTTP API, end to end.
//!
//! N orders are placed with `POST /orders` (one customer per run, an `Idempotency-Key` per order),
//! at most C in flight, optionally started at R orders/s. Each placed order is then polled with
//! `GET /orders/{id}` every [`POLL_INTERVAL`] until its view shows the delivery scheduled, which
//! crosses the whole pipeline: the order stream, the bus, the delivery queue, the delivery
//! stream and the projector. Polls do not crowd out the pipeline they measure on a small machine:
//! only the C oldest orders not yet seen scheduled are polled (at most C polls in flight), and an
//! order whose turn comes is polled at once. The pipeline schedules about in order, so these are
//! the ones to become scheduled next; an order scheduled ahead of older ones is seen once it is
//! among the C oldest (its latency overstated).
//! The `DeliveryScheduled` entry of the view's timeline gives a second figure without that
//! error, and without the projection: POST to the event's own time.
//!
//! Everything is bounded: each request has [`REQUEST_TIMEOUT`], each order [`SCHEDULE_TIMEOUT`] to
//! get its delivery scheduled, and the whole run [`Settings::deadline`]; the run stops once more
//! than 5% of N requests have failed ([`Settings::failure_budget`]). The figures are printed
//! either way; the command fails if the run stopped early or an order was not scheduled.
//!
//! Latencies are wall-clock times seen by the client: a `POST /orders` from sending to the whole
//! answer read; end to end from sending the `POST` to reading the view that shows the delivery
//! scheduled (the resolution: a poll interval, 100 ms, plus one `GET`, more when many orders
//! become visible at once and wait for their turn among the C polled). Under `--rate`, an
//! order whose start slot finds C requests in flight waits for one to finish, and its latency
//! counts from when it is sent (the wait is not measured).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use chrono::{DateTime, Utc};
use http::Method;
use serde_json::Value;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::demo_api::{SignedIn, delivery_status, order_body};
use crate::http_client::{HttpClient, HttpError, json_request};
use crate::report_html::{self, Series};

/// A request's deadline.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an order may take from `POST /orders` to the view showing the delivery scheduled.
pub const SCHEDULE_TIMEOUT: Duration = Duration::from_secs(60);
/// The pause between two polls of one order.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// The longest an order waiting for its turn to be polled waits before it looks again (it is woken
/// as soon as an older order leaves the list).
const TURN_WAIT: Duration = Duration::from_secs(1);
/// How often progress is reported (on stderr).
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// What every order buys: (sku, quantity, unit price in minor units).
const BASKET: &[(&str, u32)] = &[("TEA-GREEN-100G", 2), ("MUG-STONE", 1)];

/// How hard to load the stack.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Orders to place (N).
    pub orders: usize,
    /// Requests of each kind in flight at most (C): `POST /orders`, and separately the polls.
    pub concurrency: usize,
    /// Orders started per second at most (R); `None`: as fast as C allows.
    pub rate: Option<f64>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            orders: 200,
            concurrency: 4,
            rate: None,
        }
    }
}

impl Settings {
    /// Refuses settings that would not run: no orders, no concurrency, a rate that is not a
    /// positive number.
    pub fn validated(self) -> Result<Self> {
        ensure!(self.orders >= 1, "--orders must be at least 1");
        ensure!(self.concurrency >= 1, "--concurrency must be at least 1");
        if let Some(rate) = self.rate {
            ensure!(
                rate.is_finite() && rate > 0.0,
                "--rate must be a positive number of orders per second"
            );
        }
        Ok(self)
    }

    /// The whole run's deadline: 1 s per order and 2 minutes more.
    pub fn deadline(&self) -> Duration {
        let orders = u64::try_from(self.orders).unwrap_or(u64::MAX);
        Duration::from_secs(orders.saturating_add(120))
    }

    /// How many failed requests (`POST` or poll) the run tolerates: 5% of N, rounded down. One
    /// more stops it.
    pub fn failure_budget(&self) -> usize {
        self.orders / 20
    }

    /// When order `n` (from 0) may start under `--rate`, after the first one.
    fn start_offset(&self, n: usize) -> Option<Duration> {
        self.rate
            .map(|rate| Duration::from_secs_f64(n as f64 / rate))
    }
}

/// The nearest-rank `percent`-th percentile of `sorted` (ascending): the smallest value that at
/// least `percent`% of the values do not exceed. `None` for no values; `percent` above 100 counts
/// as 100.
pub fn percentile<T: Copy>(sorted: &[T], percent: u32) -> Option<T> {
    let rank = (percent.min(100) as usize * sorted.len()).div_ceil(100);
    sorted.get(rank.max(1) - 1).copied()
}

/// A latency distribution: p50, p90, p99 (nearest rank) and the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// How many samples.
    pub count: usize,
    /// The median.
    pub p50: Duration,
    /// The 90th percentile.
    pub p90: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The largest sample.
    pub max: Duration,
}

impl Summary {
    /// The distribution of `samples` (any order); `None` without samples.
    pub fn of(samples: &[Duration]) -> Option<Self> {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        Some(Self {
            count: sorted.len(),
            p50: percentile(&sorted, 50)?,
            p90: percentile(&sorted, 90)?,
            p99: percentile(&sorted, 99)?,
            max: *sorted.last()?,
        })
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {}  p90 {}  p99 {}  max {}  (n = {})",
            figure(self.p50),
            figure(self.p90),
            figure(self.p99),
            figure(self.max),
            self.count
        )
    }
}

/// A duration as a person reads it: milliseconds below a second, seconds above.
pub fn figure(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
    } else {
        format!("{:.2} s", duration.as_secs_f64())
    }
}

/// Orders per second: `count` orders over `window`; `None` for an empty window.
pub fn throughput(count: usize, window: Duration) -> Option<f64> {
    let seconds = window.as_secs_f64();
    (count > 0 && seconds > 0.0).then(|| count as f64 / seconds)
}

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The settings it ran with.
    pub settings: Settings,
    /// The API's base URL.
    pub api: String,
    /// The run's customer id.
    pub customer: String,
    /// Orders that `POST /orders` placed (201 with an order id).
    pub placed: usize,
    /// Failed requests by route and status (`POST /orders 503`, `GET /orders/{id} timeout`).
    pub failures: BTreeMap<String, usize>,
    /// Polls sent (`GET /orders/{id}`).
    pub polls: usize,
    /// Each placed order's `POST /orders` latency.
    pub post_latencies: Vec<Duration>,
    /// Each poll's latency (answered ones).
    pub poll_latencies: Vec<Duration>,
    /// Each scheduled order's time from `POST` to the view showing the delivery scheduled.
    pub end_to_end: Vec<Duration>,
    /// When each placed order's `POST /orders` was answered, from the run's start (the
    /// throughput chart's).
    pub placed_at: Vec<Duration>,
    /// When each scheduled order was seen scheduled, from the run's start (the throughput
    /// chart's).
    pub scheduled_at: Vec<Duration>,
    /// Each scheduled order's time from `POST` to its `DeliveryScheduled` event (the timeline's
    /// time), without the projection and the polling.
    pub scheduled_stored: Vec<Duration>,
    /// Placed orders whose delivery did not show as scheduled within [`SCHEDULE_TIMEOUT`].
    pub timed_out: usize,
    /// Placed orders still waiting when the run stopped early.
    pub abandoned: usize,
    /// From the first `POST` to the last order seen scheduled.
    pub scheduling_window: Duration,
    /// The whole run.
    pub wall: Duration,
    /// When the run started.
    pub started_at: Option<DateTime<Utc>>,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
}

impl Report {
    /// The run's verdict: an error when it stopped early or an order was not scheduled in time.
    pub fn verdict(&self) -> Result<()> {
        if let Some(reason) = &self.stopped {
            bail!("the load run stopped early: {reason}");
        }
        if self.timed_out > 0 {
            bail!(
                "{} order(s) were not scheduled within {SCHEDULE_TIMEOUT:?}",
                self.timed_out
            );
        }
        Ok(())
    }

    /// The figures by name, as printed (the HTML report's table holds the same).
    pub fn figures(&self) -> Vec<(String, String)> {
        let settings = &self.settings;
        let rate = settings
            .rate
            .map_or_else(|| "unpaced".to_owned(), |r| format!("{r} orders/s"));
        let none = || "-".to_owned();
        let summary =
            |samples: &[Duration]| Summary::of(samples).map_or_else(none, |s| s.to_string());
        let failed: usize = self.failures.values().sum();
        let mut rows = vec![
            (
                "settings".to_owned(),
                format!(
                    "N = {} orders, C = {} in flight, R = {rate}",
                    settings.orders, settings.concurrency
                ),
            ),
            (
                "api".to_owned(),
                format!("{} (customer {})", self.api, self.customer),
            ),
            (
                "orders placed".to_owned(),
                format!("{} of {}", self.placed, settings.orders),
            ),
            (
                "orders scheduled".to_owned(),
                format!(
                    "{} ({} not within {} s, {} abandoned)",
                    self.end_to_end.len(),
                    self.timed_out,
                    SCHEDULE_TIMEOUT.as_secs(),
                    self.abandoned
                ),
            ),
            ("failed requests".to_owned(), failed.to_string()),
        ];
        rows.extend(
            self.failures
                .iter()
                .map(|(what, count)| (format!("  {what}"), count.to_string())),
        );
        let sustained = throughput(self.end_to_end.len(), self.scheduling_window)
            .map_or_else(none, |t| format!("{t:.2} orders/s"));
        rows.extend([
            (
                "POST /orders latency".to_owned(),
                summary(&self.post_latencies),
            ),
            (
                "POST → delivery scheduled".to_owned(),
                format!(
                    "{}  (seen in GET /orders/{{id}})",
                    summary(&self.end_to_end)
                ),
            ),
            (
                "POST → DeliveryScheduled event".to_owned(),
                format!(
                    "{}  (the event's time in the timeline: before projection and polling)",
                    summary(&self.scheduled_stored)
                ),
            ),
            (
                "GET /orders/{id} (polls)".to_owned(),
                format!("{}  ({} sent)", summary(&self.poll_latencies), self.polls),
            ),
            (
                "throughput (scheduled)".to_owned(),
                format!(
                    "{sustained}  ({} scheduled in {:.1} s, first POST → last scheduled)",
                    self.end_to_end.len(),
                    self.scheduling_window.as_secs_f64()
                ),
            ),
            (
                "wall time".to_owned(),
                format!("{:.1} s", self.wall.as_secs_f64()),
            ),
        ]);
        if let Some(reason) = &self.stopped {
            rows.push(("stopped early".to_owned(), reason.clone()));
        }
        rows
    }

    /// The run as a self-contained HTML page: the figures, the latency distribution of the
    /// `POST`s and of the orders end to end, and the throughput over time, as charts.
    pub fn html(&self) -> Result<String> {
        let settings = &self.settings;
        report_html::render(&report_html::Page {
            title: "orderflow load",
            started_at: self.started_at,
            settings: vec![
                ("api".to_owned(), self.api.clone()),
                ("orders (N)".to_owned(), settings.orders.to_string()),
                (
                    "in flight at most (C)".to_owned(),
                    settings.concurrency.to_string(),
                ),
                (
                    "rate (R)".to_owned(),
                    settings
                        .rate
                        .map_or_else(|| "unpaced".to_owned(), |r| format!("{r} orders/s")),
                ),
            ],
            figures: self.figures(),
            latencies: vec![
                Series {
                    name: "POST /orders",
                    samples: &self.post_latencies,
                },
                Series {
                    name: "POST → delivery scheduled (seen)",
                    samples: &self.end_to_end,
                },
                Series {
                    name: "POST → DeliveryScheduled event",
                    samples: &self.scheduled_stored,
                },
            ],
            completions: vec![
                Series {
                    name: "orders placed (POST answered)",
                    samples: &self.placed_at,
                },
                Series {
                    name: "orders seen scheduled",
                    samples: &self.scheduled_at,
                },
            ],
        })
    }

    /// Writes [`Report::html`] to `path`.
    pub fn write_html(&self, path: &Path) -> Result<()> {
        report_html::write(path, &self.html()?)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = self.figures();
        for (n, (name, value)) in rows.iter().enumerate() {
            if n > 0 {
                writeln!(f)?;
            }
            write!(f, "{name:<31} {value}")?;
        }
        Ok(())
    }
}

/// How one order went.
#[derive(Debug)]
enum Outcome {
    /// `POST /orders` failed.
    NotPlaced,
    /// The view showed the delivery scheduled.
    Scheduled {
        posted: Instant,
        post: Duration,
        end_to_end: Duration,
        stored: Option<Duration>,
        seen: Instant,
    },
    /// Placed; the view did not show the delivery scheduled in time (or the run stopped).
    Unscheduled {
        posted: Instant,
        post: Duration,
        timed_out: bool,
    },
}

/// What the order tasks add up as they go.
#[derive(Debug, Default)]
struct Tally {
    failures: BTreeMap<String, usize>,
    failed: usize,
    polls: usize,
    poll_latencies: Vec<Duration>,
    stopped: Option<String>,
}

/// One run, shared by its tasks.
struct Run {
    client: HttpClient,
    api: String,
    customer: String,
    /// The customer's `Authorization` header value.
    bearer: String,
    budget: usize,
    poll_window: usize,
    poll_slots: Semaphore,
    outstanding: Mutex<BTreeSet<usize>>,
    /// Woken whenever an order leaves `outstanding`: the orders waiting for their turn look again.
    turn: Notify,
    cancel: CancellationToken,
    placed: AtomicUsize,
    scheduled: AtomicUsize,
    tally: Mutex<Tally>,
}

impl Run {
    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops the run (the first reason wins).
    fn stop(&self, reason: String) {
        self.tally().stopped.get_or_insert(reason);
        self.cancel.cancel();
    }

    /// Counts a failed request; stops the run once the failures exceed the budget.
    fn fail(&self, what: String) {
        let failed = {
            let mut tally = self.tally();
            *tally.failures.entry(what).or_default() += 1;
            tally.failed += 1;
            tally.failed
        };
        if failed > self.budget {
            self.stop(format!(
                "{failed} requests failed, more than 5% of the orders (at most {} tolerated)",
                self.budget
            ));
        }
    }

    /// Sends a request; the answer's JSON on a 2xx, `None` (the failure counted) otherwise, or
    /// when the run stops first.
    async fn call(
        &self,
        method: Method,
        path: &str,
        route: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Option<Value> {
        let url = format!("{}{path}", self.api);
        let mut headers: Vec<(&str, &str)> = idempotency_key
            .map(|key| ("idempotency-key", key))
            .into_iter()
            .collect();
        headers.push(("authorization", &self.bearer));
        let request = match json_request(method.clone(), &url, body, &headers) {
            Ok(request) => request,
            Err(error) => {
                self.fail(format!("{method} {route} unsendable ({error})"));
                return None;
            }
        };
        let sent = self
            .cancel
            .run_until_cancelled(self.client.send(request, REQUEST_TIMEOUT))
            .await?;
        let failure = match sent {
            Ok(reply) if reply.status.is_success() => {
                match serde_json::from_slice::<Value>(&reply.body) {
                    Ok(value) => return Some(value),
                    Err(_) => format!("{} (not JSON)", reply.status.as_u16()),
                }
            }
            Ok(reply) => reply.status.as_u16().to_string(),
            Err(HttpError::Timeout(_)) => "timeout".to_owned(),
            Err(HttpError::Transport(_)) => "connection error".to_owned(),
        };
        self.fail(format!("{method} {route} {failure}"));
        None
    }

    /// Places order `n` (holding `slot`, one of the C), then follows it until its delivery shows
    /// scheduled.
    async fn order(self: Arc<Self>, n: usize, slot: OwnedSemaphorePermit) -> Outcome {
        let key = format!("{}-{n}", self.customer);
        let body = order_body(BASKET);
        let posted_at = Utc::now();
        let posted = Instant::now();
        let placed = self
            .call(Method::POST, "/orders", "/orders", Some(&body), Some(&key))
            .await;
        let post = posted.elapsed();
        drop(slot);
        let Some(placed) = placed else {
            return Outcome::NotPlaced;
        };
        let Some(order_id) = placed["order_id"].as_str() else {
            self.fail("POST /orders 201 without an order_id".to_owned());
            return Outcome::NotPlaced;
        };
        self.placed.fetch_add(1, Ordering::Relaxed);
        self.outstanding().insert(n);
        let followed = self.follow(n, order_id, posted).await;
        self.outstanding().remove(&n);
        self.turn.notify_waiters();
        match followed {
            Ok((view, seen)) => {
                self.scheduled.fetch_add(1, Ordering::Relaxed);
                Outcome::Scheduled {
                    posted,
                    post,
                    end_to_end: seen - posted,
                    stored: scheduled_after(&view, posted_at),
                    seen,
                }
            }
            Err(timed_out) => Outcome::Unscheduled {
                posted,
                post,
                timed_out,
            },
        }
    }

    /// Whether order `n` is among the C oldest orders not yet seen scheduled: only those are
    /// polled, as the pipeline schedules about in order.
    fn may_poll(&self, n: usize) -> bool {
        self.outstanding()
            .iter()
            .take(self.poll_window)
            .any(|&m| m == n)
    }

    fn outstanding(&self) -> std::sync::MutexGuard<'_, BTreeSet<usize>> {
        self.outstanding
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Polls order `n`'s view until the delivery shows scheduled: the view and when it was read;
    /// `Err(true)` when [`SCHEDULE_TIMEOUT`] passed, `Err(false)` when the run stopped.
    async fn follow(
        &self,
        n: usize,
        order_id: &str,
        posted: Instant,
    ) -> Result<(Value, Instant), bool> {
        let path = format!("/orders/{order_id}");
        // An order that waited for its turn among the polled ones is polled at once when its turn
        // comes (the pipeline schedules about in order: it is likely scheduled already); one
        // polled again waits POLL_INTERVAL.
        let mut waited_turn = false;
        loop {
            if posted.elapsed() >= SCHEDULE_TIMEOUT {
                return Err(true);
            }
            let waited = self
                .cancel
                .run_until_cancelled(async {
                    let turn = self.turn.notified();
                    if !self.may_poll(n) {
                        // Until an older order leaves (bounded, so the timeout is still checked).
                        let _ = tokio::time::timeout(TURN_WAIT, turn).await;
                        return None;
                    }
                    if !waited_turn {
                        tokio::time::sleep(POLL_INTERVAL).await;
                    }
                    self.poll_slots.acquire().await.ok()
                })
                .await;
            let _poll_slot = match waited {
                None => return Err(false),
                Some(None) => {
                    waited_turn = true;
                    continue;
                }
                Some(Some(slot)) => slot,
            };
            waited_turn = false;
            self.tally().polls += 1;
            let asked = Instant::now();
            let Some(view) = self
                .call(Method::GET, &path, "/orders/{id}", None, None)
                .await
            else {
                continue;
            };
            let seen = Instant::now();
            self.tally().poll_latencies.push(seen - asked);
            if delivery_status(&view) == "scheduled" {
                return Ok((view, seen));
            }
        }
    }
}

/// From `posted_at` to the `DeliveryScheduled` entry of the view's timeline (the server's clock,
/// the same machine's): when the delivery was scheduled, before the projector made it visible.
fn scheduled_after(view: &Value, posted_at: DateTime<Utc>) -> Option<Duration> {
    let entry = view["timeline"]
        .as_array()?
        .iter()
        .find(|entry| entry["event_type"] == "DeliveryScheduled")?;
    let at = DateTime::parse_from_rfc3339(entry["occurred_at"].as_str()?).ok()?;
    (at.with_timezone(&Utc) - posted_at).to_std().ok()
}

/// Runs the load against the API at `api` and prints the figures (progress on stderr); fails
/// when the run stopped early or an order was not scheduled in time.
pub async fn load(api: &str, settings: Settings, customer: &SignedIn) -> Result<()> {
    load_with_html(api, settings, customer, None).await
}

/// [`load`], and writes the HTML report ([`Report::html`]) to `html` when given — also when the
/// run failed, since its figures are printed either way.
#[allow(clippy::print_stdout)]
pub async fn load_with_html(
    api: &str,
    settings: Settings,
    customer: &SignedIn,
    html: Option<&Path>,
) -> Result<()> {
    let report = measure(api, settings.validated()?, customer).await;
    println!("{report}");
    if let Some(path) = html {
        report.write_html(path)?;
        eprintln!("load: the report is in {}", path.display());
    }
    report.verdict()
}

/// Runs the load against the API at `api` and returns what it measured.
pub async fn measure(api: &str, settings: Settings, customer: &SignedIn) -> Report {
    let stamp = Utc::now().format("%Y%m%d%H%M%S%3f").to_string();
    let run = Arc::new(Run {
        client: HttpClient::new(),
        api: api.trim_end_matches('/').to_owned(),
        customer: format!("load-{stamp}"),
        bearer: customer.bearer(),
        budget: settings.failure_budget(),
        poll_window: settings.concurrency,
        poll_slots: Semaphore::new(settings.concurrency),
        outstanding: Mutex::default(),
        turn: Notify::new(),
        cancel: CancellationToken::new(),
        placed: AtomicUsize::new(0),
        scheduled: AtomicUsize::new(0),
        tally: Mutex::new(Tally::default()),
    });
    eprintln!(
        "load: {} orders for customer {} through {}, {} in flight at most",
        settings.orders, run.customer, run.api, settings.concurrency
    );
    let started_at = Utc::now();
    let started = Instant::now();
    let watchdog = tokio::spawn(watch(run.clone(), settings.clone(), started));

    let post_slots = Arc::new(Semaphore::new(settings.concurrency));
    let mut orders = JoinSet::new();
    for n in 0..settings.orders {
        if let Some(offset) = settings.start_offset(n) {
            let slot = tokio::time::sleep_until((started + offset).into());
            if run.cancel.run_until_cancelled(slot).await.is_none() {
                break;
            }
        }
        let Some(Ok(slot)) = run
            .cancel
            .run_until_cancelled(post_slots.clone().acquire_owned())
            .await
        else {
            break;
        };
        orders.spawn(run.clone().order(n, slot));
    }

    let mut report = Report {
        settings,
        api: run.api.clone(),
        customer: run.customer.clone(),
        started_at: Some(started_at),
        ..Report::default()
    };
    let since_start = |at: Instant| at.saturating_duration_since(started);
    let mut first_post: Option<Instant> = None;
    let mut last_seen: Option<Instant> = None;
    while let Some(outcome) = orders.join_next().await {
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(error) => {
                run.stop(format!("an order task failed: {error}"));
                continue;
            }
        };
        let posted = match outcome {
            Outcome::NotPlaced => None,
            Outcome::Scheduled {
                posted,
                post,
                end_to_end,
                stored,
                seen,
            } => {
                report.post_latencies.push(post);
                report.placed_at.push(since_start(posted + post));
                report.end_to_end.push(end_to_end);
                report.scheduled_at.push(since_start(seen));
                report.scheduled_stored.extend(stored);
                last_seen = last_seen.max(Some(seen));
                Some(posted)
            }
            Outcome::Unscheduled {
                posted,
                post,
                timed_out,
            } => {
                report.post_latencies.push(post);
                report.placed_at.push(since_start(posted + post));
                if timed_out {
                    report.timed_out += 1;
                } else {
                    report.abandoned += 1;
                }
                Some(posted)
            }
        };
        first_post = match (first_post, posted) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    watchdog.abort();
    report.wall = started.elapsed();
    if let (Some(first), Some(last)) = (first_post, last_seen) {
        report.scheduling_window = last.saturating_duration_since(first);
    }
    report.placed = run.placed.load(Ordering::Relaxed);
    let mut tally = run.tally();
    report.failures = std::mem::take(&mut tally.failures);
    report.polls = tally.polls;
    report.poll_latencies = std::mem::take(&mut tally.poll_latencies);
    report.stopped = tally.stopped.take();
    report
}

/// Stops the run at its deadline; reports progress on stderr meanwhile.
async fn watch(run: Arc<Run>, settings: Settings, started: Instant) {
    let deadline = started + settings.deadline();
    let line = crate::progress::Progress::stderr();
    let every = line.every(PROGRESS_EVERY);
    let mut progress = tokio::time::interval_at((started + every).into(), every);
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(deadline.into()) => {
                run.stop(format!(
                    "the run's deadline ({} s) passed",
                    settings.deadline().as_secs()
                ));
                return;
            }
            _ = progress.tick() => {
                let failed = run.tally().failed;
                line.update(format!(
                    "{:>4} s: {} of {} placed, {} scheduled, {failed} failed request(s)",
                    started.elapsed().as_secs(),
                    run.placed.load(Ordering::Relaxed),
                    settings.orders,
                    run.scheduled.load(Ordering::Relaxed),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::convert::Infallible;

    use bytes::Bytes;
    use http::{Request, Response, StatusCode};
    use http_body_util::{BodyExt, Full};
    use hyper::body::Incoming;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use serde_json::json;
    use tokio::net::TcpListener;

    use super::*;

    /// An API that places every order (or answers `post_status`) and shows an order's delivery
    /// scheduled from its `polls_until_scheduled`-th poll on; it remembers what it was sent.
    struct FakeApi {
        post_status: StatusCode,
        polls_until_scheduled: usize,
        keys: Mutex<Vec<String>>,
        customers: Mutex<Vec<String>>,
        polls: Mutex<HashMap<String, usize>>,
        in_flight: AtomicUsize,
        most_in_flight: AtomicUsize,
    }

    fn test_customer() -> SignedIn {
        SignedIn {
            subject: "cust-load".into(),
            access_token: "test-token".into(),
        }
    }

    impl FakeApi {
        fn new(post_status: StatusCode, polls_until_scheduled: usize) -> Arc<Self> {
            Arc::new(Self {
                post_status,
                polls_until_scheduled,
                keys: Mutex::default(),
                customers: Mutex::default(),
                polls: Mutex::default(),
                in_flight: AtomicUsize::new(0),
                most_in_flight: AtomicUsize::new(0),
            })
        }

        async fn answer(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_in_flight.fetch_max(now, Ordering::SeqCst);
            // Long enough for requests to overlap if the client let them.
            tokio::time::sleep(Duration::from_millis(5)).await;
            let response = self.respond(request).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            response
        }

        async fn respond(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
            let (parts, body) = request.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            let path = parts.uri.path().to_owned();
            let (status, answer) = if parts.method == Method::POST && path == "/orders" {
                let order: Value = serde_json::from_slice(&body).unwrap();
                let key = parts.headers["idempotency-key"]
                    .to_str()
                    .unwrap()
                    .to_owned();
                let mut keys = self.keys.lock().unwrap();
                keys.push(key);
                assert!(
                    order.get("customer_id").is_none(),
                    "the caller is the customer"
                );
                let customer = parts.headers["authorization"].to_str().unwrap().to_owned();
                self.customers.lock().unwrap().push(customer);
                let order_id = format!("o-{}", keys.len());
                (self.post_status, json!({"order_id": order_id}))
            } else {
                let order_id = path.trim_start_matches("/orders/").to_owned();
                let mut polls = self.polls.lock().unwrap();
                let seen = polls.entry(order_id.clone()).or_default();
                *seen += 1;
                let view = if *seen >= self.polls_until_scheduled {
                    json!({
                        "order_id": order_id,
                        "delivery": {"status": "scheduled"},
                        "timeline": [
                            {"event_type": "OrderPlaced", "occurred_at": Utc::now()},
                            {"event_type": "DeliveryScheduled", "occurred_at": Utc::now()},
                        ],
                    })
                } else {
                    json!({"order_id": order_id, "timeline": []})
                };
                (StatusCode::OK, view)
            };
            let mut response = Response::new(Full::new(Bytes::from(answer.to_string())));
            *response.status_mut() = status;
            response
        }

        /// Serves on 127.0.0.1 (a free port) until the test ends; the base URL.
        async fn serve(self: &Arc<Self>) -> String {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let api = self.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let api = api.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |request| {
                            let api = api.clone();
                            async move { Ok::<_, Infallible>(api.answer(request).await) }
                        });
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
            format!("http://{address}/")
        }
    }

    #[tokio::test]
    async fn every_order_is_placed_once_and_followed_until_scheduled() {
        let fake = FakeApi::new(StatusCode::CREATED, 3);
        let api = fake.serve().await;
        let settings = Settings {
            orders: 6,
            concurrency: 2,
            rate: None,
        };
        let report = measure(&api, settings, &test_customer()).await;

        assert_eq!((report.placed, report.end_to_end.len()), (6, 6));
        assert_eq!(report.post_latencies.len(), 6);
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        assert_eq!(
            (
                report.timed_out,
                report.abandoned,
                report.stopped.as_deref()
            ),
            (0, 0, None)
        );
        // Three polls per order, each after a 100 ms pause (an order that waited for its turn is
        // polled at once when it comes).
        assert_eq!(report.polls, 18);
        assert!(report.end_to_end.iter().all(|d| *d >= 3 * POLL_INTERVAL));
        assert_eq!(report.scheduled_stored.len(), 6);
        assert!(report.scheduling_window >= 3 * POLL_INTERVAL);
        assert!(report.verdict().is_ok());
        // When each order was placed and seen scheduled, from the run's start: within the run, and
        // each order seen scheduled after the first was placed.
        assert_eq!((report.placed_at.len(), report.scheduled_at.len()), (6, 6));
        assert!(
            report
                .placed_at
                .iter()
                .chain(&report.scheduled_at)
                .all(|at| *at <= report.wall)
        );
        let first_placed = report.placed_at.iter().min().copied().unwrap();
        assert!(
            report
                .scheduled_at
                .iter()
                .all(|at| *at >= first_placed + 2 * POLL_INTERVAL)
        );
        assert!(report.started_at.is_some());
        assert_eq!(report.html().unwrap().matches("<svg").count(), 2);

        let mut keys = fake.keys.lock().unwrap().clone();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 6, "one idempotency key per order");
        // C = 2 bounds the POSTs and, separately, the polls.
        assert!(fake.most_in_flight.load(Ordering::SeqCst) <= 4);
        let customers = fake.customers.lock().unwrap().clone();
        assert!(
            customers.iter().all(|c| c == "Bearer test-token"),
            "every request carries the customer's token: {customers:?}"
        );
        assert!(report.customer.starts_with("load-"));
    }

    #[tokio::test]
    async fn a_run_stops_once_more_than_five_percent_of_requests_fail() {
        let fake = FakeApi::new(StatusCode::SERVICE_UNAVAILABLE, 1);
        let api = fake.serve().await;
        let settings = Settings {
            orders: 40,
            concurrency: 1,
            rate: None,
        };
        let report = measure(&api, settings, &test_customer()).await;

        // 40 orders tolerate 2 failures; the third stops the run.
        assert_eq!(
            report.failures,
            BTreeMap::from([("POST /orders 503".to_owned(), 3)])
        );
        assert_eq!(fake.keys.lock().unwrap().len(), 3);
        assert_eq!((report.placed, report.end_to_end.len()), (0, 0));
        assert!(
            report
                .stopped
                .as_deref()
                .is_some_and(|r| r.starts_with("3 requests failed")),
            "{:?}",
            report.stopped
        );
        assert!(report.verdict().is_err());
        assert!(
            report
                .to_string()
                .contains("POST → delivery scheduled       -")
        );
    }

    fn ms(values: impl IntoIterator<Item = u64>) -> Vec<Duration> {
        values.into_iter().map(Duration::from_millis).collect()
    }

    #[test]
    fn no_values_have_no_percentile() {
        assert_eq!(percentile::<u32>(&[], 50), None);
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn one_value_is_every_percentile() {
        for percent in [0, 1, 50, 90, 99, 100] {
            assert_eq!(percentile(&[7], percent), Some(7));
        }
        let one = Summary::of(&ms([250])).map(|s| (s.count, s.p50, s.p99, s.max));
        let d = Duration::from_millis(250);
        assert_eq!(one, Some((1, d, d, d)));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let hundred: Vec<u32> = (1..=100).collect();
        let at = |p| percentile(&hundred, p);
        assert_eq!(
            (at(0), at(1), at(50), at(90), at(99), at(100), at(250)),
            (
                Some(1),
                Some(1),
                Some(50),
                Some(90),
                Some(99),
                Some(100),
                Some(100)
            )
        );
        let ten: Vec<u32> = (1..=10).collect();
        // Rank ⌈p·n/100⌉: 5, 9 and 10 of 10.
        assert_eq!(
            (
                percentile(&ten, 50),
                percentile(&ten, 90),
                percentile(&ten, 99)
            ),
            (Some(5), Some(9), Some(10))
        );
        // Rank ⌈0.5·3⌉ = 2, ⌈0.9·3⌉ = 3.
        assert_eq!(
            (percentile(&[1, 2, 3], 50), percentile(&[1, 2, 3], 90)),
            (Some(2), Some(3))
        );
    }

    #[test]
    fn a_summary_sorts_its_samples_first() {
        // 1..=200 ms, out of order.
        let mut samples = ms((1..=200).rev());
        samples.swap(0, 150);
        let summary = Summary::of(&samples);
        assert_eq!(
            summary,
            Some(Summary {
                count: 200,
                p50: Duration::from_millis(100),
                p90: Duration::from_millis(180),
                p99: Duration::from_millis(198),
                max: Duration::from_millis(200),
            })
        );
        assert_eq!(
            summary.map(|s| s.to_string()).as_deref(),
            Some("p50 100.0 ms  p90 180.0 ms  p99 198.0 ms  max 200.0 ms  (n = 200)")
        );
        let skewed = Summary::of(&ms([40, 40, 40, 40, 40, 40, 40, 40, 40, 2_500]));
        assert_eq!(
            skewed.map(|s| s.to_string()).as_deref(),
            Some("p50 40.0 ms  p90 40.0 ms  p99 2.50 s  max 2.50 s  (n = 10)")
        );
    }

    #[test]
    fn the_scheduling_time_is_read_from_the_timeline() {
        let posted_at = DateTime::parse_from_rfc3339("2026-11-28T10:15:40Z")
            .unwrap()
            .with_timezone(&Utc);
        let view = json!({"timeline": [
            {"occurred_at": "2026-11-28T10:15:40.120Z", "event_type": "OrderPlaced"},
            {"occurred_at": "2026-11-28T10:15:42.5Z", "event_type": "DeliveryScheduled"},
        ]});
        assert_eq!(
            scheduled_after(&view, posted_at),
            Some(Duration::from_millis(2500))
        );
        let not_yet = json!({"timeline": [{"occurred_at": "2026-11-28T10:15:40.120Z", "event_type": "OrderPlaced"}]});
        assert_eq!(scheduled_after(&not_yet, posted_at), None);
        // A clock that went backwards gives no figure rather than a wrong one.
        let earlier = json!({"timeline": [{"occurred_at": "2026-11-28T10:15:39Z", "event_type": "DeliveryScheduled"}]});
        assert_eq!(scheduled_after(&earlier, posted_at), None);
    }

    #[test]
    fn throughput_is_orders_over_the_window() {
        assert_eq!(throughput(200, Duration::from_secs(80)), Some(2.5));
        assert_eq!(throughput(0, Duration::from_secs(80)), None);
        assert_eq!(throughput(5, Duration::ZERO), None);
    }

    #[test]
    fn settings_bound_the_run() {
        let settings = Settings::default();
        assert_eq!(settings.deadline(), Duration::from_secs(320));
        assert_eq!(settings.failure_budget(), 10);
        assert_eq!(
            Settings {
                orders: 5,
                ..Settings::default()
            }
            .failure_budget(),
            0
        );
        let paced = Settings {
            rate: Some(4.0),
            ..Settings::default()
        };
        assert_eq!(paced.start_offset(6), Some(Duration::from_millis(1500)));
        assert_eq!(settings.start_offset(6), None);
        for bad in [
            Settings {
                orders: 0,
                ..Settings::default()
            },
            Settings {
                concurrency: 0,
                ..Settings::default()
            },
            Settings {
                rate: Some(0.0),
                ..Settings::default()
            },
            Settings {
                rate: Some(f64::NAN),
                ..Settings::default()
            },
        ] {
            assert!(bad.clone().validated().is_err(), "{bad:?}");
        }
        assert!(paced.validated().is_ok());
    }

    /// A run of 100 orders: POSTs of 2–200 ms, end to end 1.01–2.00 s, ten orders scheduled in
    /// each second of ten.
    fn charted_report() -> Report {
        Report {
            settings: Settings {
                orders: 100,
                rate: Some(10.0),
                ..Settings::default()
            },
            api: "http://127.0.0.1:4000".into(),
            customer: "load-<1>".into(),
            placed: 100,
            failures: BTreeMap::from([("GET /orders/{id} timeout".to_owned(), 2)]),
            polls: 900,
            post_latencies: ms((1..=100).map(|n| n * 2)),
            poll_latencies: ms((1..=900).map(|n| n % 30 + 5)),
            end_to_end: ms((1..=100).rev().map(|n| 1_000 + n * 10)),
            scheduled_stored: ms((1..=100).map(|n| 500 + n * 5)),
            placed_at: ms((0..100).map(|n| n * 100 + 50)),
            scheduled_at: ms((0..100).map(|n| 1_000 + n * 100)),
            scheduling_window: Duration::from_secs(11),
            wall: Duration::from_secs(12),
            started_at: DateTime::parse_from_rfc3339("2026-12-01T10:15:03Z")
                .ok()
                .map(|at| at.with_timezone(&Utc)),
            ..Report::default()
        }
    }

    #[test]
    fn the_html_report_shows_the_figures_beside_two_charts_and_needs_nothing_else() {
        let report = charted_report();
        let html = report.html().unwrap();

        assert!(html.starts_with("<!DOCTYPE html>"));
        assert_eq!(html.matches("<svg").count(), 2, "the two charts, inline");
        assert!(html.contains("Latency distribution") && html.contains("Throughput over time"));
        // Self-contained: nothing is fetched, nothing runs. The only addresses are the SVG
        // namespace (a name, never fetched) and the API measured (text).
        for outside in [
            "<script", "<link", "<img", "<iframe", "src=", "href=", "url(", "@import",
        ] {
            assert!(!html.contains(outside), "{outside} in the page");
        }
        let rest = html
            .replace("xmlns=\"http://www.w3.org/2000/svg\"", "")
            .replace(&report.api, "");
        assert!(!rest.contains("http"), "an address in the page");

        // The percentiles `Summary` computes, for the POSTs and end to end.
        for samples in [&report.post_latencies, &report.end_to_end] {
            let summary = Summary::of(samples).unwrap();
            for at in [summary.p50, summary.p90, summary.p99, summary.max] {
                assert!(html.contains(&format!("<td class=\"n\">{}</td>", figure(at))));
            }
        }
        assert!(html.contains("1.50 s") && html.contains("100.0 ms") && html.contains("1.99 s"));
        // Every printed figure is in the table (escaped).
        let escaped = |text: &str| {
            text.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        for (name, value) in report.figures() {
            let (name, value) = (escaped(&name), escaped(&value));
            assert!(
                html.contains(&format!("<tr><th>{name}</th><td>{value}</td></tr>")),
                "{name}: {value} not in the table"
            );
        }
        assert!(html.contains("load-&lt;1&gt;") && !html.contains("load-<1>"));
        assert!(html.contains("2026-12-01 10:15:03 UTC"));
        assert!(html.contains("orders seen scheduled") && html.contains("in 1 s buckets"));
    }

    #[test]
    fn the_html_report_is_written_to_the_file_named() {
        let report = charted_report();
        let folder = std::env::temp_dir().join(format!(
            "orderflow-load-report-{}-{}",
            std::process::id(),
            Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        let path = folder.join("nested").join("load-report.html");

        report.write_html(&path).unwrap();
        let written = std::fs::read_to_string(&path);
        std::fs::remove_dir_all(&folder).unwrap();

        assert_eq!(written.unwrap(), report.html().unwrap());
    }

    #[test]
    fn a_report_reads_as_figures_and_fails_when_cut_short() {
        let report = Report {
            settings: Settings::default(),
            api: "http://127.0.0.1:4000".into(),
            customer: "load-1".into(),
            placed: 199,
            failures: BTreeMap::from([("POST /orders 503".to_owned(), 1)]),
            polls: 3000,
            post_latencies: ms([30, 40, 50]),
            poll_latencies: ms([10, 12]),
            end_to_end: ms([3_000, 3_500]),
            scheduling_window: Duration::from_secs(4),
            wall: Duration::from_secs(5),
            ..Report::default()
        };
        let text = report.to_string();
        for line in [
            "N = 200 orders, C = 4 in flight, R = unpaced",
            "orders placed                   199 of 200",
            "failed requests                 1\n  POST /orders 503              1\n",
            "POST /orders latency            p50 40.0 ms",
            "POST → delivery scheduled       p50 3.00 s  p90 3.50 s",
            "POST → DeliveryScheduled event  -",
            "(3000 sent)",
            "throughput (scheduled)          0.50 orders/s  (2 scheduled in 4.0 s",
        ] {
            assert!(text.contains(line), "{line:?} not in\n{text}");
        }
        assert!(report.verdict().is_ok());
        let stopped = Report {
            stopped: Some("the run's deadline (320 s) passed".into()),
            ..report
        };
        assert!(
            stopped
                .to_string()
                .ends_with("stopped early                   the run's deadline (320 s) passed")
        );
        assert!(stopped.verdict().is_err());
    }
}
