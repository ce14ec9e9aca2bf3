//! The courier API's configuration: exactly the environment variables `template.yaml` declares for
//! it.

pub use lambda_glue::config::ConfigError;
use lambda_glue::config::{env, required};

/// Configuration of `courier-api`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `EVENTS_TABLE`: the event store.
    pub events_table: String,
}

/// The variables [`Config::from_env`] reads.
pub const ENV_VARS: &[&str] = &["EVENTS_TABLE"];

impl Config {
    /// The variables it reads (as the other delivery functions' configs expose them).
    pub const ENV_VARS: &'static [&'static str] = ENV_VARS;

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env)
    }

    /// Reads configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            events_table: required(&lookup, "EVENTS_TABLE")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn reads_the_events_table() {
        let config = Config::from_lookup(lookup(&[("EVENTS_TABLE", "events")])).unwrap();
        assert_eq!(config.events_table, "events");
    }

    #[test]
    fn a_missing_or_blank_table_is_named() {
        assert_eq!(
            Config::from_lookup(lookup(&[])),
            Err(ConfigError::Missing("EVENTS_TABLE"))
        );
        assert_eq!(
            Config::from_lookup(lookup(&[("EVENTS_TABLE", "  ")])),
            Err(ConfigError::Missing("EVENTS_TABLE"))
        );
    }

    #[test]
    fn it_reads_exactly_the_listed_variables() {
        let asked = Mutex::new(Vec::new());
        let _ = Config::from_lookup(|name| {
            asked.lock().unwrap().push(name.to_owned());
            Some("x".to_owned())
        });
        assert_eq!(asked.into_inner().unwrap(), ENV_VARS);
    }
}
