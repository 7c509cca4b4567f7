#!/usr/bin/env bash
# The tests start real database servers themselves, on loopback only: PostgreSQL (the
# store's tests, transfers, the Hive metastore) and MariaDB (MySQL support); and OpenSSH
# servers inside the test hosts' network namespaces (the ssh provider; tests/hostlab.py),
# plus cron there (an agent's restart after a host reboot), the tools that build those
# hosts (iproute2's ip and ss; nsenter, unshare and setpriv are util-linux, always there;
# the OpenSSH client and ssh-keygen; ps) and what a host offers its nodes: Debian's
# python3.11 with venv/ensurepip and Debian's Java 17 at /usr/bin/java; and a Prometheus
# server (the monitoring tests scrape a cluster with it), without the node exporter its
# package recommends, which would listen on every address. This makes sure they are
# there, from Debian's packages. Debian's own services are not started: a policy-rc.d
# denies that for the length of the install.
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
for tool in ip ss; do
  command -v "$tool" >/dev/null 2>&1 || { missing+=(iproute2); break; }
done
if ! command -v ssh >/dev/null 2>&1 || ! command -v ssh-keygen >/dev/null 2>&1 || ! command -v ssh-keyscan >/dev/null 2>&1; then
  missing+=(openssh-client)
fi
command -v ps >/dev/null 2>&1 || missing+=(procps)
if [ ! -x /usr/bin/python3.11 ] || ! /usr/bin/python3.11 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing+=(python3.11 python3.11-venv)
fi
if [ ! -x /usr/bin/java ]; then
  missing+=(openjdk-17-jre-headless)
fi
bare=()  # installed without their recommended packages
command -v prometheus >/dev/null 2>&1 || bare+=(prometheus)
[ ${#missing[@]} -eq 0 ] && [ ${#bare[@]} -eq 0 ] && exit 0

echo "ensure-test-servers: installing ${missing[*]} ${bare[*]} from Debian's packages (servers not started)"
if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
policy=/usr/sbin/policy-rc.d
added_policy=
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod +x "$policy" && added_policy=1
fi
trap 'if [ -n "$added_policy" ]; then $SUDO rm -f "$policy"; fi' EXIT
$SUDO apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ${#bare[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${bare[@]}" >/dev/null
fi
