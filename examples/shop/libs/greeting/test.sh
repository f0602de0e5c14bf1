#!/bin/sh
# Unit test of libs/greeting; run by the image builds of its dependents
# (`sh libs/greeting/test.sh`) and by hand. Exits non-zero on failure.
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
GREETING_LIB_DIR=$dir
. "$dir/greeting.sh"
word=$(head -n 1 "$dir/greetings.txt")
fail() { echo "libs/greeting test failed: $*" >&2; exit 1; }
[ -n "$word" ] || fail "greetings.txt has an empty first line"
[ "$(greet Ann)" = "$word, Ann!" ] || fail "greet Ann gave '$(greet Ann)'"
[ "$(greet)" = "$word, world!" ] || fail "greet without a name gave '$(greet)'"
[ "$(greet 'a<b>c')" = "$word, abc!" ] || fail "names are not cleaned"
[ "$(greeting_query_param name 'x=1&name=Bo+Li')" = "Bo Li" ] || fail "query parameter parsing"
echo "libs/greeting: ok"
