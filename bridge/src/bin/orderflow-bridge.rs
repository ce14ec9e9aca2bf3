//! `orderflow-bridge` — runs orderflow locally without Docker, from `template.yaml`: `setup`
//! creates the resources on the emulator at `AWS_ENDPOINT_URL` and writes the functions' env file;
//! `functions` plays Lambda (every function as processes of the one bootstrap, behind the Invoke
//! API); `run` plays API Gateway, the event source mappings and the schedules against them. See
//! [`bridge`] and `orderflow-bridge --help`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use bridge::cli::{self, Command, USAGE};
use bridge::host::{self, HostSettings, read_env_file};
use bridge::resources::Resources;
use bridge::run::{CALL_TIMEOUT, RunSettings, emulator_timeouts, run};
use bridge::setup::setup;
use bridge::stack::Stack;
use bridge::template::{Environment, Resolver, Template};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// How long every function's instances have to initialise.
const FUNCTIONS_READY: std::time::Duration = std::time::Duration::from_secs(60);

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,aws=warn")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        eprintln!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let command = match cli::parse(&args) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("{error}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match execute(command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("orderflow-bridge: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Where the emulator is, from the standard variables, and the account it serves (moto's is
/// `123456789012`, LocalStack's `000000000000`): read from the ARN of a probe queue, so that the
/// ARNs the template's `!GetAtt`s resolve to are the ones the emulator knows.
async fn emulator(config: &aws_config::SdkConfig, stage: &str) -> Result<Environment> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .context("AWS_ENDPOINT_URL is not set: point it at the emulator (scripts/run.sh does)")?;
    let region = std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|_| "us-east-1".to_owned());
    let mut env = Environment::local(stage, &region, &endpoint);
    env.account = emulator_account(config)
        .await
        .with_context(|| format!("asking the emulator at {endpoint} for its account"))?;
    Ok(env)
}

async fn emulator_account(config: &aws_config::SdkConfig) -> Result<String> {
    let sqs = aws_sdk_sqs::Client::new(config);
    let url = sqs
        .create_queue()
        .queue_name("orderflow-bridge-probe")
        .send()
        .await
        .map_err(aws_sdk_sqs::Error::from)?
        .queue_url
        .context("the probe queue has no URL")?;
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(aws_sdk_sqs::Error::from)?
        .attributes
        .and_then(|mut a| a.remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .context("the probe queue has no ARN")?;
    arn.split(':')
        .nth(4)
        .filter(|account| !account.is_empty())
        .map(str::to_owned)
        .with_context(|| format!("{arn} names no account"))
}

async fn execute(command: Command) -> Result<()> {
    // Every emulator call ends: bounded connections and answers (bridge::run).
    let config = aws_config::from_env()
        .timeout_config(emulator_timeouts(CALL_TIMEOUT))
        .load()
        .await;
    match command {
        Command::Setup(options) => {
            let env = emulator(&config, &options.stage).await?;
            let template = Template::load(&options.template)?;
            let resources = Resources::from_template(&Resolver::new(&template, env.clone()))?;
            let report = setup(
                &config,
                &resources,
                &options.inbox_topic,
                &env.endpoint,
                &env.region,
                &options.env_file,
            )
            .await?;
            print_summary(&report, &options.env_file);
            Ok(())
        }
        Command::Run(options) => {
            let env = emulator(&config, &options.stage).await?;
            let template = Template::load(&options.template)?;
            let stack = Stack::from_template(&Resolver::new(&template, env.clone()))?;
            let shutdown = CancellationToken::new();
            tokio::spawn(stop_on_signal(shutdown.clone()));
            let settings = RunSettings {
                functions: options.functions,
                api_port: options.api_port,
                ready_file: options.ready_file,
                retry_after: options.retry_after,
                function_instances: options.function_instances,
                faults: options.faults,
            };
            run(&config, &env, stack, settings, shutdown).await
        }
        Command::Functions(options) => serve_functions(options).await,
    }
}

/// `functions`: every function's processes behind the Invoke API until SIGINT or SIGTERM. Reads
/// only the template (no emulator call): the functions reach the emulator themselves.
async fn serve_functions(options: bridge::cli::FunctionsOptions) -> Result<()> {
    let template = Template::load(&options.template)?;
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned());
    let env = Environment::local(&options.stage, &region, "");
    let stack = Stack::from_template(&Resolver::new(&template, env))?;
    let memory_mb = template
        .function_global("MemorySize")
        .and_then(serde_norway::Value::as_u64)
        .and_then(|m| u32::try_from(m).ok())
        .unwrap_or(128);
    let settings = HostSettings {
        bootstrap: options.bootstrap,
        environment: read_env_file(&options.env_file)?,
        instances: options.instances,
        port: options.listen_port,
        memory_mb,
        region,
    };
    let host = host::start(&stack.functions, settings).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    tokio::select! {
        ready = host.ready(FUNCTIONS_READY) => ready?,
        () = shutdown.cancelled() => {
            host.stop().await;
            return Ok(());
        }
    }
    if let Some(file) = &options.ready_file {
        std::fs::write(file, format!("{}\n", host.url()))
            .with_context(|| format!("writing {}", file.display()))?;
    }
    tracing::info!(url = %host.url(), "every function's instances are initialised");
    shutdown.cancelled().await;
    host.stop().await;
    Ok(())
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn stop_on_signal(shutdown: CancellationToken) {
    bridge::signal::stop_requested().await;
    tracing::info!("signal received");
    shutdown.cancel();
}

#[allow(clippy::print_stdout)]
fn print_summary(report: &bridge::setup::SetupReport, env_file: &std::path::Path) {
    println!(
        "tables: {} created, {} kept ({})",
        report.tables_created.len(),
        report.tables_kept.len(),
        [report.tables_created.clone(), report.tables_kept.clone()]
            .concat()
            .join(", ")
    );
    println!("buses: {}", report.buses.join(", "));
    println!("queues: {}", report.queues);
    println!("rules: {} with {} target(s)", report.rules, report.targets);
    println!("topics: {}", report.topics.join(", "));
    if let Some(inbox) = &report.inbox_url {
        println!("notifications inbox: {inbox}");
    }
    println!(
        "env file: {} ({} function variables)",
        env_file.display(),
        report.variables
    );
    for skipped in &report.skipped {
        println!("not created: {skipped}");
    }
}
