//! The local API Gateway: an HTTP/1 server on 127.0.0.1 that routes each request by method and
//! path template to its function, has the route's JWT authorizer check the caller's token, invokes
//! the function with the payload-2.0 event (the token's claims in `requestContext.authorizer`) and
//! answers with the function's response. An unknown route is a 404 `{"message": "Not Found"}`; a
//! refused token is the authorizer's 401 or 403 and the function is not invoked; a function that
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
use super::authorizer::Authorizers;
use super::invoke::Invoker;
use super::routes::RouteTable;

/// API Gateway's payload limit for HTTP APIs.
const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// What the server needs: the routes, their authorizers, an invoker, the account id for request
/// contexts.
#[derive(Debug, Clone)]
pub struct ApiGateway {
    /// The route table.
    pub routes: RouteTable,
    /// The JWT authorizers the routes name.
    pub authorizers: Authorizers,
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
        let route_key = matched.route.route_key();
        let authorizer = match &matched.route.auth {
            None => None,
            Some(auth) => {
                let Some(authorizer) = self.authorizers.get(auth) else {
                    warn!(route = %route_key, authorizer = %auth.authorizer, status = 500, "the route's authorizer is not running");
                    return OutgoingResponse::message(500, "Internal Server Error");
                };
                match authorizer.authorize(&parts.headers, &auth.scopes).await {
                    Ok(authorized) => Some(authorized.context()),
                    Err(rejection) => {
                        info!(route = %route_key, path = %raw_path, status = rejection.status(), reason = %rejection, "refused by the authorizer");
                        return rejection.response(&auth.scopes);
                    }
                }
            }
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
            authorizer,
        };
        let event = v2_payload(&request, &matched, &meta);
        let function = &matched.route.function;
        let response = match self.invoker.invoke(function, &event).await {
            Ok(answer) => translate_response(&answer).unwrap_or_else(|reason| {
                OutgoingResponse::message(
                    502,
                    &format!("unusable response from {}: {reason}", function.handler),
                )
            }),
            Err(error) => OutgoingResponse::message(
                502,
                &format!("{} failed: {}", function.handler, error.reason()),
            ),
        };
        let elapsed_ms = started.elapsed().as_millis();
        if response.status == 502 {
            warn!(function = %function.handler, route = %route_key, %raw_path, status = response.status, elapsed_ms, body = %String::from_utf8_lossy(&response.body), "request failed");
        } else {
            info!(function = %function.handler, route = %route_key, %raw_path, status = response.status, elapsed_ms, "request");
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
    //! the functions.
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::*;
    use crate::authorizer::JwtAuthorizer;
    use crate::authorizer::tests::{claims, config, keys, sign};
    use crate::http_client::HttpClient;
    use crate::routes::{HttpRoute, RouteAuth};
    use crate::stack::FunctionSpec;

    /// Answers invokes by handler name: `echo` returns the event as the body, `boom` fails,
    /// `slow` answers after 2 s; counts the invokes.
    async fn fake_invoke_api() -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let invokes = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&invokes);
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let counted = Arc::clone(&counted);
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        counted.fetch_add(1, Ordering::SeqCst);
                        async move {
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
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (format!("http://{address}"), invokes)
    }

    fn route(method: &str, path: &str, handler: &str) -> HttpRoute {
        HttpRoute {
            event: handler.into(),
            method: method.into(),
            path: path.into(),
            function: FunctionSpec {
                logical_id: handler.into(),
                handler: handler.into(),
                name: handler.into(),
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
        call_with(api, method, path, body, None).await
    }

    async fn call_with(
        api: &str,
        method: &str,
        path: &str,
        body: &str,
        authorization: Option<&str>,
    ) -> (u16, Value, http::HeaderMap) {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{api}{path}"))
            .header("Cookie", "session=abc");
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        let request = request.body(Bytes::from(body.to_owned())).unwrap();
        let reply = HttpClient::new()
            .send(request, Duration::from_secs(10))
            .await
            .unwrap();
        let body = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        (reply.status.as_u16(), body, reply.headers)
    }

    #[tokio::test]
    async fn routes_invoke_their_function_and_failures_are_bad_gateways() {
        let (functions, _) = fake_invoke_api().await;
        let gateway = Arc::new(ApiGateway {
            routes: RouteTable::new(vec![
                route("POST", "/things/{id}/notes", "echo"),
                route("GET", "/boom", "boom"),
                route("GET", "/slow", "slow"),
            ]),
            authorizers: Authorizers::default(),
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

    #[tokio::test]
    async fn a_request_without_a_valid_token_never_reaches_the_function() {
        let (functions, invokes) = fake_invoke_api().await;
        let mut secured = route("GET", "/things/{id}", "echo");
        secured.auth = Some(RouteAuth {
            api: "HttpApi".into(),
            authorizer: "CognitoJwt".into(),
            scopes: vec!["aws.cognito.signin.user.admin".into()],
        });
        let mut unplayed = route("GET", "/other", "echo");
        unplayed.auth = Some(RouteAuth {
            api: "HttpApi".into(),
            authorizer: "Missing".into(),
            scopes: Vec::new(),
        });
        let mut authorizers = Authorizers::default();
        authorizers.insert(
            "HttpApi",
            "CognitoJwt",
            JwtAuthorizer::with_keys(config(), keys()),
        );
        let gateway = Arc::new(ApiGateway {
            routes: RouteTable::new(vec![secured, unplayed]),
            authorizers,
            invoker: Invoker::new(&functions, Duration::ZERO),
            account_id: "123456789012".into(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(listener, gateway, shutdown.clone()));

        let (status, body, headers) = call(&api, "GET", "/things/t-1", "").await;
        assert_eq!((status, body), (401, json!({"message": "Unauthorized"})));
        let challenge = headers["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.starts_with("Bearer ")
                && challenge.contains(r#"error="invalid_token""#)
                && challenge.contains("error_description="),
            "{challenge}"
        );
        let now = Utc::now().timestamp();
        let mut expired = claims(now - 7200);
        expired["exp"] = json!(now - 1);
        let (status, _, headers) = call_with(
            &api,
            "GET",
            "/things/t-1",
            "",
            Some(&format!("Bearer {}", sign(&expired))),
        )
        .await;
        assert_eq!(status, 401);
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("expired")
        );
        let mut unscoped = claims(now);
        unscoped["scope"] = json!("openid");
        let (status, body, headers) =
            call_with(&api, "GET", "/things/t-1", "", Some(&sign(&unscoped))).await;
        assert_eq!((status, body), (403, json!({"message": "Forbidden"})));
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .contains(r#"error="insufficient_scope""#)
        );
        let (status, _, _) = call(&api, "GET", "/other", "").await;
        assert_eq!(
            status, 500,
            "a route whose authorizer is not running stays shut"
        );
        assert_eq!(invokes.load(Ordering::SeqCst), 0, "no function was invoked");

        let token = sign(&claims(now));
        let (status, event, _) = call_with(
            &api,
            "GET",
            "/things/t-1",
            "",
            Some(&format!("Bearer {token}")),
        )
        .await;
        assert_eq!(status, 201);
        assert_eq!(invokes.load(Ordering::SeqCst), 1);
        let jwt = &event["requestContext"]["authorizer"]["jwt"];
        assert_eq!(jwt["claims"]["sub"], "4f9c-subject");
        assert_eq!(jwt["claims"]["cognito:groups"], "[customers support]");
        assert_eq!(jwt["claims"]["exp"], (now + 3600).to_string());
        assert_eq!(jwt["scopes"], json!(["aws.cognito.signin.user.admin"]));
        assert_eq!(event["headers"]["authorization"], format!("Bearer {token}"));

        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
    }
}
