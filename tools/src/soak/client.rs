//! The soak's HTTP client: retries like a real client. A command keeps its `Idempotency-Key` (if
//! it has one) across attempts and backs off on 503 (honouring `Retry-After`, which every 503 must
//! carry), 429, timeouts and broken connections; any other 5xx reaching the client is a violation.
//! A 409 after an attempt whose outcome is unknown is not a refusal: the lost attempt may have done
//! the work ([`Answer::AfterUncertainty`]); the audit checks the end state either way.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use serde_json::Value;

use super::{Counts, Violation};
use crate::http_client::{HttpClient, HttpError, json_request};

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a command may keep retrying.
const RETRY_BUDGET: Duration = Duration::from_secs(120);
/// The first backoff; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What a request came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// 2xx, with the body.
    Done(Value),
    /// 409 after an attempt whose outcome was not known (it may have done the work).
    AfterUncertainty(Value),
    /// A 4xx refusal, with the body.
    Refused(u16, Value),
    /// A read that got 503, 429 or no answer (the caller polls again).
    Unavailable,
}

/// The client, with its counts.
#[derive(Debug)]
pub struct Client {
    http: HttpClient,
    base: String,
    requests: AtomicU64,
    retried_503: AtomicU64,
    retried_429: AtomicU64,
    retried_timeout: AtomicU64,
    retried_connection: AtomicU64,
}

/// How one attempt ended, for the retry loop.
enum Attempt {
    Final(StatusCode, Value),
    Retry(&'static str, Duration),
}

impl Client {
    /// A client of the API at `base`.
    pub fn new(base: &str) -> Self {
        Self {
            http: HttpClient::new(),
            base: base.trim_end_matches('/').to_owned(),
            requests: AtomicU64::new(0),
            retried_503: AtomicU64::new(0),
            retried_429: AtomicU64::new(0),
            retried_timeout: AtomicU64::new(0),
            retried_connection: AtomicU64::new(0),
        }
    }

    /// The counts: requests and retries by cause.
    pub fn counts(&self) -> Counts {
        [
            ("requests", &self.requests),
            ("retried after 503", &self.retried_503),
            ("retried after 429", &self.retried_429),
            ("retried after a timeout", &self.retried_timeout),
            (
                "retried after a broken connection",
                &self.retried_connection,
            ),
        ]
        .into_iter()
        .map(|(name, count)| (name.to_owned(), count.load(Ordering::Relaxed)))
        .collect()
    }

    async fn attempt(
        &self,
        method: &Method,
        path: &str,
        bearer: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Result<Attempt, Violation> {
        let mut headers = vec![("authorization", bearer)];
        if let Some(key) = key {
            headers.push(("idempotency-key", key));
        }
        let url = format!("{}{path}", self.base);
        let request = json_request(method.clone(), &url, body, &headers)
            .map_err(|e| Violation::new("client", format!("{method} {path} unsendable: {e}")))?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        let reply = match self.http.send(request, REQUEST_TIMEOUT).await {
            Ok(reply) => reply,
            Err(HttpError::Timeout(_)) => {
                self.retried_timeout.fetch_add(1, Ordering::Relaxed);
                return Ok(Attempt::Retry("timeout", Duration::ZERO));
            }
            Err(HttpError::Transport(_)) => {
                self.retried_connection.fetch_add(1, Ordering::Relaxed);
                return Ok(Attempt::Retry("connection", Duration::ZERO));
            }
        };
        let status = reply.status;
        match status.as_u16() {
            503 => {
                let retry_after = reply
                    .headers
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let Some(seconds) = retry_after else {
                    return Err(Violation::new(
                        "no 5xx but 503 with Retry-After",
                        format!("{method} {path} answered 503 without Retry-After"),
                    ));
                };
                self.retried_503.fetch_add(1, Ordering::Relaxed);
                Ok(Attempt::Retry("503", Duration::from_secs(seconds)))
            }
            429 => {
                self.retried_429.fetch_add(1, Ordering::Relaxed);
                Ok(Attempt::Retry("429", Duration::ZERO))
            }
            500..=599 => Err(Violation::new(
                "no 5xx but 503 with Retry-After",
                format!(
                    "{method} {path} answered {status}: {}",
                    String::from_utf8_lossy(&reply.body)
                        .chars()
                        .take(300)
                        .collect::<String>()
                ),
            )),
            _ => Ok(Attempt::Final(status, reply.json_body())),
        }
    }

    /// A command: retried (with the same idempotency key) until it gets a final answer, within
    /// [`RETRY_BUDGET`].
    pub async fn command(
        &self,
        method: Method,
        path: &str,
        bearer: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Result<Answer, Violation> {
        let started = Instant::now();
        let mut uncertain = false;
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self.attempt(&method, path, bearer, body, key).await? {
                Attempt::Final(status, value) if status.is_success() => {
                    return Ok(Answer::Done(value));
                }
                Attempt::Final(StatusCode::CONFLICT, value) if uncertain => {
                    return Ok(Answer::AfterUncertainty(value));
                }
                Attempt::Final(status, value) => {
                    return Ok(Answer::Refused(status.as_u16(), value));
                }
                Attempt::Retry(cause, wait) => {
                    // A 503 or 429 was answered before anything was done… or after: an API that
                    // lost its dependency's answer says 503 too.
                    uncertain = true;
                    if started.elapsed() > RETRY_BUDGET {
                        return Err(Violation::new(
                            "commands succeed within the retry budget",
                            format!("{method} {path}: still {cause} after {RETRY_BUDGET:?}"),
                        ));
                    }
                    tokio::time::sleep(wait.min(MAX_BACKOFF).max(backoff)).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// A read: one attempt ([`Answer::Unavailable`] when it should be tried again later).
    pub async fn read(&self, path: &str, bearer: &str) -> Result<Answer, Violation> {
        Ok(
            match self.attempt(&Method::GET, path, bearer, None, None).await? {
                Attempt::Final(status, value) if status.is_success() => Answer::Done(value),
                Attempt::Final(status, value) => Answer::Refused(status.as_u16(), value),
                Attempt::Retry(..) => Answer::Unavailable,
            },
        )
    }
}
