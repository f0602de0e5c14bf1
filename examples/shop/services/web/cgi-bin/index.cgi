#!/bin/sh
# GET /: the front page. Greets in its own voice (libs/greeting) and asks
# the api service, found by its service name (API_URL, default
# http://api:8080), for its greeting; rendered with libs/page.
# The libraries are installed at /lib in the image (see the Dockerfile).
# shellcheck disable=SC1091
. /lib/greeting/greeting.sh
# shellcheck disable=SC1091
. /lib/page/page.sh
api=${API_URL:-http://api:8080}
if answer=$(timeout 5 wget -q -O - "$api/cgi-bin/greet?name=web" 2>/dev/null); then
  api_greeting=$(printf '%s' "$answer" | sed -n 's/.*"greeting":"\([^"]*\)".*/\1/p')
  status=ok
else
  api_greeting="(api unreachable at $api)"
  status=degraded
fi
printf 'Content-Type: text/html; charset=utf-8\r\n\r\n'
page_render "Welcome" <<HTML
<p id="web">web says: $(greet visitor)</p>
<p id="api">api says: $api_greeting</p>
<p id="status">status: $status</p>
HTML
