#!/usr/bin/env bash
# The store-and-forward demo: the reference receiver, the agent with a generated event stream,
# and a receiver outage in the middle: the backlog builds in the outbox and drains when it returns.
set -euo pipefail
BIN=${1:-.build/debug/edge-agent}
DIR=$(mktemp -d /tmp/edge-agent-demo.XXXXXX)
PORT=${DEMO_PORT:-18480}
cleanup() { kill "${AGENT:-}" "${RECEIVER:-}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
cat > "$DIR/agent.yaml" <<YAML
version: 1
agent: { id: demo-edge, site: demo-plant, line: line-1, data_dir: $DIR/data, http: { listen: "off" } }
sinks:
  - name: receiver
    http: { url: "http://127.0.0.1:$PORT/v1/events" }
    retry: { initial: 200ms, max: 2s }
YAML
status() { "$BIN" outbox status --config "$DIR/agent.yaml" | sed 's/^/  /'; }
start_receiver() { "$BIN" receive --listen 127.0.0.1:$PORT --db "$DIR/received.db" >>"$DIR/received.jsonl" 2>>"$DIR/receiver.log" & RECEIVER=$!; }

echo "== edge-agent demo in $DIR"
start_receiver
"$BIN" run --config "$DIR/agent.yaml" --inject-events 20000 --inject-rate 1000 2>"$DIR/agent.log" & AGENT=$!
sleep 4; echo "== flowing (1000 events/s):"; status
kill "$RECEIVER"; wait "$RECEIVER" 2>/dev/null || true
echo "== receiver down for 8 s: the backlog builds in the outbox"
sleep 8; status
start_receiver
echo "== receiver back: the agent drains the backlog by itself"
sleep 4; status
kill -TERM "$AGENT"; wait "$AGENT" || true
echo "== received $(wc -l < "$DIR/received.jsonl") events, each once; the last one:"
tail -n 1 "$DIR/received.jsonl"
echo "== agent log (logfmt):"; sed 's/^/  /' "$DIR/agent.log"
