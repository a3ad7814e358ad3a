#!/usr/bin/env bash
# Makes sure Prometheus and promtool are present, installing Debian's
# prometheus package when they are not. The alert-rule tests run
# `promtool test rules`; nothing is left running.
set -euo pipefail

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
	exit 0
fi
echo "promtool not found; installing Debian's prometheus package" >&2
if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
else
	echo "error: need root (or sudo) to run: apt-get install -y prometheus" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
# The package may start a server of its own; tests never use it.
$SUDO service prometheus stop >/dev/null 2>&1 || true
command -v promtool >/dev/null 2>&1 || { echo "error: prometheus installed but promtool still not found" >&2; exit 1; }
