#!/usr/bin/env bash
# Contract tests: schemathesis sends generated requests to a running orderflow stack and checks every
# answer against the OpenAPI documents, which are the whole contract of the HTTP API:
#
#   order       functions/order-api/openapi.json as a customer: examples, coverage, fuzzing, and the
#               stateful phase that follows the documents' links (POST /orders → its order)
#   courier     functions/delivery/openapi.json as a courier, starting from the delivery of an order
#               placed here for the purpose (links cannot cross the two documents)
#   support     both documents' GET operations as support
#   no-token    every operation once without a token: API Gateway's 401, as documented
#
#   scripts/contract-test.sh --api http://127.0.0.1:PORT   # against the stack of scripts/run.sh
#   scripts/contract-test.sh --validate                    # no stack: load and validate the documents
#
# The API's base URL: --api URL (or the first argument), else ORDERFLOW_API. Access tokens:
# ORDERFLOW_CUSTOMER_TOKEN, ORDERFLOW_COURIER_TOKEN, ORDERFLOW_SUPPORT_TOKEN; each one not set is
# made with `orderflow token --user contract-<group> --group <group>` for the stack whose
# environment target/local.env holds (ORDERFLOW_ENV_FILE; stage ORDERFLOW_STAGE, default local).
# Tuning: ORDERFLOW_CONTRACT_EXAMPLES (test cases per operation and phase, default 50),
# ORDERFLOW_CONTRACT_SEED (a fixed seed reproduces a run), ORDERFLOW_CONTRACT_SEED_WAIT (seconds
# to wait for the seeded order's delivery, default 60). JUnit reports: target/contract-test/.
# Exit status: non-zero when any run failed.
#
# schemathesis is pinned and installed into .venv-schemathesis (ORDERFLOW_SCHEMATHESIS_VENV) on first
# use. Its command line is that of 4.x (`run --url … --checks … --phases …`; 3.x differs).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/local.sh
source "$ORDERFLOW_ROOT/scripts/local.sh"
cd "$ORDERFLOW_ROOT"

SCHEMATHESIS_VERSION="4.32.5"
SCHEMATHESIS_VENV="${ORDERFLOW_SCHEMATHESIS_VENV:-$ORDERFLOW_ROOT/.venv-schemathesis}"
HELPER="$ORDERFLOW_ROOT/scripts/contract-test/contract.py"
CONFIG="$ORDERFLOW_ROOT/scripts/contract-test/schemathesis.toml"
ORDER_DOC="functions/order-api/openapi.json"
COURIER_DOC="functions/delivery/openapi.json"
REPORTS="$ORDERFLOW_ROOT/target/contract-test"
EXAMPLES="${ORDERFLOW_CONTRACT_EXAMPLES:-50}"
CHECKS="not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"

# Creates .venv-schemathesis (once) with the machine's Python (schemathesis needs >= 3.11) and
# installs the pinned schemathesis into it.
ensure_schemathesis() {
  if "$SCHEMATHESIS_VENV/bin/python" -c \
    "import schemathesis, sys; sys.exit(0 if schemathesis.__version__ == '$SCHEMATHESIS_VERSION' else 1)" 2>/dev/null; then
    return 0
  fi
  local python
  python="$(pick_python)" || die "no Python found; install python3 (>= 3.11) and python3-venv (Debian) and retry"
  "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' ||
    die "schemathesis $SCHEMATHESIS_VERSION needs Python >= 3.11 ($python is older; set ORDERFLOW_PYTHON)"
  if [ ! -x "$SCHEMATHESIS_VENV/bin/python" ]; then
    log "creating virtualenv $SCHEMATHESIS_VENV with $python"
    "$python" -m venv "$SCHEMATHESIS_VENV" || die "could not create the virtualenv at $SCHEMATHESIS_VENV"
  fi
  log "installing schemathesis==$SCHEMATHESIS_VERSION into $SCHEMATHESIS_VENV"
  "$SCHEMATHESIS_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "schemathesis==$SCHEMATHESIS_VERSION" ||
    die "pip could not install schemathesis==$SCHEMATHESIS_VERSION into $SCHEMATHESIS_VENV"
}

helper() { "$SCHEMATHESIS_VENV/bin/python" "$HELPER" "$@"; }

api=""
validate_only=false
while [ $# -gt 0 ]; do
  case "$1" in
    --validate) validate_only=true ;;
    --api) [ $# -ge 2 ] || die "--api needs a URL"; api="$2"; shift ;;
    --api=*) api="${1#--api=}" ;;
    http://* | https://*) api="$1" ;;
    *) die "usage: scripts/contract-test.sh [--api URL | URL] | --validate" ;;
  esac
  shift
done

ensure_schemathesis
log "validating $ORDER_DOC and $COURIER_DOC (schemathesis $SCHEMATHESIS_VERSION's loader and OpenAPI meta-schema)"
helper validate "$ORDER_DOC" "$COURIER_DOC" || die "the OpenAPI documents are not valid (see above)"
$validate_only && exit 0

api="${api:-${ORDERFLOW_API:-}}"
[ -n "$api" ] || die "no API base URL: pass --api URL or set ORDERFLOW_API (scripts/run.sh prints it)"
api="${api%/}"

# An access token for a user in `group`, from the environment or from the running stack.
token_for() {
  local group="$1" variable="$2"
  if [ -n "${!variable:-}" ]; then
    printf '%s' "${!variable}"
    return 0
  fi
  local env_file="${ORDERFLOW_ENV_FILE:-target/local.env}"
  [ -f "$env_file" ] || die "$variable is not set and $env_file is missing: set the tokens, or start the stack with scripts/run.sh"
  log "signing in contract-$group ($group) for a token ($variable is not set)"
  (
    set -a
    # shellcheck source=/dev/null
    . "$env_file"
    set +a
    export ORDERFLOW_STAGE="${ORDERFLOW_STAGE:-local}"
    orderflow="$(stack_bin_dir)/orderflow"
    [ -x "$orderflow" ] || cargo build --locked --quiet -p tools --bin orderflow --profile "$(stack_profile)"
    "$orderflow" token --user "contract-$group" --group "$group"
  ) || die "could not get a token for contract-$group"
}
ORDERFLOW_CUSTOMER_TOKEN="$(token_for customers ORDERFLOW_CUSTOMER_TOKEN)"
ORDERFLOW_COURIER_TOKEN="$(token_for couriers ORDERFLOW_COURIER_TOKEN)"
ORDERFLOW_SUPPORT_TOKEN="$(token_for support ORDERFLOW_SUPPORT_TOKEN)"
export ORDERFLOW_CUSTOMER_TOKEN ORDERFLOW_COURIER_TOKEN ORDERFLOW_SUPPORT_TOKEN

rm -rf "$REPORTS"
mkdir -p "$REPORTS"
export ORDERFLOW_CONTRACT_CACHE="$REPORTS/cache"
summary=()
failed=0

# run NAME TOKEN DOCUMENT [schemathesis options…]: one schemathesis run, its outcome remembered.
# One worker: CPython 3.11's `ast` is not thread-safe (hypothesis parses lambdas while drawing), and
# two workers on this Python end in "AST constructor recursion depth mismatch" errors.
run() {
  local name="$1" token="$2" document="$3"
  shift 3
  local args=(
    --config-file "$CONFIG"
    run "$document"
    --url "$api"
    --header "Authorization: Bearer $token"
    --checks "$CHECKS"
    --max-examples "$EXAMPLES"
    --workers 1
    --request-timeout 15
    --generation-database none
    --report junit
    --report-junit-path "$REPORTS/$name.junit.xml"
  )
  [ -n "${ORDERFLOW_CONTRACT_SEED:-}" ] && args+=(--seed "$ORDERFLOW_CONTRACT_SEED")
  [ -t 1 ] || args=(--no-color "${args[@]}")
  log "$name: schemathesis ${args[*]/$token/<token>} $*"
  local began=$SECONDS status=0
  "$SCHEMATHESIS_VENV/bin/schemathesis" "${args[@]}" "$@" || status=$?
  if [ "$status" -eq 0 ]; then
    summary+=("passed  $name ($((SECONDS - began)) s)")
  else
    summary+=("FAILED  $name ($((SECONDS - began)) s, schemathesis exit $status)")
    failed=1
  fi
}

run order "$ORDERFLOW_CUSTOMER_TOKEN" "$ORDER_DOC" --phases examples,coverage,fuzzing,stateful

courier_doc="$COURIER_DOC"
if delivery_id="$(helper seed-delivery "$ORDER_DOC" "$COURIER_DOC" "$api" "$REPORTS/courier-openapi.json")"; then
  log "courier: starting from delivery $delivery_id (its id is the document's example in $REPORTS/courier-openapi.json)"
  courier_doc="$REPORTS/courier-openapi.json"
else
  log "courier: no delivery could be seeded (see above); every delivery id will be unknown (404)"
fi
run courier "$ORDERFLOW_COURIER_TOKEN" "$courier_doc" --phases examples,coverage,fuzzing,stateful

run support-order "$ORDERFLOW_SUPPORT_TOKEN" "$ORDER_DOC" --include-method GET --phases examples,coverage,fuzzing
run support-courier "$ORDERFLOW_SUPPORT_TOKEN" "$courier_doc" --include-method GET --phases examples,coverage,fuzzing

log "no-token: every operation once without Authorization"
unauthenticated=0
helper unauthenticated "$ORDER_DOC" "$api" || unauthenticated=1
helper unauthenticated "$COURIER_DOC" "$api" || unauthenticated=1
if [ "$unauthenticated" -eq 0 ]; then
  summary+=("passed  no-token")
else
  summary+=("FAILED  no-token")
  failed=1
fi

printf '\n[orderflow] contract tests against %s (schemathesis %s, %s cases per operation and phase):\n' \
  "$api" "$SCHEMATHESIS_VERSION" "$EXAMPLES" >&2
for line in "${summary[@]}"; do printf '  %s\n' "$line" >&2; done
printf '  reports: %s\n' "$REPORTS" >&2
exit "$failed"
