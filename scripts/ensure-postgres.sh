#!/usr/bin/env bash
# Makes sure the PostgreSQL server binaries (initdb, postgres) are present,
# installing Debian's postgresql package when they are not. Tests start their
# own private servers from these binaries; nothing is left running.
set -euo pipefail

have_pg() {
	command -v initdb >/dev/null 2>&1 && return 0
	compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

if have_pg; then
	exit 0
fi
echo "PostgreSQL server binaries not found; installing Debian's postgresql package" >&2
if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
else
	echo "error: need root (or sudo) to run: apt-get install -y postgresql" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq postgresql >/dev/null
# The package starts a cluster of its own; tests never use it.
$SUDO service postgresql stop >/dev/null 2>&1 || true
have_pg || { echo "error: postgresql installed but initdb still not found" >&2; exit 1; }
