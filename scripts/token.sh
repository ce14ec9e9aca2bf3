#!/usr/bin/env bash
# Prints an access token for a user of the running local stack (scripts/run.sh), creating the user
# in the group if it is new, so that a person can call the API with curl:
#
#   TOKEN=$(scripts/token.sh alice)                 # a customer
#   TOKEN=$(scripts/token.sh courier-1 couriers)    # a courier (or: support)
#   curl -H "Authorization: Bearer $TOKEN" "$API/customers/me/orders"
#
# Reads the stack's environment from target/local.env (ORDERFLOW_ENV_FILE to change it; the
# stage is ORDERFLOW_STAGE, default local). The token goes to stdout, nothing else does.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/local.sh
source "$ORDERFLOW_ROOT/scripts/local.sh"
cd "$ORDERFLOW_ROOT"

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: scripts/token.sh USER [customers|couriers|support]"
env_file="${ORDERFLOW_ENV_FILE:-target/local.env}"
[ -f "$env_file" ] || die "$env_file is missing: start the stack with scripts/run.sh first"
set -a
# shellcheck source=/dev/null
. "$env_file"
set +a
export ORDERFLOW_STAGE="${ORDERFLOW_STAGE:-local}"
exec "$(stack_bin_dir)/orderflow" token --user "$1" --group "${2:-customers}"
