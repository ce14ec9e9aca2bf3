#!/usr/bin/env bash
# Shared helpers for orderflow's scripts: the project-local Python virtualenv, the local emulators
# (moto server for SQS, SNS and EventBridge; DynamoDB Local, scripts/dynamodb-local.sh, for DynamoDB
# and its streams), and (scripts/localstack.sh) LocalStack on the host.
# Sourced, not run. Everything binds 127.0.0.1; every server started here is stopped by PID.

ORDERFLOW_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ORDERFLOW_VENV:-$ORDERFLOW_ROOT/.venv}"
MOTO_VERSION="5.2.5"
CFN_LINT_VERSION="1.58.0"

log() { printf '[orderflow] %s\n' "$*" >&2; }
die() { printf '[orderflow] ERROR: %s\n' "$*" >&2; exit 1; }

# Picks a Python >= 3.9 for the virtualenv (moto needs it).
pick_python() {
  for candidate in "${ORDERFLOW_PYTHON:-}" python3.11 python3.12 python3 /root/.pyenv/versions/3.11.7/bin/python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 9) else 1)' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

# Creates .venv (once) and installs moto[server] and cfn-lint into it from PyPI.
ensure_moto() {
  if [ -x "$VENV/bin/moto_server" ] && [ -x "$VENV/bin/cfn-lint" ] &&
    "$VENV/bin/python" -c "import moto, sys; sys.exit(0 if moto.__version__ == '$MOTO_VERSION' else 1)" 2>/dev/null; then
    return 0
  fi
  local python
  python="$(pick_python)" || die "no Python >= 3.9 found; install python3 and python3-venv (Debian) and retry"
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtualenv $VENV with $python"
    "$python" -m venv "$VENV" || die "could not create the virtualenv at $VENV (Debian: apt-get install python3-venv)"
  fi
  log "installing moto[server]==$MOTO_VERSION and cfn-lint==$CFN_LINT_VERSION into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "moto[server]==$MOTO_VERSION" "cfn-lint==$CFN_LINT_VERSION" ||
    die "pip could not install moto[server]==$MOTO_VERSION and cfn-lint==$CFN_LINT_VERSION into $VENV"
}

# Prints a free TCP port on 127.0.0.1.
free_port() {
  "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Starts moto on 127.0.0.1 on a free port, waits until it answers, and exports
# MOTO_PID, AWS_ENDPOINT_URL, dummy credentials and ORDERFLOW_EMULATOR=moto. The caller stops it with
# stop_moto. moto serves SQS, SNS and EventBridge only: start_emulators puts DynamoDB Local beside it.
start_moto() {
  ensure_moto
  local port log_file
  port="$(free_port)"
  log_file="${MOTO_LOG:-$ORDERFLOW_ROOT/target/moto-$port.log}"
  mkdir -p "$(dirname "$log_file")"
  # scripts/moto_server.py: moto's own server without three per-request costs (see its doc).
  "$VENV/bin/python" "$ORDERFLOW_ROOT/scripts/moto_server.py" -H 127.0.0.1 -p "$port" >"$log_file" 2>&1 &
  MOTO_PID=$!
  export MOTO_PID
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  export ORDERFLOW_EMULATOR=moto
  unset AWS_PROFILE AWS_SESSION_TOKEN
  for _ in $(seq 1 100); do
    if "$VENV/bin/python" -c "import urllib.request; urllib.request.urlopen('$AWS_ENDPOINT_URL/moto-api/', timeout=1)" 2>/dev/null; then
      log "moto server ready at $AWS_ENDPOINT_URL (pid $MOTO_PID, log $log_file)"
      return 0
    fi
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then
      tail -20 "$log_file" >&2 || true
      die "moto server exited before it was ready (log: $log_file)"
    fi
    sleep 0.2
  done
  stop_moto
  die "moto server did not answer on $AWS_ENDPOINT_URL within 20 s (log: $log_file)"
}

stop_moto() {
  if [ -n "${MOTO_PID:-}" ] && kill -0 "$MOTO_PID" 2>/dev/null; then
    kill "$MOTO_PID" 2>/dev/null || true
    for _ in $(seq 1 25); do kill -0 "$MOTO_PID" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
    log "moto server (pid $MOTO_PID) stopped"
  fi
  MOTO_PID=""
}

# The default emulators: DynamoDB Local for DynamoDB and DynamoDB Streams (AWS_ENDPOINT_URL_DYNAMODB,
# AWS_ENDPOINT_URL_DYNAMODB_STREAMS), moto for the rest (AWS_ENDPOINT_URL). moto's own DynamoDB is
# never used: a cancelled transaction detaches its streams, and its transactions slow down with the
# table's size (docs/local-emulators.md). Stop both with stop_emulators.
start_emulators() {
  start_dynamodb_local
  start_moto
  export AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER="$AWS_ENDPOINT_URL"
}

# Cognito for the LocalStack run: LocalStack's community edition has no Cognito, so moto serves the
# user pool beside it (AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER); AWS_ENDPOINT_URL stays
# LocalStack's. Stopped with stop_emulators (stop_moto).
start_cognito_beside_localstack() {
  local localstack_endpoint="$AWS_ENDPOINT_URL"
  start_moto
  export AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER="$AWS_ENDPOINT_URL"
  export AWS_ENDPOINT_URL="$localstack_endpoint" ORDERFLOW_EMULATOR=localstack
  log "Cognito (moto) at $AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER beside LocalStack"
}

stop_emulators() {
  stop_moto
  stop_dynamodb_local
}

# DynamoDB Local: ensure_dynamodb_local, start_dynamodb_local, ...
# shellcheck source=scripts/dynamodb-local.sh
source "$ORDERFLOW_ROOT/scripts/dynamodb-local.sh"

# LocalStack on the host (the second emulator): ensure_localstack, start_localstack, ...
# shellcheck source=scripts/localstack.sh
source "$ORDERFLOW_ROOT/scripts/localstack.sh"
