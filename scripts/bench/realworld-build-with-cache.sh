#!/usr/bin/env bash
# build-with-cache over real-world Dockerfiles: does it read them as BuildKit does?
#
# Usage: scripts/bench/realworld-build-with-cache.sh [CORPUS]
#   CORPUS defaults to ../shared/realworld (relative to the repository root).
#   BWC=/path/to/build-with-cache uses that binary instead of building one.
#
# The corpus (CORPUS/dockerfiles, see its SOURCES.tsv) has, per file, a kind:
#   pos, bk-test         Dockerfiles BuildKit builds: the dry-run must succeed
#                        (BUILD_ARGS.tsv gives the --build-args a file needs);
#   neg-parser,
#   bk-test-neg          inputs BuildKit refuses: refused, naming file:line;
#   pos-parser           BuildKit's parser test files: `--dump-ast` must equal
#                        BuildKit's result file (buildkit-results/NAME.result).
# The corpus has no expected stage graph per file. If it ever carries one, as
# dockerfiles/expected/<file>.json with the dry-run's fields (target,
# stages[].name, .base, .depends_on), it is compared too.
#
# Prints one line:
#   build-with-cache: dockerfiles=N ok=N refused=N mismatched=N ast_ok=N ast_mismatched=N
# dockerfiles counts the pos, bk-test and negative files; ok = behaves as BuildKit
# (accepted, or refused with file:line for negatives); refused = a file BuildKit
# builds was refused; mismatched = a negative accepted (or refused without
# file:line), or a graph differing from an expected one. Details go to stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CORPUS="${1:-$ROOT/../shared/realworld}"
D="$CORPUS/dockerfiles"
[ -f "$D/SOURCES.tsv" ] || { echo "no $D/SOURCES.tsv" >&2; exit 2; }

if [ -z "${BWC:-}" ]; then
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
    cargo build --release -q -p build-with-cache --manifest-path "$ROOT/Cargo.toml"
    BWC="$CARGO_TARGET_DIR/release/build-with-cache"
fi

WORK="$(mktemp -d /tmp/bwc-realworld.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/ctx"

files=0 ok=0 refused=0 mismatched=0 ast_ok=0 ast_mismatched=0

build_args() {
    local f="$1" kv
    while IFS=$'\t' read -r file args _; do
        [ "$file" = "$f" ] || continue
        for kv in $args; do printf '%s\n' --build-arg "$kv"; done
    done <"$D/BUILD_ARGS.tsv"
}

graph() {
    jq -S '{target, stages: [.stages[] | {name, base, depends_on}]}' "$1"
}

start=$(date +%s%N)
while IFS=$'\t' read -r file _repo path _commit kind; do
    [ "$file" = "file" ] && continue
    f="$D/$file"
    case "$kind" in
    pos-parser)
        name="${path#frontend/dockerfile/parser/testfiles/}"
        name="${name%/Dockerfile}"
        expected="$D/buildkit-results/$name.result"
        if [ -f "$expected" ] && "$BWC" --dump-ast "$f" >"$WORK/ast" 2>"$WORK/err" &&
            cmp -s "$WORK/ast" "$expected"; then
            ast_ok=$((ast_ok + 1))
        else
            ast_mismatched=$((ast_mismatched + 1))
            echo "ast mismatch: $file" >&2
        fi
        ;;
    pos | bk-test)
        files=$((files + 1))
        mapfile -t args < <(build_args "$file")
        if "$BWC" --dry-run --backend docker -t 127.0.0.1:5000/realworld/x:1 "${args[@]}" \
            -f "$f" "$WORK/ctx" >"$WORK/plan.json" 2>"$WORK/err"; then
            exp="$D/expected/$(basename "$file").json"
            if [ -f "$exp" ] && ! cmp -s <(graph "$WORK/plan.json") <(graph "$exp"); then
                mismatched=$((mismatched + 1))
                echo "graph mismatch: $file" >&2
            else
                ok=$((ok + 1))
            fi
        else
            refused=$((refused + 1))
            echo "refused: $file: $(head -c 300 "$WORK/err")" >&2
        fi
        ;;
    neg-parser | bk-test-neg)
        files=$((files + 1))
        if "$BWC" --dry-run --backend docker -t 127.0.0.1:5000/realworld/x:1 \
            -f "$f" "$WORK/ctx" >/dev/null 2>"$WORK/err"; then
            mismatched=$((mismatched + 1))
            echo "accepted negative: $file" >&2
        elif grep -qF "$f:" "$WORK/err" && grep -qE ':[0-9]+: ' "$WORK/err"; then
            ok=$((ok + 1))
        else
            mismatched=$((mismatched + 1))
            echo "negative refused without file:line: $file: $(head -c 300 "$WORK/err")" >&2
        fi
        ;;
    esac
done <"$D/SOURCES.tsv"
end=$(date +%s%N)

echo "build-with-cache: dockerfiles=$files ok=$ok refused=$refused mismatched=$mismatched ast_ok=$ast_ok ast_mismatched=$ast_mismatched"
echo "took $(((end - start) / 1000000)) ms" >&2
