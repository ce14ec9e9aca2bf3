#!/usr/bin/env bash
# Runs orderflow's whole test suite, as CI does: formatting, lints, unit and handler tests, the
# benchmark smoke run, and the integration suites against an AWS API emulator on 127.0.0.1.
#
#   scripts/test.sh            # moto server (installed into .venv from PyPI on first use)
#
# Fails when anything fails; the emulator it starts is stopped (by PID) on every exit path.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ORDERFLOW_ROOT"

started=$(date +%s)
step() { log "[$(( $(date +%s) - started ))s] $*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cfn-lint template.yaml"
ensure_moto
"$VENV/bin/cfn-lint" template.yaml

step "building the test binaries"
cargo test --workspace --all-targets --locked --no-run

step "starting the AWS API emulator"
trap stop_moto EXIT
start_moto

results="$(mktemp)"
trap 'stop_moto; rm -f "$results"' EXIT
step "cargo test: unit, handler, benchmark smoke and emulator suites"
cargo test --workspace --all-targets --locked 2>&1 | tee -a "$results"
step "cargo test: doc tests"
cargo test --workspace --doc --locked 2>&1 | tee -a "$results"

# One closing line for the whole run; a run that executed no test is a failure.
read -r passed failed < <(awk '/^test result:/ { p += $4; f += $6 } END { print p + 0, f + 0 }' "$results")
step "all suites finished"
printf '%s passed, %s failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ] || die "$failed test(s) failed"
[ "$passed" -gt 0 ] || die "no test was executed"
