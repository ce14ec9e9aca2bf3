//! # order-api
//!
//! The order context: its HTTP function behind API Gateway (HTTP API, payload v2) — customers place,
//! read, list and cancel their own orders; support reads any order and its full history — and its
//! reactions to delivery events. Who calls comes from the JWT authorizer's claims
//! ([`lambda_glue::http::caller`]); prices come from the catalogue.
//!
//! ## Layout
//!
//! | module | responsibility |
//! | --- | --- |
//! | [`config`] | `Config::from_env`: the environment `template.yaml` gives the function |
//! | [`routes`] | the route table and path matching (checked against `openapi.json` and the template) |
//! | [`problem`], [`input`] | (from `lambda_glue::http`) problem+json responses; request parsing that names the field |
//! | [`place`] | `POST /orders` with `Idempotency-Key` |
//! | `testing` | (feature `testing`) real API Gateway v2 request fixtures and an in-memory app, for handler and integration tests |
//! | [`reactions`] | `order-on-delivery-dispatched` / `-completed` / `-failed` (SQS handlers) |
//! | [`orders`] | `GET /orders/{id}`, `GET /orders/{id}/events`, `POST /orders/{id}/cancel`, `GET /customers/{id}/orders` |
//! | [`history`] | an order's history page by page, bounded reads, opaque cursors |
//!
//! [`App::handle`] never fails: every outcome, including a dependency failure, is an HTTP
//! response. Every log line of a request carries its correlation id, which also goes into every
//! stored event and back to the client in `X-Correlation-Id`.
#![forbid(unsafe_code)]

pub mod config;
pub mod history;
pub mod orders;
pub mod place;
pub mod reactions;
pub mod routes;

pub use lambda_glue::http::{input, problem};

use std::sync::Arc;

use domain::envelope::CorrelationId;
use domain::ports::{Catalogue, Clock, EventStore, IdempotencyStore};
use domain::read_model::{OrderViews, ViewError};
use lambda_http::{Body, Request, Response};
use tracing::error;

use crate::problem::Problem;
use crate::routes::{Route, match_route};

/// Tunables of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// How long an idempotency key is remembered, in seconds.
    pub idempotency_ttl_seconds: i64,
    /// Load-decide-append attempts on version conflicts before answering 409.
    pub max_attempts: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            idempotency_ttl_seconds: 24 * 60 * 60,
            max_attempts: 3,
        }
    }
}

/// The function's dependencies, as ports: DynamoDB in production, in memory in handler tests.
#[derive(Clone)]
pub struct App {
    /// The event store.
    pub store: Arc<dyn EventStore>,
    /// Request idempotency records (the table the store writes them to).
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// The order read model.
    pub views: Arc<dyn OrderViews>,
    /// The catalogue orders are priced from.
    pub catalogue: Arc<dyn Catalogue>,
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
            Route::PlaceOrder => place::place_order(self, request, correlation_id).await,
            Route::GetOrder(id) => orders::get_order(self, &id, request, correlation_id).await,
            Route::OrderEvents(id) => {
                orders::order_events(self, &id, request, correlation_id).await
            }
            Route::CancelOrder(id) => {
                orders::cancel_order(self, &id, request, correlation_id).await
            }
            Route::CustomerOrders(id) => {
                orders::customer_orders(self, &id, request, correlation_id).await
            }
        }
    }
}

/// The answer to a read-model failure.
pub(crate) fn view_problem(error: &ViewError) -> Problem {
    match error {
        ViewError::InvalidCursor => Problem::invalid(domain::validation::ValidationError::new(
            "cursor",
            "must be a cursor returned by a previous page",
        )),
        ViewError::Conflict(_) | ViewError::Unavailable(_) => {
            error!(%error, "read model unavailable");
            Problem::unavailable()
        }
        // Only a write can be too large; the API writes no view.
        ViewError::TooLarge(_) => {
            error!(%error, "read model refused a view");
            Problem::internal()
        }
    }
}

#[cfg(any(test, feature = "testing"))]
pub mod testing;
