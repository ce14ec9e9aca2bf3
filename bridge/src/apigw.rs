//! API Gateway HTTP API, payload format 2.0, both ways (pure):
//!
//! - [`v2_payload`]: an HTTP request and the route it matched → the event a function behind an
//!   `HttpApi` route receives (`version`, `routeKey`, `rawPath`, `rawQueryString`, lower-case
//!   `headers` with repeated values joined by commas, `cookies`, `queryStringParameters`,
//!   `pathParameters`, `requestContext`, `body`, `isBase64Encoded`);
//! - [`translate_response`]: the function's answer → the HTTP response. A structured answer
//!   (`statusCode`, `headers`, `multiValueHeaders`, `cookies`, `body`, `isBase64Encoded`) is taken
//!   as is; any other JSON is a 200 `application/json` body, as API Gateway infers it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use http::HeaderMap;
use serde_json::{Map, Value, json};

use super::routes::Matched;

/// The request as received.
#[derive(Debug, Clone, Copy)]
pub struct IncomingRequest<'a> {
    /// The method.
    pub method: &'a str,
    /// The path, still percent-encoded.
    pub raw_path: &'a str,
    /// The query string without `?` ("" when none).
    pub raw_query: &'a str,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The body.
    pub body: &'a [u8],
    /// The client's address.
    pub source_ip: &'a str,
}

/// Per-request values API Gateway makes up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestMeta {
    /// The request id.
    pub request_id: String,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// The account id.
    pub account_id: String,
    /// What the route's authorizer established, as `requestContext.authorizer`
    /// (`{"jwt": {"claims": …, "scopes": …}}`); `None` for a route without one.
    pub authorizer: Option<Value>,
}

/// The response to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingResponse {
    /// The status code.
    pub status: u16,
    /// Headers in order (a name may repeat, e.g. `set-cookie`).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl OutgoingResponse {
    /// A JSON `{"message": …}` response, as API Gateway answers its own errors.
    pub fn message(status: u16, message: &str) -> Self {
        Self::json(status, &json!({ "message": message }))
    }

    /// A JSON response.
    pub fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }
}

/// `key=value&…` → parameters, percent-decoded, repeated keys joined with commas.
fn query_parameters(raw_query: &str) -> BTreeMap<String, String> {
    let decode = |s: &str| urlencoding::decode(s).map_or_else(|_| s.to_owned(), |d| d.into_owned());
    let mut parameters: BTreeMap<String, String> = BTreeMap::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (key, value) = (decode(key), decode(value));
        parameters
            .entry(key)
            .and_modify(|joined| {
                joined.push(',');
                joined.push_str(&value);
            })
            .or_insert(value);
    }
    parameters
}

/// The v2 event for a request that matched `matched`.
pub fn v2_payload(
    request: &IncomingRequest<'_>,
    matched: &Matched<'_>,
    meta: &RequestMeta,
) -> Value {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies: Vec<String> = Vec::new();
    for (name, value) in request.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == http::header::COOKIE {
            cookies.extend(
                value
                    .split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned),
            );
            continue;
        }
        headers
            .entry(name.as_str().to_ascii_lowercase())
            .and_modify(|joined| {
                joined.push(',');
                joined.push_str(&value);
            })
            .or_insert(value);
    }
    headers
        .entry("x-forwarded-for".into())
        .or_insert_with(|| request.source_ip.to_owned());
    headers
        .entry("x-forwarded-proto".into())
        .or_insert_with(|| "http".into());
    let host = headers
        .get("host")
        .cloned()
        .unwrap_or_else(|| "127.0.0.1".into());
    let user_agent = headers.get("user-agent").cloned().unwrap_or_default();
    let route_key = matched.route.route_key();
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": meta.account_id,
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split('.').next().unwrap_or("local"),
            "http": {
                "method": request.method,
                "path": request.raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.source_ip,
                "userAgent": user_agent,
            },
            "requestId": meta.request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": meta.received_at.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": meta.received_at.timestamp_millis(),
        },
        "isBase64Encoded": false,
    });
    if let Some(authorizer) = &meta.authorizer {
        event["requestContext"]["authorizer"] = authorizer.clone();
    }
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    let query = query_parameters(request.raw_query);
    if !query.is_empty() {
        event["queryStringParameters"] = json!(query);
    }
    if !matched.parameters.is_empty() {
        event["pathParameters"] = json!(matched.parameters);
    }
    if !request.body.is_empty() {
        match std::str::from_utf8(request.body) {
            Ok(text) => event["body"] = json!(text),
            Err(_) => {
                event["body"] = json!(aws_smithy_types::base64::encode(request.body));
                event["isBase64Encoded"] = json!(true);
            }
        }
    }
    event
}

/// Headers that describe the transfer, not the content: the server sets them itself.
fn hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "content-length" | "transfer-encoding" | "connection" | "keep-alive"
    )
}

fn header_value(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The HTTP response for a function's answer; `Err` names what makes the answer unusable.
pub fn translate_response(answer: &Value) -> Result<OutgoingResponse, String> {
    let Some(object) = answer.as_object().filter(|o| o.contains_key("statusCode")) else {
        // No statusCode: API Gateway infers a 200 JSON response whose body is the answer.
        return Ok(OutgoingResponse::json(200, answer));
    };
    let status = match &object["statusCode"] {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .and_then(|s| u16::try_from(s).ok())
    .filter(|s| (100..=599).contains(s))
    .ok_or_else(|| format!("statusCode {} is not an HTTP status", object["statusCode"]))?;
    let mut headers: Vec<(String, String)> = Vec::new();
    let empty = Map::new();
    let single = object
        .get("headers")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (name, value) in single {
        let name = name.to_ascii_lowercase();
        if let Some(value) = header_value(value).filter(|_| !hop_by_hop(&name)) {
            headers.push((name, value));
        }
    }
    let multi = object
        .get("multiValueHeaders")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (name, values) in multi {
        let name = name.to_ascii_lowercase();
        if hop_by_hop(&name) || single.keys().any(|k| k.eq_ignore_ascii_case(&name)) {
            continue;
        }
        for value in values
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(header_value)
        {
            headers.push((name.clone(), value));
        }
    }
    for cookie in object
        .get("cookies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        headers.push(("set-cookie".into(), cookie.to_owned()));
    }
    let base64 = object
        .get("isBase64Encoded")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let body = match object.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) if base64 => aws_smithy_types::base64::decode(text)
            .map_err(|e| format!("the body is not valid base64: {e}"))?,
        Some(Value::String(text)) => text.clone().into_bytes(),
        Some(other) => other.to_string().into_bytes(),
    };
    Ok(OutgoingResponse {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_lambda_events::event::apigw::ApiGatewayV2httpRequest;
    use http::HeaderValue;

    use super::*;
    use crate::routes::{HttpRoute, RouteTable};
    use crate::stack::FunctionSpec;

    fn table() -> RouteTable {
        RouteTable::new(vec![HttpRoute {
            event: "GetOrder".into(),
            method: "GET".into(),
            path: "/orders/{id}".into(),
            function: FunctionSpec {
                logical_id: "OrderApiFunction".into(),
                handler: "order-api".into(),
                name: "orderflow-local-order-api".into(),
                timeout: Duration::from_secs(10),
            },
            auth: None,
        }])
    }

    fn meta() -> RequestMeta {
        RequestMeta {
            request_id: "req-1".into(),
            received_at: DateTime::<Utc>::from_timestamp(1_795_860_942, 0).unwrap(),
            account_id: "123456789012".into(),
            authorizer: None,
        }
    }

    #[test]
    fn a_request_becomes_a_v2_event() {
        let table = table();
        let matched = table.find("GET", "/orders/o-1").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("Host", HeaderValue::from_static("127.0.0.1:8080"));
        headers.append("X-Tag", HeaderValue::from_static("a"));
        headers.append("X-Tag", HeaderValue::from_static("b"));
        headers.insert("Cookie", HeaderValue::from_static("s=1; t=2"));
        let request = IncomingRequest {
            method: "GET",
            raw_path: "/orders/o-1",
            raw_query: "limit=5&tag=x&tag=y%20z",
            headers: &headers,
            body: b"",
            source_ip: "127.0.0.1",
        };
        let event = v2_payload(&request, &matched, &meta());
        assert_eq!(event["version"], "2.0");
        assert_eq!(event["routeKey"], "GET /orders/{id}");
        assert_eq!(event["rawPath"], "/orders/o-1");
        assert_eq!(event["rawQueryString"], "limit=5&tag=x&tag=y%20z");
        assert_eq!(event["headers"]["x-tag"], "a,b");
        assert_eq!(event["headers"]["host"], "127.0.0.1:8080");
        assert!(event["headers"].get("cookie").is_none());
        assert_eq!(event["cookies"], json!(["s=1", "t=2"]));
        assert_eq!(
            event["queryStringParameters"],
            json!({"limit": "5", "tag": "x,y z"})
        );
        assert_eq!(event["pathParameters"], json!({"id": "o-1"}));
        let context = &event["requestContext"];
        assert_eq!(context["http"]["method"], "GET");
        assert_eq!(context["http"]["path"], "/orders/o-1");
        assert_eq!(context["http"]["sourceIp"], "127.0.0.1");
        assert_eq!(context["requestId"], "req-1");
        assert_eq!(context["routeKey"], "GET /orders/{id}");
        assert_eq!(context["stage"], "$default");
        assert_eq!(context["time"], "28/Nov/2026:10:15:42 +0000");
        assert_eq!(context["timeEpoch"], 1_795_860_942_000_i64);
        assert_eq!(event["isBase64Encoded"], false);
        assert!(event.get("body").is_none());
        let typed: ApiGatewayV2httpRequest = serde_json::from_value(event).unwrap();
        assert_eq!(typed.raw_path.as_deref(), Some("/orders/o-1"));
        assert_eq!(typed.path_parameters["id"], "o-1");
    }

    #[test]
    fn the_authorizers_findings_are_the_request_contexts_authorizer() {
        let table = table();
        let matched = table.find("GET", "/orders/o-1").unwrap();
        let headers = HeaderMap::new();
        let request = IncomingRequest {
            method: "GET",
            raw_path: "/orders/o-1",
            raw_query: "",
            headers: &headers,
            body: b"",
            source_ip: "127.0.0.1",
        };
        let mut meta = meta();
        meta.authorizer = Some(json!({"jwt": {
            "claims": {"sub": "u-1", "cognito:groups": "[customers]"},
            "scopes": ["aws.cognito.signin.user.admin"],
        }}));
        let event = v2_payload(&request, &matched, &meta);
        let typed: ApiGatewayV2httpRequest = serde_json::from_value(event).unwrap();
        let jwt = typed.request_context.authorizer.unwrap().jwt.unwrap();
        assert_eq!(jwt.claims["sub"], "u-1");
        assert_eq!(jwt.claims["cognito:groups"], "[customers]");
        assert_eq!(
            jwt.scopes,
            Some(vec!["aws.cognito.signin.user.admin".into()])
        );
        meta.authorizer = None;
        let event = v2_payload(&request, &matched, &meta);
        assert!(event["requestContext"].get("authorizer").is_none());
    }

    #[test]
    fn text_bodies_pass_as_text_and_binary_ones_as_base64() {
        let table = table();
        let matched = table.find("GET", "/orders/o-1").unwrap();
        let headers = HeaderMap::new();
        let mut request = IncomingRequest {
            method: "GET",
            raw_path: "/orders/o-1",
            raw_query: "",
            headers: &headers,
            body: br#"{"a":1}"#,
            source_ip: "127.0.0.1",
        };
        let event = v2_payload(&request, &matched, &meta());
        assert_eq!(event["body"], r#"{"a":1}"#);
        assert!(event.get("queryStringParameters").is_none());
        request.body = &[0xff, 0x00];
        let event = v2_payload(&request, &matched, &meta());
        assert_eq!(event["body"], "/wA=");
        assert_eq!(event["isBase64Encoded"], true);
    }

    #[test]
    fn a_structured_answer_is_the_response() {
        let answer = json!({
            "statusCode": 201,
            "headers": {"Content-Type": "application/json", "location": "/orders/o-1", "content-length": "3"},
            "multiValueHeaders": {"x-many": ["1", "2"], "location": ["/ignored"]},
            "cookies": ["s=1; HttpOnly"],
            "body": "{\"order_id\":\"o-1\"}",
            "isBase64Encoded": false,
        });
        let response = translate_response(&answer).unwrap();
        assert_eq!(response.status, 201);
        assert!(
            response
                .headers
                .contains(&("content-type".into(), "application/json".into()))
        );
        assert!(
            response
                .headers
                .contains(&("location".into(), "/orders/o-1".into()))
        );
        assert!(response.headers.contains(&("x-many".into(), "2".into())));
        assert!(
            response
                .headers
                .contains(&("set-cookie".into(), "s=1; HttpOnly".into()))
        );
        assert!(
            !response
                .headers
                .iter()
                .any(|(n, v)| n == "content-length" || v == "/ignored")
        );
        assert_eq!(response.body, br#"{"order_id":"o-1"}"#);
    }

    #[test]
    fn base64_bodies_are_decoded_and_plain_json_is_inferred() {
        let answer = json!({"statusCode": "200", "body": "aGk=", "isBase64Encoded": true});
        assert_eq!(translate_response(&answer).unwrap().body, b"hi");
        let inferred = translate_response(&json!({"ok": true})).unwrap();
        assert_eq!(inferred.status, 200);
        assert_eq!(inferred.body, br#"{"ok":true}"#);
        assert_eq!(
            inferred.headers,
            [("content-type".into(), "application/json".into())]
        );
        let empty = translate_response(&json!({"statusCode": 204})).unwrap();
        assert!(empty.body.is_empty());
    }

    #[test]
    fn unusable_answers_are_refused_with_the_reason() {
        assert!(translate_response(&json!({"statusCode": 99})).is_err());
        assert!(translate_response(&json!({"statusCode": "abc"})).is_err());
        assert!(
            translate_response(&json!({"statusCode": 200, "body": "!!", "isBase64Encoded": true}))
                .is_err()
        );
        let error = OutgoingResponse::message(502, "function failed: boom");
        assert_eq!(error.status, 502);
        let body: Value = serde_json::from_slice(&error.body).unwrap();
        assert_eq!(body["message"], "function failed: boom");
    }
}
