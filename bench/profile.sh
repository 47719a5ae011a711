#!/bin/sh
# Samples one scenario with perf (cpu-clock: this VM has no hardware
# counters) and writes the hottest symbols, per thread kind, to
# bench/out/perf.SCENARIO.txt. Sizes as for bench/run.sh (BENCH_* variables).
#
#   sh bench/profile.sh push_small
set -eu
bench=$(cd "$(dirname "$0")" && pwd)
scenario=$1
data="$bench/out/perf.$scenario.data"
# Build outside the profile, the NIF with its debug info (the profiling
# profile; priv/ holds that build until the next rebar3 compile).
GUN_NIF_PROFILE=profiling BENCH_BUILD_ONLY=1 sh "$bench/run.sh"
BENCH_NO_BUILD=1 BENCH_QUIET_WAIT="${BENCH_QUIET_WAIT:-30}" BENCH_ONLY="$scenario" \
	BENCH_ERL_FLAGS="+JPperf true" \
	perf record -e cpu-clock -F 4999 -g -o "$data" -- sh "$bench/run.sh"
{
	echo "## by thread"
	perf report -i "$data" --no-children --sort comm --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -20
	echo "## by symbol (self time)"
	perf report -i "$data" --no-children --sort comm,dso,sym --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -60
} > "$bench/out/perf.$scenario.txt"
echo "profile: $bench/out/perf.$scenario.txt"
