//! The shipped bootstrap (`orderflow-lambda`) under the local Lambda (`bridge::host`): it
//! serves the function its `_HANDLER` names over the Lambda Runtime API, and the host answers for
//! it as Lambda does — an unknown function, a timeout (the instance stopped and started again).
//! No emulator: the invocations need no AWS call, or stall on one on purpose.

#![allow(clippy::expect_used)] // a test: a failed expectation is the failure

use std::time::Duration;

use bridge::host::{self, HostSettings, LambdaHost};
use bridge::stack::FunctionSpec;
use serde_json::{Value, json};
use tokio::net::TcpListener;

fn spec(handler: &str, timeout: Duration) -> FunctionSpec {
    FunctionSpec {
        logical_id: handler.to_owned(),
        handler: handler.to_owned(),
        name: format!("orderflow-test-{handler}"),
        timeout,
    }
}

/// A host running `functions` from the bootstrap, their AWS endpoint `endpoint` — for every
/// service: the emulator scripts' per-service endpoints (DynamoDB Local beside moto) in the
/// environment the host inherits must not win over it.
async fn host_of(functions: &[FunctionSpec], endpoint: &str) -> LambdaHost {
    let environment = [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint),
        ("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", endpoint),
        ("AWS_ENDPOINT_URL_SQS", endpoint),
        ("AWS_ENDPOINT_URL_SNS", endpoint),
        ("AWS_ENDPOINT_URL_EVENTBRIDGE", endpoint),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("EVENTS_TABLE", "events"),
        ("VIEWS_TABLE", "views"),
        ("IDEMPOTENCY_TABLE", "markers"),
        ("TOPIC_ARN", "arn:aws:sns:us-east-1:000000000000:t"),
        ("EVENT_BUS_NAME", "bus"),
        ("PUBLISHER_POISON_QUEUE_URL", "http://127.0.0.1:1/q"),
        ("PROJECTOR_POISON_QUEUE_URL", "http://127.0.0.1:1/q"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .to_vec();
    let host = host::start(
        functions,
        HostSettings {
            bootstrap: env!("CARGO_BIN_EXE_orderflow-lambda").into(),
            environment,
            instances: 1,
            port: 0,
            memory_mb: 256,
            region: "us-east-1".into(),
        },
    )
    .await
    .expect("the host starts");
    host.ready(Duration::from_secs(30))
        .await
        .expect("every instance initialises");
    host
}

/// Invokes `handler` through the host's Invoke API: (status, function-error header, body).
async fn invoke(host: &LambdaHost, handler: &str, payload: &Value) -> (u16, Option<String>, Value) {
    let url = format!("{}/2015-03-31/functions/{handler}/invocations", host.url());
    let request = http::Request::post(&url)
        .header("content-type", "application/json")
        .body(bytes::Bytes::from(payload.to_string()))
        .expect("a request");
    let reply = bridge::http_client::HttpClient::new()
        .send(request, Duration::from_secs(30))
        .await
        .expect("the Invoke API answers");
    let error = reply
        .headers
        .get("x-amz-function-error")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    (reply.status.as_u16(), error, body)
}

#[tokio::test]
async fn the_bootstrap_serves_the_function_its_handler_names() {
    let functions = [
        spec("order-on-delivery-completed", Duration::from_secs(10)),
        spec("projector", Duration::from_secs(10)),
        spec("alert-on-order-placed", Duration::from_secs(10)),
    ];
    let host = host_of(&functions, "http://127.0.0.1:1").await;
    // Each answers its own trigger's event as its convention says (no AWS call for empty batches).
    for handler in ["order-on-delivery-completed", "alert-on-order-placed"] {
        let (status, error, body) = invoke(&host, handler, &json!({"Records": []})).await;
        assert_eq!((status, error), (200, None), "{handler}: {body}");
        assert_eq!(body, json!({"batchItemFailures": []}), "{handler}");
    }
    let (status, error, body) = invoke(&host, "projector", &json!({"Records": []})).await;
    assert_eq!((status, error), (200, None), "{body}");
    assert_eq!(body["batchItemFailures"], json!([]));
    // A queue function given what is not an SQS event fails the invocation, as on Lambda.
    let (status, error, body) =
        invoke(&host, "order-on-delivery-completed", &json!({"not": "sqs"})).await;
    assert_eq!(
        (status, error.as_deref()),
        (200, Some("Unhandled")),
        "{body}"
    );
    // An unknown function is the Invoke API's 404.
    let (status, _, body) = invoke(&host, "no-such-function", &json!({})).await;
    assert_eq!(status, 404, "{body}");
    host.stop().await;
}

#[tokio::test]
async fn a_timed_out_invocation_is_answered_for_and_its_instance_replaced() {
    // An endpoint that accepts and never answers: the overdue check's board query stalls.
    let stall = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let endpoint = format!("http://{}", stall.local_addr().expect("an address"));
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = stall.accept().await {
            open.push(socket);
        }
    });
    let functions = [spec("delivery-overdue-check", Duration::from_secs(1))];
    let host = host_of(&functions, &endpoint).await;
    let tick = json!({
        "version": "0", "id": "t", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "000000000000", "time": "2026-12-02T00:00:00Z", "region": "us-east-1",
        "resources": [], "detail": {}
    });
    let (status, error, body) = invoke(&host, "delivery-overdue-check", &tick).await;
    assert_eq!(
        (status, error.as_deref()),
        (200, Some("Unhandled")),
        "{body}"
    );
    assert_eq!(body["errorType"], "Sandbox.Timedout", "{body}");
    // The instance was stopped and started again: it initialises and takes the next invocation.
    host.ready(Duration::from_secs(30))
        .await
        .expect("the instance is back");
    let (_, _, again) = invoke(&host, "delivery-overdue-check", &tick).await;
    assert_eq!(again["errorType"], "Sandbox.Timedout", "{again}");
    host.stop().await;
    held.abort();
}
