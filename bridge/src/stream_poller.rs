//! The DynamoDB stream event source mapping: one poller per mapping, reading every shard of the
//! table's stream (`DescribeStream`, `GetShardIterator` at the mapping's `StartingPosition`,
//! `GetRecords` four times a second, one iterator kept per shard, a child shard started once its
//! parent is drained). Records are batched per shard up to `BatchSize`, waiting at most
//! `MaximumBatchingWindowInSeconds`, and sent to the function as the DynamoDB event. What happens
//! after a failure is decided by the pure [`ShardPlan`]; given-up records are described to the
//! `OnFailure` queue with Lambda's on-failure record. A shard whose iterator has read nothing for a
//! while is checked with a fresh iterator, and read on from that one (with a warning) when the
//! stream turns out to have moved on without it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use aws_sdk_dynamodbstreams::Client as StreamsClient;
use aws_sdk_dynamodbstreams::error::DisplayErrorContext;
use aws_sdk_dynamodbstreams::operation::get_records::GetRecordsOutput;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::batch_response::{BatchVerdict, parse_batch_response};
use super::invoke::Invoker;
use super::stack::{StartingPosition, StreamMapping};
use super::stream_event::{GivenUp, arrival, lambda_event, on_failure_record, sequence_number};
use super::stream_retry::{FailureCondition, Outcome, ShardPlan};

/// Lambda polls a shard four times a second.
const POLL_EVERY: Duration = Duration::from_millis(250);
/// How often the shard list is refreshed.
const DESCRIBE_EVERY: Duration = Duration::from_secs(10);
/// Pause before a failed batch is sent again.
const RETRY_DELAY: Duration = Duration::from_millis(500);
/// Records fetched per `GetRecords`.
const GET_RECORDS_LIMIT: i32 = 1000;
/// How long a shard may read nothing before the poller checks, with a fresh iterator, whether the
/// stream has records its own iterator does not show (and how often it checks again).
const STALL_CHECK_AFTER: Duration = Duration::from_secs(10);

/// One shard's reading state.
#[derive(Debug)]
struct Shard {
    id: String,
    parent: Option<String>,
    iterator: Option<String>,
    started: bool,
    /// `GetRecords` said the shard is closed and everything was read.
    closed: bool,
    last_sequence: Option<String>,
    pending: VecDeque<Record>,
    first_pending_at: Option<Instant>,
    plan: ShardPlan,
    not_before: Option<Instant>,
    /// Where reading started when no record has been read yet (a stall check re-reads from there).
    started_at: Option<ShardIteratorType>,
    /// When the shard last gave records, or was started, or was last checked for a stall.
    quiet_since: Instant,
}

impl Shard {
    fn new(id: String, parent: Option<String>) -> Self {
        Self {
            id,
            parent,
            iterator: None,
            started: false,
            closed: false,
            last_sequence: None,
            pending: VecDeque::new(),
            first_pending_at: None,
            plan: ShardPlan::new(),
            not_before: None,
            started_at: None,
            quiet_since: Instant::now(),
        }
    }

    /// Takes a page of `GetRecords`: its records join the pending ones, its next iterator replaces
    /// the shard's. Returns how many records it had.
    fn take_page(&mut self, page: GetRecordsOutput) -> usize {
        let records = page.records.unwrap_or_default();
        let count = records.len();
        if count > 0 {
            if self.first_pending_at.is_none() {
                self.first_pending_at = Some(Instant::now());
            }
            self.quiet_since = Instant::now();
        }
        for record in records {
            self.last_sequence = Some(sequence_number(&record).to_owned());
            self.pending.push_back(record);
        }
        self.iterator = page.next_shard_iterator;
        count
    }

    fn drained(&self) -> bool {
        self.closed && self.pending.is_empty()
    }

    fn pop(&mut self, count: usize) -> Vec<Record> {
        let taken: Vec<Record> = self
            .pending
            .drain(..count.min(self.pending.len()))
            .collect();
        if self.pending.is_empty() {
            self.first_pending_at = None;
        }
        taken
    }
}

/// What a stream poller knows between rounds: the shards, when they were described.
#[derive(Debug, Default)]
pub struct StreamState {
    shards: Vec<Shard>,
    described_at: Option<Instant>,
    described_once: bool,
}

/// A running stream mapping.
#[derive(Debug, Clone)]
pub struct StreamPoller {
    /// The mapping.
    pub mapping: StreamMapping,
    /// The stream's ARN (looked up from the table).
    pub stream_arn: String,
    /// The on-failure queue's URL.
    pub on_failure_url: Option<String>,
    /// The function's ARN, for on-failure records.
    pub function_arn: String,
    /// The region, for records.
    pub region: String,
}

impl StreamPoller {
    /// Reads until `shutdown`.
    pub async fn run(
        self,
        streams: StreamsClient,
        sqs: aws_sdk_sqs::Client,
        invoker: Invoker,
        shutdown: CancellationToken,
    ) {
        let mapping = &self.mapping;
        info!(
            mapping = %mapping.name,
            function = %mapping.function.handler,
            table = %mapping.table_name,
            batch_size = mapping.batch_size,
            window_ms = mapping.batching_window.as_millis() as u64,
            max_retry_attempts = ?mapping.policy.max_retry_attempts,
            bisect = mapping.policy.bisect_on_function_error,
            on_failure = ?mapping.on_failure.as_ref().map(|q| &q.name),
            "stream poller started"
        );
        let mut state = StreamState::default();
        while !shutdown.is_cancelled() {
            self.step(&mut state, &streams, &sqs, &invoker).await;
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(POLL_EVERY) => {}
            }
        }
    }

    /// One round of the poller (what [`Self::run`] does every [`POLL_EVERY`]): the shards
    /// described (every [`DESCRIBE_EVERY`]), started, read, checked for a stale iterator chain,
    /// and every batch that is ready delivered. Returns how many records it read. The saga tests
    /// call it step by step, with the functions in their process.
    pub async fn step(
        &self,
        state: &mut StreamState,
        streams: &StreamsClient,
        sqs: &aws_sdk_sqs::Client,
        invoker: &Invoker,
    ) -> usize {
        let mapping = &self.mapping;
        if state
            .described_at
            .is_none_or(|at| at.elapsed() >= DESCRIBE_EVERY)
        {
            match self.describe(streams, &mut state.shards).await {
                Ok(()) => state.described_at = Some(Instant::now()),
                Err(error) => warn!(mapping = %mapping.name, %error, "DescribeStream failed"),
            }
        }
        let mut read = 0;
        for index in 0..state.shards.len() {
            if !state.shards[index].started && self.parent_done(&state.shards, index) {
                // LATEST applies to the shards open when the mapping starts; later shards are
                // read from their start, so nothing written after that is missed.
                let position = if state.described_once {
                    StartingPosition::TrimHorizon
                } else {
                    mapping.starting_position
                };
                self.start(streams, &mut state.shards[index], position)
                    .await;
            }
            read += self.fetch(streams, &mut state.shards[index]).await;
            self.check_stalled(streams, &mut state.shards[index]).await;
            self.process(sqs, invoker, &mut state.shards[index]).await;
        }
        state.described_once = true;
        read
    }

    fn parent_done(&self, shards: &[Shard], index: usize) -> bool {
        match &shards[index].parent {
            None => true,
            Some(parent) => shards
                .iter()
                .find(|s| &s.id == parent)
                .is_none_or(Shard::drained),
        }
    }

    async fn describe(
        &self,
        streams: &StreamsClient,
        shards: &mut Vec<Shard>,
    ) -> Result<(), String> {
        let mut start_after: Option<String> = None;
        loop {
            let description = streams
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .set_exclusive_start_shard_id(start_after.clone())
                .send()
                .await
                .map_err(|e| DisplayErrorContext(e).to_string())?
                .stream_description
                .ok_or("no stream description")?;
            for shard in description.shards() {
                let Some(id) = shard.shard_id() else { continue };
                if !shards.iter().any(|s| s.id == id) {
                    shards.push(Shard::new(
                        id.to_owned(),
                        shard.parent_shard_id().map(str::to_owned),
                    ));
                }
            }
            match description.last_evaluated_shard_id() {
                Some(last) => start_after = Some(last.to_owned()),
                None => return Ok(()),
            }
        }
    }

    async fn start(&self, streams: &StreamsClient, shard: &mut Shard, position: StartingPosition) {
        let kind = match (&shard.last_sequence, position) {
            (Some(_), _) => ShardIteratorType::AfterSequenceNumber,
            (None, StartingPosition::Latest) => ShardIteratorType::Latest,
            (None, StartingPosition::TrimHorizon) => ShardIteratorType::TrimHorizon,
        };
        match streams
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(&shard.id)
            .shard_iterator_type(kind.clone())
            .set_sequence_number(shard.last_sequence.clone())
            .send()
            .await
        {
            Ok(output) => {
                shard.iterator = output.shard_iterator;
                shard.started = true;
                shard.closed = shard.iterator.is_none();
                shard.quiet_since = Instant::now();
                if shard.last_sequence.is_none() {
                    shard.started_at = Some(kind.clone());
                }
                info!(mapping = %self.mapping.name, shard = %shard.id, iterator = kind.as_str(), "reading shard");
            }
            Err(error) => {
                warn!(mapping = %self.mapping.name, shard = %shard.id, error = %DisplayErrorContext(error), "GetShardIterator failed")
            }
        }
    }

    /// Reads what the shard has after its iterator (while the pending list is short).
    async fn fetch(&self, streams: &StreamsClient, shard: &mut Shard) -> usize {
        let Some(iterator) = shard.iterator.clone() else {
            return 0;
        };
        if shard.pending.len() >= self.mapping.batch_size.max(1) * 4 {
            return 0;
        }
        match streams
            .get_records()
            .shard_iterator(iterator)
            .limit(GET_RECORDS_LIMIT)
            .send()
            .await
        {
            Ok(page) => {
                let read = shard.take_page(page);
                if shard.iterator.is_none() {
                    shard.closed = true;
                    info!(mapping = %self.mapping.name, shard = %shard.id, "shard closed");
                }
                read
            }
            Err(error) => {
                // An expired or invalid iterator: take a new one after the last record read.
                warn!(mapping = %self.mapping.name, shard = %shard.id, error = %DisplayErrorContext(error), "GetRecords failed; renewing the iterator");
                shard.iterator = None;
                shard.started = false;
                0
            }
        }
    }

    /// A shard that has read nothing for [`STALL_CHECK_AFTER`] is checked with a fresh iterator
    /// after the last record read (or where reading started): if that one sees records the
    /// shard's own iterator chain did not, the chain is stale (an emulator that detached it; on
    /// AWS, an iterator past its 15 minutes), so the poller says so and reads on from the fresh one.
    async fn check_stalled(&self, streams: &StreamsClient, shard: &mut Shard) {
        if !shard.started
            || shard.closed
            || shard.iterator.is_none()
            || !shard.pending.is_empty()
            || shard.quiet_since.elapsed() < STALL_CHECK_AFTER
        {
            return;
        }
        let quiet_for = shard.quiet_since.elapsed();
        shard.quiet_since = Instant::now();
        let kind = match (&shard.last_sequence, &shard.started_at) {
            (Some(_), _) => ShardIteratorType::AfterSequenceNumber,
            (None, Some(ShardIteratorType::TrimHorizon)) => ShardIteratorType::TrimHorizon,
            // Started at LATEST with nothing read: there is no position to compare from.
            (None, _) => return,
        };
        let fresh = match streams
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(&shard.id)
            .shard_iterator_type(kind)
            .set_sequence_number(shard.last_sequence.clone())
            .send()
            .await
        {
            Ok(output) => output.shard_iterator,
            Err(error) => {
                warn!(mapping = %self.mapping.name, shard = %shard.id, error = %DisplayErrorContext(error), "stall check: GetShardIterator failed");
                return;
            }
        };
        let Some(fresh) = fresh else { return };
        match streams
            .get_records()
            .shard_iterator(fresh)
            .limit(GET_RECORDS_LIMIT)
            .send()
            .await
        {
            Ok(page) if !page.records().is_empty() => {
                let records = shard.take_page(page);
                warn!(
                    mapping = %self.mapping.name,
                    shard = %shard.id,
                    quiet_s = quiet_for.as_secs(),
                    records,
                    "stream iterator stalled: a fresh iterator sees records the old one did not; reading on from the fresh one"
                );
            }
            Ok(_) => {}
            Err(error) => {
                warn!(mapping = %self.mapping.name, shard = %shard.id, error = %DisplayErrorContext(error), "stall check: GetRecords failed")
            }
        }
    }

    fn batch_ready(&self, shard: &Shard) -> bool {
        if shard.pending.is_empty() || shard.not_before.is_some_and(|at| Instant::now() < at) {
            return false;
        }
        shard.plan.retrying()
            || shard.pending.len() >= self.mapping.batch_size
            || shard
                .first_pending_at
                .is_none_or(|at| at.elapsed() >= self.mapping.batching_window)
    }

    /// Sends batches while one is ready.
    async fn process(&self, sqs: &aws_sdk_sqs::Client, invoker: &Invoker, shard: &mut Shard) {
        while self.batch_ready(shard) {
            let policy = self.mapping.policy;
            let arrivals: Vec<i64> = shard.pending.iter().map(arrival).collect();
            let expired = ShardPlan::expired(&policy, Utc::now().timestamp(), &arrivals);
            if expired > 0 {
                shard.plan.drop_front(expired);
                let records = shard.pop(expired);
                self.give_up(
                    sqs,
                    shard,
                    &records,
                    FailureCondition::RecordAgeExceeded,
                    0,
                    None,
                )
                .await;
                continue;
            }
            let len = shard
                .plan
                .next_len(shard.pending.len(), self.mapping.batch_size);
            let batch: Vec<Record> = shard.pending.iter().take(len).cloned().collect();
            let event = lambda_event(&batch, &self.stream_arn, &self.region);
            let started = Instant::now();
            let result = invoker.deliver_batch(&self.mapping.function, &event).await;
            let elapsed_ms = started.elapsed().as_millis() as u64;
            let sequences: Vec<&str> = batch.iter().map(sequence_number).collect();
            let (outcome, reason) = match &result {
                Err(error) => (Outcome::FunctionError, Some(error.reason())),
                Ok(_) if !policy.report_batch_item_failures => (Outcome::Succeeded, None),
                Ok(answer) => match parse_batch_response(answer, &sequences) {
                    BatchVerdict::AllSucceeded => (Outcome::Succeeded, None),
                    BatchVerdict::Failed(failed) => (
                        Outcome::PartialFailure {
                            first_failed: failed[0],
                        },
                        Some(format!(
                            "{} record(s) reported failed, first {}",
                            failed.len(),
                            sequences[failed[0]]
                        )),
                    ),
                    BatchVerdict::Invalid(reason) => (
                        Outcome::FunctionError,
                        Some(format!("invalid batch response: {reason}")),
                    ),
                },
            };
            let step = shard.plan.record(&policy, len, &outcome);
            shard.pop(step.processed);
            match &reason {
                None => {
                    info!(function = %self.mapping.function.handler, shard = %shard.id, records = len, elapsed_ms, "stream batch processed")
                }
                Some(reason) => warn!(
                    function = %self.mapping.function.handler,
                    shard = %shard.id,
                    records = len,
                    processed = step.processed,
                    bisected = step.bisected,
                    given_up = step.discarded,
                    elapsed_ms,
                    %reason,
                    "stream batch failed"
                ),
            }
            if step.discarded > 0 {
                let records = shard.pop(step.discarded);
                let function_error =
                    matches!(outcome, Outcome::FunctionError).then_some("Unhandled");
                let condition = step
                    .condition
                    .unwrap_or(FailureCondition::RetryAttemptsExhausted);
                self.give_up(
                    sqs,
                    shard,
                    &records,
                    condition,
                    step.invoke_count,
                    function_error,
                )
                .await;
            }
            if reason.is_some() && shard.plan.retrying() {
                shard.not_before = Some(Instant::now() + RETRY_DELAY);
            }
        }
    }

    /// Describes given-up records to the on-failure queue.
    async fn give_up(
        &self,
        sqs: &aws_sdk_sqs::Client,
        shard: &Shard,
        records: &[Record],
        condition: FailureCondition,
        invoke_count: u32,
        function_error: Option<&str>,
    ) {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return;
        };
        let given_up = GivenUp {
            function_arn: &self.function_arn,
            stream_arn: &self.stream_arn,
            shard_id: &shard.id,
            sequence_numbers: (sequence_number(first), sequence_number(last)),
            arrivals: (arrival(first), arrival(last)),
            batch_size: records.len(),
            condition,
            invoke_count,
            function_error,
        };
        let record = on_failure_record(&given_up, &uuid::Uuid::now_v7().to_string(), Utc::now());
        let Some(url) = &self.on_failure_url else {
            warn!(function = %self.mapping.function.handler, shard = %shard.id, records = records.len(), condition = condition.as_str(), "records given up (no on-failure destination)");
            return;
        };
        let sent = sqs
            .send_message()
            .queue_url(url)
            .message_body(record.to_string())
            .send()
            .await;
        match sent {
            Ok(_) => warn!(
                function = %self.mapping.function.handler,
                shard = %shard.id,
                records = records.len(),
                first_sequence = given_up.sequence_numbers.0,
                last_sequence = given_up.sequence_numbers.1,
                condition = condition.as_str(),
                destination = ?self.mapping.on_failure.as_ref().map(|q| &q.name),
                "records given up; on-failure record sent"
            ),
            Err(error) => warn!(
                function = %self.mapping.function.handler,
                error = %aws_sdk_sqs::error::DisplayErrorContext(error),
                "could not send the on-failure record; the records are given up all the same"
            ),
        }
    }
}
