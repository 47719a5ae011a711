# Only the benchmark lives here; the tests are `sh scripts/test.sh`.
.PHONY: bench bench-quick
bench:
	sh bench/run.sh
bench-quick:
	BENCH_QUICK=1 sh bench/run.sh
