#!/usr/bin/env bash
# Benchmark of push to deploy: `git push` to the local platform's monorepo
# remote (STATE/monorepo.git, its post-receive hook runs scripts/pipeline)
# until the environment answers:
#   1. first push         a new branch of a fresh copy of examples/shop (a
#                         unique greeting, so both images are really built)
#   2. one-component      a change to libs/page: only services/web rebuilt and
#      change             redeployed
#   3. teardown           git push local :BRANCH until the stack is gone
#
#   scripts/bench/push.sh [RUNS]     (default 3 repetitions, medians reported)
#
# Two figures per push: when `git push` returns (the hook waits for the
# pipeline, whose smoke step calls every service), and when a separate
# request to the environment's URL (summary.json's, through the platform's
# ingress) returns the pushed content. Needs the local platform (scripts/local-platform
# up). Results: stdout and bench-results/push.txt.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RUNS=${1:-3}
STATE=${MICROPLATFORM_STATE_DIR:-${XDG_STATE_HOME:-/tmp}/microplatform-local}
[[ -f $STATE/env ]] || { echo "bench: no platform; run scripts/local-platform up first" >&2; exit 1; }
setting() { sed -n "s/^$1=//p" "$STATE/env"; }
REMOTE=$(setting MICROPLATFORM_MONOREPO_REMOTE)
[[ -n $REMOTE && -d $REMOTE ]] || { echo "bench: $STATE/env names no monorepo remote; run scripts/local-platform up again" >&2; exit 1; }
DOCKER_HOST=$(setting MICROPLATFORM_DOCKER_HOST)
export DOCKER_HOST
DOCKER=docker
[[ -x /usr/bin/docker ]] && DOCKER=/usr/bin/docker

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-push.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
git_c=(-c user.name=bench -c user.email=bench@localhost -c commit.gpgsign=false)

since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
# answers URL TEXT: the environment's front page, at its URL, shows TEXT
answers() { curl -fsS -m 5 "$1" 2>/dev/null | grep -qF "$2"; }

# timed_push LOG NAMESPACE TEXT GIT-PUSH-ARGS...: sets PUSHED (s to git push's
# return) and ANSWERED (s until the front page shows TEXT)
timed_push() {
  local log=$1 ns=$2 text=$3 t0 i url; shift 3
  t0=$(now)
  git -C "$repo" push "$@" 2>"$log" || { cat "$log" >&2; exit 1; }
  PUSHED=$(since "$t0" "$(now)")
  grep -q '^remote: push: .*: done (log ' "$log" || { cat "$log" >&2; echo "bench: the run failed" >&2; exit 1; }
  url=$(jq -r '.urls[0] // empty' "$STATE/runs/$ns/summary.json")
  [[ -n $url ]] || { echo "bench: the summary of $ns has no URL" >&2; exit 1; }
  for ((i = 0; i < 60; i++)); do answers "$url" "$text" && break; sleep 0.5; done
  ((i < 60)) || { echo "bench: $url does not show '$text'" >&2; exit 1; }
  ANSWERED=$(since "$t0" "$(now)")
}

first=() first_ans=() change=() change_ans=() teardown=()
for ((i = 1; i <= RUNS; i++)); do
  branch="bench-push-$$-$i"
  ns=shop-$branch
  repo=$WORK/repo-$i
  if git -C "$REMOTE" rev-parse -q --verify refs/heads/main >/dev/null; then
    git clone -q -o local -b main "$REMOTE" "$repo" # branch off the remote's main, never rewrite it
  else # a new remote: main is a README, pushed without a run
    mkdir -p "$repo" && git -C "$repo" init -q -b main && echo "# shop" >"$repo/README.md"
    git -C "$repo" add -A && git -C "$repo" "${git_c[@]}" commit -q -m start
    git -C "$repo" remote add local "$REMOTE" && git -C "$repo" push -q -o ci.skip local main 2>/dev/null
  fi
  git -C "$repo" checkout -q -b "$branch"
  find "$repo" -mindepth 1 -maxdepth 1 ! -name .git -exec rm -rf {} +
  cp -a "$ROOT/examples/shop/." "$repo/"
  # A unique greeting per repetition: the first push really builds both images.
  echo "Hello $branch" >"$repo/libs/greeting/greetings.txt"
  git -C "$repo" add -A && git -C "$repo" "${git_c[@]}" commit -q -m shop

  timed_push "$WORK/log-$i-1" "$ns" "shop example of the microplatform tools" local "$branch"
  [[ $(jq -c .built "$STATE/runs/$ns/summary.json") == '["api","web"]' ]] ||
    { echo "bench: the first push built $(jq -c .built "$STATE/runs/$ns/summary.json")" >&2; exit 1; }
  first+=("$PUSHED") first_ans+=("$ANSWERED")

  sed -i "s/shop example of the microplatform tools/shop, bench edition $i/" "$repo/libs/page/layout.html"
  git -C "$repo" "${git_c[@]}" commit -q -am "page change"
  timed_push "$WORK/log-$i-2" "$ns" "shop, bench edition $i" local "$branch"
  [[ $(jq -c .built "$STATE/runs/$ns/summary.json") == '["web"]' ]] ||
    { echo "bench: the one-component change built $(jq -c .built "$STATE/runs/$ns/summary.json")" >&2; exit 1; }
  change+=("$PUSHED") change_ans+=("$ANSWERED")

  t0=$(now)
  git -C "$repo" push local ":$branch" 2>"$WORK/log-$i-3" || { cat "$WORK/log-$i-3" >&2; exit 1; }
  [[ -z $("$DOCKER" service ls -q --filter "label=com.docker.stack.namespace=$ns") ]] ||
    { cat "$WORK/log-$i-3" >&2; echo "bench: $ns still has services" >&2; exit 1; }
  teardown+=("$(since "$t0" "$(now)")")
  printf 'run %d: first push %ss (answering %ss), one-component change %ss (answering %ss), teardown %ss\n' \
    "$i" "${first[-1]}" "${first_ans[-1]}" "${change[-1]}" "${change_ans[-1]}" "${teardown[-1]}" >&2
done

mkdir -p "$ROOT/bench-results"
{
  echo "push-to-deploy benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $RUNS repetitions, medians; $(nproc) cores)"
  echo "                                          git push returns   URL answers"
  printf '  first push (api and web built):          %6s s           %6s s\n' "$(printf '%s\n' "${first[@]}" | median)" "$(printf '%s\n' "${first_ans[@]}" | median)"
  printf '  one-component change (web rebuilt):      %6s s           %6s s\n' "$(printf '%s\n' "${change[@]}" | median)" "$(printf '%s\n' "${change_ans[@]}" | median)"
  printf '  teardown (git push local :branch):       %6s s\n' "$(printf '%s\n' "${teardown[@]}" | median)"
} | tee "$ROOT/bench-results/push.txt"
