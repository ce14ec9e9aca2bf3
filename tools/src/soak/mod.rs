//! `orderflow soak`: drives orders through the whole stack over HTTP, as authenticated customers
//! and couriers, through a mix of lifecycles, retrying like a real client — while the stack runs
//! with faults (`scripts/soak.sh` puts the fault-injecting proxy between the code and the
//! emulators and has the bridge deliver batches twice and drop answers) — then audits the end
//! state from the store, the views, the customers' notifications and the dead-letter queues,
//! reading around the faults ([`audit`]). It prints the figures and fails on any violation.
//!
//! | lifecycle | the client does | the end state |
//! | --- | --- | --- |
//! | completed | dispatch, complete | order completed, delivery completed |
//! | delayed k times | dispatch, k delays, complete | completed, k delays, k coupons |
//! | failed | dispatch, fail | delivery failed, order cancelled (compensated) |
//! | cancelled | cancel before dispatch | order cancelled, delivery cancelled |
//! | cancel racing dispatch | cancel and dispatch at once, then what the winner leaves | see [`Race`] |

pub mod audit;
pub mod client;
pub mod report;
pub mod stack;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use http::Method;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::demo_api::{SignedIn, delivery_status, order_body};
use client::{Answer, Client};
pub use report::{Report, Violation};

/// How long an order may take to reach a state the client waits for.
pub const STATE_TIMEOUT: Duration = Duration::from_secs(180);
/// How often the client looks at an order's view while it waits.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// How many orders.
    pub orders: usize,
    /// How many orders are under way at once.
    pub concurrency: usize,
    /// The seed of the lifecycle mix (and of the idempotency keys).
    pub seed: u64,
}

/// What an order goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lifecycle {
    /// Dispatched, completed.
    Completed,
    /// Dispatched, delayed this many times, completed.
    Delayed(u32),
    /// Dispatched, failed: the order is cancelled in compensation.
    Failed,
    /// Cancelled before dispatch.
    Cancelled,
    /// Cancelled while the courier dispatches it.
    CancelRacingDispatch,
}

impl Lifecycle {
    /// The lifecycle of the next order, from `rng` (weights 30/25/15/15/15; 1–3 delays).
    pub fn draw(rng: &mut fastrand::Rng) -> Self {
        match rng.u8(0..100) {
            0..30 => Self::Completed,
            30..55 => Self::Delayed(rng.u32(1..=3)),
            55..70 => Self::Failed,
            70..85 => Self::Cancelled,
            _ => Self::CancelRacingDispatch,
        }
    }

    /// Its name in the figures.
    pub fn name(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Delayed(_) => "delayed then completed",
            Self::Failed => "failed, compensated",
            Self::Cancelled => "cancelled before dispatch",
            Self::CancelRacingDispatch => "cancel racing dispatch",
        }
    }
}

/// How a cancel racing a dispatch came out (the rule: an order can be cancelled until it is
/// marked shipped; a cancel that lands after the dispatch but before that stands, and the parcel is
/// recalled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Race {
    /// The cancel came first: the delivery is cancelled, the dispatch refused.
    CancelFirst,
    /// Both were accepted: the order is cancelled, the dispatched parcel recalled (the courier
    /// fails it).
    Recalled,
    /// The order was shipped first: the cancel is refused, the courier completes the delivery.
    ShippedFirst,
}

/// One order the soak placed: what it was meant to go through and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// The order.
    pub order_id: String,
    /// Its customer (the token's subject).
    pub customer_id: String,
    /// What it was meant to go through.
    pub lifecycle: Lifecycle,
    /// How the race came out (races only).
    pub race: Option<Race>,
    /// Whether the client went through the whole lifecycle (if not, a violation says why, and
    /// only the order's existence is audited).
    pub finished: bool,
}

/// Who the soak acts as.
#[derive(Debug, Clone)]
pub struct Actors {
    /// Customers, used in turn.
    pub customers: Vec<SignedIn>,
    /// Couriers, used in turn (each order keeps its courier).
    pub couriers: Vec<SignedIn>,
}

/// Drives `settings.orders` orders through the API at `api`; returns what was placed and the
/// client's side of the report (requests, retries, violations seen by the client).
pub async fn drive(api: &str, settings: &Settings, actors: &Actors) -> (Vec<Placed>, Report) {
    let client = Arc::new(Client::new(api));
    let report = Arc::new(Mutex::new(Report::default()));
    let slots = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let mut rng = fastrand::Rng::with_seed(settings.seed);
    let started_at = Utc::now();
    let run = started_at.format("%H%M%S").to_string();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..settings.orders {
        let lifecycle = Lifecycle::draw(&mut rng);
        let customer = actors.customers[n % actors.customers.len()].clone();
        let courier = actors.couriers[n % actors.couriers.len()].clone();
        let key = format!("soak-{}-{run}-{n}", settings.seed);
        let (client, report, slots) = (client.clone(), report.clone(), slots.clone());
        tasks.spawn(async move {
            let _slot = slots.acquire_owned().await.ok()?;
            let order = Order {
                client: &client,
                customer: &customer,
                courier: &courier,
                lifecycle,
                key,
            };
            let mut placed = None;
            let mut timing = Timing::default();
            let outcome = order.run(&mut placed, &mut timing).await;
            let mut report = report.lock().unwrap_or_else(PoisonError::into_inner);
            timing.record(started, &mut report);
            if let Err(violation) = outcome {
                report.violations.push(violation);
            }
            placed
        });
    }
    let mut placed = Vec::with_capacity(settings.orders);
    let mut last_progress = Instant::now();
    let line = crate::progress::Progress::stderr();
    let every = line.every(Duration::from_secs(15));
    while let Some(joined) = tasks.join_next().await {
        if let Ok(Some(order)) = joined {
            placed.push(order);
        }
        if last_progress.elapsed() > every {
            last_progress = Instant::now();
            line.update(format!(
                "{} of {} orders through their lifecycle ({:.0} s)",
                placed.len(),
                settings.orders,
                started.elapsed().as_secs_f64()
            ));
        }
    }
    let mut report = Arc::try_unwrap(report)
        .map(|m| m.into_inner().unwrap_or_else(PoisonError::into_inner))
        .unwrap_or_else(|shared| {
            shared
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        });
    report.client = client.counts();
    report.drive_time = started.elapsed();
    report.started_at = Some(started_at);
    for order in placed.iter().filter(|o| o.finished) {
        *report.lifecycles.entry(order.lifecycle.name()).or_default() += 1;
    }
    (placed, report)
}

/// When one order's steps were done (the figures' latencies and the throughput over time).
#[derive(Debug, Default)]
struct Timing {
    /// `POST /orders` sent (the first attempt).
    sent: Option<Instant>,
    /// `POST /orders` answered 201 (after any retries).
    placed: Option<Instant>,
    /// The view seen showing the delivery scheduled.
    scheduled: Option<Instant>,
    /// The lifecycle's last command accepted.
    finished: Option<Instant>,
}

impl Timing {
    /// Adds the order's times to `report`: latencies from its `POST`, completions from the
    /// drive's start (`started`).
    fn record(&self, started: Instant, report: &mut Report) {
        let Some(sent) = self.sent else {
            return;
        };
        if let Some(placed) = self.placed {
            report.post_latencies.push(placed - sent);
            report
                .placed_at
                .push(placed.saturating_duration_since(started));
        }
        if let Some(scheduled) = self.scheduled {
            report.scheduled_latencies.push(scheduled - sent);
        }
        if let Some(finished) = self.finished {
            report.lifecycle_times.push(finished - sent);
            report
                .finished_at
                .push(finished.saturating_duration_since(started));
        }
    }
}

/// One order on its way.
struct Order<'a> {
    client: &'a Client,
    customer: &'a SignedIn,
    courier: &'a SignedIn,
    lifecycle: Lifecycle,
    key: String,
}

impl Order<'_> {
    /// Takes the order through its lifecycle; `placed` holds it once the API has answered 201,
    /// `timing` when each step was done.
    async fn run(&self, placed: &mut Option<Placed>, timing: &mut Timing) -> Result<(), Violation> {
        let customer = self.customer.bearer();
        let body = order_body(&[("TEA-GREEN-100G", 2), ("MUG-STONE", 1)]);
        timing.sent = Some(Instant::now());
        let answer = self
            .client
            .command(
                Method::POST,
                "/orders",
                &customer,
                Some(&body),
                Some(&self.key),
            )
            .await?;
        let order_id = match answer {
            Answer::Done(view) if view["order_id"].is_string() => {
                view["order_id"].as_str().unwrap_or_default().to_owned()
            }
            other => {
                return Err(Violation::new(
                    "order placed",
                    format!("POST /orders ({}) answered {other:?}", self.key),
                ));
            }
        };
        timing.placed = Some(Instant::now());
        let order = placed.insert(Placed {
            order_id: order_id.clone(),
            customer_id: self.customer.subject.clone(),
            lifecycle: self.lifecycle,
            race: None,
            finished: false,
        });
        self.wait(&order_id, "the delivery scheduled", |v| {
            delivery_status(v) == "scheduled"
        })
        .await?;
        timing.scheduled = Some(Instant::now());
        let courier = self.courier.bearer();
        let delivery = format!("/deliveries/d-{order_id}");
        let cancel_path = format!("/orders/{order_id}/cancel");
        let act = |action: &'static str, body: Value| {
            let path = format!("{delivery}/{action}");
            let courier = courier.clone();
            async move {
                self.client
                    .command(Method::POST, &path, &courier, Some(&body), None)
                    .await
            }
        };
        let expect_done = |what: &str, answer: Answer| match answer {
            Answer::Done(_) | Answer::AfterUncertainty(_) => Ok(()),
            other => Err(Violation::new(
                "command accepted",
                format!("order {order_id}: {what} answered {other:?}"),
            )),
        };
        match self.lifecycle {
            Lifecycle::Completed => {
                expect_done("dispatch", act("dispatch", json!({})).await?)?;
                expect_done("complete", act("complete", json!({})).await?)?;
            }
            Lifecycle::Delayed(times) => {
                expect_done("dispatch", act("dispatch", json!({})).await?)?;
                for k in 1..=times {
                    // Each delay moves the ETA a day past the promise, further each time.
                    let view = self
                        .wait(&order_id, "the delivery dispatched", |v| {
                            delivery_status(v) == "dispatched"
                        })
                        .await?;
                    let promised = view["delivery"]["promised_by"]
                        .as_str()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .map_or_else(Utc::now, |t| t.with_timezone(&Utc));
                    let new_eta = promised + chrono::Duration::days(i64::from(k));
                    let body = json!({
                        "new_eta": new_eta.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        "reason": format!("soak delay {k}"),
                    });
                    expect_done("delay", act("delay", body).await?)?;
                }
                expect_done("complete", act("complete", json!({})).await?)?;
            }
            Lifecycle::Failed => {
                expect_done("dispatch", act("dispatch", json!({})).await?)?;
                let body = json!({"reason": "soak: nobody at home"});
                expect_done("fail", act("fail", body).await?)?;
            }
            Lifecycle::Cancelled => {
                let answer = self
                    .client
                    .command(Method::POST, &cancel_path, &customer, None, None)
                    .await?;
                expect_done("cancel", answer)?;
            }
            Lifecycle::CancelRacingDispatch => {
                let (cancelled, dispatched) = tokio::join!(
                    self.client
                        .command(Method::POST, &cancel_path, &customer, None, None),
                    act("dispatch", json!({})),
                );
                let accepted = |answer: &Answer| {
                    matches!(answer, Answer::Done(_) | Answer::AfterUncertainty(_))
                };
                let (cancelled, dispatched) = (cancelled?, dispatched?);
                let race = match (accepted(&cancelled), accepted(&dispatched)) {
                    (true, false) => Race::CancelFirst,
                    (true, true) => Race::Recalled,
                    (false, true) if matches!(cancelled, Answer::Refused(409, _)) => {
                        Race::ShippedFirst
                    }
                    _ => {
                        return Err(Violation::new(
                            "command accepted",
                            format!(
                                "order {order_id}: cancel racing dispatch answered {cancelled:?} and {dispatched:?}"
                            ),
                        ));
                    }
                };
                order.race = Some(race);
                match race {
                    Race::CancelFirst => {}
                    Race::Recalled => {
                        // The order is cancelled, so the parcel comes back: the courier fails it.
                        self.wait(&order_id, "the cancellation", |v| {
                            v["status"] == "cancelled"
                        })
                        .await?;
                        let body = json!({"reason": "soak: recalled"});
                        expect_done("fail (recalled)", act("fail", body).await?)?;
                    }
                    Race::ShippedFirst => {
                        expect_done("complete", act("complete", json!({})).await?)?;
                    }
                }
            }
        }
        order.finished = true;
        timing.finished = Some(Instant::now());
        Ok(())
    }

    /// Polls the order's view (as its customer) until `done` holds.
    async fn wait(
        &self,
        order_id: &str,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Result<Value, Violation> {
        let started = Instant::now();
        let path = format!("/orders/{order_id}");
        let customer = self.customer.bearer();
        let mut last = Value::Null;
        while started.elapsed() < STATE_TIMEOUT {
            if let Answer::Done(view) = self.client.read(&path, &customer).await? {
                if done(&view) {
                    return Ok(view);
                }
                last = view;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        Err(Violation::new(
            "order progresses",
            format!(
                "order {order_id}: {what} did not show within {STATE_TIMEOUT:?} (order {}, delivery {})",
                last["status"].as_str().unwrap_or("-"),
                delivery_status(&last)
            ),
        ))
    }
}

/// Counts by name, for the figures.
pub type Counts = BTreeMap<String, u64>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_adds_its_latencies_and_completions_to_the_report() {
        let started = Instant::now();
        let at = |ms| Some(started + Duration::from_millis(ms));
        let mut report = Report::default();
        Timing {
            sent: at(1_000),
            placed: at(1_200),
            scheduled: at(3_000),
            finished: at(5_500),
        }
        .record(started, &mut report);
        // Placed, but stopped before its delivery showed scheduled.
        Timing {
            sent: at(2_000),
            placed: at(2_050),
            ..Timing::default()
        }
        .record(started, &mut report);
        // Never sent: nothing to add.
        Timing::default().record(started, &mut report);

        let ms = |values: &[u64]| -> Vec<Duration> {
            values.iter().copied().map(Duration::from_millis).collect()
        };
        assert_eq!(report.post_latencies, ms(&[200, 50]));
        assert_eq!(report.placed_at, ms(&[1_200, 2_050]));
        assert_eq!(report.scheduled_latencies, ms(&[2_000]));
        assert_eq!(report.lifecycle_times, ms(&[4_500]));
        assert_eq!(report.finished_at, ms(&[5_500]));
    }
}
