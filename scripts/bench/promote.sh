#!/usr/bin/env bash
# Benchmark of `digest-resolve --promote-to` (issue 15, item 3): bytes copied and wall time of a
# promotion of IMAGES (5) images of about MB (4) MB each, in two local docker-registry instances:
#   1. same registry (to SRC/rc): blob mounts; first run, then a rerun with no change;
#   2. cross-registry (to RC): streamed copies; first run, rerun, then one image changed;
#   3. baseline: a `skopeo copy --all` loop doing case 2's first run;
#   4. memory: peak RSS of a cross-registry promotion of one BIG_MB (100) MB image (layers of 50,
#      30 and 20% of it; streamed: the RSS stays far below the largest blob).
# Usage: scripts/bench/promote.sh   (env: IMAGES=5 MB=4 BIG_MB=100)
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
need_apt docker-registry skopeo jq curl time python3
IMAGES=${IMAGES:-5}
MB=${MB:-4}
BIG_MB=${BIG_MB:-100}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/targets/digest-resolve}
WORK=$(mktemp -d /tmp/promote-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

cargo build --release -q -p digest-resolve --bin digest-resolve
BIN=$CARGO_TARGET_DIR/release/digest-resolve

start_registry() { # NAME -> prints host:port
  local name=$1 port
  port=$(free_port)
  cat > "$WORK/$name.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $WORK/$name-data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
YML
  docker-registry serve "$WORK/$name.yml" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
  echo "127.0.0.1:$port"
}
SRC=$(start_registry src)
RC=$(start_registry rc)
RC2=$(start_registry rc2)
export DOCKER_CONFIG=$WORK/docker-empty
mkdir -p "$DOCKER_CONFIG"

# seed REPO_PREFIX COUNT MB: images REPO_PREFIXn:v1, each with 3 random layers totalling MB MB.
seed() {
  python3 - "$SRC" "$1" "$2" "$3" <<'PY'
import hashlib, http.client, json, os, sys
reg, prefix, count, mb = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
host, port = reg.split(':')
c = http.client.HTTPConnection(host, int(port))
def req(method, path, body=b'', headers={}):
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse(); data = r.read()
    return r, data
def blob(repo, data):
    d = 'sha256:' + hashlib.sha256(data).hexdigest()
    r, _ = req('POST', f'/v2/{repo}/blobs/uploads/')
    loc = r.getheader('Location'); loc = loc[loc.index('/v2/'):]
    r, _ = req('PUT', f'{loc}&digest={d}', data, {'Content-Type': 'application/octet-stream'})
    assert r.status == 201, r.status
    return d, len(data)
for i in range(count):
    repo = f'{prefix}{i}'
    sizes = [int(mb * 2**20 * f) for f in (0.5, 0.3, 0.2)]
    layers = [blob(repo, os.urandom(s)) for s in sizes]
    cfg = json.dumps({'architecture': 'amd64', 'os': 'linux', 'salt': os.urandom(8).hex(),
                      'rootfs': {'type': 'layers', 'diff_ids': [d for d, _ in layers]}}).encode()
    cd, cl = blob(repo, cfg)
    m = json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
                    'config': {'mediaType': 'application/vnd.oci.image.config.v1+json', 'digest': cd, 'size': cl},
                    'layers': [{'mediaType': 'application/vnd.oci.image.layer.v1.tar', 'digest': d, 'size': n} for d, n in layers]}).encode()
    r, body = req('PUT', f'/v2/{repo}/manifests/v1', m, {'Content-Type': 'application/vnd.oci.image.manifest.v1+json'})
    assert r.status == 201, (r.status, body)
PY
}

echo "== seeding $IMAGES images of $MB MB into $SRC"
seed shop/svc "$IMAGES" "$MB"
{
  for i in $(seq 0 $((IMAGES - 1))); do
    printf -- '---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: svc%d}\nspec:\n  template:\n    spec:\n      containers:\n      - name: main\n        image: %s/shop/svc%d:v1\n' "$i" "$SRC" "$i"
  done
} > "$WORK/staging.yaml"

# promote LABEL DEST: one timed promotion of staging.yaml; prints time and report totals.
promote() {
  local label=$1 dest=$2 s e
  s=$(date +%s.%N)
  "$BIN" --promote-to "$dest" --promote-report "$WORK/report.json" < "$WORK/staging.yaml" > "$WORK/out.yaml"
  e=$(date +%s.%N)
  printf '  %-34s %6.2fs  %s\n' "$label" "$(echo "$e - $s" | bc -l)" \
    "$(jq -c '.totals | {bytes_copied, manifest_bytes, blobs_copied, blobs_mounted, blobs_present, manifests_copied, manifests_present}' "$WORK/report.json")"
}

echo "== same registry ($SRC -> $SRC/rc): cross-repository mounts"
promote "first promotion" "$SRC/rc"
promote "rerun, no change" "$SRC/rc"

echo "== cross-registry ($SRC -> $RC): streamed copies"
promote "first promotion" "$RC"
promote "rerun, no change" "$RC"
echo "   (one image changed: 3 new layers)"
seed shop/svc 1 "$MB"
promote "rerun, one image changed" "$RC"

echo "== baseline: skopeo copy --all loop ($SRC -> $RC2), the same $IMAGES images"
s=$(date +%s.%N)
for i in $(seq 0 $((IMAGES - 1))); do
  skopeo copy -q --all --src-tls-verify=false --dest-tls-verify=false \
    "docker://$SRC/shop/svc$i:v1" "docker://$RC2/shop/svc$i:v1"
done
e=$(date +%s.%N)
printf '  %-34s %6.2fs\n' "skopeo copy, first copy" "$(echo "$e - $s" | bc -l)"
s=$(date +%s.%N)
for i in $(seq 0 $((IMAGES - 1))); do
  skopeo copy -q --all --src-tls-verify=false --dest-tls-verify=false \
    "docker://$SRC/shop/svc$i:v1" "docker://$RC2/shop/svc$i:v1"
done
e=$(date +%s.%N)
printf '  %-34s %6.2fs\n' "skopeo copy, again" "$(echo "$e - $s" | bc -l)"

echo "== memory: one image with a $BIG_MB MB blob, cross-registry"
seed big/img 1 "$BIG_MB"
printf -- 'kind: Pod\nspec: {containers: [{image: %s/big/img0:v1}]}\n' "$SRC" > "$WORK/big.yaml"
/usr/bin/time -f '%M %e' -o "$WORK/time.txt" \
  "$BIN" --promote-to "$RC" --promote-report "$WORK/big.json" < "$WORK/big.yaml" > /dev/null
read -r rss secs < "$WORK/time.txt"
printf '  %-34s %6.2fs  peak RSS %d MB  bytes_copied %s\n' "promotion of $BIG_MB MB" "$secs" \
  "$((rss / 1024))" "$(jq .totals.bytes_copied "$WORK/big.json")"
