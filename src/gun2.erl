%% Mode 2: the bodies of Gun 2.4.1's API (HTTP/1.1 and Websocket) on the
%% same engine as mode 1. gun.erl dispatches here for connections opened
%% in mode 2 and for the functions only Gun 2 has. The terms are Gun
%% 2.4.1's, documented in its manual (doc/src/manual/gun*.asciidoc).
-module(gun2).

%% Connection.
-export([open/3]).
-export([open_unix/2]).
-export([info/1]).
-export([set_owner/2]).
-export([ping/2]).

%% Requests.
-export([request/6]).
-export([headers/5]).
-export([cancel/2]).
-export([stream_info/2]).
-export([update_flow/3]).

%% Awaiting.
-export([await/4]).
-export([await_body/4]).
-export([await_up/3]).

%% Websocket.
-export([ws_upgrade/4]).

%% Internal: what the engine runs for these functions, on the
%% connection's node (gun_conn:run/2, gun_conn:query/2).
-export([run/2]).
-export([stream_info_here/2]).
-export([normalize_headers/1]).

-type req_opts() :: #{
	flow => pos_integer() | infinity,
	invalid_request_headers => raise | ignore,
	reply_to => gun2_opts:reply_to()
}.
-type req_headers() :: [{binary() | string() | atom(), iodata()}]
	| #{binary() | string() | atom() => iodata()}.
-type await_result() :: {inform, 100..199, [{binary(), binary()}]}
	| {response, fin | nofin, non_neg_integer(), [{binary(), binary()}]}
	| {data, fin | nofin, binary()}
	| {trailers, [{binary(), binary()}]}
	| {upgrade, [binary()], [{binary(), binary()}]}
	| {ws, gun:ws_frame()}
	| {error, {stream_error | connection_error | down, any()} | timeout}.
-type await_body_result() :: {ok, binary()}
	| {ok, binary(), [{binary(), binary()}]}
	| {error, {stream_error | connection_error | down, any()} | timeout}.
-export_type([req_opts/0, req_headers/0, await_result/0, await_body_result/0]).

%% What mode 2 asks of the engine (through gun:engine_call/2, which
%% brings it to the connection's node). The reply_to in StreamOpts is as
%% the caller gave it (a pid of any node, or a fun): a relay for it is
%% started on the connection's node, the only node the engine sends to.
%% Protocols default is the connection's ws_opts' protocols.
-type stream_opts() :: #{reply_to := gun2_opts:reply_to(), flow => pos_integer() | infinity}.
-type call() :: {request, reference(), stream_opts(), iodata(), iodata(),
		[{binary(), iodata()}], none | streamed | iodata()}
	| {ws_upgrade, reference(), iodata(), [{binary(), iodata()}], [binary()] | default, map()}
	| {cancel, reference()}
	| {ping, reference()}.
-export_type([call/0]).

%% Connection.

-spec open(gun:host() | {local, file:filename_all()}, inet:port_number(), map())
	-> {ok, pid()} | {error, any()}.
open(Host, Port, Opts) ->
	case check_host(Host, Port, Opts) of
		ok ->
			case gun2_opts:check(Opts) of
				ok -> start(Host, Port, Opts);
				Error -> Error
			end;
		Error ->
			Error
	end.

%% A Unix domain socket carries TCP's bytes or TLS's (transport => tls:
%% the peer is verified as localhost, unless server_name_indication
%% names it otherwise).
check_host({local, Path}, 0, _) when is_list(Path); is_binary(Path) ->
	ok;
check_host(Host, Port, _) when is_integer(Port), Port > 0, Port =< 65535 ->
	check_host(Host);
check_host(_, Port, _) ->
	{error, {port, Port}}.

check_host(Host) when is_list(Host); is_atom(Host); is_binary(Host) ->
	ok;
check_host(Host) when tuple_size(Host) =:= 4; tuple_size(Host) =:= 8 ->
	case inet:is_ip_address(Host) of
		true -> ok;
		false -> {error, {host, Host}}
	end;
check_host(Host) ->
	{error, {host, Host}}.

%% Under the application's supervisor (gun_sup), or, with
%% supervise => false, linked to the caller, as Gun 2's start_link.
start(Host, Port, Opts) ->
	EngineOpts = engine_opts(Host, Port, Opts),
	Result = case maps:get(supervise, Opts, true) of
		true -> gun_sup:start_conn(self(), Host, Port, EngineOpts);
		false -> gun_conn:start_link(self(), Host, Port, EngineOpts)
	end,
	case Result of
		%% The engine refused an option: say which map was given.
		{error, {options, _}} -> {error, {options, Opts}};
		_ -> Result
	end.

engine_opts(Host, Port, Opts) ->
	EngineOpts = gun2_opts:engine_opts(Opts),
	case erlang_opts(Host, Port, Opts) of
		ErlOpts when map_size(ErlOpts) =:= 0 -> EngineOpts;
		ErlOpts -> EngineOpts#{erlang_opts => ErlOpts}
	end.

%% What callers of the connection's functions need from its options:
%% they transform header names (the host header included, which they
%% then send themselves) and offer Websocket protocols themselves.
erlang_opts(Host, Port, Opts) ->
	ErlOpts = case Opts of
		#{http_opts := #{transform_header_name := F}} ->
			#{transform_header_name => F, host_header => host_header(Host, Port, Opts)};
		_ ->
			#{}
	end,
	case Opts of
		#{ws_opts := #{protocols := Protocols}} when Protocols =/= [] ->
			ErlOpts#{ws_protocols => [Name || {Name, _} <- Protocols]};
		_ ->
			ErlOpts
	end.

%% Gun 2's host header: the port only when it is not the transport's
%% default; localhost over a Unix domain socket, as the engine sends.
host_header({local, _}, _, _) ->
	<<"localhost">>;
host_header(Host0, Port, Opts) ->
	Host = case Host0 of
		_ when tuple_size(Host0) =:= 8 -> [$[, inet:ntoa(Host0), $]];
		_ when tuple_size(Host0) =:= 4 -> inet:ntoa(Host0);
		_ when is_atom(Host0) -> atom_to_list(Host0);
		_ -> Host0
	end,
	Transport = case maps:get(transport, Opts, default) of
		default when Port =:= 443 -> tls;
		default -> tcp;
		ssl -> tls;
		T -> T
	end,
	case {Transport, Port} of
		{tcp, 80} -> iolist_to_binary(Host);
		{tls, 443} -> iolist_to_binary(Host);
		_ -> iolist_to_binary([Host, $:, integer_to_binary(Port)])
	end.

-spec open_unix(file:filename_all(), map()) -> {ok, pid()} | {error, any()}.
open_unix(SocketPath, Opts) ->
	open({local, SocketPath}, 0, Opts).

%% Gun 2's keys. No socket term leaves the engine (socket is
%% undefined), and there is no cookie store or event handler.
-spec info(pid()) -> map().
info(ConnPid) ->
	Info0 = case gun:engine_query(ConnPid, info) of
		undefined -> exit({noproc, {gun, info, [ConnPid]}});
		EngineInfo -> EngineInfo
	end,
	Transport = maps:get(transport, Info0),
	Info1 = Info0#{
		socket => undefined,
		origin_scheme => case Transport of
			tcp -> <<"http">>;
			tls -> <<"https">>
		end,
		intermediaries => [],
		cookie_store => undefined,
		event_handler => undefined,
		event_handler_state => undefined
	},
	%% sock_ip and sock_port only with a socket, as in Gun 2 (a Unix
	%% domain socket has none); state_name is the engine's.
	Info = maps:filter(fun
		(K, undefined) when K =:= sock_ip; K =:= sock_port -> false;
		(_, _) -> true
	end, Info1),
	case Info of
		#{state_name := _} -> Info;
		#{sock_ip := _} -> Info#{state_name => connected};
		_ -> Info#{state_name => not_connected}
	end.

%% Asynchronous, as Gun 2's cast: the connection process tells the
%% engine, after anything the caller sent it before.
-spec set_owner(pid(), pid()) -> ok.
set_owner(ConnPid, NewOwner) when is_pid(NewOwner) ->
	ConnPid ! {'$gun_set_owner', NewOwner},
	ok.

%% HTTP/1.1 has no ping: as in Gun 2, the connection fails with
%% {error, {ping_unsupported_by_protocol, PingRef}}.
-spec ping(pid(), req_opts()) -> reference().
ping(ConnPid, ReqOpts) ->
	ok = gun2_opts:check_req_opts(ReqOpts),
	PingRef = make_ref(),
	ok = gun:engine_call(ConnPid, {gun2, {ping, PingRef}}),
	PingRef.

%% Requests.

%% Body is none (get, head, options, delete), streamed (gun:data/4
%% follows) or iodata. The headers are checked here, in the caller.
-spec request(pid(), iodata(), iodata(), req_headers(), none | streamed | iodata(), req_opts())
	-> reference().
request(ConnPid, Method, Path, Headers0, Body, ReqOpts) ->
	ok = gun2_opts:check_req_opts(ReqOpts),
	Headers = checked_headers(Method, Path, Headers0, ReqOpts),
	StreamRef = make_ref(),
	StreamOpts0 = #{reply_to => maps:get(reply_to, ReqOpts, self())},
	StreamOpts = case ReqOpts of
		#{flow := Flow} when is_integer(Flow) -> StreamOpts0#{flow => Flow};
		_ -> StreamOpts0
	end,
	ok = gun:engine_call(ConnPid,
		{gun2, {request, StreamRef, StreamOpts, Method, Path, Headers, Body}}),
	StreamRef.

-spec headers(pid(), iodata(), iodata(), req_headers(), req_opts()) -> reference().
headers(ConnPid, Method, Path, Headers, ReqOpts) ->
	request(ConnPid, Method, Path, Headers, streamed, ReqOpts).

%% Lower-cased and checked (raising in the caller).
checked_headers(Method, Path, Headers0, Opts) ->
	Headers = normalize_headers(Headers0),
	ok = gun_request:check(Method, Path, Headers,
		maps:with([invalid_request_headers], Opts)),
	Headers.

%% Runs Call on ConnPid, a pid of this node: the connection, or, when
%% it is none (the caller's check of a call for another node, or a
%% connection that is over), the engine checks the arguments and does
%% nothing else; then no relay is started.
-spec run(pid(), call()) -> ok.
run(ConnPid, {request, StreamRef, StreamOpts0, Method, Path, Headers0, Body}) ->
	ErlOpts = gun_mode:erlang_opts(ConnPid),
	Headers = transformed_headers(ErlOpts, Headers0),
	StreamOpts = StreamOpts0#{reply_to => engine_reply_to(ErlOpts, ConnPid,
		maps:get(reply_to, StreamOpts0))},
	case nif_request(ConnPid, StreamRef, StreamOpts, Method, Path, Headers, Body) of
		dirty -> nif_request_dirty(ConnPid, StreamRef, StreamOpts, Method, Path, Headers, Body);
		Ok -> Ok
	end;
run(ConnPid, {ws_upgrade, StreamRef, Path, Headers0, Protocols0, EngineWsOpts0}) ->
	ErlOpts = gun_mode:erlang_opts(ConnPid),
	Protocols = case Protocols0 of
		default when is_map(ErlOpts) -> maps:get(ws_protocols, ErlOpts, []);
		default -> [];
		_ -> Protocols0
	end,
	Headers = protocols_header(Protocols, transformed_headers(ErlOpts, Headers0)),
	EngineWsOpts = EngineWsOpts0#{reply_to => engine_reply_to(ErlOpts, ConnPid,
		maps:get(reply_to, EngineWsOpts0))},
	gun_nif:ws_upgrade(ConnPid, StreamRef, Path, Headers, EngineWsOpts);
%% A stopped stream's relay (fun reply_to, or a pid of another node)
%% ends with it: no message comes after a cancel. An upgraded stream is
%% not stopped by it (it stays running), and keeps its relay.
run(ConnPid, {cancel, StreamRef}) ->
	ok = gun_nif:cancel(ConnPid, StreamRef),
	case gun_nif:stream_info(ConnPid, StreamRef) of
		{ok, #{reply_to := Relay, state := stopping}} -> gun_reply_to:stop(Relay);
		_ -> ok
	end;
run(ConnPid, {ping, PingRef}) ->
	gun_nif:ping(ConnPid, PingRef).

%% The connection's transform_header_name, given the host header it
%% sends with them.
transformed_headers(#{transform_header_name := F, host_header := Host}, Headers) ->
	[{F(N), V} || {N, V} <- with_host(Headers, Host)];
transformed_headers(_, Headers) ->
	Headers.

with_host(Headers, Host) ->
	case lists:keymember(<<"host">>, 1, Headers) of
		true -> Headers;
		false -> [{<<"host">>, Host}|Headers]
	end.

%% A pid of this node goes to the engine as is (its messages are sent
%% straight to it). A fun needs a process to run it, and a pid of
%% another node one to forward to it (the engine sends to local pids
%% only): a relay for this stream. With no connection, nothing will be
%% sent: the caller stands in for the engine's checks.
engine_reply_to(undefined, _, _) ->
	self();
engine_reply_to(_, _, Pid) when is_pid(Pid), node(Pid) =:= node() ->
	Pid;
engine_reply_to(_, ConnPid, ReplyTo) ->
	gun_reply_to:start(ConnPid, ReplyTo).

nif_request(ConnPid, StreamRef, StreamOpts, Method, Path, Headers, Body) ->
	try
		gun_nif:request(ConnPid, StreamRef, StreamOpts, Method, Path, Headers, Body)
	catch error:undef ->
		gun_nif:request(ConnPid, StreamRef, Method, Path, Headers, Body)
	end.

nif_request_dirty(ConnPid, StreamRef, StreamOpts, Method, Path, Headers, Body) ->
	try
		gun_nif:request_dirty(ConnPid, StreamRef, StreamOpts, Method, Path, Headers, Body)
	catch error:undef ->
		gun_nif:request_dirty(ConnPid, StreamRef, Method, Path, Headers, Body)
	end.

%% Gun 2's header forms: a list or a map; names binaries, strings or
%% atoms, lower-cased.
-spec normalize_headers(req_headers()) -> [{binary(), iodata()}].
normalize_headers(Headers) when is_map(Headers) ->
	normalize_headers(maps:to_list(Headers));
normalize_headers([]) ->
	[];
normalize_headers([{Name, Value}|Tail]) when is_binary(Name) ->
	[{string:lowercase(Name), Value}|normalize_headers(Tail)];
normalize_headers([{Name, Value}|Tail]) when is_list(Name) ->
	[{string:lowercase(unicode:characters_to_binary(Name)), Value}|normalize_headers(Tail)];
normalize_headers([{Name, Value}|Tail]) when is_atom(Name) ->
	[{string:lowercase(atom_to_binary(Name, latin1)), Value}|normalize_headers(Tail)];
normalize_headers([Header|_]) ->
	error({invalid_request_header, Header, "A request header must be a {Name, Value} tuple."});
normalize_headers(Headers) ->
	error({invalid_request_header, Headers, "Request headers must be a list or a map."}).

-spec cancel(pid(), reference()) -> ok.
cancel(ConnPid, StreamRef) ->
	gun:engine_call(ConnPid, {gun2, {cancel, StreamRef}}).

%% {ok, undefined} for a stream the connection does not know (any more),
%% or for a ConnPid that is over.
-spec stream_info(pid(), reference())
	-> {ok, map() | undefined} | {error, not_connected}.
stream_info(ConnPid, StreamRef) ->
	case gun:engine_query(ConnPid, {stream_info, StreamRef}) of
		undefined -> {ok, undefined};
		Info -> Info
	end.

%% On the connection's node: the reply_to the user gave, for the pid
%% the engine knows (a relay's fun or pid).
-spec stream_info_here(pid(), reference())
	-> {ok, map() | undefined} | {error, not_connected}.
stream_info_here(ConnPid, StreamRef) ->
	case gun_nif:stream_info(ConnPid, StreamRef) of
		{ok, Info=#{reply_to := Pid}} when is_pid(Pid) ->
			{ok, Info#{reply_to => gun_reply_to:reply_to(Pid)}};
		Other ->
			Other
	end.

%% HTTP streams too (Gun 2 counts gun_data messages).
-spec update_flow(pid(), reference(), pos_integer()) -> ok.
update_flow(ConnPid, StreamRef, Flow)
		when is_reference(StreamRef), is_integer(Flow), Flow > 0 ->
	gun:engine_call(ConnPid, {update_flow, StreamRef, Flow}).

%% Awaiting: Gun 2's results, its errors wrapped.

-spec await(pid(), reference() | undefined, timeout(), reference()) -> await_result().
await(ConnPid, StreamRef, Timeout, MRef) ->
	receive
		{gun_inform, ConnPid, StreamRef, Status, Headers} ->
			{inform, Status, Headers};
		{gun_response, ConnPid, StreamRef, IsFin, Status, Headers} ->
			{response, IsFin, Status, Headers};
		{gun_data, ConnPid, StreamRef, IsFin, Data} ->
			{data, IsFin, Data};
		{gun_trailers, ConnPid, StreamRef, Trailers} ->
			{trailers, Trailers};
		{gun_upgrade, ConnPid, StreamRef, Protocols, Headers} ->
			{upgrade, Protocols, Headers};
		{gun_ws, ConnPid, StreamRef, Frame} ->
			{ws, Frame};
		{gun_error, ConnPid, StreamRef, Reason} ->
			{error, {stream_error, Reason}};
		{gun_error, ConnPid, Reason} ->
			{error, {connection_error, Reason}};
		{'DOWN', MRef, process, ConnPid, Reason} ->
			{error, {down, Reason}}
	after Timeout ->
		{error, timeout}
	end.

%% Timeout applies to each message, as in Gun 2.
-spec await_body(pid(), reference(), timeout(), reference()) -> await_body_result().
await_body(ConnPid, StreamRef, Timeout, MRef) ->
	await_body(ConnPid, StreamRef, Timeout, MRef, <<>>).

await_body(ConnPid, StreamRef, Timeout, MRef, Acc) ->
	receive
		{gun_data, ConnPid, StreamRef, nofin, Data} ->
			await_body(ConnPid, StreamRef, Timeout, MRef, <<Acc/binary, Data/binary>>);
		{gun_data, ConnPid, StreamRef, fin, Data} ->
			{ok, <<Acc/binary, Data/binary>>};
		{gun_trailers, ConnPid, StreamRef, Trailers} ->
			{ok, Acc, Trailers};
		{gun_error, ConnPid, StreamRef, Reason} ->
			{error, {stream_error, Reason}};
		{gun_error, ConnPid, Reason} ->
			{error, {connection_error, Reason}};
		{'DOWN', MRef, process, ConnPid, Reason} ->
			{error, {down, Reason}}
	after Timeout ->
		{error, timeout}
	end.

-spec await_up(pid(), timeout(), reference()) -> {ok, http} | {error, {down, any()} | timeout}.
await_up(ConnPid, Timeout, MRef) ->
	receive
		{gun_up, ConnPid, Protocol} ->
			{ok, Protocol};
		{'DOWN', MRef, process, ConnPid, Reason} ->
			{error, {down, Reason}}
	after Timeout ->
		{error, timeout}
	end.

%% Websocket.

%% WsOpts undefined: the connection's ws_opts (ws_upgrade/2,3).
%% The protocols option becomes the sec-websocket-protocol header, as
%% in Gun 2 (the engine takes a hand-set header as a real offer).
-spec ws_upgrade(pid(), iodata(), req_headers(), map() | undefined) -> reference().
ws_upgrade(ConnPid, Path, Headers0, undefined) ->
	Headers = checked_headers(<<"GET">>, Path, Headers0, #{}),
	do_ws_upgrade(ConnPid, Path, Headers, default, #{reply_to => self()});
ws_upgrade(ConnPid, Path, Headers0, WsOpts) ->
	ok = gun2_opts:check_ws_upgrade_opts(WsOpts),
	Headers = checked_headers(<<"GET">>, Path, Headers0, WsOpts),
	Protocols = [Name || {Name, _} <- maps:get(protocols, WsOpts, [])],
	ReplyTo = maps:get(reply_to, WsOpts, self()),
	do_ws_upgrade(ConnPid, Path, Headers, Protocols,
		(gun2_opts:engine_ws_opts(WsOpts))#{reply_to => ReplyTo}).

protocols_header([], Headers) ->
	Headers;
protocols_header(Protocols, Headers) ->
	[{<<"sec-websocket-protocol">>, lists:join(<<", ">>, Protocols)}|Headers].

do_ws_upgrade(ConnPid, Path, Headers, Protocols, EngineWsOpts) ->
	StreamRef = make_ref(),
	ok = gun:engine_call(ConnPid,
		{gun2, {ws_upgrade, StreamRef, Path, Headers, Protocols, EngineWsOpts}}),
	StreamRef.
