%% Gun's client API. Calls go straight to the native engine (gun_nif);
%% messages come straight from it to the owner process. A ConnPid of
%% another node is reached through its process (see engine_call/2).
-module(gun).

%% Connection.
-export([open/2]).
-export([open/3]).
-export([open_unix/2]).
-export([info/1]).
-export([set_owner/2]).
-export([ping/1]).
-export([ping/2]).
-export([shutdown/1]).
-export([close/1]).

%% Requests.
-export([get/2]).
-export([get/3]).
-export([get/4]).
-export([head/2]).
-export([head/3]).
-export([head/4]).
-export([options/2]).
-export([options/3]).
-export([options/4]).
-export([delete/2]).
-export([delete/3]).
-export([delete/4]).
-export([post/3]).
-export([post/4]).
-export([post/5]).
-export([put/3]).
-export([put/4]).
-export([put/5]).
-export([patch/3]).
-export([patch/4]).
-export([patch/5]).
-export([headers/4]).
-export([headers/5]).
-export([request/4]).
-export([request/5]).
-export([request/6]).
-export([data/4]).
-export([cancel/2]).
-export([stream_info/2]).

%% Awaiting and flushing.
-export([await/2]).
-export([await/3]).
-export([await/4]).
-export([await_body/2]).
-export([await_body/3]).
-export([await_body/4]).
-export([await_up/1]).
-export([await_up/2]).
-export([await_up/3]).
-export([flush/1]).

%% Websocket.
-export([ws_upgrade/2]).
-export([ws_upgrade/3]).
-export([ws_upgrade/4]).
-export([ws_send/2]).
-export([ws_send/3]).
-export([update_flow/3]).

%% Mode 1's option checks, shared with mode 2's (gun2_opts).
-export([check_options/1]).

%% Internal: mode 2 (gun2) reaches the engine the same way.
-export([engine_call/2]).
-export([engine_query/2]).

-type host() :: inet:hostname() | inet:ip_address() | binary().
-type req_headers() :: [{iodata(), iodata()}].
-type ws_opts() :: #{
	compress => boolean(),
	deflate_level => 0..9,
	client_max_window_bits => 9..15,
	server_max_window_bits => 8..15,
	client_no_context_takeover => boolean(),
	server_no_context_takeover => boolean(),
	keepalive => pos_integer() | infinity,
	keepalive_tolerance => pos_integer() | infinity,
	send_queue_limit => pos_integer() | infinity,
	owner_queue_limit => pos_integer() | infinity,
	flow => pos_integer(),
	silence_pings => boolean(),
	closing_timeout => non_neg_integer() | infinity,
	max_frame_size => non_neg_integer() | infinity,
	max_message_size => non_neg_integer() | infinity,
	max_fragments => pos_integer() | infinity,
	upgrade_timeout => non_neg_integer() | infinity,
	%% Mode 2's, as the engine gets them (gun2_opts).
	reply_to => pid()
}.
-type http_opts() :: #{
	version => 'HTTP/1.1' | 'HTTP/1.0',
	keepalive => pos_integer() | infinity,
	max_headers => 1..65536,
	max_head_size => pos_integer(),
	send_queue_limit => pos_integer() | infinity,
	%% Mode 2's (gun2_opts).
	closing_timeout => pos_integer() | infinity,
	flow => pos_integer(),
	max_header_block_size => pos_integer(),
	max_trailer_block_size => pos_integer()
}.
-type opts() :: #{
	connect_timeout => non_neg_integer() | infinity,
	http_opts => http_opts(),
	protocols => [http],
	retry => non_neg_integer(),
	retry_timeout => non_neg_integer(),
	trace => false,
	transport => tcp | tls | ssl,
	tcp_opts => [gen_tcp:connect_option()],
	tls_opts => [tls_opt()] | #{atom() => any()},
	ws_opts => ws_opts(),
	%% Mode 2's, as the engine gets them (gun2_opts:engine_opts/1).
	api => 2,
	erlang_opts => map(),
	domain_lookup_timeout => non_neg_integer() | infinity,
	tls_handshake_timeout => non_neg_integer() | infinity,
	retry_fun => fun((non_neg_integer(), map()) -> map())
}.
-type tls_opt() :: {verify, verify_peer | verify_none}
	| {cacertfile, file:filename_all()}
	| {cacerts, [binary()]}
	| {certfile, file:filename_all()}
	| {keyfile, file:filename_all()}
	| {server_name_indication, string() | binary() | disable}.
-type ws_frame() :: close | ping | pong
	| {text | binary | close | ping | pong, iodata()}
	| {close, non_neg_integer(), iodata()}.
-type await_result() :: {inform, 100..199, [{binary(), binary()}]}
	| {response, fin | nofin, non_neg_integer(), [{binary(), binary()}]}
	| {data, fin | nofin, binary()}
	| {trailers, [{binary(), binary()}]}
	| {error, any()}.
-type await_body_result() :: {ok, binary()}
	| {ok, binary(), [{binary(), binary()}]}
	| {error, any()}.
-export_type([host/0, req_headers/0, ws_opts/0, http_opts/0, opts/0, ws_frame/0, await_result/0,
	await_body_result/0]).

-define(DEFAULT_AWAIT_TIMEOUT, 5000).
%% The largest integers the engine decodes (u32 and u64); past them an
%% option is refused here rather than failing in the engine.
-define(MAX_U32, 16#ffffffff).
-define(MAX_U64, 16#ffffffffffffffff).
%% C ints the kernel takes for socket options.
-define(MAX_INT, 16#7fffffff).
%% Each response parse allocates a slot per allowed header.
-define(MAX_HEADERS, 65536).
%% gun:close/1 waits this long for a pid that may not be a connection.
-define(CLOSE_TIMEOUT, 5000).

%% Connection.

-spec open(host(), inet:port_number()) -> {ok, pid()} | {error, any()}.
open(Host, Port) ->
	open(Host, Port, #{}).

-spec open(host(), inet:port_number(), opts()) -> {ok, pid()} | {error, any()}.
open(Host, Port, Opts) ->
	case gun_mode:api() of
		{ok, 1} -> open1(Host, Port, Opts);
		{ok, 2} -> gun2:open(Host, Port, Opts);
		Error -> Error
	end.

open1(Host, Port, Opts) when is_integer(Port), Port > 0, Port =< 65535 ->
	case check_host(Host) of
		ok ->
			case check_options(Opts) of
				ok -> gun_sup:start_conn(self(), Host, Port, Opts);
				Error -> Error
			end;
		Error ->
			Error
	end;
open1(_Host, Port, _Opts) ->
	{error, {port, Port}}.

%% Gun 2's: a Unix domain socket, in mode 2.
-spec open_unix(file:filename_all(), opts()) -> {ok, pid()} | {error, any()}.
open_unix(SocketPath, Opts) ->
	case gun_mode:api() of
		{ok, 2} -> gun2:open_unix(SocketPath, Opts);
		{ok, 1} -> {error, {api, 1}};
		Error -> Error
	end.

check_host(Host) when is_list(Host); is_atom(Host); is_binary(Host) ->
	ok;
check_host(Host) when tuple_size(Host) =:= 4; tuple_size(Host) =:= 8 ->
	case inet:ntoa(Host) of
		{error, einval} -> {error, {host, Host}};
		_ -> ok
	end;
check_host(Host) ->
	{error, {host, Host}}.

-spec check_options(opts()) -> ok | {error, {options, any()}}.
check_options(Opts) when is_map(Opts) ->
	do_check_options(maps:to_list(Opts));
check_options(Opts) ->
	{error, {options, Opts}}.

do_check_options([]) ->
	ok;
do_check_options([{connect_timeout, infinity}|Opts]) ->
	do_check_options(Opts);
do_check_options([{connect_timeout, T}|Opts]) when is_integer(T), T >= 0, T =< ?MAX_U64 ->
	do_check_options(Opts);
do_check_options([{http_opts, HttpOpts}|Opts]) when is_map(HttpOpts) ->
	case check_http_options(maps:to_list(HttpOpts)) of
		ok -> do_check_options(Opts);
		Error -> Error
	end;
do_check_options([Opt={protocols, L}|Opts]) when is_list(L) ->
	case lists:usort(L) of
		[http] -> do_check_options(Opts);
		_ -> {error, {options, Opt}}
	end;
do_check_options([{retry, R}|Opts]) when is_integer(R), R >= 0, R =< ?MAX_U32 ->
	do_check_options(Opts);
do_check_options([{retry_timeout, T}|Opts]) when is_integer(T), T >= 0, T =< ?MAX_U64 ->
	do_check_options(Opts);
%% There is no connection process to trace with dbg: only false (the
%% default) is taken.
do_check_options([{trace, false}|Opts]) ->
	do_check_options(Opts);
do_check_options([{transport, T}|Opts]) when T =:= tcp; T =:= tls; T =:= ssl ->
	do_check_options(Opts);
do_check_options([{tcp_opts, TcpOpts}|Opts]) when is_list(TcpOpts) ->
	case check_tcp_options(TcpOpts) of
		ok -> do_check_options(Opts);
		Error -> Error
	end;
do_check_options([{tls_opts, TlsOpts}|Opts]) when is_list(TlsOpts) ->
	case check_tls_options(TlsOpts) of
		ok -> do_check_options(Opts);
		Error -> Error
	end;
do_check_options([{tls_opts, TlsOpts}|Opts]) when is_map(TlsOpts) ->
	case check_tls_options(maps:to_list(TlsOpts)) of
		ok -> do_check_options(Opts);
		Error -> Error
	end;
do_check_options([{ws_opts, WsOpts}|Opts]) ->
	case gun_ws:check_options(WsOpts) of
		ok -> do_check_options(Opts);
		Error -> Error
	end;
do_check_options([Opt|_]) ->
	{error, {options, Opt}}.

check_tls_options([]) ->
	ok;
check_tls_options([{verify, V}|Opts]) when V =:= verify_peer; V =:= verify_none ->
	check_tls_options(Opts);
check_tls_options([{cacertfile, F}|Opts]) when is_list(F); is_binary(F) ->
	check_tls_options(Opts);
check_tls_options([Opt={cacerts, Ders}|Opts]) when is_list(Ders) ->
	case all_binaries(Ders) of
		true -> check_tls_options(Opts);
		false -> {error, {options, {tls_opts, Opt}}}
	end;
check_tls_options([{certfile, F}|Opts]) when is_list(F); is_binary(F) ->
	check_tls_options(Opts);
check_tls_options([{keyfile, F}|Opts]) when is_list(F); is_binary(F) ->
	check_tls_options(Opts);
check_tls_options([{server_name_indication, disable}|Opts]) ->
	check_tls_options(Opts);
check_tls_options([{server_name_indication, Name}|Opts]) when is_list(Name); is_binary(Name) ->
	check_tls_options(Opts);
check_tls_options([Opt|_]) ->
	{error, {options, {tls_opts, Opt}}};
%% The tail of an improper list.
check_tls_options(Tail) ->
	{error, {options, {tls_opts, Tail}}}.

all_binaries([]) -> true;
all_binaries([Bin|Tail]) when is_binary(Bin) -> all_binaries(Tail);
all_binaries(_) -> false.

%% tcp_opts: the gen_tcp:connect_option() that mean something for the
%% engine's socket (doc/behaviour.md lists what each does). Gun forces
%% binary, {active, false} and {packet, raw} after the user's options,
%% so those are taken and have no effect here either. Anything else
%% (options of the Erlang port, such as delay_send, header, deliver,
%% packet_size, exit_on_close, the watermarks; fd, tcp_module, local)
%% is refused.
check_tcp_options([]) ->
	ok;
check_tcp_options([Family|Opts]) when Family =:= inet; Family =:= inet6 ->
	check_tcp_options(Opts);
check_tcp_options([{Key, Ip}|Opts]) when (Key =:= ip orelse Key =:= ifaddr),
		(Ip =:= any orelse Ip =:= loopback) ->
	check_tcp_options(Opts);
%% ifaddr also takes a socket:sockaddr_in() or sockaddr_in6() with only
%% family, addr and (optional) port: the local address and port.
check_tcp_options([Opt={ifaddr, SockAddr=#{family := Family, addr := Ip}}|Opts])
		when Family =:= inet; Family =:= inet6 ->
	Port = maps:get(port, SockAddr, 0),
	case lists:sort(maps:keys(SockAddr)) -- [addr, family, port] of
		[] when is_integer(Port), Port >= 0, Port =< 65535,
				(Ip =:= any orelse Ip =:= loopback) ->
			check_tcp_options(Opts);
		[] when is_integer(Port), Port >= 0, Port =< 65535, is_tuple(Ip),
				(Family =:= inet andalso tuple_size(Ip) =:= 4)
				orelse (Family =:= inet6 andalso tuple_size(Ip) =:= 8) ->
			case inet:is_ip_address(Ip) of
				true -> check_tcp_options(Opts);
				false -> {error, {options, {tcp_opts, Opt}}}
			end;
		_ ->
			{error, {options, {tcp_opts, Opt}}}
	end;
check_tcp_options([Opt={Key, Ip}|Opts]) when Key =:= ip; Key =:= ifaddr ->
	case is_tuple(Ip) andalso inet:is_ip_address(Ip) of
		true -> check_tcp_options(Opts);
		false -> {error, {options, {tcp_opts, Opt}}}
	end;
check_tcp_options([{port, P}|Opts]) when is_integer(P), P >= 0, P =< 65535 ->
	check_tcp_options(Opts);
check_tcp_options([{Key, B}|Opts]) when is_boolean(B), (Key =:= nodelay
		orelse Key =:= keepalive orelse Key =:= reuseaddr orelse Key =:= reuseport
		orelse Key =:= reuseport_lb orelse Key =:= ipv6_v6only orelse Key =:= dontroute
		orelse Key =:= nopush orelse Key =:= send_timeout_close) ->
	check_tcp_options(Opts);
check_tcp_options([{Key, N}|Opts]) when (Key =:= recbuf orelse Key =:= sndbuf),
		is_integer(N), N >= 0, N =< ?MAX_INT ->
	check_tcp_options(Opts);
%% A write the socket takes nothing of for send_timeout ms fails the
%% connection with {error, timeout}. 0 is refused: a write that merely
%% waits its turn would fail at once.
check_tcp_options([{send_timeout, infinity}|Opts]) ->
	check_tcp_options(Opts);
check_tcp_options([{send_timeout, T}|Opts]) when is_integer(T), T > 0, T =< ?MAX_U64 ->
	check_tcp_options(Opts);
%% A lingering close would block one of the engine's threads: only the
%% abortive close ({true, 0}: RST) and the default ({false, _}) are taken.
check_tcp_options([{linger, {false, S}}|Opts]) when is_integer(S), S >= 0, S =< ?MAX_INT ->
	check_tcp_options(Opts);
check_tcp_options([{linger, {true, 0}}|Opts]) ->
	check_tcp_options(Opts);
check_tcp_options([{Key, N}|Opts]) when (Key =:= tos orelse Key =:= tclass),
		is_integer(N), N >= 0, N =< 255 ->
	check_tcp_options(Opts);
check_tcp_options([{ttl, N}|Opts]) when is_integer(N), N >= 1, N =< 255 ->
	check_tcp_options(Opts);
check_tcp_options([{priority, N}|Opts]) when is_integer(N), N >= 0, N =< ?MAX_INT ->
	check_tcp_options(Opts);
%% IFNAMSIZ is 16, the terminating NUL included.
check_tcp_options([Opt={bind_to_device, Name}|Opts]) when is_binary(Name),
		byte_size(Name) > 0, byte_size(Name) < 16 ->
	case binary:match(Name, <<0>>) of
		nomatch -> check_tcp_options(Opts);
		_ -> {error, {options, {tcp_opts, Opt}}}
	end;
check_tcp_options([Opt={netns, Path}|Opts]) when is_list(Path); is_binary(Path) ->
	case unicode:characters_to_binary(Path) of
		Bin when is_binary(Bin), byte_size(Bin) > 0 ->
			case binary:match(Bin, <<0>>) of
				nomatch -> check_tcp_options(Opts);
				_ -> {error, {options, {tcp_opts, Opt}}}
			end;
		_ -> {error, {options, {tcp_opts, Opt}}}
	end;
check_tcp_options([{raw, Level, Name, Value}|Opts]) when is_integer(Level), Level >= 0,
		Level =< ?MAX_INT, is_integer(Name), Name >= 0, Name =< ?MAX_INT,
		is_binary(Value), byte_size(Value) =< 65536 ->
	check_tcp_options(Opts);
%% Forced by Gun (and by the engine, which reads binaries itself).
check_tcp_options([Mode|Opts]) when Mode =:= binary; Mode =:= list ->
	check_tcp_options(Opts);
check_tcp_options([{mode, M}|Opts]) when M =:= binary; M =:= list ->
	check_tcp_options(Opts);
check_tcp_options([{active, A}|Opts]) when is_boolean(A); A =:= once;
		is_integer(A), A >= -32768, A =< 32767 ->
	check_tcp_options(Opts);
check_tcp_options([{packet, P}|Opts]) when P =:= 0; P =:= 1; P =:= 2; P =:= 4;
		P =:= raw; P =:= asn1; P =:= cdr; P =:= sunrm; P =:= fcgi; P =:= tpkt;
		P =:= line; P =:= http; P =:= http_bin; P =:= httph; P =:= httph_bin ->
	check_tcp_options(Opts);
check_tcp_options([Opt|_]) ->
	{error, {options, {tcp_opts, Opt}}};
%% The tail of an improper list.
check_tcp_options(Tail) ->
	{error, {options, {tcp_opts, Tail}}}.

check_http_options([]) ->
	ok;
check_http_options([{version, V}|Opts]) when V =:= 'HTTP/1.1'; V =:= 'HTTP/1.0' ->
	check_http_options(Opts);
check_http_options([{keepalive, infinity}|Opts]) ->
	check_http_options(Opts);
check_http_options([{keepalive, K}|Opts]) when is_integer(K), K > 0, K =< ?MAX_U64 ->
	check_http_options(Opts);
check_http_options([{max_headers, N}|Opts]) when is_integer(N), N > 0, N =< ?MAX_HEADERS ->
	check_http_options(Opts);
check_http_options([{max_head_size, S}|Opts]) when is_integer(S), S > 0, S =< ?MAX_U64 ->
	check_http_options(Opts);
check_http_options([{send_queue_limit, infinity}|Opts]) ->
	check_http_options(Opts);
check_http_options([{send_queue_limit, S}|Opts]) when is_integer(S), S > 0, S =< ?MAX_U64 ->
	check_http_options(Opts);
check_http_options([Opt|_]) ->
	{error, {options, {http, Opt}}}.

-spec info(pid()) -> map().
info(ConnPid) ->
	case gun_mode:of_conn(ConnPid) of
		2 -> gun2:info(ConnPid);
		1 -> info1(ConnPid)
	end.

info1(ConnPid) ->
	case engine_query(ConnPid, info) of
		undefined -> exit({noproc, {?MODULE, info, [ConnPid]}});
		Info -> Info
	end.

-spec set_owner(pid(), pid()) -> ok.
set_owner(ConnPid, NewOwner) ->
	gun2:set_owner(ConnPid, NewOwner).

-spec ping(pid()) -> reference().
ping(ConnPid) ->
	gun2:ping(ConnPid, #{}).

-spec ping(pid(), gun2:req_opts()) -> reference().
ping(ConnPid, ReqOpts) ->
	gun2:ping(ConnPid, ReqOpts).

%% Graceful: an upgraded connection sends close 1001 and waits up to
%% closing_timeout for the server's close.
-spec shutdown(pid()) -> ok.
shutdown(ConnPid) ->
	ConnPid ! '$gun_shutdown',
	ok.

%% Immediate, and synchronous like Gun's: ConnPid is dead on return.
-spec close(pid()) -> ok.
close(ConnPid) ->
	MRef = monitor(process, ConnPid),
	ConnPid ! '$gun_close',
	receive
		{'DOWN', MRef, process, ConnPid, _} -> ok
	after ?CLOSE_TIMEOUT ->
		demonitor(MRef, [flush]),
		ok
	end.

%% Requests.

-spec get(pid(), iodata()) -> reference().
get(ConnPid, Path) ->
	get(ConnPid, Path, []).

-spec get(pid(), iodata(), req_headers()) -> reference().
get(ConnPid, Path, Headers) ->
	do_request(ConnPid, <<"GET">>, Path, Headers, none).

-spec get(pid(), iodata(), gun2:req_headers(), gun2:req_opts()) -> reference().
get(ConnPid, Path, Headers, ReqOpts) ->
	gun2:request(ConnPid, <<"GET">>, Path, Headers, none, ReqOpts).

-spec head(pid(), iodata()) -> reference().
head(ConnPid, Path) ->
	head(ConnPid, Path, []).

-spec head(pid(), iodata(), req_headers()) -> reference().
head(ConnPid, Path, Headers) ->
	do_request(ConnPid, <<"HEAD">>, Path, Headers, none).

-spec head(pid(), iodata(), gun2:req_headers(), gun2:req_opts()) -> reference().
head(ConnPid, Path, Headers, ReqOpts) ->
	gun2:request(ConnPid, <<"HEAD">>, Path, Headers, none, ReqOpts).

-spec options(pid(), iodata()) -> reference().
options(ConnPid, Path) ->
	options(ConnPid, Path, []).

-spec options(pid(), iodata(), req_headers()) -> reference().
options(ConnPid, Path, Headers) ->
	do_request(ConnPid, <<"OPTIONS">>, Path, Headers, none).

-spec options(pid(), iodata(), gun2:req_headers(), gun2:req_opts()) -> reference().
options(ConnPid, Path, Headers, ReqOpts) ->
	gun2:request(ConnPid, <<"OPTIONS">>, Path, Headers, none, ReqOpts).

-spec delete(pid(), iodata()) -> reference().
delete(ConnPid, Path) ->
	delete(ConnPid, Path, []).

-spec delete(pid(), iodata(), req_headers()) -> reference().
delete(ConnPid, Path, Headers) ->
	do_request(ConnPid, <<"DELETE">>, Path, Headers, none).

-spec delete(pid(), iodata(), gun2:req_headers(), gun2:req_opts()) -> reference().
delete(ConnPid, Path, Headers, ReqOpts) ->
	gun2:request(ConnPid, <<"DELETE">>, Path, Headers, none, ReqOpts).

%% Without a body: the body follows with gun:data/4.
-spec post(pid(), iodata(), req_headers()) -> reference().
post(ConnPid, Path, Headers) ->
	do_request(ConnPid, <<"POST">>, Path, Headers, streamed).

-spec post(pid(), iodata(), req_headers(), iodata() | gun2:req_opts()) -> reference().
post(ConnPid, Path, Headers, ReqOpts) when is_map(ReqOpts) ->
	gun2:headers(ConnPid, <<"POST">>, Path, Headers, ReqOpts);
post(ConnPid, Path, Headers, Body) ->
	do_request(ConnPid, <<"POST">>, Path, Headers, Body).

-spec post(pid(), iodata(), gun2:req_headers(), iodata(), gun2:req_opts()) -> reference().
post(ConnPid, Path, Headers, Body, ReqOpts) ->
	gun2:request(ConnPid, <<"POST">>, Path, Headers, Body, ReqOpts).

-spec put(pid(), iodata(), req_headers()) -> reference().
put(ConnPid, Path, Headers) ->
	do_request(ConnPid, <<"PUT">>, Path, Headers, streamed).

-spec put(pid(), iodata(), req_headers(), iodata() | gun2:req_opts()) -> reference().
put(ConnPid, Path, Headers, ReqOpts) when is_map(ReqOpts) ->
	gun2:headers(ConnPid, <<"PUT">>, Path, Headers, ReqOpts);
put(ConnPid, Path, Headers, Body) ->
	do_request(ConnPid, <<"PUT">>, Path, Headers, Body).

-spec put(pid(), iodata(), gun2:req_headers(), iodata(), gun2:req_opts()) -> reference().
put(ConnPid, Path, Headers, Body, ReqOpts) ->
	gun2:request(ConnPid, <<"PUT">>, Path, Headers, Body, ReqOpts).

-spec patch(pid(), iodata(), req_headers()) -> reference().
patch(ConnPid, Path, Headers) ->
	do_request(ConnPid, <<"PATCH">>, Path, Headers, streamed).

-spec patch(pid(), iodata(), req_headers(), iodata() | gun2:req_opts()) -> reference().
patch(ConnPid, Path, Headers, ReqOpts) when is_map(ReqOpts) ->
	gun2:headers(ConnPid, <<"PATCH">>, Path, Headers, ReqOpts);
patch(ConnPid, Path, Headers, Body) ->
	do_request(ConnPid, <<"PATCH">>, Path, Headers, Body).

-spec patch(pid(), iodata(), gun2:req_headers(), iodata(), gun2:req_opts()) -> reference().
patch(ConnPid, Path, Headers, Body, ReqOpts) ->
	gun2:request(ConnPid, <<"PATCH">>, Path, Headers, Body, ReqOpts).

-spec request(pid(), iodata(), iodata(), req_headers()) -> reference().
request(ConnPid, Method, Path, Headers) ->
	do_request(ConnPid, Method, Path, Headers, streamed).

-spec request(pid(), iodata(), iodata(), req_headers(), iodata()) -> reference().
request(ConnPid, Method, Path, Headers, Body) ->
	do_request(ConnPid, Method, Path, Headers, Body).

-spec request(pid(), iodata(), iodata(), gun2:req_headers(), iodata(), gun2:req_opts())
	-> reference().
request(ConnPid, Method, Path, Headers, Body, ReqOpts) ->
	gun2:request(ConnPid, Method, Path, Headers, Body, ReqOpts).

%% Gun 2's: the body follows with gun:data/4.
-spec headers(pid(), iodata(), iodata(), gun2:req_headers()) -> reference().
headers(ConnPid, Method, Path, Headers) ->
	gun2:headers(ConnPid, Method, Path, Headers, #{}).

-spec headers(pid(), iodata(), iodata(), gun2:req_headers(), gun2:req_opts()) -> reference().
headers(ConnPid, Method, Path, Headers, ReqOpts) ->
	gun2:headers(ConnPid, Method, Path, Headers, ReqOpts).

%% The request is checked in the caller, before anything is queued:
%% gun_request:check/4 raises on a bad method, target or header.
do_request(ConnPid, Method, Path, Headers, Body) ->
	case gun_mode:of_conn(ConnPid) of
		1 -> do_request1(ConnPid, Method, Path, Headers, Body);
		2 -> gun2:request(ConnPid, Method, Path, Headers, Body, #{})
	end.

do_request1(ConnPid, Method, Path, Headers, Body) ->
	ok = gun_request:check(Method, Path, Headers, #{}),
	StreamRef = make_ref(),
	ok = engine_call(ConnPid, {request, StreamRef, Method, Path, Headers, Body}),
	StreamRef.

-spec data(pid(), reference(), fin | nofin, iodata()) -> ok.
data(ConnPid, StreamRef, IsFin, Data) ->
	engine_call(ConnPid, {data, StreamRef, IsFin, Data}).

%% No further message for the stream is sent.
-spec cancel(pid(), reference()) -> ok.
cancel(ConnPid, StreamRef) ->
	case gun_mode:of_conn(ConnPid) of
		1 -> engine_call(ConnPid, {cancel, StreamRef});
		2 -> gun2:cancel(ConnPid, StreamRef)
	end.

-spec stream_info(pid(), reference()) -> {ok, map() | undefined} | {error, not_connected}.
stream_info(ConnPid, StreamRef) ->
	gun2:stream_info(ConnPid, StreamRef).

%% Awaiting and flushing.

-spec await(pid(), reference()) -> await_result().
await(ConnPid, StreamRef) ->
	await(ConnPid, StreamRef, ?DEFAULT_AWAIT_TIMEOUT).

%% Mode 2 also takes a monitor reference instead of the timeout.
-spec await(pid(), reference(), timeout() | reference())
	-> await_result() | gun2:await_result().
await(ConnPid, StreamRef, MRef) when is_reference(MRef) ->
	gun2:await(ConnPid, StreamRef, ?DEFAULT_AWAIT_TIMEOUT, MRef);
await(ConnPid, StreamRef, Timeout) ->
	Await = case gun_mode:of_conn(ConnPid) of
		1 -> fun await1/4;
		2 -> fun gun2:await/4
	end,
	with_monitor(ConnPid, fun(MRef) -> Await(ConnPid, StreamRef, Timeout, MRef) end).

-spec await(pid(), reference(), timeout(), reference()) -> gun2:await_result().
await(ConnPid, StreamRef, Timeout, MRef) ->
	gun2:await(ConnPid, StreamRef, Timeout, MRef).

%% Both modes' awaits run under a monitor of ConnPid set here, which
%% their receive matches for the connection's end.
with_monitor(ConnPid, Fun) ->
	MRef = monitor(process, ConnPid),
	Res = Fun(MRef),
	demonitor(MRef, [flush]),
	Res.

await1(ConnPid, StreamRef, Timeout, MRef) ->
	receive
		{gun_inform, ConnPid, StreamRef, Status, Headers} ->
			{inform, Status, Headers};
		{gun_response, ConnPid, StreamRef, IsFin, Status, Headers} ->
			{response, IsFin, Status, Headers};
		{gun_data, ConnPid, StreamRef, IsFin, Data} ->
			{data, IsFin, Data};
		{gun_trailers, ConnPid, StreamRef, Trailers} ->
			{trailers, Trailers};
		{gun_error, ConnPid, StreamRef, Reason} ->
			{error, Reason};
		{gun_error, ConnPid, Reason} ->
			{error, Reason};
		{'DOWN', MRef, process, ConnPid, Reason} ->
			{error, Reason}
	after Timeout ->
		{error, timeout}
	end.

-spec await_body(pid(), reference()) -> await_body_result().
await_body(ConnPid, StreamRef) ->
	await_body(ConnPid, StreamRef, ?DEFAULT_AWAIT_TIMEOUT).

%% Timeout applies to each message, as in Gun. A response that ends with
%% trailers gives {ok, Body, Trailers}, as Gun 1.3+ does.
-spec await_body(pid(), reference(), timeout() | reference())
	-> await_body_result() | gun2:await_body_result().
await_body(ConnPid, StreamRef, MRef) when is_reference(MRef) ->
	gun2:await_body(ConnPid, StreamRef, ?DEFAULT_AWAIT_TIMEOUT, MRef);
await_body(ConnPid, StreamRef, Timeout) ->
	AwaitBody = case gun_mode:of_conn(ConnPid) of
		1 -> fun(MRef) -> await_body(ConnPid, StreamRef, Timeout, MRef, []) end;
		2 -> fun(MRef) -> gun2:await_body(ConnPid, StreamRef, Timeout, MRef) end
	end,
	with_monitor(ConnPid, AwaitBody).

-spec await_body(pid(), reference(), timeout(), reference()) -> gun2:await_body_result().
await_body(ConnPid, StreamRef, Timeout, MRef) ->
	gun2:await_body(ConnPid, StreamRef, Timeout, MRef).

await_body(ConnPid, StreamRef, Timeout, MRef, Acc) ->
	receive
		{gun_response, ConnPid, StreamRef, fin, _, _} ->
			{ok, <<>>};
		{gun_response, ConnPid, StreamRef, nofin, _, _} ->
			await_body(ConnPid, StreamRef, Timeout, MRef, Acc);
		{gun_inform, ConnPid, StreamRef, _, _} ->
			await_body(ConnPid, StreamRef, Timeout, MRef, Acc);
		{gun_data, ConnPid, StreamRef, nofin, Data} ->
			await_body(ConnPid, StreamRef, Timeout, MRef, [Acc, Data]);
		{gun_data, ConnPid, StreamRef, fin, Data} ->
			{ok, iolist_to_binary([Acc, Data])};
		{gun_trailers, ConnPid, StreamRef, Trailers} ->
			{ok, iolist_to_binary(Acc), Trailers};
		{gun_error, ConnPid, StreamRef, Reason} ->
			{error, Reason};
		{gun_error, ConnPid, Reason} ->
			{error, Reason};
		{'DOWN', MRef, process, ConnPid, Reason} ->
			{error, Reason}
	after Timeout ->
		{error, timeout}
	end.

-spec await_up(pid()) -> {ok, http} | {error, any()}.
await_up(ConnPid) ->
	await_up(ConnPid, ?DEFAULT_AWAIT_TIMEOUT).

-spec await_up(pid(), timeout() | reference()) -> {ok, http} | {error, any()}.
await_up(ConnPid, MRef) when is_reference(MRef) ->
	gun2:await_up(ConnPid, ?DEFAULT_AWAIT_TIMEOUT, MRef);
await_up(ConnPid, Timeout) ->
	AwaitUp = case gun_mode:of_conn(ConnPid) of
		1 -> fun await_up1/3;
		2 -> fun gun2:await_up/3
	end,
	with_monitor(ConnPid, fun(MRef) -> AwaitUp(ConnPid, Timeout, MRef) end).

-spec await_up(pid(), timeout(), reference()) -> {ok, http} | {error, any()}.
await_up(ConnPid, Timeout, MRef) ->
	gun2:await_up(ConnPid, Timeout, MRef).

await_up1(ConnPid, Timeout, MRef) ->
	receive
		{gun_up, ConnPid, Protocol} ->
			{ok, Protocol};
		{'DOWN', MRef, process, ConnPid, Reason} ->
			{error, Reason}
	after Timeout ->
		{error, timeout}
	end.

-spec flush(pid() | reference()) -> ok.
flush(ConnPid) when is_pid(ConnPid) ->
	flush_pid(ConnPid);
flush(StreamRef) when is_reference(StreamRef) ->
	flush_ref(StreamRef).

flush_pid(ConnPid) ->
	receive
		{gun_up, ConnPid, _} -> flush_pid(ConnPid);
		{gun_down, ConnPid, _, _, _, _} -> flush_pid(ConnPid);
		{gun_ws_upgrade, ConnPid, _, _} -> flush_pid(ConnPid);
		{gun_ws, ConnPid, _} -> flush_pid(ConnPid);
		%% Mode 2's shapes (a connection sends only its mode's).
		{gun_down, ConnPid, _, _, _} -> flush_pid(ConnPid);
		{gun_upgrade, ConnPid, _, _, _} -> flush_pid(ConnPid);
		{gun_ws, ConnPid, _, _} -> flush_pid(ConnPid);
		{gun_inform, ConnPid, _, _, _} -> flush_pid(ConnPid);
		{gun_response, ConnPid, _, _, _, _} -> flush_pid(ConnPid);
		{gun_data, ConnPid, _, _, _} -> flush_pid(ConnPid);
		{gun_trailers, ConnPid, _, _} -> flush_pid(ConnPid);
		{gun_error, ConnPid, _, _} -> flush_pid(ConnPid);
		{gun_error, ConnPid, _} -> flush_pid(ConnPid);
		{'DOWN', _, process, ConnPid, _} -> flush_pid(ConnPid)
	after 0 ->
		ok
	end.

flush_ref(StreamRef) ->
	receive
		{gun_inform, _, StreamRef, _, _} -> flush_ref(StreamRef);
		{gun_response, _, StreamRef, _, _, _} -> flush_ref(StreamRef);
		{gun_data, _, StreamRef, _, _} -> flush_ref(StreamRef);
		{gun_trailers, _, StreamRef, _} -> flush_ref(StreamRef);
		{gun_error, _, StreamRef, _} -> flush_ref(StreamRef);
		{gun_upgrade, _, StreamRef, _, _} -> flush_ref(StreamRef);
		{gun_ws, _, StreamRef, _} -> flush_ref(StreamRef)
	after 0 ->
		ok
	end.

%% Websocket.

-spec ws_upgrade(pid(), iodata()) -> reference().
ws_upgrade(ConnPid, Path) ->
	ws_upgrade(ConnPid, Path, []).

-spec ws_upgrade(pid(), iodata(), req_headers()) -> reference().
ws_upgrade(ConnPid, Path, Headers) ->
	case gun_mode:of_conn(ConnPid) of
		1 -> do_ws_upgrade(ConnPid, Path, Headers, #{});
		2 -> gun2:ws_upgrade(ConnPid, Path, Headers, undefined)
	end.

%% Unlike gun:open/3, bad options crash the caller here.
-spec ws_upgrade(pid(), iodata(), req_headers(), ws_opts()) -> reference().
ws_upgrade(ConnPid, Path, Headers, WsOpts) ->
	case gun_mode:of_conn(ConnPid) of
		1 ->
			ok = gun_ws:check_options(WsOpts),
			do_ws_upgrade(ConnPid, Path, Headers, WsOpts);
		2 ->
			gun2:ws_upgrade(ConnPid, Path, Headers, WsOpts)
	end.

do_ws_upgrade(ConnPid, Path, Headers, WsOpts) ->
	ok = gun_request:check(<<"GET">>, Path, Headers, #{}),
	StreamRef = make_ref(),
	ok = engine_call(ConnPid, {ws_upgrade, StreamRef, Path, Headers, WsOpts}),
	StreamRef.

%% A malformed frame, or a control frame payload over 125 bytes, raises
%% badarg here, in the caller. On this node (the hottest path) the call
%% goes straight to the engine.
-spec ws_send(pid(), ws_frame() | [ws_frame()]) -> ok.
ws_send(ConnPid, Frames) when node(ConnPid) =:= node() ->
	case gun_nif:ws_send(ConnPid, Frames) of
		ok -> ok;
		dirty -> gun_nif:ws_send_dirty(ConnPid, Frames)
	end;
ws_send(ConnPid, Frames) ->
	engine_call(ConnPid, {ws_send, Frames}).

%% Gun 2's: frames for one Websocket stream. HTTP/1.1 carries one
%% Websocket per connection: the frames go as ws_send/2 sends them.
%% Before the upgrade the owner gets Gun 2's
%% {gun_error, ConnPid, {badstate, Text}}.
-spec ws_send(pid(), reference(), ws_frame() | [ws_frame()]) -> ok.
ws_send(ConnPid, _StreamRef, Frames) ->
	ws_send(ConnPid, Frames).

%% Gives the WebSocket stream (opened with ws_opts flow => N) more messages
%% to deliver; at zero credits the connection stops reading the socket.
-spec update_flow(pid(), reference(), pos_integer()) -> ok.
update_flow(ConnPid, StreamRef, Increment)
		when is_reference(StreamRef), is_integer(Increment), Increment > 0 ->
	engine_call(ConnPid, {update_flow, StreamRef, Increment}).

%% Calls on a connection.
%%
%% The engine's table of connections is per node: a NIF call reaches the
%% connections of its own node only. A ConnPid of another node gets the
%% call as a message and runs it there, after the arguments went through
%% the same engine checks here, so that a malformed frame still raises
%% badarg in the caller. The check runs the call on self(), which is no
%% connection (only gun_conn processes are, and they never call this),
%% so the engine checks and drops it. Messages from one process arrive
%% in the order sent, so a caller's calls keep their order; to a ConnPid
%% that is gone, or whose node is, the message is lost as for a dead Gun
%% process.

-spec engine_call(pid(), gun_conn:call()) -> ok.
engine_call(ConnPid, Call) when node(ConnPid) =:= node() ->
	gun_conn:run(ConnPid, Call);
engine_call(ConnPid, Call) ->
	ok = gun_conn:run(self(), Call),
	ConnPid ! {'$gun_call', Call},
	ok.

-define(QUERY_TIMEOUT, 5000).

%% What a connection answers (gun_conn:query/2): on this node from the
%% engine at once, from another node in a message to ConnPid.
%% undefined when ConnPid is no connection (any more), or its node is
%% gone.
-spec engine_query(pid(), gun_conn:query()) -> any().
engine_query(ConnPid, Query) when node(ConnPid) =:= node() ->
	gun_conn:query(ConnPid, Query);
engine_query(ConnPid, Query) ->
	MRef = monitor(process, ConnPid, [{alias, reply_demonitor}]),
	ConnPid ! {'$gun_query', MRef, Query},
	receive
		{MRef, Answer} ->
			Answer;
		{'DOWN', MRef, process, ConnPid, _} ->
			undefined
	after ?QUERY_TIMEOUT ->
		demonitor(MRef, [flush]),
		exit({timeout, {?MODULE, query_name(Query), [ConnPid|query_args(Query)]}})
	end.

query_name(info) -> info;
query_name({stream_info, _}) -> stream_info.

query_args(info) -> [];
query_args({stream_info, StreamRef}) -> [StreamRef].
