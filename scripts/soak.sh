#!/usr/bin/env bash
# A chaos soak of the whole local stack: brings it up as scripts/run.sh does (stage `soak`), with the
# fault-injecting proxy (orderflow-chaos) between the code and the emulators and the bridge playing
# duplicate deliveries and crashes, then runs `orderflow soak`: N orders over HTTP as signed-in
# customers and couriers through a mix of lifecycles, retried like a real client, and an audit of
# the end state read around the faults (the store, the views, the customers' notifications, the
# dead-letter queues, the logs). Prints the figures; fails on any violation. Stops everything it
# started, by PID, on every exit path.
#
#   scripts/soak.sh                                  # 300 orders, 5 % faults, duplicates, 2 % crashes, seed 1
#   scripts/soak.sh --orders 5000 --faults 5 --duplicates --crashes 2 --seed 7
#   scripts/soak.sh --faults 0 --no-duplicates --crashes 0   # no faults at all
#
# Options: --orders N, --concurrency C (default 16), --faults P (percent of AWS API requests the
# proxy fails: errors, throttles, 503s, resets, stalls and lost answers; 0: no proxy), --duplicates /
# --no-duplicates (every SQS and stream batch delivered twice, or not), --crashes P (percent of
# batches whose answer is dropped after the function's side effects), --poison K (records no
# consumer can read, written into the events table: each must reach both stream readers' poison
# queues, default 3), --seed S.
# Logs: target/soak-report.txt (the figures), target/chaos-soak.jsonl (each injected fault),
# target/bridge-soak.log, target/functions-soak.log.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/sam.sh
source "$ORDERFLOW_ROOT/scripts/sam.sh"
# shellcheck source=scripts/local.sh
source "$ORDERFLOW_ROOT/scripts/local.sh"
cd "$ORDERFLOW_ROOT"

orders=300 concurrency=16 faults=5 duplicates=true crashes=2 seed=1 poison=3
usage="usage: scripts/soak.sh [--orders N] [--concurrency C] [--faults P] [--duplicates|--no-duplicates] [--crashes P] [--poison K] [--seed S]"
while [ $# -gt 0 ]; do
  case "$1" in
    --orders) orders="${2:?$usage}"; shift 2 ;;
    --concurrency) concurrency="${2:?$usage}"; shift 2 ;;
    --faults) faults="${2:?$usage}"; shift 2 ;;
    --duplicates) duplicates=true; shift ;;
    --no-duplicates) duplicates=false; shift ;;
    --crashes) crashes="${2:?$usage}"; shift 2 ;;
    --seed) seed="${2:?$usage}"; shift 2 ;;
    --poison) poison="${2:?$usage}"; shift 2 ;;
    *) die "$usage" ;;
  esac
done

STAGE=soak
ENV_FILE=target/soak.env
FAULT_STATS="$ORDERFLOW_ROOT/target/bridge-soak.faults.json"
REPORT="$ORDERFLOW_ROOT/target/soak-report.txt"
# The same figures with the latency distribution and throughput over time as charts.
HTML_REPORT="$ORDERFLOW_ROOT/target/soak-report.html"
rm -f "$FAULT_STATS" "$REPORT"

stop_stack_on_exit
started=$SECONDS
log "building the workspace's binaries"
build_stack
if [ "$faults" != 0 ]; then
  export ORDERFLOW_PROXY_ARGS="--seed $seed --faults $faults"
fi
bridge_args="--fault-seed $seed --fault-stats $FAULT_STATS --crash-percent $crashes"
$duplicates && bridge_args="$bridge_args --duplicate-percent 100"
export ORDERFLOW_BRIDGE_ARGS="$bridge_args"
# Several instances of each function, as Lambda scales out: batches of one queue run at once.
export ORDERFLOW_FUNCTION_INSTANCES="${ORDERFLOW_FUNCTION_INSTANCES:-2}"
start_stack "$STAGE" "$ENV_FILE"
log "stack ready in $((SECONDS - started)) s: API $API"

# The soak's own calls (signing users in) go through the proxy like everything else; the audit
# reads around it (--read-dynamodb, --read-sqs: the emulators themselves).
soak_args=(--api "$API" --orders "$orders" --concurrency "$concurrency" --seed "$seed" --poison "$poison"
  --read-dynamodb "${AWS_ENDPOINT_URL_DYNAMODB:-$AWS_ENDPOINT_URL}" --read-sqs "$AWS_ENDPOINT_URL"
  --fault-stats "$FAULT_STATS" --log "$LAMBDA_LOG" --log "$BRIDGE_LOG" --report "$HTML_REPORT")
if [ -n "${PROXY_URL:-}" ]; then
  soak_args+=(--journal "$PROXY_JOURNAL" --proxy-stats "$PROXY_URL/chaos/stats")
fi
status=0
(
  set -a
  # shellcheck source=/dev/null
  . "$ENV_FILE"
  set +a
  if [ -n "${PROXY_URL:-}" ]; then
    export AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER="$PROXY_URL"
  fi
  "$(stack_bin_dir)/orderflow" soak "${soak_args[@]}"
) | tee "$REPORT" || status=$?
log "soak done in $((SECONDS - started)) s (figures: $REPORT, charts: $HTML_REPORT)"
exit "$status"
