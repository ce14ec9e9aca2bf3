//! What every HTTP function does around its routes: take the caller's correlation id (or make one),
//! open a request span with it, answer every problem as `application/problem+json`, and log the
//! outcome — so the order API and the courier API behave, and log, the same way.

use std::future::Future;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use tracing::{Instrument, error, info, info_span, warn};

use crate::http::problem::{CORRELATION_HEADER, Problem};
use domain::envelope::CorrelationId;
use domain::telemetry::{self, ErrorKind};

/// The one convention of every HTTP function: one API Gateway request in, one response out, never
/// an error (a problem is a problem response, see [`serve`]).
#[async_trait::async_trait]
pub trait HttpHandler: Send + Sync {
    /// Answers one request.
    async fn handle(&self, request: Request) -> Response<Body>;
}

/// Answers `request` with `route(method, path, correlation_id)`. Never fails: a problem becomes
/// its problem response (logged as an error for 5xx, a warning for 4xx).
pub async fn serve<F, Fut>(request: &Request, route: F) -> Response<Body>
where
    F: FnOnce(String, String, CorrelationId) -> Fut,
    Fut: Future<Output = Result<Response<Body>, Problem>>,
{
    let correlation_id = correlation_id(request);
    let method = request.method().as_str().to_owned();
    let path = request_path(request);
    let span = info_span!(
        "request",
        correlation_id = %correlation_id,
        method = %method,
        path = %path,
    );
    async {
        let response = match route(method, path, correlation_id.clone()).await {
            Ok(response) => response,
            Err(problem) => {
                if let Some(kind) = error_kind(problem.status) {
                    telemetry::handler_error(kind);
                }
                if problem.status.is_server_error() {
                    error!(status = problem.status.as_u16(), kind = problem.kind, detail = %problem.detail, "request failed");
                } else {
                    warn!(status = problem.status.as_u16(), kind = problem.kind, field = ?problem.field, "request rejected");
                }
                problem.into_response(&correlation_id)
            }
        };
        info!(status = response.status().as_u16(), "answered");
        response
    }
    .instrument(span)
    .await
}

/// The kind of failure a problem response is, if it is one: a 5xx (the service's), or a request
/// refused as malformed. Other refusals (401, 403, 404, 409, …) are answers, not failures.
fn error_kind(status: StatusCode) -> Option<ErrorKind> {
    match status {
        StatusCode::SERVICE_UNAVAILABLE => Some(ErrorKind::Transient),
        status if status.is_server_error() => Some(ErrorKind::Internal),
        StatusCode::BAD_REQUEST
        | StatusCode::PAYLOAD_TOO_LARGE
        | StatusCode::UNSUPPORTED_MEDIA_TYPE
        | StatusCode::UNPROCESSABLE_ENTITY => Some(ErrorKind::Validation),
        _ => None,
    }
}

/// The path the client asked for: API Gateway's raw path (stage included only when the stage is
/// not `$default`), else the URI's.
fn request_path(request: &Request) -> String {
    let raw = request.raw_http_path();
    if raw.is_empty() {
        request.uri().path().to_owned()
    } else {
        raw.to_owned()
    }
}

/// The caller's `X-Correlation-Id` if it is well-formed, else a new one (a tracing header never
/// fails a request).
fn correlation_id(request: &Request) -> CorrelationId {
    request
        .headers()
        .get(CORRELATION_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| CorrelationId::parse(value).ok())
        .unwrap_or_else(CorrelationId::generate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_and_malformed_requests_are_failures_other_refusals_are_answers() {
        assert_eq!(
            error_kind(StatusCode::SERVICE_UNAVAILABLE),
            Some(ErrorKind::Transient)
        );
        assert_eq!(
            error_kind(StatusCode::INTERNAL_SERVER_ERROR),
            Some(ErrorKind::Internal)
        );
        for status in [400, 413, 415, 422] {
            let status = StatusCode::from_u16(status).unwrap_or_default();
            assert_eq!(error_kind(status), Some(ErrorKind::Validation), "{status}");
        }
        for status in [200, 201, 401, 403, 404, 405, 409] {
            let status = StatusCode::from_u16(status).unwrap_or_default();
            assert_eq!(error_kind(status), None, "{status}");
        }
    }
}
