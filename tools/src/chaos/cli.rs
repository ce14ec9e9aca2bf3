//! `orderflow-chaos`'s command line, parsed into [`CliOptions`] (tested without running anything).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::fault::{FaultPlan, Mix, Spare};
use super::proxy::{ChaosOptions, Upstreams};

/// The usage text.
pub const USAGE: &str = "\
usage:
  orderflow-chaos --upstream URL [--upstream-for SERVICE=URL]... [--listen-port 0] [--ready-file FILE]
                  --seed N --faults PERCENT [--faults-for SERVICE=PERCENT]...
                  [--mix error=W,throttle=W,unavailable=W,reset=W,stall=W,lost=W] [--stall-seconds 4]
                  [--spare SERVICE[:Operation]]... --journal FILE

A seeded fault-injecting proxy in front of the AWS API emulators. SERVICE is dynamodb,
dynamodbstreams, sqs, sns, events, cognito-idp (or another SigV4 service name). It listens on
127.0.0.1 only, writes its URL to --ready-file once listening, appends one JSON line per injected
fault to --journal, serves its counters on GET /chaos/stats and prints them on exit (SIGINT, SIGTERM).
The default mix is error=25,throttle=20,unavailable=10,reset=15,stall=10,lost=20.";

/// How long a stalled connection is held, by default: longer than the functions' 2 s per attempt.
pub const DEFAULT_STALL_SECONDS: u64 = 4;

/// The parsed command line.
#[derive(Debug, Clone, PartialEq)]
pub struct CliOptions {
    /// What the proxy does.
    pub chaos: ChaosOptions,
    /// Where to write the proxy's URL once it listens.
    pub ready_file: Option<PathBuf>,
}

/// The flags that may be given more than once.
const REPEATABLE: [&str; 3] = ["upstream-for", "faults-for", "spare"];
/// Every flag.
const FLAGS: [&str; 11] = [
    "upstream",
    "upstream-for",
    "listen-port",
    "ready-file",
    "seed",
    "faults",
    "faults-for",
    "mix",
    "stall-seconds",
    "spare",
    "journal",
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
    let required = |name: &str| get(name).ok_or_else(|| format!("--{name} is required"));

    let mut upstreams = Upstreams::new(url(required("upstream")?, "--upstream")?);
    for pair in all("upstream-for") {
        let (service, target) = service_pair(pair, "--upstream-for")?;
        upstreams.by_service.insert(
            service.to_owned(),
            url(target, "--upstream-for")?.to_owned(),
        );
    }
    let seed = required("seed")?;
    let seed = seed
        .parse()
        .map_err(|_| format!("--seed {seed:?} is not a whole number"))?;
    let mut percent_for = BTreeMap::new();
    for pair in all("faults-for") {
        let (service, share) = service_pair(pair, "--faults-for")?;
        percent_for.insert(service.to_owned(), percent(share, "--faults-for")?);
    }
    let plan = FaultPlan {
        seed,
        percent: percent(required("faults")?, "--faults")?,
        percent_for,
        mix: get("mix").map_or_else(|| Ok(Mix::default()), Mix::parse)?,
        spare: all("spare").map(Spare::parse).collect::<Result<_, _>>()?,
    };
    let listen_port = match get("listen-port") {
        None => 0,
        Some(port) => port
            .parse()
            .map_err(|_| format!("--listen-port {port:?} is not a port"))?,
    };
    let stall = match get("stall-seconds") {
        None => Duration::from_secs(DEFAULT_STALL_SECONDS),
        Some(seconds) => seconds
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| format!("--stall-seconds {seconds:?} is not a number of seconds"))?,
    };
    Ok(CliOptions {
        chaos: ChaosOptions {
            upstreams,
            listen_port,
            plan,
            stall,
            journal: Some(PathBuf::from(required("journal")?)),
        },
        ready_file: get("ready-file").map(PathBuf::from),
    })
}

fn service_pair<'a>(pair: &'a str, flag: &str) -> Result<(&'a str, &'a str), String> {
    pair.split_once('=')
        .filter(|(service, value)| !service.is_empty() && !value.is_empty())
        .ok_or_else(|| format!("{flag} {pair:?}: expected SERVICE=VALUE"))
}

fn url<'a>(text: &'a str, flag: &str) -> Result<&'a str, String> {
    if text.starts_with("http://") && text.len() > "http://".len() {
        Ok(text)
    } else {
        Err(format!("{flag} {text:?}: expected an http:// URL"))
    }
}

fn percent(text: &str, flag: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|p| (0.0..=100.0).contains(p))
        .ok_or_else(|| format!("{flag} {text:?}: expected a percentage from 0 to 100"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::fault::FaultKind;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn the_least_and_the_most_parse() {
        let least = parse(&args(
            "--upstream http://127.0.0.1:5000 --seed 7 --faults 5 --journal j.jsonl",
        ))
        .unwrap();
        assert_eq!(
            least,
            CliOptions {
                chaos: ChaosOptions {
                    upstreams: Upstreams::new("http://127.0.0.1:5000"),
                    listen_port: 0,
                    plan: FaultPlan {
                        percent: 5.0,
                        ..FaultPlan::none(7)
                    },
                    stall: Duration::from_secs(4),
                    journal: Some("j.jsonl".into()),
                },
                ready_file: None,
            }
        );
        let most = parse(&args(
            "--upstream http://127.0.0.1:5000 --upstream-for dynamodb=http://127.0.0.1:8000 \
             --upstream-for dynamodbstreams=http://127.0.0.1:8000 --listen-port 4599 \
             --ready-file target/chaos.ready --seed 42 --faults 10 --faults-for sns=2.5 \
             --mix lost=3,reset=1 --stall-seconds 0.5 --spare cognito-idp --spare sqs:ReceiveMessage \
             --journal target/chaos.jsonl",
        ))
        .unwrap();
        let chaos = &most.chaos;
        assert_eq!(
            chaos.upstreams.of("dynamodbstreams"),
            "http://127.0.0.1:8000"
        );
        assert_eq!(chaos.upstreams.of("sns"), "http://127.0.0.1:5000");
        assert_eq!(chaos.listen_port, 4599);
        assert_eq!(most.ready_file, Some("target/chaos.ready".into()));
        assert_eq!((chaos.plan.seed, chaos.plan.percent), (42, 10.0));
        assert_eq!(chaos.plan.percent_of("sns"), 2.5);
        assert_eq!(chaos.plan.percent_of("sqs"), 10.0);
        assert_eq!(chaos.plan.mix.weight(FaultKind::Lost), 3);
        assert_eq!(chaos.plan.mix.weight(FaultKind::Error), 0);
        assert_eq!(chaos.stall, Duration::from_millis(500));
        assert_eq!(
            chaos.plan.spare,
            vec![
                Spare {
                    service: "cognito-idp".into(),
                    operation: None
                },
                Spare {
                    service: "sqs".into(),
                    operation: Some("ReceiveMessage".into())
                },
            ]
        );
    }

    #[test]
    fn mistakes_are_named() {
        let base = "--upstream http://127.0.0.1:5000 --seed 1 --journal j";
        for (line, expected) in [
            ("--seed 1 --faults 1 --journal j", "--upstream is required"),
            (
                "--upstream http://h --faults 1 --journal j",
                "--seed is required",
            ),
            (
                "--upstream http://h --seed 1 --faults 1",
                "--journal is required",
            ),
            (base, "--faults is required"),
            (&format!("{base} --faults 101"), "from 0 to 100"),
            (&format!("{base} --faults x"), "from 0 to 100"),
            (&format!("{base} --faults 1 --faults 2"), "given twice"),
            (
                &format!("{base} --faults 1 --faults-for sns"),
                "SERVICE=VALUE",
            ),
            (
                &format!("{base} --faults 1 --upstream-for sns=localhost:1"),
                "http:// URL",
            ),
            (
                &format!("{base} --faults 1 --mix error=0"),
                "every weight is 0",
            ),
            (
                &format!("{base} --faults 1 --spare :Publish"),
                "SERVICE or SERVICE:Operation",
            ),
            (
                &format!("{base} --faults 1 --listen-port 70000"),
                "not a port",
            ),
            (
                &format!("{base} --faults 1 --stall-seconds -1"),
                "number of seconds",
            ),
            (
                &format!("{base} --faults 1 --verbose"),
                "unexpected argument",
            ),
            (&format!("{base} --faults"), "needs a value"),
            (
                "--upstream http://h --seed -3 --faults 1 --journal j",
                "not a whole number",
            ),
        ] {
            let error = parse(&args(line)).unwrap_err();
            assert!(error.contains(expected), "{line}: {error}");
        }
    }
}
