//! The soak's figures and violations, printed at the end of a run.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde_json::Value;

use super::Counts;

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
}
