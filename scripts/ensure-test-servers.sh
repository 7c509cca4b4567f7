#!/usr/bin/env bash
# The tests start real database servers themselves, on loopback only: PostgreSQL (the
# store's tests, transfers, the Hive metastore) and MariaDB (MySQL support); and OpenSSH
# servers inside the test hosts' network namespaces (the ssh provider), plus cron there
# (an agent's restart after a host reboot). This makes sure
# the server binaries are there, from Debian's packages. Debian's own services are not
# started: a policy-rc.d denies that for the length of the install.
set -euo pipefail
missing=()
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
if ! command -v mariadb-install-db >/dev/null 2>&1 || { ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; }; then
  missing+=(mariadb-server)
fi
if [ ! -x /usr/sbin/sshd ]; then
  missing+=(openssh-server)
fi
if ! command -v cron >/dev/null 2>&1 && [ ! -x /usr/sbin/cron ]; then
  missing+=(cron)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

echo "ensure-test-servers: installing ${missing[*]} from Debian's packages (servers not started)"
if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
policy=/usr/sbin/policy-rc.d
added_policy=
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod +x "$policy" && added_policy=1
fi
trap 'if [ -n "$added_policy" ]; then $SUDO rm -f "$policy"; fi' EXIT
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
