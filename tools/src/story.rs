//! `orderflow order ID`: an order's whole story from the store — its events, its delivery's, its
//! coupons', and the notifications the alert functions sent for each (their processed-event
//! markers in the idempotency table).

use std::fmt;

use anyhow::{Context, Result, bail};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use domain::envelope::StoredEvent;
use domain::ids::{CouponId, DeliveryId, OrderId, StreamId};
use domain::ports::EventStore;
use serde::Serialize;

/// The most coupons one delivery can have earned (one per delay); the story stops looking after
/// the first missing one anyway.
const MAX_COUPONS: u32 = 20;

/// One event of the story.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chapter {
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Its stream (`order#…`, `delivery#…`, `coupon#…`) and version there.
    pub stream_id: String,
    /// Its version in the stream.
    pub version: u64,
    /// Its type.
    pub event_type: String,
    /// Its id.
    pub event_id: String,
    /// Who caused it.
    pub actor: String,
    /// The notifications sent for it: each notifying function and whether it finished.
    pub notifications: Vec<Notified>,
}

/// A notification function's marker for one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notified {
    /// The function (`alert-on-order-placed`, …).
    pub function: String,
    /// `sent`, or `sending` while its claim is held.
    pub status: String,
}

/// An order's story.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Story {
    /// The order.
    pub order_id: String,
    /// The order's correlation id (its first request), to find it in every function's log.
    pub correlation_id: String,
    /// Every event of the order, its delivery and its coupons, in time order.
    pub chapters: Vec<Chapter>,
}

/// Reads the story of `order_id`: its streams from `store`, the notification markers from the
/// idempotency table `markers_table`.
pub async fn read(
    store: &dyn EventStore,
    dynamodb: &aws_sdk_dynamodb::Client,
    markers_table: &str,
    order_id: &str,
) -> Result<Story> {
    let order_id =
        OrderId::parse(order_id).with_context(|| format!("{order_id:?} is not an order id"))?;
    let order = store.load(&StreamId::order(&order_id)).await?;
    let Some(first) = order.first() else {
        bail!("there is no order {order_id} in the store");
    };
    let correlation_id = first.correlation_id.as_str().to_owned();
    let delivery_id = DeliveryId::for_order(&order_id);
    let mut events = order.clone();
    events.extend(store.load(&StreamId::delivery(&delivery_id)).await?);
    for delay in 1..=MAX_COUPONS {
        let coupon = store
            .load(&StreamId::new(
                "coupon",
                CouponId::for_delay(&delivery_id, delay),
            ))
            .await?;
        if coupon.is_empty() {
            break;
        }
        events.extend(coupon);
    }
    events.sort_by(|a, b| {
        (a.occurred_at, &a.stream_id, a.version).cmp(&(b.occurred_at, &b.stream_id, b.version))
    });
    let mut chapters = Vec::with_capacity(events.len());
    for event in events {
        let notifications = notified(dynamodb, markers_table, &event).await?;
        chapters.push(Chapter {
            occurred_at: event.occurred_at,
            stream_id: event.stream_id.to_string(),
            version: event.version,
            event_type: event.event_type.clone(),
            event_id: event.event_id.clone(),
            actor: event.actor.as_str().to_owned(),
            notifications,
        });
    }
    Ok(Story {
        order_id: order_id.to_string(),
        correlation_id,
        chapters,
    })
}

/// The notification functions' markers for `event`.
async fn notified(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    event: &StoredEvent,
) -> Result<Vec<Notified>> {
    let mut found = Vec::new();
    for handler in alert::NOTIFICATION_HANDLERS
        .iter()
        .filter(|h| h.event_type == event.event_type)
    {
        let key = alert::notify::marker_key(handler.name, &event.event_id);
        let item = dynamodb
            .get_item()
            .table_name(table)
            .key("pk", AttributeValue::S(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(aws_sdk_dynamodb::Error::from)
            .with_context(|| format!("reading the notification markers in {table}"))?
            .item;
        if let Some(item) = item {
            let in_progress = item
                .get("marker_status")
                .and_then(|s| s.as_s().ok())
                .is_some_and(|s| s == "INPROGRESS");
            found.push(Notified {
                function: handler.name.to_owned(),
                status: if in_progress { "sending" } else { "sent" }.to_owned(),
            });
        }
    }
    Ok(found)
}

impl fmt::Display for Story {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "order {}  (correlation {})",
            self.order_id, self.correlation_id
        )?;
        for chapter in &self.chapters {
            let kind = chapter.stream_id.split('#').next().unwrap_or("?");
            writeln!(
                f,
                "  {}  {:<8} v{:<3} {:<28} by {}",
                chapter.occurred_at.format("%Y-%m-%d %H:%M:%S%.3f"),
                kind,
                chapter.version,
                chapter.event_type,
                chapter.actor
            )?;
            for notified in &chapter.notifications {
                writeln!(
                    f,
                    "  {:<23}    notification {} by {}",
                    "", notified.status, notified.function
                )?;
            }
        }
        let sent: usize = self
            .chapters
            .iter()
            .map(|c| {
                c.notifications
                    .iter()
                    .filter(|n| n.status == "sent")
                    .count()
            })
            .sum();
        write!(
            f,
            "{} event(s), {sent} notification(s) sent",
            self.chapters.len()
        )
    }
}
