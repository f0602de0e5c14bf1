#!/usr/bin/env bash
# Benchmark of build-with-cache: a three-stage Dockerfile whose first stage is
# expensive (RUN sleep 12), each build on a FRESH docker engine (empty data
# root), in one run:
#   1. cold build (empty cache)            build-with-cache
#   2. warm rebuild, unchanged sources     build-with-cache (really builds)
#   3. naive: docker build --cache-from <final image> (misses the earlier stages)
#   4. skip: build-with-cache --source-hash H (registry-side tag copy, nothing
#      built), and --skip-existing (the context hashed honouring .dockerignore),
#      each after one (untimed) build that wrote its content ref
#   5. a source of the LATER stage changed: build-with-cache vs the naive way
#      (BuildKit's inline cache of the final image covers unchanged sources
#      end to end, but not a rebuild that needs the earlier stages)
# for the BuildKit backend and the classic docker backend; then, for BuildKit,
#   6. a wide graph: ten stages shaped like docker/buildx's Dockerfile, two
#      expensive independent ones (RUN sleep SLEEP/4), one of them UNNAMED
#      (read with COPY --from=5), built at the default --jobs (1 on dockerd
#      20.10): cold, and a warm rebuild on a fresh engine (every stage a hit).
# Needs: dockerd (docker.io 20.10), docker-registry, busybox-static; run as root.
# Usage: scripts/bench/build-with-cache.sh [SLEEP_SECONDS]   (default 12)
# Results: a table on stdout and bench-results/build-with-cache.txt.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"

SLEEP="${1:-12}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
cargo build --release -q -p build-with-cache --manifest-path "$ROOT/Cargo.toml"
BWC="$CARGO_TARGET_DIR/release/build-with-cache"
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] || DOCKER="$(command -v docker)"
export BUILD_WITH_CACHE_DOCKER="$DOCKER"

WORK="$(mktemp -d /tmp/bwc-bench.XXXXXX)"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 1
    rm -rf "$WORK"
}
trap cleanup EXIT


# Registry.
PORT="$(free_port)"
REG="127.0.0.1:$PORT"
mkdir -p "$WORK/registry"
cat > "$WORK/registry/config.yml" <<EOF
version: 0.1
storage: {filesystem: {rootdirectory: $WORK/registry/data}, delete: {enabled: true}}
http: {addr: $REG}
EOF
docker-registry serve "$WORK/registry/config.yml" > "$WORK/registry/log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do curl -sf "http://$REG/v2/" >/dev/null && break; sleep 0.1; done

# A fresh engine: start_engine NAME -> sets DOCKER_HOST; stop_engine stops it.
ENGINE_PID=""
start_engine() {
    local d="$WORK/engine-$1"
    mkdir -p "$d"
    dockerd --storage-driver=vfs --iptables=false --ip6tables=false --bridge=none \
        --insecure-registry=127.0.0.0/8 --data-root "$d/data" --exec-root "$d/exec" \
        --pidfile "$d/pid" -H "unix://$d/sock" > "$d/log" 2>&1 &
    ENGINE_PID=$!
    PIDS+=("$ENGINE_PID")
    export DOCKER_HOST="unix://$d/sock"
    for _ in $(seq 120); do "$DOCKER" version >/dev/null 2>&1 && return 0; sleep 0.5; done
    echo "dockerd did not start: $(tail -5 "$d/log")" >&2
    exit 1
}
stop_engine() {
    kill "$ENGINE_PID" 2>/dev/null || true
    wait "$ENGINE_PID" 2>/dev/null || true
    rm -rf "$WORK"/engine-*/data
}

# Base image: busybox-static root file system.
start_engine base
mkdir -p "$WORK/rootfs/bin" "$WORK/rootfs/tmp"
cp "$(command -v busybox)" "$WORK/rootfs/bin/busybox"
for a in sh cat echo sleep dd ls; do ln -sf busybox "$WORK/rootfs/bin/$a"; done
tar -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" .
"$DOCKER" import -c 'ENV PATH=/bin' "$WORK/rootfs.tar" "$REG/base/busybox:1" >/dev/null
"$DOCKER" push -q "$REG/base/busybox:1" >/dev/null
stop_engine

# The context.
mkdir -p "$WORK/ctx"
cat > "$WORK/ctx/Dockerfile" <<EOF
FROM $REG/base/busybox:1 AS deps
RUN sleep $SLEEP && echo "expensive dependencies" > /deps.txt
FROM $REG/base/busybox:1 AS build
COPY --from=deps /deps.txt /deps.txt
COPY app.txt /app.txt
RUN cat /deps.txt /app.txt > /out.txt
FROM $REG/base/busybox:1
COPY --from=build /out.txt /out.txt
CMD ["cat", "/out.txt"]
EOF
echo "hello" > "$WORK/ctx/app.txt"


RESULTS=()
bench_backend() {
    local backend="$1" repo="$REG/bench/$1"
    local hash="src$RANDOM$RANDOM"

    start_engine "$backend-cold"
    local t0; t0=$(now)
    "$BWC" --backend "$backend" -t "$repo:v1" "$WORK/ctx" > "$WORK/$backend-cold.json" 2> "$WORK/$backend-cold.log"
    local cold; cold=$(seconds "$t0")
    stop_engine

    start_engine "$backend-warm"
    t0=$(now)
    "$BWC" --backend "$backend" -t "$repo:v1" "$WORK/ctx" > "$WORK/$backend-warm.json" 2> "$WORK/$backend-warm.log"
    local warm; warm=$(seconds "$t0")
    stop_engine

    start_engine "$backend-naive"
    t0=$(now)
    if [ "$backend" = buildkit ]; then
        DOCKER_BUILDKIT=1 "$DOCKER" build --network host --build-arg BUILDKIT_INLINE_CACHE=1 \
            --cache-from "$repo:v1" -t "$repo:naive" "$WORK/ctx" > "$WORK/$backend-naive.log" 2>&1
    else
        "$DOCKER" pull -q "$repo:v1" >/dev/null
        DOCKER_BUILDKIT=0 "$DOCKER" build --cache-from "$repo:v1" -t "$repo:naive" "$WORK/ctx" > "$WORK/$backend-naive.log" 2>&1
    fi
    "$DOCKER" push -q "$repo:naive" >/dev/null
    local naive; naive=$(seconds "$t0")
    stop_engine

    # The builds that write the content refs (untimed), then the skips.
    start_engine "$backend-keyed"
    "$BWC" --backend "$backend" -t "$repo:k1" --source-hash "$hash" "$WORK/ctx" > "$WORK/$backend-keyed.json" 2> "$WORK/$backend-keyed.log"
    "$BWC" --backend "$backend" -t "$repo:k2" --skip-existing "$WORK/ctx" > "$WORK/$backend-keyed2.json" 2> "$WORK/$backend-keyed2.log"
    stop_engine
    t0=$(now)
    "$BWC" --backend "$backend" -t "$repo:v2" --source-hash "$hash" "$WORK/ctx" > "$WORK/$backend-skip.json" 2> "$WORK/$backend-skip.log"
    local skip; skip=$(seconds "$t0")
    t0=$(now)
    "$BWC" --backend "$backend" -t "$repo:v2b" --skip-existing "$WORK/ctx" > "$WORK/$backend-skipctx.json" 2> "$WORK/$backend-skipctx.log"
    local skipctx; skipctx=$(seconds "$t0")

    # A change in the later stage's sources.
    echo "changed $backend" > "$WORK/ctx/app.txt"
    start_engine "$backend-changed"
    t0=$(now)
    "$BWC" --backend "$backend" -t "$repo:v3" "$WORK/ctx" > "$WORK/$backend-changed.json" 2> "$WORK/$backend-changed.log"
    local changed; changed=$(seconds "$t0")
    stop_engine
    echo "changed naive $backend" > "$WORK/ctx/app.txt"
    start_engine "$backend-changed-naive"
    t0=$(now)
    if [ "$backend" = buildkit ]; then
        DOCKER_BUILDKIT=1 "$DOCKER" build --network host --build-arg BUILDKIT_INLINE_CACHE=1 \
            --cache-from "$repo:v1" -t "$repo:naive2" "$WORK/ctx" > "$WORK/$backend-naive2.log" 2>&1
    else
        "$DOCKER" pull -q "$repo:v1" >/dev/null
        DOCKER_BUILDKIT=0 "$DOCKER" build --cache-from "$repo:v1" -t "$repo:naive2" "$WORK/ctx" > "$WORK/$backend-naive2.log" 2>&1
    fi
    "$DOCKER" push -q "$repo:naive2" >/dev/null
    local changed_naive; changed_naive=$(seconds "$t0")
    stop_engine
    echo "hello" > "$WORK/ctx/app.txt"

    local same
    same=$(python3 - "$WORK/$backend-cold.json" "$WORK/$backend-warm.json" "$WORK/$backend-skip.json" "$WORK/$backend-changed.json" "$WORK/$backend-skipctx.json" <<'PY'
import json, sys
c, w, s, ch, sc = (json.load(open(p)) for p in sys.argv[1:])
hits = [st["cache"] for st in w["stages"]]
changed = [st["cache"] for st in ch["stages"]]
print(f"warm stages={','.join(hits)} same_digest={c['digest'] == w['digest']} skipped={s['skipped']},{sc['skipped']} changed stages={','.join(changed)}")
PY
)
    local speedup; speedup=$(python3 -c "print(f'{$cold / $warm:.1f}')")
    RESULTS+=("$(printf '%-9s cold %6ss | warm %5ss (%sx) | naive --cache-from %6ss | skip %5ss, --skip-existing %5ss | later stage changed: bwc %6ss, naive %6ss | %s' \
        "$backend" "$cold" "$warm" "$speedup" "$naive" "$skip" "$skipctx" "$changed" "$changed_naive" "$same")")
}

bench_wide() {
    local repo="$REG/bench/wide" part
    part=$(python3 -c "print(max(1, $SLEEP // 4))")
    mkdir -p "$WORK/wide"
    cat > "$WORK/wide/Dockerfile" <<EOF
ARG BASE=$REG/base/busybox:1
FROM \$BASE AS xx
RUN sleep $part && echo xx > /xx
FROM \$BASE AS golatest
RUN echo go > /go
FROM golatest AS gobase
COPY --from=xx /xx /xx
RUN echo gobase > /gobase
FROM gobase AS buildx-version
COPY version.txt /version
FROM gobase AS buildx-build
COPY --from=buildx-version /version /version
RUN cat /version /gobase > /buildx
FROM \$BASE
RUN sleep $part && echo unnamed > /unnamed
FROM gobase AS test
COPY --from=5 /unnamed /u
RUN echo test > /test
FROM scratch AS binaries-unix
COPY --from=buildx-build /buildx /buildx
FROM binaries-unix AS binaries
FROM \$BASE
COPY --from=binaries /buildx /buildx
COPY --from=test /test /test
COPY --from=5 /unnamed /unnamed
EOF
    echo v1 > "$WORK/wide/version.txt"
    start_engine wide-cold
    local t0; t0=$(now)
    "$BWC" --backend buildkit -t "$repo:v1" "$WORK/wide" > "$WORK/wide-cold.json" 2> "$WORK/wide-cold.log"
    local cold; cold=$(seconds "$t0")
    stop_engine
    start_engine wide-warm
    t0=$(now)
    "$BWC" --backend buildkit -t "$repo:v1" "$WORK/wide" > "$WORK/wide-warm.json" 2> "$WORK/wide-warm.log"
    local warm; warm=$(seconds "$t0")
    stop_engine
    local info
    info=$(python3 - "$WORK/wide-cold.json" "$WORK/wide-warm.json" <<'PY'
import json, sys
c, w = (json.load(open(p)) for p in sys.argv[1:])
print(f"stages={len(w['stages'])} warm={','.join(s['name'] + ':' + s['cache'] for s in w['stages'])} same_digest={c['digest'] == w['digest']}")
PY
)
    local jobs; jobs=$(grep -o '([0-9]* at a time)' "$WORK/wide-cold.log" | head -1)
    RESULTS+=("$(printf 'wide      cold %6ss | warm %5ss %s | %s' "$cold" "$warm" "$jobs" "$info")")
}

bench_backend buildkit
bench_backend docker
bench_wide

mkdir -p "$ROOT/bench-results"
{
    echo "build-with-cache benchmark ($(date -u +%FT%TZ), first stage: RUN sleep $SLEEP, fresh engine per build, vfs)"
    printf '%s\n' "${RESULTS[@]}"
} | tee "$ROOT/bench-results/build-with-cache.txt"
