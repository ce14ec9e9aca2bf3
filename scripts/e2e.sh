#!/usr/bin/env bash
# The end-to-end suite through the whole local stack: brings the system up on 127.0.0.1 exactly as
# scripts/run.sh does (DynamoDB Local and moto, every resource of template.yaml for the stage `e2e`, the
# functions — processes of the one deployed bootstrap — and the bridge), runs `cargo test --test e2e` against it (HTTP
# in; read model, stored events, notifications and dead-letter queues observed out), and stops
# everything it started, by PID, on every exit path.
#
#   scripts/e2e.sh                 # build, start, test, stop (scripts/test.sh runs this)
#   scripts/e2e.sh saga            # extra arguments go to the test binary (a name filter …)
#   scripts/e2e.sh --localstack    # the same against LocalStack on the host (scripts/with-localstack.sh)
#
# Logs: target/bridge-e2e.log, target/functions-e2e.log, target/moto-PORT.log,
# target/dynamodb-local-PID.log.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/sam.sh
source "$ORDERFLOW_ROOT/scripts/sam.sh"
# shellcheck source=scripts/local.sh
source "$ORDERFLOW_ROOT/scripts/local.sh"
cd "$ORDERFLOW_ROOT"

if [ "${1:-}" = --localstack ]; then
  shift
  # LocalStack on the host in a private network namespace; this script again, inside it.
  exec bash "$ORDERFLOW_ROOT/scripts/with-localstack.sh" bash "$ORDERFLOW_ROOT/scripts/e2e.sh" "$@"
fi

STAGE=e2e
ENV_FILE=target/e2e.env

stop_stack_on_exit

started=$SECONDS
ensure_moto
ensure_dynamodb_local
log "building the function binaries and the end-to-end suite"
build_stack
# The test binary runs directly, not under `cargo test` (no cargo lock held while it runs).
E2E_BIN="$(cargo test --locked --workspace --test e2e --no-run --message-format=json |
  "$VENV/bin/python" -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "e2e" and m.get("executable"):
        print(m["executable"])
')"
[ -x "$E2E_BIN" ] || die "cargo did not build the e2e test binary"
start_stack "$STAGE" "$ENV_FILE"
log "stack ready in $((SECONDS - started)) s: API $API"

set -a
# shellcheck source=/dev/null
. "$ENV_FILE"
set +a
export ORDERFLOW_API="$API" ORDERFLOW_STAGE="$STAGE" ORDERFLOW_EMULATOR="${ORDERFLOW_EMULATOR:-moto}"
export ORDERFLOW_FUNCTION_LOG="$LAMBDA_LOG"
# The Cognito emulator's signing key, for the hostile-caller tests' forged tokens.
ORDERFLOW_COGNITO_SIGNING_KEY="$ORDERFLOW_ROOT/target/e2e-cognito-signing-key.pem"
"$VENV/bin/python" "$ORDERFLOW_ROOT/scripts/cognito_signing_key.py" >"$ORDERFLOW_COGNITO_SIGNING_KEY" ||
  die "could not read the Cognito emulator's signing key"
export ORDERFLOW_COGNITO_SIGNING_KEY
# The tests mostly wait on the stack; more threads than cores keeps the run short.
"$E2E_BIN" --test-threads 6 "$@"

# The OpenAPI documents are the whole contract: schemathesis against the same stack, as a customer,
# a courier and support (scripts/contract-test.sh). Once per test run: on the default emulators
# (the contract is the functions', not the emulator's), and not when a test filter was given.
if [ $# -eq 0 ] && [ "${ORDERFLOW_EMULATOR:-moto}" != localstack ] && [ "${ORDERFLOW_CONTRACT_TEST:-1}" != 0 ]; then
  ORDERFLOW_ENV_FILE="$ENV_FILE" bash "$ORDERFLOW_ROOT/scripts/contract-test.sh" --api "$API"
fi
