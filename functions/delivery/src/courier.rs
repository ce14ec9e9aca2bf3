//! # courier-api
//!
//! The delivery context's HTTP function behind API Gateway (HTTP API, payload v2): couriers move a
//! delivery along — dispatch, report a delay, complete, fail — and read its current state and
//! history. Only members of `couriers` act (the courier is the token's subject); `support` reads.
//!
//! ## Layout
//!
//! | module | responsibility |
//! | --- | --- |
//! | [`config`] | `Config::from_env`: the environment `template.yaml` gives the function (`EVENTS_TABLE`) |
//! | [`routes`] | the route table and path matching (checked against `openapi.json`) |
//! | [`actions`] | `POST /deliveries/{id}/{dispatch,delay,complete,fail}`: load → decide → append, bounded retries |
//! | [`state`] | `GET /deliveries/{id}`: the delivery's current state folded from its event stream, and its history |
//! | `testing` | (feature `testing`) real API Gateway v2 request fixtures and an in-memory app, for handler and integration tests |
//!
//! Responses and request parsing come from `lambda_glue::http`, so both HTTP functions answer bad input
//! the same way (problem+json naming the field and the rule).
//!
//! [`App::handle`] never fails: every outcome, including a dependency failure, is an HTTP
//! response. Every log line of a request carries its correlation id, which also goes into every
//! stored event and back to the client in `X-Correlation-Id`.

pub mod actions;
pub mod config;
pub mod routes;
pub mod state;

use std::sync::Arc;

use domain::envelope::CorrelationId;
use domain::ids::DeliveryId;
use domain::ports::{Clock, EventStore};
use domain::validation::ValidationError;
use lambda_glue::http::problem::Problem;
use lambda_http::{Body, Request, Response};

use self::routes::{Route, match_route};

/// Tunables of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Load-decide-append attempts on version conflicts before answering 409.
    pub max_attempts: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self { max_attempts: 3 }
    }
}

/// The function's dependencies, as ports: DynamoDB in production, in memory in handler tests.
#[derive(Clone)]
pub struct App {
    /// The event store (delivery streams are small: loaded whole, one `Query`).
    pub store: Arc<dyn EventStore>,
    /// Where time comes from.
    pub clock: Arc<dyn Clock>,
    /// Tunables.
    pub settings: Settings,
}

#[async_trait::async_trait]
impl lambda_glue::http::serve::HttpHandler for App {
    async fn handle(&self, request: Request) -> Response<Body> {
        App::handle(self, request).await
    }
}

/// What a route handler returns: a response, or the problem to answer with.
pub type Handled = Result<Response<Body>, Problem>;

impl App {
    /// Answers one request. Never fails and never panics on client input.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let request = &request;
        lambda_glue::http::serve::serve(request, |method, path, correlation_id| async move {
            match match_route(&method, &path) {
                Ok(route) => self.dispatch(route, request, &correlation_id).await,
                Err(no_route) => Err(Problem::from(no_route)),
            }
        })
        .await
    }

    async fn dispatch(
        &self,
        route: Route,
        request: &Request,
        correlation_id: &CorrelationId,
    ) -> Handled {
        match route {
            Route::GetDelivery(id) => state::get_delivery(self, &id, request, correlation_id).await,
            Route::Act(id, action) => {
                actions::act(self, &id, action, request, correlation_id).await
            }
        }
    }
}

/// The delivery id from the path, or a 400 naming the path parameter.
pub(crate) fn delivery_id(raw: &str) -> Result<DeliveryId, Problem> {
    DeliveryId::parse(raw).map_err(|e| Problem::invalid(ValidationError::new("id", e.rule)))
}

#[cfg(any(test, feature = "testing"))]
pub mod testing;
