//! The soak's figures and violations, printed at the end of a run.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::Counts;
use super::stack::Options;
use crate::report_html::{self, Page, Series};

/// One broken invariant, with what showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The invariant, in words (violations are counted by it).
    pub invariant: &'static str,
    /// What showed it (ids and states, never personal data).
    pub detail: String,
}

impl Violation {
    /// A violation of `invariant`.
    pub fn new(invariant: &'static str, detail: impl Into<String>) -> Self {
        Self {
            invariant,
            detail: detail.into(),
        }
    }
}

/// Everything a run measured and found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Orders through their lifecycle, by lifecycle.
    pub lifecycles: BTreeMap<&'static str, u64>,
    /// The client's requests and retries.
    pub client: Counts,
    /// How long driving took.
    pub drive_time: Duration,
    /// How long the stack took to settle and the audit to read it.
    pub audit_time: Duration,
    /// What the audit counted (events, notifications, …).
    pub audited: Counts,
    /// The proxy's counts (requests and faults by service and kind), when it ran.
    pub proxy: Option<Value>,
    /// The bridge's counts (batches, duplicated, crashed), when it played faults.
    pub bridge: Option<Value>,
    /// Every violation found.
    pub violations: Vec<Violation>,
    /// When driving started.
    pub started_at: Option<DateTime<Utc>>,
    /// Each placed order's `POST /orders`, from the first attempt to the 201 (retries included).
    pub post_latencies: Vec<Duration>,
    /// Each order's time from its `POST` to its view showing the delivery scheduled.
    pub scheduled_latencies: Vec<Duration>,
    /// Each finished order's time from its `POST` to its lifecycle's last command accepted.
    pub lifecycle_times: Vec<Duration>,
    /// When each order was placed (its `POST` answered 201), from the start of driving.
    pub placed_at: Vec<Duration>,
    /// When each order finished its lifecycle, from the start of driving.
    pub finished_at: Vec<Duration>,
}

impl Report {
    /// Violations by invariant.
    pub fn violations_by_invariant(&self) -> BTreeMap<&'static str, Vec<&str>> {
        let mut by: BTreeMap<&'static str, Vec<&str>> = BTreeMap::new();
        for violation in &self.violations {
            by.entry(violation.invariant)
                .or_default()
                .push(&violation.detail);
        }
        by
    }
}

impl Report {
    /// The figures by name (the HTML report's table): the same numbers as printed.
    pub fn figures(&self) -> Vec<(String, String)> {
        let orders: u64 = self.lifecycles.values().sum();
        let mut rows = vec![(
            "orders through their lifecycle".to_owned(),
            orders.to_string(),
        )];
        rows.extend(
            self.lifecycles
                .iter()
                .map(|(lifecycle, count)| (format!("  {lifecycle}"), count.to_string())),
        );
        rows.extend(
            self.client
                .iter()
                .map(|(name, count)| (format!("client: {name}"), count.to_string())),
        );
        if let Some(proxy) = &self.proxy {
            let faults = faults_by_kind(proxy);
            let total: u64 = faults.values().sum();
            rows.push((
                "faults injected by the proxy".to_owned(),
                format!(
                    "{total} of {} requests ({})",
                    proxy["requests"]["total"]
                        .as_u64()
                        .map_or_else(|| "?".to_owned(), |n| n.to_string()),
                    faults_by_service(proxy)
                ),
            ));
            rows.extend(
                faults
                    .into_iter()
                    .map(|(kind, count)| (format!("  {kind}"), count.to_string())),
            );
        }
        if let Some(bridge) = &self.bridge {
            rows.push((
                "bridge".to_owned(),
                format!(
                    "{} batches, {} delivered twice, {} answers dropped after their side effects (crashes)",
                    bridge["batches"], bridge["duplicated"], bridge["crashed"]
                ),
            ));
        }
        rows.extend(
            self.audited
                .iter()
                .map(|(name, count)| (format!("audited: {name}"), count.to_string())),
        );
        rows.push(("violations".to_owned(), self.violations.len().to_string()));
        // Each invariant's count and its first five violations, as printed.
        rows.extend(
            self.violations_by_invariant()
                .into_iter()
                .map(|(invariant, details)| {
                    let shown = details.iter().take(5).copied().collect::<Vec<_>>();
                    (
                        format!("  {invariant}"),
                        format!("{}: {}", details.len(), shown.join("; ")),
                    )
                }),
        );
        rows.extend([
            (
                "driving".to_owned(),
                format!("{:.1} s", self.drive_time.as_secs_f64()),
            ),
            (
                "settling and auditing".to_owned(),
                format!("{:.1} s", self.audit_time.as_secs_f64()),
            ),
        ]);
        rows
    }

    /// The run as a self-contained HTML page: the figures, the latency distribution of the
    /// orders' `POST`s, of their deliveries being scheduled and of their whole lifecycles, and
    /// the throughput over time, as charts. `options` are what the soak was told.
    pub fn html(&self, options: &Options) -> Result<String> {
        let settings = &options.settings;
        report_html::render(&Page {
            title: "orderflow soak",
            started_at: self.started_at,
            settings: vec![
                ("api".to_owned(), options.api.clone()),
                ("stage".to_owned(), options.stage.clone()),
                ("orders".to_owned(), settings.orders.to_string()),
                ("at once".to_owned(), settings.concurrency.to_string()),
                ("seed".to_owned(), settings.seed.to_string()),
                ("poison records".to_owned(), options.poison.to_string()),
            ],
            figures: self.figures(),
            latencies: vec![
                Series {
                    name: "POST /orders (retries included)",
                    samples: &self.post_latencies,
                },
                Series {
                    name: "POST → delivery scheduled (seen)",
                    samples: &self.scheduled_latencies,
                },
                Series {
                    name: "POST → lifecycle finished",
                    samples: &self.lifecycle_times,
                },
            ],
            completions: vec![
                Series {
                    name: "orders placed",
                    samples: &self.placed_at,
                },
                Series {
                    name: "orders through their lifecycle",
                    samples: &self.finished_at,
                },
            ],
        })
    }

    /// Writes [`Report::html`] to `path`.
    pub fn write_html(&self, options: &Options, path: &Path) -> Result<()> {
        report_html::write(path, &self.html(options)?)
    }
}

/// The proxy's faults by kind over all services (its stats: `{"requests": {…, "total": N},
/// "faults": {"dynamodb": {"lost": 1, …}, …, "total": {"lost": 1, …}}}`).
fn faults_by_kind(proxy: &Value) -> BTreeMap<String, u64> {
    proxy["faults"]["total"]
        .as_object()
        .map(|kinds| {
            kinds
                .iter()
                .map(|(kind, count)| (kind.clone(), count.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

/// The proxy's faults by service, in words (`dynamodb 12, sqs 3`).
fn faults_by_service(proxy: &Value) -> String {
    proxy["faults"]
        .as_object()
        .map(|services| {
            services
                .iter()
                .filter(|(service, _)| *service != "total")
                .map(|(service, kinds)| {
                    let n: u64 = kinds
                        .as_object()
                        .map_or(0, |k| k.values().filter_map(Value::as_u64).sum());
                    format!("{service} {n}")
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let orders: u64 = self.lifecycles.values().sum();
        writeln!(f, "soak: {orders} orders through their lifecycle")?;
        for (lifecycle, count) in &self.lifecycles {
            writeln!(f, "  {count:>6}  {lifecycle}")?;
        }
        writeln!(
            f,
            "time: {:.1} s driving, {:.1} s settling and auditing",
            self.drive_time.as_secs_f64(),
            self.audit_time.as_secs_f64()
        )?;
        writeln!(f, "client:")?;
        for (name, count) in &self.client {
            writeln!(f, "  {count:>6}  {name}")?;
        }
        if let Some(proxy) = &self.proxy {
            let faults = faults_by_kind(proxy);
            let total: u64 = faults.values().sum();
            writeln!(
                f,
                "faults injected by the proxy: {total} of {} requests ({})",
                proxy["requests"]["total"]
                    .as_u64()
                    .map_or_else(|| "?".to_owned(), |n| n.to_string()),
                faults_by_service(proxy)
            )?;
            for (kind, count) in faults {
                writeln!(f, "  {count:>6}  {kind}")?;
            }
        }
        if let Some(bridge) = &self.bridge {
            writeln!(
                f,
                "bridge: {} batches, {} delivered twice, {} answers dropped after their side effects (crashes)",
                bridge["batches"], bridge["duplicated"], bridge["crashed"]
            )?;
        }
        writeln!(f, "audited:")?;
        for (name, count) in &self.audited {
            writeln!(f, "  {count:>6}  {name}")?;
        }
        let by = self.violations_by_invariant();
        if by.is_empty() {
            writeln!(f, "violations: 0")?;
        } else {
            writeln!(f, "violations: {}", self.violations.len())?;
            for (invariant, details) in by {
                writeln!(f, "  {:>6}  {invariant}", details.len())?;
                for detail in details.iter().take(5) {
                    writeln!(f, "          {detail}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_figures_name_every_violation_by_invariant() {
        let report = Report {
            lifecycles: BTreeMap::from([("completed", 3), ("failed, compensated", 1)]),
            proxy: Some(json!({
                "requests": {"dynamodb": 80, "sqs": 20, "total": 100},
                "faults": {
                    "dynamodb": {"error": 2, "lost": 1},
                    "sqs": {"error": 1},
                    "total": {"error": 3, "lost": 1},
                },
            })),
            bridge: Some(json!({"batches": 10, "duplicated": 10, "crashed": 1})),
            violations: vec![
                Violation::new("exactly one DeliveryScheduled per order", "order o1: 2"),
                Violation::new("exactly one DeliveryScheduled per order", "order o2: 0"),
            ],
            ..Report::default()
        };
        let text = report.to_string();
        assert!(text.contains("soak: 4 orders"), "{text}");
        assert!(
            text.contains("faults injected by the proxy: 4 of 100 requests"),
            "{text}"
        );
        assert!(text.contains("3  error"), "{text}");
        assert!(
            text.contains("10 delivered twice, 1 answers dropped"),
            "{text}"
        );
        assert!(text.contains("violations: 2"), "{text}");
        assert!(
            text.contains("2  exactly one DeliveryScheduled per order"),
            "{text}"
        );
        assert!(Report::default().to_string().contains("violations: 0"));
    }

    fn options() -> Options {
        Options {
            api: "http://127.0.0.1:4000".into(),
            settings: super::super::Settings {
                orders: 40,
                concurrency: 8,
                seed: 7,
            },
            stage: "soak".into(),
            events_table: "events".into(),
            views_table: "views".into(),
            idempotency_table: "idempotency".into(),
            topic_arn: "arn:aws:sns:eu-west-1:000000000000:customers".into(),
            read_dynamodb: None,
            read_sqs: None,
            journal: None,
            proxy_stats: None,
            fault_stats: None,
            logs: Vec::new(),
            poison: 2,
        }
    }

    fn ms(values: impl IntoIterator<Item = u64>) -> Vec<Duration> {
        values.into_iter().map(Duration::from_millis).collect()
    }

    #[test]
    fn the_html_report_charts_the_orders_beside_the_figures() {
        let report = Report {
            lifecycles: BTreeMap::from([("completed", 30), ("failed, compensated", 10)]),
            client: Counts::from([
                ("requests".to_owned(), 400),
                ("retried after 503".to_owned(), 9),
            ]),
            violations: vec![Violation::new("order progresses", "order <o1> & more")],
            post_latencies: ms((1..=40).map(|n| n * 5)),
            scheduled_latencies: ms((1..=40).map(|n| 1_000 + n * 50)),
            lifecycle_times: ms((1..=40).map(|n| 3_000 + n * 100)),
            placed_at: ms((0..40).map(|n| n * 250)),
            finished_at: ms((0..40).map(|n| 3_000 + n * 250)),
            ..Report::default()
        };
        let html = report.html(&options()).unwrap();

        assert_eq!(html.matches("<svg").count(), 2);
        for outside in ["<script", "<link", "src=", "href=", "url("] {
            assert!(!html.contains(outside), "{outside} in the page");
        }
        for row in [
            "<tr><th>seed</th><td>7</td></tr>",
            "<tr><th>orders through their lifecycle</th><td>40</td></tr>",
            "<tr><th>  completed</th><td>30</td></tr>",
            "<tr><th>client: retried after 503</th><td>9</td></tr>",
            "<tr><th>  order progresses</th><td>1: order &lt;o1&gt; &amp; more</td></tr>",
        ] {
            assert!(html.contains(row), "{row} not in the page");
        }
        // p50 of the POSTs (100 ms) and of the scheduling (2.00 s), nearest rank.
        assert!(html.contains("<td class=\"n\">100.0 ms</td>"));
        assert!(html.contains("<td class=\"n\">2.00 s</td>"));
        assert!(html.contains("orders through their lifecycle"));
    }
}
