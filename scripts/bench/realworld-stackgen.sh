#!/usr/bin/env bash
# Validate stackgen's generated Swarm stack files against the published
# references in ../shared/realworld/schemas: the compose-spec schema
# (compose-spec.json) and docker/cli's compose v3.8 schema
# (docker-cli-config_schema_v3.8.json), read with PyYAML and checked with
# jsonschema from the validator venv.
#
# Inputs: examples/shop (environments dev and prod) and the stress stack
# stackgen/tests/data/stress.yaml (a 63-character service name, `$` in values,
# control characters), each for the branches below.
# Prints one line per invalid output, then
#   stackgen: outputs=N valid=N invalid=N
# and exits 1 when an output is invalid.
#
# Environment: REALWORLD (default ../shared/realworld beside the checkout),
# MICROPLATFORM_VENV (default ~/.cache/microplatform/venv, made by
# scripts/test.sh), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."

REALWORLD="${REALWORLD:-../shared/realworld}"
VENV="${MICROPLATFORM_VENV:-$HOME/.cache/microplatform/venv}"
SCHEMAS=("$REALWORLD/schemas/compose-spec.json" "$REALWORLD/schemas/docker-cli-config_schema_v3.8.json")
for s in "${SCHEMAS[@]}"; do
  [ -f "$s" ] || { echo "realworld-stackgen: $s is missing (set REALWORLD to the realworld corpus)" >&2; exit 2; }
done
"$VENV/bin/python" -c 'import jsonschema, yaml' 2>/dev/null ||
  { echo "realworld-stackgen: no jsonschema and pyyaml in $VENV (run scripts/test.sh, or $VENV/bin/pip install jsonschema pyyaml)" >&2; exit 2; }

TARGET="${CARGO_TARGET_DIR:-target}"
cargo build --release -q -p stackgen >&2
BIN="$TARGET/release/stackgen"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

BRANCHES=(main feature-x "fix/JIRA-123" "feature/a-branch-name-long-enough-to-fill-every-alias-and-more-of-it")
n=0
render() { # STACK ENV
  local b
  for b in "${BRANCHES[@]}"; do
    n=$((n + 1))
    "$BIN" --stack "$1" compose --env "$2" --branch "$b" --tag v1 -o "$WORK/$n.compose.yml"
  done
}
render examples/shop/stack.yaml dev
render examples/shop/stack.yaml prod
render stackgen/tests/data/stress.yaml dev

args=()
for s in "${SCHEMAS[@]}"; do args+=(--schema "$s"); done
set +e
"$VENV/bin/python" stackgen/tests/compose_validate.py "${args[@]}" "$WORK"/*.compose.yml > "$WORK/report.txt"
rc=$?
set -e
grep -v '^outputs=' "$WORK/report.txt" || true
summary=$(grep '^outputs=' "$WORK/report.txt" || echo "outputs=$n valid=0 invalid=$n")
echo "stackgen: $summary"
exit "$rc"
