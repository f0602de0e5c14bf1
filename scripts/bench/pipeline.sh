#!/usr/bin/env bash
# Benchmark of the whole chain (scripts/pipeline) on the bundled example:
#   1. first full run    a new branch of a fresh copy of examples/shop: both
#                        images built, deployed, smoke-tested
#   2. one-component     a change to libs/page: only services/web rebuilt and
#      change            redeployed (services/api skipped by its content key; target < 15 s)
#   3. no-change run     nothing built, nothing committed, nothing restarted
#                        (target: under 3 s; the one-component change under 15 s)
#
#   scripts/bench/pipeline.sh [RUNS]     (default 3 repetitions, medians reported)
#
# Needs the local platform (scripts/local-platform up). Each repetition uses a
# new branch (a new stack), torn down afterwards (scripts/pipeline --delete). Results: stdout and
# bench-results/pipeline.txt.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUNS=${1:-3}
STATE=${MICROPLATFORM_STATE_DIR:-${XDG_STATE_HOME:-/tmp}/microplatform-local}
[[ -f $STATE/env ]] || { echo "bench: no platform; run scripts/local-platform up first" >&2; exit 1; }
DOCKER_HOST=$(sed -n 's/^MICROPLATFORM_DOCKER_HOST=//p' "$STATE/env")
export DOCKER_HOST

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-pipeline.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
git_c=(-c user.name=bench -c user.email=bench@localhost -c commit.gpgsign=false)

seconds() { jq -r .seconds "$1/summary.json"; }

first=() change=() nochange=()
for ((i = 1; i <= RUNS; i++)); do
  branch="bench-$$-$i"
  repo=$WORK/repo-$i
  mkdir -p "$repo"
  git -C "$repo" init -q -b main
  echo "# shop" >"$repo/README.md"
  git -C "$repo" add -A && git -C "$repo" "${git_c[@]}" commit -q -m start
  git -C "$repo" checkout -q -b "$branch"
  cp -a "$ROOT/examples/shop/." "$repo/"
  # A unique greeting per repetition: the first run really builds.
  echo "Hello $branch" >"$repo/libs/greeting/greetings.txt"
  git -C "$repo" add -A && git -C "$repo" "${git_c[@]}" commit -q -m shop

  "$ROOT/scripts/pipeline" --out "$WORK/out-$i-1" "$repo" "$branch" 2>"$WORK/log-$i-1" ||
    { cat "$WORK/log-$i-1" >&2; exit 1; }
  first+=("$(seconds "$WORK/out-$i-1")")

  sed -i "s/shop example of the microplatform tools/shop, bench edition $i/" "$repo/libs/page/layout.html"
  git -C "$repo" "${git_c[@]}" commit -q -am "page change"
  "$ROOT/scripts/pipeline" --out "$WORK/out-$i-2" "$repo" "$branch" 2>"$WORK/log-$i-2" ||
    { cat "$WORK/log-$i-2" >&2; exit 1; }
  change+=("$(seconds "$WORK/out-$i-2")")
  [[ $(jq -c .built "$WORK/out-$i-2/summary.json") == '["web"]' ]] ||
    { echo "bench: the one-component change built $(jq -c .built "$WORK/out-$i-2/summary.json")" >&2; exit 1; }

  "$ROOT/scripts/pipeline" --out "$WORK/out-$i-3" "$repo" "$branch" 2>"$WORK/log-$i-3" ||
    { cat "$WORK/log-$i-3" >&2; exit 1; }
  nochange+=("$(seconds "$WORK/out-$i-3")")
  [[ $(jq -c .built "$WORK/out-$i-3/summary.json") == '[]' && $(jq .deployed.unchanged "$WORK/out-$i-3/summary.json") == true ]] ||
    { echo "bench: the no-change run was not a no-op" >&2; exit 1; }

  # Tear the environment down the GitOps way (a `docker stack rm` alone would be
  # repaired by the agent's self-heal, and the stacks would pile up).
  "$ROOT/scripts/pipeline" --delete --out "$WORK/out-$i-4" "$repo" "$branch" 2>"$WORK/log-$i-4" ||
    { cat "$WORK/log-$i-4" >&2; exit 1; }
  printf 'run %d: first %ss, one-component change %ss, no change %ss\n' "$i" "${first[-1]}" "${change[-1]}" "${nochange[-1]}" >&2
done
# Per-step times of the last no-change run, from its progress lines.
steps=$(grep -oE '^\[[ 0-9]+/10\] [a-z]+ .*\(([0-9.]+)s\)$' "$WORK/log-$RUNS-3" | sed -E 's/^\[[ 0-9]+\/10\] ([a-z]+) .*\(([0-9.]+)s\)$/\1=\2s/' | tr '\n' ' ')

mkdir -p "$ROOT/bench-results"
{
  echo "pipeline benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $RUNS repetitions, medians; $(nproc) cores)"
  echo "  first full run (2 images built):        $(printf '%s\n' "${first[@]}" | median) s"
  echo "  one-component change (web rebuilt):     $(printf '%s\n' "${change[@]}" | median) s"
  echo "  no-change run (all skipped, no deploy): $(printf '%s\n' "${nochange[@]}" | median) s   (target < 3 s)"
  echo "  no-change steps (last run): $steps"
} | tee "$ROOT/bench-results/pipeline.txt"
