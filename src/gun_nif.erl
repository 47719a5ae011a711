%% The native engine. Every function here is implemented in Rust
%% (native/src/nif/); the Erlang bodies only run when the library
%% failed to load.
-module(gun_nif).

-export([open/4]).
-export([request/6]).
-export([request/7]).
-export([request_dirty/6]).
-export([request_dirty/7]).
-export([data/4]).
-export([data_dirty/4]).
-export([cancel/2]).
-export([update_flow/3]).
-export([ws_upgrade/5]).
-export([ws_send/2]).
-export([ws_send_dirty/2]).
-export([shutdown/1]).
-export([close/1]).
-export([info/1]).
-export([api/1]).
-export([set_owner/2]).
-export([owner_down/1]).
-export([ping/2]).
-export([stream_info/2]).
-export([retry/3]).
-export([owner_queue/2]).
-export([drain/1]).
-export([resources/0]).
-export([inject_panic/1]).

-on_load(load/0).

-opaque conn() :: reference().
-export_type([conn/0]).

%% Mode 2: the stream's own options. Its messages go to reply_to (the
%% owner without it); flow is its gun_data credits (infinity: none; absent:
%% http_opts' flow).
-type req_opts() :: #{reply_to => pid(), flow => pos_integer() | infinity}.
-export_type([req_opts/0]).

-spec load() -> ok | {error, {atom(), string()}}.
load() ->
	erlang:load_nif(filename:join(priv_dir(), "gun_nif"), 0).

%% code:priv_dir/1 fails when the application is not in the code path as
%% an application (for example when only the ebin directory was added).
-spec priv_dir() -> file:filename().
priv_dir() ->
	case code:priv_dir(gun) of
		{error, bad_name} ->
			filename:join(filename:dirname(filename:dirname(code:which(?MODULE))), "priv");
		Dir ->
			Dir
	end.

%% Called by the connection process itself: the native side registers
%% self() as ConnPid and monitors both it and Owner.
-spec open(pid(), gun:host(), inet:port_number(), gun:opts()) -> conn().
open(_Owner, _Host, _Port, _Opts) ->
	erlang:nif_error(not_loaded).

%% Body is none, streamed (gun:data/4 follows) or iodata. Returns dirty
%% when the body is too large to copy within a normal scheduler's slice.
-spec request(pid(), reference(), iodata(), iodata(), gun:req_headers(), none | streamed | iodata())
	-> ok | dirty.
request(_ConnPid, _StreamRef, _Method, _Path, _Headers, _Body) ->
	erlang:nif_error(not_loaded).

-spec request_dirty(pid(), reference(), iodata(), iodata(), gun:req_headers(), iodata()) -> ok.
request_dirty(_ConnPid, _StreamRef, _Method, _Path, _Headers, _Body) ->
	erlang:nif_error(not_loaded).

-spec request(pid(), reference(), req_opts(), iodata(), iodata(), gun:req_headers(),
	none | streamed | iodata()) -> ok | dirty.
request(_ConnPid, _StreamRef, _ReqOpts, _Method, _Path, _Headers, _Body) ->
	erlang:nif_error(not_loaded).

-spec request_dirty(pid(), reference(), req_opts(), iodata(), iodata(), gun:req_headers(),
	iodata()) -> ok.
request_dirty(_ConnPid, _StreamRef, _ReqOpts, _Method, _Path, _Headers, _Body) ->
	erlang:nif_error(not_loaded).

-spec data(pid(), reference(), fin | nofin, iodata()) -> ok | dirty.
data(_ConnPid, _StreamRef, _IsFin, _Data) ->
	erlang:nif_error(not_loaded).

-spec data_dirty(pid(), reference(), fin | nofin, iodata()) -> ok.
data_dirty(_ConnPid, _StreamRef, _IsFin, _Data) ->
	erlang:nif_error(not_loaded).

-spec update_flow(pid(), reference(), pos_integer()) -> ok.
update_flow(_ConnPid, _StreamRef, _Increment) ->
	erlang:nif_error(not_loaded).

-spec cancel(pid(), reference()) -> ok.
cancel(_ConnPid, _StreamRef) ->
	erlang:nif_error(not_loaded).

-spec ws_upgrade(pid(), reference(), iodata(), gun:req_headers(), gun:ws_opts()) -> ok.
ws_upgrade(_ConnPid, _StreamRef, _Path, _Headers, _WsOpts) ->
	erlang:nif_error(not_loaded).

%% Returns dirty when the frames are too many or too large to copy within a
%% normal scheduler's time slice; the caller then uses ws_send_dirty/2.
-spec ws_send(pid(), gun:ws_frame() | [gun:ws_frame()]) -> ok | dirty.
ws_send(_ConnPid, _Frames) ->
	erlang:nif_error(not_loaded).

-spec ws_send_dirty(pid(), gun:ws_frame() | [gun:ws_frame()]) -> ok.
ws_send_dirty(_ConnPid, _Frames) ->
	erlang:nif_error(not_loaded).

-spec shutdown(pid()) -> ok.
shutdown(_ConnPid) ->
	erlang:nif_error(not_loaded).

-spec close(pid()) -> ok.
close(_ConnPid) ->
	erlang:nif_error(not_loaded).

-spec info(pid()) -> map() | undefined.
info(_ConnPid) ->
	erlang:nif_error(not_loaded).

%% The API mode the connection was opened in, with the open map's
%% erlang_opts if it had them; undefined once the connection is over.
-spec api(pid()) -> 1 | 2 | {1 | 2, term()} | undefined.
api(_ConnPid) ->
	erlang:nif_error(not_loaded).

%% Called by the process behind ConnPid with its resource: the engine
%% monitors NewOwner instead and sends it the connection's messages.
-spec set_owner(conn(), pid()) -> ok.
set_owner(_Conn, _NewOwner) ->
	erlang:nif_error(not_loaded).

%% Mode 2: the owner died, as the process behind ConnPid saw with its own
%% monitor (the engine sets none in mode 2): the connection closes (close
%% 1001 when upgraded), then the exit order {'$gun_exit', owner_down}.
-spec owner_down(conn()) -> ok.
owner_down(_Conn) ->
	erlang:nif_error(not_loaded).

%% Mode 2's gun:ping/1,2: HTTP/1.1 has no ping, so the connection goes
%% down with {error, {ping_unsupported_by_protocol, PingRef}}.
-spec ping(pid(), reference()) -> ok.
ping(_ConnPid, _PingRef) ->
	erlang:nif_error(not_loaded).

%% Mode 2's gun:stream_info/2 for HTTP/1.1 and WebSocket streams: a
%% stream is running from its request until the message that ends it; a
%% cancelled HTTP stream is stopping until its response is read (or it is
%% dropped); {ok, undefined} for any other, {error, not_connected} while
%% the connection has no socket.
-spec stream_info(pid(), reference())
	-> {ok, undefined | #{ref := reference(), reply_to := pid(), state := running | stopping}}
	| {error, not_connected}.
stream_info(_ConnPid, _StreamRef) ->
	erlang:nif_error(not_loaded).

%% The answer to the engine's {'$gun_retry', Retries}, sent to the process
%% behind ConnPid before each retry when the open map has retry_fun: what
%% Gun 2's retry_fun(Retries, Opts) returned.
-spec retry(pid(), non_neg_integer(), non_neg_integer()) -> ok.
retry(_ConnPid, _Retries, _Timeout) ->
	erlang:nif_error(not_loaded).

%% The answer to the engine's {'$gun_owner_check', MeanBytes}: the bytes
%% estimated to wait in the owner's mailbox.
-spec owner_queue(pid(), non_neg_integer()) -> ok.
owner_queue(_ConnPid, _QueuedBytes) ->
	erlang:nif_error(not_loaded).

%% The answer to the engine's '$gun_drain', by the process behind ConnPid
%% only: sends the burst queued for the owner from this scheduler, a
%% timeslice's worth per call; more when some is left.
-spec drain(conn()) -> more | done.
drain(_Conn) ->
	erlang:nif_error(not_loaded).

%% Connections registered and connection tasks alive, for leak checks.
-spec resources() -> #{connections := non_neg_integer(), tasks := non_neg_integer()}.
resources() ->
	erlang:nif_error(not_loaded).

%% A test hook: the connection's task panics, which must fail that one
%% connection with {error, internal_error} and nothing else.
-spec inject_panic(pid()) -> ok.
inject_panic(_ConnPid) ->
	erlang:nif_error(not_loaded).
