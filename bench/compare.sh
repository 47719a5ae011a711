#!/bin/sh
# Before and after in one sitting: runs the scenarios on tree A, then on
# tree B, ROUNDS times, alternating, and prints each figure of every run
# and their medians. On a shared 2-core VM one run of each proves little:
# figures of one tree move by 2x between runs.
#
#   sh bench/compare.sh OLD_TREE NEW_TREE [ROUNDS]
#   BENCH_ONLY=send_small,send_batch BENCH_SEND_N=200000 sh bench/compare.sh /tmp/old . 5
#
# A tree is a checkout of gun (e.g. `git worktree add /tmp/old COMMIT`);
# each is built first. Sizes and BENCH_ONLY as for bench/run.sh (default
# here: push_small,send_small,send_batch,echo_rtt; the *_tls variants and
# floor are parsed too).
set -eu
bench=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 2 ] || { echo "usage: sh bench/compare.sh OLD_TREE NEW_TREE [ROUNDS]" >&2; exit 2; }
a=$(cd "$1" && pwd)
b=$(cd "$2" && pwd)
rounds=${3:-5}
export BENCH_ONLY="${BENCH_ONLY:-push_small,send_small,send_batch,echo_rtt}"
export BENCH_QUIET_WAIT="${BENCH_QUIET_WAIT:-20}"
log="$bench/out/compare.log"
mkdir -p "$bench/out"
: >"$log"

for tree in "$a" "$b"; do
	GUN_DIR=$tree BENCH_BUILD_ONLY=1 sh "$bench/run.sh"
done
BENCH_BUILD_ONLY=1 sh "$bench/run.sh"   # the driver and the server, from this tree

i=1
while [ "$i" -le "$rounds" ]; do
	for tree in "$a" "$b"; do
		echo "== round $i: $tree" >&2
		GUN_DIR=$tree BENCH_NO_BUILD=1 BENCH_OUT="$bench/out/compare.md" sh "$bench/run.sh" 2>&1 |
			grep -v '^#\|^results\|^(machine' | sed "s|^|$tree |" >>"$log"
	done
	i=$((i + 1))
done

# One value per tree, scenario and measure: the figure in the scenario's
# own unit (rates in M/s, echo_rtt's p50 and p99 in us) and long_schedule.
awk -v a="$a" -v b="$b" '
function rate(v, unit) { return unit == "k" ? v / 1000 : v }
{
	tree = $1; name = $2
	for (f = 3; f <= NF; f++) if ($f == "long_schedule") ls = $(f + 1)
	if (name ~ /^echo_rtt/) {
		add(tree, name " p50 us", $4); add(tree, name " p99 us", $7)
	} else if ($5 == "msgs/s") {
		add(tree, name " M msgs/s", rate($3, $4))
	} else {
		add(tree, name " " $4, $3)
	}
	add(tree, name " long_schedule", ls)
}
function add(t, k, v) { n = ++count[t, k]; val[t, k, n] = v; keys[k] = 1 }
function median(t, k,    n, i, j, x, s) {
	n = count[t, k]
	for (i = 1; i <= n; i++) s[i] = val[t, k, i] + 0
	for (i = 2; i <= n; i++) { x = s[i]; for (j = i - 1; j >= 1 && s[j] > x; j--) s[j + 1] = s[j]; s[j + 1] = x }
	return n % 2 ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2
}
function runs(t, k,    i, out) {
	for (i = 1; i <= count[t, k]; i++) out = out sprintf(" %s", val[t, k, i])
	return out
}
END {
	for (k in keys)
		printf "%-34s %10.3g %10.3g  %s |%s\n", k, median(a, k), median(b, k), runs(a, k), runs(b, k)
}' "$log" | sort >"$bench/out/compare.txt"
printf "%-34s %10s %10s   runs (A | B)\n" "measure" "A median" "B median"
cat "$bench/out/compare.txt"
echo "A = $a"
echo "B = $b"
echo "every run: $log"
