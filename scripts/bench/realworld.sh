#!/usr/bin/env bash
# All three real-world checks over ../shared/realworld (issue 13), one line each:
#
#   scripts/bench/realworld.sh [CORPUS]   (default: ../shared/realworld beside the checkout)
#
#   digest-resolve:   realworld-digest-resolve.sh   (manifests: images found, refused, mismatched)
#   build-with-cache: realworld-build-with-cache.sh (Dockerfiles: BuildKit's AST and stage graph)
#   stackgen:         realworld-stackgen.sh         (stack files: compose-spec and docker/cli schemas)
#
# Each script's details go to stderr; stdout gets the three summary lines, then
#   realworld: found=N refused=N mismatched=N
# where found counts images found (digest-resolve), Dockerfiles read as BuildKit reads them
# (dry-run graph, or BuildKit's AST for its parser test files) and valid stack files
# (stackgen); refused counts valid inputs a tool refused; mismatched counts outputs that differ from the reference (and invalid inputs
# accepted). Exits 1 when any input is refused or mismatched, 2 when the corpus is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
CORPUS=$(realpath "${1:-../shared/realworld}")
[ -d "$CORPUS" ] || { echo "realworld: no corpus at $CORPUS (pass its path as the first argument)" >&2; exit 2; }

field() { # LINE NAME -> the value of NAME=value in LINE, 0 when absent
  local v
  v=$(tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p" | head -n1)
  echo "${v:-0}"
}

dr=$(scripts/bench/realworld-digest-resolve.sh "$CORPUS" | tail -n1)
echo "$dr"
bwc=$(scripts/bench/realworld-build-with-cache.sh "$CORPUS" | tail -n1)
echo "$bwc"
set +e
sg=$(REALWORLD="$CORPUS" scripts/bench/realworld-stackgen.sh | tail -n1)
set -e
echo "$sg"

found=$(($(field "$dr" found_images) + $(field "$bwc" ok) + $(field "$bwc" ast_ok) + $(field "$sg" valid)))
refused=$(($(field "$dr" refused) + $(field "$bwc" refused)))
mismatched=$(($(field "$dr" mismatched) + $(field "$bwc" mismatched) + $(field "$bwc" ast_mismatched) + $(field "$sg" invalid)))
echo "realworld: found=$found refused=$refused mismatched=$mismatched"
[ "$refused" -eq 0 ] && [ "$mismatched" -eq 0 ]
