//! Faults the bridge can play on the event sources for a soak (`orderflow-bridge run
//! --duplicate-percent P --crash-percent P --fault-seed S`): delivering a batch twice, as Lambda's
//! at-least-once mappings may, and a function that dies after its side effects and before its answer
//! reaches the event source. Off by default; only the SQS and stream mappings go through them, never
//! the HTTP API or the schedules.
//!
//! A "crash" drops the answer of an invoke that has done its work and reports the invoke as failed
//! (`Runtime.ExitError`, as Lambda does when a process exits mid-invoke), so the batch is redelivered:
//! its SQS messages come back after the visibility timeout, the stream batch is retried. The
//! process itself is not killed here; a process that does exit is started again by the local
//! Lambda ([`super::host`]), which answers its invocation `Runtime.ExitError`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Value, json};
use tracing::warn;

/// What to play, and how often.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultSettings {
    /// The share of batches (percent) delivered twice.
    pub duplicate_percent: u8,
    /// The share of batches (percent) whose function "crashes" after its side effects.
    pub crash_percent: u8,
    /// The seed of the decisions.
    pub seed: u64,
    /// Where to keep the counts (JSON, rewritten after each fault), for the soak's figures.
    pub stats_file: Option<PathBuf>,
}

impl FaultSettings {
    /// Whether anything is played at all.
    pub fn any(&self) -> bool {
        self.duplicate_percent > 0 || self.crash_percent > 0
    }
}

/// The counts, as the stats file holds them.
#[derive(Debug, Default)]
struct Counts {
    batches: AtomicU64,
    duplicated: AtomicU64,
    crashed: AtomicU64,
}

/// The faults at work: seeded decisions, counted.
#[derive(Debug, Clone)]
pub struct BatchFaults {
    settings: FaultSettings,
    rng: Arc<Mutex<fastrand::Rng>>,
    counts: Arc<Counts>,
}

/// What to do to one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Deliver it twice.
    pub duplicate: bool,
    /// Drop the (last) answer and report a crash.
    pub crash: bool,
}

impl BatchFaults {
    /// Faults as `settings` say.
    pub fn new(settings: FaultSettings) -> Self {
        let rng = fastrand::Rng::with_seed(settings.seed);
        Self {
            settings,
            rng: Arc::new(Mutex::new(rng)),
            counts: Arc::new(Counts::default()),
        }
    }

    /// No faults.
    pub fn none() -> Self {
        Self::new(FaultSettings::default())
    }

    /// Whether anything is played at all.
    pub fn any(&self) -> bool {
        self.settings.any()
    }

    /// The next batch's fate (the same sequence for the same seed).
    pub fn decide(&self) -> Decision {
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        let duplicate = rng.u8(0..100) < self.settings.duplicate_percent;
        let crash = rng.u8(0..100) < self.settings.crash_percent;
        Decision { duplicate, crash }
    }

    /// Counts a batch and what was played on it (and rewrites the stats file if anything was).
    pub fn record(&self, decision: Decision, crashed: bool) {
        self.counts.batches.fetch_add(1, Ordering::Relaxed);
        if decision.duplicate {
            self.counts.duplicated.fetch_add(1, Ordering::Relaxed);
        }
        if crashed {
            self.counts.crashed.fetch_add(1, Ordering::Relaxed);
        }
        if decision.duplicate || crashed {
            self.write_stats();
        }
    }

    /// The counts, as JSON.
    pub fn stats(&self) -> Value {
        json!({
            "batches": self.counts.batches.load(Ordering::Relaxed),
            "duplicated": self.counts.duplicated.load(Ordering::Relaxed),
            "crashed": self.counts.crashed.load(Ordering::Relaxed),
        })
    }

    fn write_stats(&self) {
        let Some(path) = &self.settings.stats_file else {
            return;
        };
        if let Err(error) = super::run::write_atomically(path, &self.stats().to_string()) {
            warn!(path = %path.display(), %error, "could not write the fault counts");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults(duplicate_percent: u8, crash_percent: u8, seed: u64) -> BatchFaults {
        BatchFaults::new(FaultSettings {
            duplicate_percent,
            crash_percent,
            seed,
            stats_file: None,
        })
    }

    #[test]
    fn the_same_seed_gives_the_same_decisions_and_the_shares_hold() {
        let one = faults(30, 5, 7);
        let b: Vec<_> = (0..1_000).map(|_| one.decide()).collect();
        let again = faults(30, 5, 7);
        let c: Vec<_> = (0..1_000).map(|_| again.decide()).collect();
        assert_eq!(b, c);
        let duplicated = b.iter().filter(|d| d.duplicate).count();
        let crashed = b.iter().filter(|d| d.crash).count();
        assert!((240..=360).contains(&duplicated), "{duplicated}");
        assert!((20..=80).contains(&crashed), "{crashed}");
    }

    #[test]
    fn zero_percent_never_plays_and_a_hundred_always_does() {
        let off = faults(0, 0, 1);
        assert!((0..1_000).all(|_| off.decide()
            == Decision {
                duplicate: false,
                crash: false
            }));
        let on = faults(100, 100, 1);
        assert!((0..1_000).all(|_| on.decide()
            == Decision {
                duplicate: true,
                crash: true
            }));
    }
}
