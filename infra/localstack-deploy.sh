#!/usr/bin/env bash
# Brings LocalStack up in Docker and deploys the same template.yaml to it (sam build + samlocal).
#
#   LOCALSTACK_AUTH_TOKEN=... infra/localstack-deploy.sh          # up + build + deploy
#   infra/localstack-deploy.sh down                               # stop it
#
# Needs Docker with Compose. Installs aws-sam-cli, aws-sam-cli-local and cargo-lambda into the
# project's virtualenv (.venv) on first use.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
# shellcheck source=scripts/sam.sh
source "$ORDERFLOW_ROOT/scripts/sam.sh"
cd "$ORDERFLOW_ROOT"

compose() { docker compose -f infra/docker-compose.yml "$@"; }

if [ "${1:-}" = "down" ]; then
  compose down
  exit 0
fi

command -v docker >/dev/null || die "docker is not installed; without Docker use scripts/run.sh (moto) or ORDERFLOW_EMULATOR=localstack scripts/test.sh (LocalStack on the host)"
docker info >/dev/null 2>&1 || die "no Docker engine answers; start it, or use scripts/run.sh"
[ -n "${LOCALSTACK_AUTH_TOKEN:-}" ] || die "LOCALSTACK_AUTH_TOKEN is not set (current LocalStack images require an account token)"

ensure_sam
log "starting LocalStack (docker compose)"
compose up -d --wait

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:4566
log "sam build (cargo-lambda)"
CARGO_LAMBDA_COMPILER="${CARGO_LAMBDA_COMPILER:-cargo}" PATH="$VENV/bin:$PATH" "$VENV/bin/sam" build
log "deploying template.yaml to LocalStack (samlocal)"
PATH="$VENV/bin:$PATH" "$VENV/bin/samlocal" deploy --no-confirm-changeset --no-fail-on-empty-changeset \
  --stack-name orderflow-local --parameter-overrides Stage=local --capabilities CAPABILITY_IAM --resolve-s3
PATH="$VENV/bin:$PATH" "$VENV/bin/samlocal" list stack-outputs --stack-name orderflow-local
log "deployed; stop it with: infra/localstack-deploy.sh down"
