//! Configuration of the two functions: exactly the environment variables `template.yaml` declares.
//! Each poison queue has a variable of its own name: the local stack gives every function one
//! environment file, in which one name cannot hold two queues.

pub use lambda_glue::config::ConfigError;
use lambda_glue::config::{env, required};

/// `event-publisher`'s configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherConfig {
    /// `EVENT_BUS_NAME`: the bus every stored event goes to.
    pub event_bus_name: String,
    /// `PUBLISHER_POISON_QUEUE_URL`: where poison records are set aside.
    pub poison_queue_url: String,
}

impl PublisherConfig {
    /// The variables it reads (checked against `template.yaml`).
    pub const ENV_VARS: &'static [&'static str] = &["EVENT_BUS_NAME", "PUBLISHER_POISON_QUEUE_URL"];

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env)
    }

    /// Reads configuration through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            event_bus_name: required(&lookup, "EVENT_BUS_NAME")?,
            poison_queue_url: required(&lookup, "PUBLISHER_POISON_QUEUE_URL")?,
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
    /// `PROJECTOR_POISON_QUEUE_URL`: where poison records are set aside.
    pub poison_queue_url: String,
}

impl ProjectorConfig {
    /// The variables it reads (checked against `template.yaml`).
    pub const ENV_VARS: &'static [&'static str] =
        &["EVENTS_TABLE", "VIEWS_TABLE", "PROJECTOR_POISON_QUEUE_URL"];

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env)
    }

    /// Reads configuration through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            events_table: required(&lookup, "EVENTS_TABLE")?,
            views_table: required(&lookup, "VIEWS_TABLE")?,
            poison_queue_url: required(&lookup, "PROJECTOR_POISON_QUEUE_URL")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_function_reads_its_variables_and_names_a_missing_one() {
        let publisher = PublisherConfig::from_lookup(|n| Some(format!("{n}-value"))).unwrap();
        assert_eq!(publisher.event_bus_name, "EVENT_BUS_NAME-value");
        assert_eq!(
            publisher.poison_queue_url,
            "PUBLISHER_POISON_QUEUE_URL-value"
        );
        assert_eq!(
            PublisherConfig::from_lookup(|n| (n == "EVENT_BUS_NAME").then(|| "bus".into())),
            Err(ConfigError::Missing("PUBLISHER_POISON_QUEUE_URL"))
        );
        assert_eq!(
            PublisherConfig::from_lookup(|_| None),
            Err(ConfigError::Missing("EVENT_BUS_NAME"))
        );
        let projector = ProjectorConfig::from_lookup(|n| Some(format!("{n}-value"))).unwrap();
        assert_eq!(projector.events_table, "EVENTS_TABLE-value");
        assert_eq!(projector.views_table, "VIEWS_TABLE-value");
        assert_eq!(
            projector.poison_queue_url,
            "PROJECTOR_POISON_QUEUE_URL-value"
        );
        assert_eq!(
            ProjectorConfig::from_lookup(|n| (n == "EVENTS_TABLE").then(|| "e".into())),
            Err(ConfigError::Missing("VIEWS_TABLE"))
        );
    }
}
