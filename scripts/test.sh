#!/usr/bin/env bash
# Runs orderflow's whole test suite, as CI does: formatting, lints, unit and handler tests, the
# benchmark smoke run, and the integration suites against AWS API emulators on 127.0.0.1 — moto
# server with DynamoDB Local beside it, then the emulator suite again against LocalStack on the
# host, so the code is proven against two independent emulators (docs/local-emulators.md).
#
#   scripts/test.sh                            # moto, then LocalStack (both installed on first use:
#                                              # .venv/, .venv-localstack/ and .localstack/)
#   ORDERFLOW_EMULATORS=moto scripts/test.sh   # moto only: a quicker local run (CI always runs both)
#   ORDERFLOW_SAM_BUILD=0 scripts/test.sh      # without the `sam build` check (CI always runs it)
#
# Then the end-to-end suite through the whole local stack (scripts/e2e.sh), and `sam build`.
#
# Fails when anything fails, LocalStack failing to install or start included (it never skips);
# every emulator it starts is stopped (by PID) on every exit path.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/sam.sh
source "$ORDERFLOW_ROOT/scripts/sam.sh"
cd "$ORDERFLOW_ROOT"

started=$(date +%s)
step() { log "[$(( $(date +%s) - started ))s] $*"; }

# CI builds a fresh clone once: incremental compilation's caches would only be written, never
# read, so CI turns it off (the debug builds: clippy, the test binaries, the local stack's bins).
if [ "${CI:-}" = true ]; then
  export CARGO_INCREMENTAL=0
fi

emulators="${ORDERFLOW_EMULATORS:-moto,localstack}"
with_localstack=false
for emulator in ${emulators//,/ }; do
  case "$emulator" in
    moto) ;;
    localstack) with_localstack=true ;;
    *) die "ORDERFLOW_EMULATORS=$emulators: unknown emulator '$emulator' (moto, localstack)" ;;
  esac
done
case ",$emulators," in
  *,moto,*) ;;
  *) die "ORDERFLOW_EMULATORS=$emulators: moto always runs (every suite runs on it); say moto or moto,localstack" ;;
esac
if [ "${CI:-}" = true ] && ! $with_localstack; then
  die "CI runs the emulator suite on both moto and LocalStack: unset ORDERFLOW_EMULATORS (it is '$emulators')"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The end-to-end suite (`test = false`): `--all-targets` leaves it out even beside `--test e2e`.
cargo clippy --locked -p integration-tests --test e2e -- -D warnings

step "layers: the domain depends on no AWS SDK, tokio or Lambda crate; no function on the testkit"
# docs/architecture.md, "The crates". The domain crate cannot name an SDK type because it has no
# such dependency; this keeps it so. `-e normal`: what ships, not what the tests add.
layer_check() {
  local crate="$1" forbidden="$2" found
  found="$(cargo tree -p "$crate" -e normal --locked --prefix none | sed 's/ .*//' | sort -u | grep -E "$forbidden" || true)"
  [ -z "$found" ] || die "$crate depends on what its layer must not: $(echo $found)"
}
layer_check domain '^(aws-|aws_|tokio|lambda_|hyper|testkit$|adapters$|lambda-glue$)'
layer_check function-registry '^(testkit|aws-smithy-mocks)$'
echo "domain: $(cargo tree -p domain -e normal --locked --depth 1 --prefix none | tail -n +2 | sed 's/ (.*//' | tr '\n' ' ')"

step "template.yaml: cfn-lint and sam validate --lint"
validate_template

if $with_localstack; then
  step "installing LocalStack (first time only)"
  ensure_localstack
fi

step "building the test binaries"
# `--tests --benches`, not `--all-targets`: the binaries without tests (`test = false`) are not
# linked as test executables; the libraries, the integration suites and the benchmarks' smoke
# runs are.
cargo test --workspace --tests --benches --locked --no-run

step "starting the AWS API emulators (DynamoDB Local, moto)"
trap stop_emulators EXIT
start_emulators

results="$(mktemp)"
localstack_results="$(mktemp)"
trap 'stop_emulators; rm -f "$results" "$localstack_results"' EXIT
# "P F": the tests passed and failed in a file of cargo test output.
count() { awk '/^test result:/ { p += $4; f += $6 } END { print p + 0, f + 0 }' "$1"; }
step "cargo test: unit, handler, benchmark smoke and emulator suites"
cargo test --workspace --tests --benches --locked 2>&1 | tee -a "$results"
step "cargo test: doc tests"
cargo test --workspace --doc --locked 2>&1 | tee -a "$results"
stop_emulators

# The end-to-end suite through the whole local stack (moto, the functions as processes of the one bootstrap,
# the bridge), started and stopped by scripts/e2e.sh.
e2e_results="$(mktemp)"
trap 'stop_emulators; rm -f "$results" "$localstack_results" "$e2e_results"' EXIT
step "end-to-end suite through the local stack (scripts/e2e.sh)"
e2e_status=0
bash scripts/e2e.sh 2>&1 | tee -a "$results" "$e2e_results" || e2e_status=$?
read -r e2e_passed e2e_failed < <(count "$e2e_results")
step "end-to-end phase: $e2e_passed passed, $e2e_failed failed"

# The emulator suite and the end-to-end suite again, on LocalStack: the emulator suite's binary was built above, so only the run repeats
# (`--workspace --test emulator`, not `-p integration-tests`: the workspace's feature set, so the
# same binary, not a second build). scripts/with-localstack.sh runs LocalStack and the tests in a
# private network namespace (only loopback) and fails, saying why, if LocalStack cannot start.
# The chaos soak (scripts/soak.sh): a few hundred orders through the whole stack with the proxy's
# faults, every batch delivered twice and some answers dropped after their side effects, fixed seed;
# its audit fails the run on any violation.
soak_status=0
if [ "${ORDERFLOW_SOAK:-1}" = 0 ] && [ "${CI:-}" != true ]; then
  step "chaos soak: LEFT OUT of this run (ORDERFLOW_SOAK=0; CI always runs it)"
else
  step "chaos soak (scripts/soak.sh --orders 300 --faults 5 --duplicates --crashes 2 --seed 1)"
  bash scripts/soak.sh --orders 300 --faults 5 --duplicates --crashes 2 --seed 1 || soak_status=$?
  step "chaos soak: exit $soak_status"
fi

localstack_status=0
if $with_localstack; then
  step "cargo test: the emulator suite on LocalStack (ORDERFLOW_EMULATOR=localstack)"
  phase_started=$SECONDS
  bash scripts/with-localstack.sh cargo test --workspace --test emulator --locked --offline 2>&1 |
    tee -a "$results" "$localstack_results" || localstack_status=$?
  step "end-to-end suite through the local stack on LocalStack (scripts/e2e.sh --localstack)"
  bash scripts/e2e.sh --localstack 2>&1 | tee -a "$results" "$localstack_results" || localstack_status=$?
  read -r ls_passed ls_failed < <(count "$localstack_results")
  step "LocalStack phase: $((SECONDS - phase_started)) s (two starts, the emulator and end-to-end suites, stops): $ls_passed passed, $ls_failed failed"
fi

# The deployment build: `sam build` offline (cargo-lambda from PyPI, the native compiler) with
# cargo-lambda's release optimisations on, exactly the artifact a deployment ships — the one
# bootstrap every function of the template runs (scripts/sam.sh checks each has it; BENCHMARKS.md
# has the times). CI always runs it; ORDERFLOW_SAM_BUILD=0 leaves it out of a local run, saying so.
if [ "${ORDERFLOW_SAM_BUILD:-1}" = 0 ] && [ "${CI:-}" != true ]; then
  step "sam build: LEFT OUT of this run (ORDERFLOW_SAM_BUILD=0; CI always runs it)"
else
  step "sam build (every function of template.yaml)"
  sam_build_check
fi

# One closing line for the whole run; a run that executed no test is a failure.
read -r passed failed < <(count "$results")
step "all suites finished"
printf '%s passed, %s failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ] || die "$failed test(s) failed"
[ "$e2e_status" -eq 0 ] || die "the end-to-end run failed (exit $e2e_status): see its output above"
[ "$e2e_passed" -gt 0 ] || die "the end-to-end run executed no test"
[ "$soak_status" -eq 0 ] || die "the chaos soak failed (exit $soak_status): see its figures above (target/soak-report.txt)"
[ "$localstack_status" -eq 0 ] || die "the LocalStack run failed (exit $localstack_status): see its output above"
if $with_localstack && [ "$ls_passed" -eq 0 ]; then die "the LocalStack run executed no test"; fi
[ "$passed" -gt 0 ] || die "no test was executed"
