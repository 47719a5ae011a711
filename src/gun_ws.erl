%% The Websocket side of the API: gun_ws:upgrade/2,3,4 (the guide's
%% name for gun:ws_upgrade) and the checking of Websocket options.
-module(gun_ws).

-export([upgrade/2]).
-export([upgrade/3]).
-export([upgrade/4]).
-export([check_options/1]).

%% The largest integers the engine decodes (u32 and u64; usize is u64 on
%% the 64-bit targets the engine builds for).
-define(MAX_U32, 16#ffffffff).
-define(MAX_U64, 16#ffffffffffffffff).

-spec upgrade(pid(), iodata()) -> reference().
upgrade(ConnPid, Path) ->
	gun:ws_upgrade(ConnPid, Path).

-spec upgrade(pid(), iodata(), gun:req_headers()) -> reference().
upgrade(ConnPid, Path, Headers) ->
	gun:ws_upgrade(ConnPid, Path, Headers).

-spec upgrade(pid(), iodata(), gun:req_headers(), gun:ws_opts()) -> reference().
upgrade(ConnPid, Path, Headers, WsOpts) ->
	gun:ws_upgrade(ConnPid, Path, Headers, WsOpts).

-spec check_options(gun:ws_opts()) -> ok | {error, {options, {ws, any()}}}.
check_options(Opts) when is_map(Opts) ->
	do_check_options(maps:to_list(Opts));
check_options(Opts) ->
	{error, {options, {ws, Opts}}}.

do_check_options([]) ->
	ok;
do_check_options([{closing_timeout, infinity}|Opts]) ->
	do_check_options(Opts);
do_check_options([{closing_timeout, T}|Opts]) when is_integer(T), T >= 0, T =< ?MAX_U64 ->
	do_check_options(Opts);
do_check_options([{client_max_window_bits, B}|Opts]) when is_integer(B), B >= 9, B =< 15 ->
	do_check_options(Opts);
do_check_options([{client_no_context_takeover, B}|Opts]) when is_boolean(B) ->
	do_check_options(Opts);
do_check_options([{compress, B}|Opts]) when is_boolean(B) ->
	do_check_options(Opts);
do_check_options([{deflate_level, L}|Opts]) when is_integer(L), L >= 0, L =< 9 ->
	do_check_options(Opts);
do_check_options([{keepalive, infinity}|Opts]) ->
	do_check_options(Opts);
do_check_options([{keepalive, K}|Opts]) when is_integer(K), K > 0, K =< ?MAX_U64 ->
	do_check_options(Opts);
do_check_options([{flow, N}|Opts]) when is_integer(N), N > 0, N =< ?MAX_U64 ->
	do_check_options(Opts);
do_check_options([{keepalive_tolerance, infinity}|Opts]) ->
	do_check_options(Opts);
do_check_options([{keepalive_tolerance, N}|Opts]) when is_integer(N), N > 0, N =< ?MAX_U32 ->
	do_check_options(Opts);
do_check_options([{max_frame_size, infinity}|Opts]) ->
	do_check_options(Opts);
do_check_options([{max_frame_size, S}|Opts]) when is_integer(S), S >= 0, S =< ?MAX_U64 ->
	do_check_options(Opts);
do_check_options([{max_fragments, infinity}|Opts]) ->
	do_check_options(Opts);
do_check_options([{max_fragments, N}|Opts]) when is_integer(N), N > 0, N =< ?MAX_U32 ->
	do_check_options(Opts);
do_check_options([{max_message_size, infinity}|Opts]) ->
	do_check_options(Opts);
do_check_options([{max_message_size, S}|Opts]) when is_integer(S), S >= 0, S =< ?MAX_U64 ->
	do_check_options(Opts);
do_check_options([{server_max_window_bits, B}|Opts]) when is_integer(B), B >= 8, B =< 15 ->
	do_check_options(Opts);
do_check_options([{server_no_context_takeover, B}|Opts]) when is_boolean(B) ->
	do_check_options(Opts);
do_check_options([{owner_queue_limit, infinity}|Opts]) ->
	do_check_options(Opts);
do_check_options([{owner_queue_limit, Bytes}|Opts]) when is_integer(Bytes), Bytes > 0, Bytes =< ?MAX_U64 ->
	do_check_options(Opts);
do_check_options([{send_queue_limit, infinity}|Opts]) ->
	do_check_options(Opts);
do_check_options([{send_queue_limit, Bytes}|Opts]) when is_integer(Bytes), Bytes > 0, Bytes =< ?MAX_U64 ->
	do_check_options(Opts);
do_check_options([{silence_pings, B}|Opts]) when is_boolean(B) ->
	do_check_options(Opts);
do_check_options([{upgrade_timeout, infinity}|Opts]) ->
	do_check_options(Opts);
do_check_options([{upgrade_timeout, T}|Opts]) when is_integer(T), T >= 0, T =< ?MAX_U64 ->
	do_check_options(Opts);
do_check_options([Opt|_]) ->
	{error, {options, {ws, Opt}}}.
