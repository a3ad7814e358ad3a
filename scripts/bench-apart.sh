#!/usr/bin/env bash
# Runs a benchmark of replicator/e2e with the MongoDB emulator in a process
# of its own (cmd/mongoemu), so that the benchmark process's CPU is the
# replicator's and the embedded NATS server's alone, as it would be with
# MongoDB on another machine.
#
#   scripts/bench-apart.sh [go test flags...]
#   scripts/bench-apart.sh -bench BenchmarkEndToEnd -benchtime 1x -count 5
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'kill "$emu" 2>/dev/null || true; rm -rf "$dir"' EXIT
go build -o "$dir/mongoemu" ./cmd/mongoemu
# No oplog bound: a benchmark's backlog must not fall off the oplog.
"$dir/mongoemu" --listen 127.0.0.1:0 --oplog-max-bytes 0 >"$dir/uri" 2>"$dir/log" &
emu=$!
for _ in $(seq 100); do
	[[ -s "$dir/uri" ]] && break
	sleep 0.1
done
uri=$(head -1 "$dir/uri")
[[ -n "$uri" ]] || { echo "mongoemu did not start:" >&2; cat "$dir/log" >&2; exit 1; }
echo "MongoDB emulator apart at $uri" >&2
REPLICATOR_TEST_MONGO_URI="$uri" go test ./replicator/e2e -run '^$' -timeout 60m "$@"
