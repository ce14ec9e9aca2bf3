//! The registry's functions invoked in this process: an [`Invoke`] for the local bridge's pollers
//! and scheduler, so the saga tests run the bridge's own event source mappings (its SQS poller
//! and stream poller, their batching, partial failures and retries) with the functions built as
//! their bootstrap builds them, without processes. The HTTP functions are not served here: the
//! bridge's API Gateway is exercised end to end (`tests/e2e`).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use aws_lambda_events::event::sqs::SqsEvent;
use bridge::invoke::{Invoke, InvokeError};
use bridge::stack::FunctionSpec;
use function_registry::Handler;
use lambda_glue::consumer::handle_queue_batch;
use lambda_glue::schedule::run_scheduled;
use serde_json::Value;
use stream_pipeline::{Deadline, StreamEvent};

/// A handler's work, proven `Send` where it is made (the trait objects' futures otherwise trip
/// rustc's higher-ranked `Send` check inside `async_trait`).
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Handlers by function name (their `Handler` in template.yaml).
#[derive(Default)]
pub struct InProcess {
    handlers: BTreeMap<String, Handler>,
    invocations: AtomicUsize,
}

impl InProcess {
    /// Serves `handler` as the function named `name`.
    pub fn add(&mut self, name: &str, handler: Handler) {
        self.handlers.insert(name.to_owned(), handler);
    }

    /// How many invocations it has served.
    pub fn invocations(&self) -> usize {
        self.invocations.load(Ordering::Relaxed)
    }
}

fn function_error(error_type: &str, message: impl std::fmt::Display) -> InvokeError {
    InvokeError::Function {
        error_type: error_type.to_owned(),
        message: message.to_string(),
    }
}

fn event<T: serde::de::DeserializeOwned>(payload: &Value) -> Result<T, InvokeError> {
    serde_json::from_value(payload.clone()).map_err(|e| function_error("Runtime.UnmarshalError", e))
}

fn answer(response: impl serde::Serialize) -> Result<Value, InvokeError> {
    serde_json::to_value(response).map_err(|e| function_error("Runtime.MarshalError", e))
}

#[async_trait]
impl Invoke for InProcess {
    async fn invoke(&self, function: &FunctionSpec, payload: &Value) -> Result<Value, InvokeError> {
        self.invocations.fetch_add(1, Ordering::Relaxed);
        let handler = self.handlers.get(&function.handler).ok_or_else(|| {
            function_error(
                "ResourceNotFoundException",
                format!("{} is not served in process", function.handler),
            )
        })?;
        match handler {
            Handler::Queue(queue) => {
                let batch: SqsEvent = event(payload)?;
                let work: BoxFuture<'_, _> = Box::pin(handle_queue_batch(queue.as_ref(), &batch));
                answer(work.await)
            }
            Handler::Stream(reader) => {
                let batch: StreamEvent = event(payload)?;
                let work: BoxFuture<'_, _> = Box::pin(reader.handle(&batch, Deadline::none()));
                answer(work.await)
            }
            Handler::Schedule(scheduled) => {
                let work: BoxFuture<'_, _> = Box::pin(run_scheduled(scheduled.as_ref()));
                work.await.map_err(|e| function_error("Handled", e))
            }
            Handler::Http(_) => Err(function_error(
                "ResourceNotFoundException",
                format!(
                    "{}: HTTP functions are served end to end only",
                    function.handler
                ),
            )),
        }
    }
}
