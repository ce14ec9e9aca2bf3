#!/usr/bin/env bash
# Cold starts of the functions against the floor: builds the hello-world function
# (tools/coldstart-hello) and the functions the way they ship (`cargo lambda build --release`:
# cargo-lambda's release optimisations), starts moto on 127.0.0.1 with the tables, the bus and
# the poison queue the measured functions use, and runs orderflow-coldstart (tools/src/coldstart)
# over them: spawn → first GET .../invocation/next (init), one real event → its response (first
# invoke), peak RSS at both, binary size, init ÷ the hello-world's. Figures: BENCHMARKS.md.
#
#   scripts/coldstart.sh [--runs N] [--json FILE] [--no-build | --binaries DIR] [--tls] [-- HARNESS_ARGS...]
#
#   --runs N      runs per function, interleaved across them (default 21, at least 20)
#   --json FILE   also write the figures and every run's as JSON
#   --no-build    measure the binaries already under $CARGO_TARGET_DIR/lambda
#   --binaries DIR  measure DIR/<binary>/bootstrap (a copy of an earlier build: a lever's A/B)
#   --tls         the functions call moto through a TLS front (scripts/tls_proxy.py, a certificate
#                 for 127.0.0.1 from a throwaway CA added to the system's roots through SSL_CERT_FILE
#                 and SSL_CERT_DIR), so the first invoke pays what it pays on AWS: the root store, the
#                 handshake, its random numbers
#   HARNESS_ARGS  passed on to orderflow-coldstart (e.g. --target NAME@VARIANT=BINARY:EVENT to
#                 put another build of a function beside this one, --env-for NAME:K=V)
#
# moto serves every AWS API here, DynamoDB included: the first invoke's calls are the same
# requests either way, and moto starts in a second where DynamoDB Local's JVM takes several (the
# stack's DynamoDB Local matters for transactions and streams, which no first invoke here needs).
# Every server it starts listens on 127.0.0.1 and is stopped by PID on exit.
# start_moto exports AWS_ENDPOINT_URL in this shell (shellcheck takes it for a subshell):
# shellcheck disable=SC2031
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/sam.sh
source "$ORDERFLOW_ROOT/scripts/sam.sh"
# shellcheck source=scripts/local.sh
source "$ORDERFLOW_ROOT/scripts/local.sh"
cd "$ORDERFLOW_ROOT"

# ---- What is measured -------------------------------------------------------------------------
# The binary every function runs: `orderflow-lambda`, the one bootstrap that picks its function
# from _HANDLER (the harness sets _HANDLER and AWS_LAMBDA_FUNCTION_NAME to the function's name);
# empty = a binary per function, named as the function (how they shipped before the registry).
FUNCTION_BINARY="orderflow-lambda"
# Each function measured and an event of its trigger (tools/src/coldstart/events/): every function
# of template.yaml. The queue functions all get an SQS batch of one `OrderPlaced`; those that serve
# another event type answer it as their convention says (a batch item failure, no AWS call).
FUNCTIONS=(
  "order-api:apigw-get-order.json"
  "courier-api:apigw-get-order.json"
  "event-publisher:stream-insert.json"
  "projector:stream-insert.json"
  "delivery-on-order-placed:sqs-order-placed.json"
  "delivery-on-order-cancelled:sqs-order-placed.json"
  "order-on-delivery-dispatched:sqs-order-placed.json"
  "order-on-delivery-completed:sqs-order-placed.json"
  "order-on-delivery-failed:sqs-order-placed.json"
  "alert-on-order-placed:sqs-order-placed.json"
  "alert-on-delivery-scheduled:sqs-order-placed.json"
  "alert-on-delivery-delayed:sqs-order-placed.json"
  "alert-on-delivery-completed:sqs-order-placed.json"
  "alert-on-order-cancelled:sqs-order-placed.json"
  "alert-on-delivery-cancellation-refused:sqs-order-placed.json"
  "coupon-on-delivery-delayed:sqs-order-placed.json"
  "delivery-overdue-check:schedule.json"
)
BASELINE_BINARY="hello-world"
# ------------------------------------------------------------------------------------------------

EVENTS_DIR="$ORDERFLOW_ROOT/tools/src/coldstart/events"
TARGET_DIR="${CARGO_TARGET_DIR:-$ORDERFLOW_ROOT/target}"
WORK_DIR="$TARGET_DIR/coldstart"
runs=21 json="" build=1 tls=0 extra=()
binaries="$TARGET_DIR/lambda"
while [ "$#" -gt 0 ]; do
  case "$1" in
    --runs) runs="${2:?--runs needs a value}"; shift 2 ;;
    --json) json="${2:?--json needs a value}"; shift 2 ;;
    --no-build) build=0; shift ;;
    --binaries) build=0 binaries="${2:?--binaries needs a directory}"; shift 2 ;;
    --tls) tls=1; shift ;;
    --) shift; extra=("$@"); break ;;
    *) die "usage: scripts/coldstart.sh [--runs N] [--json FILE] [--no-build | --binaries DIR] [--tls] [-- HARNESS_ARGS...]" ;;
  esac
done

binary_of() { printf '%s\n' "${FUNCTION_BINARY:-$1}"; }
bootstrap_of() { printf '%s\n' "$binaries/$1/bootstrap"; }

bins=("$BASELINE_BINARY")
for entry in "${FUNCTIONS[@]}"; do
  bin="$(binary_of "${entry%%:*}")"
  [[ " ${bins[*]} " == *" $bin "* ]] || bins+=("$bin")
done

if [ "$build" = 1 ]; then
  ensure_sam
  bin_flags=()
  for bin in "${bins[@]}"; do bin_flags+=(--bin "$bin"); done
  log "building ${bins[*]} with cargo lambda build --release"
  # The native toolchain (no zig): the binaries run on this machine.
  CARGO_LAMBDA_COMPILER="${CARGO_LAMBDA_COMPILER:-cargo}" \
    "$VENV/bin/cargo-lambda" lambda build --release "${bin_flags[@]}"
fi
for bin in "${bins[@]}"; do
  [ -x "$(bootstrap_of "$bin")" ] || die "$(bootstrap_of "$bin") is missing: build it (run without --no-build)"
done
cargo build --locked --quiet -p tools --bin orderflow --bin orderflow-coldstart
orderflow="$TARGET_DIR/debug/orderflow"
harness="$TARGET_DIR/debug/orderflow-coldstart"

TLS_PID=""
stop_all() {
  if [ -n "$TLS_PID" ]; then
    kill "$TLS_PID" 2>/dev/null || true
    wait "$TLS_PID" 2>/dev/null || true
  fi
  stop_emulators
}
trap stop_all EXIT
export MOTO_LOG="$WORK_DIR/moto.log"
start_moto
mkdir -p "$WORK_DIR"
export EVENTS_TABLE=orderflow-coldstart-events IDEMPOTENCY_TABLE=orderflow-coldstart-idempotency \
  VIEWS_TABLE=orderflow-coldstart-views CATALOGUE_TABLE=orderflow-coldstart-catalogue
"$orderflow" create-tables
poison_queue_url="$("$VENV/bin/python" -c '
import boto3, os
sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
print(sqs.create_queue(QueueName="orderflow-coldstart-poison")["QueueUrl"])')"
topic_arn="$("$VENV/bin/python" -c '
import boto3, os
sns = boto3.client("sns", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
print(sns.create_topic(Name="orderflow-coldstart-notifications")["TopicArn"])')"

endpoint="$AWS_ENDPOINT_URL" tls_env=""
if [ "$tls" = 1 ]; then
  # A throwaway CA (the root the functions trust) and the server's certificate it signs: rustls
  # refuses a self-signed CA certificate as the server's own.
  ca="$WORK_DIR/tls-ca.pem" ca_key="$WORK_DIR/tls-ca-key.pem"
  cert="$WORK_DIR/tls-cert.pem" key="$WORK_DIR/tls-key.pem" roots="$WORK_DIR/roots.pem"
  {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
      -subj "/CN=orderflow coldstart CA" -keyout "$ca_key" -out "$ca" &&
      openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
        -keyout "$key" -out "$WORK_DIR/tls.csr" &&
      openssl x509 -req -in "$WORK_DIR/tls.csr" -CA "$ca" -CAkey "$ca_key" -CAcreateserial -days 2 \
        -extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n') \
        -out "$cert"
  } 2>/dev/null || die "openssl could not make the TLS front's certificates"
  system_dir="$(openssl version -d | sed -E 's/^OPENSSLDIR: "(.*)"$/\1/')/certs"
  system_file=""
  for candidate in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
    if [ -f "$candidate" ]; then system_file="$candidate"; break; fi
  done
  [ -n "$system_file" ] || die "no system root certificate bundle found"
  cat "$system_file" "$ca" >"$roots"
  tls_port="$(free_port)"
  "$VENV/bin/python" "$ORDERFLOW_ROOT/scripts/tls_proxy.py" --port "$tls_port" \
    --upstream-port "${AWS_ENDPOINT_URL##*:}" --cert "$cert" --key "$key" >"$WORK_DIR/tls-proxy.log" 2>&1 &
  TLS_PID=$!
  wait_for_port "$tls_port" 10 "$TLS_PID" || die "the TLS front did not start (log: $WORK_DIR/tls-proxy.log)"
  endpoint="https://127.0.0.1:$tls_port"
  # What the SDK's rustls-native-certs loads without these: the system bundle and its directory.
  tls_env="SSL_CERT_FILE=$roots"$'\n'"SSL_CERT_DIR=$system_dir"
  log "TLS front on $endpoint (pid $TLS_PID) before moto; roots: $system_file + its CA, $system_dir"
fi

# What template.yaml gives the measured functions (functions/*/src/config.rs), pointed at moto.
env_file="$WORK_DIR/functions.env"
cat >"$env_file" <<EOF
AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
AWS_SESSION_TOKEN=coldstart
AWS_REGION=$AWS_REGION
AWS_ENDPOINT_URL=$endpoint
EVENTS_TABLE=$EVENTS_TABLE
IDEMPOTENCY_TABLE=$IDEMPOTENCY_TABLE
VIEWS_TABLE=$VIEWS_TABLE
CATALOGUE_TABLE=$CATALOGUE_TABLE
EVENT_BUS_NAME=default
PUBLISHER_POISON_QUEUE_URL=$poison_queue_url
PROJECTOR_POISON_QUEUE_URL=$poison_queue_url
TOPIC_ARN=$topic_arn
$tls_env
EOF

args=(--runs "$runs" --env-file "$env_file"
  --baseline "hello-world=$(bootstrap_of "$BASELINE_BINARY")")
for entry in "${FUNCTIONS[@]}"; do
  name="${entry%%:*}"
  args+=(--target "$name=$(bootstrap_of "$(binary_of "$name")"):$EVENTS_DIR/${entry#*:}")
done
[ -z "$json" ] || args+=(--json "$json")
"$harness" "${args[@]}" "${extra[@]}"
