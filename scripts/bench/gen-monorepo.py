#!/usr/bin/env python3
"""Generate a synthetic monorepo for the monobuild benchmark, quickly, with `git fast-import`.

    gen-monorepo.py DIR [--components N] [--files-per-component F] [--deps D] [--changed-percent P]

Layout: N components in layers (`layer07/c01234/`), each with a `Dependencies` manifest and F-1
source files in two subdirectories. Every component of layer L > 0 depends on D components of
layer L-1 (a layered "diamond" graph: many paths share nodes; about N*D edges), one in ten strong.
Branch `main` holds everything; branch `feature` (checked out) changes one file in P percent of the
components, spread over all layers. Deterministic (fixed seed).
"""

import argparse
import os
import random
import shutil
import subprocess
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--components", type=int, default=10_000)
    ap.add_argument("--files-per-component", type=int, default=20)
    ap.add_argument("--deps", type=int, default=5)
    ap.add_argument("--layers", type=int, default=0, help="default: components / 500")
    ap.add_argument("--changed-percent", type=float, default=1.0)
    args = ap.parse_args()

    n = args.components
    layers = args.layers or max(2, n // 500)
    per_layer = (n + layers - 1) // layers
    rng = random.Random(42)
    names = []
    layer_of = []
    for i in range(n):
        layer = i // per_layer
        names.append(f"layer{layer:02d}/c{i:05d}")
        layer_of.append(layer)
    by_layer = {}
    for i, layer in enumerate(layer_of):
        by_layer.setdefault(layer, []).append(i)

    deps = []
    edges = 0
    for i in range(n):
        layer = layer_of[i]
        if layer == 0:
            deps.append([])
            continue
        below = by_layer[layer - 1]
        chosen = sorted(rng.sample(below, min(args.deps, len(below))))
        lines = []
        for d in chosen:
            strong = rng.random() < 0.1
            lines.append(("!" if strong else "") + names[d])
        deps.append(lines)
        edges += len(lines)

    if os.path.exists(args.dir):
        shutil.rmtree(args.dir)
    os.makedirs(args.dir)
    env = dict(os.environ, GIT_AUTHOR_NAME="Bench", GIT_AUTHOR_EMAIL="bench@example.com",
               GIT_COMMITTER_NAME="Bench", GIT_COMMITTER_EMAIL="bench@example.com")
    subprocess.run(["git", "init", "-q", "-b", "main", args.dir], check=True, env=env)
    fi = subprocess.Popen(["git", "fast-import", "--quiet"], cwd=args.dir, stdin=subprocess.PIPE, env=env)
    out = fi.stdin

    def data(b: bytes) -> None:
        out.write(b"data %d\n" % len(b))
        out.write(b)
        out.write(b"\n")

    def commit(branch: str, msg: str, when: int, parent: str | None) -> None:
        out.write(f"commit refs/heads/{branch}\n".encode())
        out.write(f"committer Bench <bench@example.com> {when} +0000\n".encode())
        data(msg.encode())
        if parent:
            out.write(f"from {parent}\n".encode())

    files = 0
    commit("main", "synthetic monorepo", 1_700_000_000, None)
    out.write(b"M 100644 inline Cargo.lock\n")
    data(b"# global input\n")
    for i in range(n):
        base = names[i]
        out.write(f"M 100644 inline {base}/Dependencies\n".encode())
        data(("\n".join(deps[i]) + "\n").encode() if deps[i] else b"")
        files += 1
        for j in range(args.files_per_component - 1):
            sub = "src" if j % 2 == 0 else "test"
            out.write(f"M 100644 inline {base}/{sub}/f{j:02d}.txt\n".encode())
            data(f"component {i} file {j}\n".encode())
            files += 1
    out.write(b"\n")

    changed = sorted(rng.sample(range(n), max(1, int(n * args.changed_percent / 100))))
    commit("feature", "change 1% of components", 1_700_000_100, "refs/heads/main")
    for i in changed:
        out.write(f"M 100644 inline {names[i]}/src/f00.txt\n".encode())
        data(f"component {i} file 0, changed\n".encode())
    out.write(b"\n")
    out.close()
    if fi.wait() != 0:
        print("git fast-import failed", file=sys.stderr)
        return 1
    subprocess.run(["git", "checkout", "-q", "-f", "feature"], cwd=args.dir, check=True, env=env)
    print(f"{args.dir}: {n} components, {files + 1} files, {edges} edges, {layers} layers, "
          f"{len(changed)} components changed on branch feature", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
