//! `orderflow-coldstart` — Lambda cold starts measured through a fake Runtime API, against a
//! hello-world floor. See [`tools::coldstart`] and `orderflow-coldstart --help`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use tools::coldstart::cli::{self, CliOptions, USAGE};
use tools::coldstart::{Plan, measure, report};

#[tokio::main]
async fn main() -> ExitCode {
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
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("orderflow-coldstart: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Measures, prints the table (stdout) and the failures (stderr); true if no run failed.
async fn run(options: CliOptions) -> Result<bool> {
    let mut env = match &options.env_file {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            cli::parse_env_file(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?
        }
        None => Vec::new(),
    };
    env.extend(options.env.iter().cloned());
    let plan = Plan {
        runs: options.runs,
        timeout: options.timeout,
        baseline: options.baseline,
        targets: options.targets,
        env,
    };
    let targets = plan.targets.len() + 1;
    eprintln!(
        "orderflow-coldstart: {} runs of {targets} targets, interleaved",
        plan.runs
    );
    let measurement = measure(&plan, |round, _| {
        if round % 5 == 0 || round == plan.runs {
            eprintln!("orderflow-coldstart: round {round}/{} done", plan.runs);
        }
    })
    .await?;
    let summaries = report::summarise(&measurement);
    #[allow(clippy::print_stdout)]
    {
        print!("{}", report::table(&summaries));
    }
    if let Some(file) = &options.json {
        let json = serde_json::to_string_pretty(&report::json(&measurement, &summaries))?;
        std::fs::write(file, json + "\n").with_context(|| format!("writing {}", file.display()))?;
    }
    for failure in &measurement.failures {
        eprintln!(
            "orderflow-coldstart: {} run {} failed: {}",
            failure.label, failure.run, failure.failure
        );
    }
    if !measurement.failures.is_empty() {
        eprintln!(
            "orderflow-coldstart: {} run(s) failed; stopped after round {}",
            measurement.failures.len(),
            measurement
                .failures
                .iter()
                .map(|f| f.run)
                .max()
                .unwrap_or(0)
        );
    }
    Ok(measurement.failures.is_empty())
}
