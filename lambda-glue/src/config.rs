//! A function's configuration, read from exactly the environment variables `template.yaml`
//! declares for it. Each function's `Config::from_lookup` takes the lookup (the process
//! environment through [`env`], a map in tests) and uses these readers, so a missing or unusable
//! variable is refused the same way everywhere: named, before the function takes any event.

use std::ops::RangeInclusive;

/// Why a function refuses to start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set (or is blank).
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    /// A variable has a value that cannot be used.
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Why.
        reason: String,
    },
}

/// Where a configuration reads its variables from.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, as a [`Lookup`].
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A variable that must be set and not blank.
pub fn required(lookup: Lookup<'_>, name: &'static str) -> Result<String, ConfigError> {
    lookup(name)
        .filter(|value| !value.trim().is_empty())
        .ok_or(ConfigError::Missing(name))
}

/// A whole number of `unit`s within `range`, or `default` when the variable is not set.
pub fn number_in(
    lookup: Lookup<'_>,
    name: &'static str,
    default: i64,
    range: RangeInclusive<i64>,
    unit: &str,
) -> Result<i64, ConfigError> {
    let Some(raw) = lookup(name) else {
        return Ok(default);
    };
    raw.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| ConfigError::Invalid {
            name,
            reason: format!(
                "{raw:?} is not a whole number of {unit} from {} to {}",
                range.start(),
                range.end()
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(name: &'static str, value: &'static str) -> impl Fn(&str) -> Option<String> {
        move |n| (n == name).then(|| value.to_owned())
    }

    #[test]
    fn a_required_variable_is_named_when_missing_or_blank() {
        assert_eq!(required(&only("A", "x"), "A"), Ok("x".to_owned()));
        assert_eq!(
            required(&only("A", "x"), "B"),
            Err(ConfigError::Missing("B"))
        );
        assert_eq!(
            required(&only("A", "  "), "A"),
            Err(ConfigError::Missing("A"))
        );
    }

    #[test]
    fn a_number_defaults_when_unset_and_is_refused_outside_its_range() {
        assert_eq!(number_in(&only("N", "6"), "N", 24, 1..=720, "hours"), Ok(6));
        assert_eq!(
            number_in(&only("M", "6"), "N", 24, 1..=720, "hours"),
            Ok(24)
        );
        for bad in ["0", "721", "-5", "six", ""] {
            let refused = number_in(&only("N", bad), "N", 24, 1..=720, "hours");
            assert!(
                matches!(&refused, Err(ConfigError::Invalid { name: "N", reason }) if reason.contains("from 1 to 720")),
                "{bad:?}: {refused:?}"
            );
        }
    }
}
