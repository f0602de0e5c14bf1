#!/usr/bin/env bash
# Benchmarks of deploy-bot (loopback only, bounded in count and time):
#  1. webhook throughput: REQUESTS signed `push` deliveries (unique delivery ids, all durably queued) at CONCURRENCY;
#     target >= 5,000 req/s, p99 < 20 ms, no errors.
#  2. merged commit -> applied swarm stack of 5 services (real dockerd in swarm mode, real registry, images pinned by digest).
# Results go to stdout and to bench-results/deploy-bot/ (gitignored).
set -euo pipefail
cd "$(dirname "$0")/../.."
REQUESTS="${REQUESTS:-20000}"
CONCURRENCY="${CONCURRENCY:-16}"
ROUNDS="${ROUNDS:-3}"
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
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
SECRET="bench-secret-$$"
DEPLOY_BOT_WEBHOOK_SECRET="$SECRET" "$BIN/deploy-bot" -q agent --repo "file://$WORK/acme/cluster.git" --branch main \
  --state-dir "$WORK/state" --listen "127.0.0.1:$PORT" --poll-interval 1h --kubectl "$WORK/kubectl" &
AGENT_PID=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
# Warm-up, then the measured run.
"$BIN/examples/webhook_load" "http://127.0.0.1:$PORT/webhooks" "$SECRET" 2000 "$CONCURRENCY" >/dev/null
timeout 180 "$BIN/examples/webhook_load" "http://127.0.0.1:$PORT/webhooks" "$SECRET" "$REQUESTS" "$CONCURRENCY" | tee "$OUT/webhook.json"
curl -fs "http://127.0.0.1:$PORT/metrics" | grep -E '^deploy_bot_(webhook_requests_total\{outcome="(queued|error)"|queue_depth)' || true
kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true; AGENT_PID=""

# --- 2. merged commit -> applied swarm stack (5 services) --------------------
MICROPLATFORM_BIN_DIR="$BIN" timeout 900 "$BIN/examples/swarm_latency" "$ROUNDS" | tee "$OUT/swarm.json"
