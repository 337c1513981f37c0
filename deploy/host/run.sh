#!/usr/bin/env bash
# The main job on a plain Linux host, as root: build, start the agent with the example
# policies, and follow its events in compact form over gRPC until Ctrl-C. Events are also
# kept as JSON lines in /var/log/tetragon/tetragon.log. Extra arguments go to tetrad.
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/host/deps.sh
cargo build --release -p tetra-agent -p tetra-cli --bins
bin="${CARGO_TARGET_DIR:-target}/release"

info=/var/run/tetragon/tetragon-info.json
rm -f "$info"
# Policies this kernel cannot attach (kprobes, LSM on a kernel without them) are
# reported with the reason and the others still load.
"$bin/tetrad" --export-filename /var/log/tetragon/tetragon.log \
    --tracing-policy-dir examples/tracingpolicy "$@" &
agent=$!
trap 'kill -INT $agent 2>/dev/null; wait $agent' EXIT INT TERM
until [ -s "$info" ] || ! kill -0 $agent 2>/dev/null; do sleep 0.2; done
kill -0 $agent || { echo "run.sh: tetrad did not start" >&2; exit 1; }
echo "run.sh: tetrad is running (pid $agent); events follow, Ctrl-C stops" >&2
# stdin from /dev/null: stream from the agent (it reads the address from $info).
"$bin/tetra" getevents -o compact < /dev/null
