//! The local API Gateway: an HTTP/1 server on 127.0.0.1 that routes each request by method and
//! path template to its function, invokes it with the payload-2.0 event and answers with the
//! function's response. An unknown route is a 404 `{"message": "Not Found"}`; a function that
//! fails, times out or answers something unusable is a 502 `{"message": …}` with the reason.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use chrono::Utc;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::apigw::{
    IncomingRequest, OutgoingResponse, RequestMeta, translate_response, v2_payload,
};
use super::invoke::Invoker;
use super::routes::RouteTable;

/// API Gateway's payload limit for HTTP APIs.
const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// What the server needs: the routes, an invoker, the account id for request contexts.
#[derive(Debug, Clone)]
pub struct ApiGateway {
    /// The route table.
    pub routes: RouteTable,
    /// Invokes the functions.
    pub invoker: Invoker,
    /// The account id in each request context.
    pub account_id: String,
}

impl ApiGateway {
    /// Answers one request.
    pub async fn handle(&self, request: Request<Incoming>, peer: SocketAddr) -> OutgoingResponse {
        let started = Instant::now();
        let (parts, body) = request.into_parts();
        let method = parts.method.as_str().to_owned();
        let raw_path = parts.uri.path().to_owned();
        let Some(matched) = self.routes.find(&method, &raw_path) else {
            info!(%method, path = %raw_path, status = 404, "no route");
            return OutgoingResponse::message(404, "Not Found");
        };
        let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) => {
                warn!(%method, path = %raw_path, %error, "request body refused");
                return OutgoingResponse::message(413, "Request Entity Too Large");
            }
        };
        let source_ip = peer.ip().to_string();
        let request = IncomingRequest {
            method: &method,
            raw_path: &raw_path,
            raw_query: parts.uri.query().unwrap_or_default(),
            headers: &parts.headers,
            body: &body,
            source_ip: &source_ip,
        };
        let meta = RequestMeta {
            request_id: uuid::Uuid::now_v7().to_string(),
            received_at: Utc::now(),
            account_id: self.account_id.clone(),
        };
        let event = v2_payload(&request, &matched, &meta);
        let function = &matched.route.function;
        let response = match self.invoker.invoke(function, &event).await {
            Ok(answer) => translate_response(&answer).unwrap_or_else(|reason| {
                OutgoingResponse::message(
                    502,
                    &format!("unusable response from {}: {reason}", function.binary),
                )
            }),
            Err(error) => OutgoingResponse::message(
                502,
                &format!("{} failed: {}", function.binary, error.reason()),
            ),
        };
        let elapsed_ms = started.elapsed().as_millis();
        if response.status == 502 {
            warn!(function = %function.binary, route = %matched.route.route_key(), %raw_path, status = response.status, elapsed_ms, body = %String::from_utf8_lossy(&response.body), "request failed");
        } else {
            info!(function = %function.binary, route = %matched.route.route_key(), %raw_path, status = response.status, elapsed_ms, "request");
        }
        response
    }
}

fn into_http(response: OutgoingResponse) -> Response<Full<Bytes>> {
    let mut builder = Response::builder().status(response.status);
    for (name, value) in &response.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
        .body(Full::new(Bytes::from(response.body)))
        .unwrap_or_else(|error| {
            let fallback =
                OutgoingResponse::message(502, &format!("unusable response headers: {error}"));
            let mut response = Response::new(Full::new(Bytes::from(fallback.body)));
            *response.status_mut() = http::StatusCode::BAD_GATEWAY;
            response
        })
}

/// Serves `listener` until `shutdown`; open connections finish their current request.
pub async fn serve(listener: TcpListener, gateway: Arc<ApiGateway>, shutdown: CancellationToken) {
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    warn!(%error, "accept failed");
                    continue;
                }
            },
        };
        let gateway = Arc::clone(&gateway);
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let gateway = Arc::clone(&gateway);
                async move { Ok::<_, Infallible>(into_http(gateway.handle(request, peer).await)) }
            });
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        warn!(%error, "connection error");
                    }
                }
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    //! The gateway end to end over real sockets, with a fake Lambda invoke API in place of
    //! `cargo lambda watch`.
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::*;
    use crate::bridge::routes::HttpRoute;
    use crate::bridge::stack::FunctionSpec;
    use crate::http_client::HttpClient;

    /// Answers invokes by binary name: `echo` returns the event as the body, `boom` fails,
    /// `slow` answers after 2 s.
    async fn fake_invoke_api() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let service = service_fn(|request: Request<Incoming>| async move {
                        let path = request.uri().path().to_owned();
                        let event = request.into_body().collect().await.unwrap().to_bytes();
                        let function = path.split('/').nth(3).unwrap_or_default().to_owned();
                        let response = match function.as_str() {
                            "echo" => {
                                let event: Value = serde_json::from_slice(&event).unwrap();
                                let answer = json!({
                                    "statusCode": 201,
                                    "headers": {"content-type": "application/json", "x-route": event["routeKey"]},
                                    "cookies": ["seen=1"],
                                    "body": event.to_string(),
                                });
                                Response::new(Full::new(Bytes::from(answer.to_string())))
                            }
                            "boom" => Response::builder()
                                .header("x-amz-function-error", "Unhandled")
                                .body(Full::new(Bytes::from(
                                    r#"{"errorType":"Boom","errorMessage":"it broke"}"#,
                                )))
                                .unwrap(),
                            _ => {
                                tokio::time::sleep(Duration::from_secs(2)).await;
                                Response::new(Full::new(Bytes::from("{}")))
                            }
                        };
                        Ok::<_, Infallible>(response)
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        format!("http://{address}")
    }

    fn route(method: &str, path: &str, binary: &str) -> HttpRoute {
        HttpRoute {
            event: binary.into(),
            method: method.into(),
            path: path.into(),
            function: FunctionSpec {
                logical_id: binary.into(),
                binary: binary.into(),
                name: binary.into(),
                timeout: Duration::from_secs(1),
            },
            auth: None,
        }
    }

    async fn call(
        api: &str,
        method: &str,
        path: &str,
        body: &str,
    ) -> (u16, Value, http::HeaderMap) {
        let request = Request::builder()
            .method(method)
            .uri(format!("{api}{path}"))
            .header("Cookie", "session=abc")
            .body(Bytes::from(body.to_owned()))
            .unwrap();
        let reply = HttpClient::new()
            .send(request, Duration::from_secs(10))
            .await
            .unwrap();
        let body = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        (reply.status.as_u16(), body, reply.headers)
    }

    #[tokio::test]
    async fn routes_invoke_their_function_and_failures_are_bad_gateways() {
        let functions = fake_invoke_api().await;
        let gateway = Arc::new(ApiGateway {
            routes: RouteTable::new(vec![
                route("POST", "/things/{id}/notes", "echo"),
                route("GET", "/boom", "boom"),
                route("GET", "/slow", "slow"),
            ]),
            invoker: Invoker::new(&functions, Duration::ZERO),
            account_id: "123456789012".into(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(listener, gateway, shutdown.clone()));

        let (status, event, headers) =
            call(&api, "POST", "/things/t%2D1/notes?x=1", r#"{"note":"hi"}"#).await;
        assert_eq!(status, 201);
        assert_eq!(headers["x-route"], "POST /things/{id}/notes");
        assert_eq!(headers["set-cookie"], "seen=1");
        assert_eq!(event["pathParameters"]["id"], "t-1");
        assert_eq!(event["rawPath"], "/things/t%2D1/notes");
        assert_eq!(event["queryStringParameters"]["x"], "1");
        assert_eq!(event["cookies"][0], "session=abc");
        assert_eq!(event["body"], r#"{"note":"hi"}"#);
        assert_eq!(event["requestContext"]["http"]["sourceIp"], "127.0.0.1");

        let (status, body, _) = call(&api, "GET", "/things/t-1/notes", "").await;
        assert_eq!((status, body), (404, json!({"message": "Not Found"})));

        let (status, body, _) = call(&api, "GET", "/boom", "").await;
        assert_eq!(status, 502);
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("Boom") && message.contains("it broke"),
            "{message}"
        );

        let (status, body, _) = call(&api, "GET", "/slow", "").await;
        assert_eq!(status, 502);
        assert!(
            body["message"].as_str().unwrap().contains("timed out"),
            "{body}"
        );

        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
    }
}
