#!/bin/sh
# Builds the NIF crate (release profile) and installs it as priv/gun_nif.so.
# Shared by the rebar3 pre-hook and the Mix compiler so both produce the same file.
set -eu
cd "$(dirname "$0")/.."
# GUN_NIF_PROFILE=profiling builds the same code with debug info, for perf
# (bench/profile.sh); the default, release, ships none.
profile=${GUN_NIF_PROFILE:-release}
cargo build --profile "$profile" --quiet --manifest-path native/Cargo.toml
target_dir=$(cargo metadata --format-version 1 --no-deps --manifest-path native/Cargo.toml \
	| sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
mkdir -p priv
cp "$target_dir/$profile/libgun_nif.so" priv/gun_nif.so.tmp
mv priv/gun_nif.so.tmp priv/gun_nif.so
