//! Responses: JSON bodies for success and `application/problem+json` (RFC 9457) for every
//! rejection. A client error names the field and the rule it broke; a dependency failure is a 503
//! with `Retry-After`; every response carries the request's correlation id.

use domain::DomainError;
use domain::envelope::CorrelationId;
use domain::ports::StoreError;
use domain::validation::ValidationError;
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde_json::{Value, json};

/// The header a caller may send its correlation id in, and that every response carries.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// Seconds a client should wait before retrying after a 503.
pub const RETRY_AFTER_SECONDS: u32 = 1;

/// A rejected or failed request, as RFC 9457 problem details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable slug naming the kind of problem (`invalid-field`, `not-found` …).
    pub kind: &'static str,
    /// What happened, for a person.
    pub detail: String,
    /// The rejected field (a path like `items[0].quantity`), for input errors.
    pub field: Option<String>,
    /// The rule the field broke.
    pub rule: Option<String>,
    /// Methods the path allows (405 only).
    pub allow: Box<[&'static str]>,
    /// Further members of the problem document (RFC 9457 extensions), e.g. the current prices.
    pub extensions: Option<Box<serde_json::Map<String, Value>>>,
}

impl Problem {
    /// The answer to an event-store failure while handling a request on one `aggregate`
    /// (`order`, `delivery`): 503 when the store is unavailable, 409 for a conflict (it reaches
    /// here only after the bounded retries) or a duplicate request, 500 (logged) for what the
    /// store refused or could not read.
    pub fn from_store(error: &StoreError, aggregate: &str) -> Self {
        match error {
            StoreError::Unavailable(reason) => {
                tracing::error!(%reason, "event store unavailable");
                Self::unavailable()
            }
            StoreError::Conflict { .. } => Self::conflict(
                "concurrent-modification",
                format!("the {aggregate} was changed by another request at the same time; retry"),
            ),
            StoreError::DuplicateRequest { .. } => {
                Self::conflict("duplicate-request", "this request was processed already")
            }
            StoreError::Corrupt { .. } | StoreError::InvalidAppend(_) => {
                tracing::error!(%error, "event store refused or returned unreadable data");
                Self::internal()
            }
        }
    }

    /// The answer to a domain refusal: 404, 409 (exists, or not in a state that allows it), 403
    /// (assigned to someone else) or 400.
    pub fn from_domain(error: DomainError) -> Self {
        match error {
            DomainError::NotFound { kind } => Self::not_found(format!("{kind} not found")),
            DomainError::AlreadyExists { kind } => {
                Self::conflict("already-exists", format!("{kind} already exists"))
            }
            DomainError::InvalidTransition { .. } => {
                Self::conflict("invalid-transition", error.to_string())
            }
            DomainError::NotAssigned { .. } => Self::forbidden("not-assigned", error.to_string()),
            DomainError::LimitReached { .. } => Self::conflict("limit-reached", error.to_string()),
            DomainError::Invalid(invalid) => Self::invalid(invalid),
        }
    }

    fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            detail: detail.into(),
            field: None,
            rule: None,
            allow: Box::default(),
            extensions: None,
        }
    }

    /// 400: a field broke a rule.
    pub fn invalid(error: ValidationError) -> Self {
        Self {
            field: Some(error.field.clone()),
            rule: Some(error.rule.clone()),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid-field", error.to_string())
        }
    }

    /// 400: the body is not JSON at all.
    pub fn malformed_json(reason: impl std::fmt::Display) -> Self {
        Self {
            field: Some("body".into()),
            rule: Some("must be a JSON object".into()),
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "malformed-json",
                format!("the body is not valid JSON: {reason}"),
            )
        }
    }

    /// 413: the body is larger than `max` bytes.
    pub fn too_large(max: usize) -> Self {
        Self {
            field: Some("body".into()),
            rule: Some(format!("must be at most {max} bytes")),
            ..Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "the body is too large",
            )
        }
    }

    /// 415: the body is not declared as JSON.
    pub fn unsupported_media_type() -> Self {
        Self {
            field: Some("content-type".into()),
            rule: Some("must be application/json".into()),
            ..Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "send the body as application/json",
            )
        }
    }

    /// 401: the request carries no authenticated caller. API Gateway's JWT authorizer answers
    /// this before a function runs; a function says it only if the authorizer's claims are missing
    /// (a route deployed without the authorizer), so it never acts for nobody.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in and send the access token as `Authorization: Bearer <token>`",
        )
    }

    /// The problem with one more member in its document.
    #[must_use]
    pub fn with(mut self, name: &str, value: Value) -> Self {
        self.extensions
            .get_or_insert_with(Box::default)
            .insert(name.to_owned(), value);
        self
    }

    /// 403: the caller is known and may not do this.
    pub fn forbidden(kind: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, kind, detail)
    }

    /// 404: no such thing.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    /// 405: the path exists, the method does not.
    pub fn method_not_allowed(allow: Vec<&'static str>) -> Self {
        Self {
            allow: allow.into_boxed_slice(),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "this path does not accept that method",
            )
        }
    }

    /// 409: the request conflicts with the resource's state.
    pub fn conflict(kind: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, kind, detail)
    }

    /// 422: the request is well-formed but cannot be processed as asked.
    pub fn unprocessable(
        kind: &'static str,
        field: &str,
        rule: &str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            field: Some(field.into()),
            rule: Some(rule.into()),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, kind, detail)
        }
    }

    /// 503: a dependency failed; the client may retry.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service-unavailable",
            "a dependency is unavailable; retry after a moment",
        )
    }

    /// 500: the service is at fault (e.g. stored data it cannot read). Never for client input.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal-error",
            "the service failed; quote the correlation id when reporting this",
        )
    }

    /// Whether retrying the same request later may succeed.
    pub fn is_retryable(&self) -> bool {
        self.status == StatusCode::SERVICE_UNAVAILABLE
    }

    /// The problem document.
    pub fn body(&self, correlation_id: &CorrelationId) -> Value {
        let mut body = json!({
            "type": format!("urn:orderflow:problem:{}", self.kind),
            "title": self.status.canonical_reason().unwrap_or("error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
            "retryable": self.is_retryable(),
            "correlation_id": correlation_id.as_str(),
        });
        if let Some(field) = &self.field {
            body["field"] = json!(field);
        }
        if let Some(rule) = &self.rule {
            body["rule"] = json!(rule);
        }
        if let Some(object) = body.as_object_mut() {
            for (name, value) in self.extensions.iter().flat_map(|e| e.iter()) {
                object.entry(name.clone()).or_insert_with(|| value.clone());
            }
        }
        body
    }

    /// The HTTP response.
    pub fn into_response(self, correlation_id: &CorrelationId) -> Response<Body> {
        let mut response = respond(
            self.status,
            &self.body(correlation_id),
            "application/problem+json",
            correlation_id,
        );
        let headers = response.headers_mut();
        if self.is_retryable() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if !self.allow.is_empty()
            && let Ok(allow) = HeaderValue::from_str(&self.allow.join(", "))
        {
            headers.insert(header::ALLOW, allow);
        }
        response
    }
}

/// A JSON response with the correlation header.
pub fn json_response(
    status: StatusCode,
    body: &Value,
    correlation_id: &CorrelationId,
) -> Response<Body> {
    respond(status, body, "application/json", correlation_id)
}

fn respond(
    status: StatusCode,
    body: &Value,
    content_type: &'static str,
    correlation_id: &CorrelationId,
) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Correlation ids are checked to be header-safe ASCII when parsed or generated.
    if let Ok(value) = HeaderValue::from_str(correlation_id.as_str()) {
        headers.insert(CORRELATION_HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_problem_names_the_field_and_the_rule() {
        let correlation = CorrelationId::parse("c-1").unwrap();
        let problem = Problem::invalid(ValidationError::new("items[0].quantity", "must be 1+"));
        let response = problem.into_response(&correlation);
        assert_eq!(response.status(), 400);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert_eq!(response.headers()[CORRELATION_HEADER], "c-1");
        let Body::Text(text) = response.body() else {
            panic!("expected a text body");
        };
        let body: Value = serde_json::from_str(text).unwrap();
        assert_eq!(body["field"], "items[0].quantity");
        assert_eq!(body["rule"], "must be 1+");
        assert_eq!(body["status"], 400);
        assert_eq!(body["type"], "urn:orderflow:problem:invalid-field");
        assert_eq!(body["retryable"], false);
    }

    #[test]
    fn an_unavailable_dependency_is_a_retryable_503_with_retry_after() {
        let correlation = CorrelationId::parse("c-2").unwrap();
        let response = Problem::unavailable().into_response(&correlation);
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
