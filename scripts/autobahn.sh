#!/bin/sh
# Runs the Autobahn|Testsuite client cases (all of 1-13 by default) against
# gun with scripts/autobahn_testee.escript, and prints the summary table.
# It needs the fuzzingserver tool of this workplace beside the repository
# (../shared/tools/autobahn); the project's own tests never do.
#
# usage: sh scripts/autobahn.sh [-c CASES] [-x EXCLUDE] [-o OUTDIR] [-p PORT]
#   e.g. sh scripts/autobahn.sh -x '12.*,13.*'     (cases 1-11 only)
# Environment: AUTOBAHN_VENV (default /tmp/abfuzz), AUTOBAHN_TOOLS.
set -eu
cd "$(dirname "$0")/.."

TOOLS=${AUTOBAHN_TOOLS:-../shared/tools/autobahn}
VENV=${AUTOBAHN_VENV:-/tmp/abfuzz}
OUT=_build/autobahn
PORT=9001
CASES='*'
EXCLUDE=''
while getopts "c:x:o:p:" opt; do
	case "$opt" in
		c) CASES=$OPTARG ;;
		x) EXCLUDE=$OPTARG ;;
		o) OUT=$OPTARG ;;
		p) PORT=$OPTARG ;;
		*) sed -n '2,9p' "$0"; exit 64 ;;
	esac
done

if [ ! -x "$TOOLS/run_client_suite.sh" ]; then
	echo "no Autobahn tools at $TOOLS (set AUTOBAHN_TOOLS)" >&2
	exit 2
fi
# setup.sh is idempotent and quick once the venv exists.
"$TOOLS/setup.sh" "$VENV"
rebar3 compile

start=$(date +%s)
"$TOOLS/run_client_suite.sh" -e "$VENV" -p "$PORT" -c "$CASES" -x "$EXCLUDE" -o "$OUT" -- \
	escript scripts/autobahn_testee.escript
end=$(date +%s)
echo "$(date -u '+%Y-%m-%d'): wall time $((end - start)) s; reports in $OUT/index.html"
