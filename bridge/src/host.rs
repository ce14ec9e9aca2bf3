//! The local stack's Lambda: runs every function of `template.yaml` from the one bootstrap that is
//! deployed (`orderflow-lambda`), behind the Lambda Invoke API the bridge calls.
//!
//! For each function it keeps `instances` processes of the bootstrap, each with the environment
//! Lambda gives it — `_HANDLER` (the function's `Handler`, from which the bootstrap picks the
//! function), `AWS_LAMBDA_FUNCTION_NAME`, `AWS_LAMBDA_RUNTIME_API` and the rest — plus the stack's
//! env file, and plays the Lambda Runtime API to them: an invoke
//! (`POST /2015-03-31/functions/{handler}/invocations`) waits for a free instance, which takes it
//! with `GET …/runtime/invocation/next` and answers with `…/response` or `…/error`. As on Lambda:
//! an instance that exits is started again (and its invocation answered `Runtime.ExitError`); an
//! invocation that outlives the function's `Timeout` is answered `Sandbox.Timedout` and its
//! instance stopped and started again. Each instance has its own Runtime API path
//! (`/{handler}/{instance}/{generation}`), so every request is known to come from the process that
//! holds the invocation. The functions' output goes to this process's stdout, each line prefixed
//! with `{handler}#{instance}`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::stack::FunctionSpec;

/// How long an instance that exited at once waits before it is started again.
const RESTART_BACKOFF: Duration = Duration::from_secs(1);
/// How long an instance that ended waits before it is started again.
const RESTART_PAUSE: Duration = Duration::from_millis(500);
/// How long a stopped instance has to exit before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// What to run.
#[derive(Debug, Clone)]
pub struct HostSettings {
    /// The bootstrap every function runs.
    pub bootstrap: PathBuf,
    /// `KEY=VALUE` lines every function gets (the stack's env file).
    pub environment: Vec<(String, String)>,
    /// Processes per function.
    pub instances: usize,
    /// The port of the Invoke and Runtime APIs (0: any free port).
    pub port: u16,
    /// The functions' `MemorySize` (reported to them).
    pub memory_mb: u32,
    /// The region (reported to them).
    pub region: String,
}

/// How an invocation ended.
#[derive(Debug)]
enum Outcome {
    /// `…/response`.
    Response(Bytes),
    /// `…/error`, the exit of its instance, or the timeout: the error document.
    Error(Bytes),
}

/// An invocation waiting for, or held by, an instance.
struct Invocation {
    id: String,
    payload: Bytes,
    reply: oneshot::Sender<Outcome>,
}

/// One process slot of a function.
struct Instance {
    /// Bumped at each start: requests from an older process are refused.
    generation: AtomicU64,
    /// The current process has made its first `next` request (initialised).
    ready: AtomicBool,
    /// Asks the supervisor to stop the current process (a timeout).
    restart: Notify,
}

/// An invocation held by a process: its instance, the process's generation, the reply.
type Held = (usize, u64, oneshot::Sender<Outcome>);

struct FunctionState {
    spec: FunctionSpec,
    sender: mpsc::UnboundedSender<Invocation>,
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    /// Invocations held by an instance: request id → (instance, its generation, reply).
    held: Mutex<HashMap<String, Held>>,
    instances: Vec<Instance>,
}

struct Host {
    functions: HashMap<String, Arc<FunctionState>>,
    settings: HostSettings,
    runtime_base: String,
    requests: AtomicU64,
    shutdown: CancellationToken,
}

/// The running host.
pub struct LambdaHost {
    host: Arc<Host>,
    url: String,
    tasks: tokio::task::JoinSet<()>,
}

impl LambdaHost {
    /// The Invoke API's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Waits until every instance has initialised (its first `next` request), or `limit`.
    pub async fn ready(&self, limit: Duration) -> Result<()> {
        let started = Instant::now();
        loop {
            let waiting: Vec<String> = self
                .host
                .functions
                .values()
                .flat_map(|f| {
                    f.instances
                        .iter()
                        .enumerate()
                        .filter(|(_, i)| !i.ready.load(Ordering::SeqCst))
                        .map(|(n, _)| format!("{}#{n}", f.spec.handler))
                })
                .collect();
            if waiting.is_empty() {
                return Ok(());
            }
            if started.elapsed() > limit {
                anyhow::bail!(
                    "not initialised after {limit:?}: {} (see their output)",
                    waiting.join(", ")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops every instance and the APIs.
    pub async fn stop(mut self) {
        self.host.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Binds 127.0.0.1, starts `settings.instances` processes of the bootstrap per function and
/// serves the Invoke and Runtime APIs until [`LambdaHost::stop`].
pub async fn start(functions: &[FunctionSpec], settings: HostSettings) -> Result<LambdaHost> {
    anyhow::ensure!(
        settings.bootstrap.is_file(),
        "no bootstrap at {} (build it: cargo build --bin orderflow-lambda)",
        settings.bootstrap.display()
    );
    let listener = TcpListener::bind(("127.0.0.1", settings.port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{}", settings.port))?;
    let address = listener.local_addr()?;
    let mut states = HashMap::new();
    for spec in functions {
        let (sender, receiver) = mpsc::unbounded_channel();
        let instances = (0..settings.instances.max(1))
            .map(|_| Instance {
                generation: AtomicU64::new(0),
                ready: AtomicBool::new(false),
                restart: Notify::new(),
            })
            .collect();
        states.insert(
            spec.handler.clone(),
            Arc::new(FunctionState {
                spec: spec.clone(),
                sender,
                queue: tokio::sync::Mutex::new(receiver),
                held: Mutex::new(HashMap::new()),
                instances,
            }),
        );
    }
    let host = Arc::new(Host {
        functions: states,
        settings,
        // With a path, the runtime client needs a scheme (Lambda itself gives `host:port` only).
        runtime_base: format!("http://{address}"),
        requests: AtomicU64::new(0),
        shutdown: CancellationToken::new(),
    });
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(accept(listener, Arc::clone(&host)));
    for function in host.functions.values() {
        for index in 0..function.instances.len() {
            tasks.spawn(supervise(Arc::clone(&host), Arc::clone(function), index));
        }
    }
    info!(url = %format!("http://{address}"), functions = host.functions.len(), instances = host.settings.instances, "Lambda host listening");
    Ok(LambdaHost {
        host,
        url: format!("http://{address}"),
        tasks,
    })
}

/// Keeps instance `index` of `function` running until shutdown.
async fn supervise(host: Arc<Host>, function: Arc<FunctionState>, index: usize) {
    let instance = &function.instances[index];
    let name = format!("{}#{index}", function.spec.handler);
    loop {
        let generation = instance.generation.fetch_add(1, Ordering::SeqCst) + 1;
        instance.ready.store(false, Ordering::SeqCst);
        let started = Instant::now();
        let mut child = match spawn(&host, &function.spec, index, generation) {
            Ok(child) => child,
            Err(error) => {
                warn!(instance = %name, %error, "could not start the bootstrap");
                tokio::select! {
                    () = host.shutdown.cancelled() => return,
                    () = tokio::time::sleep(RESTART_BACKOFF) => continue,
                }
            }
        };
        let pid = child.id().unwrap_or_default();
        debug!(instance = %name, pid, generation, "started");
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(copy_lines(stdout, name.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(copy_lines(stderr, name.clone()));
        }
        let why = tokio::select! {
            status = child.wait() => format!("exited ({})", status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string())),
            () = instance.restart.notified() => "stopped after a timeout".to_owned(),
            () = host.shutdown.cancelled() => "stopped: the host stops".to_owned(),
        };
        stop_child(&mut child).await;
        // Its invocation, if it held one, ends with it.
        let orphaned: Vec<oneshot::Sender<Outcome>> = {
            let mut held = function.held.lock().unwrap_or_else(PoisonError::into_inner);
            let ids: Vec<String> = held
                .iter()
                .filter(|(_, (holder, _, _))| *holder == index)
                .map(|(id, _)| id.clone())
                .collect();
            ids.into_iter()
                .filter_map(|id| held.remove(&id).map(|(_, _, reply)| reply))
                .collect()
        };
        for reply in orphaned {
            let _ = reply.send(Outcome::Error(error_document(
                "Runtime.ExitError",
                &format!("the function's process {why} before answering"),
            )));
        }
        if host.shutdown.is_cancelled() {
            return;
        }
        // A pause first: a stop signal reaches the functions' processes and this one together
        // (one process group), and the host must not start what it is about to stop.
        let pause = if started.elapsed() < RESTART_BACKOFF {
            RESTART_BACKOFF
        } else {
            RESTART_PAUSE
        };
        tokio::select! {
            () = host.shutdown.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
        warn!(instance = %name, pid, %why, "instance ended; started again");
    }
}

fn spawn(
    host: &Host,
    spec: &FunctionSpec,
    index: usize,
    generation: u64,
) -> std::io::Result<tokio::process::Child> {
    let settings = &host.settings;
    let task_root = settings
        .bootstrap
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    Command::new(&settings.bootstrap)
        .envs(settings.environment.iter().map(|(k, v)| (k, v)))
        .env("_HANDLER", &spec.handler)
        .env("AWS_LAMBDA_FUNCTION_NAME", &spec.name)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            settings.memory_mb.to_string(),
        )
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", spec.name),
        )
        .env(
            "AWS_LAMBDA_LOG_STREAM_NAME",
            format!("local/{index}/{generation}"),
        )
        .env(
            "AWS_LAMBDA_RUNTIME_API",
            format!(
                "{}/{}/{index}/{generation}",
                host.runtime_base, spec.handler
            ),
        )
        .env("AWS_REGION", &settings.region)
        .env("LAMBDA_TASK_ROOT", task_root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
}

/// SIGTERM (through `kill`), then SIGKILL after [`STOP_GRACE`].
async fn stop_child(child: &mut tokio::process::Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
    }
    if tokio::time::timeout(STOP_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

/// Copies a function's output to stdout, line by line, prefixed with its instance.
async fn copy_lines(stream: impl AsyncRead + Unpin, name: String) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        #[allow(clippy::print_stdout)] // the functions' log is this process's stdout
        {
            println!("{name} | {line}");
        }
    }
}

fn error_document(error_type: &str, message: &str) -> Bytes {
    Bytes::from(json!({"errorType": error_type, "errorMessage": message}).to_string())
}

async fn accept(listener: TcpListener, host: Arc<Host>) {
    loop {
        let stream = tokio::select! {
            () = host.shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    warn!(%error, "accept failed");
                    continue;
                }
            },
        };
        let host = Arc::clone(&host);
        tokio::spawn(async move {
            let shutdown = host.shutdown.clone();
            let service = service_fn(move |request| handle(Arc::clone(&host), request));
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                result = connection => {
                    if let Err(error) = result {
                        debug!(%error, "connection closed");
                    }
                }
                () = shutdown.cancelled() => {}
            }
        });
    }
}

type Answer = Response<Full<Bytes>>;

fn answer(status: StatusCode, body: impl Into<Bytes>) -> Answer {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

async fn handle(
    host: Arc<Host>,
    request: Request<Incoming>,
) -> Result<Answer, std::convert::Infallible> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let answer = match (method, segments.as_slice()) {
        (Method::POST, ["2015-03-31", "functions", handler, "invocations"]) => {
            let handler = (*handler).to_owned();
            match request.into_body().collect().await {
                Ok(body) => invoke(&host, &handler, body.to_bytes()).await,
                Err(error) => answer(StatusCode::BAD_REQUEST, error.to_string()),
            }
        }
        (
            Method::GET,
            [
                handler,
                index,
                generation,
                "2018-06-01",
                "runtime",
                "invocation",
                "next",
            ],
        ) => match instance_of(&host, handler, index, generation) {
            Some((function, index, generation)) => next(&host, &function, index, generation).await,
            None => answer(StatusCode::GONE, "not a current instance"),
        },
        (
            Method::POST,
            [
                handler,
                index,
                generation,
                "2018-06-01",
                "runtime",
                "invocation",
                id,
                kind @ ("response" | "error"),
            ],
        ) => {
            let id = (*id).to_owned();
            let is_error = *kind == "error";
            match instance_of(&host, handler, index, generation) {
                Some((function, index, _)) => match request.into_body().collect().await {
                    Ok(body) => {
                        let body = body.to_bytes();
                        let outcome = if is_error {
                            Outcome::Error(body)
                        } else {
                            Outcome::Response(body)
                        };
                        settle(&function, index, &id, outcome)
                    }
                    Err(error) => answer(StatusCode::BAD_REQUEST, error.to_string()),
                },
                None => answer(StatusCode::GONE, "not a current instance"),
            }
        }
        (Method::POST, [handler, index, _, "2018-06-01", "runtime", "init", "error"]) => {
            let body = request
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            warn!(instance = %format!("{handler}#{index}"), error = %String::from_utf8_lossy(&body), "the function failed to initialise");
            answer(StatusCode::ACCEPTED, "")
        }
        _ => answer(StatusCode::NOT_FOUND, format!("no such Lambda API: {path}")),
    };
    Ok(answer)
}

/// The function and instance a Runtime API path names, if that process is the current one.
fn instance_of(
    host: &Host,
    handler: &str,
    index: &str,
    generation: &str,
) -> Option<(Arc<FunctionState>, usize, u64)> {
    let function = host.functions.get(handler)?;
    let index: usize = index.parse().ok()?;
    let generation: u64 = generation.parse().ok()?;
    let instance = function.instances.get(index)?;
    (instance.generation.load(Ordering::SeqCst) == generation)
        .then(|| (Arc::clone(function), index, generation))
}

/// An invoke: queued for a free instance, answered as Lambda's Invoke API answers.
async fn invoke(host: &Host, handler: &str, payload: Bytes) -> Answer {
    let Some(function) = host.functions.get(handler) else {
        let mut response = answer(
            StatusCode::NOT_FOUND,
            json!({"Type": "User", "Message": format!("Function not found: {handler}")})
                .to_string(),
        );
        response.headers_mut().insert(
            "x-amzn-errortype",
            HeaderValue::from_static("ResourceNotFoundException"),
        );
        return response;
    };
    let id = format!(
        "{:08x}-local-{}",
        host.requests.fetch_add(1, Ordering::SeqCst),
        uuid::Uuid::new_v4().simple()
    );
    let (reply, outcome) = oneshot::channel();
    if function
        .sender
        .send(Invocation { id, payload, reply })
        .is_err()
    {
        return answer(StatusCode::SERVICE_UNAVAILABLE, "the host is stopping");
    }
    match outcome.await {
        Ok(Outcome::Response(body)) => answer(StatusCode::OK, body),
        Ok(Outcome::Error(body)) => {
            let mut response = answer(StatusCode::OK, body);
            response.headers_mut().insert(
                "x-amz-function-error",
                HeaderValue::from_static("Unhandled"),
            );
            response
        }
        Err(_) => answer(StatusCode::SERVICE_UNAVAILABLE, "the host is stopping"),
    }
}

/// `next`: the instance is free; it gets the oldest waiting invocation (waiting for one).
async fn next(host: &Host, function: &Arc<FunctionState>, index: usize, generation: u64) -> Answer {
    let instance = &function.instances[index];
    instance.ready.store(true, Ordering::SeqCst);
    let invocation = {
        let mut queue = function.queue.lock().await;
        tokio::select! {
            invocation = queue.recv() => invocation,
            () = host.shutdown.cancelled() => None,
        }
    };
    let Some(invocation) = invocation else {
        return answer(StatusCode::SERVICE_UNAVAILABLE, "the host is stopping");
    };
    if instance.generation.load(Ordering::SeqCst) != generation {
        // The process that asked has ended meanwhile: the invocation waits for another.
        let _ = function.sender.send(invocation);
        return answer(StatusCode::GONE, "not a current instance");
    }
    let timeout = function.spec.timeout;
    let deadline_ms = SystemTime::now()
        .checked_add(timeout)
        .and_then(|d| d.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis());
    let id = invocation.id.clone();
    function
        .held
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id.clone(), (index, generation, invocation.reply));
    // The function's Timeout: then Lambda answers for it and stops the instance.
    let watched = Arc::clone(function);
    let watched_id = id.clone();
    tokio::spawn(async move {
        tokio::time::sleep(timeout).await;
        let expired = watched
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&watched_id);
        if let Some((holder, held_generation, reply)) = expired {
            warn!(function = %watched.spec.handler, instance = holder, timeout_s = timeout.as_secs(), "invocation timed out; stopping the instance");
            let _ = reply.send(Outcome::Error(error_document(
                "Sandbox.Timedout",
                &format!("Task timed out after {:.2} seconds", timeout.as_secs_f64()),
            )));
            let instance = &watched.instances[holder];
            if instance.generation.load(Ordering::SeqCst) == held_generation {
                instance.restart.notify_one();
            }
        }
    });
    let mut response = answer(StatusCode::OK, invocation.payload);
    let headers = response.headers_mut();
    let mut put = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    put("lambda-runtime-aws-request-id", id);
    put("lambda-runtime-deadline-ms", deadline_ms.to_string());
    put(
        "lambda-runtime-invoked-function-arn",
        format!(
            "arn:aws:lambda:{}:000000000000:function:{}",
            host.settings.region, function.spec.name
        ),
    );
    put(
        "lambda-runtime-trace-id",
        format!(
            "Root=1-{:08x}-{}",
            deadline_ms / 1000,
            uuid::Uuid::new_v4().simple()
        ),
    );
    response
}

/// `response` / `error`: the invocation's outcome, to whoever waits for it.
fn settle(function: &FunctionState, index: usize, id: &str, outcome: Outcome) -> Answer {
    let held = function
        .held
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(id);
    match held {
        Some((holder, _, reply)) if holder == index => {
            let _ = reply.send(outcome);
            answer(StatusCode::ACCEPTED, "")
        }
        Some(other) => {
            // Not this instance's: put it back.
            function
                .held
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id.to_owned(), other);
            answer(StatusCode::BAD_REQUEST, "not this instance's invocation")
        }
        // Timed out already (answered for it).
        None => answer(StatusCode::GONE, "the invocation is over"),
    }
}

/// Reads an env file (`KEY=VALUE` lines; blank lines and `#` comments skipped).
pub fn read_env_file(path: &Path) -> Result<Vec<(String, String)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut pairs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .with_context(|| format!("{}:{}: not KEY=VALUE", path.display(), n + 1))?;
        pairs.push((key.trim().to_owned(), value.to_owned()));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_are_key_value_lines() {
        let dir = std::env::temp_dir().join(format!("host-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("stack.env");
        std::fs::write(&file, "# comment\nA=1\n\nB=x=y\n").unwrap();
        assert_eq!(
            read_env_file(&file).unwrap(),
            vec![("A".into(), "1".into()), ("B".into(), "x=y".into())]
        );
        std::fs::write(&file, "not a pair\n").unwrap();
        assert!(read_env_file(&file).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
