//! The functions' metrics (docs/metrics.md): their names, units and dimensions, recorded through
//! the [`metrics`] facade where each fact happens. Which recorder receives them is the bootstrap's
//! business (`functions/registry`: CloudWatch Embedded Metric Format on stdout, one flush per
//! invocation); with none installed (tests, tools) every call here does nothing.
//!
//! Every metric carries the `Function` dimension (added by the recorder); [`HANDLER_ERRORS`] also
//! the [`ERROR_KIND`] label. Nothing else is a dimension: no ids, no customer data, so the number
//! of series stays fixed.

use chrono::{DateTime, Utc};
use metrics::Unit;

use crate::envelope::StoredEvent;

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "orderflow";
/// The dimension naming the function that emitted a metric (its Lambda function name).
pub const FUNCTION: &str = "Function";
/// The dimension of [`HANDLER_ERRORS`]: an [`ErrorKind`].
pub const ERROR_KIND: &str = "ErrorKind";

/// Orders placed (`OrderPlaced` stored).
pub const ORDERS_PLACED: &str = "OrdersPlaced";
/// Orders cancelled, by the customer or in compensation for a failed delivery.
pub const ORDERS_CANCELLED: &str = "OrdersCancelled";
/// Deliveries scheduled (`DeliveryScheduled` stored).
pub const DELIVERIES_SCHEDULED: &str = "DeliveriesScheduled";
/// Deliveries delayed, by their courier or by the overdue check.
pub const DELIVERIES_DELAYED: &str = "DeliveriesDelayed";
/// Deliveries failed (`DeliveryFailed` stored).
pub const DELIVERIES_FAILED: &str = "DeliveriesFailed";
/// Compensation coupons issued (`CouponIssued` stored).
pub const COUPONS_ISSUED: &str = "CouponsIssued";
/// Customer notifications the topic accepted.
pub const NOTIFICATIONS_SENT: &str = "NotificationsSent";
/// Stored events the bus accepted.
pub const EVENTS_PUBLISHED: &str = "EventsPublished";
/// How long after it happened the projector projected an event, in milliseconds.
pub const PROJECTOR_LAG: &str = "ProjectorLag";
/// Failures, by [`ErrorKind`].
pub const HANDLER_ERRORS: &str = "HandlerErrors";
/// A process's first invocation.
pub const COLD_START: &str = "ColdStart";

/// One metric, as the dashboard and docs/metrics.md show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    /// Its name.
    pub name: &'static str,
    /// Its unit.
    pub unit: Unit,
    /// What it counts or measures.
    pub description: &'static str,
}

/// Every metric the functions emit.
pub const METRICS: &[Metric] = &[
    count(ORDERS_PLACED, "orders placed"),
    count(
        ORDERS_CANCELLED,
        "orders cancelled (by the customer, or for a failed delivery)",
    ),
    count(DELIVERIES_SCHEDULED, "deliveries scheduled"),
    count(
        DELIVERIES_DELAYED,
        "deliveries delayed (by the courier, or by the overdue check)",
    ),
    count(DELIVERIES_FAILED, "deliveries failed"),
    count(COUPONS_ISSUED, "compensation coupons issued"),
    count(NOTIFICATIONS_SENT, "customer notifications published"),
    count(EVENTS_PUBLISHED, "stored events put on the bus"),
    Metric {
        name: PROJECTOR_LAG,
        unit: Unit::Milliseconds,
        description: "per projector invocation: now minus the occurred_at of the oldest event it projected",
    },
    count(
        HANDLER_ERRORS,
        "failed messages, stream records and batches, runs and requests, by ErrorKind",
    ),
    count(COLD_START, "first invocation of a process"),
];

const fn count(name: &'static str, description: &'static str) -> Metric {
    Metric {
        name,
        unit: Unit::Count,
        description,
    }
}

/// Tells the installed recorder every metric's unit (call once, after installing it).
pub fn describe() {
    for metric in METRICS {
        match metric.unit {
            Unit::Milliseconds => {
                metrics::describe_histogram!(metric.name, metric.unit, metric.description);
            }
            _ => metrics::describe_counter!(metric.name, metric.unit, metric.description),
        }
    }
}

/// Why something failed, as a short fixed label (the [`ERROR_KIND`] dimension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Can never succeed: an undecodable message or record, a refusal no retry changes.
    Poison,
    /// A dependency failed, or time ran out: a retry may succeed.
    Transient,
    /// A request the API refused as malformed (400, 413, 415, 422).
    Validation,
    /// The service is at fault (a 500).
    Internal,
}

impl ErrorKind {
    /// Every kind.
    pub const ALL: [Self; 4] = [
        Self::Poison,
        Self::Transient,
        Self::Validation,
        Self::Internal,
    ];

    /// The label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Poison => "poison",
            Self::Transient => "transient",
            Self::Validation => "validation",
            Self::Internal => "internal",
        }
    }
}

/// Counts one failure of `kind`.
pub fn handler_error(kind: ErrorKind) {
    handler_errors(kind, 1);
}

/// Counts `count` failures of `kind`.
pub fn handler_errors(kind: ErrorKind, count: usize) {
    if count > 0 {
        metrics::counter!(HANDLER_ERRORS, ERROR_KIND => kind.as_str()).increment(as_u64(count));
    }
}

/// The metric counting stored events of `event_type`, if one does.
pub fn fact_metric(event_type: &str) -> Option<&'static str> {
    Some(match event_type {
        "OrderPlaced" => ORDERS_PLACED,
        "OrderCancelled" => ORDERS_CANCELLED,
        "DeliveryScheduled" => DELIVERIES_SCHEDULED,
        "DeliveryDelayed" => DELIVERIES_DELAYED,
        "DeliveryFailed" => DELIVERIES_FAILED,
        "CouponIssued" => COUPONS_ISSUED,
        _ => return None,
    })
}

/// Counts the facts among events just stored (see [`fact_metric`]).
pub fn events_stored(events: &[StoredEvent]) {
    for event in events {
        if let Some(name) = fact_metric(&event.event_type) {
            metrics::counter!(name).increment(1);
        }
    }
}

/// Counts one notification the topic accepted.
pub fn notification_sent() {
    metrics::counter!(NOTIFICATIONS_SENT).increment(1);
}

/// Counts `count` events the bus accepted.
pub fn events_published(count: usize) {
    if count > 0 {
        metrics::counter!(EVENTS_PUBLISHED).increment(as_u64(count));
    }
}

/// Records the projector's lag: `now` minus when the oldest event it projected happened (never
/// below zero: a clock behind the writer's is no lag).
pub fn projector_lag(oldest_occurred_at: DateTime<Utc>, now: DateTime<Utc>) {
    metrics::histogram!(PROJECTOR_LAG).record(lag_millis(oldest_occurred_at, now));
}

/// `now - occurred_at` in milliseconds, at least 0.
pub fn lag_millis(occurred_at: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    let millis = (now - occurred_at).num_milliseconds().max(0);
    // Exact below 2^53 ms (285 000 years).
    millis as f64
}

/// Counts a process's first invocation.
pub fn cold_start() {
    metrics::counter!(COLD_START).increment(1);
}

fn as_u64(count: usize) -> u64 {
    u64::try_from(count).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::events::DomainEvent;

    #[test]
    fn each_fact_is_an_event_type_that_exists_and_has_a_metric_of_its_own() {
        let facts = [
            ("OrderPlaced", ORDERS_PLACED),
            ("OrderCancelled", ORDERS_CANCELLED),
            ("DeliveryScheduled", DELIVERIES_SCHEDULED),
            ("DeliveryDelayed", DELIVERIES_DELAYED),
            ("DeliveryFailed", DELIVERIES_FAILED),
            ("CouponIssued", COUPONS_ISSUED),
        ];
        for (event_type, metric) in facts {
            assert!(
                DomainEvent::current_schema_version(event_type).is_some(),
                "{event_type} is no event type"
            );
            assert_eq!(fact_metric(event_type), Some(metric));
            assert!(METRICS.iter().any(|m| m.name == metric));
        }
        for other in ["OrderShipped", "DeliveryDispatched", "DeliveryCompleted"] {
            assert_eq!(fact_metric(other), None, "{other}");
        }
    }

    #[test]
    fn metric_names_are_unique_and_only_the_lag_is_not_a_count() {
        let mut names: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METRICS.len());
        let timed: Vec<&str> = METRICS
            .iter()
            .filter(|m| m.unit != Unit::Count)
            .map(|m| m.name)
            .collect();
        assert_eq!(timed, [PROJECTOR_LAG]);
    }

    #[test]
    fn the_lag_is_in_milliseconds_and_never_negative() {
        let at = Utc.with_ymd_and_hms(2026, 11, 28, 10, 15, 42).unwrap();
        let later = at + chrono::TimeDelta::milliseconds(1_234);
        assert_eq!(lag_millis(at, later), 1_234.0);
        assert_eq!(lag_millis(later, at), 0.0);
    }

    #[test]
    fn error_kinds_have_fixed_labels() {
        let labels: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(labels, ["poison", "transient", "validation", "internal"]);
    }
}
