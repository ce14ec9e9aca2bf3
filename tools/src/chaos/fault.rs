//! The seeded fault decision and the AWS error answers it injects.
//!
//! Each request the proxy forwards gets a sequence number `n` (0, 1, 2, …); whether it is faulted
//! and how depends only on the seed, `n`, the request's service and operation and the
//! [`FaultPlan`]: draws come from SplitMix64 at positions derived from `(seed, n)`, so one seed
//! replays the same decisions for the same sequence of requests. Under concurrency the order in
//! which requests take their numbers varies from run to run, so which request gets which decision
//! varies too, but the shares (faulted, and of each kind) hold.
//!
//! The error answers are the ones the services send, in the service's protocol, with the codes the
//! AWS SDK's standard retry classifies: a 500 or a 503 is retried as transient, a throttling code
//! (`ThrottlingException`, `ProvisionedThroughputExceededException`, `RequestThrottled`,
//! `Throttling`, `TooManyRequestsException`) as throttling.

use std::collections::BTreeMap;
use std::fmt;

use http::StatusCode;
use serde_json::json;

use super::classify::{Call, OTHER, Protocol};

/// What the proxy does to a faulted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// Not forwarded; a 500 internal error.
    Error,
    /// Not forwarded; a 400 throttling error.
    Throttle,
    /// Not forwarded; a 503 `ServiceUnavailable`.
    Unavailable,
    /// Not forwarded; the connection closed at once, no answer.
    Reset,
    /// Not forwarded; the connection held open for the stall time, then closed, no answer.
    Stall,
    /// Forwarded and applied upstream; the answer dropped and the connection closed.
    Lost,
}

impl FaultKind {
    /// Every kind, in `--mix` order.
    pub const ALL: [Self; 6] = [
        Self::Error,
        Self::Throttle,
        Self::Unavailable,
        Self::Reset,
        Self::Stall,
        Self::Lost,
    ];

    /// Its name in `--mix` and in the journal.
    pub fn name(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Throttle => "throttle",
            Self::Unavailable => "unavailable",
            Self::Reset => "reset",
            Self::Stall => "stall",
            Self::Lost => "lost",
        }
    }

    /// The kind `name` names.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The relative weights of the kinds of fault (`--mix error=25,throttle=20,…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    weights: [u32; 6],
}

impl Default for Mix {
    /// error 25, throttle 20, unavailable 10, reset 15, stall 10, lost 20.
    fn default() -> Self {
        Self {
            weights: [25, 20, 10, 15, 10, 20],
        }
    }
}

impl Mix {
    /// Only `kind`.
    pub fn only(kind: FaultKind) -> Self {
        let mut weights = [0; 6];
        weights[kind as usize] = 1;
        Self { weights }
    }

    /// Parses `error=25,throttle=20,…`; a kind not named has weight 0, and at least one weight
    /// must be positive.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut weights = [0; 6];
        for pair in text.split(',').filter(|p| !p.trim().is_empty()) {
            let (name, weight) = pair
                .split_once('=')
                .ok_or_else(|| format!("--mix {pair:?}: expected KIND=WEIGHT"))?;
            let kind = FaultKind::parse(name.trim()).ok_or_else(|| {
                format!(
                    "--mix {name:?}: not a kind of fault (error, throttle, unavailable, reset, stall, lost)"
                )
            })?;
            weights[kind as usize] = weight
                .trim()
                .parse()
                .map_err(|_| format!("--mix {pair:?}: the weight is not a whole number"))?;
        }
        if weights.iter().all(|w| *w == 0) {
            return Err(format!("--mix {text:?}: every weight is 0"));
        }
        Ok(Self { weights })
    }

    /// The weight of `kind`.
    pub fn weight(&self, kind: FaultKind) -> u32 {
        self.weights[kind as usize]
    }

    /// The kind at `draw` (uniform over `u64`), in proportion to the weights.
    fn pick(&self, draw: u64) -> FaultKind {
        let total: u64 = self.weights.iter().map(|w| u64::from(*w)).sum();
        let mut point = draw % total.max(1);
        for kind in FaultKind::ALL {
            let weight = u64::from(self.weight(kind));
            if point < weight {
                return kind;
            }
            point -= weight;
        }
        FaultKind::Error
    }
}

/// A service, or one operation of it, that is never faulted (`--spare sns` or `--spare sns:Publish`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spare {
    /// The service.
    pub service: String,
    /// The operation, or every operation.
    pub operation: Option<String>,
}

impl Spare {
    /// Parses `SERVICE` or `SERVICE:Operation`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (service, operation) = match text.split_once(':') {
            Some((service, operation)) => (service, Some(operation.to_owned())),
            None => (text, None),
        };
        if service.is_empty() || operation.as_deref() == Some("") {
            return Err(format!(
                "--spare {text:?}: expected SERVICE or SERVICE:Operation"
            ));
        }
        Ok(Self {
            service: service.to_owned(),
            operation,
        })
    }

    fn covers(&self, call: &Call) -> bool {
        self.service == call.service
            && self
                .operation
                .as_ref()
                .is_none_or(|operation| call.operation.as_ref() == Some(operation))
    }
}

/// Which requests are faulted, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultPlan {
    /// The seed of the decisions.
    pub seed: u64,
    /// The share of requests faulted, in percent (0–100).
    pub percent: f64,
    /// Per-service shares that replace `percent`.
    pub percent_for: BTreeMap<String, f64>,
    /// The kinds' weights.
    pub mix: Mix,
    /// Never faulted.
    pub spare: Vec<Spare>,
}

/// One decision to fault a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// What to do.
    pub kind: FaultKind,
    /// A further draw, for the variants of a kind (which throttling code).
    pub variant: u64,
}

impl FaultPlan {
    /// A plan that never faults.
    pub fn none(seed: u64) -> Self {
        Self {
            seed,
            percent: 0.0,
            percent_for: BTreeMap::new(),
            mix: Mix::default(),
            spare: Vec::new(),
        }
    }

    /// The share of `service`'s requests faulted, in percent.
    pub fn percent_of(&self, service: &str) -> f64 {
        self.percent_for
            .get(service)
            .copied()
            .unwrap_or(self.percent)
    }

    /// The decision for the `n`th request, `call`: `None` forwards it untouched. [`OTHER`] and
    /// spared calls are never faulted.
    pub fn decide(&self, n: u64, call: &Call) -> Option<Fault> {
        if call.service == OTHER || self.spare.iter().any(|spare| spare.covers(call)) {
            return None;
        }
        let percent = self.percent_of(&call.service);
        // 53 random bits as a fraction in [0, 1): 0 % never faults, 100 % always does.
        let unit = (draw(self.seed, n, 0) >> 11) as f64 / (1_u64 << 53) as f64;
        if unit * 100.0 >= percent {
            return None;
        }
        Some(Fault {
            kind: self.mix.pick(draw(self.seed, n, 1)),
            variant: draw(self.seed, n, 2),
        })
    }
}

/// The `lane`th draw (of 3) for request `n`: SplitMix64's output at position `3n + lane + 1` of
/// the sequence seeded with `seed`.
fn draw(seed: u64, n: u64, lane: u64) -> u64 {
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
    let position = n.wrapping_mul(3).wrapping_add(lane).wrapping_add(1);
    let mut z = seed.wrapping_add(position.wrapping_mul(GAMMA));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// An answer the proxy makes up instead of forwarding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorAnswer {
    /// Its status.
    pub status: StatusCode,
    /// The error code the SDK reads.
    pub code: &'static str,
    /// Its headers.
    pub headers: Vec<(&'static str, String)>,
    /// Its body.
    pub body: String,
}

/// The error code `service` answers with for `kind` (`variant` picks among equivalent codes).
fn error_code(kind: FaultKind, service: &str, variant: u64) -> &'static str {
    match (kind, service) {
        (FaultKind::Error, "dynamodb" | "dynamodbstreams") => "InternalServerError",
        (FaultKind::Error, "sns") => "InternalError",
        (FaultKind::Error, "events") => "InternalException",
        (FaultKind::Error, "cognito-idp") => "InternalErrorException",
        (FaultKind::Error, _) => "InternalFailure",
        (FaultKind::Throttle, "dynamodb") if variant % 2 == 1 => {
            "ProvisionedThroughputExceededException"
        }
        (FaultKind::Throttle, "sqs") if variant % 2 == 1 => "ThrottlingException",
        (FaultKind::Throttle, "sqs") => "RequestThrottled",
        (FaultKind::Throttle, "sns") => "Throttling",
        (FaultKind::Throttle, "cognito-idp") => "TooManyRequestsException",
        (FaultKind::Throttle, _) => "ThrottlingException",
        _ => "ServiceUnavailable",
    }
}

/// The error answer for `fault` on `call`, in the call's protocol: `None` for the kinds that
/// answer nothing (reset, stall, lost).
pub fn error_answer(fault: Fault, call: &Call, request_id: &str) -> Option<ErrorAnswer> {
    let status = match fault.kind {
        FaultKind::Error => StatusCode::INTERNAL_SERVER_ERROR,
        FaultKind::Throttle => StatusCode::BAD_REQUEST,
        FaultKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        FaultKind::Reset | FaultKind::Stall | FaultKind::Lost => return None,
    };
    let code = error_code(fault.kind, &call.service, fault.variant);
    let fault_side = if fault.kind == FaultKind::Throttle {
        "Sender"
    } else {
        "Receiver"
    };
    let message = format!("orderflow-chaos injected {} ({code})", fault.kind);
    let mut headers = vec![("x-amzn-requestid", request_id.to_owned())];
    let body = match &call.protocol {
        Protocol::Query => {
            headers.push(("content-type", "text/xml".to_owned()));
            let namespace = match call.service.as_str() {
                "sns" => "http://sns.amazonaws.com/doc/2010-03-31/",
                _ => "https://aws.amazon.com/",
            };
            format!(
                "<ErrorResponse xmlns=\"{namespace}\"><Error><Type>{fault_side}</Type>\
                 <Code>{code}</Code><Message>{message}</Message></Error>\
                 <RequestId>{request_id}</RequestId></ErrorResponse>"
            )
        }
        protocol => {
            let content_type = match protocol {
                Protocol::Json { content_type } => content_type.clone(),
                _ => "application/json".to_owned(),
            };
            headers.push(("content-type", content_type));
            headers.push(("x-amzn-errortype", code.to_owned()));
            let error_type = match call.service.as_str() {
                "dynamodb" | "dynamodbstreams" => {
                    format!("com.amazonaws.dynamodb.v20120810#{code}")
                }
                "sqs" => {
                    // SQS's JSON protocol keeps its query-era codes in this header too.
                    headers.push(("x-amzn-query-error", format!("{code};{fault_side}")));
                    format!("com.amazonaws.sqs#{code}")
                }
                _ => code.to_owned(),
            };
            json!({"__type": error_type, "message": message}).to_string()
        }
    };
    Some(ErrorAnswer {
        status,
        code,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn call(service: &str, operation: &str, protocol: Protocol) -> Call {
        Call {
            service: service.into(),
            operation: Some(operation.into()),
            protocol,
        }
    }

    fn json_call(service: &str, operation: &str) -> Call {
        call(
            service,
            operation,
            Protocol::Json {
                content_type: "application/x-amz-json-1.0".into(),
            },
        )
    }

    fn plan(seed: u64, percent: f64) -> FaultPlan {
        FaultPlan {
            percent,
            ..FaultPlan::none(seed)
        }
    }

    fn decisions(plan: &FaultPlan, call: &Call, count: u64) -> Vec<Option<Fault>> {
        (0..count).map(|n| plan.decide(n, call)).collect()
    }

    #[test]
    fn one_seed_replays_the_same_decisions_another_does_not() {
        let put = json_call("dynamodb", "PutItem");
        let first = decisions(&plan(42, 30.0), &put, 1000);
        assert_eq!(first, decisions(&plan(42, 30.0), &put, 1000));
        assert_ne!(first, decisions(&plan(43, 30.0), &put, 1000));
    }

    #[test]
    fn the_shares_hold_over_many_draws() {
        let put = json_call("dynamodb", "PutItem");
        let draws = 10_000;
        let plan = plan(7, 20.0);
        let faults: Vec<Fault> = decisions(&plan, &put, draws)
            .into_iter()
            .flatten()
            .collect();
        let share = faults.len() as f64 / draws as f64;
        assert!((share - 0.20).abs() < 0.015, "faulted share {share}");
        let mut by_kind: HashMap<FaultKind, usize> = HashMap::new();
        for fault in &faults {
            *by_kind.entry(fault.kind).or_default() += 1;
        }
        for kind in FaultKind::ALL {
            let expected = f64::from(plan.mix.weight(kind)) / 100.0;
            let seen = by_kind.get(&kind).copied().unwrap_or(0) as f64 / faults.len() as f64;
            assert!(
                (seen - expected).abs() < 0.03,
                "{kind}: {seen} for {expected}"
            );
        }
    }

    #[test]
    fn zero_percent_never_faults_and_a_hundred_always_does() {
        let put = json_call("dynamodb", "PutItem");
        assert!(
            decisions(&plan(1, 0.0), &put, 10_000)
                .iter()
                .all(Option::is_none)
        );
        assert!(
            decisions(&plan(1, 100.0), &put, 10_000)
                .iter()
                .all(Option::is_some)
        );
    }

    #[test]
    fn spared_per_service_and_other_calls_follow_their_rules() {
        let mut plan = plan(3, 100.0);
        plan.spare = vec![
            Spare::parse("sqs").unwrap(),
            Spare::parse("sns:Subscribe").unwrap(),
        ];
        plan.percent_for.insert("events".into(), 0.0);
        let never = [
            json_call("sqs", "ReceiveMessage"),
            call("sns", "Subscribe", Protocol::Query),
            json_call("events", "PutEvents"),
            Call {
                service: OTHER.into(),
                operation: None,
                protocol: Protocol::Unknown,
            },
        ];
        for spared in never {
            assert!(
                decisions(&plan, &spared, 1000).iter().all(Option::is_none),
                "{spared:?}"
            );
        }
        let publish = call("sns", "Publish", Protocol::Query);
        assert!(decisions(&plan, &publish, 1000).iter().all(Option::is_some));
        assert_eq!(
            Spare::parse("sns:"),
            Err("--spare \"sns:\": expected SERVICE or SERVICE:Operation".into())
        );
    }

    #[test]
    fn a_mix_picks_only_its_kinds() {
        let mut plan = plan(5, 100.0);
        plan.mix = Mix::parse("reset=1, lost=3").unwrap();
        let put = json_call("dynamodb", "PutItem");
        let kinds: Vec<FaultKind> = decisions(&plan, &put, 4000)
            .into_iter()
            .flatten()
            .map(|fault| fault.kind)
            .collect();
        let lost = kinds.iter().filter(|k| **k == FaultKind::Lost).count();
        assert!(
            kinds
                .iter()
                .all(|k| matches!(k, FaultKind::Reset | FaultKind::Lost))
        );
        assert!((2800..3200).contains(&lost), "{lost} lost of 4000");
        assert!(Mix::parse("error=0").is_err());
        assert!(Mix::parse("boom=1").is_err());
        assert!(Mix::parse("error=x").is_err());
        assert_eq!(Mix::parse("stall=2").unwrap(), {
            let mut only = Mix::only(FaultKind::Stall);
            only.weights[FaultKind::Stall as usize] = 2;
            only
        });
    }

    fn answer(kind: FaultKind, variant: u64, call: &Call) -> ErrorAnswer {
        error_answer(Fault { kind, variant }, call, "req-1").unwrap()
    }

    /// The code the SDK reads from a JSON error: `__type` after its `#`.
    fn json_code(answer: &ErrorAnswer) -> String {
        let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        let error_type = body["__type"].as_str().unwrap();
        error_type.rsplit('#').next().unwrap().to_owned()
    }

    fn header<'a>(answer: &'a ErrorAnswer, name: &str) -> &'a str {
        answer
            .headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .unwrap()
    }

    #[test]
    fn json_errors_carry_each_services_code() {
        let events = call(
            "events",
            "PutEvents",
            Protocol::Json {
                content_type: "application/x-amz-json-1.1".into(),
            },
        );
        for (kind, variant, call, status, code) in [
            (
                FaultKind::Error,
                0,
                json_call("dynamodb", "PutItem"),
                500,
                "InternalServerError",
            ),
            (
                FaultKind::Throttle,
                0,
                json_call("dynamodb", "PutItem"),
                400,
                "ThrottlingException",
            ),
            (
                FaultKind::Throttle,
                1,
                json_call("dynamodb", "PutItem"),
                400,
                "ProvisionedThroughputExceededException",
            ),
            (
                FaultKind::Unavailable,
                0,
                json_call("dynamodbstreams", "GetRecords"),
                503,
                "ServiceUnavailable",
            ),
            (
                FaultKind::Error,
                0,
                json_call("sqs", "SendMessage"),
                500,
                "InternalFailure",
            ),
            (
                FaultKind::Throttle,
                0,
                json_call("sqs", "SendMessage"),
                400,
                "RequestThrottled",
            ),
            (
                FaultKind::Error,
                0,
                events.clone(),
                500,
                "InternalException",
            ),
            (
                FaultKind::Throttle,
                0,
                events.clone(),
                400,
                "ThrottlingException",
            ),
            (
                FaultKind::Throttle,
                0,
                json_call("cognito-idp", "InitiateAuth"),
                400,
                "TooManyRequestsException",
            ),
        ] {
            let answer = answer(kind, variant, &call);
            assert_eq!(answer.status.as_u16(), status, "{call:?} {kind}");
            assert_eq!(json_code(&answer), code, "{call:?} {kind}");
            assert_eq!(answer.code, code);
            assert_eq!(header(&answer, "x-amzn-requestid"), "req-1");
        }
        let events_answer = answer(FaultKind::Error, 0, &events);
        assert_eq!(
            header(&events_answer, "content-type"),
            "application/x-amz-json-1.1"
        );
        let put = answer(FaultKind::Error, 0, &json_call("dynamodb", "PutItem"));
        assert!(
            put.body
                .contains("com.amazonaws.dynamodb.v20120810#InternalServerError")
        );
        let sqs = answer(FaultKind::Throttle, 0, &json_call("sqs", "SendMessage"));
        assert_eq!(
            header(&sqs, "x-amzn-query-error"),
            "RequestThrottled;Sender"
        );
    }

    #[test]
    fn query_errors_are_sns_xml() {
        let publish = call("sns", "Publish", Protocol::Query);
        for (kind, status, code, side) in [
            (FaultKind::Error, 500, "InternalError", "Receiver"),
            (FaultKind::Throttle, 400, "Throttling", "Sender"),
            (
                FaultKind::Unavailable,
                503,
                "ServiceUnavailable",
                "Receiver",
            ),
        ] {
            let answer = answer(kind, 0, &publish);
            assert_eq!(answer.status.as_u16(), status);
            assert_eq!(header(&answer, "content-type"), "text/xml");
            assert!(answer.body.starts_with(
                "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error>"
            ));
            assert!(
                answer.body.contains(&format!("<Code>{code}</Code>")),
                "{}",
                answer.body
            );
            assert!(answer.body.contains(&format!("<Type>{side}</Type>")));
            assert!(answer.body.contains("<RequestId>req-1</RequestId>"));
        }
        for silent in [FaultKind::Reset, FaultKind::Stall, FaultKind::Lost] {
            assert_eq!(
                error_answer(
                    Fault {
                        kind: silent,
                        variant: 0
                    },
                    &publish,
                    "r"
                ),
                None
            );
        }
    }
}
