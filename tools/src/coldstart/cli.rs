//! `orderflow-coldstart`'s command line, parsed into [`CliOptions`] (tested without running
//! anything), and the `--env-file` format.

use std::path::PathBuf;
use std::time::Duration;

use super::Target;

/// The usage text.
pub const USAGE: &str = "\
usage:
  orderflow-coldstart [--runs 21] [--timeout-seconds 10]
                      --baseline NAME=BINARY[:EVENT_FILE]
                      --target NAME[@VARIANT]=BINARY:EVENT_FILE...
                      [--env K=V]... [--env-file FILE] [--env-for NAME[@VARIANT]:K=V]...
                      [--json FILE]

Measures Lambda cold starts on this machine: for each run it starts a fake Lambda Runtime API on
127.0.0.1 (port 0), spawns BINARY with the Lambda environment (AWS_LAMBDA_RUNTIME_API,
AWS_LAMBDA_FUNCTION_NAME and _HANDLER = NAME, ...; nothing else but PATH, HOME and the --env
variables), and times spawn -> first GET .../invocation/next (init) and that invocation's event
(EVENT_FILE, a JSON file; the baseline's defaults to {}) -> its POST .../response (first invoke),
reading the process's peak RSS (VmHWM) at both moments; then it kills the process.

The runs are interleaved: run 1 of every target, then run 2 of every target, ... (each round
starts one target further on), at least 20 of each. It prints per target the median and p90 of
init, the first invoke and init + first invoke, the median peak RSS at init and after the first
invoke, the binary's size, and init divided by the baseline's (the floor: a hello-world function).

NAME is the function's name (AWS_LAMBDA_FUNCTION_NAME, _HANDLER); @VARIANT tells binaries of
the same function apart (order-api@before, order-api@after). --env-file holds KEY=VALUE lines
(blank lines and # comments skipped); --env overrides it, --env-for one target's variables
override both. --json FILE writes the table and every run's figures as JSON.

It exits 1 if any run failed: the process exited or did not ask for an invocation within
--timeout-seconds, reported an init error, or answered the invocation with an error. It then
stops after that round and names each failure with the process's last output lines.";

/// The default number of runs per target.
pub const DEFAULT_RUNS: usize = 21;
/// The fewest runs per target the command accepts: fewer make a p90 of noise.
pub const MIN_RUNS: usize = 20;
/// How long one run (init and first invoke) may take, by default.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 10;

/// The parsed command line.
#[derive(Debug, Clone, PartialEq)]
pub struct CliOptions {
    /// Runs per target.
    pub runs: usize,
    /// How long one run may take.
    pub timeout: Duration,
    /// The floor every target's init is divided by.
    pub baseline: Target,
    /// What is measured.
    pub targets: Vec<Target>,
    /// `--env` pairs, for every target (applied after the `--env-file`).
    pub env: Vec<(String, String)>,
    /// `--env-file`, read by the caller with [`parse_env_file`].
    pub env_file: Option<PathBuf>,
    /// Where to write the JSON report.
    pub json: Option<PathBuf>,
}

/// The flags that may be given more than once.
const REPEATABLE: [&str; 3] = ["target", "env", "env-for"];
/// Every flag.
const FLAGS: [&str; 8] = [
    "runs",
    "timeout-seconds",
    "baseline",
    "target",
    "env",
    "env-file",
    "env-for",
    "json",
];

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<CliOptions, String> {
    let mut values: Vec<(&str, String)> = Vec::new();
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let name = flag
            .strip_prefix("--")
            .and_then(|name| FLAGS.iter().find(|known| **known == name))
            .ok_or_else(|| format!("unexpected argument {flag:?}"))?;
        let value = iter
            .next()
            .ok_or_else(|| format!("--{name} needs a value"))?;
        if !REPEATABLE.contains(name) && values.iter().any(|(n, _)| n == name) {
            return Err(format!("--{name} is given twice"));
        }
        values.push((name, value.clone()));
    }
    let get = |name: &str| {
        values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    };
    let all = |name: &'static str| {
        values
            .iter()
            .filter(move |(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    };

    let runs = match get("runs") {
        None => DEFAULT_RUNS,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|runs| *runs >= MIN_RUNS)
            .ok_or_else(|| {
                format!("--runs {text:?}: expected a whole number of at least {MIN_RUNS}")
            })?,
    };
    let timeout = match get("timeout-seconds") {
        None => Duration::from_secs(DEFAULT_TIMEOUT_SECONDS),
        Some(text) => text
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| format!("--timeout-seconds {text:?} is not a number of seconds"))?,
    };
    let baseline = target(
        get("baseline").ok_or("--baseline is required")?,
        "--baseline",
        false,
    )?;
    let mut targets = Vec::new();
    for text in all("target") {
        let target = target(text, "--target", true)?;
        if target.label == baseline.label
            || targets.iter().any(|t: &Target| t.label == target.label)
        {
            return Err(format!(
                "--target {text:?}: the name {:?} is used twice",
                target.label
            ));
        }
        targets.push(target);
    }
    if targets.is_empty() {
        return Err("at least one --target is required".to_owned());
    }
    let env = all("env")
        .map(|pair| env_pair(pair, "--env"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut options = CliOptions {
        runs,
        timeout,
        baseline,
        targets,
        env,
        env_file: get("env-file").map(PathBuf::from),
        json: get("json").map(PathBuf::from),
    };
    for text in all("env-for") {
        let (label, pair) = text
            .split_once(':')
            .ok_or_else(|| format!("--env-for {text:?}: expected NAME:K=V"))?;
        let pair = env_pair(pair, "--env-for")?;
        let target = std::iter::once(&mut options.baseline)
            .chain(options.targets.iter_mut())
            .find(|t| t.label == label)
            .ok_or_else(|| format!("--env-for {text:?}: no target is named {label:?}"))?;
        target.env.push(pair);
    }
    Ok(options)
}

/// `NAME[@VARIANT]=BINARY:EVENT_FILE` (the event optional unless `event_required`).
fn target(text: &str, flag: &str, event_required: bool) -> Result<Target, String> {
    let shape = if event_required {
        "NAME=BINARY:EVENT_FILE"
    } else {
        "NAME=BINARY[:EVENT_FILE]"
    };
    let (label, rest) = text
        .split_once('=')
        .filter(|(label, rest)| !label.is_empty() && !rest.is_empty())
        .ok_or_else(|| format!("{flag} {text:?}: expected {shape}"))?;
    let function = label
        .split_once('@')
        .map_or(label, |(function, _)| function);
    if function.is_empty()
        || !function
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "{flag} {text:?}: {function:?} is not a Lambda function name (letters, digits, - and _)"
        ));
    }
    let (binary, event) = match rest.rsplit_once(':') {
        Some((binary, event)) if !binary.is_empty() && !event.is_empty() => {
            (binary, Some(PathBuf::from(event)))
        }
        Some(_) => return Err(format!("{flag} {text:?}: expected {shape}")),
        None if event_required => return Err(format!("{flag} {text:?}: expected {shape}")),
        None => (rest, None),
    };
    Ok(Target {
        label: label.to_owned(),
        function: function.to_owned(),
        binary: PathBuf::from(binary),
        event,
        env: Vec::new(),
    })
}

fn env_pair(pair: &str, flag: &str) -> Result<(String, String), String> {
    pair.split_once('=')
        .filter(|(key, _)| valid_key(key))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("{flag} {pair:?}: expected KEY=VALUE"))
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses an `--env-file`: `KEY=VALUE` lines, blank lines and `#` comments skipped, an optional
/// `export ` in front, one pair of matching quotes around the value removed.
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (key, value) = line
            .split_once('=')
            .filter(|(key, _)| valid_key(key.trim()))
            .ok_or_else(|| format!("line {}: expected KEY=VALUE", number + 1))?;
        let value = value.trim();
        let value = ['"', '\'']
            .iter()
            .find_map(|quote| {
                value
                    .strip_prefix(*quote)
                    .and_then(|v| v.strip_suffix(*quote))
            })
            .unwrap_or(value);
        pairs.push((key.trim().to_owned(), value.to_owned()));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn the_least_and_the_most_parse() {
        let least = parse(&args(
            "--baseline hello=target/hello --target order-api=target/order-api:events/apigw.json",
        ))
        .unwrap();
        assert_eq!(
            least,
            CliOptions {
                runs: 21,
                timeout: Duration::from_secs(10),
                baseline: Target {
                    label: "hello".into(),
                    function: "hello".into(),
                    binary: "target/hello".into(),
                    event: None,
                    env: vec![],
                },
                targets: vec![Target {
                    label: "order-api".into(),
                    function: "order-api".into(),
                    binary: "target/order-api".into(),
                    event: Some("events/apigw.json".into()),
                    env: vec![],
                }],
                env: vec![],
                env_file: None,
                json: None,
            }
        );
        let most = parse(&args(
            "--runs 30 --timeout-seconds 2.5 --baseline hello=/h:/e/hello.json \
             --target order-api@before=/a/bootstrap:/e/a.json \
             --target order-api@after=/b/bootstrap:/e/a.json \
             --env EVENTS_TABLE=events --env EMPTY= --env-file f.env \
             --env-for order-api@after:WARM=1 --env-for hello:X=a=b --json out.json",
        ))
        .unwrap();
        assert_eq!((most.runs, most.timeout), (30, Duration::from_millis(2500)));
        assert_eq!(most.baseline.event, Some("/e/hello.json".into()));
        assert_eq!(most.baseline.env, vec![("X".into(), "a=b".into())]);
        let labels: Vec<_> = most.targets.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["order-api@before", "order-api@after"]);
        assert!(most.targets.iter().all(|t| t.function == "order-api"));
        assert_eq!(most.targets[0].env, vec![]);
        assert_eq!(most.targets[1].env, vec![("WARM".into(), "1".into())]);
        assert_eq!(
            most.env,
            vec![
                ("EVENTS_TABLE".into(), "events".into()),
                ("EMPTY".into(), String::new())
            ]
        );
        assert_eq!(most.env_file, Some("f.env".into()));
        assert_eq!(most.json, Some("out.json".into()));
    }

    #[test]
    fn mistakes_are_named() {
        let base = "--baseline hello=/h";
        for (line, expected) in [
            ("--target a=/a:/e", "--baseline is required"),
            (base, "at least one --target"),
            (&format!("{base} --target a=/a"), "NAME=BINARY:EVENT_FILE"),
            (&format!("{base} --target a=/a:"), "NAME=BINARY:EVENT_FILE"),
            (&format!("{base} --target =/a:/e"), "NAME=BINARY:EVENT_FILE"),
            (
                &format!("{base} --target a/b=/a:/e"),
                "not a Lambda function name",
            ),
            (
                &format!("{base} --target @v=/a:/e"),
                "not a Lambda function name",
            ),
            (&format!("{base} --target hello=/a:/e"), "used twice"),
            (
                &format!("{base} --target a=/a:/e --target a=/b:/e"),
                "used twice",
            ),
            (&format!("{base} --target a=/a:/e --runs 19"), "at least 20"),
            (&format!("{base} --target a=/a:/e --runs x"), "at least 20"),
            (
                &format!("{base} --target a=/a:/e --runs 20 --runs 21"),
                "given twice",
            ),
            (
                &format!("{base} --target a=/a:/e --timeout-seconds 0"),
                "number of seconds",
            ),
            (&format!("{base} --target a=/a:/e --env NOPE"), "KEY=VALUE"),
            (&format!("{base} --target a=/a:/e --env 1X=2"), "KEY=VALUE"),
            (&format!("{base} --target a=/a:/e --env-for a"), "NAME:K=V"),
            (
                &format!("{base} --target a=/a:/e --env-for b:K=V"),
                "no target is named",
            ),
            (
                &format!("{base} --target a=/a:/e --verbose"),
                "unexpected argument",
            ),
            (&format!("{base} --target a=/a:/e --json"), "needs a value"),
        ] {
            let error = parse(&args(line)).unwrap_err();
            assert!(error.contains(expected), "{line}: {error}");
        }
    }

    #[test]
    fn an_env_file_has_pairs_comments_exports_and_quotes() {
        let text = "# the stage\n\nEVENTS_TABLE=orderflow-dev-events\nexport AWS_REGION=us-east-1\n\
                    QUOTED=\"a b\"\nSINGLE='c'\nURL=http://127.0.0.1:5000/?x=1\nEMPTY=\n";
        assert_eq!(
            parse_env_file(text).unwrap(),
            [
                ("EVENTS_TABLE", "orderflow-dev-events"),
                ("AWS_REGION", "us-east-1"),
                ("QUOTED", "a b"),
                ("SINGLE", "c"),
                ("URL", "http://127.0.0.1:5000/?x=1"),
                ("EMPTY", ""),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(
            parse_env_file("A=1\njust words\n").unwrap_err(),
            "line 2: expected KEY=VALUE"
        );
    }
}
