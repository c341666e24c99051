#!/usr/bin/env bash
# Fuzzes `lethe serve`'s HTTP API from its own OpenAPI document with
# schemathesis (PyPI): every operation gets generated requests, valid and
# invalid, with an admin token, and the run fails on any 5xx answer (or a
# response that does not match the document, with --all-checks).
#
#   scripts/fuzz-api.sh [--examples N] [--all-checks] [--lethe PATH]
#
# It serves the demo shop (`lethe demo --serve`, SQLite, in a temporary
# directory), so it needs no database server. Installs schemathesis with pip
# when `st` is missing. Exit 0: no failures.
set -euo pipefail
cd "$(dirname "$0")/.."

examples=50
checks="not_a_server_error"
lethe=""
while [ $# -gt 0 ]; do
  case "$1" in
    --examples) examples="$2"; shift 2 ;;
    --all-checks) checks="all"; shift ;;
    --lethe) lethe="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

if ! command -v st >/dev/null; then
  python3 -m pip install -q schemathesis
fi
if [ -z "$lethe" ]; then
  cargo build -q -p lethe-cli
  lethe=target/debug/lethe
fi
lethe=$(realpath "$lethe")

dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$lethe" demo --dir "$dir/demo" --serve --listen "127.0.0.1:$port" > "$dir/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do
  grep -q 'lethe_[0-9a-f]\{64\}' "$dir/serve.log" 2>/dev/null && curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  sleep 0.2
done
token=$(grep -o 'lethe_[0-9a-f]\{64\}' "$dir/serve.log" | head -n1)
[ -n "$token" ] || { echo "the demo server did not start:" >&2; cat "$dir/serve.log" >&2; exit 1; }

# From the temporary directory: schemathesis keeps its cache (.schemathesis/)
# in the working directory.
cd "$dir"
st run "http://127.0.0.1:$port/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks "$checks" \
  --max-examples "$examples" \
  --workers 1 \
  --suppress-health-check all \
  --no-color
