//! Configuration of the delivery functions: exactly the environment variables `template.yaml`
//! declares for each.

use chrono::Duration;

pub use lambda_glue::config::ConfigError;
use lambda_glue::config::{Lookup, env, number_in, required};

/// A whole number of hours from 1 to 720 (30 days), `default` when unset.
fn hours(lookup: Lookup<'_>, name: &'static str, default: i64) -> Result<Duration, ConfigError> {
    number_in(lookup, name, default, 1..=24 * 30, "hours").map(Duration::hours)
}

/// `delivery-on-order-placed` and `delivery-on-order-cancelled`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactionConfig {
    /// `EVENTS_TABLE`.
    pub events_table: String,
    /// `DELIVERY_SLA_HOURS` (default 48): promised_by = placed_at + SLA.
    pub sla: Duration,
}

impl ReactionConfig {
    /// The variables it reads.
    pub const ENV_VARS: &'static [&'static str] = &["EVENTS_TABLE", "DELIVERY_SLA_HOURS"];

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&env)
    }

    /// Reads configuration through `lookup`.
    pub fn from_lookup(lookup: Lookup<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            events_table: required(lookup, "EVENTS_TABLE")?,
            sla: hours(lookup, "DELIVERY_SLA_HOURS", 48)?,
        })
    }
}

/// `delivery-overdue-check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverdueConfig {
    /// `EVENTS_TABLE`.
    pub events_table: String,
    /// `VIEWS_TABLE`: the delivery board is an index of the views table.
    pub views_table: String,
    /// `OVERDUE_EXTENSION_HOURS` (default 24): how far a late delivery's ETA moves.
    pub extension: Duration,
}

impl OverdueConfig {
    /// The variables it reads.
    pub const ENV_VARS: &'static [&'static str] =
        &["EVENTS_TABLE", "VIEWS_TABLE", "OVERDUE_EXTENSION_HOURS"];

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(&env)
    }

    /// Reads configuration through `lookup`.
    pub fn from_lookup(lookup: Lookup<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            events_table: required(lookup, "EVENTS_TABLE")?,
            views_table: required(lookup, "VIEWS_TABLE")?,
            extension: hours(lookup, "OVERDUE_EXTENSION_HOURS", 24)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        let only_table = |name: &str| (name == "EVENTS_TABLE").then(|| "events".to_owned());
        let config = ReactionConfig::from_lookup(&only_table).unwrap();
        assert_eq!(config.sla, Duration::hours(48));
        let bad = |name: &str| match name {
            "EVENTS_TABLE" => Some("events".to_owned()),
            "DELIVERY_SLA_HOURS" => Some("0".to_owned()),
            _ => None,
        };
        assert!(matches!(
            ReactionConfig::from_lookup(&bad),
            Err(ConfigError::Invalid {
                name: "DELIVERY_SLA_HOURS",
                ..
            })
        ));
        assert_eq!(
            OverdueConfig::from_lookup(&only_table),
            Err(ConfigError::Missing("VIEWS_TABLE"))
        );
        let all = |name: &str| {
            Some(if name.ends_with("HOURS") {
                "6".into()
            } else {
                name.to_owned()
            })
        };
        let config = OverdueConfig::from_lookup(&all).unwrap();
        assert_eq!(config.extension, Duration::hours(6));
        assert_eq!(config.views_table, "VIEWS_TABLE");
    }
}
