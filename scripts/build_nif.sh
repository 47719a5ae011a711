#!/bin/sh
# Builds the NIF crate in release mode and installs it as priv/gun_nif.so.
# Shared by the rebar3 pre-hook and the Mix compiler so both produce the same file.
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet --manifest-path native/Cargo.toml
target_dir=$(cargo metadata --format-version 1 --no-deps --manifest-path native/Cargo.toml \
	| sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
mkdir -p priv
cp "$target_dir/release/libgun_nif.so" priv/gun_nif.so.tmp
mv priv/gun_nif.so.tmp priv/gun_nif.so
