#!/usr/bin/env bash
# Benchmark of the main flow (scripts/pipeline REPO main) on the local platform, for
# examples/shop (promotion: dev -> staging, gate auto -> prod, gate manual):
#   1. merge         main gets the shop: images built, promoted into the release-candidate
#                    registry, staging deployed and smoke-tested, prod's branch opened
#   2. no change     the same commit again: 0 bytes copied, nothing committed or restarted
#   3. one change    a one-line change to services/api: api rebuilt, only its new blobs copied
# Reported per run: seconds from the start to staging running (the apply step done),
# seconds to the end of the run, and bytes promoted (staging's promotion; prod's is 0 as
# the images are already there).
#
#   scripts/bench/main-flow.sh [RUNS]     (default 3 repetitions, medians reported)
#
# Needs the local platform (scripts/local-platform up). Each repetition promotes under its
# own registry path (--registry HOST:PORT/bench-PID-N), so the first run copies everything.
# Results: stdout and bench-results/main-flow.txt.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUNS=${1:-3}
STATE=${MICROPLATFORM_STATE_DIR:-${XDG_STATE_HOME:-/tmp}/microplatform-local}
[[ -f $STATE/env ]] || { echo "bench: no platform; run scripts/local-platform up first" >&2; exit 1; }
REGISTRY=$(sed -n 's/^MICROPLATFORM_REGISTRY=//p' "$STATE/env")
grep -q '^MICROPLATFORM_RC_REGISTRY=' "$STATE/env" || { echo "bench: the platform has no release-candidate registry; run scripts/local-platform up again" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-main-flow.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
git_c=(-c user.name=bench -c user.email=bench@localhost -c commit.gpgsign=false)

# run LABEL REPO OUT: one main-flow run; prints "to_staging total bytes".
run() {
  local start line staged=''
  start=$(date +%s.%N)
  while IFS= read -r line; do
    [[ $line == *"] apply "* && -z $staged ]] && staged=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  done < <("$ROOT/scripts/pipeline" --registry "$REGISTRY/$4" --out "$3" "$2" main 2>&1 >/dev/null || echo "FAILED $1")
  [[ -f $3/summary.json ]] || { echo "bench: run $1 failed (see $3/logs)" >&2; exit 1; }
  jq -r --arg s "$staged" '"\($s) \(.seconds) \(.promotion.environments[0].promoted.bytes_copied)"' "$3/summary.json"
}

declare -A results
for ((i = 1; i <= RUNS; i++)); do
  repo=$WORK/repo-$i path=bench-$$-$i
  mkdir -p "$repo" && git -C "$repo" init -q -b main
  echo "# shop" >"$repo/README.md" && git -C "$repo" add -A && git -C "$repo" "${git_c[@]}" commit -q -m start
  cp -a "$ROOT/examples/shop/." "$repo/" && git -C "$repo" add -A && git -C "$repo" "${git_c[@]}" commit -q -m "Merge the shop"
  results[merge]+="$(run merge "$repo" "$WORK/out-$i-1" "$path")"$'\n'
  results[nochange]+="$(run nochange "$repo" "$WORK/out-$i-2" "$path")"$'\n'
  echo "# release $i" >>"$repo/services/api/cgi-bin/greet"
  git -C "$repo" "${git_c[@]}" commit -q -am "Change api"
  results[change]+="$(run change "$repo" "$WORK/out-$i-3" "$path")"$'\n'
done
mkdir -p "$ROOT/bench-results"
{
  echo "main flow of examples/shop, $RUNS repetitions (medians): seconds to staging running, seconds in all, bytes promoted"
  for k in merge nochange change; do
    col() { printf '%s' "${results[$k]}" | awk -v c="$1" 'NF { print $c }' | median; }
    printf '  %-9s  to staging %6ss  total %6ss  bytes copied %s\n' "$k" "$(col 1)" "$(col 2)" "$(col 3)"
  done
} | tee "$ROOT/bench-results/main-flow.txt"
