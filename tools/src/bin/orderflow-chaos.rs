//! `orderflow-chaos` — a seeded fault-injecting proxy in front of the AWS API emulators, for the
//! chaos soak. See [`tools::chaos`] and `orderflow-chaos --help`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use tools::chaos::cli::{self, CliOptions, USAGE};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        eprintln!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let options = match cli::parse(&args) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("{error}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("orderflow-chaos: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Serves until SIGINT or SIGTERM, then prints the counters.
async fn run(options: CliOptions) -> Result<()> {
    let proxy = tools::chaos::serve(options.chaos).await?;
    if let Some(file) = &options.ready_file {
        std::fs::write(file, format!("{}\n", proxy.url()))
            .with_context(|| format!("writing {}", file.display()))?;
    }
    eprintln!("orderflow-chaos: listening on {}", proxy.url());
    bridge::signal::stop_requested().await;
    let summary = proxy.summary();
    proxy.stop().await.context("flushing the journal")?;
    eprintln!("orderflow-chaos: requests and faults by service\n{summary}");
    Ok(())
}
