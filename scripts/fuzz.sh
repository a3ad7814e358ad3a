#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a short budget each.
#
# The default budget is a number of executions (5000x), not a duration: with
# a duration, Go 1.26's fuzz coordinator can report a spurious "context
# deadline exceeded" failure when the deadline races a busy worker
# (golang/go#75804, fixed in Go 1.27). A count has no deadline to race. A
# real finding always writes its input under testdata/fuzz/<target>/.
set -euo pipefail
fuzztime="${1:-5000x}"
cd "$(dirname "$0")/.."
status=0
while IFS=: read -r file _ line; do
	name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(.*/\1/' <<<"$line")
	pkg="./$(dirname "$file")"
	echo "fuzz $pkg $name ($fuzztime)"
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" || status=1
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+\(' . | sed 's|^\./||')
exit $status
