# shellcheck shell=bash
# What the scripts share, sourced (`. scripts/lib.sh`), never run:
#   need_apt PKG...        install missing Debian packages (as root), else name them and exit 1
#   docker_cli             the docker CLI to use (Debian's 20.10 client: BuildKit built in)
#   load_settings STATE    export the MICROPLATFORM_* settings of local-platform's STATE/env
#                          that are not already set (flags and the environment win)
#   step MESSAGE           a progress line on stderr, prefixed with the script's name
#   shell_scripts          every shell script of the repository, one per line
#   now                    the time in seconds since the epoch (nanosecond fraction)
#   seconds START [END]    END (default now) minus START, two decimals
#   elapsed START          seconds since START for a progress line: `1.2s`
#   median                 the median of the numbers on stdin, one decimal
#   free_port              a TCP port free on 127.0.0.1 now
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

now() { date +%s.%N; }

seconds() { awk -v a="$1" -v b="${2:-$(now)}" 'BEGIN { printf "%.2f", b - a }'; }

elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.1f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
