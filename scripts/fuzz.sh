#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a short time each (default 5s).
set -euo pipefail
fuzztime="${1:-5s}"
cd "$(dirname "$0")/.."
status=0
while IFS=: read -r file _ line; do
	name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(.*/\1/' <<<"$line")
	pkg="./$(dirname "$file")"
	echo "fuzz $pkg $name ($fuzztime)"
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" || status=1
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+\(' . | sed 's|^\./||')
exit $status
