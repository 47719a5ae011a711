%% Floors under push_small (bench/floor): a native thread that only builds
%% and sends gun_ws tuples, as the engine's threads do, and NIF calls that
%% send them from a scheduler, a batch per call. Loaded by gun_bench from
%% BENCH_FLOOR; a benchmark aid, not part of gun.
-module(gun_bench_floor).
-export([load/1]).
-export([send_from_thread/4]).
-export([prepare_built/3, deliver_built/3]).
-export([prepare_handover/3, deliver_handover/3]).
-export([prepare_copy/4, deliver_copy/2, deliver_sent/2]).

-type queue() :: reference().
%% What a deliver_* call did: sent Sent; done when nothing is left.
-type status() :: {more | done, non_neg_integer()}.
-export_type([queue/0, status/0]).

-spec load(file:filename()) -> ok | {error, term()}.
load(Path) ->
	erlang:load_nif(Path, 0).

%% Returns at once; the thread sends N {gun_ws, Conn, {text, <<Size bytes>>}} to To.
-spec send_from_thread(pid(), pid(), pos_integer(), non_neg_integer()) -> ok.
send_from_thread(_To, _Conn, _N, _Size) ->
	erlang:nif_error(not_loaded).

%% N payloads of Size bytes held natively, for tuples built on the scheduler.
-spec prepare_built(pid(), non_neg_integer(), non_neg_integer()) -> queue().
prepare_built(_Conn, _N, _Size) ->
	erlang:nif_error(not_loaded).

%% Sends the next Batch tuples to To (0: as many as the timeslice allows).
-spec deliver_built(pid(), queue(), non_neg_integer()) -> status().
deliver_built(_To, _Queue, _Batch) ->
	erlang:nif_error(not_loaded).

%% N tuples built on a native thread, each in an env of its own; with the
%% microseconds the thread took.
-spec prepare_handover(pid(), non_neg_integer(), non_neg_integer()) -> {queue(), non_neg_integer()}.
prepare_handover(_Conn, _N, _Size) ->
	erlang:nif_error(not_loaded).

-spec deliver_handover(pid(), queue(), non_neg_integer()) -> status().
deliver_handover(_To, _Queue, _Batch) ->
	erlang:nif_error(not_loaded).

%% N tuples built on a native thread, Batch to an env.
-spec prepare_copy(pid(), non_neg_integer(), non_neg_integer(), pos_integer()) -> {queue(), non_neg_integer()}.
prepare_copy(_Conn, _N, _Size, _Batch) ->
	erlang:nif_error(not_loaded).

%% Copies the next env's tuples to the caller and sends them to To.
-spec deliver_copy(pid(), queue()) -> status().
deliver_copy(_To, _Queue) ->
	erlang:nif_error(not_loaded).

%% Sends the next env's tuples to To, each copied once by enif_send.
-spec deliver_sent(pid(), queue()) -> status().
deliver_sent(_To, _Queue) ->
	erlang:nif_error(not_loaded).
