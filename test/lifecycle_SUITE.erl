%% The connection's whole life (issue 4): reconnect and re-upgrade,
%% retries running out, connect failures and connect_timeout, frames sent
%% while down, keepalive and half-open detection (keepalive_tolerance),
%% graceful endings (gun:shutdown/1, a user close, the owner's death,
%% gun:close/1), faults (a server killed mid-message, a reset, a server
%% that never answers the upgrade, a peer that stops reading, the owner
%% killed mid-send) and thousands of open/upgrade/close cycles.
%%
%% Terms come from ../shared/spec/contract.md and doc/behaviour.md
%% ("Ending reasons", "Lifecycle additions beyond Gun"). Every case that
%% ends a connection monitors ConnPid and checks its exit reason, and
%% checks that nothing leaked: the VM's open file descriptors and its
%% process count are back to where they were when the case started
%% (polled for a few seconds, not slept for).
%%
%% Peers: test/support/ws_server.py (Python websockets) where a real
%% server is wanted, raw_peer (scripted gen_tcp) where the wire must be
%% controlled or read.
%%
%% Run: rebar3 ct --suite test/lifecycle_SUITE
-module(lifecycle_SUITE).
-compile([export_all, nowarn_export_all]).

-include_lib("common_test/include/ct.hrl").
-include("suite_helper.hrl").

-import(suite_helper, [
	find_script/1, start_server/2, stop_server/1, monitor_conn/1, down/2, no_more_from/1, flush_mailbox/0, upgrade/2, echo_check/1,
	cycles/2, settle/4, fd_count/0, proc_count/0, now_ms/0, ms_since/1, id/0
]).

suite() ->
	[{timetrap, {minutes, 10}}].

all() ->
	cases() ++ [{group, mode2}].

%% The cases that run in mode 2 as well (through mode.erl): all but those
%% that look at terms only mode 1 has.
groups() ->
	mode:groups(cases(), mode1_only()).

%% Mode 1's terms: exit and await reasons (mode 2's are Gun 2's), raw
%% mode-1 patterns in owner processes and recipes, and mode 1's
%% shutdown of a pending upgrade (mode 2 waits closing_timeout for the
%% active stream, as Gun 2 does).
mode1_only() ->
	[first_connect_refused_await_up, readme_recipe, shutdown_close_reply,
		shutdown_closing_timeout, shutdown_python, owner_death,
		never_answers_upgrade_shutdown, owner_killed_mid_send, cycles_2000].

init_per_group(mode2, Config) ->
	ok = mode:set(2),
	Config.

end_per_group(mode2, _) ->
	mode:unset().

cases() ->
	[
		%% Reconnect.
		reconnect_reupgrade,
		retries_exhausted_server_gone,
		retries_reset_on_each_up,
		first_connect_refused,
		first_connect_refused_await_up,
		first_connect_refused_then_up,
		connect_timeout_exhausted,
		connect_timeout_then_up,
		send_while_down,
		readme_recipe,
		%% Keepalive.
		keepalive_pongs,
		keepalive_tolerance_half_open,
		keepalive_tolerance_reconnect,
		keepalive_tolerance_alive,
		%% Graceful endings.
		shutdown_close_reply,
		shutdown_closing_timeout,
		shutdown_python,
		user_close_code,
		owner_death,
		close_immediate,
		%% Faults.
		killed_mid_message,
		reset_mid_message,
		never_answers_upgrade_shutdown,
		never_answers_upgrade_close,
		slow_reader_send_queue_full,
		slow_reader_close_not_refused,
		owner_killed_mid_send,
		%% Resources.
		cycles_2000
	].

%% Setup: the Python server for the whole suite.

init_per_suite(Config) ->
	{ok, _} = application:ensure_all_started(gun),
	{Holder, Port} = start_server(find_script("ws_server.py"), []),
	%% Warm-up: the engine's runtime opens its own descriptors on first use.
	ok = cycles(Port, 5),
	[{ws_port, Port}, {ws_holder, Holder}|Config].

end_per_suite(Config) ->
	ok = stop_server(proplists:get_value(ws_holder, Config)).

%% Each case starts with an empty mailbox and its own resource snapshot.
init_per_testcase(_, Config) ->
	flush_mailbox(),
	Config.

end_per_testcase(_, _) ->
	ok.

%% Helpers: resources.

rss() ->
	suite_helper:rss().

snapshot() ->
	#{fds => fd_count(), procs => proc_count()}.

%% Nothing left behind: file descriptors and processes back to (at most)
%% where they were, polled for up to 5 s.
no_leak(#{fds := Fds0, procs := Procs0}) ->
	ok = settle(fds, fun suite_helper:fd_count/0, Fds0, 50),
	ok = settle(procs, fun suite_helper:proc_count/0, Procs0, 50).

%% ConnPid exits with Reason Min to Max ms after T0 (when What happened,
%% for the log); nothing more arrives from it.
exits_between(ConnPid, MRef, Reason, {T0, What}, {Min, Max}) ->
	Reason = down(ConnPid, MRef),
	Elapsed = ms_since(T0),
	ct:log("exit ~p ms after ~s", [Elapsed, What]),
	true = Elapsed >= Min,
	true = Elapsed < Max,
	no_more_from(ConnPid).

%% ConnPid has not exited (yet).
alive(MRef, ConnPid) ->
	receive
		{'DOWN', MRef, process, ConnPid, Reason} -> error({conn_exited, Reason})
	after 0 -> true = is_process_alive(ConnPid)
	end.

port(Config) ->
	proplists:get_value(ws_port, Config).

closed_port() ->
	{ok, L} = gen_tcp:listen(0, [{ip, {127, 0, 0, 1}}]),
	{ok, Port} = inet:port(L),
	ok = gen_tcp:close(L),
	Port.

%% Helpers: raw peer.

%% gun:open on a raw listener (raw_peer:client_opts/1), ws_upgrade at
%% once, accept, read the request, answer 101: an upgraded connection.
raw_connect(Opts) ->
	St = #{sock := Sock, req := Req} = raw_peer:open_upgrade(Opts, fun ws_upgrade/1),
	raw_peer:send(Sock, raw_peer:response_101(Req)),
	expect_upgraded(St).

ws_upgrade(ConnPid) ->
	gun:ws_upgrade(ConnPid, "/").

%% Asks for the upgrade again (after a reconnect) and accepts the (next)
%% connection.
raw_upgrade(St = #{lsock := LSock, conn := ConnPid}) ->
	StreamRef = gun:ws_upgrade(ConnPid, "/"),
	true = is_reference(StreamRef),
	Sock = raw_peer:accept(LSock),
	Req = raw_peer:read_request(Sock),
	raw_peer:send(Sock, raw_peer:response_101(Req)),
	St#{ref => StreamRef, sock => Sock}.

expect_upgraded(St = #{conn := ConnPid}) ->
	?NEXT(ConnPid, {gun_ws_upgrade, ConnPid, ok, _}),
	St.

%% Both ways work on an upgraded raw connection.
raw_echo_check(#{conn := ConnPid, sock := Sock}) ->
	Text = list_to_binary("check " ++ id()),
	ok = gun:ws_send(ConnPid, {text, Text}),
	Text = raw_peer:expect_frame(Sock, 1),
	raw_peer:send(Sock, raw_peer:frame(1, Text)),
	?NEXT(ConnPid, {gun_ws, ConnPid, {text, Text}}),
	ok.

%% No new connection comes in for Ms: there was no reconnect.
no_reconnect(LSock, Ms) ->
	case gen_tcp:accept(LSock, Ms) of
		{error, timeout} -> ok;
		{ok, S} -> gen_tcp:close(S), error(unexpected_reconnect)
	end.

%% How a case that ended the connection ends: no reconnect comes within
%% 500 ms although retry allows it, nothing more arrives from ConnPid, and
%% once the peer's sockets are closed nothing is left behind.
ended_for_good(ConnPid, Sock, LSock, Snap) ->
	no_reconnect(LSock, 500),
	no_more_from(ConnPid),
	[ok = gen_tcp:close(S) || S <- [Sock, LSock]],
	no_leak(Snap).

%% Reads the client's close frame; returns {Code, Reason}.
expect_close(Sock) ->
	expect_close(Sock, 5000).

expect_close(Sock, Timeout) ->
	case raw_peer:expect_frame(Sock, 8, Timeout) of
		<<Code:16, Reason/binary>> -> {Code, Reason};
		Other -> error({client_close_payload, Other})
	end.

close_frame(Code, Reason) ->
	raw_peer:frame(8, <<Code:16, Reason/binary>>).

%% Helpers: Python server.

connect(Config, Opts) ->
	suite_helper:open_up("127.0.0.1", port(Config), Opts).

%% How the Python server saw the connection tagged Id end.
lastclose(Config, Id) ->
	suite_helper:lastclose(connect(Config, #{}), Id).

%% Reconnect.

%% The guide's recipe: after gun_down (server's close) or gun_error +
%% gun_down (the socket dropped), the connection comes back as http with
%% gun_up, and the owner upgrades again; that works each time.
reconnect_reupgrade(Config) ->
	Snap = snapshot(),
	ConnPid = connect(Config, #{retry => 2, retry_timeout => 100}),
	MRef = monitor_conn(ConnPid),
	%% 1. The server closes (4000): delivered, then a loss with reason normal.
	Ref1 = upgrade(ConnPid, "/close"),
	ok = gun:ws_send(ConnPid, {text, <<"hi">>}),
	?NEXT(ConnPid, {gun_ws, ConnPid, {close, 4000, <<"bye">>}}),
	?NEXT(ConnPid, {gun_down, ConnPid, ws, normal, [Ref1], []}),
	?NEXT(ConnPid, {gun_up, ConnPid, http}),
	%% Not upgraded again automatically.
	#{protocol := http} = gun:info(ConnPid),
	ok = gun:ws_send(ConnPid, {text, <<"x">>}),
	?NEXT(ConnPid, {gun_error, ConnPid, {badstate, ?BADSTATE_SEND}}),
	%% 2. Re-upgrade; the server drops TCP: gun_error for the stream, then gun_down.
	Ref2 = upgrade(ConnPid, "/drop"),
	true = Ref2 =/= Ref1,
	ok = gun:ws_send(ConnPid, {text, <<"hi">>}),
	?NEXT(ConnPid, {gun_error, ConnPid, Ref2, closed}),
	?NEXT(ConnPid, {gun_down, ConnPid, ws, closed, [Ref2], []}),
	?NEXT(ConnPid, {gun_up, ConnPid, http}),
	%% 3. Re-upgrade once more: it works.
	Ref3 = upgrade(ConnPid, "/echo"),
	true = Ref3 =/= Ref2,
	#{protocol := ws} = gun:info(ConnPid),
	echo_check(ConnPid),
	alive(MRef, ConnPid),
	ok = gun:close(ConnPid),
	normal = down(ConnPid, MRef),
	no_more_from(ConnPid),
	no_leak(Snap).

%% The server goes away (closes the connection and stops listening):
%% gun_error + gun_down closed, then `retry` refused attempts
%% `retry_timeout` apart, no gun_up, and ConnPid exits {shutdown,
%% econnrefused}. The refused attempts cannot be accepted (so counted) on
%% a listener; they are counted by time: retry_timeout is 500, so 2
%% attempts end ~1000 ms after gun_down (3 would be ~1500, 1 ~500).
retries_exhausted_server_gone(_) ->
	Snap = snapshot(),
	St = #{conn := ConnPid, mref := MRef, ref := Ref, sock := Sock, lsock := LSock} =
		raw_connect(#{retry => 2, retry_timeout => 500}),
	raw_echo_check(St),
	ok = gen_tcp:close(LSock),
	ok = gen_tcp:close(Sock),
	?NEXT(ConnPid, {gun_error, ConnPid, Ref, closed}),
	?NEXT(ConnPid, {gun_down, ConnPid, ws, closed, [Ref], []}),
	exits_between(ConnPid, MRef, {shutdown, econnrefused}, {now_ms(), "gun_down"}, {950, 1450}),
	no_leak(Snap).

%% Each successful connect gives gun_up and restores the full `retry`
%% count (Gun's behaviour): a listener that accepts and closes at once
%% sees exactly 3 connections while it listens; once it stops, `retry`
%% (2) refused attempts follow and ConnPid exits {shutdown, econnrefused}.
retries_reset_on_each_up(_) ->
	Snap = snapshot(),
	{LSock, Port} = raw_peer:listen(),
	Self = self(),
	Acceptor = spawn_link(fun() ->
		receive go -> ok end,
		N = accept_close(LSock, 3),
		ok = gen_tcp:close(LSock),
		Self ! {accepted, self(), N}
	end),
	ok = gen_tcp:controlling_process(LSock, Acceptor),
	Acceptor ! go,
	{ok, ConnPid} = gun:open("127.0.0.1", Port, #{retry => 2, retry_timeout => 500}),
	MRef = monitor_conn(ConnPid),
	[begin
		?NEXT(ConnPid, {gun_up, ConnPid, http}),
		?NEXT(ConnPid, {gun_down, ConnPid, http, closed, [], []})
	end || _ <- lists:seq(1, 3)],
	T0 = now_ms(),
	receive {accepted, Acceptor, 3} -> ok after ?T -> error(acceptor_timeout) end,
	exits_between(ConnPid, MRef, {shutdown, econnrefused}, {T0, "the last gun_down"}, {950, 1450}),
	no_leak(Snap).

accept_close(LSock, N) ->
	accept_close(LSock, N, 0).

accept_close(_, N, N) ->
	N;
accept_close(LSock, N, Done) ->
	{ok, S} = gen_tcp:accept(LSock, ?T),
	ok = gen_tcp:close(S),
	accept_close(LSock, N, Done + 1).

%% A first connect that fails follows the same rules: retry+1 attempts
%% (counted by time: 2 waits of 500 ms), no message at all, then
%% {shutdown, econnrefused}.
first_connect_refused(_) ->
	Snap = snapshot(),
	T0 = now_ms(),
	{ok, ConnPid} = gun:open("127.0.0.1", closed_port(), #{retry => 2, retry_timeout => 500}),
	MRef = monitor_conn(ConnPid),
	exits_between(ConnPid, MRef, {shutdown, econnrefused}, {T0, "gun:open"}, {1000, 1450}),
	%% retry => 0: one attempt, at once.
	T1 = now_ms(),
	{ok, ConnPid0} = gun:open("127.0.0.1", closed_port(), #{retry => 0, retry_timeout => 500}),
	MRef0 = monitor_conn(ConnPid0),
	{shutdown, econnrefused} = down(ConnPid0, MRef0),
	true = ms_since(T1) < 450,
	no_more_from(ConnPid0),
	no_leak(Snap).

first_connect_refused_await_up(_) ->
	Snap = snapshot(),
	{ok, ConnPid} = gun:open("127.0.0.1", closed_port(), #{retry => 1, retry_timeout => 100}),
	MRef = monitor_conn(ConnPid),
	{error, {shutdown, econnrefused}} = gun:await_up(ConnPid, ?T),
	{shutdown, econnrefused} = down(ConnPid, MRef),
	no_more_from(ConnPid),
	no_leak(Snap).

%% The first attempt is refused; the server appears during retry_timeout;
%% the retry connects: gun_up, and the upgrade asked for before works.
first_connect_refused_then_up(_) ->
	Snap = snapshot(),
	Port = closed_port(),
	{ok, ConnPid} = gun:open("127.0.0.1", Port, raw_peer:client_opts(#{retry => 1, retry_timeout => 1000})),
	MRef = monitor_conn(ConnPid),
	StreamRef = gun:ws_upgrade(ConnPid, "/"),
	%% Well inside the first retry_timeout.
	receive after 300 -> ok end,
	alive(MRef, ConnPid),
	{ok, LSock} = gen_tcp:listen(Port, [binary, {active, false}, {packet, raw},
		{reuseaddr, true}, {ip, {127, 0, 0, 1}}]),
	Sock = raw_peer:accept(LSock),
	Req = raw_peer:read_request(Sock),
	raw_peer:send(Sock, raw_peer:response_101(Req)),
	?NEXT(ConnPid, {gun_up, ConnPid, http}),
	St = expect_upgraded(#{conn => ConnPid, sock => Sock, ref => StreamRef}),
	raw_echo_check(St),
	ok = gun:close(ConnPid),
	normal = down(ConnPid, MRef),
	ok = gen_tcp:close(Sock),
	ok = gen_tcp:close(LSock),
	no_more_from(ConnPid),
	no_leak(Snap).

%% A listener whose accept queue is full: Linux drops the SYNs, so a
%% connect hangs (loopback answers a closed port at once; this does not).
%% backlog 0 holds one connection; one gen_tcp:connect fills it.
full_listener() ->
	{ok, LSock} = gen_tcp:listen(0, [binary, {active, false}, {backlog, 0},
		{ip, {127, 0, 0, 1}}]),
	{ok, Port} = inet:port(LSock),
	Fillers = fill(Port, []),
	{LSock, Port, Fillers}.

fill(Port, Acc) when length(Acc) < 8 ->
	case gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}], 300) of
		{ok, S} -> fill(Port, [S|Acc]);
		{error, timeout} when Acc =/= [] -> Acc
	end.

%% connect_timeout: each attempt gives up after 200 ms; retry => 1 and
%% retry_timeout => 100: two attempts, no message, ConnPid exits
%% {shutdown, timeout} after ~500 ms.
connect_timeout_exhausted(_) ->
	Snap = snapshot(),
	{LSock, Port, Fillers} = full_listener(),
	T0 = now_ms(),
	{ok, ConnPid} = gun:open("127.0.0.1", Port,
		#{retry => 1, retry_timeout => 100, connect_timeout => 200}),
	MRef = monitor_conn(ConnPid),
	exits_between(ConnPid, MRef, {shutdown, timeout}, {T0, "gun:open"}, {500, 950}),
	[ok = gen_tcp:close(S) || S <- Fillers],
	ok = gen_tcp:close(LSock),
	no_leak(Snap).

%% The first attempt times out; the queue is emptied meanwhile; the retry
%% connects and gun_up follows. gun:await_up/2 sees it.
connect_timeout_then_up(_) ->
	Snap = snapshot(),
	{LSock, Port, Fillers} = full_listener(),
	{ok, ConnPid} = gun:open("127.0.0.1", Port,
		#{retry => 1, retry_timeout => 500, connect_timeout => 200}),
	MRef = monitor_conn(ConnPid),
	{error, timeout} = gun:await_up(ConnPid, 150),
	%% Make room in the accept queue before the retry (at ~700 ms).
	Accepted = [begin {ok, A} = gen_tcp:accept(LSock, 1000), A end || _ <- Fillers],
	{ok, http} = gun:await_up(ConnPid, 2000),
	{ok, Sock} = gen_tcp:accept(LSock, ?T),
	ok = gun:close(ConnPid),
	normal = down(ConnPid, MRef),
	[ok = gen_tcp:close(S) || S <- [Sock|Accepted ++ Fillers]],
	ok = gen_tcp:close(LSock),
	no_more_from(ConnPid),
	no_leak(Snap).

%% While down (between gun_down and gun_up), frames are refused with the
%% badstate gun_error, one per gun:ws_send/2 call; after gun_up too,
%% until the owner upgrades again.
send_while_down(_) ->
	Snap = snapshot(),
	St = #{conn := ConnPid, mref := MRef, ref := Ref, sock := Sock} =
		raw_connect(#{retry => 1, retry_timeout => 1000}),
	ok = gen_tcp:close(Sock),
	?NEXT(ConnPid, {gun_error, ConnPid, Ref, closed}),
	?NEXT(ConnPid, {gun_down, ConnPid, ws, closed, [Ref], []}),
	ok = gun:ws_send(ConnPid, {text, <<"while down">>}),
	?NEXT(ConnPid, {gun_error, ConnPid, {badstate, ?BADSTATE_SEND}}),
	ok = gun:ws_send(ConnPid, [{text, <<"a">>}, {binary, <<"b">>}]),
	?NEXT(ConnPid, {gun_error, ConnPid, {badstate, ?BADSTATE_SEND}}),
	%% Back up: http until the owner upgrades.
	{ok, Sock2} = gen_tcp:accept(maps:get(lsock, St), ?T),
	?NEXT(ConnPid, 2000, {gun_up, ConnPid, http}),
	#{protocol := http} = gun:info(ConnPid),
	ok = gun:ws_send(ConnPid, {text, <<"before upgrade">>}),
	?NEXT(ConnPid, {gun_error, ConnPid, {badstate, ?BADSTATE_SEND}}),
	Ref2 = gun:ws_upgrade(ConnPid, "/"),
	Req = raw_peer:read_request(Sock2),
	raw_peer:send(Sock2, raw_peer:response_101(Req)),
	St2 = expect_upgraded(St#{sock => Sock2, ref => Ref2}),
	raw_echo_check(St2),
	ok = gun:close(ConnPid),
	normal = down(ConnPid, MRef),
	no_more_from(ConnPid),
	ok = gen_tcp:close(Sock2),
	ok = gen_tcp:close(maps:get(lsock, St)),
	no_leak(Snap).

%% The README's reconnect-and-re-upgrade loop, as written there, plus a
%% round count and a trace: against /close (the server closes 4000 after
%% the first message) it upgrades on each gun_up; the third time it ends
%% with gun:shutdown/1 instead of sending.
readme_recipe(Config) ->
	Snap = snapshot(),
	{done, normal, Trace} = ws_connect("127.0.0.1", port(Config), "/close"),
	ct:log("~p", [Trace]),
	[up, upgraded, {ws, {close, 4000, <<"bye">>}}, {down, ws, normal},
		up, upgraded, {ws, {close, 4000, <<"bye">>}}, {down, ws, normal},
		up, upgraded, {ws, {close, 1001, <<>>}}, {down, ws, normal}] = Trace,
	no_leak(Snap).

ws_connect(Host, Port, Path) ->
	{ok, ConnPid} = gun:open(Host, Port, #{retry => 10, retry_timeout => 100}),
	MRef = monitor(process, ConnPid),
	ws_loop(ConnPid, MRef, Path, 0, []).

ws_loop(ConnPid, MRef, Path, Rounds, Trace) ->
	receive
		{gun_up, ConnPid, http} ->
			_StreamRef = gun:ws_upgrade(ConnPid, Path),
			ws_loop(ConnPid, MRef, Path, Rounds, [up|Trace]);
		{gun_ws_upgrade, ConnPid, ok, _Headers} when Rounds =:= 2 ->
			ok = gun:shutdown(ConnPid),
			ws_loop(ConnPid, MRef, Path, Rounds + 1, [upgraded|Trace]);
		{gun_ws_upgrade, ConnPid, ok, _Headers} ->
			ok = gun:ws_send(ConnPid, {text, <<"hello">>}),
			ws_loop(ConnPid, MRef, Path, Rounds + 1, [upgraded|Trace]);
		{gun_response, ConnPid, _Ref, _IsFin, Status, _Headers} ->
			ok = gun:close(ConnPid),
			{error, {ws_upgrade_refused, Status}};
		{gun_ws, ConnPid, Frame} ->
			ws_loop(ConnPid, MRef, Path, Rounds, [{ws, Frame}|Trace]);
		{gun_error, ConnPid, _StreamRef, Reason} ->
			ws_loop(ConnPid, MRef, Path, Rounds, [{error, Reason}|Trace]);
		{gun_error, ConnPid, {badstate, _}} ->
			ws_loop(ConnPid, MRef, Path, Rounds, [badstate|Trace]);
		{gun_down, ConnPid, Protocol, Reason, _Killed, _Unprocessed} ->
			ws_loop(ConnPid, MRef, Path, Rounds, [{down, Protocol, Reason}|Trace]);
		{'DOWN', MRef, process, ConnPid, Reason} ->
			{done, Reason, lists:reverse(Trace)}
	after ?T ->
		error({timeout, lists:reverse(Trace)})
	end.

%% Keepalive.

%% keepalive => 100 and silence_pings => false: the Python server answers
%% each keepalive ping; the owner sees the pongs (empty: the atom pong).
keepalive_pongs(Config) ->
	Snap = snapshot(),
	ConnPid = connect(Config, #{ws_opts => #{keepalive => 100, silence_pings => false}}),
	MRef = monitor_conn(ConnPid),
	_ = upgrade(ConnPid, "/echo"),
	T0 = now_ms(),
	[?NEXT(ConnPid, 1000, {gun_ws, ConnPid, pong}) || _ <- lists:seq(1, 3)],
	Elapsed = ms_since(T0),
	ct:log("3 pongs in ~p ms", [Elapsed]),
	true = Elapsed >= 200,
	ok = gun:close(ConnPid),
	normal = down(ConnPid, MRef),
	ok = gun:flush(ConnPid),
	no_leak(Snap).

%% Half-open TCP: the peer completes the upgrade, then never sends a byte
%% and never closes. keepalive => 100, keepalive_tolerance => 2: the peer
%% reads 2 pings, then a close 1001; the owner gets gun_error and gun_down
%% {error, keepalive_timeout} within ~1 s; retry => 0: ConnPid exits
%% {shutdown, {error, keepalive_timeout}}.
keepalive_tolerance_half_open(_) ->
	Snap = snapshot(),
	#{conn := ConnPid, mref := MRef, ref := Ref, sock := Sock, lsock := LSock} =
		raw_connect(#{ws_opts => #{keepalive => 100, keepalive_tolerance => 2}}),
	T0 = now_ms(),
	%% On the wire: exactly 2 pings, then close 1001, then EOF.
	<<>> = raw_peer:expect_frame(Sock, 9),
	<<>> = raw_peer:expect_frame(Sock, 9),
	{1001, _} = expect_close(Sock),
	Close = ms_since(T0),
	raw_peer:expect_eof(Sock),
	Eof = ms_since(T0),
	Reason = {error, keepalive_timeout},
	?NEXT(ConnPid, 1500, {gun_error, ConnPid, Ref, Reason}),
	?NEXT(ConnPid, {gun_down, ConnPid, ws, Reason, [Ref], []}),
	Down = ms_since(T0),
	ct:log("after the upgrade: close 1001 at ~p ms, EOF at ~p ms, gun_down at ~p ms",
		[Close, Eof, Down]),
	%% Detected on the 3rd tick (2 pings unanswered): close 1001 at ~300 ms.
	%% The peer is presumed dead, so the engine does not wait for its FIN:
	%% the socket is closed and gun_down sent at once, well within 1 s.
	case Close >= 250 andalso Close < 600 andalso Down < 1000 of
		true -> ok;
		false -> error({keepalive_timeout_timing, #{close_1001_ms => Close, eof_ms => Eof, gun_down_ms => Down}})
	end,
	{shutdown, Reason} = down(ConnPid, MRef),
	no_more_from(ConnPid),
	ok = gen_tcp:close(Sock),
	ok = gen_tcp:close(LSock),
	no_leak(Snap).

%% The same loss reconnects per retry; the owner upgrades again.
keepalive_tolerance_reconnect(_) ->
	Snap = snapshot(),
	St = #{conn := ConnPid, mref := MRef, ref := Ref, sock := Sock, lsock := LSock} =
		raw_connect(#{retry => 1, retry_timeout => 100,
			ws_opts => #{keepalive => 100, keepalive_tolerance => 2}}),
	Reason = {error, keepalive_timeout},
	?NEXT(ConnPid, 1500, {gun_error, ConnPid, Ref, Reason}),
	?NEXT(ConnPid, {gun_down, ConnPid, ws, Reason, [Ref], []}),
	St2 = #{sock := Sock2} = raw_upgrade(St),
	?NEXT(ConnPid, {gun_up, ConnPid, http}),
	expect_upgraded(St2),
	%% This peer answers: the pings are ponged, so the connection stays.
	ok = pong_for(Sock2, 600),
	alive(MRef, ConnPid),
	ok = gun:close(ConnPid),
	normal = down(ConnPid, MRef),
	no_more_from(ConnPid),
	[ok = gen_tcp:close(S) || S <- [Sock, Sock2, LSock]],
	no_leak(Snap).

%% Answers every ping with a pong for Ms.
pong_for(Sock, Ms) ->
	pong_until(Sock, now_ms() + Ms).

pong_until(Sock, Until) ->
	case Until - now_ms() of
		Left when Left =< 0 -> ok;
		Left ->
			case gen_tcp:recv(Sock, 2, Left) of
				{ok, <<1:1, 0:3, 9:4, 1:1, 0:7>>} ->
					{ok, _Key} = gen_tcp:recv(Sock, 4, 1000),
					raw_peer:send(Sock, raw_peer:frame(10, <<>>)),
					pong_until(Sock, Until);
				{ok, Other} -> error({unexpected_client_bytes, Other});
				{error, timeout} -> ok
			end
	end.

%% A live server (Python answers pings) with the same options: no loss.
keepalive_tolerance_alive(Config) ->
	Snap = snapshot(),
	ConnPid = connect(Config, #{ws_opts => #{keepalive => 100, keepalive_tolerance => 2}}),
	MRef = monitor_conn(ConnPid),
	_ = upgrade(ConnPid, "/echo"),
	receive
		Msg when element(2, Msg) =:= ConnPid -> error({unexpected, Msg})
	after 1000 -> ok
	end,
	alive(MRef, ConnPid),
	echo_check(ConnPid),
	ok = gun:close(ConnPid),
	normal = down(ConnPid, MRef),
	no_more_from(ConnPid),
	no_leak(Snap).

%% Graceful endings.

%% The client ends an upgraded raw connection with a close frame (retry =>
%% 5, so that a reconnect would show): the peer reads the close, and
%% answers it or not; the owner gets the answer, if any, then gun_down ws
%% normal; ConnPid exits normal, the socket is closed, no reconnect.
%% A row: how the owner ends it (gun:shutdown/1, or gun:ws_send/2 of a
%% close frame), the ws_opts, the {Code, Reason} the peer reads, the
%% close the peer answers with (or none), and where timed, the {Min, Max}
%% ms from the call to gun_down.
closing_table() ->
	#{
		%% gun:shutdown/1: close 1001, answered in time.
		shutdown_close_reply => #{finish => shutdown, ws_opts => #{},
			client_close => {1001, <<>>}, reply => {1001, <<"bye">>}},
		%% No answer: the client waits closing_timeout (300 ms), then closes.
		shutdown_closing_timeout => #{finish => shutdown, ws_opts => #{closing_timeout => 300},
			client_close => {1001, <<>>}, reply => none, down_within => {300, 1300}},
		%% A user close frame with its own code: the same, with that code.
		user_close_code => #{finish => {close, 4001, <<"done">>}, ws_opts => #{},
			client_close => {4001, <<"done">>}, reply => {4001, <<"done">>}}
	}.

shutdown_close_reply(_) ->
	closing(?FUNCTION_NAME).

shutdown_closing_timeout(_) ->
	closing(?FUNCTION_NAME).

user_close_code(_) ->
	closing(?FUNCTION_NAME).

closing(Case) ->
	#{Case := Row = #{finish := Finish, ws_opts := WsOpts, client_close := ClientClose,
		reply := Reply}} = closing_table(),
	Snap = snapshot(),
	#{conn := ConnPid, mref := MRef, ref := Ref, sock := Sock, lsock := LSock} =
		raw_connect(#{retry => 5, retry_timeout => 100, ws_opts => WsOpts}),
	T0 = now_ms(),
	ok = finish(ConnPid, Finish),
	ClientClose = expect_close(Sock),
	case Reply of
		{Code, Reason} ->
			raw_peer:send(Sock, close_frame(Code, Reason)),
			?NEXT(ConnPid, {gun_ws, ConnPid, {close, Code, Reason}});
		none ->
			ok
	end,
	?NEXT(ConnPid, {gun_down, ConnPid, ws, normal, [Ref], []}),
	Elapsed = ms_since(T0),
	ct:log("gun_down ~p ms after ~p", [Elapsed, Finish]),
	case Row of
		#{down_within := {Min, Max}} ->
			true = Elapsed >= Min,
			true = Elapsed < Max;
		_ ->
			ok
	end,
	normal = down(ConnPid, MRef),
	raw_peer:expect_eof(Sock),
	ended_for_good(ConnPid, Sock, LSock, Snap).

finish(ConnPid, shutdown) ->
	gun:shutdown(ConnPid);
finish(ConnPid, CloseFrame) ->
	gun:ws_send(ConnPid, CloseFrame).

%% Against the Python server: it echoes the 1001 and recorded it.
shutdown_python(Config) ->
	Snap = snapshot(),
	ConnPid = connect(Config, #{retry => 5, retry_timeout => 100}),
	MRef = monitor_conn(ConnPid),
	Id = id(),
	Ref = upgrade(ConnPid, "/echo?id=" ++ Id),
	ok = gun:shutdown(ConnPid),
	?NEXT(ConnPid, {gun_ws, ConnPid, {close, 1001, <<>>}}),
	?NEXT(ConnPid, {gun_down, ConnPid, ws, normal, [Ref], []}),
	normal = down(ConnPid, MRef),
	<<"1001">> = lastclose(Config, Id),
	no_more_from(ConnPid),
	no_leak(Snap).

%% The owner dies: the peer reads close 1001 and answers; ConnPid exits
%% {shutdown, owner_gone}; no reconnect although retry => 5.
owner_death(_) ->
	Snap = snapshot(),
	{LSock, Port} = raw_peer:listen(),
	Self = self(),
	Owner = spawn(fun() ->
		{ok, ConnPid} = gun:open("127.0.0.1", Port, raw_peer:client_opts(#{retry => 5, retry_timeout => 100})),
		_ = gun:ws_upgrade(ConnPid, "/"),
		receive {gun_ws_upgrade, ConnPid, ok, _} -> ok after ?T -> exit(upgrade_timeout) end,
		Self ! {owner_ready, self(), ConnPid},
		receive after infinity -> ok end
	end),
	Sock = raw_peer:accept(LSock),
	Req = raw_peer:read_request(Sock),
	raw_peer:send(Sock, raw_peer:response_101(Req)),
	ConnPid = receive {owner_ready, Owner, C} -> C after ?T -> error(owner_not_ready) end,
	MRef = monitor_conn(ConnPid),
	exit(Owner, kill),
	{1001, <<>>} = expect_close(Sock),
	raw_peer:send(Sock, close_frame(1001, <<>>)),
	{shutdown, owner_gone} = down(ConnPid, MRef),
	raw_peer:expect_eof(Sock),
	ended_for_good(ConnPid, Sock, LSock, Snap).

%% gun:close/1: immediate and synchronous (ConnPid is dead on return),
%% no gun_down, no reconnect; the peer sees the connection end at once.
close_immediate(_) ->
	Snap = snapshot(),
	#{conn := ConnPid, mref := MRef, sock := Sock, lsock := LSock} =
		raw_connect(#{retry => 5, retry_timeout => 100}),
	T0 = now_ms(),
	ok = gun:close(ConnPid),
	false = is_process_alive(ConnPid),
	normal = down(ConnPid, MRef),
	{closed, Bytes} = raw_peer:drain(Sock, 1000),
	Elapsed = ms_since(T0),
	ct:log("peer saw EOF ~p ms after gun:close/1; bytes before it: ~p",
		[Elapsed, raw_peer:decode_frames(Bytes)]),
	true = Elapsed < 1000,
	ended_for_good(ConnPid, Sock, LSock, Snap).

%% Faults.

%% The server dies in the middle of a message (half a frame, then FIN):
%% nothing delivered, gun_error + gun_down closed, {shutdown, closed}.
killed_mid_message(_) ->
	mid_message(fun(Sock) -> ok = gen_tcp:close(Sock) end, closed).

%% The same with a reset (linger 0): {error, econnreset}.
reset_mid_message(_) ->
	mid_message(fun(Sock) ->
		ok = inet:setopts(Sock, [{linger, {true, 0}}]),
		ok = gen_tcp:close(Sock)
	end, {error, econnreset}).

mid_message(Kill, Reason) ->
	Snap = snapshot(),
	#{conn := ConnPid, mref := MRef, ref := Ref, sock := Sock, lsock := LSock} = raw_connect(#{}),
	Frame = raw_peer:frame(2, binary:copy(<<"x">>, 100)),
	raw_peer:send(Sock, binary:part(Frame, 0, 50)),
	%% Let the half frame arrive before the end.
	receive after 100 -> ok end,
	Kill(Sock),
	?NEXT(ConnPid, {gun_error, ConnPid, Ref, Reason}),
	?NEXT(ConnPid, {gun_down, ConnPid, ws, Reason, [Ref], []}),
	{shutdown, Reason} = down(ConnPid, MRef),
	no_more_from(ConnPid),
	ok = gen_tcp:close(LSock),
	no_leak(Snap).

%% A server that accepts and reads the upgrade request and never answers.
never_answering() ->
	St = #{conn := ConnPid} = raw_peer:open_upgrade(#{retry => 5, retry_timeout => 100}, fun ws_upgrade/1),
	%% Nothing comes.
	no_more_from(ConnPid),
	St.

%% The owner ends a connection whose upgrade the server never answers:
%% promptly, ConnPid exits normal, the socket is closed, no reconnect. A
%% row: the gun function that ends it, whether ConnPid is dead on return,
%% how soon the peer reads EOF, and whether the owner gets gun_down.
never_answered_table() ->
	#{
		%% gun:shutdown/1: the pending upgrade is not answered, so
		%% (doc/behaviour.md: gun_down lists the pending upgrade's StreamRef
		%% on an http connection) gun_down http normal [Ref].
		never_answers_upgrade_shutdown => #{finish => shutdown, dead_on_return => false,
			eof_within => 2000, gun_down => true},
		%% gun:close/1: dead on return, no message.
		never_answers_upgrade_close => #{finish => close, dead_on_return => true,
			eof_within => 1000, gun_down => false}
	}.

never_answers_upgrade_shutdown(_) ->
	never_answered(?FUNCTION_NAME).

never_answers_upgrade_close(_) ->
	never_answered(?FUNCTION_NAME).

never_answered(Case) ->
	#{Case := #{finish := Finish, dead_on_return := DeadOnReturn, eof_within := EofWithin,
		gun_down := GunDown}} = never_answered_table(),
	Snap = snapshot(),
	#{conn := ConnPid, mref := MRef, ref := Ref, sock := Sock, lsock := LSock} = never_answering(),
	T0 = now_ms(),
	ok = gun:Finish(ConnPid),
	case DeadOnReturn of
		true -> false = is_process_alive(ConnPid);
		false -> ok
	end,
	normal = down(ConnPid, MRef),
	Elapsed = ms_since(T0),
	raw_peer:expect_eof(Sock, EofWithin),
	Msgs = [M || M <- element(2, process_info(self(), messages)), element(2, M) =:= ConnPid],
	ct:log("exit ~p ms after gun:~p/1; messages: ~p", [Elapsed, Finish, Msgs]),
	true = Elapsed < 1000,
	case GunDown of
		true -> ?NEXT(ConnPid, {gun_down, ConnPid, http, normal, [Ref], []});
		false -> ok
	end,
	ended_for_good(ConnPid, Sock, LSock, Snap).

%% A peer that stops reading while the owner sends 64 KiB frames, with
%% send_queue_limit => 1 MiB: once the kernel's buffers and the 1 MiB are
%% full, each refused gun:ws_send/2 call gets {gun_error, C, Ref, {error,
%% send_queue_full}}; the connection stays up; memory (the VM's and the
%% process's resident set) stays bounded. Then the peer reads everything:
%% exactly the frames not refused arrive, in order, and the connection
%% still works both ways.
-define(FRAME, 65536).
-define(MAX_FRAMES, 1024).

slow_reader_send_queue_full(_) ->
	Snap = snapshot(),
	St = #{conn := ConnPid, mref := MRef, ref := Ref, sock := Sock, lsock := LSock} =
		raw_connect(#{ws_opts => #{send_queue_limit => 1048576}}),
	Filler = binary:copy(<<"z">>, ?FRAME - 4),
	garbage_collect(),
	Mem0 = erlang:memory(total),
	Rss0 = rss(),
	{Sent, MaxMem, MaxRss} = send_until_full(ConnPid, Ref, Filler, 1, Mem0, Rss0),
	ct:log("first send_queue_full after ~p frames (~p KiB); memory ~p -> max ~p; rss ~p -> max ~p",
		[Sent, Sent * ?FRAME div 1024, Mem0, MaxMem, Rss0, MaxRss]),
	true = MaxMem - Mem0 < 32 * 1048576,
	true = MaxRss - Rss0 < 64 * 1048576,
	%% The first refusal may come before the engine wrote what the kernel
	%% can take: pause, and fill again, until a call made after a pause
	%% is refused (nothing more can drain). Then a few more calls: each
	%% is refused, and the connection stays up.
	{Steady, Refused0} = steady(ConnPid, Ref, Filler, Sent, 1, 20),
	Extra = 4,
	[ok = gun:ws_send(ConnPid, {binary, [<<S:32>>, Filler]}) || S <- lists:seq(Steady + 1, Steady + Extra)],
	[?NEXT(ConnPid, 1000, {gun_error, ConnPid, Ref, {error, send_queue_full}}) || _ <- lists:seq(1, Extra)],
	Total = Steady + Extra,
	receive after 200 -> ok end,
	alive(MRef, ConnPid),
	no_more_from(ConnPid),
	Bytes = read_quiet_elsewhere(Sock),
	{Frames, <<>>} = raw_peer:decode_frames(Bytes),
	Seqs = [begin
		#{opcode := 2, fin := true, masked := true, payload := <<S:32, Filler/binary>>} = F,
		S
	end || F <- Frames],
	Seqs = lists:sort(Seqs),
	Refused = Refused0 + Extra,
	ct:log("~p frames sent, ~p delivered, ~p refused", [Total, length(Seqs), Refused]),
	Total = length(Seqs) + Refused,
	%% It still works.
	raw_echo_check(St),
	ok = gun:close(ConnPid),
	normal = down(ConnPid, MRef),
	no_more_from(ConnPid),
	[ok = gen_tcp:close(S) || S <- [Sock, LSock]],
	no_leak(Snap).

send_until_full(ConnPid, Ref, Filler, Seq, MaxMem, MaxRss) when Seq =< ?MAX_FRAMES ->
	ok = gun:ws_send(ConnPid, {binary, [<<Seq:32>>, Filler]}),
	{MaxMem1, MaxRss1} = case Seq rem 16 of
		0 -> {max(MaxMem, erlang:memory(total)), max(MaxRss, rss())};
		_ -> {MaxMem, MaxRss}
	end,
	receive
		{gun_error, ConnPid, Ref, {error, send_queue_full}} ->
			{Seq, max(MaxMem1, erlang:memory(total)), max(MaxRss1, rss())};
		Msg when element(2, Msg) =:= ConnPid ->
			error({unexpected, Msg})
	after 0 ->
		send_until_full(ConnPid, Ref, Filler, Seq + 1, MaxMem1, MaxRss1)
	end;
send_until_full(_, _, _, Seq, MaxMem, MaxRss) ->
	error({no_send_queue_full_after, Seq - 1, frames, {memory, MaxMem}, {rss, MaxRss}}).

%% The peer reads everything, in another process, until 700 ms of quiet;
%% the socket comes back to this process.
read_quiet_elsewhere(Sock) ->
	Self = self(),
	Reader = spawn_link(fun() ->
		receive {go, Self} -> ok end,
		Bytes = read_quiet(Sock, 700, []),
		ok = gen_tcp:controlling_process(Sock, Self),
		Self ! {read, self(), Bytes}
	end),
	ok = gen_tcp:controlling_process(Sock, Reader),
	Reader ! {go, Self},
	receive {read, Reader, Bytes} -> Bytes after 60000 -> error(reader_timeout) end.

%% Fills until a gun:ws_send/2 made after a 200 ms pause is refused at
%% once; returns the last sequence number sent and the refusals seen.
steady(_, _, _, Seq, Refused, 0) ->
	error({send_queue_never_steady, Seq, Refused});
steady(ConnPid, Ref, Filler, Seq, Refused0, Tries) ->
	receive after 200 -> ok end,
	Refused = count_refused(ConnPid, Ref, Refused0),
	ok = gun:ws_send(ConnPid, {binary, [<<(Seq + 1):32>>, Filler]}),
	receive
		{gun_error, ConnPid, Ref, {error, send_queue_full}} ->
			{Seq + 1, Refused + 1}
	after 300 ->
		{Seq2, _, _} = send_until_full(ConnPid, Ref, Filler, Seq + 2, 0, 0),
		steady(ConnPid, Ref, Filler, Seq2, Refused + 1, Tries - 1)
	end.

read_quiet(Sock, Quiet, Acc) ->
	case gen_tcp:recv(Sock, 0, Quiet) of
		{ok, Data} -> read_quiet(Sock, Quiet, [Data|Acc]);
		{error, timeout} -> iolist_to_binary(lists:reverse(Acc))
	end.

%% The refusals still in the mailbox, plus the one already taken.
count_refused(ConnPid, Ref, N) ->
	receive
		{gun_error, ConnPid, Ref, {error, send_queue_full}} -> count_refused(ConnPid, Ref, N + 1)
	after 0 -> N
	end.

%% A close frame is never refused: sent while the queue is full, it goes
%% out after what was queued once the peer reads; the peer answers and
%% the connection ends normally (no reconnect although retry => 5).
slow_reader_close_not_refused(_) ->
	Snap = snapshot(),
	#{conn := ConnPid, mref := MRef, ref := Ref, sock := Sock, lsock := LSock} =
		raw_connect(#{retry => 5, retry_timeout => 100, ws_opts => #{send_queue_limit => 1048576}}),
	Filler = binary:copy(<<"z">>, ?FRAME - 4),
	{Sent, _, _} = send_until_full(ConnPid, Ref, Filler, 1, 0, 0),
	ok = gun:ws_send(ConnPid, {close, 4002, <<"full">>}),
	Bytes = read_quiet_elsewhere(Sock),
	{Frames, <<>>} = raw_peer:decode_frames(Bytes),
	Refused = count_refused(ConnPid, Ref, 1),
	ct:log("~p frames sent before the close, ~p refused, ~p frames read", [Sent, Refused, length(Frames)]),
	%% Every data frame not refused, then the close, last.
	Sent = length(Frames) - 1 + Refused,
	#{opcode := 8, payload := <<4002:16, "full">>} = lists:last(Frames),
	[#{opcode := 2} = F || F <- lists:droplast(Frames)],
	raw_peer:send(Sock, close_frame(4002, <<"full">>)),
	?NEXT(ConnPid, {gun_ws, ConnPid, {close, 4002, <<"full">>}}),
	?NEXT(ConnPid, {gun_down, ConnPid, ws, normal, [Ref], []}),
	normal = down(ConnPid, MRef),
	raw_peer:expect_eof(Sock),
	ended_for_good(ConnPid, Sock, LSock, Snap).

%% The owner is killed while it sends in a loop: ConnPid exits
%% {shutdown, owner_gone}, the server got close 1001, nothing leaks.
owner_killed_mid_send(Config) ->
	Snap = snapshot(),
	Port = port(Config),
	Id = id(),
	Self = self(),
	Owner = spawn(fun() ->
		{ok, ConnPid} = gun:open("127.0.0.1", Port, #{retry => 5, retry_timeout => 100}),
		{ok, http} = gun:await_up(ConnPid, ?T),
		_ = gun:ws_upgrade(ConnPid, "/echo?id=" ++ Id),
		receive {gun_ws_upgrade, ConnPid, ok, _} -> ok after ?T -> exit(upgrade_timeout) end,
		Payload = binary:copy(<<"y">>, ?FRAME),
		send_loop(ConnPid, Payload, Self, 0)
	end),
	ConnPid = receive {sending, Owner, C} -> C after ?T -> error(owner_not_sending) end,
	MRef = monitor_conn(ConnPid),
	exit(Owner, kill),
	{shutdown, owner_gone} = down(ConnPid, MRef),
	<<"1001">> = lastclose(Config, Id),
	no_more_from(ConnPid),
	no_leak(Snap).

send_loop(ConnPid, Payload, Parent, N) ->
	ok = gun:ws_send(ConnPid, {binary, Payload}),
	case N of
		100 -> Parent ! {sending, self(), ConnPid};
		_ -> ok
	end,
	%% Drop the echoes so that the owner's mailbox does not grow.
	receive {gun_ws, ConnPid, _} -> ok after 0 -> ok end,
	send_loop(ConnPid, Payload, Parent, N + 1).

%% Resources.

%% 2000 open/upgrade/echo/close cycles (4 workers x 500) against the
%% Python server: file descriptors and processes back to the start,
%% erlang:memory(total) back near it (after a warm-up).
cycles_2000(Config) ->
	Port = port(Config),
	ok = cycles(Port, 20),
	garbage_collect(),
	Snap = snapshot(),
	Mem0 = erlang:memory(total),
	Rss0 = rss(),
	T0 = now_ms(),
	Workers = [spawn_monitor(fun() -> ok = cycles(Port, 500) end) || _ <- lists:seq(1, 4)],
	[receive
		{'DOWN', WRef, process, Pid, Reason} -> normal = Reason
	after 600000 ->
		error(worker_timeout)
	end || {Pid, WRef} <- Workers],
	no_leak(Snap),
	garbage_collect(),
	ok = settle(memory, fun() -> erlang:memory(total) end, Mem0 + 8 * 1048576, 50),
	ct:log("2000 cycles in ~p ms; fds ~p -> ~p; processes ~p -> ~p; memory ~p -> ~p; rss ~p -> ~p",
		[ms_since(T0), maps:get(fds, Snap), fd_count(), maps:get(procs, Snap), proc_count(),
			Mem0, erlang:memory(total), Rss0, rss()]).
