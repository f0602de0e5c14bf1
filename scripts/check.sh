#!/usr/bin/env bash
# Static checks of the workspace, run by CI before the tests (and by hand):
#   cargo fmt --check, cargo clippy (pedantic, -D warnings), cargo machete (no
#   unused dependencies), cargo deny (licences, bans, sources; advisories too
#   when the RustSec database can be fetched), shellcheck on every script.
# Installs cargo-machete, cargo-deny and shellcheck when missing (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

need_apt shellcheck
for tool in cargo-machete cargo-deny; do
  if ! command -v "$tool" >/dev/null; then
    step "installing $tool (cargo install --locked; a few minutes on a fresh machine)"
    cargo install --locked --quiet "$tool"
  fi
done

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
step "cargo machete"
cargo machete
step "cargo deny check licenses bans sources"
cargo deny --log-level error check licenses bans sources
# The advisory database is on GitHub, which CI cannot reach: checked when it can be fetched.
if timeout 60 cargo deny --log-level error fetch db >/dev/null 2>&1; then
  step "cargo deny check advisories"
  cargo deny --log-level error check advisories
else
  step "cargo deny check advisories: skipped (the RustSec advisory database cannot be fetched from here)"
fi
step "shellcheck"
mapfile -t scripts < <(shell_scripts)
shellcheck -x --source-path=SCRIPTDIR "${scripts[@]}"
step "ok: ${#scripts[@]} shell scripts, every crate"
