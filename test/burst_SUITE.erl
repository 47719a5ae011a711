%% The receive path's order. A read that yields many messages is sent to
%% the owner from ConnPid's scheduler (the engine's outbox, drained by
%% gun_nif:drain/1), a lone message straight from the engine's thread:
%% whatever the interleaving of the two, the owner gets every message,
%% in order, and gun_down after the last. A scripted peer (raw_peer)
%% writes numbered messages in random bursts, single frames and
%% trickles, split at random bytes, with random pauses, over many runs
%% from a seed printed first (BURST_SEED=N replays one).
-module(burst_SUITE).
-compile([export_all, nowarn_export_all]).

-include_lib("common_test/include/ct.hrl").
-include("suite_helper.hrl").

-import(suite_helper, [next_from/1, down/2, no_more_from/1]).

-define(RUNS, 40).

suite() ->
	[{timetrap, {minutes, 5}}].

init_per_suite(Config) ->
	{ok, _} = application:ensure_all_started(gun),
	Config.

end_per_suite(_Config) ->
	ok.

all() ->
	[
		numbered_messages_in_order,
		conn_death_mid_burst
	].

%% Every run: a connection, a random script, the owner checking each
%% message against the next number. Across the runs the burst path must
%% have been taken (ConnPid received '$gun_drain'), or the test proves
%% nothing.
numbered_messages_in_order(_) ->
	Seed = seed(),
	ct:pal("burst_SUITE seed: ~p (BURST_SEED=~p replays it)", [Seed, Seed]),
	_ = rand:seed(exsss, Seed),
	{LSock, Port} = raw_peer:listen(),
	Stats = lists:foldl(fun(Run, Acc) ->
		Stat = run(LSock, Port, Seed, Run),
		maps:merge_with(fun(_, A, B) -> A + B end, Acc, Stat)
	end, #{messages => 0, drains => 0}, lists:seq(1, ?RUNS)),
	ct:pal("~p runs: ~p", [?RUNS, Stats]),
	case Stats of
		#{drains := 0} -> ct:fail({burst_path_never_taken, Stats});
		_ -> ok
	end.

%% A new seed each run, printed first; BURST_SEED=N replays one.
seed() ->
	case os:getenv("BURST_SEED") of
		false -> erlang:unique_integer([positive]) bxor erlang:system_time(microsecond);
		Value -> list_to_integer(Value)
	end.

run(LSock, Port, Seed, Run) ->
	{WsOpts, Flow} = ws_opts(),
	Pings = maps:get(silence_pings, WsOpts, true) =:= false,
	Ending = case rand:uniform(2) of 1 -> close_frame; 2 when Pings -> close_frame; 2 -> tcp_close end,
	{Script, Expected} = script(Pings),
	ct:log("run ~p: ~p messages, ws_opts ~p, ending ~p", [Run, length(Expected), WsOpts, Ending]),
	St = #{conn := ConnPid, sock := Sock, req := Req, ref := StreamRef, mref := MRef} =
		raw_peer:open_upgrade(LSock, Port, #{},
			fun(C) -> gun:ws_upgrade(C, "/", [], WsOpts) end),
	Counter = counters:new(1, []),
	Tracer = drain_counter(ConnPid, Counter),
	raw_peer:send(Sock, raw_peer:response_101(Req)),
	{gun_ws_upgrade, ConnPid, ok, _} = next_from(ConnPid),
	Writer = writer(Sock, Script, Ending),
	try
		receive_in_order(St, Expected, Flow),
		expect_end(St, Ending),
		ok = await_writer(Writer)
	catch Class:Reason:Stack ->
		ct:pal("run ~p of seed ~p failed", [Run, Seed]),
		erlang:raise(Class, Reason, Stack)
	end,
	Exit = case Ending of close_frame -> {shutdown, normal}; tcp_close -> {shutdown, closed} end,
	Exit = down(ConnPid, MRef),
	no_more_from(ConnPid),
	unlink(Tracer),
	exit(Tracer, kill),
	_ = StreamRef,
	#{messages => length(Expected), drains => counters:get(Counter, 1)}.

%% Options varied per run: flow (the owner gives one credit back per
%% message), pings delivered, an owner_queue_limit high enough never to
%% trip but asked about on the way.
ws_opts() ->
	Flow = case rand:uniform(4) of 1 -> rand:uniform(64); _ -> undefined end,
	Opts0 = case Flow of undefined -> #{}; _ -> #{flow => Flow} end,
	Opts1 = case rand:uniform(3) of 1 -> Opts0#{silence_pings => false}; _ -> Opts0 end,
	Opts = case rand:uniform(4) of 1 -> Opts1#{owner_queue_limit => 16 * 1024 * 1024}; _ -> Opts1 end,
	{Opts, Flow}.

%% A tracer process counting the '$gun_drain' wake-ups ConnPid receives.
drain_counter(ConnPid, Counter) ->
	Self = self(),
	Tracer = spawn_link(fun() ->
		Self ! {tracing, self()},
		count_drains(Counter)
	end),
	receive {tracing, Tracer} -> ok end,
	1 = erlang:trace(ConnPid, true, ['receive', {tracer, Tracer}]),
	Tracer.

count_drains(Counter) ->
	receive
		{trace, _, 'receive', '$gun_drain'} -> counters:add(Counter, 1, 1);
		_ -> ok
	end,
	count_drains(Counter).

%% The script: a list of writes ({send, Bytes} | {sleep, Ms}) and the
%% messages the owner must get from it, in order.
script(Pings) ->
	Groups = 5 + rand:uniform(35),
	{Writes, Expected, _} = lists:foldl(fun(_, {W, E, N}) ->
		{GW, GE, N1} = group(Pings, N),
		{[GW|W], [GE|E], N1}
	end, {[], [], 1}, lists:seq(1, Groups)),
	{lists:append(lists:reverse(Writes)), lists:append(lists:reverse(Expected))}.

group(Pings, N) ->
	case rand:uniform(10) of
		K when K =< 3 -> single(Pings, N);
		K when K =< 9 -> burst(Pings, N, rand:uniform(rand:uniform(2000)));
		_ -> trickle(Pings, N)
	end.

%% One message, then a pause long enough, often, for the outbox to drain.
single(Pings, N) ->
	{Bytes, Expected} = message(Pings, N),
	{[{send, Bytes}, {sleep, rand:uniform(3) - 1}], [Expected], N + 1}.

%% Many messages written at once, or cut at random bytes.
burst(Pings, N, Count) ->
	{Frames, Expected} = lists:unzip([message(Pings, I) || I <- lists:seq(N, N + Count - 1)]),
	Bytes = iolist_to_binary(Frames),
	Writes = case rand:uniform(2) of
		1 -> [{send, Bytes}];
		2 -> [{send, Piece} || Piece <- cut(Bytes, 65536)]
	end,
	{Writes ++ [{sleep, rand:uniform(2) - 1}], Expected, N + Count}.

%% A few small messages a few bytes at a time (a large one, 7 bytes a
%% write, would take longer than the owner waits).
trickle(Pings, N) ->
	Count = rand:uniform(3),
	{Frames, Expected} = lists:unzip([message(Pings, I, rand:uniform(100) - 1)
		|| I <- lists:seq(N, N + Count - 1)]),
	Pieces = cut(iolist_to_binary(Frames), 7),
	Writes = lists:append([[{send, P}] ++ [{sleep, 1} || rand:uniform(8) =:= 1] || P <- Pieces]),
	{Writes, Expected, N + Count}.

cut(<<>>, _) ->
	[];
cut(Bytes, Max) ->
	Len = min(byte_size(Bytes), rand:uniform(Max)),
	<<Piece:Len/binary, Rest/binary>> = Bytes,
	[Piece|cut(Rest, Max)].

%% Message N: its frames and what the owner gets. A payload starts with
%% its number; now and then a large one (a resource binary from 64 KiB),
%% a fragmented one, or a ping.
message(Pings, N) ->
	message(Pings, N, size()).

message(Pings, N, Size) ->
	Payload = iolist_to_binary([integer_to_binary(N), $., binary:copy(<<"x">>, Size)]),
	case rand:uniform(20) of
		1 when Pings ->
			%% A control frame's payload is 125 bytes at most.
			{raw_peer:frame(9, [integer_to_binary(N), $.]), {ping, N}};
		2 ->
			Opcode = rand:uniform(2),
			{fragments(Opcode, Payload), {data(Opcode), N}};
		_ ->
			Opcode = rand:uniform(2),
			{raw_peer:frame(Opcode, Payload), {data(Opcode), N}}
	end.

data(1) -> text;
data(2) -> binary.

size() ->
	case rand:uniform(300) of
		1 -> 65536 + rand:uniform(100000);
		K when K =< 10 -> rand:uniform(4000);
		_ -> rand:uniform(100) - 1
	end.

fragments(Opcode, Payload) ->
	Cut = rand:uniform(byte_size(Payload) + 1) - 1,
	<<A:Cut/binary, B/binary>> = Payload,
	[raw_peer:frame(#{opcode => Opcode, fin => false, payload => A}),
		raw_peer:frame(#{opcode => 0, fin => true, payload => B})].

%% The peer's writes, from a process of their own: a flow-controlled
%% client stops reading until the owner (this process) gives credits.
writer(Sock, Script, Ending) ->
	Self = self(),
	spawn_link(fun() ->
		lists:foreach(fun
			({send, Bytes}) -> raw_peer:send(Sock, Bytes);
			({sleep, 0}) -> ok;
			({sleep, Ms}) -> receive after Ms -> ok end
		end, Script),
		finish(Sock, Ending),
		Self ! {written, self()}
	end).

%% A close frame, then the client's echo (after any pongs) before the
%% socket is closed, so that nothing unread makes it a reset.
finish(Sock, close_frame) ->
	raw_peer:send(Sock, raw_peer:frame(8, <<1000:16>>)),
	await_close_echo(Sock),
	gen_tcp:close(Sock);
finish(Sock, tcp_close) ->
	gen_tcp:close(Sock).

await_close_echo(Sock) ->
	case raw_peer:recv_frame(Sock, ?BIG_T) of
		#{opcode := 8} -> ok;
		#{opcode := 10} -> await_close_echo(Sock)
	end.

await_writer(Writer) ->
	receive {written, Writer} -> ok
	after ?BIG_T -> error({writer_not_done, Writer})
	end.

receive_in_order(_, [], _) ->
	ok;
receive_in_order(St=#{conn := ConnPid, ref := StreamRef}, [{Kind, N}|Tail], Flow) ->
	Msg = try next_from(ConnPid)
	catch error:Timeout={timeout, _, _} -> ct:fail({waiting_for, Kind, N, Timeout})
	end,
	case Msg of
		{gun_ws, ConnPid, {Kind, Payload}} ->
			Expected = integer_to_binary(N),
			case number(Payload) of
				Expected -> ok;
				Got -> ct:fail({out_of_order, {expected, Kind, N}, {got, Got}})
			end;
		_ ->
			ct:fail({out_of_order, {expected, Kind, N}, {got, summary(Msg)}})
	end,
	case {Kind, Flow} of
		{ping, _} -> ok;
		{_, undefined} -> ok;
		_ -> ok = gun:update_flow(ConnPid, StreamRef, 1)
	end,
	receive_in_order(St, Tail, Flow).

number(Payload) ->
	hd(binary:split(Payload, <<".">>)).

summary({gun_ws, C, {Kind, Payload}}) when is_binary(Payload) -> {gun_ws, C, {Kind, number(Payload)}};
summary(Msg) -> Msg.

%% gun_down after every message, and nothing between.
expect_end(#{conn := ConnPid, ref := StreamRef}, close_frame) ->
	?NEXT(ConnPid, ?BIG_T, {gun_ws, ConnPid, {close, 1000, <<>>}}),
	?NEXT(ConnPid, ?BIG_T, {gun_down, ConnPid, ws, normal, [StreamRef], []});
expect_end(#{conn := ConnPid, ref := StreamRef}, tcp_close) ->
	?NEXT(ConnPid, ?BIG_T, {gun_error, ConnPid, StreamRef, closed}),
	?NEXT(ConnPid, ?BIG_T, {gun_down, ConnPid, ws, closed, [StreamRef], []}).

%% ConnPid killed while a burst waits in its outbox: what the owner got
%% is a prefix 1..K with no gap, nothing comes after, and the engine
%% frees the connection (what was queued is dropped with it).
conn_death_mid_burst(_) ->
	Before = gun_nif:resources(),
	#{conn := ConnPid, sock := Sock, req := Req, mref := MRef} =
		raw_peer:open_upgrade(#{}, fun(C) -> gun:ws_upgrade(C, "/") end),
	raw_peer:send(Sock, raw_peer:response_101(Req)),
	{gun_ws_upgrade, ConnPid, ok, _} = next_from(ConnPid),
	Total = 50000,
	Frames = iolist_to_binary([raw_peer:frame(1, [integer_to_binary(I), $., <<"xxxxxxxx">>])
		|| I <- lists:seq(1, Total)]),
	{_Writer, _} = raw_peer:send_async(Sock, [Frames]),
	{gun_ws, ConnPid, {text, <<"1.", _/binary>>}} = next_from(ConnPid),
	exit(ConnPid, kill),
	killed = down(ConnPid, MRef),
	Got = prefix(ConnPid, 2),
	ct:log("got 1..~p of ~p before the kill took effect", [Got - 1, Total]),
	gen_tcp:close(Sock),
	suite_helper:settle(connections, fun() -> maps:get(connections, gun_nif:resources()) end,
		maps:get(connections, Before)),
	suite_helper:settle(tasks, fun() -> maps:get(tasks, gun_nif:resources()) end,
		maps:get(tasks, Before)).

prefix(ConnPid, N) ->
	receive
		{gun_ws, ConnPid, {text, Payload}} ->
			case number(Payload) =:= integer_to_binary(N) of
				true -> prefix(ConnPid, N + 1);
				false -> ct:fail({gap, {expected, N}, {got, number(Payload)}})
			end;
		Msg when element(2, Msg) =:= ConnPid ->
			ct:fail({after_kill, summary(Msg)})
	after 500 ->
		N
	end.
