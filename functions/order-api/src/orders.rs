//! Reading and cancelling orders.
//!
//! - `GET /orders/{id}`: the order view from the read model. Right after `POST /orders` the
//!   projector may not have caught up; then the view is folded from the event store with the same
//!   projection code, so a client reads its own writes.
//! - `GET /orders/{id}/events?limit=&cursor=`: the order's history (order, delivery and coupon
//!   streams), upcast, oldest first, a page at a time ([`crate::history`]): an order's history
//!   has no bound, a response and a read must. Support sees all of it; the customer sees it
//!   without the delivery address.
//! - `POST /orders/{id}/cancel`: the customer cancels; load-decide-append retried a bounded number
//!   of times on version conflicts, then 409.
//! - `GET /customers/{id}/orders` (`me` for the caller): newest first, paginated with an opaque
//!   cursor.
//!
//! Who may: a customer reads and cancels only their own orders — anybody else's is a 404, so
//! existence is not disclosed; `support` reads every order, its history and every customer's list
//! (and cancels nothing); a list of another customer is a 403.

use domain::DomainError;
use domain::address::strip_addresses;
use domain::envelope::{CorrelationId, EventContext, StoredEvent};
use domain::ids::{CustomerId, OrderId, StreamId};
use domain::order::{CancellationReason, Order, OrderCommand};
use domain::read_model::{MAX_PAGE_SIZE, OrderView};
use domain::repository::{self, CommandError};
use domain::validation::ValidationError;
use lambda_glue::http::caller::{Caller, Group};
use lambda_http::Request;
use lambda_http::http::StatusCode;
use serde_json::{Value, json};
use tracing::{error, info};

use crate::history::{self, Position};
use crate::input::query;
use crate::problem::{Problem, json_response};
use crate::{App, Handled, view_problem};

/// Page size of `GET /customers/{id}/orders` when `limit` is not given.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// Page size of `GET /orders/{id}/events` when `limit` is not given: the most, so a client that
/// reads one page sees the whole history of any order that kept the rules (about twenty events).
pub const DEFAULT_HISTORY_PAGE_SIZE: u32 = MAX_PAGE_SIZE;
/// The longest cursor accepted.
pub const MAX_CURSOR_LEN: usize = 2048;

/// The path segment of `GET /customers/{id}/orders` that means the caller.
pub const ME: &str = "me";

fn order_id(raw: &str) -> Result<OrderId, Problem> {
    OrderId::parse(raw).map_err(|e| Problem::invalid(ValidationError::new("id", e.rule)))
}

fn not_found(order_id: &OrderId) -> Problem {
    Problem::not_found(format!("order {order_id} not found"))
}

/// Whether `caller` owns the order of `customer_id` as a customer.
fn owns(caller: &Caller, customer_id: Option<&CustomerId>) -> bool {
    caller.is(Group::Customers) && customer_id.is_some_and(|id| id.as_str() == caller.subject())
}

/// Whether `caller` may read the order of `customer_id`.
fn may_read(caller: &Caller, customer_id: Option<&CustomerId>) -> bool {
    caller.is(Group::Support) || owns(caller, customer_id)
}

/// `GET /orders/{id}`.
pub async fn get_order(
    app: &App,
    raw_id: &str,
    request: &Request,
    correlation_id: &CorrelationId,
) -> Handled {
    let caller = Caller::from_request(request)?;
    let order_id = order_id(raw_id)?;
    let stored = app
        .views
        .get(&order_id)
        .await
        .map_err(|e| view_problem(&e))?;
    let view = match stored {
        Some(view) if view.status.is_some() => view,
        _ => {
            let history = history(app, &order_id).await?;
            if history.is_empty() {
                return Err(not_found(&order_id));
            }
            fold(&order_id, &history)?
        }
    };
    if !may_read(&caller, view.customer_id.as_ref()) {
        return Err(not_found(&order_id));
    }
    Ok(json_response(
        StatusCode::OK,
        &view_body(&view),
        correlation_id,
    ))
}

/// `GET /orders/{id}/events`.
pub async fn order_events(
    app: &App,
    raw_id: &str,
    request: &Request,
    correlation_id: &CorrelationId,
) -> Handled {
    let caller = Caller::from_request(request)?;
    let order_id = order_id(raw_id)?;
    let limit = page_limit(request, DEFAULT_HISTORY_PAGE_SIZE)?;
    let from = match cursor(request)? {
        None => Position::start(),
        Some(raw) => Position::from_cursor(raw, &order_id).map_err(|_| invalid_cursor())?,
    };
    let page = history::page(app.store.as_ref(), &order_id, &from, limit)
        .await
        .map_err(|e| Problem::from_store(&e, "order"))?;
    let owner = page
        .opening
        .as_ref()
        .filter(|event| event.event_type == "OrderPlaced")
        .and_then(|event| event.data.get("customer_id")?.as_str())
        .and_then(|id| CustomerId::parse(id).ok());
    let mut events = page.events;
    if caller.is(Group::Support) {
        // Support sees the whole history, addresses included.
    } else if owns(&caller, owner.as_ref()) {
        strip_addresses(&mut events);
    } else {
        return Err(not_found(&order_id));
    }
    let body = json!({
        "order_id": order_id.as_str(),
        "events": events,
        "next_cursor": page.next.as_ref().map(Position::to_cursor),
    });
    Ok(json_response(StatusCode::OK, &body, correlation_id))
}

/// The `limit` query parameter: 1 to [`MAX_PAGE_SIZE`], `default` when absent.
fn page_limit(request: &Request, default: u32) -> Result<u32, Problem> {
    match query(request, "limit") {
        None => Ok(default),
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|limit| (1..=MAX_PAGE_SIZE).contains(limit))
            .ok_or_else(|| {
                Problem::invalid(ValidationError::new(
                    "limit",
                    format_args!("must be a whole number from 1 to {MAX_PAGE_SIZE}"),
                ))
            }),
    }
}

/// The `cursor` query parameter, if given: checked for length here, for meaning by the reader.
fn cursor(request: &Request) -> Result<Option<&str>, Problem> {
    let cursor = query(request, "cursor");
    if cursor.is_some_and(|c| c.is_empty() || c.len() > MAX_CURSOR_LEN) {
        return Err(invalid_cursor());
    }
    Ok(cursor)
}

fn invalid_cursor() -> Problem {
    Problem::invalid(ValidationError::new(
        "cursor",
        "must be a cursor returned by a previous page",
    ))
}

/// `POST /orders/{id}/cancel`.
pub async fn cancel_order(
    app: &App,
    raw_id: &str,
    request: &Request,
    correlation_id: &CorrelationId,
) -> Handled {
    let caller = Caller::from_request(request)?;
    let order_id = order_id(raw_id)?;
    let stream = StreamId::order(&order_id);
    let loaded = repository::load::<Order>(app.store.as_ref(), &stream)
        .await
        .map_err(|e| Problem::from_store(&e, "order"))?;
    if !owns(&caller, loaded.state.customer_id()) {
        if caller.is(Group::Support) && loaded.state.customer_id().is_some() {
            return Err(Problem::forbidden(
                "forbidden",
                "support reads orders; only the customer may cancel one",
            ));
        }
        return Err(not_found(&order_id));
    }
    let context = EventContext {
        correlation_id: correlation_id.clone(),
        causation_id: correlation_id.as_str().to_owned(),
        actor: caller.actor_as(Group::Customers),
        occurred_at: app.clock.now(),
    };
    let command = OrderCommand::Cancel {
        reason: CancellationReason::CustomerRequest,
    };
    let result = repository::execute::<Order>(
        app.store.as_ref(),
        &stream,
        &command,
        &context,
        None,
        app.settings.max_attempts,
    )
    .await;
    match result {
        Ok(stored) => {
            let version = stored.last().map_or(loaded.version, |event| event.version);
            info!(order_id = %order_id, version, "order cancelled");
            let body = json!({
                "order_id": order_id.as_str(),
                "status": "cancelled",
                "version": version,
            });
            Ok(json_response(StatusCode::OK, &body, correlation_id))
        }
        Err(CommandError::Domain(DomainError::InvalidTransition { status, .. })) => {
            Err(Problem::conflict(
                "invalid-transition",
                format!("the order is {status} and can no longer be cancelled"),
            ))
        }
        Err(CommandError::Domain(error)) => Err(Problem::from_domain(error)),
        Err(CommandError::Store(error)) => Err(Problem::from_store(&error, "order")),
    }
}

/// `GET /customers/{id}/orders?limit=&cursor=` (`{id}` = `me` for the caller).
pub async fn customer_orders(
    app: &App,
    raw_id: &str,
    request: &Request,
    correlation_id: &CorrelationId,
) -> Handled {
    let caller = Caller::from_request(request)?;
    let customer_id = if raw_id == ME {
        caller.customer()?
    } else {
        let id = CustomerId::parse(raw_id)
            .map_err(|e| Problem::invalid(ValidationError::new("id", e.rule)))?;
        if !caller.is(Group::Support) && !owns(&caller, Some(&id)) {
            return Err(Problem::forbidden(
                "forbidden",
                "a customer lists only their own orders: use /customers/me/orders",
            ));
        }
        id
    };
    let limit = page_limit(request, DEFAULT_PAGE_SIZE)?;
    let cursor = cursor(request)?;
    let page = app
        .views
        .list_for_customer(&customer_id, limit, cursor)
        .await
        .map_err(|e| view_problem(&e))?;
    let orders: Vec<Value> = page.orders.iter().map(summary).collect();
    let body = json!({
        "customer_id": customer_id.as_str(),
        "orders": orders,
        "next_cursor": page.next_cursor,
    });
    Ok(json_response(StatusCode::OK, &body, correlation_id))
}

/// Every stored event of an order, in history order (for a view the projector has not written
/// yet: a young order, whose history is short).
async fn history(app: &App, order_id: &OrderId) -> Result<Vec<StoredEvent>, Problem> {
    history::page(app.store.as_ref(), order_id, &Position::start(), u32::MAX)
        .await
        .map(|page| page.events)
        .map_err(|e| Problem::from_store(&e, "order"))
}

/// The view of an order folded from its history (the projector's code, run on demand).
fn fold(order_id: &OrderId, history: &[StoredEvent]) -> Result<OrderView, Problem> {
    let mut view = OrderView::new(order_id.clone());
    for event in history {
        view.apply(event).map_err(|e| {
            error!(event_id = %event.event_id, error = %e, "stored event cannot be projected");
            Problem::internal()
        })?;
    }
    Ok(view)
}

/// The view as the API shows it (without the projector's bookkeeping).
fn view_body(view: &OrderView) -> Value {
    let mut body = serde_json::to_value(view).unwrap_or_else(|_| json!({}));
    if let Some(object) = body.as_object_mut() {
        object.remove("versions");
    }
    body
}

/// One line of a customer's order list.
fn summary(view: &OrderView) -> Value {
    json!({
        "order_id": view.order_id.as_str(),
        "status": view.status,
        "placed_at": view.placed_at,
        "total": view.total,
        "currency": view.currency,
        "lines": view.items.len(),
        "delivery_status": view.delivery.as_ref().map(|d| d.status),
        "eta": view.delivery.as_ref().map(|d| d.eta),
    })
}

#[cfg(test)]
mod tests;
