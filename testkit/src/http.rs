//! Handler-test support for the HTTP functions (testkit): requests built from a real API
//! Gateway v2 event fixture, changed only where a test says so, and the answer read back as JSON.
// Test support: a panic is how a broken fixture reports itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lambda_http::http::HeaderMap;
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

/// A request from `fixture` (an API Gateway v2 event as JSON) with `method`, `path` (query
/// string included, also given as `queryStringParameters`) and `body` replaced (no body: the
/// fixture's is removed), its `pathParameters` dropped (the function routes on the path), and
/// `headers` applied in order: set, or removed when the value is empty.
pub fn apigw_request(
    fixture: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Request {
    let mut event: Value = serde_json::from_str(fixture).unwrap();
    let (raw_path, raw_query) = path.split_once('?').unwrap_or((path, ""));
    event["rawPath"] = json!(raw_path);
    event["rawQueryString"] = json!(raw_query);
    event["requestContext"]["http"]["method"] = json!(method);
    event["requestContext"]["http"]["path"] = json!(raw_path);
    let route_key = format!("{method} {raw_path}");
    event["routeKey"] = json!(route_key);
    event["requestContext"]["routeKey"] = json!(route_key);
    if !raw_query.is_empty() {
        let params: serde_json::Map<String, Value> = raw_query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect();
        event["queryStringParameters"] = Value::Object(params);
    }
    let object = event.as_object_mut().unwrap();
    object.remove("pathParameters");
    match body {
        Some(body) => {
            object.insert("body".into(), json!(body));
            object["headers"]["content-length"] = json!(body.len().to_string());
        }
        None => {
            object.remove("body");
        }
    }
    let fixture_headers = object["headers"].as_object_mut().unwrap();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        if value.is_empty() {
            fixture_headers.remove(&name);
        } else {
            fixture_headers.insert(name, json!(value));
        }
    }
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

/// `request` as sent by `subject` in `groups`: the JWT authorizer's claims replaced by these (the
/// groups rendered as API Gateway renders a list claim, `[customers support]`).
pub fn with_caller(mut request: Request, subject: &str, groups: &[&str]) -> Request {
    use lambda_http::RequestExt;
    use lambda_http::aws_lambda_events::apigw::{
        ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
    };
    use lambda_http::request::RequestContext;
    let RequestContext::ApiGatewayV2(mut context) = request.request_context() else {
        panic!("not an API Gateway v2 request");
    };
    let mut jwt: ApiGatewayRequestAuthorizerJwtDescription = context
        .authorizer
        .take()
        .and_then(|a| a.jwt)
        .unwrap_or_else(|| serde_json::from_value(json!({"claims": {}})).unwrap());
    jwt.claims.insert("sub".into(), subject.into());
    jwt.claims.insert("username".into(), subject.into());
    if groups.is_empty() {
        jwt.claims.remove("cognito:groups");
    } else {
        jwt.claims
            .insert("cognito:groups".into(), format!("[{}]", groups.join(" ")));
    }
    let mut authorizer: ApiGatewayRequestAuthorizer = serde_json::from_value(json!({})).unwrap();
    authorizer.jwt = Some(jwt);
    context.authorizer = Some(authorizer);
    request
        .extensions_mut()
        .insert(RequestContext::ApiGatewayV2(context));
    request
}

/// `request` without the authorizer's claims (a route deployed without the authorizer).
pub fn without_caller(mut request: Request) -> Request {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;
    if let RequestContext::ApiGatewayV2(mut context) = request.request_context() {
        context.authorizer = None;
        request
            .extensions_mut()
            .insert(RequestContext::ApiGatewayV2(context));
    }
    request
}

/// What came back: status, headers and the body as JSON (`Null` when empty).
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Value,
}

impl Answer {
    /// Reads a function's response.
    pub fn from_response(response: &Response<Body>) -> Self {
        let body = match response.body() {
            Body::Text(text) => serde_json::from_str(text).unwrap(),
            Body::Binary(bytes) => serde_json::from_slice(bytes).unwrap(),
            _ => Value::Null,
        };
        Self {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body,
        }
    }

    /// Asserts a problem response of `status` naming `field` and its rule.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, field: &str) {
        self.assert_status_problem(status);
        assert_eq!(self.body["field"], field, "{}", self.body);
        assert!(self.body["rule"].is_string(), "{}", self.body);
    }

    /// Asserts a problem response of `status` (of any kind).
    #[track_caller]
    pub fn assert_status_problem(&self, status: u16) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.headers["content-type"], "application/problem+json",
            "{}",
            self.body
        );
        assert_eq!(self.body["status"], status);
    }

    /// Asserts a 200 JSON answer to a command, with this `status` and `version`.
    #[track_caller]
    pub fn assert_accepted(&self, status: &str, version: u64) {
        assert_eq!(self.status, 200, "{}", self.body);
        assert_eq!(self.headers["content-type"], "application/json");
        assert_eq!(self.body["status"], status, "{}", self.body);
        assert_eq!(self.body["version"], version, "{}", self.body);
    }
}
