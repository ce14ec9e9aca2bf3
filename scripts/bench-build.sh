#!/usr/bin/env bash
# How long the deployment build takes: `sam build` exactly as a deployment (and CI) runs it —
# cargo-lambda's release optimisations on, every function of template.yaml from the one bootstrap —
# from a cold target/ in a fresh clone of this repository's HEAD, then again after a one-line
# change to one function's code (the warm rebuild a developer waits for). Prints both times and the
# bootstrap's size. Figures: BENCHMARKS.md, "Build and CI times".
#
#   scripts/bench-build.sh            # clone into target/bench-build (removed first), build twice
#
# It builds in the clone, so the repository's own target/ is untouched.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/sam.sh
source "$ORDERFLOW_ROOT/scripts/sam.sh"
[ "$#" -eq 0 ] || die "usage: scripts/bench-build.sh"
ensure_sam

clone="$ORDERFLOW_ROOT/target/bench-build"
rm -rf "$clone"
git clone --quiet "$ORDERFLOW_ROOT" "$clone"
# The clone uses this checkout's virtualenv (SAM CLI, cargo-lambda) instead of installing its own.
ln -s "$VENV" "$clone/.venv"

build() {
  (cd "$clone" && ORDERFLOW_ROOT="$clone" sam_build_check) >&2
}

started=$SECONDS
build
cold=$((SECONDS - started))

# A one-line change in one function's code: recompiles that crate and the registry, links again.
echo '// a one-line change (scripts/bench-build.sh)' >>"$clone/functions/alert/src/on_order_placed.rs"
started=$SECONDS
build
warm=$((SECONDS - started))

size="$(stat -c %s "$clone/.aws-sam/build/OrderApiFunction/bootstrap")"
log "sam build, release optimisations on, from a cold target/: ${cold} s"
log "sam build again after a one-line change:                 ${warm} s"
log "the bootstrap every function ships: $size bytes"
rm -rf "$clone"
