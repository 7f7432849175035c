#!/bin/bash
# The image's HEALTHCHECK: `GET /health` on this container's gatewise, without curl.
# Healthy when the answer says {"status":"ok"}. The port is $GATEWISE_PORT (8787 unless
# set); a server started with --port N and no GATEWISE_PORT needs GATEWISE_PORT=N too.
set -eu
exec 3<>"/dev/tcp/127.0.0.1/${GATEWISE_PORT:-8787}"
printf 'GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
# exec: no child process is left behind if the check is killed on timeout.
exec grep -q '"status":"ok"' <&3
