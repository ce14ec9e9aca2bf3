#!/usr/bin/env bash
# SAM tooling for orderflow's scripts (sourced after lib.sh): aws-sam-cli, aws-sam-cli-local and
# cargo-lambda in the project virtualenv, and the template checks CI runs.

SAM_CLI_VERSION="1.170.0"
CARGO_LAMBDA_VERSION="1.9.2"

# Installs the SAM CLI, samlocal and cargo-lambda into .venv (once).
ensure_sam() {
  ensure_moto
  if [ -x "$VENV/bin/sam" ] && [ -x "$VENV/bin/cargo-lambda" ] && [ -x "$VENV/bin/samlocal" ]; then
    return 0
  fi
  log "installing aws-sam-cli==$SAM_CLI_VERSION, aws-sam-cli-local and cargo-lambda==$CARGO_LAMBDA_VERSION into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "aws-sam-cli==$SAM_CLI_VERSION" aws-sam-cli-local "cargo-lambda==$CARGO_LAMBDA_VERSION" ||
    die "pip could not install the SAM CLI and cargo-lambda into $VENV"
}

# cfn-lint and `sam validate --lint` on template.yaml (offline, a few seconds).
validate_template() {
  ensure_sam
  "$VENV/bin/cfn-lint" template.yaml || die "cfn-lint found problems in template.yaml"
  SAM_CLI_TELEMETRY=0 AWS_REGION="${AWS_REGION:-us-east-1}" "$VENV/bin/sam" validate --lint --region "${AWS_REGION:-us-east-1}" ||
    die "sam validate --lint failed"
}

# `sam build` offline, exactly as a deployment builds: cargo-lambda's release optimisations on
# (thin LTO, one codegen unit, panic=abort, stripped), in the source tree (build_in_source in
# samconfig.toml), with the native compiler (provided.al2023 on x86_64). Every function of
# template.yaml ships the one bootstrap (binary orderflow-lambda; its `Handler` picks the function):
# the functions share one CodeUri and one Metadata, so SAM builds it once and copies the artifact
# into each function's directory. Checks that every function has its artifact and prints how long
# the build took and how large the bootstrap is.
sam_build_check() {
  ensure_sam
  local started=$SECONDS
  SAM_CLI_TELEMETRY=0 CARGO_LAMBDA_COMPILER=cargo PATH="$VENV/bin:$PATH" \
    "$VENV/bin/sam" build || die "sam build failed"
  local built functions size
  built="$(find "$ORDERFLOW_ROOT/.aws-sam/build" -mindepth 2 -maxdepth 2 -name bootstrap -type f | wc -l)"
  functions="$(grep -c 'BuildMethod: rust-cargolambda' "$ORDERFLOW_ROOT/template.yaml")"
  size="$(find "$ORDERFLOW_ROOT/.aws-sam/build" -mindepth 2 -maxdepth 2 -name bootstrap -type f -printf '%s\n' | sort -u)"
  log "sam build took $((SECONDS - started)) s: $built function artifacts in .aws-sam/build, bootstrap $size bytes"
  [ "$built" -eq "$functions" ] ||
    die "sam build produced $built bootstrap binaries, template.yaml has $functions functions"
  [ "$(printf '%s\n' "$size" | wc -l)" -eq 1 ] ||
    die "the functions' bootstraps differ in size ($size): they should be one build, copied"
}
