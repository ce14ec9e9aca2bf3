//! `POST /orders`: place an order. With an `Idempotency-Key` header, a retry with the same body
//! returns the original response (same order id, 201) and stores nothing twice; the same key with
//! another body is refused with 422. The idempotency record is written in the same transaction as
//! the `OrderPlaced` event, so a crash between the two cannot happen.

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shared::address::Address;
use shared::domain::order::{LineItem, Order, OrderCommand, OrderEvent, PlaceOrder, order_total};
use shared::envelope::{Actor, CorrelationId, EventContext};
use shared::ids::{CustomerId, OrderId, StreamId};
use shared::money::{Currency, Money};
use shared::ports::{IdempotencyRecord, StoreError};
use shared::repository::{self, CommandError};
use shared::validation::ValidationError;
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
    customer_id: CustomerId,
    items: Vec<LineItem>,
    currency: Currency,
    delivery_address: Address,
}

/// Places an order.
pub async fn place_order(app: &App, request: &Request, correlation_id: &CorrelationId) -> Handled {
    let idempotency_key = idempotency_key(request)?;
    let body = json_body(request)?;
    let request_hash = request_hash(&body);
    let parsed: PlaceOrderBody = typed(body).map_err(Problem::invalid)?;

    // No read of the idempotency key first: the record is written in the append's transaction on
    // condition that the key is new, so a retry ends in `DuplicateRequest` below and is answered
    // from the stored record — one DynamoDB call for a new order instead of two.
    let order_id = OrderId::generate();
    let stream = StreamId::new("order", &order_id);
    let context = EventContext {
        correlation_id: correlation_id.clone(),
        causation_id: correlation_id.as_str().to_owned(),
        actor: Actor::customer(&parsed.customer_id),
        occurred_at: app.clock.now(),
    };
    let place = PlaceOrder {
        order_id: order_id.clone(),
        customer_id: parsed.customer_id,
        items: parsed.items,
        currency: parsed.currency,
        delivery_address: parsed.delivery_address,
    };
    // The response is known before the append, so that it is stored with it.
    let total = order_total(&place.items).map_err(Problem::invalid)?;
    let (currency, customer_id, lines) =
        (place.currency, place.customer_id.clone(), place.items.len());
    let command = OrderCommand::Place(place);
    let response_body = json!({
        "order_id": order_id.as_str(),
        "customer_id": customer_id.as_str(),
        "status": "placed",
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

/// The request's idempotency key, scoped to this operation; absent when not sent.
fn idempotency_key(request: &Request) -> Result<Option<String>, Problem> {
    let Some(value) = request.headers().get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().ok().map(str::trim).filter(|key| {
        !key.is_empty()
            && key.len() <= MAX_IDEMPOTENCY_KEY_LEN
            && key.bytes().all(|b| b.is_ascii_graphic())
    });
    match key {
        Some(key) => Ok(Some(format!("order-api#place#{key}"))),
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
