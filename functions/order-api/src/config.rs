//! The function's configuration: exactly the environment variables `template.yaml` declares.

use crate::Settings;

pub use lambda_glue::config::ConfigError;
use lambda_glue::config::{env, number_in, required};

/// Configuration of `order-api`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `EVENTS_TABLE`: the event store.
    pub events_table: String,
    /// `IDEMPOTENCY_TABLE`: request idempotency records.
    pub idempotency_table: String,
    /// `VIEWS_TABLE`: the order read model.
    pub views_table: String,
    /// `CATALOGUE_TABLE`: the catalogue orders are priced from.
    pub catalogue_table: String,
    /// `IDEMPOTENCY_TTL_SECONDS` (default one day) and the attempt bound.
    pub settings: Settings,
}

/// The variables [`Config::from_env`] reads (checked against `template.yaml` by a test).
pub const ENV_VARS: &[&str] = &[
    "EVENTS_TABLE",
    "IDEMPOTENCY_TABLE",
    "VIEWS_TABLE",
    "CATALOGUE_TABLE",
    "IDEMPOTENCY_TTL_SECONDS",
];

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env)
    }

    /// Reads configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut settings = Settings::default();
        // Up to a year: a key remembered longer guards nothing a client would still retry.
        settings.idempotency_ttl_seconds = number_in(
            &lookup,
            "IDEMPOTENCY_TTL_SECONDS",
            settings.idempotency_ttl_seconds,
            1..=365 * 24 * 3600,
            "seconds",
        )?;
        Ok(Self {
            events_table: required(&lookup, "EVENTS_TABLE")?,
            idempotency_table: required(&lookup, "IDEMPOTENCY_TABLE")?,
            views_table: required(&lookup, "VIEWS_TABLE")?,
            catalogue_table: required(&lookup, "CATALOGUE_TABLE")?,
            settings,
        })
    }
}

/// `EVENTS_TABLE`, the one variable the order reactions read (their `ENV_VARS`).
pub fn reactions_events_table(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    required(&lookup, "EVENTS_TABLE")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const TABLES: [(&str, &str); 4] = [
        ("EVENTS_TABLE", "e"),
        ("IDEMPOTENCY_TABLE", "i"),
        ("CATALOGUE_TABLE", "c"),
        ("VIEWS_TABLE", "v"),
    ];

    #[test]
    fn reads_the_tables_and_defaults_the_ttl() {
        let config = Config::from_lookup(lookup(&TABLES)).unwrap();
        assert_eq!(config.events_table, "e");
        assert_eq!(config.idempotency_table, "i");
        assert_eq!(config.views_table, "v");
        assert_eq!(config.catalogue_table, "c");
        assert_eq!(config.settings.idempotency_ttl_seconds, 86_400);
    }

    #[test]
    fn a_missing_table_is_named() {
        assert_eq!(
            Config::from_lookup(lookup(&TABLES[..3])),
            Err(ConfigError::Missing("VIEWS_TABLE"))
        );
    }

    #[test]
    fn a_bad_ttl_is_refused() {
        let mut vars = TABLES.to_vec();
        vars.push(("IDEMPOTENCY_TTL_SECONDS", "-5"));
        assert!(matches!(
            Config::from_lookup(lookup(&vars)),
            Err(ConfigError::Invalid {
                name: "IDEMPOTENCY_TTL_SECONDS",
                ..
            })
        ));
        vars.pop();
        vars.push(("IDEMPOTENCY_TTL_SECONDS", "3600"));
        let config = Config::from_lookup(lookup(&vars)).unwrap();
        assert_eq!(config.settings.idempotency_ttl_seconds, 3600);
    }
}
