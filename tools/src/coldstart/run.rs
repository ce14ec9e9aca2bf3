//! One run of one target ([`run_once`]): the fake Runtime API, the process with the Lambda
//! environment, the two timings and the two memory readings; then the whole interleaved
//! measurement ([`measure`]).

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use super::runtime_api::{Call, Invocation, RuntimeApi};
use super::{Failure, Measurement, Plan, RunFailure, Sample, Target, TargetResult};

/// The region the Lambda environment names unless the caller's variables set `AWS_REGION`.
pub const DEFAULT_REGION: &str = "us-east-1";
/// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`.
pub const MEMORY_SIZE_MB: u32 = 256;
/// The variables of the caller's environment the process keeps; everything else is cleared.
pub const KEPT_VARIABLES: [&str; 2] = ["PATH", "HOME"];
/// How many of the process's last output lines a failure shows.
const OUTPUT_LINES: usize = 30;

/// The environment Lambda gives a function's process (the subset the runtime and the SDK read),
/// then `extra` in order (later pairs override earlier ones).
pub fn lambda_environment(
    function: &str,
    runtime_api: &str,
    task_root: &Path,
    run: usize,
    extra: &[(String, String)],
) -> Vec<(String, String)> {
    let region = region(extra);
    let mut env: Vec<(String, String)> = [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", function.to_owned()),
        ("_HANDLER", function.to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            MEMORY_SIZE_MB.to_string(),
        ),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        ),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            format!("coldstart/[$LATEST]run{run}"),
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("LAMBDA_TASK_ROOT", task_root.display().to_string()),
        ("AWS_REGION", region.clone()),
        ("AWS_DEFAULT_REGION", region),
        ("TZ", ":UTC".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(extra.iter().cloned());
    env
}

fn region(extra: &[(String, String)]) -> String {
    extra
        .iter()
        .rev()
        .find(|(k, _)| k == "AWS_REGION")
        .map_or_else(|| DEFAULT_REGION.to_owned(), |(_, v)| v.clone())
}

/// The peak resident set size (`VmHWM`, KiB) in a `/proc/PID/status` text.
pub fn vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|number| number.trim().parse().ok())
}

fn read_vm_hwm(pid: u32) -> Result<u64, Failure> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path)
        .map_err(|error| Failure::new(format!("reading {path}: {error}")))?;
    vm_hwm_kib(&status).ok_or_else(|| Failure::new(format!("{path} has no VmHWM line")))
}

/// Runs `target`'s binary once with `payload` as its first event and `extra` variables; the
/// process is killed and reaped before this returns, whatever happened.
pub async fn run_once(
    target: &Target,
    payload: Bytes,
    extra: &[(String, String)],
    run: usize,
    timeout: Duration,
) -> Result<Sample, Failure> {
    let region = region(extra);
    let invocation = Invocation {
        request_id: uuid::Uuid::new_v4().to_string(),
        function_arn: format!(
            "arn:aws:lambda:{region}:123456789012:function:{}",
            target.function
        ),
        trace_id: trace_id(),
        time_limit: timeout,
        payload,
    };
    let request_id = invocation.request_id.clone();
    let mut api = RuntimeApi::start(invocation)
        .await
        .map_err(|error| Failure::new(format!("{error:#}")))?;
    let task_root = target.binary.parent().unwrap_or(Path::new("/"));
    let mut command = Command::new(&target.binary);
    command
        .env_clear()
        .envs(
            KEPT_VARIABLES
                .iter()
                .filter_map(|name| std::env::var(name).ok().map(|value| (*name, value))),
        )
        .envs(lambda_environment(
            &target.function,
            &api.address(),
            task_root,
            run,
            extra,
        ))
        .current_dir(task_root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|error| Failure::new(format!("spawning {}: {error}", target.binary.display())))?;
    let output = Output::capture(&mut child);
    let outcome = tokio::time::timeout(timeout, drive(&mut api, &mut child, started, &request_id))
        .await
        .unwrap_or_else(|_| {
            Err(Failure::new(format!(
                "no answer to the invocation within {} s",
                timeout.as_secs_f64()
            )))
        });
    // By its id (tokio's Child::start_kill signals the pid it spawned), then reaped.
    let _ = child.start_kill();
    let _ = child.wait().await;
    drop(api);
    let tail = output.finish().await;
    outcome.map_err(|failure| failure.with_output(tail))
}

/// Waits for the first `next` (init), lets the event go, waits for its answer (first invoke).
async fn drive(
    api: &mut RuntimeApi,
    child: &mut Child,
    started: Instant,
    request_id: &str,
) -> Result<Sample, Failure> {
    let pid = child
        .id()
        .ok_or_else(|| Failure::new("the process has no id".to_owned()))?;
    let (init, rss_at_init_kib, released_at) =
        match next_call(api, child, "before asking for an invocation").await? {
            Call::Next { at, release } => {
                let rss = read_vm_hwm(pid)?;
                let _ = release.send(());
                (at.duration_since(started), rss, Instant::now())
            }
            Call::InitError { error_type, body } => {
                return Err(Failure::new(format!(
                    "init error{}: {}",
                    type_suffix(error_type.as_deref()),
                    text(&body)
                )));
            }
            other => return Err(unexpected(&other, "before asking for an invocation")),
        };
    match next_call(api, child, "before answering the invocation").await? {
        Call::Response {
            at,
            request_id: id,
            body,
        } if id == request_id => Ok(Sample {
            init,
            first_invoke: at.saturating_duration_since(released_at),
            rss_at_init_kib,
            rss_after_invoke_kib: read_vm_hwm(pid)?,
            response: body,
        }),
        Call::InvokeError {
            request_id: id,
            error_type,
            body,
            ..
        } if id == request_id => Err(Failure::new(format!(
            "the invocation returned an error{}: {}",
            type_suffix(error_type.as_deref()),
            text(&body)
        ))),
        other => Err(unexpected(&other, "instead of answering the invocation")),
    }
}

async fn next_call(api: &mut RuntimeApi, child: &mut Child, when: &str) -> Result<Call, Failure> {
    tokio::select! {
        call = api.call() => call.ok_or_else(|| Failure::new("the Runtime API stopped".to_owned())),
        status = child.wait() => Err(Failure::new(match status {
            Ok(status) => format!("the process exited ({status}) {when}"),
            Err(error) => format!("waiting for the process: {error}"),
        })),
    }
}

fn unexpected(call: &Call, when: &str) -> Failure {
    let what = match call {
        Call::Next { .. } => "asked for another invocation".to_owned(),
        Call::Response { request_id, .. } => format!("answered an unknown request {request_id}"),
        Call::InvokeError { request_id, .. } => {
            format!("reported an error for an unknown request {request_id}")
        }
        Call::InitError { body, .. } => format!("reported an init error: {}", text(body)),
        Call::Unexpected { request } => format!("sent {request}"),
    };
    Failure::new(format!("the process {what} {when}"))
}

fn type_suffix(error_type: Option<&str>) -> String {
    error_type.map_or_else(String::new, |t| format!(" ({t})"))
}

fn text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(500) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// An X-Ray trace header with a fresh id, the shape Lambda sends.
fn trace_id() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    format!(
        "Root=1-{seconds:08x}-{};Parent={};Sampled=0",
        &hex[..24],
        &hex[16..32]
    )
}

/// The process's last output lines, stdout and stderr together (read all along, so a chatty
/// process never blocks on a full pipe).
struct Output {
    lines: Arc<Mutex<VecDeque<String>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Output {
    fn capture(child: &mut Child) -> Self {
        let lines = Arc::new(Mutex::new(VecDeque::new()));
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(tokio::spawn(keep_tail(stdout, Arc::clone(&lines))));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(tokio::spawn(keep_tail(stderr, Arc::clone(&lines))));
        }
        Self { lines, readers }
    }

    /// Waits until both pipes are closed (the process is gone) and returns the lines.
    async fn finish(self) -> Vec<String> {
        for reader in self.readers {
            let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
        }
        self.lines
            .lock()
            .map(|lines| lines.iter().cloned().collect())
            .unwrap_or_default()
    }
}

async fn keep_tail(pipe: impl AsyncRead + Unpin, lines: Arc<Mutex<VecDeque<String>>>) {
    let mut reader = BufReader::new(pipe).lines();
    while let Ok(Some(line)) = reader.next_line().await {
        if let Ok(mut lines) = lines.lock() {
            if lines.len() == OUTPUT_LINES {
                lines.pop_front();
            }
            lines.push_back(line);
        }
    }
}

/// Reads every target's event, then runs the plan: round after round, each target once per
/// round (each round starting one target further on), stopping after a round in which a run
/// failed. `progress` is told after each round.
pub async fn measure(
    plan: &Plan,
    mut progress: impl FnMut(usize, &[TargetResult]),
) -> anyhow::Result<Measurement> {
    let all: Vec<&Target> = std::iter::once(&plan.baseline)
        .chain(plan.targets.iter())
        .collect();
    let mut events = Vec::new();
    for target in &all {
        events.push(event(target)?);
        if !target.binary.is_file() {
            bail!(
                "{}: {} is not a file",
                target.label,
                target.binary.display()
            );
        }
    }
    let mut results: Vec<TargetResult> = all
        .iter()
        .map(|target| TargetResult {
            target: (*target).clone(),
            size_bytes: std::fs::metadata(&target.binary).map(|m| m.len()).ok(),
            samples: Vec::new(),
        })
        .collect();
    let mut failures = Vec::new();
    for round in 0..plan.runs {
        for offset in 0..all.len() {
            let index = (round + offset) % all.len();
            let target = all[index];
            let mut env = plan.env.clone();
            env.extend(target.env.iter().cloned());
            match run_once(target, events[index].clone(), &env, round + 1, plan.timeout).await {
                Ok(sample) => results[index].samples.push(sample),
                Err(failure) => failures.push(RunFailure {
                    label: target.label.clone(),
                    run: round + 1,
                    failure,
                }),
            }
        }
        progress(round + 1, &results);
        if !failures.is_empty() {
            break;
        }
    }
    Ok(Measurement {
        runs: plan.runs,
        results,
        failures,
    })
}

fn event(target: &Target) -> anyhow::Result<Bytes> {
    let Some(path) = &target.event else {
        return Ok(Bytes::from_static(b"{}"));
    };
    let bytes = std::fs::read(path)
        .with_context(|| format!("{}: reading the event {}", target.label, path.display()))?;
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .with_context(|| format!("{}: the event {} is not JSON", target.label, path.display()))?;
    Ok(Bytes::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_rss_is_read_from_a_proc_status() {
        let status =
            "Name:\tbootstrap\nVmPeak:\t  120000 kB\nVmHWM:\t   11264 kB\nVmRSS:\t   10000 kB\n";
        assert_eq!(vm_hwm_kib(status), Some(11264));
        assert_eq!(vm_hwm_kib("Name:\tx\nVmRSS:\t 1 kB\n"), None);
        assert_eq!(vm_hwm_kib("VmHWM:\t lots kB\n"), None);
        // This very process has one.
        let own = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(vm_hwm_kib(&own).unwrap() > 0);
    }

    #[test]
    fn the_lambda_environment_names_the_function_and_lets_the_caller_override() {
        let extra = vec![
            ("AWS_REGION".to_owned(), "eu-west-1".to_owned()),
            ("EVENTS_TABLE".to_owned(), "events".to_owned()),
        ];
        let env = lambda_environment("order-api", "127.0.0.1:9001", Path::new("/t"), 3, &extra);
        let get = |name: &str| {
            env.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("AWS_LAMBDA_RUNTIME_API"), Some("127.0.0.1:9001"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_NAME"), Some("order-api"));
        assert_eq!(get("_HANDLER"), Some("order-api"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_VERSION"), Some("$LATEST"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), Some("256"));
        assert_eq!(
            get("AWS_LAMBDA_LOG_GROUP_NAME"),
            Some("/aws/lambda/order-api")
        );
        assert!(get("AWS_LAMBDA_LOG_STREAM_NAME").is_some());
        assert_eq!(get("LAMBDA_TASK_ROOT"), Some("/t"));
        assert_eq!(get("AWS_REGION"), Some("eu-west-1"));
        assert_eq!(get("AWS_DEFAULT_REGION"), Some("eu-west-1"));
        assert_eq!(get("EVENTS_TABLE"), Some("events"));
        let default = lambda_environment("f", "a", Path::new("/t"), 1, &[]);
        assert!(default.contains(&("AWS_REGION".to_owned(), DEFAULT_REGION.to_owned())));
    }

    #[test]
    fn a_trace_id_has_lambdas_shape() {
        let id = trace_id();
        let parts: Vec<&str> = id.split(';').collect();
        assert_eq!(parts.len(), 3, "{id}");
        assert!(parts[0].starts_with("Root=1-") && parts[0].len() == "Root=1-".len() + 8 + 1 + 24);
        assert!(parts[1].starts_with("Parent=") && parts[1].len() == "Parent=".len() + 16);
        assert_eq!(parts[2], "Sampled=0");
    }

    #[test]
    fn long_bodies_are_cut() {
        assert_eq!(text(b"  short \n"), "short");
        let long = "é".repeat(600);
        assert_eq!(text(long.as_bytes()).chars().count(), 501);
    }
}
