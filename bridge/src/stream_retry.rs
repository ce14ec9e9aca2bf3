//! The DynamoDB stream mapping's failure rules as a pure state machine, one per shard, tested
//! without I/O. The poller keeps a shard's fetched records in order and asks the plan how many of
//! them to send next; after each invoke it reports the outcome and gets back a [`Step`]: how many
//! leading records are done, how many after them are given up (to the on-failure destination), and
//! why.
//!
//! The rules (Lambda's, as documented for stream event source mappings):
//! - a partial batch response checkpoints before the first failed record and retries from it;
//! - a function error (or timeout) with `BisectBatchOnFunctionError` splits the batch in two
//!   halves, each retried on its own; splitting does not count as a retry;
//! - a batch that failed more than `MaximumRetryAttempts` times is given up
//!   (`RetryAttemptsExhausted`);
//! - records older than `MaximumRecordAgeInSeconds` are given up before they are sent
//!   (`RecordAgeExceeded`);
//! - `-1` (absent here) means no limit for either: the template's stream mappings retry without a
//!   count limit, within a record-age budget (README, "Failure handling").

use std::collections::VecDeque;
use std::time::Duration;

/// A mapping's failure settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// `FunctionResponseTypes: [ReportBatchItemFailures]`: the response names failed records.
    pub report_batch_item_failures: bool,
    /// `BisectBatchOnFunctionError`.
    pub bisect_on_function_error: bool,
    /// `MaximumRetryAttempts` (`None`: retry until the record expires).
    pub max_retry_attempts: Option<u32>,
    /// `MaximumRecordAgeInSeconds` (`None`: no limit).
    pub max_record_age: Option<Duration>,
}

impl RetryPolicy {
    /// Whether a batch that has failed `failures` times is given up.
    fn exhausted(&self, failures: u32) -> bool {
        self.max_retry_attempts.is_some_and(|max| failures > max)
    }
}

/// How an invoke with a batch went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every record succeeded (or the mapping ignores the response).
    Succeeded,
    /// The function named failed records; `first_failed` indexes the earliest of them.
    PartialFailure {
        /// Index into the batch of the earliest failed record.
        first_failed: usize,
    },
    /// The function failed as a whole: an error, a timeout, or an unreadable response.
    FunctionError,
}

/// Why records were given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCondition {
    /// Retried `MaximumRetryAttempts` times.
    RetryAttemptsExhausted,
    /// Older than `MaximumRecordAgeInSeconds`.
    RecordAgeExceeded,
}

impl FailureCondition {
    /// The condition as Lambda's on-failure record names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RetryAttemptsExhausted => "RetryAttemptsExhausted",
            Self::RecordAgeExceeded => "RecordAgeExceeded",
        }
    }
}

/// What to do after an invoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Leading records of the batch that are done (checkpointed).
    pub processed: usize,
    /// Records right after those that are given up.
    pub discarded: usize,
    /// Why they were given up (set when `discarded > 0`).
    pub condition: Option<FailureCondition>,
    /// How many times the given-up records were sent (for the on-failure record).
    pub invoke_count: u32,
    /// The batch was split in two.
    pub bisected: bool,
}

impl Step {
    fn processed(processed: usize) -> Self {
        Self {
            processed,
            discarded: 0,
            condition: None,
            invoke_count: 0,
            bisected: false,
        }
    }
}

/// A batch planned for retry: its length and how often it has failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Planned {
    len: usize,
    failures: u32,
}

/// One shard's retry plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardPlan {
    planned: VecDeque<Planned>,
}

impl ShardPlan {
    /// A plan with nothing to retry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a failed batch (or a half of one) is waiting to be sent again.
    pub fn retrying(&self) -> bool {
        !self.planned.is_empty()
    }

    /// How many of the `pending` front records to send next (0: nothing pending).
    pub fn next_len(&self, pending: usize, batch_size: usize) -> usize {
        match self.planned.front() {
            Some(planned) => planned.len.min(pending),
            None => pending.min(batch_size.max(1)),
        }
    }

    /// How many leading records (given their arrival times, seconds since the epoch) are older than
    /// the policy allows at `now`; the caller gives them up with
    /// [`FailureCondition::RecordAgeExceeded`] and reports them with [`ShardPlan::drop_front`].
    pub fn expired(policy: &RetryPolicy, now: i64, arrivals: &[i64]) -> usize {
        let Some(max_age) = policy.max_record_age else {
            return 0;
        };
        let max_age = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
        arrivals
            .iter()
            .take_while(|arrival| now.saturating_sub(**arrival) > max_age)
            .count()
    }

    /// Forgets `count` leading records (given up outside an invoke, e.g. expired).
    pub fn drop_front(&mut self, mut count: usize) {
        while count > 0 {
            let Some(front) = self.planned.front_mut() else {
                return;
            };
            if front.len > count {
                front.len -= count;
                return;
            }
            count -= front.len;
            self.planned.pop_front();
        }
    }

    /// Records the outcome of sending the `len` records [`ShardPlan::next_len`] chose.
    pub fn record(&mut self, policy: &RetryPolicy, len: usize, outcome: &Outcome) -> Step {
        let failures = match self.planned.pop_front() {
            Some(planned) => {
                if planned.len > len {
                    // Fewer records were pending than planned: keep the rest planned.
                    self.planned.push_front(Planned {
                        len: planned.len - len,
                        failures: planned.failures,
                    });
                }
                planned.failures
            }
            None => 0,
        };
        if len == 0 {
            return Step::processed(0);
        }
        match outcome {
            Outcome::Succeeded => Step::processed(len),
            Outcome::PartialFailure { first_failed } => {
                let first_failed = (*first_failed).min(len - 1);
                self.failed(policy, first_failed, len - first_failed, failures + 1)
            }
            Outcome::FunctionError if policy.bisect_on_function_error && len > 1 => {
                let first = len / 2;
                self.planned.push_front(Planned {
                    len: len - first,
                    failures,
                });
                self.planned.push_front(Planned {
                    len: first,
                    failures,
                });
                Step {
                    bisected: true,
                    ..Step::processed(0)
                }
            }
            Outcome::FunctionError => self.failed(policy, 0, len, failures + 1),
        }
    }

    /// `processed` records done; the `remaining` after them failed for the `failures`th time.
    fn failed(
        &mut self,
        policy: &RetryPolicy,
        processed: usize,
        remaining: usize,
        failures: u32,
    ) -> Step {
        if policy.exhausted(failures) {
            return Step {
                processed,
                discarded: remaining,
                condition: Some(FailureCondition::RetryAttemptsExhausted),
                invoke_count: failures,
                bisected: false,
            };
        }
        self.planned.push_front(Planned {
            len: remaining,
            failures,
        });
        Step::processed(processed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(bisect: bool, retries: Option<u32>) -> RetryPolicy {
        RetryPolicy {
            report_batch_item_failures: true,
            bisect_on_function_error: bisect,
            max_retry_attempts: retries,
            max_record_age: Some(Duration::from_secs(3600)),
        }
    }

    /// Plays a shard of `records` (their values) through a function that fails on `poison`
    /// (as a function error, or as a partial failure naming it); returns the processed and the
    /// given-up records, in order, and how many invokes it took.
    fn play(
        policy: &RetryPolicy,
        records: &[u32],
        batch_size: usize,
        poison: u32,
        partial: bool,
    ) -> (Vec<u32>, Vec<u32>, usize) {
        let mut pending: VecDeque<u32> = records.iter().copied().collect();
        let mut plan = ShardPlan::new();
        let (mut processed, mut given_up, mut invokes) = (Vec::new(), Vec::new(), 0);
        while !pending.is_empty() {
            invokes += 1;
            assert!(invokes < 1000, "no progress");
            let len = plan.next_len(pending.len(), batch_size);
            let batch: Vec<u32> = pending.iter().take(len).copied().collect();
            let outcome = match batch.iter().position(|r| *r == poison) {
                None => Outcome::Succeeded,
                Some(at) if partial => Outcome::PartialFailure { first_failed: at },
                Some(_) => Outcome::FunctionError,
            };
            let step = plan.record(policy, len, &outcome);
            for _ in 0..step.processed {
                processed.extend(pending.pop_front());
            }
            for _ in 0..step.discarded {
                given_up.extend(pending.pop_front());
            }
        }
        (processed, given_up, invokes)
    }

    #[test]
    fn success_checkpoints_the_whole_batch() {
        let mut plan = ShardPlan::new();
        assert_eq!(plan.next_len(250, 100), 100);
        let step = plan.record(&policy(true, Some(3)), 100, &Outcome::Succeeded);
        assert_eq!(step, Step::processed(100));
        assert!(!plan.retrying());
        assert_eq!(plan.next_len(0, 100), 0);
    }

    #[test]
    fn a_partial_failure_retries_from_the_first_failed_record() {
        let policy = policy(true, Some(3));
        let mut plan = ShardPlan::new();
        let step = plan.record(&policy, 10, &Outcome::PartialFailure { first_failed: 4 });
        assert_eq!(step.processed, 4);
        assert_eq!(step.discarded, 0);
        assert!(plan.retrying());
        // The retry is exactly the six records from the failed one, even with more pending.
        assert_eq!(plan.next_len(50, 10), 6);
        let step = plan.record(&policy, 6, &Outcome::Succeeded);
        assert_eq!(step.processed, 6);
        assert_eq!(plan.next_len(50, 10), 10);
    }

    #[test]
    fn a_record_reported_as_failed_is_retried_from_then_given_up_with_the_rest_of_its_batch() {
        let policy = policy(true, Some(2));
        let records: Vec<u32> = (1..=8).collect();
        let (processed, given_up, invokes) = play(&policy, &records, 100, 5, true);
        assert_eq!(processed, [1, 2, 3, 4]);
        // The retried batch runs from the failed record to the end of the batch, as on AWS.
        assert_eq!(given_up, [5, 6, 7, 8]);
        // The first invoke, then 2 retries of [5..=8].
        assert_eq!(invokes, 3);
        // Records after the batch are not part of it.
        let records: Vec<u32> = (1..=12).collect();
        let (processed, given_up, _) = play(&policy, &records, 8, 5, true);
        assert_eq!(processed, [1, 2, 3, 4, 9, 10, 11, 12]);
        assert_eq!(given_up, [5, 6, 7, 8]);
    }

    #[test]
    fn bisection_isolates_a_poison_record_without_spending_retries() {
        let policy = policy(true, Some(1));
        let records: Vec<u32> = (1..=8).collect();
        let (processed, given_up, _) = play(&policy, &records, 100, 6, false);
        assert_eq!(processed, [1, 2, 3, 4, 5, 7, 8]);
        assert_eq!(given_up, [6]);
    }

    #[test]
    fn bisection_halves_and_keeps_both_halves_planned() {
        let policy = policy(true, Some(1));
        let mut plan = ShardPlan::new();
        let step = plan.record(&policy, 9, &Outcome::FunctionError);
        assert!(step.bisected);
        assert_eq!(step.processed, 0);
        assert_eq!(plan.next_len(9, 100), 4);
        let step = plan.record(&policy, 4, &Outcome::Succeeded);
        assert_eq!(step.processed, 4);
        assert_eq!(plan.next_len(5, 100), 5, "the second half on its own");
        // A single record cannot be halved: it is retried, then given up.
        let mut single = ShardPlan::new();
        assert!(!single.record(&policy, 1, &Outcome::FunctionError).bisected);
        let step = single.record(&policy, 1, &Outcome::FunctionError);
        assert_eq!(step.discarded, 1);
        assert_eq!(step.invoke_count, 2);
        assert_eq!(
            step.condition,
            Some(FailureCondition::RetryAttemptsExhausted)
        );
    }

    #[test]
    fn without_bisection_a_failing_batch_is_retried_whole_then_given_up_whole() {
        let policy = policy(false, Some(2));
        let mut plan = ShardPlan::new();
        for _ in 0..2 {
            let step = plan.record(&policy, 5, &Outcome::FunctionError);
            assert_eq!((step.processed, step.discarded), (0, 0));
            assert_eq!(plan.next_len(20, 100), 5);
        }
        let step = plan.record(&policy, 5, &Outcome::FunctionError);
        assert_eq!(
            (step.processed, step.discarded, step.invoke_count),
            (0, 5, 3)
        );
        assert!(!plan.retrying());
    }

    #[test]
    fn zero_retries_gives_up_at_the_first_failure_and_no_limit_never_does() {
        let mut plan = ShardPlan::new();
        let step = plan.record(&policy(false, Some(0)), 3, &Outcome::FunctionError);
        assert_eq!(step.discarded, 3);
        let mut plan = ShardPlan::new();
        for _ in 0..500 {
            let step = plan.record(&policy(false, None), 3, &Outcome::FunctionError);
            assert_eq!(step.discarded, 0);
        }
    }

    #[test]
    fn without_a_count_limit_a_failing_batch_is_given_up_only_when_it_is_too_old() {
        let policy = RetryPolicy {
            max_retry_attempts: None,
            max_record_age: Some(Duration::from_secs(6 * 3600)),
            ..policy(true, None)
        };
        let mut plan = ShardPlan::new();
        for _ in 0..1000 {
            let step = plan.record(&policy, 4, &Outcome::PartialFailure { first_failed: 0 });
            assert_eq!((step.processed, step.discarded), (0, 0));
            assert_eq!(plan.next_len(4, 100), 4, "the same records, again");
        }
        let now = 100_000;
        let arrived = [now - 6 * 3600, now - 6 * 3600 - 1];
        assert_eq!(ShardPlan::expired(&policy, now, &arrived[..1]), 0);
        assert_eq!(ShardPlan::expired(&policy, now, &arrived[1..]), 1);
    }

    #[test]
    fn old_records_expire_before_they_are_sent() {
        let policy = policy(true, Some(3));
        let now = 10_000;
        let arrivals = [now - 4000, now - 3601, now - 3600, now - 5000];
        // Only the leading run of expired records: order is kept.
        assert_eq!(ShardPlan::expired(&policy, now, &arrivals), 2);
        let unlimited = RetryPolicy {
            max_record_age: None,
            ..policy
        };
        assert_eq!(ShardPlan::expired(&unlimited, now, &arrivals), 0);
        // Dropping expired records shrinks what is planned for retry.
        let mut plan = ShardPlan::new();
        plan.record(&policy, 9, &Outcome::FunctionError);
        plan.drop_front(5);
        assert_eq!(plan.next_len(4, 100), 4);
        plan.drop_front(4);
        assert!(!plan.retrying());
    }

    #[test]
    fn a_shorter_pending_list_than_planned_keeps_the_rest_planned() {
        let policy = policy(false, Some(3));
        let mut plan = ShardPlan::new();
        plan.record(&policy, 6, &Outcome::FunctionError);
        assert_eq!(plan.next_len(4, 100), 4);
        plan.record(&policy, 4, &Outcome::Succeeded);
        assert!(plan.retrying());
        assert_eq!(plan.next_len(10, 100), 2);
    }
}
