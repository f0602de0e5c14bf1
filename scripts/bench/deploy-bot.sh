#!/usr/bin/env bash
# Benchmarks of deploy-bot (loopback only, bounded in count and time):
#  1. webhook throughput: REQUESTS signed `push` deliveries (unique delivery ids, all durably queued) at CONCURRENCY
#     (default 50), once with `-q` and once with the default info log (one line per delivery, to a file);
#     target >= 5,000 req/s, p99 < 20 ms, no errors.
#  2. /healthz latency idle, while SLOW (500) connections that never finish their request head are open, and while
#     HOSTILE commits of 200 KB YAML nested 100,000 levels are validated; target p99 < 100 ms.
#  3. merged commit -> applied swarm stack of 5 services (real dockerd in swarm mode, real registry, images pinned by digest).
#  4. self-heal: `docker service scale NS_web=0` -> running 1/1 again, agent reconciling every HEAL_POLL (2s).
# Results go to stdout and to bench-results/deploy-bot/ (gitignored).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$(dirname "$0")/../.."
REQUESTS="${REQUESTS:-20000}"
CONCURRENCY="${CONCURRENCY:-50}"
ROUNDS="${ROUNDS:-3}"
SLOW="${SLOW:-500}"
PROBES="${PROBES:-2000}"
HOSTILE="${HOSTILE:-10}"
HEAL_ROUNDS="${HEAL_ROUNDS:-5}"
HEAL_POLL="${HEAL_POLL:-2s}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p deploy-bot --bins --examples
BIN="$CARGO_TARGET_DIR/release"
OUT=bench-results/deploy-bot
mkdir -p "$OUT"
WORK="$(mktemp -d /tmp/deploy-bot-bench.XXXXXX)"
AGENT_PID=""
cleanup() {
  if [ -n "$AGENT_PID" ]; then kill "$AGENT_PID" 2>/dev/null || true; wait "$AGENT_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- 1. webhook throughput ---------------------------------------------------
git init -q --bare -b main "$WORK/acme/cluster.git"
git clone -q "$WORK/acme/cluster.git" "$WORK/w" 2>/dev/null
mkdir -p "$WORK/w/team"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n' > "$WORK/w/team/cm.yaml"
git -C "$WORK/w" -c user.name=bench -c user.email=bench@example.invalid add -A
git -C "$WORK/w" -c user.name=bench -c user.email=bench@example.invalid commit -q -m seed
git -C "$WORK/w" push -q origin main
# A no-op kubectl: the head is applied once at startup; every queued push then finds nothing changed.
printf '#!/bin/sh\ncat >/dev/null\nexit 0\n' > "$WORK/kubectl"; chmod +x "$WORK/kubectl"
PORT="$(free_port)"
SECRET="bench-secret-$$"
webhook_run() { # $1: label, then the global logging flags
  local label=$1; shift
  rm -rf "$WORK/state"
  DEPLOY_BOT_WEBHOOK_SECRET="$SECRET" "$BIN/deploy-bot" "$@" agent --repo "file://$WORK/acme/cluster.git" --branch main \
    --state-dir "$WORK/state" --listen "127.0.0.1:$PORT" --poll-interval 1h --kubectl "$WORK/kubectl" 2>"$WORK/agent-$label.log" &
  AGENT_PID=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
  # Warm-up, then the measured run.
  "$BIN/examples/webhook_load" "http://127.0.0.1:$PORT/webhooks" "$SECRET" 2000 "$CONCURRENCY" >/dev/null
  echo "webhook throughput ($label):"
  timeout 180 "$BIN/examples/webhook_load" "http://127.0.0.1:$PORT/webhooks" "$SECRET" "$REQUESTS" "$CONCURRENCY" | tee "$OUT/webhook-$label.json"
  curl -fs "http://127.0.0.1:$PORT/metrics" | grep -E '^deploy_bot_(webhook_requests_total\{outcome="(queued|error)"|queue_depth)' || true
  echo "agent log lines: $(wc -l <"$WORK/agent-$label.log")"
  kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true; AGENT_PID=""
}
webhook_run quiet -q
webhook_run info-log

# --- 2. /healthz under slow connections and hostile YAML ----------------------
echo "healthz:"
MICROPLATFORM_BIN_DIR="$BIN" timeout 600 "$BIN/examples/healthz_load" "$SLOW" "$PROBES" "$HOSTILE" | tee "$OUT/healthz.json"

# --- 3. merged commit -> applied swarm stack (5 services) --------------------
MICROPLATFORM_BIN_DIR="$BIN" timeout 900 "$BIN/examples/swarm_latency" "$ROUNDS" | tee "$OUT/swarm.json"

# --- 4. self-heal: scale to 0 -> running again --------------------------------
MICROPLATFORM_BIN_DIR="$BIN" timeout 900 "$BIN/examples/swarm_heal" "$HEAL_ROUNDS" "$HEAL_POLL" | tee "$OUT/swarm-heal.json"
