%% Input the client must check or honour (issue 15): requests whose
%% method, target or headers would change what goes on the wire, integer
%% options past what the engine takes, tcp_opts (looked at on the
%% client's own socket and from the peer), await_body's trailers, the
%% send queue's bounds (a ws_send list whole or not at all, request
%% bodies before the upgrade) and http_opts keepalive's empty lines.
%% The peers are scripted gen_tcp sockets (raw_peer) on 127.0.0.1.
-module(input_SUITE).
-compile([export_all, nowarn_export_all]).

-include_lib("common_test/include/ct.hrl").

-import(suite_helper, [find_script/1, start_server/2, stop_server/1, next/0,
	monitor_conn/1, down/2, close/1, next_from/2, no_more_from/1, rss/0]).

-define(MAX_U32, 16#ffffffff).
-define(MAX_U64, 16#ffffffffffffffff).
%% From <sys/socket.h> and <netinet/in.h> on Linux, for {raw, ...}.
-define(SOL_SOCKET, 1).
-define(SO_PRIORITY, 12).
-define(KiB, 1024).
-define(MiB, 1048576).
%% The time a message may take.
-define(T, 10000).

suite() ->
	[{timetrap, {seconds, 60}}].

all() ->
	[{group, requests}, {group, options}, {group, tcp_opts}, await_body_trailers,
		{group, send_queue}, {group, http_keepalive}].

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
			tcp_netns,
			tcp_send_timeout_ws,
			tcp_send_timeout_http
		]},
		{send_queue, [], [
			ws_send_list_whole_or_refused,
			ws_send_list_close_still_goes,
			ws_send_small_calls_each_refused,
			http_data_bounded,
			http_full_body_refused,
			upgrade_early_body_bounded
		]},
		{http_keepalive, [], [
			http_keepalive_off_by_default,
			http_keepalive_idle_lines,
			http_keepalive_not_inside_body,
			http_keepalive_not_during_upgrade
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
		{http_opts, #{max_head_size => ?MAX_U64 + 1}, {http, {max_head_size, ?MAX_U64 + 1}}},
		{http_opts, #{send_queue_limit => ?MAX_U64 + 1}, {http, {send_queue_limit, ?MAX_U64 + 1}}},
		{http_opts, #{send_queue_limit => 0}, {http, {send_queue_limit, 0}}},
		{http_opts, #{keepalive => 0}, {http, {keepalive, 0}}}
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
		http_opts => #{keepalive => ?MAX_U64, max_headers => 65536, max_head_size => ?MAX_U64,
			send_queue_limit => ?MAX_U64}}),
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
		{show_econnreset, true}, {recvtos, true}, {send_timeout, 0}, {send_timeout, -1},
		{send_timeout, 1 bsl 64}, {send_timeout, 1.5},
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

tcp_family_mismatch(_) ->
	{LSock, Port} = raw_peer:listen(),
	Fail = fun(Opts) ->
		{shutdown, eafnosupport} = suite_helper:failed_start({127, 0, 0, 1}, Port, #{tcp_opts => Opts})
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
	{shutdown, Why} = suite_helper:failed_start(Mapped, Port, #{tcp_opts => [{ipv6_v6only, true}]}),
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
	{shutdown, enodev} = suite_helper:failed_start("127.0.0.1", Port,
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
	{shutdown, enoent} = suite_helper:failed_start("127.0.0.1", Port,
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
			Res = suite_helper:failed_start("127.0.0.1", Port, #{tcp_opts => [{netns, NsPath}]}),
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

%% {send_timeout, 300}: a peer that stops reading, and the client's
%% writes wait: once the socket has taken nothing for 300 ms the
%% connection fails with {error, timeout} (gen_tcp:send/2's term):
%% gun_error for the stream, gun_down, and (retry => 0) the exit.
tcp_send_timeout_ws(_) ->
	#{conn := ConnPid, mref := MRef, ref := Ref, sock := Sock, lsock := LSock} =
		ws_connected(#{tcp_opts => [{send_timeout, 300}, {send_timeout_close, true},
			{sndbuf, 16384}]}),
	Frame = binary:copy(<<"t">>, 64 * ?KiB),
	T0 = suite_helper:now_ms(),
	[ok = gun:ws_send(ConnPid, {binary, Frame}) || _ <- lists:seq(1, 256)],
	Reason = {error, timeout},
	{gun_error, ConnPid, Ref, Reason} = next_from(ConnPid, ?T),
	{gun_down, ConnPid, ws, Reason, [Ref], []} = next_from(ConnPid, ?T),
	{shutdown, Reason} = down(ConnPid, MRef),
	Elapsed = suite_helper:ms_since(T0),
	ct:log("down ~p ms after the first send", [Elapsed]),
	true = Elapsed >= 300,
	gen_tcp:close(Sock),
	gen_tcp:close(LSock).

%% The same before the upgrade, while a 32 MiB body is written.
tcp_send_timeout_http(_) ->
	{ConnPid, Sock, LSock} = connected(#{tcp_opts => [{send_timeout, 300}, {sndbuf, 16384}]}),
	MRef = monitor(process, ConnPid),
	Ref = gun:post(ConnPid, "/big", [], binary:copy(<<"h">>, 32 * ?MiB)),
	Reason = {error, timeout},
	{gun_error, ConnPid, Ref, Reason} = next_from(ConnPid, ?T),
	{gun_down, ConnPid, http, Reason, [Ref], []} = next_from(ConnPid, ?T),
	{shutdown, Reason} = down(ConnPid, MRef),
	gen_tcp:close(Sock),
	gen_tcp:close(LSock).

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

%% The send queue's bounds.

%% An upgraded connection to a fresh peer (raw_peer:open_upgrade/2).
ws_connected(Opts) ->
	St = #{sock := Sock, req := Req} = raw_peer:open_upgrade(Opts,
		fun(ConnPid) -> gun:ws_upgrade(ConnPid, "/") end),
	raw_peer:send(Sock, raw_peer:response_101(Req)),
	#{conn := ConnPid} = St,
	{gun_ws_upgrade, ConnPid, ok, _} = next_from(ConnPid, ?T),
	St.

-define(FILL, (64 * ?KiB)).

%% The peer does not read: 64 KiB frames (sequence-numbered) until one
%% is refused even after a pause, so that nothing more drains into the
%% kernel. Returns {LastSeq, Refused}.
fill_ws(ConnPid, Ref) ->
	fill_ws(ConnPid, Ref, 1, 0, 20).

fill_ws(_, _, Seq, _, 0) ->
	error({ws_queue_never_full, Seq});
fill_ws(ConnPid, Ref, Seq, Refused, Tries) ->
	ok = gun:ws_send(ConnPid, {binary, fill_payload(Seq)}),
	receive
		{gun_error, ConnPid, Ref, {error, send_queue_full}} ->
			receive after 300 -> ok end,
			Refused1 = Refused + 1 + count_refused(ConnPid, Ref),
			ok = gun:ws_send(ConnPid, {binary, fill_payload(Seq + 1)}),
			receive
				{gun_error, ConnPid, Ref, {error, send_queue_full}} -> {Seq + 1, Refused1 + 1}
			after 300 ->
				fill_ws(ConnPid, Ref, Seq + 2, Refused1, Tries - 1)
			end
	after 0 ->
		fill_ws(ConnPid, Ref, Seq + 1, Refused, Tries)
	end.

fill_payload(Seq) ->
	[<<Seq:32>>, binary:copy(<<"f">>, ?FILL - 4)].

count_refused(ConnPid, Ref) ->
	receive
		{gun_error, ConnPid, Ref, {error, send_queue_full}} -> 1 + count_refused(ConnPid, Ref)
	after 0 -> 0
	end.

%% Everything the peer can read until Quiet ms pass with nothing.
read_quiet(Sock, Quiet) ->
	read_quiet(Sock, Quiet, []).

read_quiet(Sock, Quiet, Acc) ->
	case gen_tcp:recv(Sock, 0, Quiet) of
		{ok, Data} -> read_quiet(Sock, Quiet, [Data|Acc]);
		{error, timeout} -> iolist_to_binary(lists:reverse(Acc))
	end.

%% The fill frames read, in order, and the frames after them.
fill_seqs(Frames) ->
	lists:splitwith(fun
		(#{opcode := 2, payload := <<_:32, Rest/binary>>}) -> byte_size(Rest) =:= ?FILL - 4;
		(_) -> false
	end, Frames).

%% With the queue full, [Big, Small] is refused whole: the peer, reading
%% again, gets neither (before, Big was dropped and Small sent, out of
%% the order the sender meant). One gun_error for the call. Once the
%% peer has read, the same list goes out whole, in order.
ws_send_list_whole_or_refused(_) ->
	St = #{conn := ConnPid, ref := Ref, sock := Sock, lsock := LSock} =
		ws_connected(#{ws_opts => #{send_queue_limit => ?MiB}}),
	{Sent, Refused0} = fill_ws(ConnPid, Ref),
	Big = binary:copy(<<"B">>, 256 * ?KiB),
	ok = gun:ws_send(ConnPid, [{binary, Big}, {text, <<"SMALL">>}]),
	{gun_error, ConnPid, Ref, {error, send_queue_full}} = next_from(ConnPid, ?T),
	no_more_from(ConnPid),
	{Frames, <<>>} = raw_peer:decode_frames(read_quiet(Sock, 700)),
	{Fill, []} = fill_seqs(Frames),
	Seqs = [S || #{payload := <<S:32, _/binary>>} <- Fill],
	Seqs = lists:usort(Seqs),
	ct:log("~p fill frames sent, ~p refused, ~p read", [Sent, Refused0, length(Seqs)]),
	Sent = length(Seqs) + Refused0,
	%% The peer reads again: the list goes whole.
	ok = gun:ws_send(ConnPid, [{binary, Big}, {text, <<"SMALL">>}]),
	Big = raw_peer:expect_frame(Sock, 2),
	<<"SMALL">> = raw_peer:expect_frame(Sock, 1),
	no_more_from(ConnPid),
	_ = St,
	close(ConnPid),
	gen_tcp:close(LSock).

%% A close frame in a refused list still goes (after what was queued),
%% and what follows it in the list is not sent.
ws_send_list_close_still_goes(_) ->
	#{conn := ConnPid, mref := MRef, ref := Ref, sock := Sock, lsock := LSock} =
		ws_connected(#{ws_opts => #{send_queue_limit => ?MiB}}),
	_ = fill_ws(ConnPid, Ref),
	Big = binary:copy(<<"B">>, 256 * ?KiB),
	ok = gun:ws_send(ConnPid, [{binary, Big}, {close, 4000, <<"bye">>}, {text, <<"after">>}]),
	{gun_error, ConnPid, Ref, {error, send_queue_full}} = next_from(ConnPid, ?T),
	{Frames, <<>>} = raw_peer:decode_frames(read_quiet(Sock, 700)),
	{_Fill, [#{opcode := 8, payload := <<4000:16, "bye">>}]} = fill_seqs(Frames),
	raw_peer:send(Sock, raw_peer:frame(8, <<4000:16, "bye">>)),
	{gun_ws, ConnPid, {close, 4000, <<"bye">>}} = next_from(ConnPid, ?T),
	{gun_down, ConnPid, ws, normal, [Ref], []} = next_from(ConnPid, ?T),
	normal = down(ConnPid, MRef),
	gen_tcp:close(Sock),
	gen_tcp:close(LSock).

%% With the queue nearly full, small calls (which the engine packs
%% together) are each taken whole or refused with a gun_error of their
%% own: reading again, the peer gets exactly the calls not refused, in
%% the order they were made.
ws_send_small_calls_each_refused(_) ->
	#{conn := ConnPid, ref := Ref, sock := Sock, lsock := LSock} =
		ws_connected(#{ws_opts => #{send_queue_limit => ?MiB}}),
	_ = fill_ws(ConnPid, Ref),
	Calls = 64,
	[ok = gun:ws_send(ConnPid, {text, small_payload(N)}) || N <- lists:seq(1, Calls)],
	Refused = count_refused_within(ConnPid, Ref, 500),
	{Frames, <<>>} = raw_peer:decode_frames(read_quiet(Sock, 700)),
	{_Fill, Small} = fill_seqs(Frames),
	Got = [P || #{opcode := 1, payload := P} <- Small],
	ct:log("~p small calls: ~p refused, ~p sent", [Calls, Refused, length(Got)]),
	%% Less than a fill frame's room was left: most calls are refused.
	true = Refused >= Calls - ?FILL div 4000,
	Got = [small_payload(N) || N <- lists:seq(1, Calls - Refused)],
	true = length(Small) =:= length(Got),
	no_more_from(ConnPid),
	close(ConnPid),
	gen_tcp:close(LSock).

small_payload(N) ->
	iolist_to_binary([io_lib:format("~4..0b", [N]), binary:copy(<<"s">>, 3996)]).

count_refused_within(ConnPid, Ref, Quiet) ->
	receive
		{gun_error, ConnPid, Ref, {error, send_queue_full}} ->
			1 + count_refused_within(ConnPid, Ref, Quiet)
	after Quiet -> 0
	end.

%% An up connection whose peer has read the head of the request the
%% owner makes with Fun; returns {ConnPid, Sock, LSock, Ref, Head, Rest}.
request_head_read(Opts, Fun) ->
	{ConnPid, Sock, LSock} = connected(Opts),
	Ref = Fun(ConnPid),
	{Head, Rest} = read_head(Sock, <<>>),
	{ConnPid, Sock, LSock, Ref, Head, Rest}.

read_head(Sock, Acc) ->
	case binary:split(Acc, <<"\r\n\r\n">>) of
		[Head, Rest] -> {Head, Rest};
		[_] ->
			{ok, Data} = gen_tcp:recv(Sock, 0, ?T),
			read_head(Sock, <<Acc/binary, Data/binary>>)
	end.

%% Reads a chunked body to its last chunk; returns the chunks.
read_chunks(Sock, Buf, Acc) ->
	case binary:split(Buf, <<"\r\n">>) of
		[SizeLine, Rest] ->
			Size = binary_to_integer(SizeLine, 16),
			case Rest of
				<<Chunk:Size/binary, "\r\n", Rest2/binary>> when Size > 0 ->
					read_chunks(Sock, Rest2, [Chunk|Acc]);
				<<"\r\n">> when Size =:= 0 ->
					lists:reverse(Acc);
				_ ->
					read_chunks(Sock, more(Sock, Buf), Acc)
			end;
		[_] ->
			read_chunks(Sock, more(Sock, Buf), Acc)
	end.

more(Sock, Buf) ->
	{ok, Data} = gen_tcp:recv(Sock, 0, ?T),
	<<Buf/binary, Data/binary>>.

respond_ok(Sock) ->
	raw_peer:send(Sock, <<"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok">>).

%% 400 x 1 MiB gun:data/4 to a peer that stopped reading, with
%% http_opts send_queue_limit => 4 MiB: the calls past the bound get
%% {gun_error, C, Ref, {error, send_queue_full}}, memory stays bounded
%% (before: +377 MB RSS), and when the peer reads again it gets whole
%% pieces, in order, exactly those not refused; the connection is kept.
http_data_bounded(_) ->
	{ConnPid, Sock, LSock, Ref, Head, Rest} = request_head_read(
		#{http_opts => #{send_queue_limit => 4 * ?MiB}},
		fun(C) -> gun:post(C, "/upload", [{<<"content-type">>, <<"application/octet-stream">>}]) end),
	<<"POST /upload HTTP/1.1", _/binary>> = Head,
	Filler = binary:copy(<<"d">>, ?MiB - 4),
	N = 400,
	garbage_collect(),
	Mem0 = erlang:memory(total),
	Rss0 = rss(),
	{MaxMem, MaxRss} = lists:foldl(fun(Seq, {M, R}) ->
		ok = gun:data(ConnPid, Ref, nofin, [<<Seq:32>>, Filler]),
		case Seq rem 16 of
			0 -> {max(M, erlang:memory(total)), max(R, rss())};
			_ -> {M, R}
		end
	end, {Mem0, Rss0}, lists:seq(1, N)),
	%% An empty last piece always fits.
	ok = gun:data(ConnPid, Ref, fin, <<>>),
	Refused = count_refused_until_quiet(ConnPid, Ref, 0),
	ct:log("~p pieces, ~p refused; memory ~p -> max ~p; rss ~p -> max ~p",
		[N, Refused, Mem0, MaxMem, Rss0, MaxRss]),
	true = MaxMem - Mem0 < 32 * ?MiB,
	true = MaxRss - Rss0 < 64 * ?MiB,
	true = Refused > N div 2,
	Chunks = read_chunks(Sock, Rest, []),
	Seqs = [begin <<S:32, Filler/binary>> = C, S end || C <- Chunks],
	Seqs = lists:usort(Seqs),
	N = length(Seqs) + Refused,
	%% The connection is kept: the response comes, and a next request goes.
	respond_ok(Sock),
	{response, nofin, 200, _} = gun:await(ConnPid, Ref),
	{ok, <<"ok">>} = gun:await_body(ConnPid, Ref),
	Ref2 = gun:get(ConnPid, "/next"),
	{<<"GET /next HTTP/1.1", _/binary>>, <<>>} = read_head(Sock, <<>>),
	respond_ok(Sock),
	{ok, <<"ok">>} = gun:await_body(ConnPid, Ref2),
	no_more_from(ConnPid),
	close(ConnPid),
	gen_tcp:close(LSock).

count_refused_until_quiet(ConnPid, Ref, N) ->
	receive
		{gun_error, ConnPid, Ref, {error, send_queue_full}} ->
			count_refused_until_quiet(ConnPid, Ref, N + 1);
		Msg when element(2, Msg) =:= ConnPid ->
			error({unexpected, Msg})
	after 500 ->
		N
	end.

%% A whole body past the bound is refused whole, before anything of that
%% request is written; the next request goes as if it had not been made.
http_full_body_refused(_) ->
	{ConnPid, Sock, LSock} = connected(#{http_opts => #{send_queue_limit => ?MiB}}),
	Ref = gun:post(ConnPid, "/big", [], binary:copy(<<"b">>, 2 * ?MiB)),
	{gun_error, ConnPid, Ref, {error, send_queue_full}} = next_from(ConnPid, ?T),
	Ref2 = gun:post(ConnPid, "/small", [], <<"hello">>),
	{<<"POST /small HTTP/1.1", _/binary>>, Rest} = read_head(Sock, <<>>),
	<<"hello">> = case Rest of
		<<>> -> {ok, B} = gen_tcp:recv(Sock, 5, ?T), B;
		_ -> Rest
	end,
	respond_ok(Sock),
	{ok, <<"ok">>} = gun:await_body(ConnPid, Ref2),
	no_more_from(ConnPid),
	close(ConnPid),
	gen_tcp:close(LSock).

%% Body pieces for a request waiting behind an upgrade are held until the
%% upgrade's outcome: within the bound (4 MiB: 3 pieces of 1 MiB and the
%% request's few bytes of head), the other 17 refused, one gun_error
%% each. The 101 then refuses the request (badstate), as before.
upgrade_early_body_bounded(_) ->
	{ConnPid, Sock, LSock} = connected(#{http_opts => #{send_queue_limit => 4 * ?MiB}}),
	UpRef = gun:ws_upgrade(ConnPid, "/ws"),
	Req = raw_peer:read_request(Sock),
	Ref = gun:post(ConnPid, "/late", []),
	Piece = binary:copy(<<"e">>, ?MiB),
	[ok = gun:data(ConnPid, Ref, nofin, Piece) || _ <- lists:seq(1, 20)],
	17 = count_refused_until_quiet(ConnPid, Ref, 0),
	raw_peer:send(Sock, raw_peer:response_101(Req)),
	{gun_ws_upgrade, ConnPid, ok, _} = next_from(ConnPid, ?T),
	{gun_error, ConnPid, Ref, {badstate, "Connection is already upgraded to Websocket."}}
		= next_from(ConnPid, ?T),
	_ = UpRef,
	no_more_from(ConnPid),
	close(ConnPid),
	gen_tcp:close(LSock).

%% http_opts keepalive.

%% Only empty lines, at least one, within Ms.
empty_lines_within(Sock, Ms) ->
	{ok, Data} = gen_tcp:recv(Sock, 0, Ms),
	true = byte_size(Data) > 0,
	<<>> = binary:replace(Data, <<"\r\n">>, <<>>, [global]),
	byte_size(Data) div 2.

%% A request head after any number of empty lines.
read_head_after_lines(Sock, <<"\r\n", Acc/binary>>) ->
	read_head_after_lines(Sock, Acc);
read_head_after_lines(Sock, Acc) when byte_size(Acc) < 2 ->
	read_head_after_lines(Sock, more(Sock, Acc));
read_head_after_lines(Sock, Acc) ->
	read_head(Sock, Acc).

%% Gun 2's default (infinity): nothing is sent on an idle connection.
http_keepalive_off_by_default(_) ->
	lists:foreach(fun(Opts) ->
		{ConnPid, Sock, LSock} = connected(Opts),
		{error, timeout} = gen_tcp:recv(Sock, 0, 600),
		close(ConnPid),
		gen_tcp:close(LSock)
	end, [#{}, #{http_opts => #{keepalive => infinity}}]).

%% keepalive => 100: an idle connection sends an empty line (at least
%% one within 1 s, only empty lines); the server ignores them before the
%% next request (RFC 9112 §2.2), which is answered as usual; the lines
%% resume once the connection is idle again.
http_keepalive_idle_lines(_) ->
	{ConnPid, Sock, LSock} = connected(#{http_opts => #{keepalive => 100}}),
	Lines = empty_lines_within(Sock, 1000),
	Ref = gun:get(ConnPid, "/after"),
	{Head, Rest} = read_head_after_lines(Sock, <<>>),
	[<<"GET /after HTTP/1.1">>|_] = binary:split(Head, <<"\r\n">>),
	<<>> = binary:replace(Rest, <<"\r\n">>, <<>>, [global]),
	respond_ok(Sock),
	{ok, <<"ok">>} = gun:await_body(ConnPid, Ref),
	Lines2 = empty_lines_within(Sock, 1000),
	ct:log("~p then ~p empty lines", [Lines, Lines2]),
	no_more_from(ConnPid),
	close(ConnPid),
	gen_tcp:close(LSock).

%% Never inside a request body: while gun:data/4 has not finished it, the
%% peer gets nothing; the body arrives exactly as given. Then, while the
%% response is awaited, the empty lines come (as Gun sends them).
http_keepalive_not_inside_body(_) ->
	{ConnPid, Sock, LSock, Ref, _Head, <<>>} = request_head_read(
		#{http_opts => #{keepalive => 100}},
		fun(C) -> gun:post(C, "/up", [{<<"content-length">>, <<"10">>}]) end),
	{error, timeout} = gen_tcp:recv(Sock, 0, 600),
	ok = gun:data(ConnPid, Ref, nofin, <<"01234">>),
	{ok, <<"01234">>} = gen_tcp:recv(Sock, 5, ?T),
	{error, timeout} = gen_tcp:recv(Sock, 0, 600),
	ok = gun:data(ConnPid, Ref, fin, <<"56789">>),
	{ok, <<"56789">>} = gen_tcp:recv(Sock, 5, ?T),
	_ = empty_lines_within(Sock, 1000),
	respond_ok(Sock),
	{ok, <<"ok">>} = gun:await_body(ConnPid, Ref),
	close(ConnPid),
	gen_tcp:close(LSock).

%% Never while an upgrade waits for its answer: after a 101 an empty line
%% would reach the server as WebSocket bytes.
http_keepalive_not_during_upgrade(_) ->
	{ConnPid, Sock, LSock} = connected(#{http_opts => #{keepalive => 100}}),
	_ = empty_lines_within(Sock, 1000),
	_ = gun:ws_upgrade(ConnPid, "/ws", [], #{keepalive => infinity}),
	{Head, <<>>} = read_head_after_lines(Sock, <<>>),
	Req = raw_peer:parse_request(Head),
	{error, timeout} = gen_tcp:recv(Sock, 0, 600),
	raw_peer:send(Sock, raw_peer:response_101(Req)),
	{gun_ws_upgrade, ConnPid, ok, _} = next_from(ConnPid, ?T),
	{error, timeout} = gen_tcp:recv(Sock, 0, 600),
	ok = gun:ws_send(ConnPid, {text, <<"first">>}),
	<<"first">> = raw_peer:expect_frame(Sock, 1),
	close(ConnPid),
	gen_tcp:close(LSock).
