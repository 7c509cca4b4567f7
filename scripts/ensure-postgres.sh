#!/usr/bin/env bash
# The store's tests run against a real PostgreSQL server that the test session starts on
# loopback. This makes sure the server binaries are there (Debian's packages).
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
  exit 0
fi
echo "ensure-postgres: installing PostgreSQL from Debian's packages"
if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
