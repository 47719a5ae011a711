%% Which API a connection speaks: 1 (the guide's, contract.md) or 2
%% (Gun 2.4.1's). The mode is the gun application's env key `api`, read
%% once when a connection opens; the connection keeps it, and every
%% later call on that ConnPid (requests, awaits) follows the
%% connection's mode, not the env of the moment.
-module(gun_mode).

-export([api/0]).
-export([of_conn/1]).
-export([erlang_opts/1]).

-type api() :: 1 | 2.
-export_type([api/0]).

%% The mode a connection opened now gets; a bad value is the caller's
%% {error, {api, Value}} from gun:open.
-spec api() -> {ok, api()} | {error, {api, any()}}.
api() ->
	case application:get_env(gun, api, 1) of
		1 -> {ok, 1};
		2 -> {ok, 2};
		Other -> {error, {api, Other}}
	end.

%% The engine keeps each connection's mode beside its registry entry. A
%% pid it does not know (a dead connection, a pid of another node) gets
%% the mode connections open with here, which is what the caller's own
%% connections use.
-spec of_conn(pid()) -> api().
of_conn(ConnPid) ->
	case engine_api(ConnPid) of
		{Api, _} when Api =:= 1; Api =:= 2 -> Api;
		Api when Api =:= 1; Api =:= 2 -> Api;
		undefined -> env_api()
	end.

%% The Erlang-side options a mode-2 connection of this node was opened
%% with (what its callers need: transform_header_name, the Websocket
%% protocols), kept by the engine beside the mode; undefined when
%% ConnPid is no connection of this node.
-spec erlang_opts(pid()) -> map() | undefined.
erlang_opts(ConnPid) ->
	case engine_api(ConnPid) of
		{_, ErlOpts} when is_map(ErlOpts) -> ErlOpts;
		undefined -> undefined;
		_ -> #{}
	end.

engine_api(ConnPid) ->
	try
		gun_nif:api(ConnPid)
	catch
		%% An engine without per-connection modes: all connections
		%% were opened with the env's mode.
		error:undef -> undefined;
		%% A pid of another node.
		error:badarg -> undefined
	end.

env_api() ->
	case api() of
		{ok, Api} -> Api;
		{error, _} -> 1
	end.
