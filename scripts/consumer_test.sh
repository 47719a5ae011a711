#!/usr/bin/env bash
# Proves the project works as a dependency of another project:
#   (a) a rebar3 project with {gun, {git, "file://$REPO", {ref, HEAD}}},
#       then built as a release (rebar3 release) that does the same on boot
#   (b) a Mix project with {:gun, path: "$REPO"}
# Each one opens a connection to test/support/ws_server.py, upgrades to
# /echo, sends a text, receives the echo and prints OK.
#   (c) and (d): the same with a library in between that declares Gun 2
# (ninenines/gun 2.4.1) as its own dependency and calls it with Gun 2's API;
# the consumer puts this project in Gun's place (rebar3: the top-level
# dependency wins; Mix: override: true) and runs it in mode 2
# ({gun, [{api, 2}]}). Nothing is fetched for the library's gun.
#
# Usage: scripts/consumer_test.sh
#   REPO=/path/to/gun    the repository to test (default: this one)
#   SKIP_REBAR3=1        skip (a), e.g. while the repository has no commit
#
# The release part prints the size of the gun_nif.so the release ships.
#
# Note: a rebar3 git dependency builds the *committed* tree at HEAD, not the
# working tree; the script fails when there is no commit and warns when the
# tree is dirty. The Mix path dependency builds the working tree (and writes
# priv/gun_nif.so and the cargo target directory inside $REPO).
# Bash is needed (read -t, pipefail); `sh scripts/consumer_test.sh` re-runs it with bash.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -eu
set -o pipefail

REPO=${REPO:-$(cd "$(dirname "$0")/.." && pwd)}
PYTHON=/usr/bin/python3
SERVER="$REPO/test/support/ws_server.py"

say() { echo "consumer_test: $*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

command -v rebar3 >/dev/null || fail "rebar3 not found"
command -v mix >/dev/null || fail "mix not found"
[ -x "$PYTHON" ] || fail "$PYTHON not found"
[ -f "$SERVER" ] || fail "$SERVER not found"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gun_consumer.XXXXXX")
server_pid=
# The release's node starts epmd when none runs; then it is stopped at the
# end (epmd refuses while other nodes are registered with it).
epmd_was_up=0
epmd -names >/dev/null 2>&1 && epmd_was_up=1

cleanup() {
	status=$?
	# Closing the server's stdin makes it exit.
	exec 3>&-
	exec 4<&-
	if [ -n "$server_pid" ]; then
		for _ in $(seq 1 50); do
			kill -0 "$server_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
	if [ "$epmd_was_up" = 0 ] && epmd -names >/dev/null 2>&1; then
		epmd -kill >/dev/null 2>&1 || true
	fi
	if [ "$status" -eq 0 ]; then say "all OK"; else say "FAILED (status $status)"; fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rev=
if [ "${SKIP_REBAR3:-0}" != 1 ]; then
	if ! rev=$(git -C "$REPO" rev-parse --verify -q 'HEAD^{commit}'); then
		fail "$REPO has no commit: the rebar3 git dependency builds the committed tree, so there is nothing to build. Commit first, or run with SKIP_REBAR3=1 to test only the Mix path dependency."
	fi
	if [ -n "$(git -C "$REPO" status --porcelain --untracked-files=normal)" ]; then
		say "WARNING: $REPO has uncommitted changes; part (a) builds the committed tree $rev, not the working tree"
	fi
fi

# The WebSocket server: stdin from a FIFO whose write end (fd 3) this shell
# holds; stdout (the port line) to a FIFO read on fd 4.
mkfifo "$tmp/server.in" "$tmp/server.out"
"$PYTHON" "$SERVER" <"$tmp/server.in" >"$tmp/server.out" &
server_pid=$!
exec 3>"$tmp/server.in"
exec 4<"$tmp/server.out"
port=
read -r -t 20 port <&4 || fail "the WebSocket server printed no port"
case "$port" in
	''|*[!0-9]*) fail "the WebSocket server printed '$port', not a port" ;;
esac
say "WebSocket server on 127.0.0.1:$port (pid $server_pid)"

# The library of (c) and (d): Gun 2's API, as a Gun 2 user writes it.
write_gun2lib() {
	mkdir -p "$1/src"
	cat >"$1/src/gun2lib.erl" <<'EOF'
-module(gun2lib).
-export([echo/2]).

%% Gun 2.4.1's API: gun_upgrade, ws_send/3, gun_ws with the StreamRef.
echo(Port, Text) ->
	{ok, ConnPid} = gun:open("127.0.0.1", Port, #{retry => 0, http2_opts => #{}}),
	{ok, http} = gun:await_up(ConnPid),
	StreamRef = gun:ws_upgrade(ConnPid, "/echo", #{<<"x-from">> => <<"gun2lib">>}),
	{upgrade, [<<"websocket">>], _} = gun:await(ConnPid, StreamRef),
	ok = gun:ws_send(ConnPid, StreamRef, {text, Text}),
	receive
		{gun_ws, ConnPid, StreamRef, {text, Echo}} ->
			ok = gun:close(ConnPid),
			Echo
	after 10000 ->
		exit({echo_timeout, erlang:process_info(self(), messages)})
	end.
EOF
}

# (a) rebar3, gun as a git dependency.
if [ "${SKIP_REBAR3:-0}" != 1 ]; then
	say "(a) rebar3 project, gun from file://$REPO at $rev"
	app="$tmp/rebar_consumer"
	mkdir -p "$app/src"
	cat >"$app/rebar.config" <<EOF
{erl_opts, [debug_info]}.
{deps, [{gun, {git, "file://$REPO", {ref, "$rev"}}}]}.
{relx, [
	{release, {rebar_consumer, "0.1.0"}, [rebar_consumer]},
	{dev_mode, false},
	{include_erts, false},
	{vm_args_src, "config/vm.args.src"}
]}.
EOF
	mkdir -p "$app/config"
	# A node name of its own: other releases may run on this machine.
	cat >"$app/config/vm.args.src" <<'EOF'
-sname ${CONSUMER_NODE}
-setcookie gun_consumer_test
EOF
	cat >"$app/src/rebar_consumer.app.src" <<'EOF'
{application, rebar_consumer, [
	{description, "Uses gun as a rebar3 dependency."},
	{vsn, "0.1.0"},
	{registered, []},
	{applications, [kernel, stdlib, gun]},
	{mod, {rebar_consumer_app, []}},
	{env, []},
	{modules, []}
]}.
EOF
	# Booted as a release with GUN_CONSUMER_PORT set, the application runs
	# the echo itself, prints OK and stops the node (status 1 on failure).
	cat >"$app/src/rebar_consumer_app.erl" <<'EOF'
-module(rebar_consumer_app).
-behaviour(application).
-export([start/2, stop/1]).

start(_, _) ->
	case os:getenv("GUN_CONSUMER_PORT") of
		false -> ok;
		Port -> spawn(fun() -> on_boot(list_to_integer(Port)) end)
	end,
	{ok, spawn(fun() -> receive stop -> ok end end)}.

stop(_) ->
	ok.

%% After the boot, when every application of the release runs.
on_boot(Port) ->
	case init:get_status() of
		{started, _} -> echo(Port);
		_ -> receive after 50 -> on_boot(Port) end
	end.

echo(Port) ->
	try rebar_consumer:run(Port) of
		_ -> init:stop()
	catch C:R:S ->
		io:format("~p:~p~n~p~n", [C, R, S]),
		erlang:halt(1)
	end.
EOF
	cat >"$app/src/rebar_consumer.erl" <<'EOF'
-module(rebar_consumer).
-export([run/1]).

run(Port) ->
	{ok, _} = application:ensure_all_started(rebar_consumer),
	{ok, ConnPid} = gun:open("127.0.0.1", Port, #{retry => 0}),
	{ok, http} = gun:await_up(ConnPid),
	StreamRef = gun:ws_upgrade(ConnPid, "/echo"),
	true = is_reference(StreamRef),
	receive
		{gun_ws_upgrade, ConnPid, ok, _Headers} -> ok
	after 10000 ->
		exit({upgrade_timeout, erlang:process_info(self(), messages)})
	end,
	ok = gun:ws_send(ConnPid, {text, <<"Hello from rebar3!">>}),
	receive
		{gun_ws, ConnPid, {text, <<"Hello from rebar3!">>}} -> ok
	after 10000 ->
		exit({echo_timeout, erlang:process_info(self(), messages)})
	end,
	ok = gun:close(ConnPid),
	io:format("OK~n").
EOF
	(cd "$app" && rebar3 compile) || fail "(a) rebar3 compile failed"
	[ -f "$app/_build/default/lib/gun/priv/gun_nif.so" ] || fail "(a) the dependency has no priv/gun_nif.so"
	out=$(cd "$app" && erl -noshell -pa _build/default/lib/*/ebin -eval "
		try rebar_consumer:run($port) of
			_ -> halt(0)
		catch C:R:S ->
			io:format(\"~p:~p~n~p~n\", [C, R, S]),
			halt(1)
		end.") || fail "(a) the rebar3 consumer failed: $out"
	echo "$out"
	[ "$out" = OK ] || fail "(a) expected OK, got: $out"
	say "(a) rebar3 consumer: OK"

	say "(a) the same project as a release (rebar3 release)"
	(cd "$app" && rebar3 release) || fail "(a) rebar3 release failed"
	rel="$app/_build/default/rel/rebar_consumer"
	nif=$(ls "$rel"/lib/gun-*/priv/gun_nif.so 2>/dev/null | head -n 1)
	[ -n "$nif" ] || fail "(a) the release has no lib/gun-*/priv/gun_nif.so"
	say "(a) the release's gun_nif.so: $(wc -c <"$nif") bytes ($(du -h "$nif" | cut -f1))"
	out=$(GUN_CONSUMER_PORT=$port CONSUMER_NODE="gun_consumer_$$" timeout 120 "$rel/bin/rebar_consumer" foreground 2>&1) \
		|| fail "(a) the release failed: $out"
	echo "$out"
	printf '%s\n' "$out" | grep -qx OK || fail "(a) the release printed no OK: $out"
	say "(a) release: OK"
fi

# (b) Mix, gun as a path dependency.
say "(b) Mix project, gun from path $REPO"
app="$tmp/mix_consumer"
mkdir -p "$app/lib"
cat >"$app/mix.exs" <<EOF
defmodule MixConsumer.MixProject do
  use Mix.Project

  def project do
    [app: :mix_consumer, version: "0.1.0", elixir: "~> 1.14", deps: [{:gun, path: "$REPO"}]]
  end

  def application, do: [extra_applications: []]
end
EOF
cat >"$app/lib/mix_consumer.ex" <<'EOF'
defmodule MixConsumer do
  def run(port) do
    {:ok, conn} = :gun.open(~c"127.0.0.1", port, %{retry: 0})
    {:ok, :http} = :gun.await_up(conn)
    ref = :gun.ws_upgrade(conn, "/echo")
    true = is_reference(ref)

    receive do
      {:gun_ws_upgrade, ^conn, :ok, _headers} -> :ok
    after
      10_000 -> exit({:upgrade_timeout, Process.info(self(), :messages)})
    end

    :ok = :gun.ws_send(conn, {:text, "Hello from Mix!"})

    receive do
      {:gun_ws, ^conn, {:text, "Hello from Mix!"}} -> :ok
    after
      10_000 -> exit({:echo_timeout, Process.info(self(), :messages)})
    end

    :ok = :gun.close(conn)
    IO.puts("OK")
  end
end
EOF
(cd "$app" && MIX_ENV=dev mix compile) || fail "(b) mix compile failed"
out=$(cd "$app" && MIX_ENV=dev mix run -e "MixConsumer.run($port)") || fail "(b) the Mix consumer failed: $out"
echo "$out"
[ "$(printf '%s\n' "$out" | tail -n 1)" = OK ] || fail "(b) expected OK, got: $out"
say "(b) Mix consumer: OK"

# (c) rebar3: the library depends on Gun 2; the top-level gun wins.
if [ "${SKIP_REBAR3:-0}" != 1 ]; then
	say "(c) rebar3 project, a library that depends on Gun 2, gun from file://$REPO, mode 2"
	lib="$tmp/gun2lib_rebar"
	write_gun2lib "$lib"
	cat >"$lib/rebar.config" <<'EOF'
{erl_opts, [debug_info]}.
{deps, [{gun, {git, "https://github.com/ninenines/gun", {tag, "2.4.1"}}}]}.
EOF
	cat >"$lib/src/gun2lib.app.src" <<'EOF'
{application, gun2lib, [{description, "Calls Gun 2."}, {vsn, "0.1.0"},
	{registered, []}, {applications, [kernel, stdlib, gun]}, {env, []}, {modules, []}]}.
EOF
	(cd "$lib" && git init -q -b master && git add -A \
		&& git -c user.name=consumer_test -c user.email=consumer_test@localhost commit -qm lib) \
		|| fail "(c) could not make the library's repository"
	app="$tmp/rebar_gun2_consumer"
	mkdir -p "$app/src" "$app/config"
	cat >"$app/rebar.config" <<EOF
{erl_opts, [debug_info]}.
{deps, [
	{gun, {git, "file://$REPO", {ref, "$rev"}}},
	{gun2lib, {git, "file://$lib", {branch, "master"}}}
]}.
EOF
	cat >"$app/config/sys.config" <<'EOF'
[{gun, [{api, 2}]}].
EOF
	cat >"$app/src/rebar_gun2_consumer.app.src" <<'EOF'
{application, rebar_gun2_consumer, [{description, "Uses a library that uses Gun 2."},
	{vsn, "0.1.0"}, {registered, []}, {applications, [kernel, stdlib, gun2lib]},
	{env, []}, {modules, []}]}.
EOF
	(cd "$app" && rebar3 compile) || fail "(c) rebar3 compile failed"
	[ -f "$app/_build/default/lib/gun/priv/gun_nif.so" ] \
		|| fail "(c) gun is not this project (no priv/gun_nif.so): the library's Gun 2 won"
	out=$(cd "$app" && erl -noshell -config config/sys.config -pa _build/default/lib/*/ebin -eval "
		try
			{ok, _} = application:ensure_all_started(rebar_gun2_consumer),
			<<\"Hello from Gun 2 code!\">> = gun2lib:echo($port, <<\"Hello from Gun 2 code!\">>)
		of
			_ -> io:format(\"OK~n\"), halt(0)
		catch C:R:S ->
			io:format(\"~p:~p~n~p~n\", [C, R, S]),
			halt(1)
		end.") || fail "(c) the rebar3 consumer failed: $out"
	echo "$out"
	[ "$out" = OK ] || fail "(c) expected OK, got: $out"
	say "(c) rebar3 consumer of a Gun 2 library, mode 2: OK"
fi

# (d) Mix: the library (a path dependency) depends on Gun 2 (from git:
# hex.pm is not reachable here, and Mix needs Hex to read a hex
# requirement at all); override: true puts this project in its place.
say "(d) Mix project, a path dependency that depends on Gun 2, gun from path $REPO (override: true), mode 2"
lib="$tmp/gun2lib_mix"
write_gun2lib "$lib"
cat >"$lib/mix.exs" <<'EOF'
defmodule Gun2Lib.MixProject do
  use Mix.Project

  def project do
    [app: :gun2lib, version: "0.1.0", language: :erlang,
     deps: [{:gun, git: "https://github.com/ninenines/gun", tag: "2.4.1"}]]
  end

  def application, do: [extra_applications: []]
end
EOF
app="$tmp/mix_gun2_consumer"
mkdir -p "$app/lib" "$app/config"
cat >"$app/mix.exs" <<EOF
defmodule MixGun2Consumer.MixProject do
  use Mix.Project

  def project do
    [app: :mix_gun2_consumer, version: "0.1.0", elixir: "~> 1.14",
     deps: [{:gun, path: "$REPO", override: true}, {:gun2lib, path: "$lib"}]]
  end

  def application, do: [extra_applications: []]
end
EOF
cat >"$app/config/config.exs" <<'EOF'
import Config
config :gun, api: 2
EOF
(cd "$app" && MIX_ENV=dev mix compile) || fail "(d) mix compile failed"
out=$(cd "$app" && MIX_ENV=dev mix run -e '
  "Hello from Gun 2 code!" = :gun2lib.echo('"$port"', "Hello from Gun 2 code!")
  IO.puts("OK")') || fail "(d) the Mix consumer failed: $out"
echo "$out"
[ "$(printf '%s\n' "$out" | tail -n 1)" = OK ] || fail "(d) expected OK, got: $out"
say "(d) Mix consumer of a Gun 2 library, mode 2: OK"
