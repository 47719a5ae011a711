#!/bin/sh
# Sets everything up on a fresh machine, builds, and runs the demo.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
exec escript scripts/demo.escript "$@"
