//! Redriving a stream reader's failures: each on-failure record names a range of the events
//! table's stream, each poison record one item of the table; their events go through the reader's
//! work again (published to the bus, or projected into the views), and the message is deleted
//! only after that succeeded.

use std::collections::HashSet;

use adapters::dynamo::DynamoEventStore;
use adapters::dynamo_views::DynamoOrderViews;
use adapters::eventbridge::EventBridgePublisher;
use anyhow::{Context, Result, bail};
use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};
use domain::envelope::StoredEvent;
use domain::ids::StreamId;
use domain::ports::{EventPublisher, EventStore};
use domain::projection::project_order_view;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::ops::{Moved, Queue, Queues};
use super::{QueueKind, Reader};
use crate::progress::Progress;

/// How long a record's message is held while its events are replayed.
const REPLAY_HOLD_SECONDS: i32 = 120;

/// What a stream reader's failures are replayed through.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The events table (records name its items).
    pub store: DynamoEventStore,
    /// The events table's stream (on-failure records name ranges of it).
    pub streams: aws_sdk_dynamodbstreams::Client,
    /// The bus (the event publisher's work).
    pub publisher: EventBridgePublisher,
    /// The order views (the projector's work).
    pub views: DynamoOrderViews,
}

/// A stored event's key: its stream and version.
type Key = (StreamId, u64);

impl Replay {
    /// Replays the events every message of `queue` names, deleting each message once its events
    /// went through; a message whose events fail stays (with the reason in `stopped`).
    pub async fn redrive(
        &self,
        queues: &Queues,
        queue: &Queue,
        progress: &Progress,
        stop: &CancellationToken,
    ) -> Result<Moved> {
        let reader = match &queue.kind {
            QueueKind::StreamFailures { reader } | QueueKind::Poison { reader } => *reader,
            _ => bail!("{} holds no stream records", queue.name),
        };
        let mut moved = 0;
        let mut failed: Vec<String> = Vec::new();
        let mut failures: HashSet<String> = HashSet::new();
        let mut empty_rounds = 0;
        let mut interrupted = false;
        while empty_rounds < 2 && !interrupted {
            let messages = queues
                .receive(&queue.url, 10, REPLAY_HOLD_SECONDS, 1)
                .await?;
            let fresh: Vec<_> = messages
                .into_iter()
                .filter(|m| !failures.contains(m.message_id().unwrap_or_default()))
                .collect();
            if fresh.is_empty() {
                empty_rounds += 1;
                continue;
            }
            empty_rounds = 0;
            for message in fresh {
                let receipt = message.receipt_handle().unwrap_or_default().to_owned();
                if stop.is_cancelled() {
                    interrupted = true;
                    queues
                        .release(&queue.url, std::iter::once(receipt.as_str()))
                        .await?;
                    continue;
                }
                let body: Value =
                    serde_json::from_str(message.body().unwrap_or_default()).unwrap_or(Value::Null);
                let outcome = async {
                    let keys = match &queue.kind {
                        QueueKind::Poison { .. } => vec![poison_key(&body)?],
                        _ => self.range_keys(&body).await?,
                    };
                    let events = self.load(&keys).await?;
                    self.replay(reader, &events).await?;
                    anyhow::Ok(events.len())
                }
                .await;
                match outcome {
                    Ok(events) => {
                        queues.delete(&queue.url, &receipt).await?;
                        moved += 1;
                        progress.update(format!(
                            "{moved} record(s) replayed through the {} ({events} event(s) in the last)",
                            reader.name()
                        ));
                    }
                    Err(error) => {
                        let id = message.message_id().unwrap_or_default().to_owned();
                        progress.update(format!("message {id} stays: {error:#}"));
                        failed.push(format!("{id}: {error:#}"));
                        failures.insert(id);
                        // Held until the end of the run, so the next rounds read the others.
                    }
                }
            }
        }
        let left = queues.depth(&queue.url).await?;
        let stopped = if interrupted {
            Some("interrupted".to_owned())
        } else if failed.is_empty() {
            None
        } else {
            Some(format!(
                "{} message(s) could not be replayed and stay (visible again in {REPLAY_HOLD_SECONDS} s): {}",
                failed.len(),
                failed.join("; ")
            ))
        };
        Ok(Moved {
            method: format!("replay through the {}", reader.name()),
            moved,
            left,
            stopped,
        })
    }

    /// The keys of the items an on-failure record's stream range holds.
    async fn range_keys(&self, record: &Value) -> Result<Vec<Key>> {
        let info = &record["DDBStreamBatchInfo"];
        let field = |name: &str| {
            info[name]
                .as_str()
                .with_context(|| format!("the on-failure record has no {name}"))
        };
        let (stream_arn, shard, start, end) = (
            field("streamArn")?,
            field("shardId")?,
            field("startSequenceNumber")?,
            field("endSequenceNumber")?,
        );
        let mut iterator = self
            .streams
            .get_shard_iterator()
            .stream_arn(stream_arn)
            .shard_id(shard)
            .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
            .sequence_number(start)
            .send()
            .await
            .map_err(aws_sdk_dynamodbstreams::Error::from)
            .with_context(|| {
                format!("the stream no longer holds records {start}..{end} of shard {shard} (24 h); `orderflow republish --from --to` covers their time")
            })?
            .shard_iterator;
        let mut keys = Vec::new();
        let mut empty_pages = 0;
        while let Some(current) = iterator.take() {
            let page = self
                .streams
                .get_records()
                .shard_iterator(current)
                .send()
                .await
                .map_err(aws_sdk_dynamodbstreams::Error::from)
                .context("reading the stream range")?;
            if page.records().is_empty() {
                empty_pages += 1;
                if empty_pages > 3 {
                    break;
                }
            }
            for record in page.records() {
                let Some(change) = record.dynamodb() else {
                    continue;
                };
                let sequence = change.sequence_number().unwrap_or_default();
                if sequence_after(sequence, end) {
                    return Ok(keys);
                }
                if let Some(key) = change.keys().and_then(item_key) {
                    keys.push(key);
                }
            }
            iterator = page.next_shard_iterator().map(str::to_owned);
        }
        Ok(keys)
    }

    async fn load(&self, keys: &[Key]) -> Result<Vec<StoredEvent>> {
        let mut events = Vec::with_capacity(keys.len());
        for (stream, version) in keys {
            let event = self
                .store
                .load_from(stream, version.saturating_sub(1), 1)
                .await
                .with_context(|| format!("loading {stream} v{version}"))?
                .into_iter()
                .next()
                .with_context(|| format!("the events table has no {stream} v{version}"))?;
            events.push(event);
        }
        Ok(events)
    }

    async fn replay(&self, reader: Reader, events: &[StoredEvent]) -> Result<()> {
        match reader {
            Reader::EventPublisher => self
                .publisher
                .publish(events)
                .await
                .context("publishing to the bus")?,
            Reader::Projector => {
                for event in events {
                    project_order_view(&self.store, &self.views, event, 5)
                        .await
                        .with_context(|| format!("projecting {}", event.event_id))?;
                }
            }
        }
        Ok(())
    }
}

/// The key of a poison record's item.
fn poison_key(record: &Value) -> Result<Key> {
    let stream = record["keys"]["stream_id"]["S"]
        .as_str()
        .context("the poison record has no keys.stream_id")?;
    let version = record["keys"]["version"]["N"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .context("the poison record has no keys.version")?;
    Ok((stream_id(stream)?, version))
}

/// The stream id `raw` (`<kind>#<id>`) names.
fn stream_id(raw: &str) -> Result<StreamId> {
    let (kind, id) = raw
        .split_once('#')
        .with_context(|| format!("{raw:?} is not a stream id"))?;
    Ok(StreamId::new(kind, id))
}

fn item_key(keys: &std::collections::HashMap<String, AttributeValue>) -> Option<Key> {
    let stream = keys.get("stream_id")?.as_s().ok()?;
    let version = keys.get("version")?.as_n().ok()?.parse().ok()?;
    Some((stream_id(stream).ok()?, version))
}

/// Whether stream sequence number `a` comes after `b` (decimal strings of any length).
fn sequence_after(a: &str, b: &str) -> bool {
    (a.len(), a) > (b.len(), b)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        assert!(sequence_after("1000", "999"));
        assert!(!sequence_after("999", "1000"));
        assert!(!sequence_after("1000", "1000"));
    }

    #[test]
    fn a_poison_record_names_its_item() {
        let record = json!({"keys": {"stream_id": {"S": "order#o-1"}, "version": {"N": "3"}}});
        let key = poison_key(&record).ok();
        assert_eq!(key, Some((StreamId::new("order", "o-1"), 3)));
        assert!(poison_key(&json!({"keys": {}})).is_err());
    }
}
