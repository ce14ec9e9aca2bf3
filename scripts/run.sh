#!/usr/bin/env bash
# Runs the whole of orderflow locally, without Docker, from template.yaml:
#
#   DynamoDB Local (DynamoDB, Streams) + moto server (SQS, SNS, EventBridge)
#                           ←  orderflow-bridge setup  (tables, bus, rules, queues, topics; env file)
#   orderflow-bridge functions ← the functions (the one bootstrap), behind the Lambda Invoke API
#   orderflow-bridge run    ←  API Gateway routes, SQS and DynamoDB-stream event source mappings,
#                              schedules
#
# then runs the demo through the HTTP API (orders placed, couriers at work, timelines and
# notifications printed). Everything listens on 127.0.0.1 only. Stays up until Ctrl-C, then stops
# everything it started, by PID.
#
#   scripts/run.sh              # keep running; Ctrl-C stops it
#   scripts/run.sh --once       # run the demo, then stop
#   scripts/run.sh --localstack # LocalStack on the host instead of moto (scripts/with-localstack.sh:
#                               # installed on first use, in a private network namespace)
#
# Logs: target/bridge-local.log (the bridge), target/functions-local.log (the functions),
# target/moto-*.log, target/dynamodb-local-*.log.
# ORDERFLOW_SCHEDULE_SECONDS=N runs the overdue check every N s instead of every 5 minutes.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/sam.sh
source "$ORDERFLOW_ROOT/scripts/sam.sh"
# shellcheck source=scripts/local.sh
source "$ORDERFLOW_ROOT/scripts/local.sh"
cd "$ORDERFLOW_ROOT"

once=false
localstack=false
for arg in "$@"; do
  case "$arg" in
    --once) once=true ;;
    --localstack) localstack=true ;;
    *) die "usage: scripts/run.sh [--once] [--localstack]" ;;
  esac
done
if $localstack && [ "${ORDERFLOW_EMULATOR:-}" != localstack ]; then
  # LocalStack on the host in a private network namespace; this script again, inside it.
  args=()
  $once && args+=(--once)
  exec bash "$ORDERFLOW_ROOT/scripts/with-localstack.sh" bash "$ORDERFLOW_ROOT/scripts/run.sh" "${args[@]}"
fi

STAGE=local
ENV_FILE=target/local.env

stop_stack_on_exit

started=$SECONDS
log "building every binary of the workspace (the functions' first invokes are then quick)"
build_stack
built=$SECONDS
start_stack "$STAGE" "$ENV_FILE"
log "stack ready in $((SECONDS - built)) s after the build ($((SECONDS - started)) s in all): API $API (bridge pid $BRIDGE_PID, log $BRIDGE_LOG)"

log "demo: orders, couriers and notifications through $API"
if ! (set -a && . "$ENV_FILE" && set +a && RUST_LIB_BACKTRACE=0 "$(stack_bin_dir)/orderflow" demo --api "$API"); then
  die "the demo failed (logs: $BRIDGE_LOG, $LAMBDA_LOG)"
fi

if ! $once; then
  log "the API is at $API; every route needs a user's access token, e.g. in another shell:"
  log "  TOKEN=\$(scripts/token.sh alice) && curl -H \"Authorization: Bearer \$TOKEN\" $API/customers/me/orders"
  log "AWS APIs (${ORDERFLOW_EMULATOR:-moto}) at $AWS_ENDPOINT_URL${AWS_ENDPOINT_URL_DYNAMODB:+, DynamoDB at $AWS_ENDPOINT_URL_DYNAMODB}; function logs in $LAMBDA_LOG, bridge logs in $BRIDGE_LOG"
  log "press Ctrl-C to stop everything"
  wait "$BRIDGE_PID"
fi
