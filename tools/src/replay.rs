//! Replaying the events table: rebuild the order read model, republish a time range to the bus.
//! Both page through the whole table (a scan) and report progress after every page.

use std::time::{Duration, Instant};

use adapters::dynamo::DynamoEventStore;
use anyhow::{Result, bail};
use chrono::{DateTime, Utc};
use domain::envelope::StoredEvent;
use domain::ports::EventPublisher;
use domain::projection::{Projected, project_order_view};
use domain::read_model::OrderViews;

/// How far a replay has got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    /// Events read from the table.
    pub scanned: u64,
    /// Events that changed something (applied to a view, or published).
    pub done: u64,
    /// Events passed over (a view held them already, or outside the time range).
    pub skipped: u64,
    /// Time since the start.
    #[serde(rename = "elapsed_seconds", serialize_with = "seconds")]
    pub elapsed: Duration,
}

fn seconds<S: serde::Serializer>(elapsed: &Duration, to: S) -> Result<S::Ok, S::Error> {
    to.serialize_f64(elapsed.as_secs_f64())
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let seconds = self.elapsed.as_secs_f64();
        let rate = if seconds > 0.0 {
            self.scanned as f64 / seconds
        } else {
            0.0
        };
        write!(
            f,
            "{} scanned, {} done, {} skipped in {:.1} s ({:.0} events/s)",
            self.scanned, self.done, self.skipped, seconds, rate
        )
    }
}

/// Projects every stored event into `views` (the live table, or a fresh one to switch to).
pub async fn rebuild_views(
    store: &DynamoEventStore,
    views: &dyn OrderViews,
    mut report: impl FnMut(&Progress),
) -> Result<Progress> {
    let started = Instant::now();
    let mut progress = Progress::default();
    let mut cursor = None;
    loop {
        let page = store.scan_page(cursor).await?;
        for event in &page.events {
            progress.scanned += 1;
            match project_order_view(store, views, event, 5).await? {
                Projected::Applied => progress.done += 1,
                Projected::Duplicate => progress.skipped += 1,
            }
        }
        progress.elapsed = started.elapsed();
        report(&progress);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(progress),
        }
    }
}

/// Publishes again every stored event that occurred in `[from, to)`, oldest first (per stream in
/// version order), in batches the publisher splits for the bus.
pub async fn republish(
    store: &DynamoEventStore,
    publisher: &dyn EventPublisher,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    mut report: impl FnMut(&Progress),
) -> Result<Progress> {
    if from >= to {
        bail!("the time range is empty: --from {from} is not before --to {to}");
    }
    let started = Instant::now();
    let mut progress = Progress::default();
    let mut selected: Vec<StoredEvent> = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.scan_page(cursor).await?;
        for event in page.events {
            progress.scanned += 1;
            if (from..to).contains(&event.occurred_at) {
                selected.push(event);
            } else {
                progress.skipped += 1;
            }
        }
        progress.elapsed = started.elapsed();
        report(&progress);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    selected.sort_by(|a, b| {
        (a.occurred_at, &a.stream_id, a.version).cmp(&(b.occurred_at, &b.stream_id, b.version))
    });
    for chunk in selected.chunks(100) {
        publisher.publish(chunk).await?;
        progress.done += chunk.len() as u64;
        progress.elapsed = started.elapsed();
        report(&progress);
    }
    Ok(progress)
}
