# shellcheck shell=bash
# What the scripts share, sourced (`. scripts/lib.sh`), never run:
#   need_apt PKG...        install missing Debian packages (as root), else name them and exit 1
#   docker_cli             the docker CLI to use (Debian's 20.10 client: BuildKit built in)
#   load_settings STATE    export the MICROPLATFORM_* settings of local-platform's STATE/env
#                          that are not already set (flags and the environment win)
#   step MESSAGE           a progress line on stderr, prefixed with the script's name
#   shell_scripts          every shell script of the repository, one per line
# Rules (tags, hashes, names, registries) live in the tools, not here.

_lib_name=$(basename "${0:-script}")

step() { printf '%s: %s\n' "$_lib_name" "$*" >&2; }

need_apt() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  if [[ $(id -u) -eq 0 ]]; then
    step "installing ${missing[*]} (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    step "missing packages: ${missing[*]} (run as root, or: sudo apt-get install -y --no-install-recommends ${missing[*]})"
    exit 1
  fi
}

docker_cli() {
  # The 28.x client in /usr/local/bin wants the buildx plugin for BuildKit.
  if [[ -x /usr/bin/docker ]]; then echo /usr/bin/docker; else command -v docker || echo docker; fi
}

load_settings() {
  local file=$1/env k v
  [[ -f $file ]] || return 0
  while IFS='=' read -r k v; do
    [[ $k == MICROPLATFORM_* && -z ${!k:-} ]] && export "$k=$v"
  done <"$file"
  return 0
}

shell_scripts() {
  local root f
  root=$(git rev-parse --show-toplevel 2>/dev/null || pwd)
  git -C "$root" ls-files -z | while IFS= read -r -d '' f; do
    case $f in
      *.sh | *.cgi | .ci/run) echo "$root/$f" ;;
      *.*) ;;
      *) head -c 64 "$root/$f" 2>/dev/null | head -n 1 | grep -qE '^#!.*(ba)?sh' && echo "$root/$f" ;;
    esac
  done
}
