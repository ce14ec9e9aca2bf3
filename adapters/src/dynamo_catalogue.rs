//! [`DynamoCatalogue`]: the catalogue table (key `sku`), one item per SKU with native attributes
//! (`name` S, `unit_price` N in minor units, `currency` S, `active` BOOL). Orders read it with one
//! `BatchGetItem` (an order has at most 50 lines; DynamoDB answers up to 100 keys a call); an
//! operator writes it with `BatchWriteItem`, 25 items a call. Keys DynamoDB leaves unprocessed
//! (throttling) are retried a bounded number of times with backoff, then reported unavailable.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};
use tracing::instrument;

use domain::catalogue::CatalogueEntry;
use domain::ids::Sku;
use domain::ports::{Catalogue, StoreError};

type Item = HashMap<String, AttributeValue>;

/// Keys per `BatchGetItem` call (DynamoDB's limit).
const GET_BATCH: usize = 100;
/// Items per `BatchWriteItem` call (DynamoDB's limit).
const WRITE_BATCH: usize = 25;
/// Rounds for unprocessed keys or items before giving up.
const MAX_ROUNDS: u32 = 5;

fn unavailable<E: std::error::Error + 'static>(error: E) -> StoreError {
    StoreError::Unavailable(DisplayErrorContext(error).to_string())
}

/// The catalogue in DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoCatalogue {
    client: Client,
    table: String,
}

impl DynamoCatalogue {
    /// The catalogue in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn backoff(round: u32) -> Duration {
    Duration::from_millis(50 * 2u64.pow(round))
}

#[async_trait]
impl Catalogue for DynamoCatalogue {
    #[instrument(skip_all, fields(skus = skus.len()))]
    async fn entries(&self, skus: &[Sku]) -> Result<Vec<CatalogueEntry>, StoreError> {
        let mut unique: Vec<&Sku> = skus.iter().collect();
        unique.sort();
        unique.dedup();
        let mut entries = Vec::with_capacity(unique.len());
        for chunk in unique.chunks(GET_BATCH) {
            let keys: Vec<Item> = chunk
                .iter()
                .map(|sku| HashMap::from([("sku".to_owned(), AttributeValue::S(sku.to_string()))]))
                .collect();
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(false)
                    .build()
                    .map_err(unavailable)?,
            );
            let mut round = 0;
            while let Some(request) = pending.take() {
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(unavailable)?;
                for item in output
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    entries.push(serde_dynamo::from_item(item).map_err(|e| {
                        StoreError::Unavailable(format!("unreadable catalogue item: {e}"))
                    })?);
                }
                pending = output
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .filter(|k| !k.keys.is_empty());
                if pending.is_some() {
                    round += 1;
                    if round >= MAX_ROUNDS {
                        return Err(StoreError::Unavailable(
                            "catalogue reads throttled: keys left unprocessed".into(),
                        ));
                    }
                    tokio::time::sleep(backoff(round)).await;
                }
            }
        }
        Ok(entries)
    }

    #[instrument(skip_all, fields(entries = entries.len()))]
    async fn put_entries(&self, entries: &[CatalogueEntry]) -> Result<(), StoreError> {
        for chunk in entries.chunks(WRITE_BATCH) {
            let mut requests = chunk
                .iter()
                .map(|entry| {
                    let item: Item = serde_dynamo::to_item(entry).map_err(|e| {
                        StoreError::InvalidAppend(format!("catalogue entry {}: {e}", entry.sku))
                    })?;
                    let put = PutRequest::builder()
                        .set_item(Some(item))
                        .build()
                        .map_err(unavailable)?;
                    Ok(WriteRequest::builder().put_request(put).build())
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let mut round = 0;
            while !requests.is_empty() {
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(unavailable)?;
                requests = output
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
                if !requests.is_empty() {
                    round += 1;
                    if round >= MAX_ROUNDS {
                        return Err(StoreError::Unavailable(
                            "catalogue writes throttled: items left unprocessed".into(),
                        ));
                    }
                    tokio::time::sleep(backoff(round)).await;
                }
            }
        }
        Ok(())
    }
}
