//! The DynamoDB adapters: [`DynamoEventStore`] (events table, docs/architecture.md, "Storage"),
//! [`DynamoIdempotencyStore`] and the table definitions the tests and tools create (the order
//! views' adapter lives in [`super::dynamo_views`]).
//!
//! Events table item = the [`StoredEvent`] envelope with `data` as a native map; key
//! `stream_id` (S) + `version` (N). An append is one `TransactWriteItems`: one `Put` per event with
//! `attribute_not_exists(stream_id)`, plus the idempotency record with `attribute_not_exists(pk)`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::instrument;

use domain::envelope::StoredEvent;
use domain::events::DecodeError;
use domain::ids::StreamId;
use domain::ports::{
    AppendRequest, Claim, EffectMarkers, EventStore, IdempotencyRecord, IdempotencyStore,
    StoreError,
};
use domain::storage_rules::validate_append;
use domain::upcasting::upcast;

type Item = HashMap<String, AttributeValue>;

fn unavailable<E: std::error::Error + 'static>(error: E) -> StoreError {
    StoreError::Unavailable(DisplayErrorContext(error).to_string())
}

/// The idempotency table's item: the record under the table's key name `pk`.
#[derive(Serialize, Deserialize)]
struct IdempotencyItem {
    pk: String,
    request_hash: String,
    response: Value,
    expires_at: i64,
}

impl From<IdempotencyRecord> for IdempotencyItem {
    fn from(r: IdempotencyRecord) -> Self {
        Self {
            pk: r.key,
            request_hash: r.request_hash,
            response: r.response,
            expires_at: r.expires_at,
        }
    }
}

impl From<IdempotencyItem> for IdempotencyRecord {
    fn from(i: IdempotencyItem) -> Self {
        Self {
            key: i.pk,
            request_hash: i.request_hash,
            response: i.response,
            expires_at: i.expires_at,
        }
    }
}

fn idempotency_put(table: &str, record: IdempotencyRecord) -> Result<Put, StoreError> {
    let item: Item = serde_dynamo::to_item(IdempotencyItem::from(record))
        .map_err(|e| StoreError::InvalidAppend(format!("idempotency record: {e}")))?;
    Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .map_err(unavailable)
}

/// The event store on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoEventStore {
    client: Client,
    events_table: String,
    idempotency_table: String,
    page_size: Option<i32>,
}

impl DynamoEventStore {
    /// A store on `events_table`, writing request idempotency records to `idempotency_table`.
    pub fn new(
        client: Client,
        events_table: impl Into<String>,
        idempotency_table: impl Into<String>,
    ) -> Self {
        Self {
            client,
            events_table: events_table.into(),
            idempotency_table: idempotency_table.into(),
            page_size: None,
        }
    }

    /// A store for a function that only loads streams (and appends without idempotency records):
    /// it is given no idempotency table, and an append that carries a record is refused.
    pub fn reader(client: Client, events_table: impl Into<String>) -> Self {
        Self::new(client, events_table, String::new())
    }

    /// Caps the items per `Query` page (DynamoDB caps a page at 1 MB anyway); loads still read
    /// every page.
    #[must_use]
    pub fn with_page_size(mut self, items: i32) -> Self {
        self.page_size = Some(items);
        self
    }

    fn map_append_error(
        &self,
        error: SdkError<TransactWriteItemsError>,
        request: &AppendRequest,
    ) -> StoreError {
        let service = match error {
            SdkError::ServiceError(service) => service.into_err(),
            other => return unavailable(other),
        };
        let TransactWriteItemsError::TransactionCanceledException(cancelled) = service else {
            return unavailable(service);
        };
        let codes: Vec<&str> = cancelled
            .cancellation_reasons()
            .iter()
            .map(|reason| reason.code().unwrap_or("None"))
            .collect();
        let events = request.events.len();
        let idempotency_failed = request.idempotency.is_some()
            && codes
                .get(events)
                .is_some_and(|code| *code == "ConditionalCheckFailed");
        if idempotency_failed {
            let key = request
                .idempotency
                .as_ref()
                .map(|r| r.key.clone())
                .unwrap_or_default();
            return StoreError::DuplicateRequest { key };
        }
        let lost_race = codes
            .iter()
            .any(|code| matches!(*code, "ConditionalCheckFailed" | "TransactionConflict"));
        if lost_race {
            return StoreError::Conflict {
                stream_id: request.stream_id.clone(),
                expected_version: request.expected_version,
            };
        }
        StoreError::Unavailable(format!("transaction cancelled: {}", codes.join(", ")))
    }
}

#[async_trait]
impl EventStore for DynamoEventStore {
    #[instrument(skip_all, fields(stream_id = %request.stream_id, expected_version = request.expected_version, events = request.events.len()))]
    async fn append(&self, request: AppendRequest) -> Result<(), StoreError> {
        validate_append(&request)?;
        let mut actions = Vec::with_capacity(request.events.len() + 1);
        for event in &request.events {
            let item: Item = serde_dynamo::to_item(event)
                .map_err(|e| StoreError::InvalidAppend(format!("event {}: {e}", event.event_id)))?;
            let put = Put::builder()
                .table_name(&self.events_table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(stream_id)")
                .build()
                .map_err(unavailable)?;
            actions.push(TransactWriteItem::builder().put(put).build());
        }
        if let Some(record) = request.idempotency.clone() {
            if self.idempotency_table.is_empty() {
                return Err(StoreError::InvalidAppend(
                    "this store has no idempotency table for the request's record".into(),
                ));
            }
            let put = idempotency_put(&self.idempotency_table, record)?;
            actions.push(TransactWriteItem::builder().put(put).build());
        }
        self.client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await
            .map_err(|error| self.map_append_error(error, &request))?;
        Ok(())
    }

    #[instrument(skip(self), fields(stream_id = %stream_id))]
    async fn load(&self, stream_id: &StreamId) -> Result<Vec<StoredEvent>, StoreError> {
        self.load_from(stream_id, 0, u32::MAX).await
    }

    /// One `Query` on the key (`stream_id` and `version > after_version`) with `Limit`, so DynamoDB
    /// reads no more than the page (more queries only when a 1 MB response page cuts it short).
    #[instrument(skip(self), fields(stream_id = %stream_id))]
    async fn load_from(
        &self,
        stream_id: &StreamId,
        after_version: u64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let limit = limit as usize;
        let mut events = Vec::new();
        let mut start_key: Option<Item> = None;
        while events.len() < limit {
            let wanted = i32::try_from(limit - events.len()).unwrap_or(i32::MAX);
            let page = self
                .client
                .query()
                .table_name(&self.events_table)
                .key_condition_expression("stream_id = :stream AND #version > :after")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":stream", AttributeValue::S(stream_id.to_string()))
                .expression_attribute_values(":after", AttributeValue::N(after_version.to_string()))
                .consistent_read(true)
                .limit(self.page_size.map_or(wanted, |size| size.min(wanted)))
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(unavailable)?;
            for item in page.items() {
                events.push(decode_item(stream_id, item.clone())?);
            }
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start_key = Some(key.clone()),
                _ => break,
            }
        }
        events.truncate(limit);
        Ok(events)
    }
}

/// Where a scan of the whole events table goes on (opaque; from [`DynamoEventStore::scan_page`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ScanCursor(Item);

/// One page of a scan of the whole events table (for tools: rebuild, republish).
#[derive(Debug, Clone, PartialEq)]
pub struct ScanPage {
    /// The page's events, upcast. Within one stream they come in version order; streams interleave.
    pub events: Vec<StoredEvent>,
    /// Where the next page starts, if there is one.
    pub next: Option<ScanCursor>,
}

impl DynamoEventStore {
    /// Reads one page (up to 1 MB) of the whole events table, from `cursor` (`None`: the start).
    /// A stored event that cannot be read fails the page with [`StoreError::Corrupt`].
    #[instrument(skip_all)]
    pub async fn scan_page(&self, cursor: Option<ScanCursor>) -> Result<ScanPage, StoreError> {
        let page = self
            .client
            .scan()
            .table_name(&self.events_table)
            .consistent_read(true)
            .set_limit(self.page_size)
            .set_exclusive_start_key(cursor.map(|c| c.0))
            .send()
            .await
            .map_err(unavailable)?;
        let mut events = Vec::with_capacity(page.items().len());
        for item in page.items() {
            let stream_id = item
                .get("stream_id")
                .and_then(|v| v.as_s().ok())
                .and_then(|s| s.split_once('#'))
                .map_or_else(
                    || StreamId::new("unknown", "?"),
                    |(kind, id)| StreamId::new(kind, id),
                );
            events.push(decode_item(&stream_id, item.clone())?);
        }
        let next = page
            .last_evaluated_key()
            .filter(|key| !key.is_empty())
            .map(|key| ScanCursor(key.clone()));
        Ok(ScanPage { events, next })
    }
}

fn decode_item(stream_id: &StreamId, item: Item) -> Result<StoredEvent, StoreError> {
    let version = item
        .get("version")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let corrupt = |source| StoreError::Corrupt {
        stream_id: stream_id.clone(),
        version,
        source,
    };
    let event: StoredEvent = serde_dynamo::from_item(item).map_err(|e| {
        corrupt(DecodeError::Malformed {
            event_type: "(envelope)".into(),
            reason: e.to_string(),
        })
    })?;
    upcast(event).map_err(corrupt)
}

/// Idempotency records on DynamoDB (the table the event store writes them to).
#[derive(Debug, Clone)]
pub struct DynamoIdempotencyStore {
    client: Client,
    table: String,
}

impl DynamoIdempotencyStore {
    /// A store on `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl IdempotencyStore for DynamoIdempotencyStore {
    #[instrument(skip_all)]
    async fn get(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        output
            .item
            .map(|item| {
                serde_dynamo::from_item::<_, IdempotencyItem>(item)
                    .map(IdempotencyRecord::from)
                    .map_err(|e| {
                        StoreError::Unavailable(format!("unreadable idempotency record: {e}"))
                    })
            })
            .transpose()
    }

    #[instrument(skip_all)]
    async fn put_if_absent(&self, record: IdempotencyRecord) -> Result<bool, StoreError> {
        let put = idempotency_put(&self.table, record)?;
        let result = self
            .client
            .put_item()
            .table_name(put.table_name())
            .set_item(Some(put.item().clone()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(false)
            }
            Err(e) => Err(unavailable(e)),
        }
    }
}

/// A claimed effect marker's status attribute (`status` is a DynamoDB reserved word).
const MARKER_STATUS: &str = "marker_status";
const IN_PROGRESS: &str = "INPROGRESS";
const COMPLETED: &str = "COMPLETED";

/// Effect markers on the idempotency table: `pk`, `marker_status` (`INPROGRESS` or `COMPLETED`),
/// `holder`, `lease_until_ms`, `expires_at` (the table's TTL) and, once completed, `response`.
/// A claim is one conditional `PutItem`: no item yet, or an `INPROGRESS` one whose lease ran out.
/// Items without `marker_status` (written by `put_if_absent`) count as completed.
#[async_trait]
impl EffectMarkers for DynamoIdempotencyStore {
    #[instrument(skip_all)]
    async fn claim(
        &self,
        key: &str,
        holder: &str,
        now_ms: i64,
        lease_until_ms: i64,
        expires_at: i64,
    ) -> Result<Claim, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(key.to_owned()))
            .item(MARKER_STATUS, AttributeValue::S(IN_PROGRESS.to_owned()))
            .item("holder", AttributeValue::S(holder.to_owned()))
            .item(
                "lease_until_ms",
                AttributeValue::N(lease_until_ms.to_string()),
            )
            .item("expires_at", AttributeValue::N(expires_at.to_string()))
            // The holder's own claim is its again: the SDK retries a claim whose answer was lost
            // (the first attempt was applied), and that retry must not find "another delivery".
            .condition_expression(
                "attribute_not_exists(pk) OR (marker_status = :in_progress \
                 AND (lease_until_ms < :now OR holder = :holder))",
            )
            .expression_attribute_values(":in_progress", AttributeValue::S(IN_PROGRESS.to_owned()))
            .expression_attribute_values(":now", AttributeValue::N(now_ms.to_string()))
            .expression_attribute_values(":holder", AttributeValue::S(holder.to_owned()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Claimed),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                let item = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("pk", AttributeValue::S(key.to_owned()))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(unavailable)?
                    .item;
                let in_progress = item
                    .as_ref()
                    .and_then(|item| item.get(MARKER_STATUS))
                    .is_some_and(|status| status.as_s().is_ok_and(|s| s == IN_PROGRESS));
                Ok(match (item, in_progress) {
                    (Some(_), true) => Claim::InProgress,
                    (Some(_), false) => Claim::Completed,
                    // Released or expired in between: the next delivery claims it.
                    (None, _) => Claim::InProgress,
                })
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    #[instrument(skip_all)]
    async fn complete(
        &self,
        key: &str,
        holder: &str,
        response: Value,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let response = serde_dynamo::to_attribute_value(&response)
            .map_err(|e| StoreError::InvalidAppend(format!("marker response: {e}")))?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_owned()))
            .update_expression(
                "SET marker_status = :completed, #response = :response, expires_at = :expires \
                 REMOVE lease_until_ms",
            )
            // Completed by its holder, or completed already by it (a retried completion whose
            // first answer was lost).
            .condition_expression("holder = :holder")
            .expression_attribute_names("#response", "response")
            .expression_attribute_values(":completed", AttributeValue::S(COMPLETED.to_owned()))
            .expression_attribute_values(":response", response)
            .expression_attribute_values(":expires", AttributeValue::N(expires_at.to_string()))
            .expression_attribute_values(":holder", AttributeValue::S(holder.to_owned()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(false)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    #[instrument(skip_all)]
    async fn release(&self, key: &str, holder: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_owned()))
            .condition_expression("holder = :holder AND marker_status = :in_progress")
            .expression_attribute_values(":holder", AttributeValue::S(holder.to_owned()))
            .expression_attribute_values(":in_progress", AttributeValue::S(IN_PROGRESS.to_owned()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(())
            }
            Err(e) => Err(unavailable(e)),
        }
    }
}
