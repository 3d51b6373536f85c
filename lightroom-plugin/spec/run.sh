#!/usr/bin/env bash
# Runs the Lightroom plug-in specs in Lua 5.1 (busted) against a real Retouch Bridge.
#
#   lightroom-plugin/spec/run.sh            (from anywhere; RB_PYTHON picks the Python)
#
# Starts `python -m bridge serve` on a free port with a throw-away RB_HOME, writes the
# fixture photos with the bridge's Python, runs busted with TAP output, stops the bridge,
# and ends with the line "N passed, N failed". Exit status is non-zero on any failure.
set -u

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PLUGIN_ROOT="$(dirname "$HERE")"
REPO="$(dirname "$PLUGIN_ROOT")"
PY="${RB_PYTHON:-$REPO/.venv/bin/python}"
BUSTED="${BUSTED:-busted}"

fail() {
	echo "spec/run.sh: $*" >&2
	echo "0 passed, 1 failed"
	exit 1
}

for tool in lua5.1 "$BUSTED"; do
	command -v "$tool" >/dev/null 2>&1 || fail "'$tool' is not installed (Debian: apt-get install lua5.1 lua-busted lua-socket)"
done
lua5.1 -e 'require "socket.http"; require "lfs"' 2>/dev/null || fail "LuaSocket or LuaFileSystem missing for Lua 5.1 (apt-get install lua-socket lua-filesystem)"
[ -x "$PY" ] || fail "no Python at $PY: set RB_PYTHON to the bridge's Python"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/rb-lua-spec.XXXXXX")"
BRIDGE_PID=""
cleanup() {
	if [ -n "$BRIDGE_PID" ] && kill -0 "$BRIDGE_PID" 2>/dev/null; then
		kill "$BRIDGE_PID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$BRIDGE_PID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$BRIDGE_PID" 2>/dev/null
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export RB_HOME="$WORK/home"
mkdir -p "$RB_HOME" "$WORK/tmp"
PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')" \
	|| fail "could not find a free port"

(cd "$REPO" && exec "$PY" -m bridge serve --port "$PORT") >"$WORK/bridge.log" 2>&1 &
BRIDGE_PID=$!

ready=""
for _ in $(seq 600); do
	if grep -q "listening on http://127.0.0.1:$PORT" "$WORK/bridge.log" 2>/dev/null; then ready=1; break; fi
	kill -0 "$BRIDGE_PID" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$ready" ]; then
	echo "--- bridge log ---" >&2
	cat "$WORK/bridge.log" >&2
	fail "the bridge did not start on port $PORT"
fi
TOKEN="$(tr -d '[:space:]' <"$RB_HOME/config/token")"
[ -n "$TOKEN" ] || fail "no pairing token in $RB_HOME/config/token"

"$PY" "$HERE/support/make_fixtures.py" "$WORK/fixtures" || fail "could not write the fixture photos"

export RB_SPEC_URL="http://127.0.0.1:$PORT"
export RB_SPEC_TOKEN="$TOKEN"
export RB_SPEC_PYTHON="$PY"
export RB_SPEC_FIXTURES="$WORK/fixtures"
export RB_SPEC_TMP="$WORK/tmp"
export RB_SPEC_BRIDGE_LOG="$WORK/bridge.log"
export RB_SPEC_SHARED="${RB_SHARED_DIR:-$REPO/../shared}"

cd "$PLUGIN_ROOT" || fail "no $PLUGIN_ROOT"
"$BUSTED" --output=TAP "$@" >"$WORK/tap.txt" 2>&1
status=$?
cat "$WORK/tap.txt"

passed="$(grep -c '^ok ' "$WORK/tap.txt")"
failed="$(grep -c '^not ok ' "$WORK/tap.txt")"
skipped="$(grep -c '^ok .*# SKIP' "$WORK/tap.txt")"
passed=$((passed - skipped))
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
	# busted itself failed (a spec file that does not load): count it.
	failed=1
fi
if [ "$failed" -ne 0 ]; then
	echo "--- bridge log (last 40 lines) ---"
	tail -n 40 "$WORK/bridge.log"
fi
[ "$skipped" -gt 0 ] && echo "$skipped skipped"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
