#!/usr/bin/env bash
# Runs orderflow locally without Docker: the AWS API emulator on 127.0.0.1, the tables of
# template.yaml, and a demo that places orders and prints their timelines. Stays up until Ctrl-C,
# then stops everything it started (by PID).
#
#   scripts/run.sh              # keep running; Ctrl-C stops it
#   scripts/run.sh --once       # run the demo, then stop
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ORDERFLOW_ROOT"

once=false
[ "${1:-}" = "--once" ] && once=true

log "building the orderflow tool"
cargo build --locked --quiet -p tools
trap stop_moto EXIT
trap 'exit 130' INT TERM
start_moto

export EVENTS_TABLE=orderflow-dev-events IDEMPOTENCY_TABLE=orderflow-dev-idempotency VIEWS_TABLE=orderflow-dev-views
target/debug/orderflow create-tables
log "demo: placing orders"
target/debug/orderflow demo

if ! $once; then
  log "the AWS API emulator is up at $AWS_ENDPOINT_URL (tables $EVENTS_TABLE, $IDEMPOTENCY_TABLE, $VIEWS_TABLE)"
  log "try: AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL target/debug/orderflow demo"
  log "press Ctrl-C to stop"
  wait "$MOTO_PID"
fi
