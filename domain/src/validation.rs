//! The one error every parser in the domain returns: the field that was rejected and the rule it
//! broke. The HTTP functions turn it into an `application/problem+json` body as it is.

use std::fmt;

/// A value was rejected while parsing input into a domain type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct ValidationError {
    /// The path of the rejected field, e.g. `items[2].quantity`.
    pub field: String,
    /// The rule it broke, in words a client can act on.
    pub rule: String,
}

impl ValidationError {
    /// A rejection of `field` for breaking `rule`.
    pub fn new(field: impl Into<String>, rule: impl fmt::Display) -> Self {
        Self {
            field: field.into(),
            rule: rule.to_string(),
        }
    }

    /// The same rejection, with the field path put under `parent` (`items[2]` + `quantity`).
    #[must_use]
    pub fn within(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() {
            parent.to_owned()
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

/// Checks a free-text field: trimmed, not empty, at most `max` characters, no control characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<String, ValidationError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if trimmed.chars().count() > max {
        return Err(ValidationError::new(
            field,
            format_args!("must be at most {max} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(text("city", "  Berlin ", 10), Ok("Berlin".to_owned()));
        assert_eq!(
            text("city", "   ", 10).map_err(|e| e.rule),
            Err("must not be empty".to_owned())
        );
        assert!(
            text("city", "Bérlinéééé", 10).is_ok(),
            "counts characters, not bytes"
        );
        assert!(text("city", "Berlin-Mitte", 10).is_err());
        assert!(text("city", "Ber\nlin", 10).is_err());
    }

    #[test]
    fn within_builds_a_field_path() {
        let e = ValidationError::new("quantity", "must be at least 1").within("items[2]");
        assert_eq!(e.field, "items[2].quantity");
        assert_eq!(e.to_string(), "items[2].quantity: must be at least 1");
    }
}
