%% The floor under push_small (bench/floor): a native thread that only
%% builds and sends gun_ws tuples, as the engine's threads do. Loaded by
%% gun_bench from BENCH_FLOOR; a benchmark aid, not part of gun.
-module(gun_bench_floor).
-export([load/1]).
-export([send_from_thread/4]).

-spec load(file:filename()) -> ok | {error, term()}.
load(Path) ->
	erlang:load_nif(Path, 0).

%% Returns at once; the thread sends N {gun_ws, Conn, {text, <<Size bytes>>}} to To.
-spec send_from_thread(pid(), pid(), pos_integer(), non_neg_integer()) -> ok.
send_from_thread(_To, _Conn, _N, _Size) ->
	erlang:nif_error(not_loaded).
