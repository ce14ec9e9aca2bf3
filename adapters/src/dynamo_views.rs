//! [`DynamoOrderViews`]: the order views on DynamoDB (docs/architecture.md, "Storage", read
//! models).
//!
//! One item per order, key `pk` = `order#<order_id>`, the [`OrderView`] stored as native
//! attributes (maps and lists, readable in the console), not as a blob. Placed orders also carry
//! `placed_key` = `<placed_at, RFC 3339 millis>#<order_id>`; with `customer_id` it forms the sparse
//! GSI [`BY_CUSTOMER_INDEX`], so only placed orders are listed, newest first.
//!
//! A save is one conditional `PutItem`: a new row only if none exists (`attribute_not_exists(pk)`),
//! a replacement only if the stored `versions` map is still the one that was read. A failed
//! condition is [`ViewError::Conflict`]: read again, apply again. An item beyond DynamoDB's
//! 400 KB is [`ViewError::TooLarge`], which is not retryable: the same view would fail again, so
//! the record goes to the dead-letter queue instead of blocking its shard. Views are bounded by
//! construction ([`domain::read_model`]); [`item_size`] measures what a save would write.
//!
//! GSI reads are eventually consistent on AWS: a list may miss a view saved a moment ago.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use tracing::instrument;

use domain::ids::{CustomerId, OrderId};
use domain::read_model::{
    DeliveryBoard, OrderPage, OrderView, OrderViews, OverdueDelivery, ViewError,
};
use domain::storage_rules::{cursor, page_size, placed_key};

/// The GSI listing a customer's placed orders: partition `customer_id`, sort `placed_key`.
pub const BY_CUSTOMER_INDEX: &str = "by-customer";

/// The GSI of the delivery board: partition `board` (always [`BOARD_ACTIVE`]), sort `board_eta`
/// (the ETA, RFC 3339 with milliseconds, so text order is time order). Sparse: only views whose
/// delivery is on its way carry the two attributes.
pub const DELIVERY_BOARD_INDEX: &str = "delivery-board";

/// The `board` value of a view whose delivery is on its way.
pub const BOARD_ACTIVE: &str = "active";

fn board_eta(eta: chrono::DateTime<chrono::Utc>) -> String {
    eta.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

type Item = HashMap<String, AttributeValue>;

/// The attributes that position an item in [`BY_CUSTOMER_INDEX`]: a page's last evaluated key.
const CURSOR_KEYS: [&str; 3] = ["pk", "customer_id", "placed_key"];

fn unavailable<E: std::error::Error + 'static>(error: E) -> ViewError {
    ViewError::Unavailable(DisplayErrorContext(error).to_string())
}

fn pk(order_id: &OrderId) -> String {
    format!("order#{order_id}")
}

/// The item of a view: its fields as native attributes (absent ones left out, so the sparse
/// index only sees placed orders), plus `pk` and, once placed, `placed_key`.
fn to_item(view: &OrderView) -> Result<Item, ViewError> {
    let mut item: Item = serde_dynamo::to_item(view).map_err(|e| {
        ViewError::Unavailable(format!("view of order {} not storable: {e}", view.order_id))
    })?;
    item.retain(|_, value| !matches!(value, AttributeValue::Null(_)));
    item.insert("pk".into(), AttributeValue::S(pk(&view.order_id)));
    if let Some(key) = placed_key(view) {
        item.insert("placed_key".into(), AttributeValue::S(key));
    }
    if let Some(delivery) = view.delivery.as_ref().filter(|_| view.delivery_active()) {
        item.insert("board".into(), AttributeValue::S(BOARD_ACTIVE.into()));
        item.insert(
            "board_eta".into(),
            AttributeValue::S(board_eta(delivery.eta)),
        );
    }
    Ok(item)
}

/// DynamoDB's limit on one item, in bytes.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// The size DynamoDB counts for the item a save of `view` writes, by its published rules
/// (attribute names and values in UTF-8 bytes; numbers by significant digits; 3 bytes per list or
/// map plus 1 per element), rounded up where the rules are approximate.
pub fn item_size(view: &OrderView) -> Result<usize, ViewError> {
    Ok(to_item(view)?
        .iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum())
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Ss(all) => all.iter().map(String::len).sum(),
        AttributeValue::Ns(all) => all.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(all) => all.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(name, v)| 1 + name.len() + value_size(v))
                .sum::<usize>()
        }
        // BOOL, NULL and anything newer: 1 byte.
        _ => 1,
    }
}

/// About 1 byte per 2 significant digits, plus 1 (at most 21 bytes).
fn number_size(n: &str) -> usize {
    let digits = n.bytes().filter(u8::is_ascii_digit).count();
    (digits.div_ceil(2) + 1).min(21)
}

/// Whether DynamoDB refused a write because the item is too large (a `ValidationException`
/// whose message says so; other validation failures are not about size).
fn is_item_too_large(code: Option<&str>, message: Option<&str>) -> bool {
    code == Some("ValidationException")
        && message.is_some_and(|m| {
            let m = m.to_ascii_lowercase();
            m.contains("item size") || m.contains("exceeded the maximum allowed size")
        })
}

fn from_item(item: Item) -> Result<OrderView, ViewError> {
    serde_dynamo::from_item(item)
        .map_err(|e| ViewError::Unavailable(format!("unreadable order view: {e}")))
}

/// The cursor of the position after `item`.
fn cursor_after(item: &Item) -> Option<String> {
    let position = CURSOR_KEYS
        .iter()
        .map(|name| {
            let value = item.get(*name)?.as_s().ok()?;
            Some(((*name).to_owned(), value.clone()))
        })
        .collect::<Option<BTreeMap<_, _>>>()?;
    Some(cursor::encode(&position))
}

/// The exclusive start key a cursor stands for; it must have been made for this customer.
fn start_key(cursor: &str, customer_id: &CustomerId) -> Result<Item, ViewError> {
    let position = cursor::decode(cursor)?;
    let valid = position.len() == CURSOR_KEYS.len()
        && CURSOR_KEYS.iter().all(|k| position.contains_key(*k))
        && position.get("customer_id").map(String::as_str) == Some(customer_id.as_str())
        && position
            .get("pk")
            .is_some_and(|pk| pk.starts_with("order#"));
    if !valid {
        return Err(ViewError::InvalidCursor);
    }
    Ok(position
        .into_iter()
        .map(|(name, value)| (name, AttributeValue::S(value)))
        .collect())
}

/// The order views on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoOrderViews {
    client: Client,
    table: String,
}

impl DynamoOrderViews {
    /// Views in `table` (template.yaml's `ViewsTable`).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl OrderViews for DynamoOrderViews {
    #[instrument(skip_all, fields(order_id = %order_id))]
    async fn get(&self, order_id: &OrderId) -> Result<Option<OrderView>, ViewError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk(order_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        output.item.map(from_item).transpose()
    }

    #[instrument(skip_all, fields(customer_id = %customer_id, limit))]
    async fn list_for_customer(
        &self,
        customer_id: &CustomerId,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<OrderPage, ViewError> {
        let limit = page_size(limit) as usize;
        let mut start = cursor.map(|c| start_key(c, customer_id)).transpose()?;
        // One item more than the page holds tells whether there is a next page at all.
        let mut items: Vec<Item> = Vec::with_capacity(limit + 1);
        loop {
            let wanted = i32::try_from(limit + 1 - items.len()).unwrap_or(i32::MAX);
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_CUSTOMER_INDEX)
                .key_condition_expression("customer_id = :customer")
                .expression_attribute_values(
                    ":customer",
                    AttributeValue::S(customer_id.to_string()),
                )
                .scan_index_forward(false)
                .limit(wanted)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|error| match error {
                    // A cursor that decodes but that DynamoDB rejects as a start key.
                    SdkError::ServiceError(ref service)
                        if cursor.is_some()
                            && service.err().code() == Some("ValidationException") =>
                    {
                        ViewError::InvalidCursor
                    }
                    other => unavailable(other),
                })?;
            items.extend(page.items().iter().cloned());
            if items.len() > limit {
                break;
            }
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        let more = items.len() > limit;
        items.truncate(limit);
        let next_cursor = if more {
            let last = items.last().and_then(cursor_after).ok_or_else(|| {
                ViewError::Unavailable("a listed view lacks its index keys".into())
            })?;
            Some(last)
        } else {
            None
        };
        let orders = items
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(OrderPage {
            orders,
            next_cursor,
        })
    }

    #[instrument(skip_all, fields(order_id = %view.order_id, new = previous.is_none()))]
    async fn save(&self, view: &OrderView, previous: Option<&OrderView>) -> Result<(), ViewError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(view)?));
        let put = match previous {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(previous) => {
                let versions = serde_dynamo::to_attribute_value(&previous.versions)
                    .map_err(|e| ViewError::Unavailable(format!("versions not storable: {e}")))?;
                put.condition_expression("#versions = :previous_versions")
                    .expression_attribute_names("#versions", "versions")
                    .expression_attribute_values(":previous_versions", versions)
            }
        };
        match put.send().await {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Err(ViewError::Conflict(view.order_id.clone()))
            }
            Err(SdkError::ServiceError(e))
                if is_item_too_large(e.err().code(), e.err().message()) =>
            {
                Err(ViewError::TooLarge(view.order_id.clone()))
            }
            Err(e) => Err(unavailable(e)),
        }
    }
}

#[async_trait]
impl DeliveryBoard for DynamoOrderViews {
    #[instrument(skip_all, fields(limit))]
    async fn overdue(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<Vec<OverdueDelivery>, ViewError> {
        let mut overdue = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(DELIVERY_BOARD_INDEX)
                .key_condition_expression("board = :active AND board_eta < :now")
                .expression_attribute_values(":active", AttributeValue::S(BOARD_ACTIVE.into()))
                .expression_attribute_values(":now", AttributeValue::S(board_eta(now)))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for item in page.items() {
                let view = from_item(item.clone())?;
                if let Some(delivery) = view.delivery.filter(|d| d.eta < now) {
                    overdue.push(OverdueDelivery {
                        delivery_id: delivery.delivery_id,
                        order_id: view.order_id,
                        eta: delivery.eta,
                    });
                }
                if overdue.len() >= limit as usize {
                    return Ok(overdue);
                }
            }
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(overdue),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn placed_view() -> OrderView {
        let mut view = OrderView::new(OrderId::parse("o1").unwrap());
        view.customer_id = Some(CustomerId::parse("c1").unwrap());
        view.placed_at = Some(Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap());
        view.versions.insert("order#o1".into(), 1);
        view
    }

    #[test]
    fn a_placed_view_is_stored_with_its_index_keys_and_without_nulls() {
        let item = to_item(&placed_view()).unwrap();
        assert_eq!(item["pk"], AttributeValue::S("order#o1".into()));
        assert_eq!(item["customer_id"], AttributeValue::S("c1".into()));
        assert_eq!(
            item["placed_key"],
            AttributeValue::S("2026-11-22T10:00:00.000Z#o1".into())
        );
        assert!(item["versions"].as_m().is_ok(), "versions is a native map");
        assert!(!item.values().any(|v| matches!(v, AttributeValue::Null(_))));
        assert!(!item.contains_key("cancellation_reason"));
        assert_eq!(from_item(item).unwrap(), placed_view());
    }

    #[test]
    fn a_view_before_its_order_is_placed_stays_out_of_the_index() {
        let mut view = OrderView::new(OrderId::parse("o1").unwrap());
        view.versions.insert("delivery#d-o1".into(), 1);
        let item = to_item(&view).unwrap();
        assert!(!item.contains_key("customer_id"));
        assert!(!item.contains_key("placed_key"));
        assert_eq!(from_item(item).unwrap(), view);
    }

    #[test]
    fn the_item_size_counts_names_values_and_nesting_as_dynamodb_does() {
        let view = placed_view();
        let item = to_item(&view).unwrap();
        // pk "order#o1" (2 + 8), customer_id "c1" (11 + 2), placed_key (10 + 27),
        // order_id "o1" (8 + 2), items [] (5 + 3), coupons [] (7 + 3), timeline [] (8 + 3),
        // timeline_omitted 0 (16 + 2), versions {"order#o1": 1} (8 + 3 + 1 + 8 + 2),
        // placed_at (9 + 20).
        assert_eq!(item.len(), 10, "{item:?}");
        assert_eq!(
            item_size(&view).unwrap(),
            10 + 13 + 37 + 10 + 8 + 10 + 11 + 18 + 22 + 29
        );
        assert_eq!(number_size("12345"), 4);
        assert_eq!(number_size("-1.5"), 2);
    }

    #[test]
    fn only_a_validation_error_about_the_size_is_too_large() {
        let too_large = [
            "Item size has exceeded the maximum allowed size",
            "Item size to update has exceeded the maximum allowed size",
        ];
        for message in too_large {
            assert!(is_item_too_large(
                Some("ValidationException"),
                Some(message)
            ));
        }
        assert!(!is_item_too_large(
            Some("ValidationException"),
            Some("One or more parameter values were invalid: Missing the key pk in the item")
        ));
        assert!(!is_item_too_large(
            Some("ThrottlingException"),
            Some(too_large[0])
        ));
        assert!(!is_item_too_large(None, None));
    }

    #[test]
    fn a_cursor_is_the_position_after_an_item_for_its_customer_only() {
        let item = to_item(&placed_view()).unwrap();
        let cursor = cursor_after(&item).unwrap();
        let c1 = CustomerId::parse("c1").unwrap();
        let key = start_key(&cursor, &c1).unwrap();
        assert_eq!(key.len(), 3);
        assert_eq!(key["placed_key"], item["placed_key"]);
        assert_eq!(
            start_key(&cursor, &CustomerId::parse("c2").unwrap()),
            Err(ViewError::InvalidCursor)
        );
        assert_eq!(start_key("not-hex", &c1), Err(ViewError::InvalidCursor));
        let partial = cursor::encode(&BTreeMap::from([("customer_id".into(), "c1".into())]));
        assert_eq!(start_key(&partial, &c1), Err(ViewError::InvalidCursor));
    }
}
