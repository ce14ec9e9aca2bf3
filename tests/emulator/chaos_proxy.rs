//! `orderflow-chaos` (`tools::chaos`) in front of the emulators, driven by the real SDK clients:
//! with no faults every call passes through unchanged; injected errors reach the SDK as the
//! service's own error codes, and its standard retry retries each of them; a lost `PutItem` or
//! `Publish` is applied though the caller hears nothing (and the journal names the publish's
//! attributes); a reset or a stalled call applies nothing. Each test runs its own proxy, and sets
//! up and checks its resources around it, straight on the emulator.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sns::types::MessageAttributeValue;
use integration_tests::{Emulator, emulator, unique_name};
use serde_json::{Value, json};
use tools::chaos::{self, ChaosOptions, ChaosProxy, FaultKind, FaultPlan, Mix, Upstreams};

/// How long a stalled call is held: longer than the clients' attempt timeout below.
const STALL: Duration = Duration::from_secs(2);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);

/// A proxy in front of the emulators, its journal, and SDK settings for clients through it.
struct Chaos {
    proxy: ChaosProxy,
    journal: PathBuf,
    config: SdkConfig,
}

/// The emulators' upstreams as `scripts/lib.sh` exports them: DynamoDB and its streams on
/// DynamoDB Local when its variables are set, everything else on `AWS_ENDPOINT_URL`.
fn upstreams(emulator: &Emulator) -> Upstreams {
    let mut upstreams = Upstreams::new(&emulator.endpoint);
    for (service, variable) in [
        ("dynamodb", "AWS_ENDPOINT_URL_DYNAMODB"),
        ("dynamodbstreams", "AWS_ENDPOINT_URL_DYNAMODB_STREAMS"),
    ] {
        if let Ok(url) = std::env::var(variable).map(|u| u.trim().to_owned())
            && !url.is_empty()
        {
            upstreams.by_service.insert(service.into(), url);
        }
    }
    upstreams
}

/// A proxy that faults `percent` % of the requests with `kind`; clients through it make
/// `attempts` attempts per call.
async fn chaos(
    emulator: &Emulator,
    test: &str,
    percent: f64,
    kind: FaultKind,
    attempts: u32,
) -> Chaos {
    let journal = std::env::temp_dir().join(format!("{}.jsonl", unique_name(test)));
    let proxy = chaos::serve(ChaosOptions {
        upstreams: upstreams(emulator),
        listen_port: 0,
        plan: FaultPlan {
            percent,
            mix: Mix::only(kind),
            ..FaultPlan::none(20_261_201)
        },
        stall: STALL,
        journal: Some(journal.clone()),
    })
    .await
    .expect("the proxy starts");
    let retry = if attempts <= 1 {
        RetryConfig::disabled()
    } else {
        RetryConfig::standard()
            .with_max_attempts(attempts)
            .with_initial_backoff(Duration::from_millis(10))
    };
    let config = emulator
        .config
        .to_builder()
        .retry_config(retry)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .build(),
        )
        .build();
    Chaos {
        proxy,
        journal,
        config,
    }
}

impl Chaos {
    // Clients name the proxy as their endpoint on their own configuration, which wins over
    // the per-service endpoint variables.
    fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::config::Builder::from(&self.config)
            .endpoint_url(self.proxy.url())
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    fn sqs(&self) -> aws_sdk_sqs::Client {
        let config = aws_sdk_sqs::config::Builder::from(&self.config)
            .endpoint_url(self.proxy.url())
            .build();
        aws_sdk_sqs::Client::from_conf(config)
    }

    fn sns(&self) -> aws_sdk_sns::Client {
        let config = aws_sdk_sns::config::Builder::from(&self.config)
            .endpoint_url(self.proxy.url())
            .build();
        aws_sdk_sns::Client::from_conf(config)
    }

    /// Stops the proxy and returns its journal's lines.
    async fn finish(self) -> Vec<Value> {
        self.proxy.stop().await.expect("the journal flushes");
        let text = std::fs::read_to_string(&self.journal).unwrap_or_default();
        let _ = std::fs::remove_file(&self.journal);
        text.lines()
            .map(|line| serde_json::from_str(line).expect("a journal line is JSON"))
            .collect()
    }
}

/// A fresh table keyed by `pk` (template.yaml's idempotency table, under a name of its own).
async fn table(emulator: &Emulator, test: &str) -> String {
    let name = unique_name(test);
    emulator.template_table("IdempotencyTable", &name).await;
    name
}

/// The item `pk` of `table`, read straight on the emulator.
async fn stored(
    emulator: &Emulator,
    table: &str,
    pk: &str,
) -> Option<HashMap<String, AttributeValue>> {
    emulator
        .dynamodb()
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(pk.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("reading around the proxy")
        .item
}

/// A fresh queue, created straight on the emulator.
async fn queue(emulator: &Emulator, test: &str) -> String {
    let mut name = unique_name(test);
    name.truncate(80);
    emulator
        .sqs()
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("creating the queue")
        .queue_url
        .expect("a queue URL")
}

/// A fresh topic, created straight on the emulator.
async fn topic(emulator: &Emulator, test: &str) -> String {
    emulator
        .sns()
        .create_topic()
        .name(unique_name(test))
        .send()
        .await
        .expect("creating the topic")
        .topic_arn
        .expect("a topic ARN")
}

/// What kind of failure an SDK call ended in.
fn failure<E, R>(error: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata,
{
    match error {
        SdkError::ServiceError(_) => format!("service:{}", error.code().unwrap_or("?")),
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => "no answer".into(),
        SdkError::TimeoutError(_) => "timeout".into(),
        _ => "other".into(),
    }
}

#[tokio::test]
async fn without_faults_calls_pass_through_unchanged() {
    let emulator = emulator().await;
    let table = table(&emulator, "chaos-pass").await;
    let queue = queue(&emulator, "chaos-pass").await;
    let topic = topic(&emulator, "chaos-pass").await;
    let chaos = chaos(&emulator, "chaos-pass", 0.0, FaultKind::Lost, 1).await;

    chaos
        .dynamodb()
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("order-1".into()))
        .item("total", AttributeValue::N("1250".into()))
        .send()
        .await
        .expect("PutItem through the proxy");
    let item = chaos
        .dynamodb()
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("order-1".into()))
        .send()
        .await
        .expect("GetItem through the proxy")
        .item
        .expect("the item");
    assert_eq!(item["total"], AttributeValue::N("1250".into()));
    assert_eq!(stored(&emulator, &table, "order-1").await, Some(item));

    chaos
        .sqs()
        .send_message()
        .queue_url(&queue)
        .message_body(r#"{"order_id":"order-1"}"#)
        .send()
        .await
        .expect("SendMessage through the proxy");
    let received = chaos
        .sqs()
        .receive_message()
        .queue_url(&queue)
        .wait_time_seconds(0)
        .send()
        .await
        .expect("ReceiveMessage through the proxy");
    let bodies: Vec<&str> = received
        .messages()
        .iter()
        .filter_map(|m| m.body())
        .collect();
    assert_eq!(bodies, [r#"{"order_id":"order-1"}"#]);

    let published = chaos
        .sns()
        .publish()
        .topic_arn(&topic)
        .message("hello")
        .send()
        .await
        .expect("Publish through the proxy");
    assert!(published.message_id.is_some());

    let stats = chaos.proxy.stats();
    assert_eq!(stats["requests"]["dynamodb"], 2, "{stats}");
    assert_eq!(stats["requests"]["sqs"], 2, "{stats}");
    assert_eq!(stats["requests"]["sns"], 1, "{stats}");
    assert_eq!(stats["faults"]["total"], json!({}), "{stats}");
    assert_eq!(chaos.finish().await, Vec::<Value>::new());
}

#[tokio::test]
async fn injected_errors_reach_the_sdk_as_each_services_code() {
    let emulator = emulator().await;
    let table = table(&emulator, "chaos-codes").await;
    let queue = queue(&emulator, "chaos-codes").await;
    let topic = topic(&emulator, "chaos-codes").await;
    for (kind, dynamodb_codes, sqs_codes, sns_code, status) in [
        (
            FaultKind::Error,
            &["InternalServerError"][..],
            &["InternalFailure"][..],
            "InternalError",
            500,
        ),
        (
            FaultKind::Throttle,
            &[
                "ThrottlingException",
                "ProvisionedThroughputExceededException",
            ][..],
            &["RequestThrottled", "ThrottlingException"][..],
            "Throttling",
            400,
        ),
        (
            FaultKind::Unavailable,
            &["ServiceUnavailable"][..],
            &["ServiceUnavailable"][..],
            "ServiceUnavailable",
            503,
        ),
    ] {
        let chaos = chaos(&emulator, "chaos-codes", 100.0, kind, 1).await;
        let put = chaos
            .dynamodb()
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S(format!("{kind}")))
            .send()
            .await
            .expect_err("every call is faulted");
        let code = failure(&put);
        assert!(
            dynamodb_codes
                .iter()
                .any(|c| code == format!("service:{c}")),
            "{kind}: PutItem ended in {code}"
        );
        assert_eq!(
            put.raw_response().map(|r| r.status().as_u16()),
            Some(status)
        );
        assert!(
            put.as_service_error()
                .is_some_and(|e| e.meta().message().is_some())
        );

        let send = chaos
            .sqs()
            .send_message()
            .queue_url(&queue)
            .message_body("never sent")
            .send()
            .await
            .expect_err("every call is faulted");
        let code = failure(&send);
        assert!(
            sqs_codes.iter().any(|c| code == format!("service:{c}")),
            "{kind}: SendMessage ended in {code}"
        );
        if kind == FaultKind::Throttle {
            assert!(
                send.as_service_error()
                    .is_some_and(|e| e.is_request_throttled())
                    || code == "service:ThrottlingException"
            );
        }

        let publish = chaos
            .sns()
            .publish()
            .topic_arn(&topic)
            .message("never published")
            .send()
            .await
            .expect_err("every call is faulted");
        assert_eq!(failure(&publish), format!("service:{sns_code}"), "{kind}");

        let journal = chaos.finish().await;
        let seen: Vec<(&str, &str, u64)> = journal
            .iter()
            .map(|l| {
                (
                    l["service"].as_str().unwrap_or_default(),
                    l["kind"].as_str().unwrap_or_default(),
                    l["status"].as_u64().unwrap_or_default(),
                )
            })
            .collect();
        let (name, status) = (kind.name(), u64::from(status));
        assert_eq!(
            seen,
            [
                ("dynamodb", name, status),
                ("sqs", name, status),
                ("sns", name, status)
            ]
        );
        assert_eq!(
            journal[2]["attributes"],
            json!({}),
            "a publish without attributes"
        );
    }
    assert_eq!(stored(&emulator, &table, "error").await, None);
    emulator
        .assert_no_message(&queue, Duration::from_secs(1))
        .await;
}

#[tokio::test]
async fn the_sdks_standard_retry_retries_every_injected_error() {
    let emulator = emulator().await;
    let table = table(&emulator, "chaos-retry").await;
    let queue = queue(&emulator, "chaos-retry").await;
    let topic = topic(&emulator, "chaos-retry").await;
    for kind in [
        FaultKind::Error,
        FaultKind::Throttle,
        FaultKind::Unavailable,
    ] {
        let chaos = chaos(&emulator, "chaos-retry", 100.0, kind, 3).await;
        let (put, send, publish) = tokio::join!(
            chaos
                .dynamodb()
                .put_item()
                .table_name(&table)
                .item("pk", AttributeValue::S("retried".into()))
                .send(),
            chaos
                .sqs()
                .send_message()
                .queue_url(&queue)
                .message_body("x")
                .send(),
            chaos.sns().publish().topic_arn(&topic).message("x").send(),
        );
        assert!(put.is_err() && send.is_err() && publish.is_err(), "{kind}");
        // Three attempts each: the SDK took every injected answer for a retryable one.
        let stats = chaos.proxy.stats();
        for service in ["dynamodb", "sqs", "sns"] {
            assert_eq!(stats["requests"][service], 3, "{kind} {service}: {stats}");
            assert_eq!(
                stats["faults"][service][kind.name()],
                3,
                "{kind} {service}: {stats}"
            );
        }
        chaos.finish().await;
    }
}

#[tokio::test]
async fn a_lost_put_is_applied_though_the_caller_hears_nothing() {
    let emulator = emulator().await;
    let table = table(&emulator, "chaos-lost").await;
    let chaos = chaos(&emulator, "chaos-lost", 100.0, FaultKind::Lost, 1).await;
    let put = chaos
        .dynamodb()
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("order-lost".into()))
        .item("state", AttributeValue::S("placed".into()))
        .send()
        .await
        .expect_err("the answer is lost");
    assert_eq!(failure(&put), "no answer", "{put:?}");
    let item = stored(&emulator, &table, "order-lost")
        .await
        .expect("the lost PutItem was applied");
    assert_eq!(item["state"], AttributeValue::S("placed".into()));
    let journal = chaos.finish().await;
    assert_eq!(journal.len(), 1, "{journal:?}");
    assert_eq!(journal[0]["service"], "dynamodb");
    assert_eq!(journal[0]["operation"], "PutItem");
    assert_eq!(journal[0]["kind"], "lost");
    assert_eq!(journal[0]["status"], 200);
    assert!(
        journal[0]["at"]
            .as_str()
            .is_some_and(|at| at.ends_with('Z'))
    );
}

#[tokio::test]
async fn a_reset_or_a_stall_applies_nothing() {
    let emulator = emulator().await;
    let table = table(&emulator, "chaos-reset").await;
    let queue = queue(&emulator, "chaos-reset").await;
    for (kind, expected) in [
        (FaultKind::Reset, "no answer"),
        (FaultKind::Stall, "timeout"),
    ] {
        let chaos = chaos(&emulator, "chaos-reset", 100.0, kind, 1).await;
        let started = std::time::Instant::now();
        let put = chaos
            .dynamodb()
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S(kind.name().into()))
            .send()
            .await
            .expect_err("no answer");
        assert_eq!(failure(&put), expected, "{kind}: {put:?}");
        if kind == FaultKind::Stall {
            assert!(
                started.elapsed() >= ATTEMPT_TIMEOUT,
                "{:?}",
                started.elapsed()
            );
        }
        let send = chaos
            .sqs()
            .send_message()
            .queue_url(&queue)
            .message_body("never sent")
            .send()
            .await
            .expect_err("no answer");
        assert_eq!(failure(&send), expected, "{kind}: {send:?}");
        let kinds: Vec<Value> = chaos
            .finish()
            .await
            .iter()
            .map(|l| l["kind"].clone())
            .collect();
        assert_eq!(kinds, [json!(kind.name()), json!(kind.name())]);
        assert_eq!(stored(&emulator, &table, kind.name()).await, None, "{kind}");
    }
    // Stalled requests were never forwarded, even after the stall ended.
    tokio::time::sleep(STALL).await;
    assert_eq!(stored(&emulator, &table, "stall").await, None);
    emulator
        .assert_no_message(&queue, Duration::from_secs(1))
        .await;
}

#[tokio::test]
async fn a_lost_publish_is_delivered_and_journaled_with_its_attributes() {
    let emulator = emulator().await;
    let fixture = emulator.topic_to_queue("chaos-publish").await;
    let chaos = chaos(&emulator, "chaos-publish", 100.0, FaultKind::Lost, 1).await;
    let attribute = |value: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(value)
            .build()
            .expect("an attribute")
    };
    let publish = chaos
        .sns()
        .publish()
        .topic_arn(&fixture.topic_arn)
        .subject("Your order")
        .message("Your parcel is on its way to 12 Main St")
        .message_attributes(
            "event_id",
            attribute("0190c0de-0000-7000-8000-000000000001"),
        )
        .message_attributes("customer_id", attribute("cust-42"))
        .send()
        .await
        .expect_err("the answer is lost");
    assert_eq!(failure(&publish), "no answer", "{publish:?}");
    let delivered = emulator
        .receive_all(&fixture.queue_url, 1, Duration::from_secs(20))
        .await;
    assert_eq!(
        delivered[0]["Message"],
        "Your parcel is on its way to 12 Main St"
    );
    let journal = chaos.finish().await;
    assert_eq!(journal.len(), 1, "{journal:?}");
    assert_eq!(
        journal[0]["attributes"],
        json!({"event_id": "0190c0de-0000-7000-8000-000000000001", "customer_id": "cust-42"})
    );
    assert_eq!(
        (
            journal[0]["service"].as_str(),
            journal[0]["operation"].as_str()
        ),
        (Some("sns"), Some("Publish"))
    );
    assert!(
        !journal[0].to_string().contains("Main St"),
        "no message text in the journal"
    );
}
