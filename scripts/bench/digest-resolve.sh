#!/usr/bin/env bash
# Benchmark of digest-resolve (issue 4):
#  1. 10,000 documents naming 1,000 distinct images in a local docker-registry:
#     digest-resolve vs a shell loop of `skopeo inspect` (timed on a sample, extrapolated)
#     vs the HTTP floor (the same 1,000 HEAD requests, same concurrency, minimal client)
#     vs oci-client's fetch_manifest_digest (scripts/bench/oci-client-floor, a standalone package).
#  2. A 50 MB manifest stream resolved from --lock (no network): MB/s.
# Usage: scripts/bench/digest-resolve.sh [SKOPEO_SAMPLE=100]
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$(dirname "$0")/../.."
SAMPLE=${SKOPEO_SAMPLE:-100}
CONC=${CONCURRENCY:-16}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/targets/digest-resolve}
WORK=$(mktemp -d /tmp/digest-resolve-bench.XXXXXX)
REG_PID=
cleanup() { [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

cargo build --release -q -p digest-resolve --bin digest-resolve --example head_floor
BIN=$CARGO_TARGET_DIR/release/digest-resolve
FLOOR=$CARGO_TARGET_DIR/release/examples/head_floor
cargo build --release -q --manifest-path scripts/bench/oci-client-floor/Cargo.toml --target-dir "$CARGO_TARGET_DIR/oci-client-floor"
OCI=$CARGO_TARGET_DIR/oci-client-floor/release/oci-client-floor

PORT=$(free_port)
REG=127.0.0.1:$PORT
cat > "$WORK/config.yml" <<YML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $WORK/data}}
http: {addr: $REG}
YML
docker-registry serve "$WORK/config.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do curl -sf "http://$REG/v2/" >/dev/null && break; sleep 0.1; done

echo "== seeding 1,000 images into $REG"
python3 - "$REG" "$WORK" <<'PY'
import hashlib, http.client, json, sys
reg, work = sys.argv[1], sys.argv[2]
host, port = reg.split(':')
c = http.client.HTTPConnection(host, int(port))
def req(method, path, body=b'', headers={}):
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse(); data = r.read()
    return r, data
def blob(repo, data):
    d = 'sha256:' + hashlib.sha256(data).hexdigest()
    r, _ = req('POST', f'/v2/{repo}/blobs/uploads/')
    loc = r.getheader('Location'); loc = loc[loc.index('/v2/'):] if '/v2/' in loc else loc
    sep = '&' if '?' in loc else '?'
    r, _ = req('PUT', f'{loc}{sep}digest={d}', data, {'Content-Type': 'application/octet-stream'})
    assert r.status == 201, r.status
    return d
refs = []
for i in range(1000):
    repo = f'bench/app{i % 100}'
    tag = f'v{i // 100}'
    layer = f'layer {i}'.encode(); ld = blob(repo, layer)
    cfg = json.dumps({'architecture': 'amd64', 'os': 'linux', 'rootfs': {'type': 'layers', 'diff_ids': [ld]}}).encode()
    cd = blob(repo, cfg)
    mt = 'application/vnd.oci.image.manifest.v1+json' if i % 2 else 'application/vnd.docker.distribution.manifest.v2+json'
    ct = 'application/vnd.oci.image.config.v1+json' if i % 2 else 'application/vnd.docker.container.image.v1+json'
    lt = 'application/vnd.oci.image.layer.v1.tar' if i % 2 else 'application/vnd.docker.image.rootfs.diff.tar.gzip'
    m = json.dumps({'schemaVersion': 2, 'mediaType': mt, 'config': {'mediaType': ct, 'digest': cd, 'size': len(cfg)},
                    'layers': [{'mediaType': lt, 'digest': ld, 'size': len(layer)}]}).encode()
    r, body = req('PUT', f'/v2/{repo}/manifests/{tag}', m, {'Content-Type': mt})
    assert r.status == 201, (r.status, body)
    refs.append(f'{reg}/{repo}:{tag}')
open(f'{work}/refs.txt', 'w').write('\n'.join(refs) + '\n')
with open(f'{work}/stream.yaml', 'w') as f:
    for d in range(10000):
        f.write(f"---\n# doc {d}\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{d}\nspec:\n  template:\n    spec:\n      containers:\n      - name: main\n        image: {refs[(d * 7) % 1000]}\n        ports: [{{containerPort: 8080}}]\n")
PY

echo "== digest-resolve: 10,000 docs, 1,000 distinct images, concurrency $CONC"
best=999
for run in 1 2 3; do
  s=$(date +%s.%N)
  "$BIN" --concurrency "$CONC" --lock-output "$WORK/lock.json" < "$WORK/stream.yaml" > "$WORK/pinned.yaml"
  e=$(date +%s.%N)
  t=$(echo "$e - $s" | bc -l); echo "  run $run: ${t}s"
  best=$(echo "if ($t < $best) $t else $best" | bc -l)
done
DR=$best
grep -c '@sha256:' "$WORK/pinned.yaml" | sed 's/^/  pinned values: /'

echo "== HTTP floor: 1,000 HEADs, concurrency $CONC (head_floor example)"
fbest=999
for run in 1 2 3; do
  s=$(date +%s.%N); "$FLOOR" "$CONC" < "$WORK/refs.txt" 2>/dev/null; e=$(date +%s.%N)
  t=$(echo "$e - $s" | bc -l); echo "  run $run: ${t}s"
  fbest=$(echo "if ($t < $fbest) $t else $fbest" | bc -l)
done
FL=$fbest

echo "== oci-client: the same 1,000 digests, concurrency $CONC (oci-client-floor)"
obest=999
for run in 1 2 3; do
  s=$(date +%s.%N); "$OCI" "$CONC" < "$WORK/refs.txt" 2>/dev/null; e=$(date +%s.%N)
  t=$(echo "$e - $s" | bc -l); echo "  run $run: ${t}s"
  obest=$(echo "if ($t < $obest) $t else $obest" | bc -l)
done
OC=$obest

echo "== skopeo inspect shell loop over a sample of $SAMPLE images (extrapolated to 1,000)"
head -n "$SAMPLE" "$WORK/refs.txt" > "$WORK/sample.txt"
s=$(date +%s.%N)
while read -r ref; do skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$ref" >/dev/null; done < "$WORK/sample.txt"
e=$(date +%s.%N)
SK_SAMPLE=$(echo "$e - $s" | bc -l)
SK=$(echo "$SK_SAMPLE * 1000 / $SAMPLE" | bc -l)

echo "== 50 MB stream from --lock (no network)"
python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
lock = json.load(open(f'{work}/lock.json'))
refs = sorted(lock['images'])
size, d = 0, 0
with open(f'{work}/big.yaml', 'w') as f:
    while size < 50 * 1000 * 1000:
        doc = (f"---\n# component {d}\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{d}\n  labels: {{app: \"app-{d}\", tier: 'backend'}}\n"
               f"spec:\n  replicas: 3\n  template:\n    metadata:\n      labels:\n        app: app-{d}\n    spec:\n      containers:\n      - name: main\n        image: {refs[d % len(refs)]}\n"
               f"        args: [\"--port\", \"8080\"]\n        env:\n        - name: A\n          value: \"some value {d}\"\n        resources:\n          limits: {{cpu: 500m, memory: 128Mi}}\n"
               f"      - name: sidecar\n        image: '{refs[(d * 13) % len(refs)]}'\n")
        f.write(doc); size += len(doc); d += 1
PY
BYTES=$(stat -c %s "$WORK/big.yaml")
lbest=999; cbest=999
TIMEFORMAT='%R %U %S'
for run in 1 2 3; do
  read -r t u sy < <( { time "$BIN" --lock "$WORK/lock.json" < "$WORK/big.yaml" > "$WORK/big.out"; } 2>&1 )
  c=$(echo "$u + $sy" | bc -l)
  echo "  run $run: wall ${t}s, cpu (user+sys) ${c}s"
  lbest=$(echo "if ($t < $lbest) $t else $lbest" | bc -l)
  cbest=$(echo "if ($c < $cbest) $c else $cbest" | bc -l)
done
LK=$lbest
NCPU=$(nproc)

printf '\n== results (best of 3; machine load average: %s)\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
printf 'digest-resolve, 10k docs / 1k images : %6.3f s\n' "$DR"
printf 'HTTP floor (1k HEADs, c=%s)          : %6.3f s   -> digest-resolve / floor = %.2fx (goal <= 2x)\n' "$CONC" "$FL" "$(echo "$DR / $FL" | bc -l)"
printf 'oci-client (1k digests, c=%s)        : %6.3f s   -> oci-client / floor = %.2fx, digest-resolve / oci-client = %.2fx\n' "$CONC" "$OC" "$(echo "$OC / $FL" | bc -l)" "$(echo "$DR / $OC" | bc -l)"
printf 'skopeo inspect loop (%s measured in %.2f s, x%s) : %6.1f s -> speedup = %.0fx (goal >= 20x)\n' "$SAMPLE" "$SK_SAMPLE" "$((1000 / SAMPLE))" "$SK" "$(echo "$SK / $DR" | bc -l)"
printf '50 MB --lock stream (%s bytes)  : %6.3f s wall = %.1f MB/s (goal >= 50 MB/s)\n' "$BYTES" "$LK" "$(echo "$BYTES / $LK / 1000000" | bc -l)"
printf '   cpu time %.3f s on %s cores = %.1f MB/s per core; %.1f MB/s if the cores were free (wall is inflated by machine load)\n' \
  "$cbest" "$NCPU" "$(echo "$BYTES / $cbest / 1000000" | bc -l)" "$(echo "$BYTES * $NCPU / $cbest / 1000000" | bc -l)"
