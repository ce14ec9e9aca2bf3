//! Invoking a function: [`Invoke`] is how the bridge reaches one — over the Lambda Invoke API that
//! the local Lambda serves ([`LambdaApi`], [`super::host`]:
//! `POST {base}/2015-03-31/functions/{handler}/invocations`, synchronously, with the function's
//! timeout; the first invoke of each function gets extra time for its first connections), or in
//! the caller's process (the saga tests build the registry's handlers and invoke them directly,
//! through the same pollers). [`Invoker`] is what the pollers, the API and the scheduler hold: an
//! [`Invoke`] and the soak's batch faults.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{Method, Request};
use serde_json::Value;

use super::faults::BatchFaults;
use super::stack::FunctionSpec;
use crate::http_client::{HttpClient, HttpError};

/// Why an invoke did not return a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    /// The function failed (it returned an error or crashed).
    #[error("function error {error_type}: {message}")]
    Function {
        /// `errorType` (or `Unhandled`).
        error_type: String,
        /// `errorMessage`, or what the invoke API said.
        message: String,
    },
    /// No answer within the function's timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The invoke API could not be reached.
    #[error("invoke API unreachable: {0}")]
    Unreachable(String),
}

impl InvokeError {
    /// The reason in words, for logs and error responses.
    pub fn reason(&self) -> String {
        self.to_string()
    }
}

/// A way to invoke a function by its spec (its `Handler` in `template.yaml`) with one event, and
/// hear its result: what a function returned, or why it did not.
#[async_trait]
pub trait Invoke: Send + Sync {
    /// Invokes `function` with `payload` and returns its result.
    async fn invoke(&self, function: &FunctionSpec, payload: &Value) -> Result<Value, InvokeError>;
}

/// The Lambda Invoke API of the local Lambda (`orderflow-bridge functions`).
#[derive(Debug, Clone)]
pub struct LambdaApi {
    client: HttpClient,
    base: String,
    cold_start_grace: Duration,
    started: Arc<Mutex<HashSet<String>>>,
}

/// Invokes functions through an [`Invoke`], playing the soak's faults on the batches it delivers.
#[derive(Clone)]
pub struct Invoker {
    target: Arc<dyn Invoke>,
    faults: BatchFaults,
}

impl std::fmt::Debug for Invoker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invoker")
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

/// The function's error document (`{"errorType", "errorMessage"}`), or the raw body.
fn function_error(body: &[u8], fallback_type: &str) -> InvokeError {
    let document: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let text = |key: &str| document.get(key).and_then(Value::as_str).map(str::to_owned);
    InvokeError::Function {
        error_type: text("errorType").unwrap_or_else(|| fallback_type.to_owned()),
        message: text("errorMessage")
            .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(500).collect()),
    }
}

impl LambdaApi {
    /// The invoke API at `base` (`http://127.0.0.1:9000`); a function's first invoke may take
    /// `cold_start_grace` longer than its timeout.
    pub fn new(base: &str, cold_start_grace: Duration) -> Self {
        Self {
            client: HttpClient::new(),
            base: base.trim_end_matches('/').to_owned(),
            cold_start_grace,
            started: Arc::new(Mutex::new(HashSet::new())),
        }
    }
}

impl Invoker {
    /// An invoker for the invoke API at `base` (`http://127.0.0.1:9000`); a function's first invoke
    /// may take `cold_start_grace` longer than its timeout.
    pub fn new(base: &str, cold_start_grace: Duration) -> Self {
        Self::over(Arc::new(LambdaApi::new(base, cold_start_grace)))
    }

    /// An invoker reaching the functions through `target`.
    pub fn over(target: Arc<dyn Invoke>) -> Self {
        Self {
            target,
            faults: BatchFaults::none(),
        }
    }

    /// The same invoker, playing `faults` on the batches it delivers ([`Self::deliver_batch`]).
    pub fn with_faults(mut self, faults: BatchFaults) -> Self {
        self.faults = faults;
        self
    }

    /// The faults it plays, and their counts.
    pub fn faults(&self) -> &BatchFaults {
        &self.faults
    }

    /// Invokes `function` with one SQS or stream batch, playing the soak's faults on it
    /// ([`BatchFaults`]): delivered twice, or answered with a crash after its side effects. The
    /// result is what the event source hears.
    pub async fn deliver_batch(
        &self,
        function: &FunctionSpec,
        payload: &Value,
    ) -> Result<Value, InvokeError> {
        if !self.faults.any() {
            return self.invoke(function, payload).await;
        }
        let decision = self.faults.decide();
        let mut result = self.invoke(function, payload).await;
        if decision.duplicate {
            tracing::info!(function = %function.handler, "fault: the batch is delivered a second time");
            result = self.invoke(function, payload).await;
        }
        let crashed = decision.crash && result.is_ok();
        if crashed {
            tracing::warn!(function = %function.handler, "fault: the answer is dropped after the side effects (a crash); the batch will be redelivered");
            result = Err(InvokeError::Function {
                error_type: "Runtime.ExitError".into(),
                message: "fault injected by the bridge: the process exited before answering".into(),
            });
        }
        self.faults.record(decision, crashed);
        result
    }

    /// Invokes `function` with `payload` and returns its result.
    pub async fn invoke(
        &self,
        function: &FunctionSpec,
        payload: &Value,
    ) -> Result<Value, InvokeError> {
        self.target.invoke(function, payload).await
    }
}

#[async_trait]
impl Invoke for LambdaApi {
    async fn invoke(&self, function: &FunctionSpec, payload: &Value) -> Result<Value, InvokeError> {
        let url = format!(
            "{}/2015-03-31/functions/{}/invocations",
            self.base, function.handler
        );
        let request = Request::builder()
            .method(Method::POST)
            .uri(&url)
            .header("content-type", "application/json")
            .header("x-amz-invocation-type", "RequestResponse")
            .body(Bytes::from(payload.to_string()))
            .map_err(|e| InvokeError::Unreachable(format!("{url}: {e}")))?;
        let first = !self
            .started
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&function.handler);
        let deadline = if first {
            function.timeout + self.cold_start_grace
        } else {
            function.timeout
        };
        let reply = self
            .client
            .send(request, deadline)
            .await
            .map_err(|e| match e {
                HttpError::Timeout(after) => InvokeError::Timeout(after),
                HttpError::Transport(reason) => InvokeError::Unreachable(reason),
            })?;
        self.started
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(function.handler.clone());
        if let Some(kind) = reply.headers.get("x-amz-function-error") {
            return Err(function_error(
                &reply.body,
                kind.to_str().unwrap_or("Unhandled"),
            ));
        }
        if !reply.status.is_success() {
            let mut error = function_error(&reply.body, "Unhandled");
            if let InvokeError::Function { message, .. } = &mut error {
                *message = format!("invoke API answered {}: {message}", reply.status);
            }
            return Err(error);
        }
        if reply.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&reply.body).map_err(|e| InvokeError::Function {
            error_type: "InvalidResponse".into(),
            message: format!("the function's result is not JSON: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_documents_are_read_and_anything_else_is_quoted() {
        let error = function_error(
            br#"{"errorType":"boom","errorMessage":"it broke"}"#,
            "Unhandled",
        );
        assert_eq!(
            error,
            InvokeError::Function {
                error_type: "boom".into(),
                message: "it broke".into()
            }
        );
        let error = function_error(b"plain text", "Handled");
        assert_eq!(error.reason(), "function error Handled: plain text");
    }
}
