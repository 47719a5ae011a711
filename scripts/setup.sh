#!/bin/sh
# Installs what the project needs on a fresh Debian machine and builds it:
# Erlang/OTP (with dialyzer), Elixir and rebar3 from Debian's packages, Python's
# `websockets` (the independent server the tests and the demo talk to) and
# openssl (the TLS tests make their certificates with it).
# Rust (cargo) must already be there.
set -eu
cd "$(dirname "$0")/.."

packages="erlang-nox erlang-dev erlang-eunit erlang-common-test erlang-dialyzer elixir rebar3 python3-websockets openssl"
missing=""
for p in $packages; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	echo "Installing:$missing"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo (Rust) is required" >&2; exit 1; }

rebar3 compile
