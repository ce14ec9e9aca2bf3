//! Schedule expressions: `rate(N unit)` as EventBridge reads it (`rate(1 minute)`,
//! `rate(5 minutes)`, `hours`, `days`), parsed into a period. `cron(...)` is recognised and
//! refused with a clear reason: the bridge only plays rates.

use std::time::Duration;

/// Why an expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// A `cron(...)` expression (not played locally).
    #[error("{0:?}: cron schedules are not played by the local bridge")]
    Cron(String),
    /// Not a valid `rate(...)` expression.
    #[error("{expression:?}: {problem}")]
    Invalid {
        /// The expression.
        expression: String,
        /// What is wrong with it.
        problem: &'static str,
    },
}

/// Parses `rate(value unit)`: value a positive whole number; unit `minute`, `hour` or `day`,
/// singular exactly when the value is 1 (as EventBridge requires).
pub fn parse_rate(expression: &str) -> Result<Duration, ScheduleError> {
    let trimmed = expression.trim();
    if trimmed.starts_with("cron(") {
        return Err(ScheduleError::Cron(expression.to_owned()));
    }
    let invalid = |problem| ScheduleError::Invalid {
        expression: expression.to_owned(),
        problem,
    };
    let inner = trimmed
        .strip_prefix("rate(")
        .and_then(|rest| rest.strip_suffix(')'))
        .ok_or_else(|| invalid("expected rate(value unit)"))?;
    let mut words = inner.split_whitespace();
    let (Some(value), Some(unit), None) = (words.next(), words.next(), words.next()) else {
        return Err(invalid("expected rate(value unit)"));
    };
    let value: u64 = value
        .parse()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| invalid("the value must be a positive whole number"))?;
    let (seconds, plural) = match unit {
        "minute" => (60, false),
        "minutes" => (60, true),
        "hour" => (3600, false),
        "hours" => (3600, true),
        "day" => (86_400, false),
        "days" => (86_400, true),
        _ => return Err(invalid("the unit must be minute(s), hour(s) or day(s)")),
    };
    if plural == (value == 1) {
        return Err(invalid(
            "use the singular unit for 1 and the plural otherwise",
        ));
    }
    value
        .checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| invalid("the period is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_become_periods() {
        assert_eq!(parse_rate("rate(5 minutes)"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_rate("rate(1 minute)"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_rate(" rate(2 hours) "), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_rate("rate(1 day)"), Ok(Duration::from_secs(86_400)));
    }

    #[test]
    fn malformed_rates_are_refused() {
        for bad in [
            "rate(0 minutes)",
            "rate(-1 minutes)",
            "rate(1 minutes)",
            "rate(5 minute)",
            "rate(5 seconds)",
            "rate(5)",
            "rate(five minutes)",
            "rate(5 minutes",
            "every 5 minutes",
            "rate(5 minutes extra)",
        ] {
            assert!(
                matches!(parse_rate(bad), Err(ScheduleError::Invalid { .. })),
                "{bad} was accepted"
            );
        }
    }

    #[test]
    fn cron_is_recognised_and_refused() {
        assert!(matches!(
            parse_rate("cron(0 12 * * ? *)"),
            Err(ScheduleError::Cron(_))
        ));
    }
}
