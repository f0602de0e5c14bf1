# shellcheck shell=bash
# Sourced by the benchmarks: `need PACKAGE:COMMAND ...` installs the Debian packages of missing
# commands with apt-get when run as root, else names them and exits 1.
need() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair#*:}" >/dev/null || missing+=("${pair%%:*}")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "missing packages: ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
}
