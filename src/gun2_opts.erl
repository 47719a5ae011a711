%% Mode 2's options, checked as Gun 2.4.1 checks them (one clause per
%% option, the last one returning the offending option), and the map
%% the engine gets for a mode-2 connection.
%%
%% The options both modes have (connect_timeout, retry, retry_timeout,
%% tcp_opts, the tls_opts the engine speaks, the ws limits) are checked
%% by mode 1's own clauses, so both modes refuse the same values.
%% Options for what this mode does not speak (cookie_store,
%% event_handler, http3_opts, raw_opts, socks_opts, CONNECT tunnels,
%% content_handlers, the quic transport) are refused; http2_opts is
%% accepted and unused (Gun 2 users pass it routinely; HTTP/2 is not
%% spoken, ALPN offers http/1.1 only).
-module(gun2_opts).

-export([check/1]).
-export([engine_opts/1]).
-export([check_req_opts/1]).
-export([check_ws_upgrade_opts/1]).
-export([engine_ws_opts/1]).

-type reply_to() :: pid() | fun((tuple()) -> any())
	| {fun(), list()} | {module(), atom(), list()}.
-export_type([reply_to/0]).

%% The largest integers the engine decodes.
-define(MAX_U64, 16#ffffffffffffffff).

%% gun:open/2,3 and gun:open_unix/2.
-spec check(map()) -> ok | {error, {options, any()}}.
check(Opts) when is_map(Opts) ->
	check_options(maps:to_list(Opts));
check(Opts) ->
	{error, {options, Opts}}.

check_options([]) ->
	ok;
check_options([Opt={connect_timeout, _}|Opts]) ->
	shared(Opt, Opts);
check_options([{domain_lookup_timeout, infinity}|Opts]) ->
	check_options(Opts);
check_options([{domain_lookup_timeout, T}|Opts]) when is_integer(T), T >= 0, T =< ?MAX_U64 ->
	check_options(Opts);
check_options([{http_opts, HttpOpts}|Opts]) when is_map(HttpOpts) ->
	case check_http_options(maps:to_list(HttpOpts)) of
		ok -> check_options(Opts);
		Error -> Error
	end;
check_options([{http2_opts, Http2Opts}|Opts]) when is_map(Http2Opts) ->
	check_options(Opts);
check_options([Opt={protocols, L}|Opts]) when is_list(L) ->
	case check_protocols(L) of
		ok -> check_options(Opts);
		error -> {error, {options, Opt}}
	end;
check_options([Opt={retry, _}|Opts]) ->
	shared(Opt, Opts);
check_options([{retry_fun, F}|Opts]) when is_function(F, 2) ->
	check_options(Opts);
check_options([Opt={retry_timeout, _}|Opts]) ->
	shared(Opt, Opts);
check_options([{supervise, B}|Opts]) when is_boolean(B) ->
	check_options(Opts);
check_options([Opt={tcp_opts, _}|Opts]) ->
	shared(Opt, Opts);
check_options([{tls_handshake_timeout, infinity}|Opts]) ->
	check_options(Opts);
check_options([{tls_handshake_timeout, T}|Opts]) when is_integer(T), T >= 0, T =< ?MAX_U64 ->
	check_options(Opts);
check_options([{tls_opts, TlsOpts}|Opts]) when is_list(TlsOpts) ->
	case check_tls_options(TlsOpts) of
		ok -> check_options(Opts);
		Error -> Error
	end;
%% There is no connection process to trace with dbg: only false.
check_options([{trace, false}|Opts]) ->
	check_options(Opts);
check_options([{transport, T}|Opts]) when T =:= tcp; T =:= tls; T =:= ssl ->
	check_options(Opts);
check_options([{ws_opts, WsOpts}|Opts]) when is_map(WsOpts) ->
	case check_ws_options(maps:to_list(WsOpts)) of
		ok -> check_options(Opts);
		Error -> Error
	end;
check_options([Opt|_]) ->
	{error, {options, Opt}}.

shared(Opt={Key, Value}, Opts) ->
	case gun:check_options(#{Key => Value}) of
		ok -> check_options(Opts);
		{error, {options, {Key, _}}} -> {error, {options, Opt}};
		Error -> Error
	end.

%% Each protocol once; http must be one of them (http2 is accepted and
%% never negotiated).
check_protocols(L) ->
	Names = [case P of {Name, _} -> Name; Name -> Name end || P <- L],
	case lists:usort(Names) =:= lists:sort(Names)
			andalso lists:member(http, Names)
			andalso lists:all(fun is_protocol/1, L) of
		true -> ok;
		false -> error
	end.

is_protocol(http) -> true;
is_protocol(http2) -> true;
is_protocol({http, HttpOpts}) when is_map(HttpOpts) ->
	check_http_options(maps:to_list(HttpOpts)) =:= ok;
is_protocol({http2, Http2Opts}) when is_map(Http2Opts) -> true;
is_protocol(_) -> false.

%% Gun 2's http_opts, plus mode 1's max_headers, max_head_size and
%% send_queue_limit.
check_http_options([]) ->
	ok;
check_http_options([{closing_timeout, infinity}|Opts]) ->
	check_http_options(Opts);
check_http_options([{closing_timeout, T}|Opts]) when is_integer(T), T > 0, T =< ?MAX_U64 ->
	check_http_options(Opts);
check_http_options([{flow, N}|Opts]) when is_integer(N), N > 0, N =< ?MAX_U64 ->
	check_http_options(Opts);
check_http_options([{max_header_block_size, N}|Opts]) when is_integer(N), N > 0, N =< ?MAX_U64 ->
	check_http_options(Opts);
check_http_options([{max_trailer_block_size, N}|Opts]) when is_integer(N), N > 0, N =< ?MAX_U64 ->
	check_http_options(Opts);
check_http_options([{transform_header_name, F}|Opts]) when is_function(F, 1) ->
	check_http_options(Opts);
check_http_options([Opt={Key, _}|Opts]) when Key =:= keepalive; Key =:= version;
		Key =:= max_headers; Key =:= max_head_size; Key =:= send_queue_limit ->
	case gun:check_options(#{http_opts => maps:from_list([Opt])}) of
		ok -> check_http_options(Opts);
		Error -> Error
	end;
check_http_options([Opt|_]) ->
	{error, {options, {http, Opt}}}.

%% ssl's client option names the engine honours: mode 1's, plus versions
%% (TLS 1.2 and 1.3, the ones the engine speaks) and
%% fail_if_no_peer_cert, a server-side option that ssl takes and ignores
%% on a client, as here.
check_tls_options([]) ->
	ok;
check_tls_options([Opt={versions, L}|Opts]) when is_list(L), L =/= [] ->
	case lists:all(fun(V) -> V =:= 'tlsv1.2' orelse V =:= 'tlsv1.3' end, L) of
		true -> check_tls_options(Opts);
		false -> {error, {options, {tls_opts, Opt}}}
	end;
check_tls_options([{fail_if_no_peer_cert, B}|Opts]) when is_boolean(B) ->
	check_tls_options(Opts);
check_tls_options([Opt|Opts]) ->
	case gun:check_options(#{tls_opts => [Opt]}) of
		ok -> check_tls_options(Opts);
		Error -> Error
	end.

%% Gun 2's ws_opts; the other ws options of mode 1 (limits, deflate
%% parameters, keepalive_tolerance, queue limits, upgrade_timeout) are
%% extensions, checked by mode 1's clauses.
check_ws_options([]) ->
	ok;
check_ws_options([{default_protocol, gun_ws_h}|Opts]) ->
	check_ws_options(Opts);
check_ws_options([Opt={protocols, L}|Opts]) when is_list(L) ->
	case lists:all(fun({Name, gun_ws_h}) -> is_binary(Name); (_) -> false end, L) of
		true -> check_ws_options(Opts);
		false -> {error, {options, {ws, Opt}}}
	end;
check_ws_options([Opt={reply_to, ReplyTo}|Opts]) ->
	case is_reply_to(ReplyTo) of
		true -> check_ws_options(Opts);
		false -> {error, {options, {ws, Opt}}}
	end;
check_ws_options([{user_opts, _}|Opts]) ->
	check_ws_options(Opts);
%% Gun 2 takes a closing_timeout above 0 only (mode 1 also takes 0).
check_ws_options([Opt={closing_timeout, 0}|_]) ->
	{error, {options, {ws, Opt}}};
check_ws_options([Opt|Opts]) ->
	case gun_ws:check_options(maps:from_list([Opt])) of
		ok -> check_ws_options(Opts);
		Error -> Error
	end.

-spec is_reply_to(any()) -> boolean().
is_reply_to(Pid) when is_pid(Pid) -> true;
is_reply_to(F) when is_function(F, 1) -> true;
is_reply_to({F, A}) when is_list(A) -> is_function(F, 1 + length(A));
is_reply_to({M, F, A}) when is_atom(M), is_atom(F), is_list(A) -> true;
is_reply_to(_) -> false.

%% The map gun_nif:open/4 gets: the engine's own keys, with api => 2.
%% What the Erlang side handles itself (supervise, transform_header_name,
%% the Gun 2 ws keys) or what is unused (http2_opts, trace) stays here;
%% retry_fun goes along, for the connection process (gun2_retry).
-spec engine_opts(map()) -> map().
engine_opts(Opts0) ->
	Opts1 = maps:without([supervise, http2_opts, trace], Opts0),
	Opts2 = case Opts1 of
		#{transport := ssl} -> Opts1#{transport => tls};
		_ -> Opts1
	end,
	Opts3 = case Opts2 of
		#{protocols := Protocols} ->
			HttpOpts = lists:foldl(fun
				({http, O}, Acc) -> maps:merge(O, Acc);
				(_, Acc) -> Acc
			end, maps:get(http_opts, Opts2, #{}), Protocols),
			(maps:remove(protocols, Opts2))#{http_opts => HttpOpts};
		_ ->
			Opts2
	end,
	Opts4 = case Opts3 of
		#{http_opts := H} -> Opts3#{http_opts => maps:remove(transform_header_name, H)};
		_ -> Opts3
	end,
	Opts5 = case Opts4 of
		#{ws_opts := W} -> Opts4#{ws_opts => engine_ws_opts(W)};
		_ -> Opts4
	end,
	Opts5#{api => 2}.

%% Request options (get/4, headers/5, request/6 ...): raise in the
%% caller, as ws_upgrade/4 does for its options.
-spec check_req_opts(map()) -> ok.
check_req_opts(ReqOpts) when is_map(ReqOpts) ->
	check_req_opts_list(maps:to_list(ReqOpts));
check_req_opts(ReqOpts) ->
	error({options, ReqOpts}).

check_req_opts_list([]) ->
	ok;
check_req_opts_list([{flow, infinity}|Opts]) ->
	check_req_opts_list(Opts);
check_req_opts_list([{flow, N}|Opts]) when is_integer(N), N > 0, N =< ?MAX_U64 ->
	check_req_opts_list(Opts);
check_req_opts_list([{invalid_request_headers, V}|Opts]) when V =:= raise; V =:= ignore ->
	check_req_opts_list(Opts);
check_req_opts_list([Opt={reply_to, ReplyTo}|Opts]) ->
	case is_reply_to(ReplyTo) of
		true -> check_req_opts_list(Opts);
		false -> error({options, Opt})
	end;
check_req_opts_list([Opt|_]) ->
	error({options, Opt}).

%% ws_upgrade/4: the ws_opts, plus invalid_request_headers. Raises.
-spec check_ws_upgrade_opts(map()) -> ok.
check_ws_upgrade_opts(WsOpts) when is_map(WsOpts) ->
	case check_ws_options(maps:to_list(maps:without([invalid_request_headers], WsOpts))) of
		ok -> ok;
		{error, Reason} -> error(Reason)
	end,
	case maps:get(invalid_request_headers, WsOpts, raise) of
		V when V =:= raise; V =:= ignore -> ok;
		V -> error({options, {ws, {invalid_request_headers, V}}})
	end;
check_ws_upgrade_opts(WsOpts) ->
	error({options, {ws, WsOpts}}).

%% The engine's ws options: Gun 2's own keys are handled on the Erlang
%% side (protocols become the sec-websocket-protocol header, reply_to a
%% pid) or have no meaning here (default_protocol is the one handler).
-spec engine_ws_opts(map()) -> map().
engine_ws_opts(WsOpts) ->
	maps:without([protocols, default_protocol, user_opts, invalid_request_headers,
		reply_to], WsOpts).
