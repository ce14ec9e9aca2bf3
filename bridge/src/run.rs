//! `orderflow-bridge run`: starts everything the stack plays — the HTTP API on 127.0.0.1 with its
//! JWT authorizers, one poller per SQS mapping, one per stream mapping, one task per schedule —
//! writes the API's URL to the ready file and stdout once all of it is up, and stops when
//! `shutdown` fires (in-flight invokes finish and settle their messages first, within a bound).
//!
//! The authorizers' issuer and audience name the user pool and app client that setup created:
//! `run` finds their ids on the emulator by the names the template gives them, fills them in and
//! fetches the pool's keys before the API opens.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_config::SdkConfig;
use aws_config::timeout::TimeoutConfig;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::authorizer::{Authorizers, JwtAuthorizer, JwtConfig, jwks_url};
use super::faults::{BatchFaults, FaultSettings};
use super::http_server::{ApiGateway, serve};
use super::invoke::Invoker;
use super::resources::{cognito_endpoint, service_endpoints_from_env};
use super::scheduler::{PERIOD_OVERRIDE_VAR, ScheduleRunner, effective_period};
use super::sqs_poller::{LONG_POLL, SqsPoller};
use super::stack::{AssignedRef, Stack};
use super::stream_poller::StreamPoller;
use super::template::Environment;
use super::warm_up::warm_up;
use crate::identity::{find_app_client, find_user_pool};

/// Extra time a function's first invoke may take (its first connections; a Lambda emulator may
/// start its process then).
const COLD_START_GRACE: Duration = Duration::from_secs(120);
/// How long stopping may wait for in-flight invokes.
const STOP_GRACE: Duration = Duration::from_secs(15);
/// Batches of one queue in flight at once when the mapping sets no `ScalingConfig` (Lambda starts
/// an SQS event source with five pollers).
const DEFAULT_SQS_CONCURRENCY: usize = 5;
/// How long the bridge waits for a connection to the emulator.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one emulator call may take before the bridge gives up on it (and says so): SQS's long
/// polls wait up to 20 s for messages, every other call answers at once.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Every emulator call the bridge makes has a bound: the timeouts its SDK clients are built with,
/// where `call` is the longest one attempt may take (the SDK retries a timed-out attempt, within
/// three attempts).
pub fn emulator_timeouts(call: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(call)
        .operation_timeout(call * 3)
        .build()
}

/// What `run` needs besides the stack.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// The Lambda invoke API.
    pub functions: String,
    /// The API's port (0: any).
    pub api_port: u16,
    /// Where to write the API's URL when ready.
    pub ready_file: Option<std::path::PathBuf>,
    /// The local cap on failed SQS messages' visibility timeout.
    pub retry_after: Duration,
    /// Instances of each function the Lambda emulator runs at once.
    pub function_instances: usize,
    /// The soak's faults on SQS and stream batches (none by default).
    pub faults: FaultSettings,
}

/// Writes `contents` to `path` atomically (a reader never sees half of it).
pub(crate) fn write_atomically(path: &Path, contents: &str) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let partial = path.with_extension("partial");
    std::fs::write(&partial, contents)?;
    std::fs::rename(&partial, path)?;
    Ok(())
}

/// A queue's URL (`user` names who needs it, for the error).
async fn queue_url(sqs: &aws_sdk_sqs::Client, name: &str, user: &str) -> Result<String> {
    Ok(sqs
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(aws_sdk_sqs::Error::from)
        .with_context(|| format!("queue {name} of {user} (run `orderflow-bridge setup` first)"))?
        .queue_url
        .unwrap_or_default())
}

/// The table's stream ARN.
async fn stream_arn(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> Result<String> {
    dynamodb
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(aws_sdk_dynamodb::Error::from)
        .with_context(|| format!("table {table} (run `orderflow-bridge setup` first)"))?
        .table
        .and_then(|t| t.latest_stream_arn)
        .with_context(|| format!("table {table} has no stream"))
}

/// The ids the emulator gave the resources `needed` names (user pools, app clients), found by the
/// names the template gives them; a client is looked up in its pool.
async fn find_assigned(
    config: &SdkConfig,
    refs: &[AssignedRef],
    needed: &BTreeSet<&str>,
) -> Result<BTreeMap<String, String>> {
    let mut wanted: BTreeSet<&str> = needed.clone();
    for reference in refs {
        if let AssignedRef::AppClient {
            logical_id, pool, ..
        } = reference
            && needed.contains(logical_id.as_str())
        {
            wanted.insert(pool);
        }
    }
    let mut ids = BTreeMap::new();
    // Pools before clients.
    for reference in refs
        .iter()
        .filter(|r| matches!(r, AssignedRef::UserPool { .. }))
    {
        let AssignedRef::UserPool { logical_id, name } = reference else {
            continue;
        };
        if wanted.contains(logical_id.as_str()) {
            let id = find_user_pool(config, name).await?.with_context(|| {
                format!(
                    "no user pool named {name} ({logical_id}): run `orderflow-bridge setup` first"
                )
            })?;
            ids.insert(logical_id.clone(), id);
        }
    }
    for reference in refs {
        let AssignedRef::AppClient {
            logical_id,
            name,
            pool,
        } = reference
        else {
            continue;
        };
        if wanted.contains(logical_id.as_str()) {
            let pool_id = ids.get(pool).with_context(|| {
                format!("app client {logical_id}: its pool {pool} was not found")
            })?;
            let id = find_app_client(config, pool_id, name)
                .await?
                .with_context(|| {
                    format!("user pool {pool_id} has no app client named {name} ({logical_id}): run `orderflow-bridge setup` first")
                })?;
            ids.insert(logical_id.clone(), id);
        }
    }
    if let Some(missing) = needed.iter().find(|id| !ids.contains_key(**id)) {
        bail!("{missing}: not a user pool or app client of the template");
    }
    Ok(ids)
}

/// The JWT authorizers the routes use, their issuer and audience filled with the ids the emulator
/// gave the user pool and app client, their keys fetched from the pool's JWKS on the emulator.
async fn start_authorizers(
    config: &SdkConfig,
    env: &Environment,
    stack: &Stack,
) -> Result<Authorizers> {
    let mut authorizers = Authorizers::default();
    if stack.authorizers.is_empty() {
        return Ok(authorizers);
    }
    let needed: BTreeSet<&str> = stack.authorizers.iter().flat_map(|a| a.needs()).collect();
    let assigned = find_assigned(config, &stack.assigned, &needed).await?;
    let endpoint = cognito_endpoint(&service_endpoints_from_env(), &env.endpoint);
    for spec in &stack.authorizers {
        let jwt = JwtConfig {
            name: spec.name.clone(),
            identity_header: spec.identity_header.clone(),
            issuer: spec.issuer.fill(&assigned)?,
            audience: spec
                .audience
                .iter()
                .map(|a| a.fill(&assigned))
                .collect::<Result<_, _>>()?,
        };
        let url = jwks_url(&jwt.issuer, &endpoint)?;
        let authorizer = JwtAuthorizer::fetch(jwt, &url).await.with_context(|| {
            format!("authorizer {} of {}: the pool's keys", spec.name, spec.api)
        })?;
        authorizers.insert(&spec.api, &spec.name, authorizer);
    }
    Ok(authorizers)
}

/// Plays `stack` until `shutdown`.
#[allow(clippy::print_stdout)]
pub async fn run(
    config: &SdkConfig,
    env: &Environment,
    stack: Stack,
    settings: RunSettings,
    shutdown: CancellationToken,
) -> Result<()> {
    for skipped in &stack.skipped {
        info!(%skipped, "not played locally");
    }
    if settings.faults.any() {
        warn!(faults = ?settings.faults, "playing faults on SQS and stream batches (a soak)");
    }
    let invoker = Invoker::new(&settings.functions, COLD_START_GRACE)
        .with_faults(BatchFaults::new(settings.faults.clone()));
    // `config` carries emulator_timeouts(CALL_TIMEOUT) (orderflow-bridge loads it so); the SQS
    // client allows for the long polls.
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(config)
            .timeout_config(emulator_timeouts(LONG_POLL + CALL_TIMEOUT))
            .build(),
    );
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let streams = aws_sdk_dynamodbstreams::Client::new(config);
    let mut tasks = JoinSet::new();

    let listener = TcpListener::bind(("127.0.0.1", settings.api_port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{}", settings.api_port))?;
    let url = format!("http://{}", listener.local_addr()?);

    let mut queue_pollers = Vec::new();
    for mapping in stack.queues.iter().filter(|m| m.enabled) {
        queue_pollers.push(
            SqsPoller::resolve(&sqs, mapping.clone(), &env.region, settings.retry_after).await?,
        );
    }
    if let Some(first) = queue_pollers.first() {
        info!(
            retry_after_s = first.failed_visibility().as_secs(),
            queue_visibility_timeout_s = first.mapping.visibility_timeout.as_secs(),
            "failed SQS messages return after the queue's VisibilityTimeout capped at {} s for local use (--retry-after-seconds)",
            settings.retry_after.as_secs()
        );
    }
    let mut stream_pollers = Vec::new();
    for mapping in stack.streams.iter().filter(|m| m.enabled) {
        let on_failure_url = match &mapping.on_failure {
            Some(queue) => Some(queue_url(&sqs, &queue.name, &mapping.name).await?),
            None => None,
        };
        stream_pollers.push(StreamPoller {
            stream_arn: stream_arn(&dynamodb, &mapping.table_name).await?,
            on_failure_url,
            function_arn: format!(
                "arn:aws:lambda:{}:{}:function:{}",
                env.region, env.account, mapping.function.name
            ),
            region: env.region.clone(),
            mapping: mapping.clone(),
        });
    }
    let period_override = std::env::var(PERIOD_OVERRIDE_VAR).ok();
    let mut schedule_runners = Vec::new();
    for schedule in stack.schedules.iter().filter(|s| s.enabled) {
        let dead_letter_url = match &schedule.dead_letter {
            Some(queue) => Some(queue_url(&sqs, &queue.name, &schedule.name).await?),
            None => None,
        };
        schedule_runners.push(ScheduleRunner {
            schedule: schedule.clone(),
            period: effective_period(schedule, period_override.as_deref()),
            account: env.account.clone(),
            region: env.region.clone(),
            dead_letter_url,
        });
    }
    let authorizers = start_authorizers(config, env, &stack).await?;
    if stack.routes.routes().is_empty() && queue_pollers.is_empty() && stream_pollers.is_empty() {
        bail!("the template declares nothing the bridge plays");
    }

    // Every function started, one at a time, before any event flows (see `warm_up`).
    tokio::select! {
        warmed = warm_up(&invoker, &stack, env) => warmed?,
        () = shutdown.cancelled() => return Ok(()),
    }

    for poller in queue_pollers {
        // Lambda reads a queue with several pollers, each with its batch in flight, up to the
        // mapping's MaximumConcurrency; locally, up to the instances each function has.
        let pollers = poller
            .mapping
            .max_concurrency
            .unwrap_or(DEFAULT_SQS_CONCURRENCY)
            .min(settings.function_instances)
            .max(1);
        for _ in 0..pollers {
            tasks.spawn(
                poller
                    .clone()
                    .run(sqs.clone(), invoker.clone(), shutdown.clone()),
            );
        }
    }
    for poller in stream_pollers {
        tasks.spawn(poller.run(
            streams.clone(),
            sqs.clone(),
            invoker.clone(),
            shutdown.clone(),
        ));
    }
    for runner in schedule_runners {
        tasks.spawn(runner.run(sqs.clone(), invoker.clone(), shutdown.clone()));
    }
    let authorizer_count = authorizers.len();
    let gateway = Arc::new(ApiGateway {
        routes: stack.routes.clone(),
        authorizers,
        invoker,
        account_id: env.account.clone(),
    });
    tasks.spawn(serve(listener, gateway, shutdown.clone()));

    info!(
        api = %url,
        routes = stack.routes.routes().len(),
        authorizers = authorizer_count,
        sqs_mappings = stack.queues.len(),
        stream_mappings = stack.streams.len(),
        schedules = stack.schedules.len(),
        functions = %settings.functions,
        "bridge ready"
    );
    if let Some(path) = &settings.ready_file {
        write_atomically(path, &format!("{url}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{url}");

    shutdown.cancelled().await;
    info!("stopping: waiting for in-flight invokes");
    let drained = tokio::time::timeout(STOP_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!("in-flight work did not finish within {STOP_GRACE:?}; stopping anyway");
        tasks.abort_all();
    }
    if let Some(path) = &settings.ready_file {
        let _ = std::fs::remove_file(path);
    }
    info!("bridge stopped");
    Ok(())
}
