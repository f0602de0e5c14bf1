#!/bin/sh
# GET /: what this service offers.
printf 'Content-Type: text/plain\r\n\r\n'
echo "api: GET /cgi-bin/greet?name=NAME (JSON), GET /cgi-bin/health"
