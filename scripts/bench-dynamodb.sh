#!/usr/bin/env bash
# What an event-store append (a TransactWriteItems) costs on the local DynamoDB as the events table
# grows from 100 to 20,000 items (tests/benches/dynamodb_transactions.rs): prints the figures and
# whether the large table's median stays within 2× of the small one's. Figures: BENCHMARKS.md.
#
#   scripts/bench-dynamodb.sh               # DynamoDB Local (the default stack's DynamoDB)
#   scripts/bench-dynamodb.sh --localstack  # LocalStack on the host (scripts/with-localstack.sh)
#
# Every emulator it starts listens on 127.0.0.1 and is stopped by PID on exit.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ORDERFLOW_ROOT"

bench=(cargo test --locked --offline --workspace --bench dynamodb_transactions)
if [ "${1:-}" = --localstack ]; then
  "${bench[@]}" --no-run
  exec bash "$ORDERFLOW_ROOT/scripts/with-localstack.sh" "${bench[@]}" -- --bench
fi
[ "$#" -eq 0 ] || die "usage: scripts/bench-dynamodb.sh [--localstack]"
"${bench[@]}" --no-run
trap stop_emulators EXIT
start_emulators
"${bench[@]}" -- --bench
