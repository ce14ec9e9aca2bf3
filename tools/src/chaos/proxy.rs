//! The proxy: an HTTP/1 server on 127.0.0.1 that classifies each request, asks the
//! [`FaultPlan`] what to do with it and either forwards it unchanged to its service's upstream
//! (method, path and query, every header including the original `Host` and the SigV4
//! `Authorization`, the body) and streams the answer back, or injects the fault: an AWS error
//! answer, a connection closed without an answer (reset), held open then closed (stall), or the
//! request applied upstream and its answer dropped (lost).
//!
//! A connection ends without an answer by the service function returning an error: hyper then
//! closes it without writing anything, and the client sees the connection close mid-exchange.
//!
//! `GET /chaos/stats` is the proxy's own (never forwarded): the counters as JSON.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::header::{self, HeaderName};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::http_client::error_chain;
use tracing::{debug, info, warn};

use super::classify::classify;
use super::fault::{FaultKind, FaultPlan, error_answer};
use super::journal::{Journal, JournalEntry, Stats};

/// The largest request body the proxy reads (DynamoDB's largest request is 16 MB).
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// How long an open connection may take to finish once the proxy stops.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// The proxy's own path prefix, never forwarded.
const OWN_PREFIX: &str = "/chaos/";

/// Where requests go: a default upstream and per-service ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstreams {
    /// The upstream of every service without its own (`--upstream`).
    pub default: String,
    /// Per-service upstreams (`--upstream-for dynamodb=URL`).
    pub by_service: BTreeMap<String, String>,
}

impl Upstreams {
    /// Everything to `default`.
    pub fn new(default: &str) -> Self {
        Self {
            default: default.to_owned(),
            by_service: BTreeMap::new(),
        }
    }

    /// The upstream of `service`, without a trailing slash.
    pub fn of(&self, service: &str) -> &str {
        self.by_service
            .get(service)
            .unwrap_or(&self.default)
            .trim_end_matches('/')
    }
}

/// What [`serve`] needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ChaosOptions {
    /// Where requests go.
    pub upstreams: Upstreams,
    /// The port on 127.0.0.1 (0: any free port).
    pub listen_port: u16,
    /// Which requests are faulted, and how.
    pub plan: FaultPlan,
    /// How long a stalled connection is held before it is closed.
    pub stall: Duration,
    /// The journal file (appended to), or none.
    pub journal: Option<PathBuf>,
}

/// A running proxy.
#[derive(Debug)]
pub struct ChaosProxy {
    url: String,
    state: Arc<State>,
    shutdown: CancellationToken,
    server: JoinHandle<()>,
}

impl ChaosProxy {
    /// Its URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The counters, as `GET /chaos/stats` serves them.
    pub fn stats(&self) -> Value {
        self.state.stats.to_json()
    }

    /// The counters as lines for a person.
    pub fn summary(&self) -> String {
        self.state.stats.summary()
    }

    /// Stops accepting, lets open connections finish (stalls end at once), flushes the journal.
    pub async fn stop(self) -> std::io::Result<()> {
        self.shutdown.cancel();
        if let Err(error) = self.server.await {
            warn!(%error, "the proxy's accept loop failed");
        }
        self.state.journal.flush()
    }
}

#[derive(Debug)]
struct State {
    upstreams: Upstreams,
    plan: FaultPlan,
    stall: Duration,
    journal: Journal,
    stats: Stats,
    requests: AtomicU64,
    client: Client<HttpConnector, Full<Bytes>>,
    shutdown: CancellationToken,
}

/// Why a request got no answer: the connection is closed instead.
#[derive(Debug, thiserror::Error)]
enum NoAnswer {
    #[error("injected {0}: connection closed without an answer")]
    Injected(FaultKind),
    #[error("request body unreadable: {0}")]
    Body(String),
}

type ProxyBody = Either<Incoming, Full<Bytes>>;

/// Binds 127.0.0.1:`listen_port`, opens the journal and serves until [`ChaosProxy::stop`].
pub async fn serve(options: ChaosOptions) -> anyhow::Result<ChaosProxy> {
    let listener = TcpListener::bind(("127.0.0.1", options.listen_port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{}", options.listen_port))?;
    let url = format!("http://{}", listener.local_addr()?);
    let journal = Journal::open(options.journal.as_deref()).with_context(|| {
        let path = options.journal.clone().unwrap_or_default();
        format!("opening the journal {}", path.display())
    })?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector);
    let shutdown = CancellationToken::new();
    let state = Arc::new(State {
        upstreams: options.upstreams,
        plan: options.plan,
        stall: options.stall,
        journal,
        stats: Stats::default(),
        requests: AtomicU64::new(0),
        client,
        shutdown: shutdown.clone(),
    });
    info!(%url, seed = state.plan.seed, percent = state.plan.percent, "chaos proxy listening");
    let server = tokio::spawn(accept(listener, Arc::clone(&state)));
    Ok(ChaosProxy {
        url,
        state,
        shutdown,
        server,
    })
}

async fn accept(listener: TcpListener, state: Arc<State>) {
    loop {
        let stream = tokio::select! {
            () = state.shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    warn!(%error, "accept failed");
                    continue;
                }
            },
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let shutdown = state.shutdown.clone();
            let service = service_fn(move |request| handle(Arc::clone(&state), request));
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        debug!(%error, "connection closed");
                    }
                }
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(DRAIN_TIMEOUT, connection).await;
                }
            }
        });
    }
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, NoAnswer> {
    if request.uri().path().starts_with(OWN_PREFIX) {
        return Ok(own(&state, &request));
    }
    let (parts, body) = request.into_parts();
    let body = Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|error| NoAnswer::Body(error.to_string()))?
        .to_bytes();
    let call = classify(parts.uri.path(), &parts.headers, &body);
    let n = state.requests.fetch_add(1, Ordering::Relaxed);
    state.stats.request(&call.service);
    let upstream = state.upstreams.of(&call.service).to_owned();
    let Some(fault) = state.plan.decide(n, &call) else {
        return Ok(forward(&state, &upstream, parts, body).await);
    };
    state.stats.fault(&call.service, fault.kind);
    let mut entry = JournalEntry::new(&call, fault.kind, &body);
    info!(n, service = %call.service, operation = call.operation.as_deref().unwrap_or("-"), kind = %fault.kind, "fault injected");
    match fault.kind {
        FaultKind::Error | FaultKind::Throttle | FaultKind::Unavailable => {
            let request_id = uuid::Uuid::new_v4().to_string();
            let Some(answer) = error_answer(fault, &call, &request_id) else {
                return Err(NoAnswer::Injected(fault.kind));
            };
            entry.status = Some(answer.status.as_u16());
            state.journal.record(&entry);
            let mut response = Response::new(Either::Right(Full::new(Bytes::from(answer.body))));
            *response.status_mut() = answer.status;
            for (name, value) in answer.headers {
                if let Ok(value) = value.parse() {
                    response.headers_mut().insert(name, value);
                }
            }
            Ok(response)
        }
        FaultKind::Reset => {
            state.journal.record(&entry);
            Err(NoAnswer::Injected(fault.kind))
        }
        FaultKind::Stall => {
            state.journal.record(&entry);
            tokio::select! {
                () = tokio::time::sleep(state.stall) => {}
                () = state.shutdown.cancelled() => {}
            }
            Err(NoAnswer::Injected(fault.kind))
        }
        FaultKind::Lost => {
            let response = forward(&state, &upstream, parts, body).await;
            entry.status = Some(response.status().as_u16());
            // Read the whole answer, so the upstream has finished before the client hears of it.
            let _ = response.into_body().collect().await;
            state.journal.record(&entry);
            Err(NoAnswer::Injected(fault.kind))
        }
    }
}

/// The proxy's own endpoints.
fn own(state: &State, request: &Request<Incoming>) -> Response<ProxyBody> {
    let (status, body) = match (request.method().as_str(), request.uri().path()) {
        ("GET", "/chaos/stats") => (StatusCode::OK, state.stats.to_json()),
        _ => (StatusCode::NOT_FOUND, json!({"message": "Not Found"})),
    };
    json_response(status, &body)
}

fn json_response(status: StatusCode, body: &Value) -> Response<ProxyBody> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::from(body.to_string()))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// Headers that belong to one connection, not to the exchange: never passed on.
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Sends the request to `upstream` as it came (its `Host` header included) and answers with the
/// upstream's answer, streamed; a 502 when the upstream cannot be reached.
async fn forward(
    state: &State,
    upstream: &str,
    parts: http::request::Parts,
    body: Bytes,
) -> Response<ProxyBody> {
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str);
    let uri = format!("{upstream}{path}");
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = parts.method;
    *request.headers_mut() = parts.headers;
    strip_hop_by_hop(request.headers_mut());
    match uri.parse() {
        Ok(uri) => *request.uri_mut() = uri,
        Err(error) => {
            return json_response(
                StatusCode::BAD_GATEWAY,
                &json!({"message": format!("orderflow-chaos: {uri} is not a URL: {error}")}),
            );
        }
    }
    match state.client.request(request).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, Either::Left(body))
        }
        Err(error) => {
            warn!(%upstream, error = %error_chain(&error), "upstream unreachable");
            json_response(
                StatusCode::BAD_GATEWAY,
                &json!({"message": format!("orderflow-chaos: upstream {upstream} failed: {}", error_chain(&error))}),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    //! The proxy over real sockets, in front of a fake upstream that records what reaches it.
    use std::convert::Infallible;
    use std::sync::Mutex;
    use std::time::Instant;

    use super::*;
    use crate::chaos::fault::Mix;
    use crate::http_client::{HttpClient, HttpError};

    /// What the upstream saw: method, path and query, headers, body.
    type Seen = Arc<Mutex<Vec<(String, String, HeaderMap, Bytes)>>>;

    /// Answers every request with a 200 `{"ok":true}` and an `x-upstream` header.
    async fn fake_upstream() -> (String, Seen) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Seen = Arc::default();
        let recorded = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let recorded = Arc::clone(&recorded);
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let recorded = Arc::clone(&recorded);
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body.collect().await.unwrap().to_bytes();
                            recorded.lock().unwrap().push((
                                parts.method.to_string(),
                                parts.uri.to_string(),
                                parts.headers,
                                body,
                            ));
                            let response = Response::builder()
                                .status(200)
                                .header("x-upstream", "yes")
                                .header("content-type", "application/x-amz-json-1.0")
                                .body(Full::new(Bytes::from_static(br#"{"ok":true}"#)))
                                .unwrap();
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (url, seen)
    }

    fn options(
        upstream: &str,
        percent: f64,
        kind: FaultKind,
        journal: Option<PathBuf>,
    ) -> ChaosOptions {
        ChaosOptions {
            upstreams: Upstreams::new(upstream),
            listen_port: 0,
            plan: FaultPlan {
                percent,
                mix: Mix::only(kind),
                ..FaultPlan::none(11)
            },
            stall: Duration::from_millis(300),
            journal,
        }
    }

    fn put_item(proxy: &str) -> Request<Bytes> {
        Request::builder()
            .method("POST")
            .uri(format!("{proxy}/?probe=1"))
            .header("host", "dynamodb.us-east-1.amazonaws.com")
            .header("x-amz-target", "DynamoDB_20120810.PutItem")
            .header("content-type", "application/x-amz-json-1.0")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=test/20261201/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-target, Signature=abc",
            )
            .body(Bytes::from_static(br#"{"TableName":"t"}"#))
            .unwrap()
    }

    async fn send(request: Request<Bytes>) -> Result<crate::http_client::HttpReply, HttpError> {
        HttpClient::new()
            .send(request, Duration::from_secs(5))
            .await
    }

    #[tokio::test]
    async fn without_faults_requests_pass_through_unchanged() {
        let (upstream, seen) = fake_upstream().await;
        let proxy = serve(options(&upstream, 0.0, FaultKind::Error, None))
            .await
            .unwrap();
        let reply = send(put_item(proxy.url())).await.unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.headers["x-upstream"], "yes");
        assert_eq!(&reply.body[..], br#"{"ok":true}"#);
        let seen = seen.lock().unwrap().clone();
        let [(method, uri, headers, body)] = &seen[..] else {
            panic!("{seen:?}")
        };
        assert_eq!((method.as_str(), uri.as_str()), ("POST", "/?probe=1"));
        assert_eq!(headers["host"], "dynamodb.us-east-1.amazonaws.com");
        assert!(
            headers["authorization"]
                .to_str()
                .unwrap()
                .ends_with("Signature=abc")
        );
        assert_eq!(headers["x-amz-target"], "DynamoDB_20120810.PutItem");
        assert_eq!(&body[..], br#"{"TableName":"t"}"#);
        proxy.stop().await.unwrap();
    }

    #[tokio::test]
    async fn an_injected_error_never_reaches_the_upstream() {
        let (upstream, seen) = fake_upstream().await;
        let proxy = serve(options(&upstream, 100.0, FaultKind::Error, None))
            .await
            .unwrap();
        let reply = send(put_item(proxy.url())).await.unwrap();
        assert_eq!(reply.status, 500);
        assert_eq!(
            reply.json_body()["__type"],
            "com.amazonaws.dynamodb.v20120810#InternalServerError"
        );
        assert!(seen.lock().unwrap().is_empty());
        proxy.stop().await.unwrap();
    }

    #[tokio::test]
    async fn reset_stall_and_lost_close_the_connection_without_an_answer() {
        let (upstream, seen) = fake_upstream().await;
        let journal =
            std::env::temp_dir().join(format!("chaos-proxy-{}.jsonl", uuid::Uuid::new_v4()));
        for (kind, applied, at_least) in [
            (FaultKind::Reset, 0, Duration::ZERO),
            (FaultKind::Stall, 0, Duration::from_millis(300)),
            (FaultKind::Lost, 1, Duration::ZERO),
        ] {
            let before = seen.lock().unwrap().len();
            let proxy = serve(options(&upstream, 100.0, kind, Some(journal.clone())))
                .await
                .unwrap();
            let started = Instant::now();
            let outcome = send(put_item(proxy.url())).await;
            assert!(
                matches!(outcome, Err(HttpError::Transport(_))),
                "{kind}: {outcome:?}"
            );
            assert!(
                started.elapsed() >= at_least,
                "{kind}: {:?}",
                started.elapsed()
            );
            assert_eq!(seen.lock().unwrap().len() - before, applied, "{kind}");
            proxy.stop().await.unwrap();
        }
        let lines: Vec<Value> = std::fs::read_to_string(&journal)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["reset", "stall", "lost"]);
        assert_eq!(lines[2]["status"], 200);
        assert_eq!(lines[2]["operation"], "PutItem");
        std::fs::remove_file(journal).unwrap();
    }

    #[tokio::test]
    async fn stats_are_served_and_never_forwarded() {
        let (upstream, seen) = fake_upstream().await;
        let mut options = options(&upstream, 100.0, FaultKind::Throttle, None);
        options
            .upstreams
            .by_service
            .insert("other".into(), upstream.clone());
        let proxy = serve(options).await.unwrap();
        let reply = send(put_item(proxy.url())).await.unwrap();
        assert_eq!(reply.status, 400);
        let probe = Request::get(format!("{}/moto-api/", proxy.url()))
            .body(Bytes::new())
            .unwrap();
        assert_eq!(send(probe).await.unwrap().status, 200);
        let stats = Request::get(format!("{}/chaos/stats", proxy.url()))
            .body(Bytes::new())
            .unwrap();
        let stats = send(stats).await.unwrap().json_body();
        assert_eq!(stats, proxy.stats());
        assert_eq!(
            stats,
            json!({
                "requests": {"dynamodb": 1, "other": 1, "total": 2},
                "faults": {"dynamodb": {"throttle": 1}, "total": {"throttle": 1}},
            })
        );
        assert_eq!(seen.lock().unwrap().len(), 1, "only the moto-api probe");
        proxy.stop().await.unwrap();
    }
}
