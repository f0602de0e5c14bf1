#!/usr/bin/env bash
# Run every test of the workspace on this machine.
#
#   scripts/test.sh [CARGO TEST ARGS...]   every test (what CI runs); with -p CRATE,
#                                          that crate's (e.g. -p deploy-bot --test it)
#   scripts/test.sh --fast [ARGS...]       only what needs no engine, no builder and
#                                          no validator venv: unit tests and the
#                                          FAST_TESTS modules of each crate's
#                                          integration-test binary, every executable
#                                          at once, scratch files on tmpfs (535 tests,
#                                          about 23 s on 2 cores once built; no apt,
#                                          no venv). ARGS before `--` go to cargo,
#                                          after it to every test executable.
#
# Installs what the tests need when it is missing (as root, with apt-get and
# pip), then runs `cargo test --workspace`. The tests themselves start the real
# components they use on 127.0.0.1: docker-registry per test, one shared
# dockerd (stopped here at the end), git daemons, fake forge/kube endpoints.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

# Integration tests that use only git, the registry and loopback servers:
# PACKAGE:MODULE, a module of the package's one integration-test binary
# (PACKAGE/tests/it/MODULE.rs), run as the filter `MODULE::`.
FAST_TESTS=(
  monobuild:compat monobuild:errors monobuild:formats monobuild:git monobuild:index_scan monobuild:snapshot
  build-with-cache:parser build-with-cache:cli
  digest-resolve:resolve digest-resolve:yaml_as_kubectl digest-resolve:registry_client digest-resolve:promote
  stackgen:cli stackgen:plan
  deploy-bot:agent deploy-bot:notify deploy-bot:request
  microplatform-e2e:renderings
)
if [[ ${1:-} == --fast ]]; then
  shift
  cargo_args=() test_args=()
  while (($#)); do
    if [[ $1 == -- ]]; then shift; test_args=("$@"); break; fi
    cargo_args+=("$1"); shift
  done
  # Every test executable (unit tests of each library and binary, each crate's
  # tests/it binary) built once with the workspace's features (a `cargo test -p
  # CRATE` per crate would build each crate again with its own), then all run at
  # once as cargo runs them (from the crate's directory), the it binaries with
  # the crate's FAST_TESTS modules as filters. Most of these tests wait on
  # loopback servers and child processes: run one after another they leave the
  # second core idle. Lines: package, kind (lib, bin or it), crate directory,
  # executable.
  artifacts=$(mktemp)
  logs=$(mktemp -d)
  scratch=
  # The tests' scratch files (thousands of git repositories, registry storages,
  # fake clusters) on tmpfs when TMPDIR is not set and /dev/shm allows programs:
  # on an ext4 disk the journal costs more CPU than the tests (measured 32 s vs
  # 20 s on 2 cores).
  if [[ -z ${TMPDIR:-} && -d /dev/shm && -w /dev/shm ]] && ! findmnt -no OPTIONS /dev/shm | grep -qw noexec; then
    scratch=$(mktemp -d /dev/shm/microplatform-tests.XXXXXX)
    export TMPDIR=$scratch
  fi
  trap 'rm -rf "$artifacts" "$logs" ${scratch:+"$scratch"}' EXIT
  cargo test --workspace --lib --bins --test it --no-run --message-format=json-render-diagnostics "${cargo_args[@]}" >"$artifacts"
  mapfile -t binaries < <(python3 -c '
import json, pathlib, sys, tomllib
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") != "compiler-artifact" or not m.get("executable") or not m["profile"]["test"]:
        continue
    kind = "it" if m["target"]["name"] == "it" else m["target"]["kind"][0]
    manifest = pathlib.Path(m["manifest_path"])
    name = tomllib.loads(manifest.read_text())["package"]["name"]
    exe = m["executable"]
    print(f"{name}\t{kind}\t{manifest.parent}\t{exe}")
' "$artifacts")
  ((${#binaries[@]})) || { step "no test executable was built"; exit 1; }
  pids=() labels=()
  for b in "${binaries[@]}"; do
    IFS=$'\t' read -r package kind dir exe <<<"$b"
    filters=()
    if [[ $kind == it ]]; then
      for t in "${FAST_TESTS[@]}"; do [[ ${t%%:*} == "$package" ]] && filters+=("${t#*:}::"); done
      ((${#filters[@]})) || continue
    fi
    (cd "$dir" && "$exe" "${filters[@]}" "${test_args[@]}") >"$logs/${#pids[@]}" 2>&1 &
    pids+=("$!") labels+=("$package $kind${filters[*]:+ ${filters[*]}}")
  done
  failed=()
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || failed+=("${labels[$i]}")
    step "${labels[$i]}"
    cat "$logs/$i"
  done
  ((${#failed[@]} == 0)) || { step "failed: ${failed[*]}"; exit 101; }
  exit 0
fi

APT_PACKAGES=(git docker.io docker-registry buildah skopeo runc apache2-utils busybox-static jq python3-venv curl openssl python3-yaml chromium)
VENV="${MICROPLATFORM_VENV:-$HOME/.cache/microplatform/venv}"

need_apt "${APT_PACKAGES[@]}"

# Schema validators (kubernetes-validate for Kubernetes manifests, jsonschema
# for Argo workflows), in a venv the tests find through MICROPLATFORM_VENV.
if [[ ! -x "$VENV/bin/kubernetes-validate" ]] || ! "$VENV/bin/python" -c "import hera.workflows.models" 2>/dev/null; then
  echo "test.sh: creating validator venv in $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check kubernetes-validate jsonschema pyyaml hera-workflows
fi
export MICROPLATFORM_VENV="$VENV"

# The shared test dockerd (started lazily by the tests) is ours to stop.
DOCKERD_DIR="${MICROPLATFORM_TEST_DOCKERD_DIR:-/tmp/mpt-shared-dockerd}"
export MICROPLATFORM_TEST_DOCKERD_DIR="$DOCKERD_DIR"
stop_dockerd() {
  if [[ -f "$DOCKERD_DIR/dockerd.pid" ]]; then
    pid=$(cat "$DOCKERD_DIR/dockerd.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
    rm -f "$DOCKERD_DIR/dockerd.pid"
  fi
}
trap stop_dockerd EXIT
# A stale engine state (left by a run whose dockerd is gone) is thrown away, so
# every run starts from a clean engine (no old swarm, no old containers).
if [[ -d "$DOCKERD_DIR" ]] && ! { [[ -f "$DOCKERD_DIR/dockerd.pid" ]] && kill -0 "$(cat "$DOCKERD_DIR/dockerd.pid")" 2>/dev/null; }; then
  rm -rf "$DOCKERD_DIR" 2>/dev/null || true
fi

# The whole workspace, or the packages named with -p/--package (one crate's
# suite: scripts/test.sh -p deploy-bot --test it; a module: ... -- agent::).
scope=(--workspace)
for a in "$@"; do
  case $a in
    --) break ;;
    -p | -p?* | --package | --package=*) scope=() ;;
  esac
done
cargo build --workspace --bins
cargo test "${scope[@]}" "$@"
