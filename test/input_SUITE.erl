%% Input the client must check or honour (issue 15, part A): requests
%% whose method, target or headers would change what goes on the wire,
%% integer options past what the engine takes, tcp_opts (looked at on
%% the client's own socket and from the peer), and await_body's trailers.
%% The peers are scripted gen_tcp sockets (raw_peer) on 127.0.0.1.
-module(input_SUITE).
-compile([export_all, nowarn_export_all]).

-include_lib("common_test/include/ct.hrl").

-import(suite_helper, [find_script/1, start_server/2, stop_server/1, next/0,
	monitor_conn/1, down/2, close/1]).

-define(MAX_U32, 16#ffffffff).
-define(MAX_U64, 16#ffffffffffffffff).
%% From <sys/socket.h> and <netinet/in.h> on Linux, for {raw, ...}.
-define(SOL_SOCKET, 1).
-define(SO_PRIORITY, 12).

suite() ->
	[{timetrap, {seconds, 60}}].

all() ->
	[{group, requests}, {group, options}, {group, tcp_opts}, await_body_trailers].

groups() ->
	[
		{requests, [], [
			injected_headers_never_sent,
			injected_targets_never_sent,
			invalid_methods_never_sent,
			injected_ws_upgrade_never_sent,
			valid_requests_sent_as_given
		]},
		{options, [], [
			out_of_range_options,
			out_of_range_ws_upgrade_opts,
			largest_options_taken,
			gun_conn_start_bad_options,
			refused_tcp_opts
		]},
		{tcp_opts, [], [
			tcp_ip,
			tcp_ifaddr,
			tcp_port,
			tcp_inet6,
			tcp_family_mismatch,
			tcp_ipv6_v6only,
			tcp_socket_options,
			tcp_linger_abortive,
			tcp_bind_to_device,
			tcp_netns
		]}
	].

init_per_suite(Config) ->
	{ok, _} = application:ensure_all_started(gun),
	Config.

end_per_suite(_Config) ->
	ok.

init_per_testcase(Case, Config) when Case =:= out_of_range_options;
		Case =:= gun_conn_start_bad_options; Case =:= refused_tcp_opts ->
	ok = logger:add_handler(input_suite_reports, ?MODULE, #{config => #{pid => self()}}),
	Config;
init_per_testcase(_, Config) ->
	Config.

end_per_testcase(_, _Config) ->
	_ = logger:remove_handler(input_suite_reports),
	ok.

%% A logger handler: every event reaches the test case.
log(Event, #{config := #{pid := Pid}}) ->
	Pid ! {logged, Event}.

%% Helpers.

open(Port) ->
	open(Port, #{}).

open(Port, Opts) ->
	{ok, ConnPid} = gun:open("127.0.0.1", Port, maps:merge(#{retry => 0}, Opts)),
	ConnPid.

%% An up connection to a fresh peer; returns {ConnPid, PeerSock, LSock}.
connected(Opts) ->
	{LSock, Port} = raw_peer:listen(),
	ConnPid = open(Port, Opts),
	Sock = raw_peer:accept(LSock),
	{ok, http} = gun:await_up(ConnPid),
	{ConnPid, Sock, LSock}.

%% Fun raises Error in the caller, and after it a valid request is the
%% first thing the peer reads: the bad one never reached the wire.
refused(ConnPid, Sock, Error, Fun) ->
	try Fun() of
		Res -> ct:fail({not_refused, Res})
	catch error:Error -> ok
	end,
	_ = gun:get(ConnPid, "/after", [{<<"x-after">>, <<"1">>}]),
	#{method := <<"GET">>, path := <<"/after">>, raw := Raw} = raw_peer:read_request(Sock),
	nomatch = binary:match(Raw, [<<"injected">>, <<"smuggled">>]),
	ok.

no_reports() ->
	receive
		{logged, Event=#{level := Level}} when Level =:= error; Level =:= critical;
				Level =:= alert; Level =:= emergency; Level =:= warning ->
			ct:fail({report_logged, Event});
		{logged, _} ->
			no_reports()
	after 200 ->
		ok
	end.

%% Requests.

injected_headers_never_sent(_) ->
	{ConnPid, Sock, LSock} = connected(#{}),
	Cases = [
		{<<"x-a">>, <<"1\r\nx-injected: yes">>},
		{<<"x-a">>, <<"1\nx-injected: yes">>},
		{<<"x-a">>, <<"1\rx-injected: yes">>},
		{<<"x-a">>, <<"1", 0, "x-injected">>},
		{<<"x-a">>, ["1", [<<"\r\n">>], "x-injected: yes"]},
		{<<"x-a: 1\r\nx-injected">>, <<"yes">>},
		{<<"x-a:">>, <<"injected">>},
		{<<"x a">>, <<"injected">>},
		{<<>>, <<"injected">>},
		{"x-a\r\nx-injected", "yes"}
	],
	lists:foreach(fun({Name, Value}) ->
		BinName = iolist_to_binary(Name),
		Error = {invalid_request_header, BinName, "An invalid request header was detected."},
		refused(ConnPid, Sock, Error,
			fun() -> gun:get(ConnPid, "/", [{<<"x-ok">>, <<"1">>}, {Name, Value}]) end),
		refused(ConnPid, Sock, Error,
			fun() -> gun:post(ConnPid, "/", [{Name, Value}], <<"body">>) end),
		refused(ConnPid, Sock, Error,
			fun() -> gun:request(ConnPid, <<"PUT">>, "/", [{Name, Value}]) end)
	end, Cases),
	%% Headers that are an improper list: badarg, nothing sent.
	refused(ConnPid, Sock, badarg,
		fun() -> gun:get(ConnPid, "/", [{<<"x-ok">>, <<"1">>}|{<<"x-injected">>, <<"1">>}]) end),
	close(ConnPid),
	gen_tcp:close(LSock).

injected_targets_never_sent(_) ->
	{ConnPid, Sock, LSock} = connected(#{}),
	Cases = [
		"/ HTTP/1.1\r\nx-smuggled: 1\r\n\r\nGET /",
		<<"/a b">>,
		<<"/a\tb">>,
		<<"/a\r\nx-smuggled: 1">>,
		<<"/a", 0>>,
		<<"/a", 127>>,
		["/a", [<<"\n">>], "smuggled"],
		<<>>,
		""
	],
	lists:foreach(fun(Target) ->
		Error = {invalid_request_target, iolist_to_binary(Target),
			"An invalid request target was detected."},
		refused(ConnPid, Sock, Error, fun() -> gun:get(ConnPid, Target) end),
		refused(ConnPid, Sock, Error, fun() -> gun:delete(ConnPid, Target, []) end),
		refused(ConnPid, Sock, Error, fun() -> gun:patch(ConnPid, Target, [], <<"b">>) end)
	end, Cases),
	close(ConnPid),
	gen_tcp:close(LSock).

invalid_methods_never_sent(_) ->
	{ConnPid, Sock, LSock} = connected(#{}),
	lists:foreach(fun(Method) ->
		Error = {invalid_request_method, iolist_to_binary(Method),
			"An invalid request method was detected."},
		refused(ConnPid, Sock, Error, fun() -> gun:request(ConnPid, Method, "/", [], <<>>) end)
	end, [<<"GET / HTTP/1.1\r\nx-smuggled: 1\r\n\r\nGET">>, <<"GET ">>, <<>>, "PO\nST"]),
	close(ConnPid),
	gen_tcp:close(LSock).

injected_ws_upgrade_never_sent(_) ->
	{ConnPid, Sock, LSock} = connected(#{}),
	HeaderError = {invalid_request_header, <<"x-a">>, "An invalid request header was detected."},
	refused(ConnPid, Sock, HeaderError,
		fun() -> gun:ws_upgrade(ConnPid, "/", [{<<"x-a">>, <<"1\r\nx-injected: yes">>}]) end),
	refused(ConnPid, Sock, HeaderError,
		fun() -> gun:ws_upgrade(ConnPid, "/", [{<<"x-a">>, <<"1\r\nx-injected: yes">>}], #{}) end),
	refused(ConnPid, Sock, HeaderError,
		fun() -> gun_ws:upgrade(ConnPid, "/", [{<<"x-a">>, <<"1\nx-injected: yes">>}]) end),
	NameError = {invalid_request_header, <<"x-a: 1\r\nx-injected">>,
		"An invalid request header was detected."},
	refused(ConnPid, Sock, NameError,
		fun() -> gun:ws_upgrade(ConnPid, "/", [{<<"x-a: 1\r\nx-injected">>, <<"yes">>}]) end),
	Target = <<"/ HTTP/1.1\r\nx-smuggled: 1\r\n\r\nGET /">>,
	refused(ConnPid, Sock, {invalid_request_target, Target, "An invalid request target was detected."},
		fun() -> gun:ws_upgrade(ConnPid, Target) end),
	close(ConnPid),
	gen_tcp:close(LSock).

%% What the checks take goes out byte for byte: tab in values, every
%% tchar in names, non-ASCII bytes and query strings in targets.
valid_requests_sent_as_given(_) ->
	{ConnPid, Sock, LSock} = connected(#{}),
	Name = <<"x-!#$%&'*+-.^_`|~09AZaz">>,
	_ = gun:request(ConnPid, <<"M-SEARCH">>, <<"/caf", 16#c3, 16#a9, "?a=b%20c&d">>,
		[{Name, <<"a\tb c:d">>}, {"x-list", ["v", <<"1">>]}], <<>>),
	#{method := <<"M-SEARCH">>, path := <<"/caf", 16#c3, 16#a9, "?a=b%20c&d">>, raw := Raw}
		= raw_peer:read_request(Sock),
	{_, _} = binary:match(Raw, <<"\r\n", Name/binary, ": a\tb c:d\r\n">>),
	{_, _} = binary:match(Raw, <<"\r\nx-list: v1\r\n">>),
	close(ConnPid),
	gen_tcp:close(LSock).

%% Options.

out_of_range_options(_) ->
	{LSock, Port} = raw_peer:listen(),
	Cases = [
		{retry, 1 bsl 40},
		{retry, ?MAX_U32 + 1},
		{retry, -1},
		{retry_timeout, ?MAX_U64 + 1},
		{retry_timeout, 1 bsl 70},
		{connect_timeout, ?MAX_U64 + 1},
		{trace, true},
		{http_opts, #{keepalive => ?MAX_U64 + 1}, {http, {keepalive, ?MAX_U64 + 1}}},
		{http_opts, #{max_headers => 65537}, {http, {max_headers, 65537}}},
		{http_opts, #{max_headers => 1 bsl 40}, {http, {max_headers, 1 bsl 40}}},
		{http_opts, #{max_head_size => ?MAX_U64 + 1}, {http, {max_head_size, ?MAX_U64 + 1}}}
	] ++ [{ws_opts, #{Key => Value}, {ws, {Key, Value}}} || {Key, Value} <- [
		{keepalive, ?MAX_U64 + 1},
		{keepalive, 1 bsl 80},
		{closing_timeout, ?MAX_U64 + 1},
		{upgrade_timeout, ?MAX_U64 + 1},
		{flow, ?MAX_U64 + 1},
		{keepalive_tolerance, ?MAX_U32 + 1},
		{max_frame_size, ?MAX_U64 + 1},
		{max_message_size, ?MAX_U64 + 1},
		{max_fragments, ?MAX_U32 + 1},
		{send_queue_limit, ?MAX_U64 + 1},
		{owner_queue_limit, ?MAX_U64 + 1}
	]],
	lists:foreach(fun
		({Key, Value}) ->
			{error, {options, {Key, Value}}} = gun:open("127.0.0.1", Port, #{Key => Value});
		({Key, Value, Error}) ->
			{error, {options, Error}} = gun:open("127.0.0.1", Port, #{Key => Value})
	end, Cases),
	%% Nothing was started: no connection reached the peer.
	{error, timeout} = gen_tcp:accept(LSock, 100),
	no_reports(),
	gen_tcp:close(LSock).

out_of_range_ws_upgrade_opts(_) ->
	{ConnPid, Sock, LSock} = connected(#{}),
	lists:foreach(fun(Opt={Key, Value}) ->
		{'EXIT', {{badmatch, {error, {options, {ws, Opt}}}}, _}}
			= (catch gun:ws_upgrade(ConnPid, "/", [], #{Key => Value}))
	end, [{keepalive, ?MAX_U64 + 1}, {closing_timeout, 1 bsl 64}, {flow, 1 bsl 64},
		{keepalive_tolerance, 1 bsl 32}, {send_queue_limit, 1 bsl 64}]),
	%% Nothing was sent for them.
	{error, timeout} = gen_tcp:recv(Sock, 0, 200),
	close(ConnPid),
	gen_tcp:close(LSock).

%% The largest value of each bound is taken, and the engine lives with
%% it: the connection comes up, upgrades and exchanges frames.
largest_options_taken(_) ->
	{LSock, Port} = raw_peer:listen(),
	WsOpts = #{keepalive => ?MAX_U64, closing_timeout => ?MAX_U64, upgrade_timeout => ?MAX_U64,
		flow => ?MAX_U64, keepalive_tolerance => ?MAX_U32, max_frame_size => ?MAX_U64,
		max_message_size => ?MAX_U64, max_fragments => ?MAX_U32, send_queue_limit => ?MAX_U64},
	{ok, ConnPid} = gun:open("127.0.0.1", Port, #{retry => ?MAX_U32, retry_timeout => ?MAX_U64,
		connect_timeout => ?MAX_U64, ws_opts => WsOpts,
		http_opts => #{keepalive => ?MAX_U64, max_headers => 65536, max_head_size => ?MAX_U64}}),
	Sock = raw_peer:accept(LSock),
	{ok, http} = gun:await_up(ConnPid),
	StreamRef = gun:ws_upgrade(ConnPid, "/", [], WsOpts#{owner_queue_limit => ?MAX_U64}),
	Req = raw_peer:read_request(Sock),
	raw_peer:send(Sock, raw_peer:response_101(Req)),
	{gun_ws_upgrade, ConnPid, ok, _} = next(),
	raw_peer:send(Sock, raw_peer:frame(1, <<"hi">>)),
	{gun_ws, ConnPid, {text, <<"hi">>}} = next(),
	ok = gun:ws_send(ConnPid, {text, <<"back">>}),
	<<"back">> = raw_peer:expect_frame(Sock, 1),
	_ = StreamRef,
	close(ConnPid),
	gen_tcp:close(LSock).

%% Past gun:open/3's checks, the process behind ConnPid (started by
%% gun_sup, as gun:open/3 does) still does not crash on an option the
%% engine cannot decode.
gun_conn_start_bad_options(_) ->
	{LSock, Port} = raw_peer:listen(),
	Opts = #{retry => 1 bsl 40},
	{error, {options, Opts}} = gun_sup:start_conn(self(), "127.0.0.1", Port, Opts),
	Opts2 = #{ws_opts => #{keepalive => 1 bsl 70}},
	{error, {options, Opts2}} = gun_sup:start_conn(self(), "127.0.0.1", Port, Opts2),
	no_reports(),
	gen_tcp:close(LSock).

refused_tcp_opts(_) ->
	{LSock, Port} = raw_peer:listen(),
	lists:foreach(fun(Opt) ->
		{error, {options, {tcp_opts, Opt}}} =
			gun:open("127.0.0.1", Port, #{tcp_opts => [{nodelay, true}, Opt]})
	end, [
		{no_such_option, 1}, no_such_option, local, {fd, 3}, {tcp_module, gen_tcp},
		{inet_backend, socket}, {buffer, 4096}, {delay_send, true}, {header, 2},
		{deliver, term}, {packet_size, 100}, {exit_on_close, false}, {high_watermark, 10},
		{low_watermark, 1}, {high_msgq_watermark, 10}, {low_msgq_watermark, 1},
		{show_econnreset, true}, {recvtos, true}, {send_timeout, 15000},
		{exclusiveaddruse, true},
		{port, 65536}, {port, -1}, {ip, {127, 0, 0, 256}}, {ip, {local, "/tmp/x"}}, {ip, "127.0.0.1"},
		{ifaddr, {1, 2, 3}}, {ifaddr, #{family => inet, addr => {0, 0, 0, 0, 0, 0, 0, 1}}},
		{ifaddr, #{family => inet6, addr => any, scope_id => 1}}, {ifaddr, #{addr => any}},
		{ifaddr, #{family => inet, addr => any, port => 65536}}, {recbuf, 1 bsl 31}, {sndbuf, -1}, {tos, 256}, {tclass, -1},
		{ttl, 0}, {ttl, 256}, {priority, 1 bsl 31}, {linger, {true, 5}}, {linger, {maybe, 0}},
		{keepalive, 1}, {nodelay, yes}, {bind_to_device, <<"a-name-too-long-0">>},
		{bind_to_device, <<"lo", 0>>}, {bind_to_device, "lo"}, {netns, ""}, {netns, <<>>},
		{raw, 1, 12, <<0:(65537*8)>>}, {raw, -1, 12, <<>>}, {raw, 1, 12, "1"},
		{active, maybe}, {mode, text}, {packet, 3}
	]),
	{error, {options, {tcp_opts, not_a_list}}} =
		gun:open("127.0.0.1", Port, #{tcp_opts => [not_a_list]}),
	{error, {options, {tcp_opts, x}}} = gun:open("127.0.0.1", Port, #{tcp_opts => x}),
	%% Improper lists are refused by their tail, never a crash.
	{error, {options, {tcp_opts, x}}} = gun:open("127.0.0.1", Port, #{tcp_opts => [{nodelay, true}|x]}),
	{error, {options, {tls_opts, x}}} = gun:open("127.0.0.1", Port, #{tls_opts => [{verify, verify_none}|x]}),
	{error, {options, {tls_opts, {cacerts, [<<>>|x]}}}} =
		gun:open("127.0.0.1", Port, #{tls_opts => [{cacerts, [<<>>|x]}]}),
	{error, {options, {tls_opts, {no_such_key, 1}}}} =
		gun:open("127.0.0.1", Port, #{tls_opts => [{no_such_key, 1}]}),
	%% What Gun overrides is taken and changes nothing.
	{ok, ConnPid} = gun:open("127.0.0.1", Port, #{retry => 0, tcp_opts =>
		[list, {mode, list}, {active, true}, {packet, line}, {send_timeout, infinity},
			{send_timeout_close, true}]}),
	Sock = raw_peer:accept(LSock),
	{ok, http} = gun:await_up(ConnPid),
	_ = gun:get(ConnPid, "/"),
	#{path := <<"/">>} = raw_peer:read_request(Sock),
	raw_peer:send(Sock, <<"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok">>),
	{gun_response, ConnPid, _, nofin, 200, _} = next(),
	{gun_data, ConnPid, _, fin, <<"ok">>} = next(),
	close(ConnPid),
	no_reports(),
	gen_tcp:close(LSock).

%% tcp_opts.

tcp_ip(_) ->
	{ConnPid, Sock, LSock} = connected(#{tcp_opts => [{ip, {127, 0, 0, 2}}]}),
	{ok, {{127, 0, 0, 2}, PeerPort}} = inet:peername(Sock),
	#{sock_ip := {127, 0, 0, 2}, sock_port := PeerPort} = gun:info(ConnPid),
	close(ConnPid),
	gen_tcp:close(LSock).

tcp_ifaddr(_) ->
	{LSock, _} = raw_peer:listen(),
	{ConnPid, Sock, _} = connected_to(LSock, #{tcp_opts => [{ip, {127, 0, 0, 2}}, {ifaddr, loopback}]}),
	{ok, {{127, 0, 0, 1}, _}} = inet:peername(Sock),
	close(ConnPid),
	{ConnPid2, Sock2, _} = connected_to(LSock, #{tcp_opts => [{ifaddr, {127, 0, 0, 3}}]}),
	{ok, {{127, 0, 0, 3}, _}} = inet:peername(Sock2),
	close(ConnPid2),
	%% A socket:sockaddr_in(): address and port.
	LocalPort = free_port(),
	{ConnPid3, Sock3, _} = connected_to(LSock, #{tcp_opts =>
		[{ifaddr, #{family => inet, addr => {127, 0, 0, 4}, port => LocalPort}}]}),
	{ok, {{127, 0, 0, 4}, LocalPort}} = inet:peername(Sock3),
	close(ConnPid3),
	gen_tcp:close(LSock).

tcp_port(_) ->
	LocalPort = free_port(),
	{ConnPid, Sock, LSock} = connected(#{tcp_opts => [{port, LocalPort}, {reuseaddr, true}]}),
	{ok, {{127, 0, 0, 1}, LocalPort}} = inet:peername(Sock),
	#{sock_port := LocalPort} = gun:info(ConnPid),
	{ok, true} = client_sockopt(ConnPid, Sock, {socket, reuseaddr}),
	close(ConnPid),
	gen_tcp:close(LSock).

free_port() ->
	{ok, S} = gen_tcp:listen(0, [{ip, {127, 0, 0, 1}}]),
	{ok, P} = inet:port(S),
	ok = gen_tcp:close(S),
	P.

%% inet6 tries the host's IPv6 addresses only: a peer on ::1 is reached,
%% one on 127.0.0.1 is not.
tcp_inet6(_) ->
	{ok, LSock6} = gen_tcp:listen(0, [binary, inet6, {active, false}, {ip, {0, 0, 0, 0, 0, 0, 0, 1}}]),
	{ok, Port6} = inet:port(LSock6),
	{ok, ConnPid} = gun:open({0, 0, 0, 0, 0, 0, 0, 1}, Port6, #{retry => 0, tcp_opts => [inet6]}),
	{ok, Sock} = gen_tcp:accept(LSock6, 5000),
	{ok, {{0, 0, 0, 0, 0, 0, 0, 1}, _}} = inet:peername(Sock),
	{ok, http} = gun:await_up(ConnPid),
	close(ConnPid),
	gen_tcp:close(LSock6),
	{LSock, Port} = raw_peer:listen(),
	{ok, ConnPid2} = gun:open("127.0.0.1", Port, #{retry => 0, tcp_opts => [inet]}),
	_ = raw_peer:accept(LSock),
	{ok, http} = gun:await_up(ConnPid2),
	close(ConnPid2),
	gen_tcp:close(LSock).

%% How a connection that fails before it is up ends, through gun:open/3
%% and through a link. A failure found without touching the network can
%% end ConnPid before gun:await_up/1 monitors it (then {error, noproc},
%% doc/behaviour.md); the link sees the exit reason whatever the timing.
failed_start(Host, Port, Opts) ->
	{ok, ConnPid} = gun:open(Host, Port, Opts#{retry => 0}),
	{error, Reason} = gun:await_up(ConnPid),
	Trap = process_flag(trap_exit, true),
	{ok, Linked} = gun_conn:start_link(self(), Host, Port, Opts#{retry => 0}),
	Exit = receive {'EXIT', Linked, E} -> E after 10000 -> error({no_exit, Linked}) end,
	process_flag(trap_exit, Trap),
	case Reason of
		noproc -> ok;
		Exit -> ok
	end,
	Exit.

tcp_family_mismatch(_) ->
	{LSock, Port} = raw_peer:listen(),
	Fail = fun(Opts) ->
		{shutdown, eafnosupport} = failed_start({127, 0, 0, 1}, Port, #{tcp_opts => Opts})
	end,
	Fail([inet6]),
	Fail([{ip, {0, 0, 0, 0, 0, 0, 0, 1}}]),
	{error, timeout} = gen_tcp:accept(LSock, 100),
	gen_tcp:close(LSock).

%% An IPv4-mapped address goes over IPv4 unless the socket is IPv6 only.
tcp_ipv6_v6only(_) ->
	{LSock, Port} = raw_peer:listen(),
	Mapped = {0, 0, 0, 0, 0, 16#ffff, 16#7f00, 1},
	{ok, ConnPid} = gun:open(Mapped, Port, #{retry => 0, tcp_opts => [{ipv6_v6only, false}]}),
	Sock = raw_peer:accept(LSock),
	{ok, {{127, 0, 0, 1}, _}} = inet:peername(Sock),
	{ok, http} = gun:await_up(ConnPid),
	{ok, false} = client_sockopt(ConnPid, Sock, {ipv6, v6only}),
	close(ConnPid),
	{shutdown, Why} = failed_start(Mapped, Port, #{tcp_opts => [{ipv6_v6only, true}]}),
	true = lists:member(Why, [enetunreach, eaddrnotavail, ehostunreach]),
	{error, timeout} = gen_tcp:accept(LSock, 100),
	gen_tcp:close(LSock).

%% Each option as getsockopt(2) reads it on the client's own socket.
tcp_socket_options(_) ->
	Cases = [
		{[{nodelay, false}], {tcp, nodelay}, false},
		{[{nodelay, true}], {tcp, nodelay}, true},
		{[], {tcp, nodelay}, true},
		{[{keepalive, true}], {socket, keepalive}, true},
		{[{keepalive, false}], {socket, keepalive}, false},
		%% The kernel doubles what it is given.
		{[{recbuf, 65536}], {socket, rcvbuf}, 131072},
		{[{sndbuf, 65536}], {socket, sndbuf}, 131072},
		{[{tos, 16#10}], {ip, tos}, lowdelay},
		{[{ttl, 7}], {ip, ttl}, 7},
		{[{priority, 3}], {socket, priority}, 3},
		{[{reuseaddr, true}], {socket, reuseaddr}, true},
		{[{reuseport, true}], {socket, reuseport}, true},
		{[{reuseport_lb, true}], {socket, reuseport}, true},
		{[{dontroute, true}], {socket, dontroute}, true},
		{[{nopush, true}], {tcp, cork}, true},
		{[{linger, {false, 10}}], {socket, linger}, #{onoff => false, linger => 0}},
		{[{bind_to_device, <<"lo">>}], {socket, bindtodevice}, "lo" ++ [0]},
		{[{raw, ?SOL_SOCKET, ?SO_PRIORITY, <<5:32/native>>}], {socket, priority}, 5},
		%% Later options override earlier ones, as in gen_tcp.
		{[{keepalive, true}, {keepalive, false}], {socket, keepalive}, false}
	],
	{LSock, Port} = raw_peer:listen(),
	lists:foreach(fun({TcpOpts, SockOpt, Expected}) ->
		ConnPid = open(Port, #{tcp_opts => TcpOpts}),
		Sock = raw_peer:accept(LSock),
		{ok, http} = gun:await_up(ConnPid),
		case client_sockopt(ConnPid, Sock, SockOpt) of
			{ok, Expected} -> ok;
			Other -> ct:fail({TcpOpts, SockOpt, Other})
		end,
		close(ConnPid),
		gen_tcp:close(Sock)
	end, Cases),
	gen_tcp:close(LSock).

%% {linger, {true, 0}}: the close is abortive, the client's socket is
%% gone at once; without it, it is left in FIN_WAIT2 or TIME_WAIT.
tcp_linger_abortive(_) ->
	{LSock, _} = raw_peer:listen(),
	Closed = fun(TcpOpts) ->
		{ConnPid, Sock, _} = connected_to(LSock, #{tcp_opts => TcpOpts}),
		#{sock_port := LocalPort} = gun:info(ConnPid),
		{ok, PeerPort} = inet:port(Sock),
		Linger = client_sockopt(ConnPid, Sock, {socket, linger}),
		close(ConnPid),
		{error, _} = gen_tcp:recv(Sock, 0, 5000),
		timer:sleep(100),
		{Linger, [State || {State, _} <- tcp_entries(LocalPort, PeerPort)]}
	end,
	{{ok, #{onoff := true, linger := 0}}, []} = Closed([{linger, {true, 0}}]),
	{{ok, #{onoff := false}}, [Lingering]} = Closed([]),
	true = lists:member(Lingering, [<<"05">>, <<"06">>]),
	gen_tcp:close(LSock).

connected_to(LSock, Opts) ->
	{ok, Port} = inet:port(LSock),
	ConnPid = open(Port, Opts),
	Sock = raw_peer:accept(LSock),
	{ok, http} = gun:await_up(ConnPid),
	{ConnPid, Sock, LSock}.

tcp_bind_to_device(_) ->
	{LSock, Port} = raw_peer:listen(),
	{shutdown, enodev} = failed_start("127.0.0.1", Port,
		#{tcp_opts => [{bind_to_device, <<"nosuchdev0">>}]}),
	{error, timeout} = gen_tcp:accept(LSock, 100),
	gen_tcp:close(LSock).

%% The socket is made in the namespace named: this one (reached), one
%% that does not exist (enoent), and a fresh one whose loopback is down.
tcp_netns(_) ->
	{LSock, Port} = raw_peer:listen(),
	{ok, ConnPid} = gun:open("127.0.0.1", Port, #{retry => 0,
		tcp_opts => [{netns, "/proc/self/ns/net"}]}),
	_ = raw_peer:accept(LSock),
	{ok, http} = gun:await_up(ConnPid),
	close(ConnPid),
	{shutdown, enoent} = failed_start("127.0.0.1", Port,
		#{tcp_opts => [{netns, <<"/no/such/netns">>}]}),
	case os:find_executable("unshare") of
		false ->
			{comment, "no unshare(1): the other namespace was not tried"};
		Unshare ->
			Holder = open_port({spawn_executable, "/bin/sh"}, [{args, ["-c",
				"echo $$; exec " ++ Unshare ++ " -n sleep 30"]}, {line, 64}, binary]),
			Pid = receive {Holder, {data, {eol, P}}} -> binary_to_list(P) after 5000 -> error(no_pid) end,
			NsPath = "/proc/" ++ Pid ++ "/ns/net",
			ok = wait_netns_differs(NsPath, 250),
			Res = failed_start("127.0.0.1", Port, #{tcp_opts => [{netns, NsPath}]}),
			_ = os:cmd("kill " ++ Pid),
			catch port_close(Holder),
			{shutdown, enetunreach} = Res,
			{error, timeout} = gen_tcp:accept(LSock, 100),
			gen_tcp:close(LSock)
	end.

wait_netns_differs(_, 0) ->
	error(unshare_did_not_start);
wait_netns_differs(NsPath, N) ->
	case {file:read_link(NsPath), file:read_link("/proc/self/ns/net")} of
		{{ok, Ns}, {ok, Self}} when Ns =/= Self -> ok;
		_ -> timer:sleep(20), wait_netns_differs(NsPath, N - 1)
	end.

%% The client's socket is in this OS process: found by its ports in
%% /proc/net/tcp{,6}, then looked at through a dup of its descriptor.
client_sockopt(ConnPid, PeerSock, Opt) ->
	#{sock_port := LocalPort} = gun:info(ConnPid),
	{ok, PeerPort} = inet:port(PeerSock),
	Inode = socket_inode(LocalPort, PeerPort),
	Fd = fd_of_inode(Inode),
	{ok, S} = socket:open(Fd, #{dup => true}),
	try socket:getopt(S, Opt) after socket:close(S) end.

socket_inode(LocalPort, RemotePort) ->
	case tcp_entries(LocalPort, RemotePort) of
		[{<<"01">>, Inode}] -> Inode;
		Other -> error({client_socket_not_found, LocalPort, RemotePort, Other})
	end.

%% {State, Inode} of the sockets from LocalPort to RemotePort (01 is
%% ESTABLISHED, 05 FIN_WAIT2).
tcp_entries(LocalPort, RemotePort) ->
	Lines = lists:append([begin
		{ok, Bin} = file:read_file(F),
		tl(binary:split(Bin, <<"\n">>, [global, trim]))
	end || F <- ["/proc/net/tcp", "/proc/net/tcp6"]]),
	[{State, Inode} || Line <- Lines,
		[_, Local, Remote, State, _, _, _, _, _, Inode|_]
			<- [binary:split(Line, <<" ">>, [global, trim_all])],
		port_of(Local) =:= LocalPort, port_of(Remote) =:= RemotePort].

port_of(Addr) ->
	[_, Hex] = binary:split(Addr, <<":">>),
	binary_to_integer(Hex, 16).

fd_of_inode(Inode) ->
	Link = "socket:[" ++ binary_to_list(Inode) ++ "]",
	{ok, Fds} = file:list_dir("/proc/self/fd"),
	case [list_to_integer(Fd) || Fd <- Fds, file:read_link("/proc/self/fd/" ++ Fd) =:= {ok, Link}] of
		[Fd] -> Fd;
		Other -> error({no_fd_for_inode, Inode, Other})
	end.

%% await_body.

await_body_trailers(_) ->
	{Holder, Port} = start_server(find_script("http_server.py"), []),
	try
		ConnPid = open(Port),
		{ok, http} = gun:await_up(ConnPid),
		R1 = gun:get(ConnPid, "/chunked?trailers=1"),
		{ok, <<"Hello chunked world!">>, [{<<"x-checksum">>, <<"3a2b">>}, {<<"x-two">>, <<"2">>}]}
			= gun:await_body(ConnPid, R1),
		R2 = gun:get(ConnPid, "/chunked?trailers=1"),
		{ok, <<"Hello chunked world!">>, [{<<"x-checksum">>, <<"3a2b">>}, {<<"x-two">>, <<"2">>}]}
			= gun:await_body(ConnPid, R2, 5000),
		%% Without trailers, as before.
		R3 = gun:get(ConnPid, "/chunked"),
		{ok, <<"Hello chunked world!">>} = gun:await_body(ConnPid, R3),
		close(ConnPid)
	after
		stop_server(Holder)
	end.
