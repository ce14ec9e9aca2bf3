//! Configuration of the two functions: exactly the environment variables `template.yaml` declares.

pub use shared::config::ConfigError;
use shared::config::{env, required};

/// `event-publisher`'s configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherConfig {
    /// `EVENT_BUS_NAME`: the bus every stored event goes to.
    pub event_bus_name: String,
}

impl PublisherConfig {
    /// The variables it reads (checked against `template.yaml`).
    pub const ENV_VARS: &'static [&'static str] = &["EVENT_BUS_NAME"];

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env)
    }

    /// Reads configuration through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            event_bus_name: required(&lookup, "EVENT_BUS_NAME")?,
        })
    }
}

/// `projector`'s configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectorConfig {
    /// `EVENTS_TABLE`: read to heal gaps.
    pub events_table: String,
    /// `VIEWS_TABLE`: the order views.
    pub views_table: String,
}

impl ProjectorConfig {
    /// The variables it reads (checked against `template.yaml`).
    pub const ENV_VARS: &'static [&'static str] = &["EVENTS_TABLE", "VIEWS_TABLE"];

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env)
    }

    /// Reads configuration through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            events_table: required(&lookup, "EVENTS_TABLE")?,
            views_table: required(&lookup, "VIEWS_TABLE")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_function_reads_its_variables_and_names_a_missing_one() {
        let publisher =
            PublisherConfig::from_lookup(|n| (n == "EVENT_BUS_NAME").then(|| "bus".into()));
        assert_eq!(publisher.unwrap().event_bus_name, "bus");
        assert_eq!(
            PublisherConfig::from_lookup(|_| None),
            Err(ConfigError::Missing("EVENT_BUS_NAME"))
        );
        let projector = ProjectorConfig::from_lookup(|n| Some(format!("{n}-value"))).unwrap();
        assert_eq!(projector.events_table, "EVENTS_TABLE-value");
        assert_eq!(projector.views_table, "VIEWS_TABLE-value");
        assert_eq!(
            ProjectorConfig::from_lookup(|n| (n == "EVENTS_TABLE").then(|| "e".into())),
            Err(ConfigError::Missing("VIEWS_TABLE"))
        );
    }
}
