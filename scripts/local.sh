#!/usr/bin/env bash
# Helpers for running the whole system locally (scripts/run.sh), sourced after lib.sh and sam.sh:
# the functions (orderflow-bridge functions) in their own session, waiting for servers and files,
# and stopping a process with every one of its descendants — by PID.

# Waits until something accepts connections on 127.0.0.1:$1, for at most $2 seconds; fails early
# if the process $3 (optional) exits. (A bare connection: nothing is invoked, nothing is logged.)
wait_for_port() {
  local port="$1" pid="${3:-}" deadline=$((SECONDS + $2))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      return 1
    fi
    sleep 0.2
  done
  log "nothing listened on 127.0.0.1:$port within $2 s"
  return 1
}

# Waits until the file $1 exists and is not empty, for at most $2 seconds; fails early if the
# process $3 exits.
wait_for_file() {
  local file="$1" pid="$3" deadline=$((SECONDS + $2))
  while [ "$SECONDS" -lt "$deadline" ]; do
    [ -s "$file" ] && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# Prints the PIDs of every descendant of process $1 (children first, then theirs).
descendants() {
  local child
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    echo "$child"
    descendants "$child"
  done
}

# Stops process $1 and all its descendants: TERM to each (and to its process group when it leads
# one), up to $2 seconds (default 10) of grace, then KILL. Everything by PID.
stop_tree() {
  local pid="$1" grace="${2:-10}" pids
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  pids="$pid $(descendants "$pid")"
  if [ "$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')" = "$pid" ]; then
    kill -TERM -- "-$pid" 2>/dev/null || true
  fi
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  local deadline=$((SECONDS + grace)) alive
  while [ "$SECONDS" -lt "$deadline" ]; do
    alive=""
    for p in $pids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
    [ -z "$alive" ] && break
    sleep 0.2
  done
  for p in $pids; do kill -9 "$p" 2>/dev/null || true; done
  wait "$pid" 2>/dev/null || true
}

# The cargo profile the local stack's binaries are built with (ORDERFLOW_PROFILE: dev, the
# default, or `local`, the optimised profile of Cargo.toml that scripts/bench-local.sh uses), and
# the folder under target/ that holds them.
stack_profile() { printf '%s\n' "${ORDERFLOW_PROFILE:-dev}"; }
stack_bin_dir() {
  local profile
  profile="$(stack_profile)"
  [ "$profile" = dev ] && profile=debug
  printf '%s\n' "$ORDERFLOW_ROOT/target/$profile"
}

# Builds every binary of the workspace with the stack's profile.
build_stack() {
  cargo build --locked --quiet --workspace --bins --profile "$(stack_profile)"
}

# Starts the functions (orderflow-bridge functions: every function of template.yaml as processes of
# the one bootstrap, target/<profile>/orderflow-lambda, with the env file $1, behind the Lambda
# Invoke API on 127.0.0.1) in a session of its own, logging to $LAMBDA_LOG; writes the API's URL
# to $2 once every instance is initialised. Exports LAMBDA_PID. Stop it with stop_tree.
start_functions() {
  local env_file="$1" ready_file="$2"
  LAMBDA_LOG="${LAMBDA_LOG:-$ORDERFLOW_ROOT/target/functions.log}"
  rm -f "$ready_file"
  setsid "$(stack_bin_dir)/orderflow-bridge" functions --template "$ORDERFLOW_ROOT/template.yaml" \
    --stage "$ORDERFLOW_STAGE" --bootstrap "$(stack_bin_dir)/orderflow-lambda" --env-file "$env_file" \
    --function-instances "${ORDERFLOW_FUNCTION_INSTANCES:-1}" --listen-port 0 \
    --ready-file "$ready_file" >"$LAMBDA_LOG" 2>&1 </dev/null &
  LAMBDA_PID=$!
  export LAMBDA_PID LAMBDA_LOG
}

# Brings the whole stack up on 127.0.0.1 from template.yaml, as scripts/run.sh and scripts/e2e.sh
# use it: the emulators (DynamoDB Local and moto), the resources (orderflow-bridge setup, stage $1,
# env file $2), the functions (start_functions: the deployed bootstrap, one process per instance)
# and the bridge. Expects the workspace's binaries built (build_stack). ORDERFLOW_PROFILE picks
# their profile; ORDERFLOW_FUNCTION_INSTANCES (default 1) how many instances of each function run
# at once, and so how many batches of one queue the bridge keeps in flight. The
# emulators are started here (start_emulators), unless ORDERFLOW_EMULATOR=localstack says
# LocalStack runs at AWS_ENDPOINT_URL (scripts/with-localstack.sh; moto then serves only Cognito
# beside it). Loads the sample catalogue. Exports ORDERFLOW_STAGE, API (the HTTP API's base URL), BRIDGE_PID, BRIDGE_LOG, LAMBDA_PID, LAMBDA_LOG and
# the emulators' variables (start_emulators). Logs: target/bridge-STAGE.log,
# target/functions-STAGE.log, target/moto-PORT.log, target/dynamodb-local-PID.log. stop_stack stops everything it started, by PID.
start_stack() {
  local stage="$1" env_file="$2" functions_url ready_file functions_ready
  ready_file="$ORDERFLOW_ROOT/target/bridge-$stage.ready"
  functions_ready="$ORDERFLOW_ROOT/target/functions-$stage.ready"
  BRIDGE_LOG="${BRIDGE_LOG:-$ORDERFLOW_ROOT/target/bridge-$stage.log}"
  LAMBDA_LOG="${LAMBDA_LOG:-$ORDERFLOW_ROOT/target/functions-$stage.log}"
  if [ "${ORDERFLOW_EMULATOR:-moto}" = localstack ]; then
    # scripts/with-localstack.sh started LocalStack and set AWS_ENDPOINT_URL (run.sh --localstack).
    [ -n "${AWS_ENDPOINT_URL:-}" ] || die "ORDERFLOW_EMULATOR=localstack but AWS_ENDPOINT_URL is not set: use scripts/run.sh --localstack"
    log "AWS APIs: LocalStack at $AWS_ENDPOINT_URL"
    start_cognito_beside_localstack
  else
    start_emulators
  fi
  export ORDERFLOW_STAGE="$stage"

  log "creating the resources of template.yaml (stage $stage)"
  "$(stack_bin_dir)/orderflow-bridge" setup --template "$ORDERFLOW_ROOT/template.yaml" \
    --stage "$stage" --env-file "$env_file" >&2 || die "orderflow-bridge setup failed"
  log "loading the sample catalogue (catalogue/sample.json)"
  (set -a && . "$env_file" && set +a &&
    "$(stack_bin_dir)/orderflow" catalogue load "$ORDERFLOW_ROOT/catalogue/sample.json") >&2 ||
    die "loading the sample catalogue failed"

  local functions_env="$env_file"
  if [ -n "${ORDERFLOW_PROXY_ARGS:-}" ]; then
    # A soak: the functions and the bridge reach the emulators through the fault-injecting proxy.
    start_fault_proxy "$stage"
    functions_env="${env_file%.env}.proxied.env"
    proxied_env_file "$env_file" >"$functions_env"
  fi

  start_functions "$functions_env" "$functions_ready"
  if ! wait_for_file "$functions_ready" 90 "$LAMBDA_PID"; then
    show_log "$LAMBDA_LOG"
    die "the functions did not start"
  fi
  functions_url="$(head -1 "$functions_ready")"
  log "functions behind the Lambda Invoke API at $functions_url (pid $LAMBDA_PID, log $LAMBDA_LOG)"

  rm -f "$ready_file"
  # shellcheck disable=SC2086 # ORDERFLOW_BRIDGE_ARGS: a soak's fault options, split on spaces
  (
    if [ -n "${PROXY_URL:-}" ]; then
      export AWS_ENDPOINT_URL="$PROXY_URL" AWS_ENDPOINT_URL_DYNAMODB="$PROXY_URL" \
        AWS_ENDPOINT_URL_DYNAMODB_STREAMS="$PROXY_URL" AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER="$PROXY_URL"
    fi
    exec "$(stack_bin_dir)/orderflow-bridge" run --template "$ORDERFLOW_ROOT/template.yaml" \
      --stage "$stage" --functions "$functions_url" --api-port 0 \
      --function-instances "${ORDERFLOW_FUNCTION_INSTANCES:-1}" ${ORDERFLOW_BRIDGE_ARGS:-} \
      --ready-file "$ready_file" >/dev/null 2>"$BRIDGE_LOG"
  ) &
  BRIDGE_PID=$!
  export BRIDGE_PID BRIDGE_LOG
  if ! wait_for_file "$ready_file" 60 "$BRIDGE_PID"; then
    show_log "$BRIDGE_LOG"
    die "the bridge did not get ready"
  fi
  API="$(head -1 "$ready_file")"
  export API
}

# Starts the fault-injecting proxy (orderflow-chaos) on 127.0.0.1 in front of the emulators the
# environment names, with the options in ORDERFLOW_PROXY_ARGS (seed, shares of faults); journal
# target/chaos-STAGE.jsonl, log target/chaos-STAGE.log. Exports PROXY_PID, PROXY_URL, PROXY_JOURNAL.
start_fault_proxy() {
  local stage="$1" ready_file upstreams=()
  ready_file="$ORDERFLOW_ROOT/target/chaos-$stage.ready"
  PROXY_JOURNAL="$ORDERFLOW_ROOT/target/chaos-$stage.jsonl"
  PROXY_LOG="$ORDERFLOW_ROOT/target/chaos-$stage.log"
  rm -f "$ready_file" "$PROXY_JOURNAL"
  [ -n "${AWS_ENDPOINT_URL_DYNAMODB:-}" ] && upstreams+=(--upstream-for "dynamodb=$AWS_ENDPOINT_URL_DYNAMODB")
  [ -n "${AWS_ENDPOINT_URL_DYNAMODB_STREAMS:-}" ] && upstreams+=(--upstream-for "dynamodbstreams=$AWS_ENDPOINT_URL_DYNAMODB_STREAMS")
  [ -n "${AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER:-}" ] && upstreams+=(--upstream-for "cognito-idp=$AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER")
  # shellcheck disable=SC2086 # ORDERFLOW_PROXY_ARGS is split on spaces
  "$(stack_bin_dir)/orderflow-chaos" --upstream "$AWS_ENDPOINT_URL" "${upstreams[@]}" \
    --listen-port 0 --ready-file "$ready_file" --journal "$PROXY_JOURNAL" $ORDERFLOW_PROXY_ARGS \
    >"$PROXY_LOG" 2>&1 &
  PROXY_PID=$!
  if ! wait_for_file "$ready_file" 30 "$PROXY_PID"; then
    show_log "$PROXY_LOG"
    die "the fault-injecting proxy did not start"
  fi
  PROXY_URL="$(head -1 "$ready_file")"
  export PROXY_PID PROXY_URL PROXY_JOURNAL PROXY_LOG
  log "fault-injecting proxy at $PROXY_URL (pid $PROXY_PID): $ORDERFLOW_PROXY_ARGS"
}

# Prints the env file $1 with every emulator endpoint replaced by the proxy's.
proxied_env_file() {
  sed -E "s#^(AWS_ENDPOINT_URL[A-Z_]*)=.*#\1=$PROXY_URL#" "$1"
}

# Stops what start_stack started: the bridge (it finishes its in-flight batches), the functions,
# the proxy, the emulators. Safe to call more than once.
stop_stack() {
  if [ -n "${BRIDGE_PID:-}" ]; then
    stop_tree "$BRIDGE_PID" 20
    log "bridge (pid $BRIDGE_PID) stopped"
    BRIDGE_PID=""
  fi
  if [ -n "${LAMBDA_PID:-}" ]; then
    stop_tree "$LAMBDA_PID" 10
    log "the functions (pid $LAMBDA_PID) stopped"
    LAMBDA_PID=""
  fi
  if [ -n "${PROXY_PID:-}" ]; then
    stop_tree "$PROXY_PID" 10
    log "fault-injecting proxy (pid $PROXY_PID) stopped"
    PROXY_PID=""
  fi
  stop_emulators
}

# Makes the calling script stop the stack on every exit path (Ctrl-C and TERM included), after
# showing the end of the bridge's log when it fails (not when it is stopped).
stop_stack_on_exit() {
  trap on_stack_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

on_stack_exit() {
  local status=$?
  trap - EXIT INT TERM
  if [ "$status" -ne 0 ] && [ "$status" -ne 130 ] && [ "$status" -ne 143 ] && [ -n "${BRIDGE_PID:-}" ]; then
    show_log "$BRIDGE_LOG"
    log "function logs: $LAMBDA_LOG"
  fi
  stop_stack
  exit "$status"
}

# Shows the end of a log when something fails.
show_log() {
  log "last lines of $1:"
  tail -25 "$1" >&2 || true
}
