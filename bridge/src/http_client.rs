//! A small HTTP/1 client (hyper-util's pooled client over plain TCP) with a deadline per request:
//! what the bridge invokes functions with and what the demo, the load run and the end-to-end
//! suite call the API with.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// No complete answer within the deadline.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed or broke.
    #[error("{0}")]
    Transport(String),
}

/// An answer.
#[derive(Debug, Clone)]
pub struct HttpReply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

/// The client (cheap to clone: connections are pooled and shared).
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    /// A client for `http://` URLs.
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Self { inner }
    }

    /// Sends `request` and reads the whole answer, all within `deadline`.
    pub async fn send(
        &self,
        request: Request<Bytes>,
        deadline: Duration,
    ) -> Result<HttpReply, HttpError> {
        let exchange = async {
            let response = self
                .inner
                .request(request.map(Full::new))
                .await
                .map_err(|e| HttpError::Transport(error_chain(&e)))?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| HttpError::Transport(error_chain(&e)))?
                .to_bytes();
            Ok(HttpReply {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(deadline, exchange)
            .await
            .map_err(|_| HttpError::Timeout(deadline))?
    }
}

/// A request to a JSON API: `accept: application/json`, `headers` in order, and `body` as JSON
/// (with its content type) when given.
pub fn json_request(
    method: Method,
    url: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Result<Request<Bytes>, http::Error> {
    let mut request = Request::builder()
        .method(method)
        .uri(url)
        .header("accept", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = match body {
        Some(body) => {
            request = request.header("content-type", "application/json");
            Bytes::from(body.to_string())
        }
        None => Bytes::new(),
    };
    request.body(body)
}

impl HttpReply {
    /// The body as JSON: `Null` when empty, the text as a JSON string when it is not JSON.
    pub fn json_body(&self) -> Value {
        if self.body.is_empty() {
            return Value::Null;
        }
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.body).into_owned()))
    }
}

/// An error and its sources, on one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
