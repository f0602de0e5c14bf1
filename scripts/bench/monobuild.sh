#!/usr/bin/env bash
# Benchmark of `monobuild diff --format json` on synthetic monorepos (see gen-monorepo.py).
#
#   scripts/bench/monobuild.sh [--regen] [--runs N]
#
# - generates /tmp/mb-bench-10000 and /tmp/mb-bench-20000 (10,000 / 20,000 components, 20 files
#   each, layered diamond graph of ~5 edges per component, 1% of components changed on branch
#   `feature`), unless they exist (--regen makes them anew);
# - times `monobuild diff --format json --base-branch main` (feature-branch mode) against the git
#   commands any such tool runs anyway (`git diff -z -M --name-status main...HEAD` + `git ls-files -z`)
#   with hyperfine, on both repositories;
# - measures peak RSS with /usr/bin/time -v;
# - checks the targets: median <= 1.2x the git baseline (issue 17; was 2x), 20k <= 2.2x 10k, peak RSS < 200 MB.
# hyperfine, git, python3 and GNU time are installed with apt-get when missing and run as root.
# Results (hyperfine JSON, /usr/bin/time output, a summary) go to bench-results/monobuild/ (gitignored);
# the large diff output stays in /tmp.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
runs=20
regen=0
while [ $# -gt 0 ]; do
  case "$1" in
    --regen) regen=1 ;;
    --runs) runs="$2"; shift ;;
    *) echo "usage: $0 [--regen] [--runs N]" >&2; exit 2 ;;
  esac
  shift
done

# shellcheck source=scripts/lib.sh
. "$here/../lib.sh"
need_apt hyperfine git python3 time

target="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build --release -p monobuild --quiet)
mb="$target/release/monobuild"
out="$root/bench-results/monobuild"
mkdir -p "$out"

for n in 10000 20000; do
  repo="/tmp/mb-bench-$n"
  if [ "$regen" = 1 ] || [ ! -d "$repo/.git" ]; then
    python3 "$here/gen-monorepo.py" "$repo" --components "$n"
  fi
done

baseline='git diff -z -M --name-status main...HEAD >/dev/null && git ls-files -z >/dev/null'
for n in 10000 20000; do
  repo="/tmp/mb-bench-$n"
  echo "== $n components ($repo)" >&2
  (cd "$repo" && hyperfine --warmup 3 --runs "$runs" --export-json "$out/hyperfine-$n.json" \
      -n "monobuild-$n" "$mb diff --format json --base-branch main >/dev/null" \
      -n "git-$n" "$baseline")
  (cd "$repo" && /usr/bin/time -v "$mb" diff --format json --base-branch main 2>"$out/time-$n.txt" >"/tmp/mb-bench-diff-$n.json")
done

python3 - "$out" <<'PY'
import json, re, sys
out = sys.argv[1]
def median(n, name):
    data = json.load(open(f"{out}/hyperfine-{n}.json"))
    r = next(r for r in data["results"] if r["command"] == name)
    return r["median"], r["user"] + r["system"]
def rss(n):
    text = open(f"{out}/time-{n}.txt").read()
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 1024
m10, c10 = median(10000, "monobuild-10000")
g10, gc10 = median(10000, "git-10000")
m20, c20 = median(20000, "monobuild-20000")
g20, gc20 = median(20000, "git-20000")
doc = json.load(open("/tmp/mb-bench-diff-10000.json"))
lines = [
    f"10k components: monobuild median {m10*1000:.1f} ms (cpu {c10*1000:.1f} ms), git baseline {g10*1000:.1f} ms (cpu {gc10*1000:.1f} ms), ratio {m10/g10:.2f}x (target <= 1.2x)",
    f"20k components: monobuild median {m20*1000:.1f} ms, git baseline {g20*1000:.1f} ms, ratio {m20/g20:.2f}x",
    f"scaling 20k/10k: {m20/m10:.2f}x (target <= 2.2x)",
    f"peak RSS: 10k {rss(10000):.1f} MB, 20k {rss(20000):.1f} MB (target < 200 MB)",
    f"10k result: {len(doc['components'])} components, {sum(len(c['dependencies']) for c in doc['components'].values())} edges, "
    f"{sum(c['changed'] for c in doc['components'].values())} changed, {len(doc['schedule']['jobs'])} jobs in {len(doc['schedule']['stages'])} stages",
]
open(f"{out}/summary.txt", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
