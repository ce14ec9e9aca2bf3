//! `orderflow-bridge`'s command line, parsed into plain values (tested without running anything).

use std::path::PathBuf;
use std::time::Duration;

use super::faults::FaultSettings;

/// The usage text.
pub const USAGE: &str = "\
usage:
  orderflow-bridge setup --template FILE --stage STAGE --env-file FILE [--inbox-topic LOGICAL_ID]
  orderflow-bridge functions --template FILE --stage STAGE --bootstrap FILE --env-file FILE
                         [--function-instances N] [--listen-port PORT] [--ready-file FILE]
  orderflow-bridge run   --template FILE --stage STAGE --functions URL [--api-port PORT]
                         [--ready-file FILE] [--retry-after-seconds N] [--function-instances N]
                         [--duplicate-percent P] [--crash-percent P] [--fault-seed S]
                         [--fault-stats FILE]

`functions` plays Lambda for every function of the template: N processes each of the one bootstrap
(target/<profile>/orderflow-lambda) with the Lambda environment and the env file, behind the
Lambda Invoke API that `run --functions URL` calls; their output goes to stdout.

A soak's faults on the SQS and stream batches (off by default): --duplicate-percent delivers that
share of batches twice, --crash-percent drops that share of answers after the function's side
effects (the batch is redelivered); --fault-seed makes the decisions repeatable; --fault-stats
keeps their counts in a JSON file.

The emulator is the one AWS_ENDPOINT_URL names; everything listens on 127.0.0.1 only.";

/// `setup`'s options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupOptions {
    /// The template.
    pub template: PathBuf,
    /// The stage (`Stage` parameter).
    pub stage: String,
    /// Where to write the functions' env file.
    pub env_file: PathBuf,
    /// The topic (logical id) to subscribe the inbox queue to.
    pub inbox_topic: String,
}

/// `run`'s options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// The template.
    pub template: PathBuf,
    /// The stage.
    pub stage: String,
    /// The Lambda Invoke API (`orderflow-bridge functions`).
    pub functions: String,
    /// The API's port (0: any free port).
    pub api_port: u16,
    /// Where to write the API's URL once everything is up.
    pub ready_file: Option<PathBuf>,
    /// The local cap on the visibility timeout of failed SQS messages.
    pub retry_after: Duration,
    /// How many instances of each function the local Lambda runs at once (`functions
    /// --function-instances`): the bridge keeps at most that many batches of one queue in flight.
    pub function_instances: usize,
    /// The soak's faults on batches.
    pub faults: FaultSettings,
}

/// `functions`' options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionsOptions {
    /// The template.
    pub template: PathBuf,
    /// The stage.
    pub stage: String,
    /// The bootstrap every function runs.
    pub bootstrap: PathBuf,
    /// The env file every function gets.
    pub env_file: PathBuf,
    /// Processes per function.
    pub instances: usize,
    /// The Invoke API's port (0: any free port).
    pub listen_port: u16,
    /// Where to write the Invoke API's URL once every instance is initialised.
    pub ready_file: Option<PathBuf>,
}

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Create the resources, write the env file.
    Setup(SetupOptions),
    /// Play the HTTP API, the event source mappings and the schedules.
    Run(RunOptions),
    /// Play Lambda: run every function's processes behind the Invoke API.
    Functions(FunctionsOptions),
}

/// The logical id of the topic the inbox queue listens to, by default.
pub const DEFAULT_INBOX_TOPIC: &str = "CustomerNotificationsTopic";
/// How soon a failed SQS message returns, by default (the queues say 60 s).
pub const DEFAULT_RETRY_AFTER_SECONDS: u64 = 3;

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let (command, rest) = args.split_first().ok_or("no command")?;
    let mut values: Vec<(String, String)> = Vec::new();
    let mut iter = rest.iter();
    while let Some(flag) = iter.next() {
        let name = flag
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {flag:?}"))?;
        let value = iter
            .next()
            .ok_or_else(|| format!("--{name} needs a value"))?;
        values.push((name.to_owned(), value.clone()));
    }
    let allowed: &[&str] = match command.as_str() {
        "setup" => &["template", "stage", "env-file", "inbox-topic"],
        "functions" => &[
            "template",
            "stage",
            "bootstrap",
            "env-file",
            "function-instances",
            "listen-port",
            "ready-file",
        ],
        "run" => &[
            "template",
            "stage",
            "functions",
            "api-port",
            "ready-file",
            "retry-after-seconds",
            "function-instances",
            "duplicate-percent",
            "crash-percent",
            "fault-seed",
            "fault-stats",
        ],
        other => return Err(format!("unknown command {other:?}")),
    };
    if let Some((name, _)) = values.iter().find(|(n, _)| !allowed.contains(&n.as_str())) {
        return Err(format!("{command} does not take --{name}"));
    }
    let get = |name: &str| {
        values
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let required = |name: &str| get(name).ok_or_else(|| format!("{command} needs --{name}"));
    let template = PathBuf::from(required("template")?);
    let stage = required("stage")?;
    if stage.is_empty()
        || !stage
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(format!(
            "--stage {stage:?}: lower-case letters, digits and dashes only"
        ));
    }
    let instances = match get("function-instances") {
        None => 1,
        Some(n) => n
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("--function-instances {n:?} is not a number >= 1"))?,
    };
    let port = |name: &str| match get(name) {
        None => Ok(0),
        Some(port) => port
            .parse()
            .map_err(|_| format!("--{name} {port:?} is not a port")),
    };
    Ok(match command.as_str() {
        "functions" => Command::Functions(FunctionsOptions {
            template,
            stage,
            bootstrap: PathBuf::from(required("bootstrap")?),
            env_file: PathBuf::from(required("env-file")?),
            instances,
            listen_port: port("listen-port")?,
            ready_file: get("ready-file").map(PathBuf::from),
        }),
        "setup" => Command::Setup(SetupOptions {
            template,
            stage,
            env_file: PathBuf::from(required("env-file")?),
            inbox_topic: get("inbox-topic").unwrap_or_else(|| DEFAULT_INBOX_TOPIC.to_owned()),
        }),
        _ => Command::Run(RunOptions {
            template,
            stage,
            functions: required("functions")?,
            api_port: port("api-port")?,
            ready_file: get("ready-file").map(PathBuf::from),
            retry_after: Duration::from_secs(match get("retry-after-seconds") {
                None => DEFAULT_RETRY_AFTER_SECONDS,
                Some(n) => n
                    .parse()
                    .map_err(|_| format!("--retry-after-seconds {n:?} is not a number"))?,
            }),
            faults: FaultSettings {
                duplicate_percent: percent(get("duplicate-percent"), "duplicate-percent")?,
                crash_percent: percent(get("crash-percent"), "crash-percent")?,
                seed: match get("fault-seed") {
                    None => 0,
                    Some(n) => n
                        .parse()
                        .map_err(|_| format!("--fault-seed {n:?} is not a whole number"))?,
                },
                stats_file: get("fault-stats").map(PathBuf::from),
            },
            function_instances: instances,
        }),
    })
}

/// A percentage option (absent: 0).
fn percent(value: Option<String>, name: &str) -> Result<u8, String> {
    match value {
        None => Ok(0),
        Some(n) => n
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= 100)
            .ok_or_else(|| format!("--{name} {n:?} is not a percentage from 0 to 100")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn setup_and_run_parse_with_their_defaults() {
        assert_eq!(
            parse(&args(
                "setup --template template.yaml --stage local --env-file target/local.env"
            )),
            Ok(Command::Setup(SetupOptions {
                template: "template.yaml".into(),
                stage: "local".into(),
                env_file: "target/local.env".into(),
                inbox_topic: DEFAULT_INBOX_TOPIC.into(),
            }))
        );
        assert_eq!(
            parse(&args(
                "run --template t.yaml --stage local --functions http://127.0.0.1:9000 --api-port 0 --ready-file target/bridge.ready"
            )),
            Ok(Command::Run(RunOptions {
                template: "t.yaml".into(),
                stage: "local".into(),
                functions: "http://127.0.0.1:9000".into(),
                api_port: 0,
                ready_file: Some("target/bridge.ready".into()),
                retry_after: Duration::from_secs(3),
                function_instances: 1,
                faults: FaultSettings::default(),
            }))
        );
        let Ok(Command::Run(soak)) = parse(&args(
            "run --template t --stage s --functions f --duplicate-percent 100 --crash-percent 5 --fault-seed 42 --fault-stats target/f.json",
        )) else {
            panic!("a soak's options parse");
        };
        assert_eq!(
            soak.faults,
            FaultSettings {
                duplicate_percent: 100,
                crash_percent: 5,
                seed: 42,
                stats_file: Some("target/f.json".into()),
            }
        );
    }

    #[test]
    fn functions_parses_with_its_defaults() {
        assert_eq!(
            parse(&args(
                "functions --template t.yaml --stage e2e --bootstrap target/debug/orderflow-lambda --env-file target/e2e.env"
            )),
            Ok(Command::Functions(FunctionsOptions {
                template: "t.yaml".into(),
                stage: "e2e".into(),
                bootstrap: "target/debug/orderflow-lambda".into(),
                env_file: "target/e2e.env".into(),
                instances: 1,
                listen_port: 0,
                ready_file: None,
            }))
        );
        assert!(
            parse(&args("functions --template t --stage s --env-file e"))
                .is_err_and(|e| e.contains("needs --bootstrap"))
        );
    }

    #[test]
    fn mistakes_are_named() {
        for (line, expected) in [
            ("", "no command"),
            ("serve --template t", "unknown command"),
            ("run --template t --stage local", "needs --functions"),
            (
                "setup --template t --stage local --env-file e --api-port 1",
                "does not take --api-port",
            ),
            ("run --template t --stage Local --functions f", "--stage"),
            (
                "run --template t --stage local --functions f --api-port x",
                "not a port",
            ),
            ("setup --template", "needs a value"),
            (
                "run --template t --stage local --functions f --function-instances 0",
                "--function-instances",
            ),
            ("setup template.yaml", "unexpected argument"),
            (
                "run --template t --stage local --functions f --crash-percent 101",
                "--crash-percent",
            ),
            (
                "run --template t --stage local --functions f --fault-seed x",
                "--fault-seed",
            ),
        ] {
            let error = parse(&args(line)).unwrap_err();
            assert!(error.contains(expected), "{line}: {error}");
        }
    }
}
