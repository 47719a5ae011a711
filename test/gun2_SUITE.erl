%% Mode 2 (Gun 2.4.1's API, {gun, [{api, 2}]}): what only this mode has.
%% The cases shared with mode 1 run in both modes in their own suites
%% (see mode.erl); here are the mode switch, Gun 2's options, header
%% forms, awaits, reply_to, set_owner, info, ping and exit reasons,
%% against the project's Python servers and scripted gen_tcp peers.
-module(gun2_SUITE).

-import(suite_helper, [find_script/1, start_server/2, stop_server/1, flush_mailbox/0]).

-compile([export_all, nowarn_export_all]).

-include("suite_helper.hrl").

suite() ->
	[{timetrap, {minutes, 3}}].

all() ->
	[{group, switch}, {group, options}, {group, headers}, {group, await},
		{group, relay}, {group, relay_cancel}, {group, http}, {group, ws}, {group, lifecycle}].

groups() ->
	[
		%% The cases that change the env run one at a time.
		{switch, [], [api_bad_value, api_default_is_1, connection_keeps_its_mode,
			open_unix_mode1]},
		{options, [parallel], [open_refused_options, open_accepted_options,
			req_opts_bad, ws_upgrade_opts_bad]},
		{headers, [parallel], [header_forms_lowercased, invalid_request_headers_raise,
			invalid_request_headers_ignore, transform_header_name]},
		{await, [parallel], [await_shapes, await_with_monitor, await_down,
			await_body_trailers, await_body_errors, await_up_forms, flush_both_shapes]},
		{relay, [parallel], [relay_fun_forms, relay_ends_with_stream, relay_ends_with_conn]},
		{relay_cancel, [], [relay_ends_with_cancel]},
		{http, [], [get_4_reply_to_pid, get_4_reply_to_fun_forms, headers_5_data,
			request_6_body, post_4_req_opts, info_keys, open_unix_request, open_unix_tls, stream_info_unknown, stream_info_running,
			stream_info_stopping, stream_info_stopping_unwritten, stream_info_not_connected,
			http_ping_fails]},
		{ws, [], [ws_upgrade_await, ws_protocols_offered, ws_reply_to,
			ws_stream_info_after_cancel]},
		{lifecycle, [], [owner_down_reason, owner_down_normal, set_owner_moves_messages,
			shutdown_exit_reason, gun_down_5_elements, supervise_false_links, retry_fun_called]}
	].

init_per_suite(Config) ->
	{ok, _} = application:ensure_all_started(gun),
	ok = application:set_env(gun, api, 2),
	{HttpHolder, HttpPort} = start_server(find_script("http_server.py"), []),
	{WsHolder, WsPort} = start_server(find_script("ws_server.py"), []),
	[{http_port, HttpPort}, {ws_port, WsPort}, {holders, [HttpHolder, WsHolder]}|Config].

end_per_suite(Config) ->
	ok = application:unset_env(gun, api),
	[stop_server(H) || H <- proplists:get_value(holders, Config)],
	ok.

init_per_testcase(_, Config) ->
	ok = application:set_env(gun, api, 2),
	Config.

end_per_testcase(_, _) ->
	ok = application:set_env(gun, api, 2).

%% Helpers.

http(Config) ->
	proplists:get_value(http_port, Config).

ws(Config) ->
	proplists:get_value(ws_port, Config).

open_up(Port) ->
	open_up(Port, #{}).

open_up(Port, Opts) ->
	{ok, ConnPid} = gun:open("127.0.0.1", Port, maps:merge(#{retry => 0}, Opts)),
	{ok, http} = gun:await_up(ConnPid, ?T),
	ConnPid.

%% A listening socket, and the connection Gun opened to it.
peer() ->
	peer(#{}).

peer(Opts) ->
	{ok, LSock} = gen_tcp:listen(0, [binary, {active, false}, {ip, {127, 0, 0, 1}}]),
	{ok, {_, Port}} = inet:sockname(LSock),
	{ok, ConnPid} = gun:open("127.0.0.1", Port, maps:merge(#{retry => 0}, Opts)),
	{ok, Sock} = gen_tcp:accept(LSock, ?T),
	{ok, http} = gun:await_up(ConnPid, ?T),
	{ConnPid, Sock, LSock}.

%% The request's head as the peer read it.
recv_head(Sock) ->
	recv_head(Sock, <<>>).

recv_head(Sock, Acc) ->
	case binary:match(Acc, <<"\r\n\r\n">>) of
		nomatch ->
			{ok, Data} = gen_tcp:recv(Sock, 0, ?T),
			recv_head(Sock, <<Acc/binary, Data/binary>>);
		_ ->
			Acc
	end.

head_lines(Head) ->
	binary:split(Head, <<"\r\n">>, [global, trim_all]).

%% A process standing in for a connection in the await cases: its
%% death is what the awaits' monitor sees.
fake_conn() ->
	spawn(fun() -> receive stop -> ok end end).

receive_from(Pid) ->
	receive {Pid, Msg} -> Msg after ?T -> error({timeout, Pid}) end.

%% switch

api_bad_value(_) ->
	doc("A bad api value is a clear error at gun:open, for either function."),
	ok = application:set_env(gun, api, 3),
	{error, {api, 3}} = gun:open("127.0.0.1", 12345),
	{error, {api, 3}} = gun:open_unix("/tmp/none.sock", #{}),
	ok = application:set_env(gun, api, "2"),
	{error, {api, "2"}} = gun:open("127.0.0.1", 12345, #{}).

api_default_is_1(Config) ->
	doc("Without the env key, a connection speaks mode 1."),
	ok = application:unset_env(gun, api),
	{ok, ConnPid} = gun:open("127.0.0.1", http(Config), #{retry => 0}),
	{ok, http} = gun:await_up(ConnPid, ?T),
	%% Mode 1's awaits do not wrap errors.
	{error, timeout} = gun:await(ConnPid, make_ref(), 10),
	{error, {options, {supervise, false}}} =
		gun:open("127.0.0.1", http(Config), #{supervise => false}),
	gun:close(ConnPid).

connection_keeps_its_mode(Config) ->
	doc("The mode is read at open: changing the env later changes nothing "
		"for the connections already open."),
	ConnPid = open_up(http(Config)),
	ok = application:set_env(gun, api, 1),
	%% A map of headers and a 4th argument are mode 2's.
	StreamRef = gun:get(ConnPid, "/fixed", #{<<"x-a">> => <<"1">>}),
	{response, nofin, 200, _} = gun:await(ConnPid, StreamRef, ?T),
	{ok, <<"Hello world!">>} = gun:await_body(ConnPid, StreamRef, ?T),
	%% Mode 2's await: errors wrapped.
	self() ! {gun_error, ConnPid, StreamRef, closed},
	{error, {stream_error, closed}} = gun:await(ConnPid, StreamRef, ?T),
	gun:close(ConnPid).

%% options

open_refused_options(_) ->
	doc("What mode 2 does not speak is refused with {error, {options, Opt}}."),
	Refused = [
		{cookie_store, {gun_cookies_list, #{}}},
		{event_handler, {gun_default_event_h, undefined}},
		{http3_opts, #{}},
		{raw_opts, #{}},
		{socks_opts, #{}},
		{protocols, [http2]},
		{protocols, [socks]},
		{protocols, [raw]},
		{protocols, [http, http]},
		{transport, quic},
		{trace, true},
		{retry_fun, fun(_) -> #{retries => 0, timeout => 0} end},
		{supervise, maybe},
		{domain_lookup_timeout, -1},
		{tls_handshake_timeout, soon},
		{api, 2}
	],
	[{error, {options, Opt}} = gun:open("127.0.0.1", 12345, maps:from_list([Opt]))
		|| Opt <- Refused],
	RefusedHttp = [
		{content_handlers, [gun_sse_h, gun_data_h]},
		{closing_timeout, 0},
		{flow, 0},
		{transform_header_name, fun(A, B) -> {A, B} end},
		{max_trailer_block_size, 0}
	],
	[{error, {options, {http, Opt}}}
		= gun:open("127.0.0.1", 12345, #{http_opts => maps:from_list([Opt])})
		|| Opt <- RefusedHttp],
	RefusedWs = [
		{protocols, [{<<"chat">>, my_handler}]},
		{protocols, [{"chat", gun_ws_h}]},
		{default_protocol, my_handler},
		{reply_to, self},
		{reply_to, {fun(_) -> ok end, [extra]}},
		{closing_timeout, 0}
	],
	[{error, {options, {ws, Opt}}}
		= gun:open("127.0.0.1", 12345, #{ws_opts => maps:from_list([Opt])})
		|| Opt <- RefusedWs],
	{error, {options, {tls_opts, {versions, ['tlsv1.1']}}}}
		= gun:open("127.0.0.1", 12345, #{tls_opts => [{versions, ['tlsv1.1']}]}),
	ok.

open_accepted_options(_) ->
	doc("Gun 2's options are taken (the connection opens)."),
	Accepted = [
		#{http2_opts => #{notify_settings_changed => true}},
		#{protocols => [http2, http]},
		#{protocols => [{http, #{keepalive => infinity}}]},
		#{supervise => true},
		#{domain_lookup_timeout => 1000, tls_handshake_timeout => infinity},
		#{transport => ssl, tls_opts => [{verify, verify_none}, {versions, ['tlsv1.2']},
			{fail_if_no_peer_cert, false}]},
		#{http_opts => #{closing_timeout => 100, flow => 1, keepalive => 1000,
			max_header_block_size => 1000, max_trailer_block_size => 1000,
			transform_header_name => fun(N) -> N end, version => 'HTTP/1.0'}},
		#{ws_opts => #{protocols => [{<<"chat">>, gun_ws_h}], default_protocol => gun_ws_h,
			user_opts => anything, reply_to => fun(_) -> ok end, silence_pings => false,
			flow => 5, closing_timeout => infinity, max_frame_size => 1000}}
	],
	[begin
		{ok, ConnPid} = gun:open("127.0.0.1", 12345, Opts#{retry => 0}),
		gun:close(ConnPid)
	end || Opts <- Accepted],
	ok.

req_opts_bad(Config) ->
	doc("Bad request options raise in the caller; nothing is sent."),
	ConnPid = open_up(http(Config)),
	Bad = [#{reply_to => 1}, #{reply_to => {fun(_) -> ok end, [a]}}, #{flow => 0},
		#{invalid_request_headers => maybe}, #{tunnel => make_ref()}],
	[{'EXIT', {{options, _}, _}} = catch gun:get(ConnPid, "/fixed", [], ReqOpts)
		|| ReqOpts <- Bad],
	{'EXIT', {{options, _}, _}} = catch gun:request(ConnPid, <<"POST">>, "/echo", [],
		<<"x">>, #{flow => -1}),
	{error, timeout} = gun:await(ConnPid, make_ref(), 100),
	gun:close(ConnPid).

ws_upgrade_opts_bad(Config) ->
	doc("ws_upgrade/4 raises on bad options, Gun 2's {options, {ws, Opt}}."),
	ConnPid = open_up(ws(Config)),
	{'EXIT', {{options, {ws, {protocols, bad}}}, _}}
		= catch gun:ws_upgrade(ConnPid, "/echo", [], #{protocols => bad}),
	{'EXIT', {{options, {ws, {invalid_request_headers, maybe}}}, _}}
		= catch gun:ws_upgrade(ConnPid, "/echo", [], #{invalid_request_headers => maybe}),
	gun:close(ConnPid).

open_unix_mode1(_) ->
	doc("open_unix/2 is mode 2's."),
	ok = application:set_env(gun, api, 1),
	{error, {api, 1}} = gun:open_unix("/tmp/none.sock", #{}),
	{error, {api, 1}} = gun:open_unix("/tmp/none.sock", #{transport => tls}),
	ok = application:set_env(gun, api, 2).

%% headers

header_forms_lowercased(_) ->
	doc("A map or a list; binary, string or atom names; all lower-cased."),
	{ConnPid, Sock, LSock} = peer(),
	_ = gun:get(ConnPid, "/", [{<<"X-Binary">>, <<"1">>}, {"X-String", "2"},
		{'X-Atom', <<"3">>}]),
	Lines1 = head_lines(recv_head(Sock)),
	[true = lists:member(L, Lines1)
		|| L <- [<<"x-binary: 1">>, <<"x-string: 2">>, <<"x-atom: 3">>]],
	_ = gun:get(ConnPid, "/", #{<<"X-Map">> => <<"4">>, atom_name => <<"5">>}, #{}),
	Lines2 = head_lines(recv_head(Sock)),
	[true = lists:member(L, Lines2) || L <- [<<"x-map: 4">>, <<"atom_name: 5">>]],
	gun:close(ConnPid),
	gen_tcp:close(LSock).

invalid_request_headers_raise(_) ->
	doc("A CR or LF in a value raises Gun 2's {invalid_request_header, Name, Text}."),
	{ok, ConnPid} = gun:open("127.0.0.1", 12345, #{retry => 0}),
	Bad = [{<<"x-test">>, <<"bad\r\nvalue">>}],
	Calls = [
		fun() -> gun:get(ConnPid, "/", Bad) end,
		fun() -> gun:get(ConnPid, "/", Bad, #{invalid_request_headers => raise}) end,
		fun() -> gun:post(ConnPid, "/", Bad) end,
		fun() -> gun:headers(ConnPid, <<"PUT">>, "/", Bad) end,
		fun() -> gun:request(ConnPid, <<"PUT">>, "/", Bad, <<>>, #{}) end,
		fun() -> gun:ws_upgrade(ConnPid, "/", Bad) end,
		fun() -> gun:ws_upgrade(ConnPid, "/", Bad, #{}) end
	],
	[{'EXIT', {{invalid_request_header, <<"x-test">>, _}, _}} = catch F() || F <- Calls],
	gun:close(ConnPid).

invalid_request_headers_ignore(_) ->
	doc("invalid_request_headers => ignore sends the header as given."),
	{ConnPid, Sock, LSock} = peer(),
	_ = gun:get(ConnPid, "/", [{<<"x-test">>, <<"bad\r\nvalue">>}],
		#{invalid_request_headers => ignore}),
	Head = recv_head(Sock),
	true = binary:match(Head, <<"bad\r\nvalue">>) =/= nomatch,
	gun:close(ConnPid),
	gen_tcp:close(LSock).

transform_header_name(_) ->
	doc("transform_header_name renames the names on the wire, host included."),
	{ConnPid, Sock, LSock} = peer(#{http_opts => #{transform_header_name =>
		fun(<<"host">>) -> <<"HOST">>; (<<"x-a">>) -> <<"X-A">>; (N) -> N end}}),
	_ = gun:get(ConnPid, "/", [{<<"x-a">>, <<"1">>}]),
	Lines = head_lines(recv_head(Sock)),
	[_] = [L || <<"HOST: ", _/bits>> = L <- Lines],
	[] = [L || <<"host: ", _/bits>> = L <- Lines],
	true = lists:member(<<"X-A: 1">>, Lines),
	gun:close(ConnPid),
	gen_tcp:close(LSock).

%% await

await_shapes(_) ->
	doc("gun:await/2,3 turns each of Gun 2's messages into its result."),
	C = fake_conn(),
	R = make_ref(),
	Table = [
		{{gun_inform, C, R, 103, []}, {inform, 103, []}},
		{{gun_response, C, R, nofin, 200, [{<<"a">>, <<"b">>}]},
			{response, nofin, 200, [{<<"a">>, <<"b">>}]}},
		{{gun_data, C, R, fin, <<"x">>}, {data, fin, <<"x">>}},
		{{gun_trailers, C, R, [{<<"t">>, <<"1">>}]}, {trailers, [{<<"t">>, <<"1">>}]}},
		{{gun_upgrade, C, R, [<<"websocket">>], []}, {upgrade, [<<"websocket">>], []}},
		{{gun_ws, C, R, {text, <<"hi">>}}, {ws, {text, <<"hi">>}}},
		{{gun_ws, C, R, close}, {ws, close}},
		{{gun_error, C, R, closed}, {error, {stream_error, closed}}},
		{{gun_error, C, {badstate, "text"}}, {error, {connection_error, {badstate, "text"}}}}
	],
	[begin
		self() ! Msg,
		Result = gun:await(C, R, ?T)
	end || {Msg, Result} <- Table],
	%% Another stream's messages are left alone.
	self() ! {gun_data, C, make_ref(), fin, <<"other">>},
	{error, timeout} = gun:await(C, R, 50),
	flush_mailbox(),
	C ! stop.

await_with_monitor(_) ->
	doc("await/3 with a monitor, and await/4, use the caller's monitor."),
	C = fake_conn(),
	R = make_ref(),
	MRef = monitor(process, C),
	self() ! {gun_data, C, R, nofin, <<"a">>},
	{data, nofin, <<"a">>} = gun:await(C, R, MRef),
	self() ! {gun_data, C, R, fin, <<"b">>},
	{data, fin, <<"b">>} = gun:await(C, R, ?T, MRef),
	{error, timeout} = gun:await(C, R, 10, MRef),
	C ! stop,
	{error, {down, normal}} = gun:await(C, R, ?T, MRef).

await_down(_) ->
	doc("The connection's death: {error, {down, Reason}} from every await."),
	C = spawn(fun() -> receive stop -> exit({shutdown, closed}) end end),
	MRef = monitor(process, C),
	C ! stop,
	receive {'DOWN', MRef, process, C, _} -> ok end,
	R = make_ref(),
	{error, {down, noproc}} = gun:await(C, R, ?T),
	{error, {down, noproc}} = gun:await_body(C, R, ?T),
	{error, {down, noproc}} = gun:await_up(C, ?T).

await_body_trailers(_) ->
	doc("await_body: the body whole, or {ok, Body, Trailers}."),
	C = fake_conn(),
	R1 = make_ref(),
	self() ! {gun_data, C, R1, nofin, <<"Hello ">>},
	self() ! {gun_data, C, R1, fin, <<"world">>},
	{ok, <<"Hello world">>} = gun:await_body(C, R1, ?T),
	R2 = make_ref(),
	self() ! {gun_data, C, R2, nofin, <<"body">>},
	self() ! {gun_trailers, C, R2, [{<<"x-t">>, <<"1">>}]},
	{ok, <<"body">>, [{<<"x-t">>, <<"1">>}]} = gun:await_body(C, R2),
	R3 = make_ref(),
	MRef = monitor(process, C),
	self() ! {gun_data, C, R3, fin, <<>>},
	{ok, <<>>} = gun:await_body(C, R3, MRef),
	self() ! {gun_data, C, R3, fin, <<"4">>},
	{ok, <<"4">>} = gun:await_body(C, R3, ?T, MRef),
	C ! stop.

await_body_errors(_) ->
	doc("await_body wraps errors as Gun 2 does."),
	C = fake_conn(),
	R = make_ref(),
	self() ! {gun_data, C, R, nofin, <<"part">>},
	self() ! {gun_error, C, R, {closed, "The connection was lost."}},
	{error, {stream_error, {closed, "The connection was lost."}}} = gun:await_body(C, R, ?T),
	self() ! {gun_error, C, closed},
	{error, {connection_error, closed}} = gun:await_body(C, R, ?T),
	{error, timeout} = gun:await_body(C, R, 10),
	C ! stop.

await_up_forms(_) ->
	doc("await_up/1,2,3: {ok, http}, timeout, and the monitor forms."),
	C = fake_conn(),
	self() ! {gun_up, C, http},
	{ok, http} = gun:await_up(C),
	{error, timeout} = gun:await_up(C, 10),
	MRef = monitor(process, C),
	self() ! {gun_up, C, http},
	{ok, http} = gun:await_up(C, MRef),
	self() ! {gun_up, C, http},
	{ok, http} = gun:await_up(C, ?T, MRef),
	C ! stop,
	{error, {down, normal}} = gun:await_up(C, ?T, MRef).

flush_both_shapes(_) ->
	doc("flush/1 drops mode 2's messages too (and no one else's)."),
	C = fake_conn(),
	R = make_ref(),
	Msgs = [{gun_up, C, http}, {gun_down, C, http, closed, [R]},
		{gun_upgrade, C, R, [<<"websocket">>], []}, {gun_ws, C, R, {text, <<"x">>}},
		{gun_response, C, R, nofin, 200, []}, {gun_data, C, R, fin, <<>>}],
	[self() ! M || M <- Msgs],
	self() ! mine,
	ok = gun:flush(C),
	{messages, [mine]} = process_info(self(), messages),
	[self() ! M || M <- tl(tl(Msgs))],
	ok = gun:flush(R),
	{messages, [mine]} = process_info(self(), messages),
	flush_mailbox(),
	C ! stop.

%% relay

relay_fun_forms(_) ->
	doc("The relay calls fun/1, {Fun, Args} and {M, F, A} with each message."),
	Self = self(),
	Forms = [fun(M) -> Self ! {f, M} end, {fun relay_to/2, [Self]},
		{?MODULE, relay_to, [Self]}],
	C = fake_conn(),
	[begin
		Relay = gun_reply_to:start(C, F),
		R = make_ref(),
		Relay ! {gun_response, C, R, nofin, 200, []},
		Relay ! {gun_data, C, R, fin, <<"x">>},
		{_, {gun_response, C, R, nofin, 200, []}} = receive M1 -> M1 after ?T -> error(t) end,
		{_, {gun_data, C, R, fin, <<"x">>}} = receive M2 -> M2 after ?T -> error(t) end
	end || F <- Forms],
	C ! stop.

relay_to(Msg, Pid) ->
	Pid ! {fa, Msg}.

relay_ends_with_stream(_) ->
	doc("The relay exits after its stream's last message."),
	C = fake_conn(),
	Ends = [{gun_response, C, r, fin, 204, []}, {gun_data, C, r, fin, <<>>},
		{gun_trailers, C, r, []}, {gun_error, C, r, closed}, {gun_ws, C, r, close},
		{gun_ws, C, r, {close, 1000, <<>>}}],
	[begin
		Relay = gun_reply_to:start(C, fun(_) -> ok end),
		MRef = monitor(process, Relay),
		Relay ! End,
		receive {'DOWN', MRef, process, Relay, normal} -> ok after ?T -> error(End) end
	end || End <- Ends],
	Relay = gun_reply_to:start(C, fun(_) -> ok end),
	Relay ! {gun_data, C, r, nofin, <<"more">>},
	Relay ! {gun_ws, C, r, {text, <<"more">>}},
	timer:sleep(50),
	true = is_process_alive(Relay),
	exit(Relay, kill),
	C ! stop.

relay_ends_with_cancel(Config) ->
	doc("gun:cancel/2 ends the stream's relay: the fun sees nothing more."),
	ConnPid = open_up(http(Config)),
	Self = self(),
	Ref = gun:get(ConnPid, "/slow?ms=300", [], #{reply_to => fun(M) -> Self ! {relayed, M} end}),
	{ok, #{reply_to := _}} = gun:stream_info(ConnPid, Ref),
	Relays = [P || P <- processes(),
		erlang:process_info(P, initial_call) =:= {initial_call, {gun_reply_to, init, 3}}],
	[_|_] = Relays,
	MRefs = [monitor(process, P) || P <- Relays],
	ok = gun:cancel(ConnPid, Ref),
	[receive {'DOWN', M, process, _, _} -> ok after ?T -> error(relay_alive) end || M <- MRefs],
	receive {relayed, Msg} -> error({relayed_after_cancel, Msg}) after 500 -> ok end,
	gun:close(ConnPid).

relay_ends_with_conn(_) ->
	doc("The relay exits with the connection."),
	C = fake_conn(),
	Relay = gun_reply_to:start(C, fun(_) -> ok end),
	MRef = monitor(process, Relay),
	C ! stop,
	receive {'DOWN', MRef, process, Relay, normal} -> ok after ?T -> error(relay_alive) end.

%% http

get_4_reply_to_pid(Config) ->
	doc("reply_to a pid: the stream's messages go to it, not to the caller."),
	ConnPid = open_up(http(Config)),
	Self = self(),
	ReplyTo = spawn(fun() ->
		receive {ref, Ref} ->
			Self ! {self(), gun:await(ConnPid, Ref, ?T)},
			Self ! {self(), gun:await_body(ConnPid, Ref, ?T)}
		end
	end),
	Ref = gun:get(ConnPid, "/fixed", [], #{reply_to => ReplyTo}),
	ReplyTo ! {ref, Ref},
	{response, nofin, 200, _} = receive_from(ReplyTo),
	{ok, <<"Hello world!">>} = receive_from(ReplyTo),
	{error, timeout} = gun:await(ConnPid, Ref, 100),
	gun:close(ConnPid).

get_4_reply_to_fun_forms(Config) ->
	doc("reply_to fun/1, {Fun, Args}, {M, F, A}: called with each message."),
	ConnPid = open_up(http(Config)),
	Self = self(),
	Forms = [fun(M) -> Self ! {f, M} end, {fun relay_to/2, [Self]},
		{?MODULE, relay_to, [Self]}],
	[begin
		Ref = gun:get(ConnPid, "/fixed", [], #{reply_to => F}),
		{_, {gun_response, ConnPid, Ref, nofin, 200, _}} =
			receive M1 -> M1 after ?T -> error(timeout) end,
		{_, {gun_data, ConnPid, Ref, fin, <<"Hello world!">>}} =
			receive M2 -> M2 after ?T -> error(timeout) end
	end || F <- Forms],
	gun:close(ConnPid).

headers_5_data(Config) ->
	doc("headers/4,5 send the head; gun:data/4 the body."),
	ConnPid = open_up(http(Config)),
	Ref = gun:headers(ConnPid, <<"POST">>, "/echo", #{<<"content-length">> => <<"5">>}),
	ok = gun:data(ConnPid, Ref, fin, <<"hello">>),
	{response, nofin, 200, _} = gun:await(ConnPid, Ref, ?T),
	{ok, <<"hello">>} = gun:await_body(ConnPid, Ref, ?T),
	Ref2 = gun:headers(ConnPid, <<"PUT">>, "/echo", [], #{}),
	ok = gun:data(ConnPid, Ref2, nofin, <<"a">>),
	ok = gun:data(ConnPid, Ref2, fin, <<"b">>),
	{response, nofin, 200, _} = gun:await(ConnPid, Ref2, ?T),
	{ok, <<"ab">>} = gun:await_body(ConnPid, Ref2, ?T),
	gun:close(ConnPid).

request_6_body(Config) ->
	doc("request/6 and post/put/patch/5 take a body and ReqOpts."),
	ConnPid = open_up(http(Config)),
	Calls = [
		fun() -> gun:request(ConnPid, <<"POST">>, "/echo", [], <<"r6">>, #{}) end,
		fun() -> gun:post(ConnPid, "/echo", [], <<"r6">>, #{}) end,
		fun() -> gun:put(ConnPid, "/echo", #{}, <<"r6">>, #{}) end,
		fun() -> gun:patch(ConnPid, "/echo", [], <<"r6">>, #{}) end
	],
	[begin
		Ref = F(),
		{response, nofin, 200, _} = gun:await(ConnPid, Ref, ?T),
		{ok, <<"r6">>} = gun:await_body(ConnPid, Ref, ?T)
	end || F <- Calls],
	gun:close(ConnPid).

post_4_req_opts(Config) ->
	doc("post/put/patch/4 with a map are headers/5: the body follows."),
	ConnPid = open_up(http(Config)),
	Ref = gun:post(ConnPid, "/echo", [{<<"content-length">>, <<"2">>}], #{}),
	ok = gun:data(ConnPid, Ref, fin, <<"ok">>),
	{response, nofin, 200, _} = gun:await(ConnPid, Ref, ?T),
	{ok, <<"ok">>} = gun:await_body(ConnPid, Ref, ?T),
	gun:close(ConnPid).

info_keys(Config) ->
	doc("info/1 has Gun 2's keys."),
	ConnPid = open_up(http(Config)),
	Self = self(),
	#{owner := Self, socket := _, transport := tcp, protocol := http,
		state_name := connected, sock_ip := {127, 0, 0, 1}, sock_port := _,
		origin_scheme := <<"http">>, origin_host := _, origin_port := _,
		intermediaries := [], cookie_store := undefined, event_handler := _,
		event_handler_state := _} = gun:info(ConnPid),
	gun:close(ConnPid),
	{ok, NotUp} = gun:open("127.0.0.1", 12345, #{retry => 0}),
	Info = (catch gun:info(NotUp)),
	case Info of
		#{state_name := not_connected} -> false = maps:is_key(sock_ip, Info);
		{'EXIT', {noproc, _}} -> ok
	end.

open_unix_request(_) ->
	doc("open_unix/2: HTTP over a Unix domain socket, host localhost; info/1 "
		"has no sock_ip there."),
	%% sun_path is short: not under priv_dir.
	Path = "/tmp/gun2_SUITE." ++ integer_to_list(erlang:unique_integer([positive])) ++ ".sock",
	_ = file:delete(Path),
	{ok, LSock} = gen_tcp:listen(0, [binary, {active, false}, {ifaddr, {local, Path}}]),
	{ok, ConnPid} = gun:open_unix(Path, #{retry => 0}),
	{ok, Sock} = gen_tcp:accept(LSock, ?T),
	{ok, http} = gun:await_up(ConnPid, ?T),
	Info = #{state_name := connected, origin_host := _} = gun:info(ConnPid),
	false = maps:is_key(sock_ip, Info),
	Ref = gun:get(ConnPid, "/unix"),
	Lines = head_lines(recv_head(Sock)),
	true = lists:member(<<"host: localhost">>, Lines),
	ok = gen_tcp:send(Sock, <<"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nunix">>),
	{response, nofin, 200, _} = gun:await(ConnPid, Ref, ?T),
	{ok, <<"unix">>} = gun:await_body(ConnPid, Ref, ?T),
	gun:close(ConnPid),
	gen_tcp:close(LSock),
	_ = file:delete(Path),
	ok.

open_unix_tls(Config) ->
	doc("open_unix/2 with transport => tls: TLS over a Unix domain socket, the server "
		"verified as localhost (host header localhost too); a certificate for another "
		"name fails the connection."),
	{ok, _} = application:ensure_all_started(ssl),
	Dir = filename:join(proplists:get_value(priv_dir, Config), "certs"),
	ok = tls_SUITE:make_certs(Dir),
	Cert = fun(Name) -> filename:join(Dir, Name) end,
	Opts = #{retry => 0, transport => tls, tls_opts => [{cacertfile, Cert("ca.pem")}]},
	{Path, Server} = unix_tls_server(Cert("good.pem"), Cert("good.key")),
	{ok, ConnPid} = gun:open_unix(Path, Opts),
	{ok, http} = gun:await_up(ConnPid, ?T),
	Info = #{transport := tls, origin_scheme := <<"https">>} = gun:info(ConnPid),
	false = maps:is_key(sock_ip, Info),
	Ref = gun:get(ConnPid, "/over-tls"),
	{response, nofin, 200, _} = gun:await(ConnPid, Ref, ?T),
	{ok, <<"tls">>} = gun:await_body(ConnPid, Ref, ?T),
	[<<"GET /over-tls HTTP/1.1">>|Lines] = head_lines(receive_from(Server)),
	true = lists:member(<<"host: localhost">>, Lines),
	gun:close(ConnPid),
	_ = file:delete(Path),
	{Path2, _} = unix_tls_server(Cert("wronghost.pem"), Cert("wronghost.key")),
	{ok, ConnPid2} = gun:open_unix(Path2, Opts),
	{error, {down, _}} = gun:await_up(ConnPid2, ?T),
	_ = file:delete(Path2),
	ok.

%% A TLS server on a fresh Unix domain socket: it answers one request,
%% whose head it sends to the caller as {Server, Head}.
unix_tls_server(CertFile, KeyFile) ->
	%% sun_path is short: not under priv_dir.
	Path = "/tmp/gun2_SUITE." ++ integer_to_list(erlang:unique_integer([positive])) ++ ".sock",
	_ = file:delete(Path),
	{ok, LSock} = gen_tcp:listen(0, [binary, {active, false}, {ifaddr, {local, Path}}]),
	Test = self(),
	Server = spawn_link(fun() ->
		{ok, Sock} = gen_tcp:accept(LSock, ?T),
		case ssl:handshake(Sock, [{certfile, CertFile}, {keyfile, KeyFile}], ?T) of
			{ok, TlsSock} ->
				Test ! {self(), tls_recv_head(TlsSock, <<>>)},
				ok = ssl:send(TlsSock, <<"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\ntls">>),
				receive stop -> ok end;
			{error, _} ->
				ok
		end
	end),
	{Path, Server}.

tls_recv_head(TlsSock, Acc) ->
	case binary:match(Acc, <<"\r\n\r\n">>) of
		nomatch ->
			{ok, Data} = ssl:recv(TlsSock, 0, ?T),
			tls_recv_head(TlsSock, <<Acc/binary, Data/binary>>);
		_ ->
			Acc
	end.

stream_info_unknown(Config) ->
	doc("stream_info/2 of a stream the connection does not know."),
	ConnPid = open_up(http(Config)),
	{ok, undefined} = gun:stream_info(ConnPid, make_ref()),
	gun:close(ConnPid).

stream_info_running(Config) ->
	doc("stream_info/2 of a running stream: its reply_to as given, a fun included."),
	ConnPid = open_up(http(Config)),
	Self = self(),
	Ref = gun:get(ConnPid, "/slow?ms=1000"),
	{ok, #{ref := Ref, reply_to := Self, state := running}} = gun:stream_info(ConnPid, Ref),
	Fun = fun(_) -> ok end,
	Ref2 = gun:get(ConnPid, "/slow?ms=1000", [], #{reply_to => Fun}),
	{ok, #{ref := Ref2, reply_to := Fun, state := running}} = gun:stream_info(ConnPid, Ref2),
	{response, nofin, 200, _} = gun:await(ConnPid, Ref, ?T),
	{ok, <<"slow">>} = gun:await_body(ConnPid, Ref, ?T),
	gun:close(ConnPid).

stream_info_stopping(_) ->
	doc("A cancelled stream is stopping while the connection still reads its response, "
		"which reaches nobody, then unknown; the stream pipelined behind it runs on."),
	{ConnPid, Sock, LSock} = peer(),
	Self = self(),
	Ref = gun:get(ConnPid, "/a"),
	_ = recv_head(Sock),
	{ok, #{ref := Ref, reply_to := Self, state := running}} = gun:stream_info(ConnPid, Ref),
	ok = gun:cancel(ConnPid, Ref),
	{ok, #{ref := Ref, reply_to := Self, state := stopping}} = gun:stream_info(ConnPid, Ref),
	Ref2 = gun:get(ConnPid, "/b"),
	%% Its head on the wire: the connection took the cancel before it.
	_ = recv_head(Sock),
	{ok, #{ref := Ref2, state := running}} = gun:stream_info(ConnPid, Ref2),
	ok = gen_tcp:send(Sock, <<"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nab">>),
	%% Half of its body read: stopping still.
	timer:sleep(100),
	{ok, #{ref := Ref, state := stopping}} = gun:stream_info(ConnPid, Ref),
	ok = gen_tcp:send(Sock, <<"cd">>),
	ok = stream_gone(ConnPid, Ref),
	ok = gen_tcp:send(Sock, <<"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok">>),
	{response, nofin, 200, _} = gun:await(ConnPid, Ref2, ?T),
	{ok, <<"ok">>} = gun:await_body(ConnPid, Ref2, ?T),
	{ok, undefined} = gun:stream_info(ConnPid, Ref2),
	{error, timeout} = gun:await(ConnPid, Ref, 100),
	gun:close(ConnPid),
	gen_tcp:close(Sock),
	gen_tcp:close(LSock).

stream_info_stopping_unwritten(_) ->
	doc("A Websocket upgrade cancelled before its answer is stopping until the answer "
		"(a refusal here) is read; a request waiting behind it, not written yet, is "
		"dropped by its cancel: unknown."),
	{ConnPid, Sock, LSock} = peer(),
	Ws = gun:ws_upgrade(ConnPid, "/ws"),
	_ = recv_head(Sock),
	Waiting = gun:get(ConnPid, "/after"),
	{ok, #{state := running}} = gun:stream_info(ConnPid, Waiting),
	ok = gun:cancel(ConnPid, Ws),
	{ok, #{ref := Ws, state := stopping}} = gun:stream_info(ConnPid, Ws),
	ok = gun:cancel(ConnPid, Waiting),
	%% Gone: the connection took both cancels.
	ok = stream_gone(ConnPid, Waiting),
	{ok, #{ref := Ws, state := stopping}} = gun:stream_info(ConnPid, Ws),
	ok = gen_tcp:send(Sock, <<"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n">>),
	ok = stream_gone(ConnPid, Ws),
	{error, timeout} = gun:await(ConnPid, Ws, 100),
	{error, timeout} = gun:await(ConnPid, Waiting, 100),
	gun:close(ConnPid),
	gen_tcp:close(Sock),
	gen_tcp:close(LSock).

stream_info_not_connected(_) ->
	doc("Between retries there is no connection: {error, not_connected}, as in Gun 2."),
	{ok, LSock} = gen_tcp:listen(0, [{ip, {127, 0, 0, 1}}]),
	{ok, {_, Port}} = inet:sockname(LSock),
	ok = gen_tcp:close(LSock),
	{ok, ConnPid} = gun:open("127.0.0.1", Port, #{retry => 10, retry_timeout => 5000}),
	{error, not_connected} = gun:stream_info(ConnPid, make_ref()),
	gun:close(ConnPid).

%% Polls stream_info/2 until the stream is unknown; stopping until then.
stream_gone(ConnPid, Ref) ->
	stream_gone(ConnPid, Ref, 100).

stream_gone(ConnPid, Ref, 0) ->
	error({still_known, gun:stream_info(ConnPid, Ref)});
stream_gone(ConnPid, Ref, Tries) ->
	case gun:stream_info(ConnPid, Ref) of
		{ok, undefined} -> ok;
		{ok, #{state := stopping}} -> timer:sleep(50), stream_gone(ConnPid, Ref, Tries - 1)
	end.

http_ping_fails(Config) ->
	doc("HTTP/1.1 has no ping: the connection goes down, as in Gun 2."),
	ConnPid = open_up(http(Config)),
	PingRef = gun:ping(ConnPid),
	receive
		{gun_down, ConnPid, http, {error, {ping_unsupported_by_protocol, PingRef}}, []} -> ok
	after ?T ->
		error(no_gun_down)
	end,
	gun:close(ConnPid).

%% ws

ws_upgrade_await(Config) ->
	doc("await gives {upgrade, [<<\"websocket\">>], Headers}, then {ws, Frame}; "
		"ws_send/3 sends on the stream."),
	ConnPid = open_up(ws(Config)),
	Ref = gun:ws_upgrade(ConnPid, "/echo"),
	{upgrade, [<<"websocket">>], Headers} = gun:await(ConnPid, Ref, ?T),
	true = is_list(Headers),
	ok = gun:ws_send(ConnPid, Ref, {text, <<"hi">>}),
	{ws, {text, <<"hi">>}} = gun:await(ConnPid, Ref, ?T),
	ok = gun:ws_send(ConnPid, Ref, [{binary, <<1>>}, {text, <<"two">>}]),
	{ws, {binary, <<1>>}} = gun:await(ConnPid, Ref, ?T),
	{ws, {text, <<"two">>}} = gun:await(ConnPid, Ref, ?T),
	gun:close(ConnPid).

ws_protocols_offered(Config) ->
	doc("ws_opts protocols are offered in sec-websocket-protocol; the server's "
		"choice comes back in the upgrade's headers."),
	ConnPid = open_up(ws(Config)),
	Ref = gun:ws_upgrade(ConnPid, "/proto", [],
		#{protocols => [{<<"nope">>, gun_ws_h}, {<<"other">>, gun_ws_h}]}),
	{upgrade, [<<"websocket">>], Headers} = gun:await(ConnPid, Ref, ?T),
	{_, <<"other">>} = lists:keyfind(<<"sec-websocket-protocol">>, 1, Headers),
	gun:close(ConnPid).

ws_reply_to(Config) ->
	doc("ws_upgrade/4 reply_to: the upgrade and the frames go there."),
	ConnPid = open_up(ws(Config)),
	Self = self(),
	Ref = gun:ws_upgrade(ConnPid, "/echo", [], #{reply_to => fun(M) -> Self ! {relayed, M} end}),
	{relayed, {gun_upgrade, ConnPid, Ref, [<<"websocket">>], _}} =
		receive M1 = {relayed, _} -> M1 after ?T -> error(timeout) end,
	ok = gun:ws_send(ConnPid, Ref, {text, <<"via fun">>}),
	{relayed, {gun_ws, ConnPid, Ref, {text, <<"via fun">>}}} =
		receive M2 = {relayed, _} -> M2 after ?T -> error(timeout) end,
	gun:close(ConnPid).

ws_stream_info_after_cancel(Config) ->
	doc("An upgraded Websocket stream is running from its upgrade to its close; a cancel "
		"does not stop it (HTTP/1.1's cancel is for responses): it stays running, its "
		"reply_to fun keeps getting its frames."),
	ConnPid = open_up(ws(Config)),
	Self = self(),
	Fun = fun(M) -> Self ! {relayed, M} end,
	Ref = gun:ws_upgrade(ConnPid, "/echo", [], #{reply_to => Fun}),
	{relayed, {gun_upgrade, ConnPid, Ref, [<<"websocket">>], _}} =
		receive M1 = {relayed, _} -> M1 after ?T -> error(timeout) end,
	{ok, #{ref := Ref, reply_to := Fun, state := running}} = gun:stream_info(ConnPid, Ref),
	ok = gun:cancel(ConnPid, Ref),
	{ok, #{ref := Ref, reply_to := Fun, state := running}} = gun:stream_info(ConnPid, Ref),
	ok = gun:ws_send(ConnPid, Ref, {text, <<"still here">>}),
	{relayed, {gun_ws, ConnPid, Ref, {text, <<"still here">>}}} =
		receive M2 = {relayed, _} -> M2 after ?T -> error(timeout) end,
	ok = gun:ws_send(ConnPid, Ref, close),
	{relayed, {gun_ws, ConnPid, Ref, close}} =
		receive M3 = {relayed, _} -> M3 after ?T -> error(timeout) end,
	gun:close(ConnPid).

%% lifecycle

owner_down_reason(Config) ->
	doc("The owner's death: {shutdown, {owner_down, Reason}} for an abnormal one."),
	Self = self(),
	Owner = spawn(fun() ->
		ConnPid = open_up(http(Config)),
		Self ! {self(), ConnPid},
		receive die -> exit(boom) end
	end),
	ConnPid = receive_from(Owner),
	MRef = monitor(process, ConnPid),
	Owner ! die,
	receive {'DOWN', MRef, process, ConnPid, {shutdown, {owner_down, boom}}} -> ok
	after ?T -> error(no_exit) end.

owner_down_normal(Config) ->
	doc("normal, shutdown and {shutdown, _} pass through."),
	[begin
		Self = self(),
		Owner = spawn(fun() ->
			ConnPid = open_up(http(Config)),
			Self ! {self(), ConnPid},
			receive die -> exit(Reason) end
		end),
		ConnPid = receive_from(Owner),
		MRef = monitor(process, ConnPid),
		Owner ! die,
		receive {'DOWN', MRef, process, ConnPid, Reason} -> ok
		after ?T -> error({no_exit, Reason}) end
	end || Reason <- [normal, shutdown, {shutdown, why}]],
	ok.

set_owner_moves_messages(Config) ->
	doc("set_owner/2: the new owner gets the connection's messages and its "
		"death ends the connection; the old owner's does not."),
	Self = self(),
	Old = spawn(fun() ->
		ConnPid = open_up(http(Config)),
		ok = gun:set_owner(ConnPid, Self),
		Self ! {self(), ConnPid}
	end),
	ConnPid = receive_from(Old),
	timer:sleep(100),
	#{owner := Self} = gun:info(ConnPid),
	true = is_process_alive(ConnPid),
	gun:close(ConnPid).

shutdown_exit_reason(Config) ->
	doc("gun:shutdown/1: the connection exits with shutdown."),
	ConnPid = open_up(http(Config)),
	MRef = monitor(process, ConnPid),
	ok = gun:shutdown(ConnPid),
	receive {'DOWN', MRef, process, ConnPid, shutdown} -> ok
	after ?T -> error(no_exit) end.

gun_down_5_elements(Config) ->
	doc("gun_down has 5 elements: a response with connection: close is not killed."),
	ConnPid = open_up(http(Config), #{retry => 0}),
	Ref = gun:get(ConnPid, "/close"),
	{response, nofin, 200, _} = gun:await(ConnPid, Ref, ?T),
	{ok, <<"closing">>} = gun:await_body(ConnPid, Ref, ?T),
	receive {gun_down, ConnPid, http, normal, []} -> ok
	after ?T -> error(no_gun_down) end.

supervise_false_links(Config) ->
	doc("supervise => false: linked to the caller, as Gun 2's start_link."),
	{ok, ConnPid} = gun:open("127.0.0.1", http(Config), #{supervise => false, retry => 0}),
	{links, Links} = process_info(self(), links),
	true = lists:member(ConnPid, Links),
	unlink(ConnPid),
	gun:close(ConnPid).

retry_fun_called(_) ->
	doc("retry_fun is called before each retry with the retries left and the "
		"options; its answer replaces them."),
	Self = self(),
	Fun = fun(Retries, Opts) ->
		Self ! {retry_fun, Retries, maps:get(retry, Opts)},
		#{retries => Retries - 1, timeout => 10}
	end,
	{ok, ConnPid} = gun:open("127.0.0.1", 12345, #{retry => 2, retry_fun => Fun,
		retry_timeout => 60000}),
	MRef = monitor(process, ConnPid),
	{retry_fun, 2, 2} = receive M1 = {retry_fun, _, _} -> M1 after ?T -> error(no_retry_fun) end,
	{retry_fun, 1, 2} = receive M2 = {retry_fun, _, _} -> M2 after ?T -> error(no_retry_fun) end,
	receive {'DOWN', MRef, process, ConnPid, _} -> ok after ?T -> error(no_exit) end.

doc(_) ->
	ok.
