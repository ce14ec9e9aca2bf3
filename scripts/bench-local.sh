#!/usr/bin/env bash
# Benchmarks the whole local stack (DynamoDB Local + moto + orderflow-bridge + the functions, each
# instance a process of the one bootstrap; see scripts/run.sh) through its HTTP API:
#
#   build the workspace's binaries (the optimised `local` profile of Cargo.toml) → start the stack
#   (stage `bench`) → warm up with 5 orders, one at a time (each function's first invoke starts
#   it) → `orderflow load` → stop everything
#
# and prints the load run's figures: POST /orders latency, POST → delivery scheduled latency
# (p50/p90/p99/max), sustained orders/s, and the CPU time each component (emulators, Lambda
# emulator, bridge, each function) used during the load. Arguments go to `orderflow load`:
#
#   scripts/bench-local.sh                                 # 200 orders, 4 in flight
#   scripts/bench-local.sh --orders 300 --concurrency 8
#   scripts/bench-local.sh --orders 200 --concurrency 4 --rate 2
#
# Everything listens on 127.0.0.1 and is stopped by PID on exit. Logs: target/bridge-bench.log,
# target/functions-bench.log, target/moto-*.log. ORDERFLOW_PROFILE=dev measures debug builds
# instead; ORDERFLOW_FUNCTION_INSTANCES=N (default 2) runs N instances of each function;
# ORDERFLOW_BENCH_PREFILL=N places
# N orders through the stack (and waits until each is scheduled) before the measured load, to
# measure it over a store that already holds them.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/sam.sh
source "$ORDERFLOW_ROOT/scripts/sam.sh"
# shellcheck source=scripts/local.sh
source "$ORDERFLOW_ROOT/scripts/local.sh"
cd "$ORDERFLOW_ROOT"

STAGE=bench
ENV_FILE=target/bench.env
export ORDERFLOW_PROFILE="${ORDERFLOW_PROFILE:-local}"
export ORDERFLOW_FUNCTION_INSTANCES="${ORDERFLOW_FUNCTION_INSTANCES:-2}"
WARM_UP_ORDERS=5
export BRIDGE_LOG="$ORDERFLOW_ROOT/target/bridge-bench.log"
export LAMBDA_LOG="$ORDERFLOW_ROOT/target/functions-bench.log"

stop_stack_on_exit

# `orderflow load` against the stack, with the stack's environment.
load() {
  (set -a && . "$ENV_FILE" && set +a && RUST_LIB_BACKTRACE=0 "$(stack_bin_dir)/orderflow" load --api "$API" "$@")
}

# The --orders N of the load's arguments (orderflow load's default otherwise).
load_orders() {
  local orders=200
  while [ "$#" -gt 0 ]; do
    case "$1" in
      --orders) orders="$2"; shift 2 ;;
      --orders=*) orders="${1#--orders=}"; shift ;;
      *) shift ;;
    esac
  done
  echo "$orders"
}

# Waits (at most 20 minutes) until every queue of the stage that a function reads is empty, with
# nothing in flight, for 5 s in a row.
wait_until_drained() {
  "$VENV/bin/python" - "$STAGE" <<'PY' >&2 || die "the stack did not drain within 20 minutes"
import sys, time
import boto3

stage = sys.argv[1]
sqs = boto3.client("sqs")
names = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
deadline, quiet_since, last = time.time() + 1200, None, None
while time.time() < deadline:
    urls = [u for u in sqs.list_queues(QueueNamePrefix=f"orderflow-{stage}-").get("QueueUrls", [])
            if not u.endswith("-dlq") and not u.endswith("-inbox") and "failures" not in u]
    depth = 0
    for url in urls:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(names))["Attributes"]
        depth += sum(int(attributes[n]) for n in names)
    if depth != last:
        print(f"[orderflow] queues of {stage}: {depth} message(s) left", flush=True)
        last = depth
    if depth == 0:
        quiet_since = quiet_since or time.time()
        if time.time() - quiet_since >= 5:
            sys.exit(0)
    else:
        quiet_since = None
    time.sleep(2)
sys.exit(1)
PY
}

# The bridge's warnings and errors, grouped (numbers masked), as the run left them.
bridge_warnings() {
  local count
  count="$(grep -cE '^[^ ]+ +(WARN|ERROR) ' "$BRIDGE_LOG" 2>/dev/null || true)"
  count="${count:-0}"
  log "bridge log: $count WARN/ERROR line(s) in $BRIDGE_LOG"
  if [ "$count" -gt 0 ]; then
    grep -E '^[^ ]+ +(WARN|ERROR) ' "$BRIDGE_LOG" | sed -E 's/^[^ ]+ +//; s/[0-9]+/N/g' | cut -c1-160 |
      sort | uniq -c | sort -rn | head -10 >&2
  fi
}

log "building every binary of the workspace (profile $(stack_profile))"
build_stack
built=$SECONDS
start_stack "$STAGE" "$ENV_FILE"
log "stack ready in $((SECONDS - built)) s: API $API (bridge pid $BRIDGE_PID, functions pid $LAMBDA_PID)"

log "warm-up: $WARM_UP_ORDERS orders, one at a time"
warm_up_started=$SECONDS
if ! load --orders "$WARM_UP_ORDERS" --concurrency 1 >&2; then
  die "the warm-up failed (logs: $BRIDGE_LOG, $LAMBDA_LOG)"
fi
log "warm-up done in $((SECONDS - warm_up_started)) s"

if [ "${ORDERFLOW_BENCH_PREFILL:-0}" -gt 0 ]; then
  log "prefill: $ORDERFLOW_BENCH_PREFILL orders through the stack first (ORDERFLOW_BENCH_PREFILL)"
  prefill_started=$SECONDS
  # As fast as the stack takes them: some orders may not be seen scheduled within the load's 60 s
  # while it is saturated; they are scheduled all the same, and the queues are drained below.
  load --orders "$ORDERFLOW_BENCH_PREFILL" --concurrency 8 >&2 ||
    log "prefill: not every order was seen scheduled within 60 s under saturation; draining"
  wait_until_drained
  log "prefill done and drained in $((SECONDS - prefill_started)) s"
fi

log "load: orderflow load $*"
cpu_before="$ORDERFLOW_ROOT/target/bench-cpu-before.json"
cpu_after="$ORDERFLOW_ROOT/target/bench-cpu-after.json"
"$VENV/bin/python" scripts/cpu_by_process.py snapshot "$cpu_before"
if ! load "$@"; then
  bridge_warnings
  die "the load run failed (logs: $BRIDGE_LOG, $LAMBDA_LOG)"
fi
"$VENV/bin/python" scripts/cpu_by_process.py snapshot "$cpu_after"
# Where the machine's time went: CPU seconds by component while the load ran.
"$VENV/bin/python" scripts/cpu_by_process.py report "$cpu_before" "$cpu_after" "$(load_orders "$@")"
bridge_warnings
