//! Parsing what clients send: body size and media type, JSON syntax, then the typed shape with the
//! path of the first rejected field (`items[0].quantity`), and query parameters. Parse, don't
//! validate: what comes out is made of domain types that cannot hold a bad value.

use domain::validation::ValidationError;
use lambda_http::http::header;
use lambda_http::{Body, Request, RequestExt};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::http::problem::Problem;

/// The largest body the API accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The body as JSON, after the size and media-type checks.
pub fn json_body(request: &Request) -> Result<Value, Problem> {
    let bytes: &[u8] = match request.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(Problem::too_large(MAX_BODY_BYTES));
    }
    let declared_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            let essence = value.split(';').next().unwrap_or_default().trim();
            essence.eq_ignore_ascii_case("application/json")
        });
    if declared_json == Some(false) {
        return Err(Problem::unsupported_media_type());
    }
    if bytes.is_empty() {
        return Err(Problem::malformed_json("the body is empty"));
    }
    let value: Value = serde_json::from_slice(bytes).map_err(Problem::malformed_json)?;
    if !value.is_object() {
        return Err(Problem::malformed_json("the top level is not an object"));
    }
    Ok(value)
}

/// Turns JSON into `T`, naming the first field that does not fit and the rule it broke.
pub fn typed<T: DeserializeOwned>(value: Value) -> Result<T, ValidationError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let message = error.inner().to_string();
        field_error(&path, &message)
    })
}

/// Builds the field path and rule from serde's path and message.
fn field_error(path: &str, message: &str) -> ValidationError {
    let parent = if path == "." { "" } else { path };
    let join = |name: &str| {
        if parent.is_empty() {
            name.to_owned()
        } else {
            format!("{parent}.{name}")
        }
    };
    // "missing field `currency`" is reported at the parent: name the missing field itself.
    if let Some(name) = between(message, "missing field `", "`") {
        return ValidationError::new(join(name), "is required");
    }
    // An unknown field is reported at its own path.
    if message.starts_with("unknown field `") {
        return ValidationError::new(parent, "is not a known field");
    }
    let field = if parent.is_empty() { "body" } else { parent };
    // Our own parsers say "<field>: <rule>": the field is the last path segment itself, or (for a
    // type parsed as a whole, like an address) a field inside it.
    if let Some((name, rule)) = message.split_once(": ")
        && !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        let last = parent.rsplit(['.', ']']).next().unwrap_or_default();
        let field = if name == last {
            field.to_owned()
        } else {
            join(name)
        };
        return ValidationError::new(field, rule);
    }
    ValidationError::new(field, message)
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = text.strip_prefix(start)?;
    rest.split(end).next()
}

/// An optional query parameter.
pub fn query<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .query_string_parameters_ref()
        .and_then(|params| params.first(name))
}

#[cfg(test)]
mod tests {
    use domain::order::LineItem;
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Shape {
        name: String,
        items: Vec<LineItem>,
    }

    #[test]
    fn a_rule_broken_deep_inside_names_the_full_path() {
        let error = typed::<Shape>(json!({
            "name": "x",
            "items": [{"sku": "A", "quantity": 1, "unit_price": 1}, {"sku": "B", "quantity": 0, "unit_price": 1}]
        }))
        .unwrap_err();
        assert_eq!(error.field, "items[1].quantity");
        assert_eq!(error.rule, "must be between 1 and 1000");
    }

    #[test]
    fn a_missing_field_is_named_itself() {
        let error = typed::<Shape>(json!({"name": "x", "items": [{"sku": "A", "quantity": 1}]}))
            .unwrap_err();
        assert_eq!(error.field, "items[0].unit_price");
        assert_eq!(error.rule, "is required");
        let error = typed::<Shape>(json!({"items": []})).unwrap_err();
        assert_eq!(error.field, "name");
    }

    #[test]
    fn wrong_types_and_unknown_fields_are_named() {
        let error = typed::<Shape>(json!({"name": 5, "items": []})).unwrap_err();
        assert_eq!(error.field, "name");
        assert!(error.rule.contains("invalid type"), "{}", error.rule);
        let error = typed::<Shape>(json!({"name": "x", "items": [], "extra": 1})).unwrap_err();
        assert_eq!(error.field, "extra");
        assert_eq!(error.rule, "is not a known field");
    }
}
