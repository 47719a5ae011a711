#!/bin/sh
# The benchmark: builds the NIF and the benchmark peer in release mode, starts
# the peer (bench/server, a native WebSocket server with pre-encoded frames),
# and runs every scenario with the gun API (bench/gun_bench.erl), printing one
# line per scenario; the table also goes to bench/out/latest.md.
#
#   sh bench/run.sh                 # the full run (a few minutes)
#   BENCH_QUICK=1 sh bench/run.sh   # smaller sizes, under a minute
#   BENCH_ONLY=push_small,echo_rtt sh bench/run.sh
#   sh bench/run.sh floor           # only the push_small floors (thread, scheduler)
#   sh bench/run.sh tls             # only the wss scenarios (*_tls)
#   GUN_DIR=/path/to/other/checkout sh bench/run.sh   # bench another tree of gun
#     (e.g. a commit exported with `git archive C | tar -x -C DIR`; set
#     BENCH_COMMIT=C then, for the results file)
#
# Sizes: see the head of bench/gun_bench.erl.
set -eu
case ${1:-} in
floor) export BENCH_ONLY=floor ;;
tls) export BENCH_ONLY=push_small_tls,push_large_tls,echo_rtt_tls ;;
"") ;;
*) echo "usage: sh bench/run.sh [floor|tls]" >&2; exit 2 ;;
esac
bench=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$bench")
gun_dir=${GUN_DIR:-$root}

mkdir -p "$bench/out"
if [ -z "${BENCH_NO_BUILD:-}" ]; then
echo "== building (release)" >&2
if ! (cd "$gun_dir" && rebar3 compile >"$bench/out/build.log" 2>&1); then
	cat "$bench/out/build.log" >&2
	echo "bench: building gun in $gun_dir failed" >&2
	exit 1
fi
cargo build --release --quiet --manifest-path "$bench/server/Cargo.toml"
cargo build --release --quiet --manifest-path "$bench/floor/Cargo.toml"
mkdir -p "$bench/out"
erlc -o "$bench/out" "$bench/gun_bench.erl" "$bench/gun_bench_floor.erl"
fi
[ -n "${BENCH_BUILD_ONLY:-}" ] && exit 0

# The conns scenario wants about 50,000 descriptors; raise the limit if we may.
want=120000
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $want ]; then
	ulimit -Hn $want 2>/dev/null || true
	ulimit -n $want 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi

# A fresh CA and server certificate for the wss scenarios, each run.
export BENCH_TLS_DIR="$bench/out/tls"
sh "$bench/certs.sh" "$BENCH_TLS_DIR"
export BENCH_WSBENCH="$bench/server/target/release/wsbench"
export BENCH_FLOOR="$bench/floor/target/release/libgun_bench_floor"
export BENCH_OUT="${BENCH_OUT:-$bench/out/latest.md}"
cd "$gun_dir"
# BENCH_ERL_FLAGS: extra emulator flags, e.g. "+JPperf true" for bench/profile.sh.
# shellcheck disable=SC2086
exec erl ${BENCH_ERL_FLAGS:-} -noshell -pa "$gun_dir/_build/default/lib/gun/ebin" -pa "$bench/out" \
	-eval 'try gun_bench:main() of _ -> halt(0) catch C:E:S -> io:format(standard_error, "~p:~p~n~p~n", [C, E, S]), halt(1) end.'
