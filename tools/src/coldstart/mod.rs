//! `orderflow-coldstart`: measures Lambda cold starts on this machine against a floor, through a
//! fake Lambda Runtime API. For each run it serves the Runtime API on 127.0.0.1 (port 0), spawns
//! a function's `bootstrap` with the environment Lambda gives it (and nothing else but `PATH`,
//! `HOME` and the caller's variables), and measures
//!
//! - **init**: spawn → the first `GET /2018-06-01/runtime/invocation/next`, and the process's
//!   peak RSS (`VmHWM`) at that moment;
//! - **first invoke**: that request answered with a real event (the function's trigger's shape,
//!   `events/`) → its `POST .../invocation/{id}/response`, and the peak RSS then. An
//!   `.../error` or `/runtime/init/error` answer fails the run, with the reason.
//!
//! then kills the process (by its id) and reaps it. Runs are interleaved across targets (run 1
//! of each, then run 2 of each, …) so a machine that gets busier halfway hits every target alike;
//! each target's figures are compared with the baseline's, a hello-world function
//! (`tools/coldstart-hello`) that is all the Lambda runtime costs. `scripts/coldstart.sh` builds
//! the functions as they ship and runs this against the emulators; `orderflow-coldstart --help`
//! has the command line.
//!
//! | module | responsibility |
//! | --- | --- |
//! | [`cli`] | the command line; the `--env-file` format |
//! | [`runtime_api`] | the fake Runtime API of one run |
//! | [`run`] | one run of one target; the interleaved measurement |
//! | [`report`] | medians and p90s, the table, the JSON |
//!
//! `events/` holds one event per trigger kind: `apigw-get-order.json` (API Gateway HTTP API v2,
//! JWT authorizer claims, `GET /orders/{id}`), `sqs-order-placed.json` (SQS carrying the
//! EventBridge event of a stored `OrderPlaced`), `stream-insert.json` (a DynamoDB stream INSERT of
//! a stored event) and `schedule.json` (a scheduled EventBridge event).

pub mod cli;
pub mod report;
pub mod run;
pub mod runtime_api;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

pub use run::{measure, run_once};

/// One binary to measure, as one function.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// How the report names it: the function's name, then `@VARIANT` if given.
    pub label: String,
    /// The function's name: `AWS_LAMBDA_FUNCTION_NAME` and `_HANDLER`.
    pub function: String,
    /// The `bootstrap` to spawn.
    pub binary: PathBuf,
    /// The first invocation's event (a JSON file); `{}` if none.
    pub event: Option<PathBuf>,
    /// Its own variables, applied after everyone's.
    pub env: Vec<(String, String)>,
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Runs per target.
    pub runs: usize,
    /// How long one run may take.
    pub timeout: Duration,
    /// The floor.
    pub baseline: Target,
    /// The targets.
    pub targets: Vec<Target>,
    /// Variables for every target, in order (later ones override earlier ones).
    pub env: Vec<(String, String)>,
}

/// One successful run.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Spawn → the first `GET .../invocation/next`.
    pub init: Duration,
    /// The event handed out → its response posted.
    pub first_invoke: Duration,
    /// `VmHWM` when the process asked for its first invocation, KiB.
    pub rss_at_init_kib: u64,
    /// `VmHWM` once it had answered it, KiB.
    pub rss_after_invoke_kib: u64,
    /// What the function answered.
    pub response: Bytes,
}

/// Why a run failed, with the process's last output lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// What went wrong.
    pub reason: String,
    /// The process's last lines of stdout and stderr.
    pub output: Vec<String>,
}

impl Failure {
    fn new(reason: String) -> Self {
        Self {
            reason,
            output: Vec::new(),
        }
    }

    fn with_output(self, output: Vec<String>) -> Self {
        Self { output, ..self }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)?;
        for line in &self.output {
            write!(f, "\n    | {line}")?;
        }
        Ok(())
    }
}

/// A failed run.
#[derive(Debug, Clone)]
pub struct RunFailure {
    /// The target's label.
    pub label: String,
    /// Which run (from 1).
    pub run: usize,
    /// Why.
    pub failure: Failure,
}

/// One target's runs.
#[derive(Debug, Clone)]
pub struct TargetResult {
    /// The target.
    pub target: Target,
    /// Its binary's size on disk.
    pub size_bytes: Option<u64>,
    /// Its successful runs, in order.
    pub samples: Vec<Sample>,
}

/// Everything measured: the baseline's result first.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Runs per target planned.
    pub runs: usize,
    /// The baseline's, then each target's.
    pub results: Vec<TargetResult>,
    /// Every failed run; the measurement stopped after the round of the first.
    pub failures: Vec<RunFailure>,
}

#[cfg(test)]
mod tests {
    use aws_lambda_events::event::apigw::ApiGatewayV2httpRequest;
    use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
    use aws_lambda_events::event::dynamodb::Event as StreamEvent;
    use aws_lambda_events::event::sqs::SqsEvent;
    use domain::envelope::StoredEvent;
    use domain::order::OrderPlaced;

    /// The events are what the functions' own decoders accept: a fixture they would refuse would
    /// measure an error path (or a poison message answered as a success).
    #[test]
    fn each_event_decodes_as_its_trigger_and_carries_a_stored_order_placed() {
        let request: ApiGatewayV2httpRequest =
            serde_json::from_str(include_str!("events/apigw-get-order.json")).unwrap();
        assert_eq!(request.route_key.as_deref(), Some("GET /orders/{id}"));
        let claims = request
            .request_context
            .authorizer
            .unwrap()
            .jwt
            .unwrap()
            .claims;
        assert_eq!(claims["sub"], "cust-42");
        assert_eq!(claims["cognito:groups"], "[customers]");
        assert_eq!(claims["token_use"], "access");
        assert!(claims.contains_key("client_id"));

        let sqs: SqsEvent =
            serde_json::from_str(include_str!("events/sqs-order-placed.json")).unwrap();
        let body = sqs.records[0].body.as_deref().unwrap();
        let event = lambda_glue::consumer::event_from_sqs_body(body).unwrap();
        assert_eq!(event.event_type, "OrderPlaced");
        let placed: OrderPlaced = serde_json::from_value(event.data.clone()).unwrap();
        assert_eq!(placed.order_id.as_str(), request.path_parameters["id"]);

        let stream: StreamEvent =
            serde_json::from_str(include_str!("events/stream-insert.json")).unwrap();
        assert_eq!(stream.records.len(), 1);
        assert_eq!(stream.records[0].event_name, "INSERT");
        let stored: StoredEvent =
            serde_dynamo::from_item(stream.records[0].change.new_image.clone()).unwrap();
        assert_eq!(stored, event, "the SQS event carries the stream's event");

        let schedule: CloudWatchEvent =
            serde_json::from_str(include_str!("events/schedule.json")).unwrap();
        assert_eq!(schedule.detail_type.as_deref(), Some("Scheduled Event"));
    }
}
