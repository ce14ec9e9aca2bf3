//! `orderflow-coldstart`'s harness end to end against the hello-world binary (which Cargo builds
//! for this package's tests): a clean measurement with the event handed through and answered,
//! and every kind of failed run reported as one.
// The helpers outside the #[test] functions set up scratch files; a failure there is the test's.
#![allow(clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tools::coldstart::{Plan, Target, measure, report, run_once};

fn hello(label: &str, event: Option<PathBuf>) -> Target {
    Target {
        label: label.to_owned(),
        function: label.split('@').next().unwrap_or(label).to_owned(),
        binary: PathBuf::from(env!("CARGO_BIN_EXE_hello-world")),
        event,
        env: vec![],
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("coldstart-harness");
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir.join(name)
}

fn script(name: &str, body: &str) -> Target {
    let path = scratch(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("a script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .expect("an executable script");
    Target {
        label: name.to_owned(),
        function: name.to_owned(),
        binary: path,
        event: None,
        env: vec![],
    }
}

#[tokio::test]
async fn every_run_is_timed_and_answered_with_its_own_event() {
    let event = scratch("order.json");
    std::fs::write(&event, r#"{"order": {"id": "o-1", "lines": 2}}"#).unwrap();
    let plan = Plan {
        runs: 3,
        timeout: Duration::from_secs(10),
        baseline: hello("hello", None),
        targets: vec![hello("hello@with-event", Some(event))],
        env: vec![("AWS_LAMBDA_LOG_LEVEL".into(), "warn".into())],
    };
    let mut rounds = Vec::new();
    let measurement = measure(&plan, |round, _| rounds.push(round)).await.unwrap();
    assert!(
        measurement.failures.is_empty(),
        "{:?}",
        measurement.failures
    );
    assert_eq!(rounds, [1, 2, 3]);
    let expected = [
        json!({"hello": {}}),
        json!({"hello": {"order": {"id": "o-1", "lines": 2}}}),
    ];
    for (result, expected) in measurement.results.iter().zip(expected) {
        assert_eq!(result.samples.len(), 3, "{}", result.target.label);
        assert!(result.size_bytes.unwrap() > 100_000);
        for sample in &result.samples {
            let answer: Value = serde_json::from_slice(&sample.response).unwrap();
            assert_eq!(answer, expected);
            assert!(sample.init > Duration::ZERO && sample.init < Duration::from_secs(10));
            assert!(sample.first_invoke > Duration::ZERO);
            assert!(sample.first_invoke < Duration::from_secs(10));
            // A tokio runtime's process is megabytes, not the harness's reading of nothing.
            assert!(sample.rss_at_init_kib > 512, "{sample:?}");
            assert!(sample.rss_after_invoke_kib >= sample.rss_at_init_kib);
        }
    }
    let summaries = report::summarise(&measurement);
    assert_eq!(summaries[0].init_ratio, Some(1.0));
    assert!(summaries[1].init_ratio.unwrap() > 0.0);
    let table = report::table(&summaries);
    assert!(
        table
            .lines()
            .nth(2)
            .unwrap()
            .starts_with("hello@with-event "),
        "{table}"
    );
}

#[tokio::test]
async fn an_invocation_error_is_a_failed_run_not_a_measurement() {
    let failure = run_once(
        &hello("hello", None),
        Bytes::from_static(b"not json"),
        &[],
        1,
        Duration::from_secs(10),
    )
    .await
    .unwrap_err();
    assert!(
        failure.reason.contains("the invocation returned an error"),
        "{failure}"
    );
}

#[tokio::test]
async fn a_process_that_exits_or_never_asks_is_a_failed_run_with_its_output() {
    let exits = script("exits", "env | sort; exit 3");
    let extra = [("EVENTS_TABLE".to_owned(), "events".to_owned())];
    let failure = run_once(
        &exits,
        Bytes::from_static(b"{}"),
        &extra,
        1,
        Duration::from_secs(10),
    )
    .await
    .unwrap_err();
    assert!(
        failure.reason.contains("exited") && failure.reason.contains("before asking"),
        "{failure}"
    );
    // The process saw the Lambda environment, the caller's variables and nothing of the test's.
    let output = failure.output.join("\n");
    for line in [
        "AWS_LAMBDA_FUNCTION_NAME=exits",
        "_HANDLER=exits",
        "EVENTS_TABLE=events",
        "AWS_LAMBDA_RUNTIME_API=127.0.0.1:",
    ] {
        assert!(output.contains(line), "{line} missing from\n{output}");
    }
    assert!(!output.contains("CARGO"), "{output}");

    let silent = script("silent", "exec sleep 30");
    let started = std::time::Instant::now();
    let failure = run_once(
        &silent,
        Bytes::from_static(b"{}"),
        &[],
        1,
        Duration::from_millis(500),
    )
    .await
    .unwrap_err();
    assert!(failure.reason.contains("within 0.5 s"), "{failure}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "killed, not waited for"
    );
}

#[tokio::test]
async fn a_measurement_stops_after_the_round_of_the_first_failure() {
    let plan = Plan {
        runs: 20,
        timeout: Duration::from_secs(10),
        baseline: hello("hello", None),
        targets: vec![script("broken", "exit 1")],
        env: vec![],
    };
    let measurement = measure(&plan, |_, _| {}).await.unwrap();
    assert_eq!(measurement.failures.len(), 1);
    assert_eq!(
        (
            measurement.failures[0].label.as_str(),
            measurement.failures[0].run
        ),
        ("broken", 1)
    );
    assert_eq!(measurement.results[0].samples.len(), 1);
}
