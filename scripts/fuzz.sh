#!/bin/sh
# Fuzzing of the protocol core (fuzz/README.md says what each target checks).
#
#   sh scripts/fuzz.sh smoke [SECONDS]        stable, no cargo-fuzz: replay the
#                                             corpus, then SECONDS (default 8) of
#                                             mutations per target
#   sh scripts/fuzz.sh long TARGET [SECONDS]  libFuzzer on nightly (default 600 s),
#                                             new finds merged into fuzz/corpus/TARGET
#   sh scripts/fuzz.sh cmin TARGET            minimise fuzz/corpus/TARGET, keeping
#                                             the hand-made seed-* inputs
#   sh scripts/fuzz.sh replay TARGET FILE...  run inputs through a target (stable)
#   sh scripts/fuzz.sh seeds                  rewrite the seed-* inputs
#
# FUZZ_SEED=N makes a smoke run repeat an earlier one's mutations.
# FUZZ_SANITIZER=none runs libFuzzer without AddressSanitizer (faster; the
# core is safe Rust, ASan watches the unsafe code of the crates under it).
set -eu
cd "$(dirname "$0")/../fuzz"

# The stable runner builds without libFuzzer, so no C++ or nightly is needed.
stable() {
    cargo run --quiet --release --no-default-features --bin "$@"
}

need_cargo_fuzz() {
    if ! rustup toolchain list | grep -q '^nightly'; then
        echo "fuzz.sh: libFuzzer runs need a nightly toolchain (rustup toolchain install nightly)" >&2
        exit 1
    fi
    if ! cargo fuzz --version >/dev/null 2>&1; then
        cargo install cargo-fuzz --locked
    fi
}

target_arg() {
    case "${1:-}" in
        frame_decoder | message_reassembler | handshake_response) ;;
        *)
            echo "fuzz.sh: TARGET is one of frame_decoder, message_reassembler, handshake_response" >&2
            exit 2
            ;;
    esac
}

# What `cargo fuzz cmin` does, into the first directory from the others.
merge() {
    cargo +nightly fuzz run -s "${FUZZ_SANITIZER:-address}" "$@" -- -merge=1
}

# Files and bytes (du would count a block per file).
size() {
    echo "$(find "$1" -type f | wc -l) inputs, $(find "$1" -type f -exec cat {} + | wc -c) bytes"
}

# Keeps only the inputs that add coverage to what the seeds already reach:
# libFuzzer's merge adds to the first directory from the others.
minimise() {
    target=$1
    rest=target/cmin/$target
    rm -rf "$rest"
    mkdir -p "$rest"
    find "corpus/$target" -type f ! -name 'seed-*' -exec mv {} "$rest/" \;
    mkdir -p target/logs
    if ! merge "$target" "corpus/$target" "$rest" >"target/logs/cmin-$target.log" 2>&1; then
        find "$rest" -type f -exec mv {} "corpus/$target/" \;
        echo "fuzz.sh: merge failed, corpus left as it was (fuzz/target/logs/cmin-$target.log)" >&2
        exit 1
    fi
    grep -a 'MERGE-OUTER: .* new files' "target/logs/cmin-$target.log" || true
    rm -rf "$rest"
}

mode=${1:-smoke}
case "$mode" in
    smoke)
        stable smoke -- --seconds "${2:-8}"
        ;;
    replay)
        shift
        target_arg "${1:-}"
        stable smoke -- --replay "$@"
        ;;
    seeds)
        stable seeds
        ;;
    long)
        target_arg "${2:-}"
        target=$2
        seconds=${3:-600}
        need_cargo_fuzz
        # New finds go to a scratch corpus first, so the committed one only
        # ever gets what the merge keeps.
        work=target/corpus/$target
        mkdir -p "$work" target/logs
        log=target/logs/$target-$(date +%Y%m%d-%H%M%S).log
        echo "== cargo fuzz run $target for $seconds s (log: fuzz/$log)"
        status=0
        cargo +nightly fuzz run -s "${FUZZ_SANITIZER:-address}" "$target" "$work" "corpus/$target" -- \
            -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1 || status=$?
        # The last status line has the run's final cov: (edges) and ft:
        # (features) figures.
        grep -a 'cov:' "$log" | tail -n 1
        grep -aE '^Done|stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$log" || true
        if [ "$status" -ne 0 ]; then
            tail -n 40 "$log"
            echo "fuzz.sh: $target failed; the input is under fuzz/artifacts/$target/" >&2
            exit "$status"
        fi
        before=$(size "corpus/$target")
        merge "$target" "corpus/$target" "$work" >>"$log" 2>&1
        echo "corpus/$target: $before -> $(size "corpus/$target")"
        ;;
    cmin)
        target_arg "${2:-}"
        need_cargo_fuzz
        minimise "$2"
        echo "corpus/$2: $(size "corpus/$2")"
        ;;
    *)
        sed -n '2,15p' "$0" >&2
        exit 2
        ;;
esac
