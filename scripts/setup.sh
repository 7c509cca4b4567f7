#!/usr/bin/env bash
# Prepares a fresh machine for Corral: checks Python 3.11 and Java 17 (a JDK), installs
# Maven from Debian's packages if it is absent, creates .venv, installs Corral with its
# pinned dependencies and the Spark runtime (pyspark 4.3.0), and fetches the Hadoop 3.5.0
# runtime from Maven Central into the host's runtime cache (once), fetches the agent's
# wheels for SSH hosts (once), then builds the Spark and Hadoop class-data archives (once).
# Idempotent: a stamp file skips the install when pyproject.toml has not changed.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "setup: $*" >&2; exit 1; }

PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      PYTHON=$(command -v "$candidate"); break
    fi
  done
fi
[ -n "$PYTHON" ] || die "Python 3.11 is required: install it (e.g. apt-get install -y python3.11 python3.11-venv) or set PYTHON=/path/to/python3.11"

if ! command -v java >/dev/null 2>&1 && [ -z "${JAVA_HOME:-}" ]; then
  die "Java 17 is required and no 'java' was found: install it with 'apt-get install -y openjdk-17-jdk-headless' (or set JAVA_HOME)"
fi
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
major=$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
[ "$major" = "17" ] || die "Java 17 is required but '$JAVA' is Java ${major:-unknown}: install openjdk-17-jdk-headless and put it first on PATH (or set JAVA_HOME)"
command -v javac >/dev/null 2>&1 || [ -x "${JAVA_HOME:-/nonexistent}/bin/javac" ] \
  || die "a Java 17 JDK is required (javac not found): apt-get install -y openjdk-17-jdk-headless"

if ! command -v mvn >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "Maven is required to fetch Hadoop from Maven Central: install it (e.g. apt-get install maven)"
  echo "setup: installing Maven from Debian's packages (fetches Hadoop 3.5.0 from Maven Central)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven >/dev/null \
    || die "could not install Maven: run 'apt-get install maven' as root"
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv || die "could not create .venv (on Debian: apt-get install -y python3-venv)"
fi
stamp=.venv/.corral-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing Corral, its pinned dependencies and pyspark 4.3.0 into .venv (first time: a few minutes)"
  .venv/bin/python -m pip install --quiet --upgrade pip==25.3
  .venv/bin/python -m pip install --quiet -e ".[runtime,test]"
  touch "$stamp"
fi

# Hadoop 3.5.0 jars from Maven Central into ~/.cache/corral/runtime (a no-op once there).
.venv/bin/python -m corral.runtime.hadoop >/dev/null || die "could not fetch the Hadoop runtime (see the error above)"

# The agent's wheels for hosts with no internet (corral.runtime.wheels): the third-party
# closure from PyPI into ~/.cache/corral/wheels (once per set of versions), Corral's own
# wheel built from the sources (again only when they changed).
.venv/bin/python -m corral.runtime.wheels >/dev/null || die "could not fetch the agent's wheels (see the error above)"

# The Spark and Hadoop class-data archives (corral.runtime.cds): their JVMs start 35-45%
# cheaper with them. Built once per host and runtime; a failure is only a warning (the
# JVMs run without them).
.venv/bin/python -m corral.runtime.cds >/dev/null
