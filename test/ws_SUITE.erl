%% Integration tests of the Gun WebSocket API against an independent server
%% (test/support/ws_server.py: Python's websockets 10.4) and, for the
%% handshake validation cases, a raw gen_tcp server in this module.
%%
%% The terms asserted come from ../shared/spec/contract.md and
%% doc/behaviour.md. Most checks take the next message in the mailbox
%% (next/0), so they also check the order and that nothing else arrived.
%%
%% Run: rebar3 ct --suite test/ws_SUITE
-module(ws_SUITE).

-import(suite_helper, [
	find_script/1, start_server/2, stop_server/1, next/0, next/1, next_from/1,
	monitor_conn/1, down/2, close/1, fd_count/0, check_headers/1, json_value/2,
	no_messages_from/1, body/2, upgrade/2, echo_check/1, cycles/2, settle/4, id/0
]).

-compile([export_all, nowarn_export_all]).

-include("suite_helper.hrl").

suite() ->
	[{timetrap, {minutes, 10}}].

all() ->
	cases() ++ [{group, mode2}].

%% The cases that run in mode 2 as well (through mode.erl): all but those
%% that look at terms only mode 1 has.
groups() ->
	mode:groups(cases(), mode1_only()).

%% Mode 1's terms: exit and down reasons (mode 2's are Gun 2's: normal,
%% shutdown, {shutdown, {owner_down, _}}), option error forms, the
%% upgrade's failure reasons, and the raw mode-1 patterns of flush and
%% the leak cycles. gun2_SUITE and Gun 2's own suites check mode 2's.
mode1_only() ->
	[await_up_refused, ws_upgrade_4_bad_option, upgrade_ok_headers,
		upgrade_caller_headers_iodata, upgrade_refused_404, upgrade_invalid_accept,
		upgrade_missing_upgrade_header, upgrade_missing_connection_header,
		upgrade_unexpected_protocol, upgrade_unexpected_extension, send_list_with_close,
		server_close, server_bad_utf8, max_frame_size, shutdown_upgraded, shutdown_http,
		close_upgraded, user_close_code, owner_death_upgraded, owner_death_http, conn_killed,
		flush_pid, flush_ref, no_leaks].

init_per_group(mode2, Config) ->
	ok = mode:set(2),
	Config.

end_per_group(mode2, _) ->
	mode:unset().

cases() ->
	[
		%% Connection.
		open_2_up,
		open_3_await_up,
		open_host_forms,
		await_up_refused,
		await_up_timeout,
		info_http_then_ws,
		info_ws_once_upgraded,
		%% Options.
		open_option_errors,
		ws_upgrade_4_bad_option,
		ws_opts_from_open,
		%% The upgrade.
		upgrade_ok_headers,
		upgrade_all_arities,
		upgrade_caller_headers_iodata,
		upgrade_protocol_offer,
		upgrade_before_up,
		upgrade_refused_404,
		upgrade_http10,
		upgrade_invalid_accept,
		upgrade_missing_upgrade_header,
		upgrade_missing_connection_header,
		upgrade_unexpected_protocol,
		upgrade_unexpected_extension,
		ws_send_before_upgrade,
		%% Frames.
		echo_text,
		echo_iodata,
		echo_binary,
		echo_empty,
		echo_sizes,
		echo_utf8_large,
		send_list_in_order,
		send_list_with_close,
		push_1000,
		send_many_without_waiting,
		send_long_list_one_call,
		send_charges_the_caller,
		send_long_iolist,
		flow_control,
		push_pattern,
		fragmented_whole,
		ping_unsilenced,
		ping_silenced,
		server_ping_answered,
		server_ping_unsilenced,
		keepalive_pings,
		control_payload_125,
		badarg_frames,
		%% Ending.
		server_close,
		server_close_reconnect,
		server_drop,
		server_bad_utf8,
		max_frame_size,
		shutdown_upgraded,
		shutdown_http,
		close_upgraded,
		user_close_code,
		owner_death_upgraded,
		owner_death_http,
		conn_killed,
		ws_send_after_exit,
		%% Flushing.
		flush_pid,
		flush_ref,
		%% Resources.
		no_leaks
	].

%% Setup.

init_per_suite(Config) ->
	{ok, _} = application:ensure_all_started(gun),
	{Holder, Port} = start_server(find_script("ws_server.py"), []),
	[{ws_port, Port}, {ws_holder, Holder}|Config].

end_per_suite(Config) ->
	ok = stop_server(proplists:get_value(ws_holder, Config)).

%% Helpers.

port(Config) ->
	proplists:get_value(ws_port, Config).

connect(Config) ->
	connect(Config, #{}).

connect(Config, Opts) ->
	suite_helper:open_up(host(Config), port(Config), open_opts(Config, Opts)).

%% Config may name another host and add gun:open/3 options: tls_SUITE
%% runs this suite's echo cases over TLS that way.
host(Config) ->
	proplists:get_value(host, Config, "127.0.0.1").

open_opts(Config, Opts) ->
	maps:merge(maps:merge(#{retry => 0}, proplists:get_value(open_opts, Config, #{})), Opts).

%% How the server saw the connection tagged Id end: the client's close code
%% (1005 empty close, 1006 no close frame) or <<"none">>.
lastclose(Config, Id) ->
	suite_helper:lastclose(connect(Config), Id).

%% The server closed the connection with 1000 (and retry is 0).
server_closed(ConnPid, StreamRef, MRef) ->
	{gun_ws, ConnPid, {close, 1000, <<>>}} = next_from(ConnPid),
	{gun_down, ConnPid, ws, normal, [StreamRef], []} = next_from(ConnPid),
	{shutdown, normal} = down(ConnPid, MRef),
	ok.

%% Connection.

open_2_up(Config) ->
	{ok, ConnPid} = gun:open("127.0.0.1", port(Config)),
	true = is_pid(ConnPid),
	{gun_up, ConnPid, http} = next(),
	close(ConnPid).

open_3_await_up(Config) ->
	{ok, ConnPid} = gun:open("127.0.0.1", port(Config), #{retry => 0}),
	true = is_pid(ConnPid),
	{ok, http} = gun:await_up(ConnPid),
	{ok, ConnPid2} = gun:open("127.0.0.1", port(Config), #{}),
	{ok, http} = gun:await_up(ConnPid2, ?T),
	close(ConnPid),
	close(ConnPid2).

open_host_forms(Config) ->
	lists:foreach(fun(Host) ->
		{ok, ConnPid} = gun:open(Host, port(Config), #{retry => 0}),
		{ok, http} = gun:await_up(ConnPid, ?T),
		_ = upgrade(ConnPid, "/echo"),
		echo_check(ConnPid),
		close(ConnPid)
	end, ["127.0.0.1", <<"127.0.0.1">>, {127, 0, 0, 1}]).

closed_port() ->
	{ok, L} = gen_tcp:listen(0, [{ip, {127, 0, 0, 1}}]),
	{ok, Port} = inet:port(L),
	ok = gen_tcp:close(L),
	Port.

await_up_refused(_) ->
	{ok, ConnPid} = gun:open("127.0.0.1", closed_port(), #{retry => 0}),
	{error, {shutdown, econnrefused}} = gun:await_up(ConnPid, ?T).

await_up_timeout(Config) ->
	%% A connection that is already up sends gun_up once: a second wait times out.
	ConnPid = connect(Config),
	{error, timeout} = gun:await_up(ConnPid, 100),
	close(ConnPid).

info_http_then_ws(Config) ->
	Port = port(Config),
	Self = self(),
	ConnPid = connect(Config),
	Info = gun:info(ConnPid),
	#{sock_ip := {127, 0, 0, 1}, sock_port := SockPort, origin_host := "127.0.0.1",
		origin_port := Port, transport := tcp, protocol := http, owner := Self} = Info,
	true = is_integer(SockPort) andalso SockPort > 0 andalso SockPort =/= Port,
	_ = upgrade(ConnPid, "/echo"),
	#{sock_ip := {127, 0, 0, 1}, sock_port := SockPort, origin_host := "127.0.0.1",
		origin_port := Port, transport := tcp, protocol := ws, owner := Self} = gun:info(ConnPid),
	close(ConnPid).

%% Once the owner has {gun_ws_upgrade, ...}, gun:info/1 says ws (as with
%% Gun, where info/1 is answered by the connection process in order).
%% Repeated because a wrong order only shows now and then.
info_ws_once_upgraded(Config) ->
	Protocols = [begin
		ConnPid = connect(Config),
		_ = gun:ws_upgrade(ConnPid, "/echo"),
		{gun_ws_upgrade, ConnPid, ok, _} = next(),
		#{protocol := Protocol} = gun:info(ConnPid),
		close(ConnPid),
		Protocol
	end || _ <- lists:seq(1, 200)],
	case [P || P <- Protocols, P =/= ws] of
		[] -> ok;
		Wrong -> error({protocol_not_ws_after_gun_ws_upgrade, length(Wrong), 'of', 200, lists:usort(Wrong)})
	end.

%% Options.

open_option_errors(Config) ->
	Port = port(Config),
	{error, {options, {protocols, [spdy]}}} = gun:open("127.0.0.1", Port, #{protocols => [spdy]}),
	{error, {options, {retry, -1}}} = gun:open("127.0.0.1", Port, #{retry => -1}),
	{error, {options, {ws, {keepalive, foo}}}} = gun:open("127.0.0.1", Port, #{ws_opts => #{keepalive => foo}}),
	{error, {options, {http, {version, 'HTTP/2'}}}} = gun:open("127.0.0.1", Port, #{http_opts => #{version => 'HTTP/2'}}),
	{error, {options, {bad, 1}}} = gun:open("127.0.0.1", Port, #{bad => 1}),
	{error, {options, {ws, {flow, 0}}}} = gun:open("127.0.0.1", Port, #{ws_opts => #{flow => 0}}),
	%% No connection was attempted for any of them.
	no_messages_from_anyone().

no_messages_from_anyone() ->
	{messages, []} = process_info(self(), messages),
	ok.

ws_upgrade_4_bad_option(Config) ->
	ConnPid = connect(Config),
	{'EXIT', {{badmatch, {error, {options, {ws, {keepalive, foo}}}}}, _}}
		= (catch gun:ws_upgrade(ConnPid, "/echo", [], #{keepalive => foo})),
	{'EXIT', {{badmatch, {error, {options, {ws, {silence_pings, 1}}}}}, _}}
		= (catch gun_ws:upgrade(ConnPid, "/echo", [], #{silence_pings => 1})),
	%% Nothing was sent: the connection is still plain HTTP and usable.
	#{protocol := http} = gun:info(ConnPid),
	_ = upgrade(ConnPid, "/echo"),
	echo_check(ConnPid),
	close(ConnPid).

ws_opts_from_open(Config) ->
	%% ws_opts given to gun:open/3 apply to the upgrade.
	ConnPid = connect(Config, #{ws_opts => #{silence_pings => false, keepalive => infinity}}),
	_ = upgrade(ConnPid, "/echo"),
	ok = gun:ws_send(ConnPid, {ping, <<"o">>}),
	{gun_ws, ConnPid, {pong, <<"o">>}} = next(),
	close(ConnPid).

%% The upgrade.

upgrade_ok_headers(Config) ->
	ConnPid = connect(Config),
	MRef = monitor_conn(ConnPid),
	StreamRef = gun:ws_upgrade(ConnPid, "/headers?id=" ++ id()),
	true = is_reference(StreamRef),
	{gun_ws_upgrade, ConnPid, ok, RespHeaders} = next(),
	ok = check_headers(RespHeaders),
	{_, Upgrade} = lists:keyfind(<<"upgrade">>, 1, RespHeaders),
	<<"websocket">> = string:lowercase(Upgrade),
	{_, Accept} = lists:keyfind(<<"sec-websocket-accept">>, 1, RespHeaders),
	%% The server sends the request headers it got (names lower-cased).
	{gun_ws, ConnPid, {text, Json}} = next(),
	Key = json_value(Json, "sec-websocket-key"),
	16 = byte_size(base64:decode(Key)),
	Accept = raw_peer:accept_key(Key),
	<<"websocket">> = string:lowercase(json_value(Json, "upgrade")),
	<<"13">> = json_value(Json, "sec-websocket-version"),
	true = lists:member(<<"upgrade">>,
		[string:trim(T) || T <- string:split(string:lowercase(json_value(Json, "connection")), ",", all)]),
	%% No extension is offered (compress is off by default).
	nomatch = binary:match(Json, <<"sec-websocket-extensions">>),
	%% Then the server closes normally (1000); with retry => 0 that ends it.
	server_closed(ConnPid, StreamRef, MRef).

upgrade_all_arities(Config) ->
	Upgrades = [
		fun(C) -> gun:ws_upgrade(C, "/echo") end,
		fun(C) -> gun:ws_upgrade(C, "/echo", []) end,
		fun(C) -> gun:ws_upgrade(C, "/echo", [], #{}) end,
		fun(C) -> gun_ws:upgrade(C, "/echo") end,
		fun(C) -> gun_ws:upgrade(C, "/echo", []) end,
		fun(C) -> gun_ws:upgrade(C, <<"/echo">>, [], #{compress => false}) end
	],
	lists:foreach(fun(Upgrade) ->
		ConnPid = connect(Config),
		StreamRef = Upgrade(ConnPid),
		true = is_reference(StreamRef),
		{gun_ws_upgrade, ConnPid, ok, Headers} = next(),
		ok = check_headers(Headers),
		{<<"upgrade">>, _} = lists:keyfind(<<"upgrade">>, 1, Headers),
		{<<"sec-websocket-accept">>, _} = lists:keyfind(<<"sec-websocket-accept">>, 1, Headers),
		echo_check(ConnPid),
		close(ConnPid)
	end, Upgrades).

upgrade_caller_headers_iodata(Config) ->
	ConnPid = connect(Config),
	MRef = monitor_conn(ConnPid),
	StreamRef = gun:ws_upgrade(ConnPid, ["/head", <<"ers">>], [
		{[<<"x-">>, "test"], [<<"va">>, ["l"], "ue"]},
		{<<"x-other">>, "two words"}
	]),
	{gun_ws_upgrade, ConnPid, ok, _} = next(),
	{gun_ws, ConnPid, {text, Json}} = next(),
	<<"value">> = json_value(Json, "x-test"),
	<<"two words">> = json_value(Json, "x-other"),
	server_closed(ConnPid, StreamRef, MRef).

upgrade_protocol_offer(Config) ->
	ConnPid = connect(Config),
	_ = gun:ws_upgrade(ConnPid, "/proto", [{<<"sec-websocket-protocol">>, "mychat"}]),
	{gun_ws_upgrade, ConnPid, ok, Headers} = next(),
	ok = check_headers(Headers),
	{_, <<"mychat">>} = lists:keyfind(<<"sec-websocket-protocol">>, 1, Headers),
	{gun_ws, ConnPid, {text, <<"mychat">>}} = next(),
	echo_check(ConnPid),
	close(ConnPid).

upgrade_before_up(Config) ->
	{ok, ConnPid} = gun:open("127.0.0.1", port(Config), #{retry => 0}),
	StreamRef = gun:ws_upgrade(ConnPid, "/echo"),
	true = is_reference(StreamRef),
	{gun_up, ConnPid, http} = next(),
	{gun_ws_upgrade, ConnPid, ok, Headers} = next(),
	ok = check_headers(Headers),
	echo_check(ConnPid),
	close(ConnPid).

upgrade_refused_404(Config) ->
	ConnPid = connect(Config),
	MRef = monitor_conn(ConnPid),
	StreamRef = gun:ws_upgrade(ConnPid, "/missing"),
	{gun_response, ConnPid, StreamRef, nofin, 404, Headers} = next(),
	ok = check_headers(Headers),
	{_, <<"text/plain">>} = lists:keyfind(<<"content-type">>, 1, Headers),
	<<"not found">> = body(ConnPid, StreamRef),
	%% The server closes the connection (connection: close) after the body.
	{gun_down, ConnPid, http, closed, [], []} = next(),
	{shutdown, closed} = down(ConnPid, MRef).

upgrade_http10(Config) ->
	ConnPid = connect(Config, #{http_opts => #{version => 'HTTP/1.0'}}),
	StreamRef = gun:ws_upgrade(ConnPid, "/echo"),
	{gun_error, ConnPid, StreamRef, {badstate, ?BADSTATE_HTTP10}} = next(),
	#{protocol := http} = gun:info(ConnPid),
	close(ConnPid).

upgrade_invalid_accept(_) ->
	failed_validation(invalid_accept, fun(_Key) ->
		[<<"upgrade: websocket\r\nconnection: Upgrade\r\n">>,
			<<"sec-websocket-accept: ">>, raw_peer:accept_key(<<"c29tZSBvdGhlciBrZXkhIQ==">>), <<"\r\n">>]
	end).

upgrade_missing_upgrade_header(_) ->
	failed_validation(missing_upgrade_header, fun(Key) ->
		[<<"connection: Upgrade\r\nsec-websocket-accept: ">>, raw_peer:accept_key(Key), <<"\r\n">>]
	end).

upgrade_missing_connection_header(_) ->
	failed_validation(missing_connection_header, fun(Key) ->
		[<<"upgrade: websocket\r\nsec-websocket-accept: ">>, raw_peer:accept_key(Key), <<"\r\n">>]
	end).

upgrade_unexpected_protocol(_) ->
	failed_validation(unexpected_protocol, fun(Key) ->
		[<<"upgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ">>, raw_peer:accept_key(Key),
			<<"\r\nsec-websocket-protocol: mychat\r\n">>]
	end).

upgrade_unexpected_extension(_) ->
	failed_validation(unexpected_extension, fun(Key) ->
		[<<"upgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ">>, raw_peer:accept_key(Key),
			<<"\r\nsec-websocket-extensions: permessage-deflate\r\n">>]
	end).

%% A 101 that fails validation: gun_error for the upgrade's StreamRef, then
%% the connection is closed and handled as a loss (doc/behaviour.md).
failed_validation(Why, HeadersFun) ->
	{Port, Server} = raw_server(fun(Key) ->
		[<<"HTTP/1.1 101 Switching Protocols\r\n">>, HeadersFun(Key), <<"\r\n">>]
	end),
	{ok, ConnPid} = gun:open("127.0.0.1", Port, #{retry => 0}),
	{ok, http} = gun:await_up(ConnPid, ?T),
	MRef = monitor_conn(ConnPid),
	StreamRef = gun:ws_upgrade(ConnPid, "/raw"),
	Reason = {error, {ws_upgrade, Why}},
	{gun_error, ConnPid, StreamRef, Reason} = next(),
	{gun_down, ConnPid, http, Reason, [StreamRef], []} = next(),
	{shutdown, Reason} = down(ConnPid, MRef),
	%% The client closed the socket.
	receive {Server, peer_closed} -> ok after ?T -> error(socket_not_closed) end.

%% Accepts one connection, reads the upgrade request and answers with
%% RespFun(SecWebSocketKey); tells the caller when the client closes.
raw_server(RespFun) ->
	Parent = self(),
	{L, Port} = raw_peer:listen(),
	Server = spawn_link(fun() ->
		S = raw_peer:accept(L),
		Req = raw_peer:read_request(S),
		raw_peer:send(S, RespFun(raw_peer:header(<<"sec-websocket-key">>, Req))),
		{closed, _} = raw_peer:drain(S, 2 * ?T),
		Parent ! {self(), peer_closed}
	end),
	{Port, Server}.

%% One error per call, however many calls the engine takes together.
ws_send_before_upgrade(Config) ->
	ConnPid = connect(Config),
	Calls = [{text, <<"too early">>}, [], [{text, <<"a">>}, {binary, <<"b">>}], ping],
	[ok = gun:ws_send(ConnPid, Frames) || _ <- lists:seq(1, 250), Frames <- Calls],
	[{gun_error, ConnPid, {badstate, ?BADSTATE_SEND}} = next() || _ <- lists:seq(1, 250), _ <- Calls],
	nothing_for(100),
	close(ConnPid).

%% Frames.

echo_text(Config) ->
	ConnPid = connect(Config),
	_ = upgrade(ConnPid, "/echo"),
	ok = gun:ws_send(ConnPid, {text, "Hello!"}),
	{gun_ws, ConnPid, {text, <<"Hello!">>}} = next(),
	close(ConnPid).

echo_iodata(Config) ->
	ConnPid = connect(Config),
	_ = upgrade(ConnPid, "/echo"),
	ok = gun:ws_send(ConnPid, {text, ["He", [$l, [<<"l">>]], <<"o">>, $!]}),
	{gun_ws, ConnPid, {text, <<"Hello!">>}} = next(),
	ok = gun:ws_send(ConnPid, {binary, [<<1, 2>>, [3, [<<>>, 4]], []]}),
	{gun_ws, ConnPid, {binary, <<1, 2, 3, 4>>}} = next(),
	ok = gun:ws_send(ConnPid, {text, [<<"caf">>, <<16#C3, 16#A9>>]}),
	{gun_ws, ConnPid, {text, <<"café"/utf8>>}} = next(),
	close(ConnPid).

echo_binary(Config) ->
	ConnPid = connect(Config),
	_ = upgrade(ConnPid, "/echo"),
	Bin = list_to_binary(lists:seq(0, 255)),
	ok = gun:ws_send(ConnPid, {binary, Bin}),
	{gun_ws, ConnPid, {binary, Bin}} = next(),
	close(ConnPid).

echo_empty(Config) ->
	ConnPid = connect(Config),
	_ = upgrade(ConnPid, "/echo"),
	ok = gun:ws_send(ConnPid, {text, <<>>}),
	{gun_ws, ConnPid, {text, <<>>}} = next(),
	ok = gun:ws_send(ConnPid, {text, ""}),
	{gun_ws, ConnPid, {text, <<>>}} = next(),
	ok = gun:ws_send(ConnPid, {binary, []}),
	{gun_ws, ConnPid, {binary, <<>>}} = next(),
	close(ConnPid).

echo_sizes(Config) ->
	echo_sizes(Config, [0, 1, 125, 126, 127, 65535, 65536, 65537, 1024 * 1024, 16 * 1024 * 1024]).

%% Each size around a frame length encoding echoes whole.
echo_sizes(Config, Sizes) ->
	ConnPid = connect(Config),
	_ = upgrade(ConnPid, "/echo"),
	lists:foreach(fun(Size) ->
		Bin = pattern(Size),
		ok = gun:ws_send(ConnPid, {binary, Bin}),
		case next(?BIG_T) of
			{gun_ws, ConnPid, {binary, Bin}} -> ok;
			{gun_ws, ConnPid, {binary, Other}} -> error({mismatch, Size, byte_size(Other)});
			Other -> error({unexpected, Size, Other})
		end
	end, Sizes),
	close(ConnPid).

pattern(Size) ->
	<< <<(I rem 251)>> || I <- lists:seq(0, Size - 1) >>.

echo_utf8_large(Config) ->
	ConnPid = connect(Config),
	_ = upgrade(ConnPid, "/echo"),
	Text = unicode:characters_to_binary(lists:duplicate(30000, [16#20AC, $a, 16#1F600])),
	ok = gun:ws_send(ConnPid, {text, Text}),
	case next(?BIG_T) of
		{gun_ws, ConnPid, {text, Text}} -> ok;
		Other -> error({unexpected, element(1, Other)})
	end,
	close(ConnPid).

send_list_in_order(Config) ->
	ConnPid = connect(Config),
	_ = upgrade(ConnPid, "/echo"),
	ok = gun:ws_send(ConnPid, [{text, <<"1">>}, {binary, <<2>>}, ping, {text, "3"},
		{binary, <<4, 4>>}, {text, [<<"5">>]}]),
	{gun_ws, ConnPid, {text, <<"1">>}} = next(),
	{gun_ws, ConnPid, {binary, <<2>>}} = next(),
	{gun_ws, ConnPid, {text, <<"3">>}} = next(),
	{gun_ws, ConnPid, {binary, <<4, 4>>}} = next(),
	{gun_ws, ConnPid, {text, <<"5">>}} = next(),
	%% Many small sends from the caller also keep their order.
	[ok = gun:ws_send(ConnPid, {text, integer_to_binary(I)}) || I <- lists:seq(1, 500)],
	[{gun_ws, ConnPid, {text, B}} = next() || B <- [integer_to_binary(I) || I <- lists:seq(1, 500)]],
	close(ConnPid).

%% The guide's example: frames then close; frames after the close are not
%% sent. The websockets server echoes the close payload as is (empty here),
%% so the server's close arrives as the atom close (doc/behaviour.md).
send_list_with_close(Config) ->
	ConnPid = connect(Config),
	Id = id(),
	StreamRef = upgrade(ConnPid, "/echo?id=" ++ Id),
	MRef = monitor_conn(ConnPid),
	ok = gun:ws_send(ConnPid, [{text, <<"a">>}, close, {text, <<"never">>}]),
	{gun_ws, ConnPid, {text, <<"a">>}} = next(),
	{gun_ws, ConnPid, close} = next(),
	{gun_down, ConnPid, ws, normal, [StreamRef], []} = next(),
	normal = down(ConnPid, MRef),
	%% An empty close frame: the server records 1005.
	<<"1005">> = lastclose(Config, Id),
	no_messages_from(ConnPid).

push_1000(Config) ->
	ConnPid = connect(Config),
	_ = upgrade(ConnPid, "/push?n=1000&size=1000&seq=1"),
	Base = << <<(I rem 256)>> || I <- lists:seq(0, 1255) >>,
	lists:foreach(fun(K) ->
		Expected = binary:part(Base, K rem 256, 1000),
		case next() of
			{gun_ws, ConnPid, {binary, Expected}} -> ok;
			Other -> error({message, K, Other})
		end
	end, lists:seq(0, 999)),
	echo_check(ConnPid),
	close(ConnPid).

%% Far more frames than the engine takes in one batch, sent without
%% waiting: every one is echoed, in order (a batch boundary once lost one).
send_many_without_waiting(Config) ->
	ConnPid = connect(Config),
	_ = upgrade(ConnPid, "/echo"),
	N = 20000,
	lists:foreach(fun(I) ->
		ok = gun:ws_send(ConnPid, {text, integer_to_binary(I)})
	end, lists:seq(1, N)),
	expect_numbered_texts(ConnPid, N),
	close(ConnPid).

%% One call with more frames than a normal scheduler copies in one go
%% (2,000) goes to a dirty one: every frame is sent, in order.
send_long_list_one_call(Config) ->
	ConnPid = connect(Config),
	_ = upgrade(ConnPid, "/echo"),
	N = 5000,
	ok = gun:ws_send(ConnPid, [{text, integer_to_binary(I)} || I <- lists:seq(1, N)]),
	expect_numbered_texts(ConnPid, N),
	close(ConnPid).

%% The texts 1..N, in order, and nothing else between them.
expect_numbered_texts(ConnPid, N) ->
	lists:foreach(fun(I) ->
		Expected = integer_to_binary(I),
		case next() of
			{gun_ws, ConnPid, {text, Expected}} -> ok;
			Other -> error({message, I, Other})
		end
	end, lists:seq(1, N)).

%% A NIF call counts as one reduction however long it runs: ws_send charges
%% the caller for the time it takes (a percent of a timeslice, 40
%% reductions, per 5 us), so that a sending loop is preempted in time.
%% Averaged over many calls: a call shorter than a percent is charged one
%% with the probability of its fraction.
send_charges_the_caller(Config) ->
	ConnPid = connect(Config),
	_ = upgrade(ConnPid, "/echo"),
	Frame = {text, binary:copy(<<"a">>, 64)},
	Thousand = lists:duplicate(1000, Frame),
	One = reductions_of(fun() -> [ok = gun:ws_send(ConnPid, Frame) || _ <- lists:seq(1, 1000)] end) / 1000,
	Many = reductions_of(fun() -> [ok = gun:ws_send(ConnPid, Thousand) || _ <- lists:seq(1, 10)] end) / 10,
	ct:log("per call, one frame: ~.1f reductions; 1,000 frames: ~.1f", [One, Many]),
	%% A thousand frames take well over 12.5 us to copy: more than 100.
	true = One < 50,
	true = Many >= 100,
	[{gun_ws, ConnPid, Frame} = next() || _ <- lists:seq(1, 11000)],
	close(ConnPid).

%% An iolist payload must be walked to be sized and flattened to be sent:
%% one of many cells is left to a dirty scheduler by the normal call
%% (gun_nif:ws_send/2 answers dirty, gun:ws_send/2 then takes that path),
%% even when its bytes are few. Nested lists, byte integers and a binary
%% tail are iodata; anything else in one is a badarg, found on either path.
send_long_iolist(Config) ->
	ConnPid = connect(Config),
	_ = upgrade(ConnPid, "/echo"),
	Long = lists:duplicate(200000, <<"a">>),
	dirty = gun_nif:ws_send(ConnPid, {binary, Long}),
	ok = gun:ws_send(ConnPid, {binary, Long}),
	Flat = iolist_to_binary(Long),
	{gun_ws, ConnPid, {binary, Flat}} = next(?BIG_T),
	ok = gun:ws_send(ConnPid, {text, [<<"a">>, [$b, [<<"c">>, []]] | <<"d">>]}),
	{gun_ws, ConnPid, {text, <<"abcd">>}} = next(),
	{'EXIT', {badarg, _}} = catch gun:ws_send(ConnPid, {binary, Long ++ [foo]}),
	{'EXIT', {badarg, _}} = catch gun:ws_send(ConnPid, {binary, [<<"a">>, [256]]}),
	{'EXIT', {badarg, _}} = catch gun:ws_send(ConnPid, {binary, [<<"a">> | foo]}),
	ok = gun:ws_send(ConnPid, {text, <<"after">>}),
	{gun_ws, ConnPid, {text, <<"after">>}} = next(),
	close(ConnPid).

reductions_of(Fun) ->
	garbage_collect(),
	{reductions, Before} = process_info(self(), reductions),
	Fun(),
	{reductions, After} = process_info(self(), reductions),
	After - Before.

%% ws_opts flow => N: N messages are delivered, then nothing until
%% gun:update_flow/3 gives more (the connection stops reading meanwhile).
flow_control(Config) ->
	ConnPid = connect(Config),
	StreamRef = gun:ws_upgrade(ConnPid, "/push?n=10&size=10&seq=1", [], #{flow => 2}),
	{gun_ws_upgrade, ConnPid, ok, _} = next(),
	Base = << <<(I rem 256)>> || I <- lists:seq(0, 300) >>,
	Expect = fun(From, To) ->
		lists:foreach(fun(K) ->
			Expected = binary:part(Base, K rem 256, 10),
			{gun_ws, ConnPid, {binary, Expected}} = next()
		end, lists:seq(From, To))
	end,
	Expect(0, 1),
	nothing_for(300),
	ok = gun:update_flow(ConnPid, StreamRef, 3),
	Expect(2, 4),
	nothing_for(300),
	ok = gun:update_flow(ConnPid, StreamRef, 100),
	Expect(5, 9),
	echo_check(ConnPid),
	close(ConnPid).

nothing_for(Ms) ->
	receive Msg -> error({unexpected, Msg})
	after Ms -> ok
	end.

push_pattern(Config) ->
	ConnPid = connect(Config),
	_ = upgrade(ConnPid, "/push?n=3&size=70000"),
	Expected = << <<(I rem 256)>> || I <- lists:seq(0, 69999) >>,
	{gun_ws, ConnPid, {binary, Expected}} = next(),
	{gun_ws, ConnPid, {binary, Expected}} = next(),
	{gun_ws, ConnPid, {binary, Expected}} = next(),
	echo_check(ConnPid),
	close(ConnPid).

fragmented_whole(Config) ->
	ConnPid = connect(Config),
	_ = upgrade(ConnPid, "/frag"),
	{gun_ws, ConnPid, {text, <<"Hello!">>}} = next(),
	{gun_ws, ConnPid, {binary, <<1, 2, 3>>}} = next(),
	echo_check(ConnPid),
	close(ConnPid).

ping_unsilenced(Config) ->
	ConnPid = connect(Config),
	StreamRef = gun:ws_upgrade(ConnPid, "/echo", [], #{silence_pings => false, keepalive => infinity}),
	true = is_reference(StreamRef),
	{gun_ws_upgrade, ConnPid, ok, _} = next(),
	ok = gun:ws_send(ConnPid, ping),
	{gun_ws, ConnPid, pong} = next(),
	ok = gun:ws_send(ConnPid, {ping, <<"x">>}),
	{gun_ws, ConnPid, {pong, <<"x">>}} = next(),
	ok = gun:ws_send(ConnPid, {ping, [<<"i">>, "o"]}),
	{gun_ws, ConnPid, {pong, <<"io">>}} = next(),
	%% An unsolicited pong is allowed and gets no answer.
	ok = gun:ws_send(ConnPid, [pong, {pong, <<"p">>}]),
	echo_check(ConnPid),
	close(ConnPid).

ping_silenced(Config) ->
	ConnPid = connect(Config),
	_ = upgrade(ConnPid, "/echo"),
	ok = gun:ws_send(ConnPid, ping),
	ok = gun:ws_send(ConnPid, {ping, <<"y">>}),
	ok = gun:ws_send(ConnPid, {text, <<"after">>}),
	{gun_ws, ConnPid, {text, <<"after">>}} = next(),
	echo_check(ConnPid),
	close(ConnPid).

%% The server pings and waits for the pong before it sends "pong:srv".
server_ping_answered(Config) ->
	ConnPid = connect(Config),
	_ = upgrade(ConnPid, "/ping"),
	{gun_ws, ConnPid, {text, <<"pong:srv">>}} = next(),
	close(ConnPid).

server_ping_unsilenced(Config) ->
	ConnPid = connect(Config, #{ws_opts => #{silence_pings => false, keepalive => infinity}}),
	_ = upgrade(ConnPid, "/ping"),
	{gun_ws, ConnPid, {ping, <<"srv">>}} = next(),
	{gun_ws, ConnPid, {text, <<"pong:srv">>}} = next(),
	close(ConnPid).

keepalive_pings(Config) ->
	ConnPid = connect(Config),
	_ = gun:ws_upgrade(ConnPid, "/echo", [], #{keepalive => 100, silence_pings => false}),
	{gun_ws_upgrade, ConnPid, ok, _} = next(),
	%% The client pings by itself; the server's pongs are delivered.
	[case next() of
		{gun_ws, ConnPid, pong} -> ok;
		{gun_ws, ConnPid, {pong, _}} -> ok;
		Other -> error({unexpected, Other})
	end || _ <- [1, 2, 3]],
	close(ConnPid).

control_payload_125(Config) ->
	ConnPid = connect(Config),
	_ = gun:ws_upgrade(ConnPid, "/echo", [], #{silence_pings => false, keepalive => infinity}),
	{gun_ws_upgrade, ConnPid, ok, _} = next(),
	P = binary:copy(<<"z">>, 125),
	ok = gun:ws_send(ConnPid, {ping, P}),
	{gun_ws, ConnPid, {pong, P}} = next(),
	close(ConnPid).

badarg_frames(Config) ->
	ConnPid = connect(Config),
	_ = upgrade(ConnPid, "/echo"),
	Bad = [
		{text, 123},
		{bogus, <<>>},
		bogus,
		{text, [256]},
		{binary, [<<"a">>|b]},
		{ping, <<0:126/unit:8>>},
		{pong, <<0:126/unit:8>>},
		{close, 1000, <<0:124/unit:8>>},
		[{text, <<"a">>}, {bogus, 1}],
		[{text, <<"a">>}, {ping, <<0:200/unit:8>>}],
		[{text, <<"a">>}|tail],
		[{text, <<"a">>}, {text, <<"b">>}|{text, <<"c">>}]
	],
	lists:foreach(fun(Frame) ->
		try gun:ws_send(ConnPid, Frame) of
			Res -> error({no_badarg, Frame, Res})
		catch
			error:badarg -> ok
		end
	end, Bad),
	%% Nothing of the above was sent: the next message is this echo.
	ok = gun:ws_send(ConnPid, {text, <<"good">>}),
	{gun_ws, ConnPid, {text, <<"good">>}} = next(),
	close(ConnPid).

%% Ending.

server_close(Config) ->
	ConnPid = connect(Config),
	MRef = monitor_conn(ConnPid),
	Id = id(),
	StreamRef = upgrade(ConnPid, "/close?id=" ++ Id),
	ok = gun:ws_send(ConnPid, {text, <<"hi">>}),
	{gun_ws, ConnPid, {close, 4000, <<"bye">>}} = next(),
	{gun_down, ConnPid, ws, normal, [StreamRef], []} = next(),
	%% retry => 0: no reconnect, exits with the gun_down reason.
	{shutdown, normal} = down(ConnPid, MRef),
	%% The client answered with a close echoing the code.
	<<"4000">> = lastclose(Config, Id),
	no_messages_from(ConnPid).

%% The guide's recovery pattern: the connection comes back as plain HTTP
%% and the owner upgrades again.
server_close_reconnect(Config) ->
	ConnPid = connect(Config, #{retry => 1, retry_timeout => 100}),
	StreamRef = upgrade(ConnPid, "/close"),
	ok = gun:ws_send(ConnPid, {text, <<"hi">>}),
	{gun_ws, ConnPid, {close, 4000, <<"bye">>}} = next(),
	{gun_down, ConnPid, ws, normal, [StreamRef], []} = next(),
	{gun_up, ConnPid, http} = next(),
	%% Not upgraded again automatically.
	#{protocol := http} = gun:info(ConnPid),
	ok = gun:ws_send(ConnPid, {text, <<"x">>}),
	{gun_error, ConnPid, {badstate, ?BADSTATE_SEND}} = next(),
	StreamRef2 = upgrade(ConnPid, "/echo"),
	true = StreamRef2 =/= StreamRef,
	echo_check(ConnPid),
	close(ConnPid).

server_drop(Config) ->
	ConnPid = connect(Config),
	MRef = monitor_conn(ConnPid),
	StreamRef = upgrade(ConnPid, "/drop"),
	ok = gun:ws_send(ConnPid, {text, <<"hi">>}),
	{gun_error, ConnPid, StreamRef, closed} = next(),
	{gun_down, ConnPid, ws, closed, [StreamRef], []} = next(),
	{shutdown, closed} = down(ConnPid, MRef).

server_bad_utf8(Config) ->
	server_fault(Config, #{}, "/badutf8?", badencoding, <<"1007">>).

max_frame_size(Config) ->
	server_fault(Config, #{ws_opts => #{max_frame_size => 10}}, "/push?n=1&size=100&",
		badsize, <<"1009">>).

%% What the server sends on the connection upgraded at PathQuery ++
%% "id=..." breaks the rules (retry => 0): gun_error and gun_down {error,
%% Why}, ConnPid exits with it, and the server saw the close code Code.
server_fault(Config, Opts, PathQuery, Why, Code) ->
	ConnPid = connect(Config, Opts),
	MRef = monitor_conn(ConnPid),
	Id = id(),
	StreamRef = upgrade(ConnPid, PathQuery ++ "id=" ++ Id),
	{gun_error, ConnPid, StreamRef, {error, Why}} = next(),
	{gun_down, ConnPid, ws, {error, Why}, [StreamRef], []} = next(),
	{shutdown, {error, Why}} = down(ConnPid, MRef),
	Code = lastclose(Config, Id).

shutdown_upgraded(Config) ->
	ConnPid = connect(Config, #{retry => 5}),
	MRef = monitor_conn(ConnPid),
	Id = id(),
	StreamRef = upgrade(ConnPid, "/echo?id=" ++ Id),
	ok = gun:shutdown(ConnPid),
	%% The server echoes the client's close 1001.
	{gun_ws, ConnPid, {close, 1001, _}} = next(),
	{gun_down, ConnPid, ws, normal, [StreamRef], []} = next(),
	normal = down(ConnPid, MRef),
	<<"1001">> = lastclose(Config, Id),
	no_messages_from(ConnPid).

shutdown_http(Config) ->
	ConnPid = connect(Config, #{retry => 5}),
	MRef = monitor_conn(ConnPid),
	ok = gun:shutdown(ConnPid),
	normal = down(ConnPid, MRef),
	ok = gun:flush(ConnPid),
	no_messages_from(ConnPid).

close_upgraded(Config) ->
	ConnPid = connect(Config, #{retry => 5}),
	MRef = monitor_conn(ConnPid),
	Id = id(),
	_ = upgrade(ConnPid, "/echo?id=" ++ Id),
	ok = gun:close(ConnPid),
	normal = down(ConnPid, MRef),
	%% The server sees the connection end (waited on below), then no gun_down
	%% may have reached the owner.
	Code = lastclose(Config, Id),
	ct:log("server saw close code ~s after gun:close/1", [Code]),
	true = Code =/= <<"none">>,
	no_messages_from(ConnPid).

user_close_code(Config) ->
	ConnPid = connect(Config, #{retry => 5}),
	MRef = monitor_conn(ConnPid),
	Id = id(),
	StreamRef = upgrade(ConnPid, "/echo?id=" ++ Id),
	ok = gun:ws_send(ConnPid, {close, 4001, <<"done">>}),
	{gun_ws, ConnPid, {close, 4001, <<"done">>}} = next(),
	{gun_down, ConnPid, ws, normal, [StreamRef], []} = next(),
	normal = down(ConnPid, MRef),
	<<"4001">> = lastclose(Config, Id),
	no_messages_from(ConnPid).

owner_death_upgraded(Config) ->
	Id = id(),
	{Owner, ConnPid} = spawn_owner(Config, "/echo?id=" ++ Id),
	MRef = monitor_conn(ConnPid),
	Owner ! exit,
	{shutdown, owner_gone} = down(ConnPid, MRef),
	<<"1001">> = lastclose(Config, Id).

owner_death_http(Config) ->
	{Owner, ConnPid} = spawn_owner(Config, undefined),
	MRef = monitor_conn(ConnPid),
	exit(Owner, kill),
	{shutdown, owner_gone} = down(ConnPid, MRef).

spawn_owner(Config, Path) ->
	Self = self(),
	Port = port(Config),
	Owner = spawn(fun() ->
		{ok, ConnPid} = gun:open("127.0.0.1", Port, #{retry => 5}),
		{ok, http} = gun:await_up(ConnPid, ?T),
		case Path of
			undefined ->
				ok;
			_ ->
				_ = gun:ws_upgrade(ConnPid, Path),
				receive {gun_ws_upgrade, ConnPid, ok, _} -> ok after ?T -> exit(upgrade_timeout) end
		end,
		Self ! {owner_ready, self(), ConnPid},
		receive exit -> ok end
	end),
	receive
		{owner_ready, Owner, ConnPid} -> {Owner, ConnPid}
	after ?T ->
		error(owner_not_ready)
	end.

conn_killed(Config) ->
	ConnPid = connect(Config, #{retry => 5}),
	MRef = monitor_conn(ConnPid),
	Id = id(),
	_ = upgrade(ConnPid, "/echo?id=" ++ Id),
	exit(ConnPid, kill),
	killed = down(ConnPid, MRef),
	%% The server sees the connection end (lastclose waits for it).
	Code = lastclose(Config, Id),
	ct:log("server saw close code ~s after the kill", [Code]),
	true = Code =/= <<"none">>,
	no_messages_from(ConnPid).

ws_send_after_exit(Config) ->
	ConnPid = connect(Config),
	_ = upgrade(ConnPid, "/echo"),
	close(ConnPid),
	ok = gun:ws_send(ConnPid, {text, <<"late">>}),
	ok = gun:ws_send(ConnPid, [{text, <<"late">>}, close]),
	no_messages_from(ConnPid).

%% Flushing.

flush_pid(Config) ->
	C1 = connect(Config),
	C2 = connect(Config),
	_ = upgrade(C1, "/echo"),
	_ = upgrade(C2, "/echo"),
	ok = gun:ws_send(C1, [{text, <<"1">>}, {text, <<"2">>}, {text, <<"3">>}, {text, <<"end">>}]),
	ok = gun:ws_send(C2, [{text, <<"keep">>}, {text, <<"end">>}]),
	%% Once "end" arrived, the earlier echoes are in the mailbox.
	receive {gun_ws, C1, {text, <<"end">>}} -> ok after ?T -> error(timeout) end,
	receive {gun_ws, C2, {text, <<"end">>}} -> ok after ?T -> error(timeout) end,
	{messages, Before} = process_info(self(), messages),
	3 = length([M || M = {gun_ws, P, _} <- Before, P =:= C1]),
	ok = gun:flush(C1),
	{messages, [{gun_ws, C2, {text, <<"keep">>}}]} = process_info(self(), messages),
	ok = gun:flush(C2),
	{messages, []} = process_info(self(), messages),
	close(C1),
	close(C2).

flush_ref(Config) ->
	C1 = connect(Config),
	C2 = connect(Config),
	Ref1 = gun:ws_upgrade(C1, "/missing"),
	Ref2 = gun:ws_upgrade(C2, "/missing"),
	%% gun_down comes after the response and its body.
	receive {gun_down, C1, http, _, _, _} -> ok after ?T -> error(timeout) end,
	receive {gun_down, C2, http, _, _, _} -> ok after ?T -> error(timeout) end,
	{messages, Before} = process_info(self(), messages),
	[_|_] = [M || M <- Before, element(3, M) =:= Ref1],
	ok = gun:flush(Ref1),
	{messages, After} = process_info(self(), messages),
	[] = [M || M <- After, element(3, M) =:= Ref1],
	%% The other stream's messages are all still there, in order.
	After = [M || M <- Before, element(3, M) =/= Ref1],
	[{gun_response, C2, Ref2, nofin, 404, _}|_] = After,
	ok = gun:flush(Ref2),
	{messages, []} = process_info(self(), messages).

%% Resources.

no_leaks(Config) ->
	Port = port(Config),
	%% Warm up (the engine may start threads or allocate on first use).
	ok = cycles(Port, 20),
	Fds0 = fd_count(),
	Procs0 = erlang:system_info(process_count),
	Workers = 4,
	PerWorker = 500,
	Monitors = [spawn_monitor(fun() -> ok = cycles(Port, PerWorker) end) || _ <- lists:seq(1, Workers)],
	[receive {'DOWN', MRef, process, Pid, Reason} ->
		normal = Reason
	after 10 * ?BIG_T ->
		error(worker_timeout)
	end || {Pid, MRef} <- Monitors],
	ok = settle(fds, fun suite_helper:fd_count/0, Fds0 + 5, 100),
	ok = settle(procs, fun suite_helper:proc_count/0, Procs0 + 5, 100),
	ct:log("fds ~p -> ~p, processes ~p -> ~p",
		[Fds0, fd_count(), Procs0, erlang:system_info(process_count)]).
