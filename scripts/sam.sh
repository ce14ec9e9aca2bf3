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

# `sam build` offline, every function from the shared target/ (build_in_source in samconfig.toml),
# with the native compiler (provided.al2023 on x86_64). Prints how long it took.
sam_build() {
  ensure_sam
  local started=$SECONDS
  # One cargo run builds every function binary (both cores busy, each crate compiled once); the
  # per-function builds sam then runs find them fresh and only copy them.
  CARGO_LAMBDA_COMPILER=cargo PATH="$VENV/bin:$PATH" "$VENV/bin/cargo-lambda" lambda build --release \
    -p order-api -p stream-pipeline -p delivery -p alert ||
    die "cargo lambda build failed"
  log "cargo lambda build --release took $((SECONDS - started)) s"
  SAM_CLI_TELEMETRY=0 CARGO_LAMBDA_COMPILER=cargo PATH="$VENV/bin:$PATH" "$VENV/bin/sam" build ||
    die "sam build failed"
  log "sam build took $((SECONDS - started)) s in all"
}
