//! The fake Lambda Runtime API one run's process talks to: `GET /2018-06-01/runtime/invocation/next`
//! (the first one answered with the run's event once the harness lets it go, every later one held
//! until the process is killed), `POST .../invocation/{id}/response`, `POST .../invocation/{id}/error`
//! and `POST /2018-06-01/runtime/init/error`. Each request is reported as a [`Call`], stamped with
//! the instant it arrived.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// The Runtime API's version prefix.
const PREFIX: &str = "/2018-06-01/runtime";
/// The most of a response or error body that is kept (Lambda's own limit is 6 MB).
const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// The invocation a run hands its process.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// `Lambda-Runtime-Aws-Request-Id`.
    pub request_id: String,
    /// `Lambda-Runtime-Invoked-Function-Arn`.
    pub function_arn: String,
    /// `Lambda-Runtime-Trace-Id`.
    pub trace_id: String,
    /// How far in the future `Lambda-Runtime-Deadline-Ms` lies, from the moment it is answered.
    pub time_limit: Duration,
    /// The event, as sent.
    pub payload: Bytes,
}

/// A request the process made.
#[derive(Debug)]
pub enum Call {
    /// The first `GET .../invocation/next`: the process has finished its init. It is answered
    /// with the event once `release` is sent (or dropped).
    Next {
        /// When it arrived.
        at: Instant,
        /// Lets the answer go.
        release: oneshot::Sender<()>,
    },
    /// `POST .../invocation/{id}/response`.
    Response {
        /// When its body had arrived.
        at: Instant,
        /// The id in its path.
        request_id: String,
        /// The function's answer.
        body: Bytes,
    },
    /// `POST .../invocation/{id}/error`.
    InvokeError {
        /// When its body had arrived.
        at: Instant,
        /// The id in its path.
        request_id: String,
        /// `Lambda-Runtime-Function-Error-Type`, if sent.
        error_type: Option<String>,
        /// The error document.
        body: Bytes,
    },
    /// `POST .../init/error`.
    InitError {
        /// `Lambda-Runtime-Function-Error-Type`, if sent.
        error_type: Option<String>,
        /// The error document.
        body: Bytes,
    },
    /// Anything else (answered 404).
    Unexpected {
        /// `METHOD path`.
        request: String,
    },
}

/// A running fake Runtime API; stops serving when dropped.
pub struct RuntimeApi {
    address: SocketAddr,
    calls: mpsc::UnboundedReceiver<Call>,
    server: JoinHandle<()>,
}

struct State {
    invocation: Invocation,
    handed_out: AtomicBool,
    calls: mpsc::UnboundedSender<Call>,
}

impl RuntimeApi {
    /// Binds 127.0.0.1 on a free port and serves `invocation` to the first `next`.
    pub async fn start(invocation: Invocation) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding 127.0.0.1:0")?;
        let address = listener.local_addr()?;
        let (sender, calls) = mpsc::unbounded_channel();
        let state = Arc::new(State {
            invocation,
            handed_out: AtomicBool::new(false),
            calls: sender,
        });
        let server = tokio::spawn(accept(listener, state));
        Ok(Self {
            address,
            calls,
            server,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// The next request the process made; `None` never happens while the server runs.
    pub async fn call(&mut self) -> Option<Call> {
        self.calls.recv().await
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn accept(listener: TcpListener, state: Arc<State>) {
    let mut connections = tokio::task::JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        // Held in the set so that aborting the server ends its connections too.
        connections.spawn(async move {
            let service = service_fn(move |request| handle(Arc::clone(&state), request));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let at = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let route = path.strip_prefix(PREFIX).unwrap_or("");
    if method == Method::GET && route == "/invocation/next" {
        return Ok(next(&state, at).await);
    }
    if method == Method::POST && route == "/init/error" {
        let error_type = error_type(&request);
        let body = body(request).await;
        let _ = state.calls.send(Call::InitError { error_type, body });
        return Ok(accepted());
    }
    let posted = route
        .strip_prefix("/invocation/")
        .and_then(|rest| rest.split_once('/'))
        .filter(|_| method == Method::POST);
    match posted {
        Some((id, "response")) => {
            let request_id = id.to_owned();
            let body = body(request).await;
            let _ = state.calls.send(Call::Response {
                at: Instant::now(),
                request_id,
                body,
            });
            Ok(accepted())
        }
        Some((id, "error")) => {
            let request_id = id.to_owned();
            let error_type = error_type(&request);
            let body = body(request).await;
            let _ = state.calls.send(Call::InvokeError {
                at: Instant::now(),
                request_id,
                error_type,
                body,
            });
            Ok(accepted())
        }
        _ => {
            let _ = state.calls.send(Call::Unexpected {
                request: format!("{method} {path}"),
            });
            Ok(status(
                StatusCode::NOT_FOUND,
                "{\"errorType\":\"NotFound\"}",
            ))
        }
    }
}

/// The first `next` gets the event once the harness has read the process's memory; later ones
/// are never answered (one invocation per run: the process is killed after it).
async fn next(state: &State, at: Instant) -> Response<Full<Bytes>> {
    if state.handed_out.swap(true, Ordering::SeqCst) {
        return std::future::pending().await;
    }
    let (release, released) = oneshot::channel();
    let _ = state.calls.send(Call::Next { at, release });
    let _ = released.await;
    let invocation = &state.invocation;
    let deadline = SystemTime::now()
        .checked_add(invocation.time_limit)
        .and_then(|d| d.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default()
        .as_millis();
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("lambda-runtime-aws-request-id", &invocation.request_id)
        .header("lambda-runtime-deadline-ms", deadline.to_string())
        .header(
            "lambda-runtime-invoked-function-arn",
            &invocation.function_arn,
        )
        .header("lambda-runtime-trace-id", &invocation.trace_id)
        .body(Full::new(invocation.payload.clone()))
        .unwrap_or_else(|_| status(StatusCode::INTERNAL_SERVER_ERROR, ""))
}

fn error_type(request: &Request<Incoming>) -> Option<String> {
    request
        .headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

async fn body(request: Request<Incoming>) -> Bytes {
    match Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(error) => Bytes::from(format!("(body unreadable: {error})")),
    }
}

fn accepted() -> Response<Full<Bytes>> {
    status(StatusCode::ACCEPTED, "{\"status\":\"OK\"}")
}

fn status(code: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = code;
    response
}
