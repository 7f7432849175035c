#!/usr/bin/env bash
# Installs redis-server from Debian's packages when it is missing: the replica tests start
# their own servers on free loopback ports (crates/gateway-http/tests/replicas.rs).
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y -q redis-server >/dev/null 2>&1 || {
  $sudo apt-get update -q >/dev/null
  $sudo apt-get install -y -q redis-server >/dev/null
}
# The package may start a system server; the tests use their own.
$sudo service redis-server stop >/dev/null 2>&1 || true
redis-server --version
