//! `POST /orders`: a customer places an order. The customer is the caller (the token's subject);
//! the server prices every line from the catalogue and records the prices used in `OrderPlaced`.
//! A client may send the `unit_price` it showed its customer: if the catalogue's differs, the
//! answer is a 409 carrying the current prices and nothing is stored.
//!
//! With an `Idempotency-Key` header, a retry with the same body returns the original response (same
//! order id, 201) and stores nothing twice; the same key with another body is refused with 422.
//! Keys are the caller's own: two customers using the same key never see each other's replies. The
//! idempotency record is written in the same transaction as the `OrderPlaced` event, so a crash
//! between the two cannot happen.

use std::collections::HashMap;

use domain::address::Address;
use domain::catalogue::{CatalogueEntry, PricingError, RequestedLine, price_lines};
use domain::envelope::{CorrelationId, EventContext};
use domain::ids::{CustomerId, OrderId, StreamId};
use domain::money::{Currency, Money};
use domain::order::{MAX_ITEMS, Order, OrderCommand, OrderEvent, PlaceOrder, order_total};
use domain::ports::{IdempotencyRecord, StoreError};
use domain::repository::{self, CommandError};
use domain::validation::ValidationError;
use lambda_glue::http::caller::{Caller, Group};
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tracing::info;

use crate::input::{json_body, typed};
use crate::problem::{Problem, json_response};
use crate::{App, Handled};

/// The header a client sends its idempotency key in.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// The longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// The body of `POST /orders`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceOrderBody {
    /// No longer needed (the caller is the customer); refused when it names someone else.
    #[serde(default)]
    customer_id: Option<CustomerId>,
    items: Vec<RequestedLine>,
    currency: Currency,
    delivery_address: Address,
}

/// Places an order.
pub async fn place_order(app: &App, request: &Request, correlation_id: &CorrelationId) -> Handled {
    let caller = Caller::from_request(request)?;
    let customer_id = caller.customer()?;
    let idempotency_key = idempotency_key(request, &customer_id)?;
    let body = json_body(request)?;
    let request_hash = request_hash(&body);
    let parsed: PlaceOrderBody = typed(body).map_err(Problem::invalid)?;
    if parsed
        .customer_id
        .as_ref()
        .is_some_and(|id| *id != customer_id)
    {
        return Err(Problem::forbidden(
            "customer-mismatch",
            "`customer_id` names another customer; leave it out: orders are placed for the caller",
        ));
    }
    if parsed.items.is_empty() || parsed.items.len() > MAX_ITEMS {
        return Err(Problem::invalid(ValidationError::new(
            "items",
            format_args!("must contain 1 to {MAX_ITEMS} items"),
        )));
    }
    let items = match price(app, &parsed.items, parsed.currency).await? {
        Ok(items) => items,
        Err(refusal) => {
            // A retry of an order placed before the prices changed is answered from its record.
            if let Some(key) = &idempotency_key
                && let Some(record) = app
                    .idempotency
                    .get(key)
                    .await
                    .map_err(|e| Problem::from_store(&e, "order"))?
            {
                return replay(&record, &request_hash, correlation_id);
            }
            return Err(pricing_problem(refusal));
        }
    };

    // No read of the idempotency key first: the record is written in the append's transaction on
    // condition that the key is new, so a retry ends in `DuplicateRequest` below and is answered
    // from the stored record — one DynamoDB call for a new order instead of two.
    let order_id = OrderId::generate();
    let stream = StreamId::order(&order_id);
    let context = EventContext {
        correlation_id: correlation_id.clone(),
        causation_id: correlation_id.as_str().to_owned(),
        actor: caller.actor_as(Group::Customers),
        occurred_at: app.clock.now(),
    };
    let place = PlaceOrder {
        order_id: order_id.clone(),
        customer_id,
        items,
        currency: parsed.currency,
        delivery_address: parsed.delivery_address,
    };
    // The response is known before the append, so that it is stored with it.
    let total = order_total(&place.items).map_err(Problem::invalid)?;
    let (currency, customer_id, lines) =
        (place.currency, place.customer_id.clone(), place.items.len());
    let priced: Vec<Value> = place
        .items
        .iter()
        .map(|item| {
            json!({
                "sku": item.sku.as_str(),
                "quantity": item.quantity.get(),
                "unit_price": u64::from(item.unit_price),
            })
        })
        .collect();
    let command = OrderCommand::Place(place);
    let response_body = json!({
        "order_id": order_id.as_str(),
        "customer_id": customer_id.as_str(),
        "status": "placed",
        "items": priced,
        "total": total.value(),
        "currency": currency.code(),
        "total_display": Money { amount: total, currency }.to_string(),
    });
    let record = idempotency_key.map(|key| IdempotencyRecord {
        key,
        request_hash: request_hash.clone(),
        response: response_body.clone(),
        expires_at: app.clock.now().timestamp() + app.settings.idempotency_ttl_seconds,
    });

    // The order id was generated just now: its stream is new, so nothing is read before the append.
    let result = repository::execute_new::<Order>(
        app.store.as_ref(),
        &stream,
        &command,
        &context,
        record,
        app.settings.max_attempts,
    )
    .await;
    match result {
        Ok(stored) => {
            let placed = stored.iter().any(|event| {
                matches!(event.decode::<OrderEvent>(), Ok(OrderEvent::OrderPlaced(_)))
            });
            if !placed {
                return Err(Problem::internal());
            }
            info!(order_id = %order_id, lines, "order placed");
            Ok(created(&response_body, correlation_id))
        }
        // A retry, or two identical requests racing: the key's record is stored already.
        Err(CommandError::Store(StoreError::DuplicateRequest { key })) => {
            match app
                .idempotency
                .get(&key)
                .await
                .map_err(|e| Problem::from_store(&e, "order"))?
            {
                Some(record) => replay(&record, &request_hash, correlation_id),
                None => Err(Problem::unavailable()),
            }
        }
        Err(CommandError::Store(error)) => Err(Problem::from_store(&error, "order")),
        Err(CommandError::Domain(error)) => Err(Problem::from_domain(error)),
    }
}

/// The lines priced from the catalogue, or why they cannot be (the outer error: the catalogue is
/// out of reach).
async fn price(
    app: &App,
    lines: &[RequestedLine],
    currency: Currency,
) -> Result<Result<Vec<domain::order::LineItem>, PricingError>, Problem> {
    let skus: Vec<_> = lines.iter().map(|line| line.sku.clone()).collect();
    let entries = app
        .catalogue
        .entries(&skus)
        .await
        .map_err(|e| Problem::from_store(&e, "catalogue"))?;
    let catalogue: HashMap<_, _> = entries.into_iter().map(|e| (e.sku.clone(), e)).collect();
    Ok(price_lines(lines, currency, &catalogue))
}

/// 422 naming the line for what the catalogue does not sell as asked; 409 with the current prices
/// when the client's prices are out of date.
fn pricing_problem(refusal: PricingError) -> Problem {
    let field = refusal.field();
    match refusal {
        PricingError::UnknownSku { .. } => Problem::unprocessable(
            "unknown-sku",
            &field,
            "must be a SKU of the catalogue",
            refusal.to_string(),
        ),
        PricingError::Inactive { .. } => Problem::unprocessable(
            "inactive-sku",
            &field,
            "must be a SKU that is sold now",
            refusal.to_string(),
        ),
        PricingError::NotPricedIn { .. } => Problem::unprocessable(
            "currency-not-priced",
            &field,
            "must be priced in the order's currency",
            refusal.to_string(),
        ),
        PricingError::PriceChanged { ref current, .. } => {
            let prices: Vec<Value> = current.iter().map(price_entry).collect();
            let mut problem = Problem::conflict("price-changed", refusal.to_string());
            problem.field = Some(field);
            problem.rule = Some("must equal the catalogue's current unit price".into());
            problem.with("current_prices", Value::Array(prices))
        }
    }
}

fn price_entry(entry: &CatalogueEntry) -> Value {
    json!({
        "sku": entry.sku.as_str(),
        "name": entry.name,
        "unit_price": u64::from(entry.unit_price),
        "currency": entry.currency.code(),
    })
}

/// Answers a retry from the stored record, or refuses a reused key.
fn replay(
    record: &IdempotencyRecord,
    request_hash: &str,
    correlation_id: &CorrelationId,
) -> Handled {
    if record.request_hash != request_hash {
        return Err(Problem::unprocessable(
            "idempotency-key-reused",
            "Idempotency-Key",
            "must not be reused with a different request body",
            "this idempotency key was used with another request body",
        ));
    }
    info!(order_id = ?record.response.get("order_id"), "idempotent replay");
    Ok(created(&record.response, correlation_id))
}

fn created(body: &Value, correlation_id: &CorrelationId) -> Response<Body> {
    let mut response = json_response(StatusCode::CREATED, body, correlation_id);
    if let Some(id) = body.get("order_id").and_then(Value::as_str)
        && let Ok(location) = HeaderValue::from_str(&format!("/orders/{id}"))
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// The request's idempotency key, scoped to this operation and to the caller; absent when not
/// sent.
fn idempotency_key(request: &Request, customer: &CustomerId) -> Result<Option<String>, Problem> {
    let Some(value) = request.headers().get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().ok().map(str::trim).filter(|key| {
        !key.is_empty()
            && key.len() <= MAX_IDEMPOTENCY_KEY_LEN
            && key.bytes().all(|b| b.is_ascii_graphic())
    });
    match key {
        Some(key) => Ok(Some(format!("order-api#place#{customer}#{key}"))),
        None => Err(Problem::invalid(ValidationError::new(
            "Idempotency-Key",
            format_args!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"),
        ))),
    }
}

/// A hash of the body that does not depend on key order or whitespace.
fn request_hash(body: &Value) -> String {
    let mut hasher = Sha256::new();
    hash_canonical(body, &mut hasher);
    let digest = hasher.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn hash_canonical(value: &Value, hasher: &mut Sha256) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            hasher.update(b"{");
            for key in keys {
                hasher.update(Value::String(key.clone()).to_string().as_bytes());
                hasher.update(b":");
                hash_canonical(&map[key], hasher);
                hasher.update(b",");
            }
            hasher.update(b"}");
        }
        Value::Array(items) => {
            hasher.update(b"[");
            for item in items {
                hash_canonical(item, hasher);
                hasher.update(b",");
            }
            hasher.update(b"]");
        }
        scalar => hasher.update(scalar.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests;
