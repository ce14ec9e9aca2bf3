//! `POST /deliveries/{id}/{dispatch,delay,complete,fail}`: a courier moves a delivery along.
//!
//! Each request is parsed into a [`DeliveryCommand`] (every field checked and named on rejection),
//! then run with [`repository::execute`]: load → decide → append, decided again from a fresh load
//! when a concurrent writer moved the stream on, a bounded number of times, then 409.
//!
//! The courier is the caller (the token's subject, a member of `couriers`); a body that names
//! another courier is a 403. Only the courier who dispatched a delivery may delay, complete or fail
//! it: anyone else gets a 403 `not-assigned` (the domain's rule, `DomainError::NotAssigned`).
//!
//! Retries are safe: a repeat that decides nothing (dispatching a dispatched delivery, completing a
//! completed one, failing a failed one, reporting the same delay again) answers 200 with the
//! current state and stores nothing. Only the courier who holds a dispatched delivery gets that
//! 200 for a repeated dispatch; any other courier is told it is taken (409).

use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::delivery::{Delivery, DeliveryCommand, MAX_REASON_LEN};
use domain::envelope::{Actor, CorrelationId, EventContext, StoredEvent};
use domain::ids::{CourierId, StreamId};
use domain::ports::{AppendRequest, EventStore, StoreError};
use domain::repository::{self, CommandError};
use domain::validation::{ValidationError, text};
use domain::{Aggregate, DomainError};
use lambda_glue::http::caller::{Caller, Group};
use lambda_glue::http::input::{json_body, typed};
use lambda_glue::http::problem::{Problem, json_response};
use lambda_http::Request;
use lambda_http::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::info;

use super::routes::CourierAction;
use super::state::DeliveryState;
use super::{App, Handled, delivery_id};

/// An instant in RFC 3339 form with an explicit offset (`2026-11-28T14:00:00Z`), held in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Rfc3339(pub DateTime<Utc>);

impl TryFrom<String> for Rfc3339 {
    type Error = ValidationError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        DateTime::parse_from_rfc3339(value.trim())
            .map(|instant| Self(instant.with_timezone(&Utc)))
            .map_err(|_| {
                ValidationError::new(
                    "new_eta",
                    "must be an RFC 3339 date-time with an offset, e.g. 2026-11-28T14:00:00Z",
                )
            })
    }
}

/// A courier's free-text reason: trimmed, 1 to [`MAX_REASON_LEN`] characters, no control
/// characters.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Reason(pub String);

impl TryFrom<String> for Reason {
    type Error = ValidationError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        text("reason", &value, MAX_REASON_LEN).map(Self)
    }
}

/// The body of `dispatch` and `complete` (may be empty: the courier is the caller).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CourierBody {
    #[serde(default)]
    courier_id: Option<CourierId>,
}

/// The body of `delay`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DelayBody {
    #[serde(default)]
    courier_id: Option<CourierId>,
    new_eta: Rfc3339,
    reason: Reason,
}

/// The body of `fail`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FailBody {
    #[serde(default)]
    courier_id: Option<CourierId>,
    reason: Reason,
}

/// A parsed action: the command for `courier`, and the `courier_id` the body named, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAction {
    /// The command.
    pub command: DeliveryCommand,
    /// What the body said the courier was (only checked against the caller; never trusted).
    pub named: Option<CourierId>,
}

/// Parses the body of `action`, done by `courier` (the caller), into the command.
pub fn parse_command(
    action: CourierAction,
    courier: &CourierId,
    body: Value,
) -> Result<ParsedAction, ValidationError> {
    let courier_id = courier.clone();
    Ok(match action {
        CourierAction::Dispatch => {
            let body: CourierBody = typed(body)?;
            ParsedAction {
                command: DeliveryCommand::Dispatch { courier_id },
                named: body.courier_id,
            }
        }
        CourierAction::Delay => {
            let body: DelayBody = typed(body)?;
            ParsedAction {
                command: DeliveryCommand::ReportDelay {
                    courier_id,
                    new_eta: body.new_eta.0,
                    reason: body.reason.0,
                },
                named: body.courier_id,
            }
        }
        CourierAction::Complete => {
            let body: CourierBody = typed(body)?;
            ParsedAction {
                command: DeliveryCommand::Complete { courier_id },
                named: body.courier_id,
            }
        }
        CourierAction::Fail => {
            let body: FailBody = typed(body)?;
            ParsedAction {
                command: DeliveryCommand::Fail {
                    courier_id,
                    reason: body.reason.0,
                },
                named: body.courier_id,
            }
        }
    })
}

/// Runs a courier's action on a delivery.
pub async fn act(
    app: &App,
    raw_id: &str,
    action: CourierAction,
    request: &Request,
    correlation_id: &CorrelationId,
) -> Handled {
    let caller = Caller::from_request(request)?;
    let courier_id = caller.courier()?;
    let delivery_id = delivery_id(raw_id)?;
    // `dispatch` and `complete` need nothing but the caller: an empty body is `{}`.
    let body = if request.body().is_empty() {
        json!({})
    } else {
        json_body(request)?
    };
    let parsed = parse_command(action, &courier_id, body).map_err(Problem::invalid)?;
    if parsed
        .named
        .as_ref()
        .is_some_and(|named| *named != courier_id)
    {
        return Err(Problem::forbidden(
            "courier-mismatch",
            "`courier_id` names another courier; leave it out: the caller is the courier",
        ));
    }
    let command = parsed.command;
    let stream = StreamId::new(Delivery::KIND, &delivery_id);
    let actor = caller.actor_as(Group::Couriers);
    let context = EventContext {
        correlation_id: correlation_id.clone(),
        causation_id: correlation_id.as_str().to_owned(),
        actor: actor.clone(),
        occurred_at: app.clock.now(),
    };
    let seen = SeenStore::new(app.store.as_ref());
    let result = repository::execute::<Delivery>(
        &seen,
        &stream,
        &command,
        &context,
        None,
        app.settings.max_attempts,
    )
    .await;
    // What the last attempt decided on.
    let mut history = seen.last_loaded();
    let known = |history: &[StoredEvent]| {
        DeliveryState::fold(history)
            .map_err(|e| Problem::from_store(&e, "delivery"))?
            .ok_or_else(Problem::internal)
    };
    match result {
        Ok(stored) if !stored.is_empty() => {
            history.extend(stored);
            let state = known(&history)?;
            info!(
                delivery_id = %delivery_id,
                courier_id = %courier_id,
                action = action.segment(),
                status = state.status.as_str(),
                version = state.version,
                "courier action stored"
            );
            Ok(accepted(&state, correlation_id))
        }
        Ok(_) => {
            let state = known(&history)?;
            if action == CourierAction::Dispatch
                && state.courier_id.as_ref().is_some_and(|c| *c != courier_id)
            {
                return Err(Problem::conflict(
                    "already-dispatched",
                    format!(
                        "the delivery is {} by another courier",
                        state.status.as_str()
                    ),
                ));
            }
            info!(
                delivery_id = %delivery_id,
                courier_id = %courier_id,
                action = action.segment(),
                status = state.status.as_str(),
                "repeat decided nothing; nothing stored"
            );
            Ok(accepted(&state, correlation_id))
        }
        // A retried delay report: the delivery already runs on exactly this delay.
        Err(CommandError::Domain(DomainError::Invalid(invalid)))
            if invalid.field == "new_eta" && repeats_latest_delay(&history, &command, &actor) =>
        {
            let state = known(&history)?;
            info!(
                delivery_id = %delivery_id,
                courier_id = %courier_id,
                "delay report repeated; nothing stored"
            );
            Ok(accepted(&state, correlation_id))
        }
        Err(CommandError::Domain(DomainError::NotFound { .. })) => Err(Problem::not_found(
            format!("delivery {delivery_id} not found"),
        )),
        Err(CommandError::Domain(error)) => Err(Problem::from_domain(error)),
        Err(CommandError::Store(error)) => Err(Problem::from_store(&error, "delivery")),
    }
}

/// Whether `command` is a delay report the same courier already made and that is still current.
fn repeats_latest_delay(history: &[StoredEvent], command: &DeliveryCommand, actor: &Actor) -> bool {
    let DeliveryCommand::ReportDelay {
        new_eta, reason, ..
    } = command
    else {
        return false;
    };
    let Ok(Some(state)) = DeliveryState::fold(history) else {
        return false;
    };
    state.eta == Some(*new_eta)
        && state.latest_delay.is_some_and(|delay| {
            delay.new_eta == *new_eta && delay.reason == *reason && delay.actor == *actor
        })
}

/// 200 with `{delivery_id, status, version}`.
fn accepted(
    state: &DeliveryState,
    correlation_id: &CorrelationId,
) -> lambda_http::Response<lambda_http::Body> {
    let body = json!({
        "delivery_id": state.delivery_id.as_str(),
        "status": state.status.as_str(),
        "version": state.version,
    });
    json_response(StatusCode::OK, &body, correlation_id)
}

/// The event store as [`repository::execute`] sees it: remembers the stream it loaded last, so
/// the answer is built from exactly the state the command was decided on, without another read.
struct SeenStore<'a> {
    inner: &'a dyn EventStore,
    loaded: Mutex<Vec<StoredEvent>>,
}

impl<'a> SeenStore<'a> {
    fn new(inner: &'a dyn EventStore) -> Self {
        Self {
            inner,
            loaded: Mutex::new(Vec::new()),
        }
    }

    fn last_loaded(&self) -> Vec<StoredEvent> {
        std::mem::take(&mut *self.loaded.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[async_trait]
impl EventStore for SeenStore<'_> {
    async fn append(&self, request: AppendRequest) -> Result<(), StoreError> {
        self.inner.append(request).await
    }

    async fn load(&self, stream_id: &StreamId) -> Result<Vec<StoredEvent>, StoreError> {
        let events = self.inner.load(stream_id).await?;
        *self.loaded.lock().unwrap_or_else(PoisonError::into_inner) = events.clone();
        Ok(events)
    }
}

#[cfg(test)]
mod tests;
