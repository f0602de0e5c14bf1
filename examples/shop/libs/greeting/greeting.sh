# shellcheck shell=sh
# libs/greeting: the shop's greeting, shared by services/api and services/web.
# Source it (`. /lib/greeting/greeting.sh`); GREETING_LIB_DIR points at the
# directory holding greetings.txt (default: /lib/greeting, where the images
# install it).

GREETING_LIB_DIR=${GREETING_LIB_DIR:-/lib/greeting}

# The greeting word: the first line of greetings.txt.
greeting_word() {
  head -n 1 "$GREETING_LIB_DIR/greetings.txt"
}

# Keep only letters, digits, space, '-' and '_' (at most 40 characters).
greeting_clean_name() {
  printf '%s' "$1" | tr -cd 'A-Za-z0-9 _-' | head -c 40
}

# greet NAME: "Hello, NAME!" (NAME defaults to "world").
greet() {
  name=$(greeting_clean_name "${1:-}")
  printf '%s, %s!\n' "$(greeting_word)" "${name:-world}"
}

# greeting_query_param KEY QUERY_STRING: the URL-decoded value of KEY.
greeting_query_param() {
  printf '%s' "$2" | tr '&' '\n' | sed -n "s/^$1=//p" | head -n 1 | sed 's/+/ /g; s/%20/ /g'
}
