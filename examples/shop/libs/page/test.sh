#!/bin/sh
# Unit test of libs/page; run by the web image build and by hand.
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
PAGE_LIB_DIR=$dir
. "$dir/page.sh"
out=$(echo '<p>hi</p>' | page_render Title)
fail() { echo "libs/page test failed: $*" >&2; exit 1; }
printf '%s' "$out" | grep -q '<title>Title - shop</title>' || fail "title not filled in"
printf '%s' "$out" | grep -q '^<p>hi</p>$' || fail "body not filled in"
printf '%s' "$out" | grep -q '@' && fail "placeholder left: $out"
echo "libs/page: ok"
