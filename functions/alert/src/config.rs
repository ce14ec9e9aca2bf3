//! Configuration of the alert functions: exactly the environment variables `template.yaml`
//! declares for them. The six notification functions share [`NotifierConfig`]; the coupon
//! function reads [`CouponConfig`].

pub use lambda_glue::config::ConfigError;
use lambda_glue::config::{env, required};

/// The configuration of a notification function (`alert-on-…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifierConfig {
    /// `TOPIC_ARN`: the SNS customer-notifications topic.
    pub topic_arn: String,
    /// `IDEMPOTENCY_TABLE`: where the processed-event markers are kept.
    pub idempotency_table: String,
}

impl NotifierConfig {
    /// The variables it reads (checked against `template.yaml`).
    pub const ENV_VARS: &'static [&'static str] = &["TOPIC_ARN", "IDEMPOTENCY_TABLE"];

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env)
    }

    /// Reads configuration through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            topic_arn: required(&lookup, "TOPIC_ARN")?,
            idempotency_table: required(&lookup, "IDEMPOTENCY_TABLE")?,
        })
    }
}

/// The configuration of `coupon-on-delivery-delayed`. It needs no idempotency table: a coupon's
/// id is derived from the delay it compensates, so a repeat decides nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponConfig {
    /// `EVENTS_TABLE`: the coupon streams live in the events table.
    pub events_table: String,
}

impl CouponConfig {
    /// The variables it reads (checked against `template.yaml`).
    pub const ENV_VARS: &'static [&'static str] = &["EVENTS_TABLE"];

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(env)
    }

    /// Reads configuration through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            events_table: required(&lookup, "EVENTS_TABLE")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notifier_reads_its_topic_and_marker_table_and_names_a_missing_one() {
        let config = NotifierConfig::from_lookup(|n| Some(format!("{n}-value"))).unwrap();
        assert_eq!(config.topic_arn, "TOPIC_ARN-value");
        assert_eq!(config.idempotency_table, "IDEMPOTENCY_TABLE-value");
        assert_eq!(
            NotifierConfig::from_lookup(|n| (n == "TOPIC_ARN").then(|| "arn".into())),
            Err(ConfigError::Missing("IDEMPOTENCY_TABLE"))
        );
        assert_eq!(
            NotifierConfig::from_lookup(|_| Some("  ".into())),
            Err(ConfigError::Missing("TOPIC_ARN")),
            "blank is missing"
        );
    }

    #[test]
    fn the_coupon_function_reads_only_the_events_table() {
        let config = CouponConfig::from_lookup(|n| (n == "EVENTS_TABLE").then(|| "ev".into()));
        assert_eq!(config.unwrap().events_table, "ev");
        assert_eq!(
            CouponConfig::from_lookup(|_| None),
            Err(ConfigError::Missing("EVENTS_TABLE"))
        );
    }

    #[test]
    fn each_list_names_exactly_the_variables_from_lookup_reads() {
        assert_eq!(
            asked(|lookup| NotifierConfig::from_lookup(lookup).is_ok()),
            NotifierConfig::ENV_VARS
        );
        assert_eq!(
            asked(|lookup| CouponConfig::from_lookup(lookup).is_ok()),
            CouponConfig::ENV_VARS
        );
    }

    /// The variables a `from_lookup` asks for, in order, when every one is set.
    fn asked(from_lookup: impl Fn(&dyn Fn(&str) -> Option<String>) -> bool) -> Vec<String> {
        let asked = std::sync::Mutex::new(Vec::new());
        let lookup = |name: &str| {
            asked.lock().unwrap().push(name.to_owned());
            Some("x".to_owned())
        };
        assert!(from_lookup(&lookup));
        asked.into_inner().unwrap()
    }
}
