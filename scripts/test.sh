#!/bin/sh
# Every test: style, the Rust core, the Erlang checks (xref, dialyzer) and
# suites, the Elixir tests, and the two throwaway projects that use this one
# as a dependency.
set -eu
cd "$(dirname "$0")/.."

sh scripts/setup.sh

echo "== layers (no import cycles, no Erlang vocabulary below nif/)"
python3 scripts/check_layers.py

echo "== cargo fmt / clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== cargo test"
cargo test --workspace --quiet

echo "== fuzz (short)"
sh scripts/fuzz.sh smoke

echo "== rebar3 xref / dialyzer"
rebar3 xref
# Any warning fails (the first run builds the PLT: a few minutes).
rebar3 dialyzer

echo "== rebar3 ct"
rebar3 ct

echo "== mix test"
MIX_ENV=test mix test

echo "== consumer projects"
sh scripts/consumer_test.sh

echo "All test stages passed."
