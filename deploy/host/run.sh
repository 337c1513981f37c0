#!/usr/bin/env bash
# The main job on a plain Linux host, as root: build, start the agent, and follow its
# events in compact form until Ctrl-C. Events are also kept as JSON lines in
# /var/log/tetragon/tetragon.log.
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/host/deps.sh
cargo build --release -p tetra-agent -p tetra-cli --bins
bin="${CARGO_TARGET_DIR:-target}/release"

log=/var/log/tetragon/tetragon.log
# Show only this run's events: start after what an earlier run left in the file.
start=$(( $(stat -c %s "$log" 2>/dev/null || echo 0) + 1 ))
"$bin/tetrad" --export-filename "$log" "$@" &
agent=$!
trap 'kill -INT $agent 2>/dev/null; wait $agent' EXIT INT TERM
until [ -e "$log" ] || ! kill -0 $agent 2>/dev/null; do sleep 0.2; done
kill -0 $agent || { echo "run.sh: tetrad did not start" >&2; exit 1; }
echo "run.sh: tetrad is running (pid $agent); events follow, Ctrl-C stops" >&2
tail -c +"$start" -F "$log" | "$bin/tetra" getevents -o compact
