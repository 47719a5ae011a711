%% The benchmark driver: runs each scenario against bench/server (wsbench)
%% with the gun API, measures the ceilings in the same run, and prints one
%% line per scenario. Started by bench/run.sh; see the README's Benchmarks.
%%
%% Sizes come from environment variables (BENCH_QUICK=1 shrinks them all):
%%   BENCH_PUSH_SMALL_N, BENCH_PUSH_LARGE_N, BENCH_SEND_N, BENCH_ECHO_N,
%%   BENCH_FAN_CONNS, BENCH_FAN_MSGS, BENCH_CONNS (e.g. "10000,50000"),
%%   BENCH_ONLY (e.g. "push_small,echo_rtt"), BENCH_PORTS, BENCH_OUT;
%%   BENCH_FLOOR_N, BENCH_FLOOR_ROUNDS (3), BENCH_FLOOR_BATCHES (e.g.
%%   "16,64,256,1024,0"; 0: as many as a timeslice allows) for the floor
%%   scenario;
%%   BENCH_TLS_DIR (ca.pem, server.pem, server.key: made by bench/run.sh)
%%   for the *_tls scenarios;
%%   BENCH_LS_DEBUG=1 prints each long_schedule event as it comes.
-module(gun_bench).
-export([main/0]).

-define(TIMEOUT, 180000).

main() ->
	Quick = env("BENCH_QUICK", "0") =/= "0",
	Q = fun(Full, Small) -> case Quick of true -> Small; false -> Full end end,
	Cfg = #{
		push_small_n => envi("BENCH_PUSH_SMALL_N", Q(1000000, 200000)),
		push_large_n => envi("BENCH_PUSH_LARGE_N", Q(200, 50)),
		send_n => envi("BENCH_SEND_N", Q(500000, 100000)),
		echo_n => envi("BENCH_ECHO_N", Q(10000, 2000)),
		fan_conns => envi("BENCH_FAN_CONNS", Q(1000, 200)),
		fan_msgs => envi("BENCH_FAN_MSGS", Q(1000, 500)),
		floor_n => envi("BENCH_FLOOR_N", Q(1000000, 200000)),
		floor_rounds => envi("BENCH_FLOOR_ROUNDS", 3),
		floor_batches => [list_to_integer(S) || S <- string:lexemes(env("BENCH_FLOOR_BATCHES", "16,64,256,1024,0"), ",")],
		tls_dir => env("BENCH_TLS_DIR", "bench/out/tls"),
		conns => [list_to_integer(S) || S <- string:lexemes(env("BENCH_CONNS", Q("10000,50000", "2000")), ",")],
		ports => envi("BENCH_PORTS", 8),
		wsbench => env("BENCH_WSBENCH", "bench/server/target/release/wsbench"),
		floor => env("BENCH_FLOOR", "bench/floor/target/release/libgun_bench_floor"),
		out => env("BENCH_OUT", "bench/out/latest.md")
	},
	Only = string:lexemes(env("BENCH_ONLY", ""), ","),
	{ok, _} = application:ensure_all_started(gun),
	ok = gun_bench_floor:load(maps:get(floor, Cfg)),
	{Ports, TlsPort} = start_server(Cfg),
	Cfg1 = Cfg#{server_ports => Ports, port => hd(Ports), tls_port => TlsPort},
	start_monitor(),
	%% conns first: its memory deltas need an allocator not yet grown by the others.
	All = [conns, push_small, push_small_tls, push_large, push_large_tls, send_small, send_batch,
		echo_rtt, echo_rtt_tls, fan_in, floor],
	Wanted = [S || S <- All, Only =:= [] orelse lists:member(name(S), Only)],
	io:format("# gun benchmark: ~s~n", [header_line()]),
	Rows = lists:append([run(S, Cfg1) || S <- Wanted]),
	io:format("# ~s~n", [engine_threads()]),
	write_results(maps:get(out, Cfg), Rows),
	ok.

name(A) -> atom_to_list(A).

env(K, D) -> case os:getenv(K) of false -> D; "" -> D; V -> V end.
envi(K, D) -> case os:getenv(K) of false -> D; "" -> D; V -> list_to_integer(V) end.

now_us() -> erlang:monotonic_time(microsecond).

%% ---------------------------------------------------------------- harness

run(Scenario, Cfg) ->
	Busy = wait_quiet(envi("BENCH_QUIET_WAIT", 120) * 1000),
	reset_peak_rss(),
	_ = take_long_schedules(),
	Self = self(),
	{Pid, Ref} = spawn_monitor(fun() -> Self ! {result, self(), scenario(Scenario, Cfg)} end),
	Res = receive
		{result, Pid, R} -> receive {'DOWN', Ref, _, _, _} -> ok end, R;
		{'DOWN', Ref, _, _, Why} -> #{figure => io_lib:format("crashed: ~0p", [Why])}
	after ?TIMEOUT * 2 ->
		exit(Pid, kill),
		#{figure => "timeout"}
	end,
	{LS, LSMax, LSWhere, LSElsewhere} = take_long_schedules(),
	Res1 = case Busy > 0.15 of
		true -> Res#{notes => [maps:get(notes, Res, ""), io_lib:format("; MACHINE BUSY before the run (~w% CPU)", [round(Busy * 100)])]};
		false -> Res
	end,
	Peak = peak_rss_mb(),
	Rows = [R#{name => maps:get(name, R, name(Scenario)), long_schedule => LS, ls_max => LSMax,
		ls_where => LSWhere, ls_elsewhere => LSElsewhere, peak_rss => Peak} || R <- maps:get(rows, Res1, [Res1])],
	[print_row(R) || R <- Rows],
	Rows.

print_row(#{name := N, figure := F, long_schedule := LS, peak_rss := P} = R) ->
	Ceil = maps:get(ceiling, R, "-"),
	Ratio = maps:get(ratio, R, "-"),
	Target = maps:get(target, R, "-"),
	Notes = maps:get(notes, R, ""),
	io:format("~-20s ~-26s ceiling ~-42s ratio ~-16s target ~-14s long_schedule ~w~s  peak_rss ~w MB  ~s~n",
		[N, F, Ceil, Ratio, Target, LS, ls_detail(R), P, Notes]).

ls_detail(R) ->
	[case R of
		#{long_schedule := 0} -> "";
		#{ls_max := M, ls_where := W} -> io_lib:format(" (max ~w ms, ~0p)", [M, W])
	 end,
	 case R of
		#{ls_elsewhere := E} when E > 0 -> io_lib:format(" [+~w outside gun]", [E]);
		_ -> ""
	 end].

pct(A, B) when B > 0 -> io_lib:format("~.1f%", [100 * A / B]);
pct(_, _) -> "-".

fmt_rate(X) when X >= 1.0e6 -> io_lib:format("~.2f M ", [X / 1.0e6]);
fmt_rate(X) when X >= 1.0e3 -> io_lib:format("~.1f k ", [X / 1.0e3]);
fmt_rate(X) -> io_lib:format("~.1f ", [X * 1.0]).

%% ---------------------------------------------------------------- scenarios

scenario(push_small, #{push_small_n := N} = Cfg) ->
	Ceil = ceiling_msgs(1, N),
	Floor = floor_msgs(N),
	{Secs, _} = gun_part(fun() -> push(Cfg, N, 64, "text") end),
	Rate = N / Secs,
	persistent_term:put({?MODULE, push_small}, Rate),
	Native = wsbench(Cfg, ["push", "--n", N, "--size", 64, "--kind", "text"]),
	#{figure => [fmt_rate(Rate), "msgs/s"],
	  ceiling => [fmt_rate(Ceil), "msgs/s (Erlang send)"],
	  ratio => pct(Rate, Ceil), target => ">= 50%",
	  notes => ["a bare native thread's enif_send ", fmt_rate(Floor), "msgs/s (", pct(Floor, Ceil),
		" of the ceiling; gun reaches ", pct(Rate, Floor), " of it); native ws client ",
		fmt_rate(num(<<"msgs_per_s">>, Native)), "msgs/s"]};
scenario(push_large, #{push_large_n := N} = Cfg) ->
	Size = 1 bsl 20,
	Raw = wsbench(Cfg, ["raw", "--bytes", N * Size, "--chunk", 262144, "--repeat", 3]),
	Ceil = num(<<"mb_per_s">>, Raw),
	{Secs, _} = gun_part(fun() -> push(Cfg, N, Size, "binary") end),
	MBs = N * Size / Secs / 1.0e6,
	persistent_term:put({?MODULE, push_large}, MBs),
	Native = wsbench(Cfg, ["push", "--n", N, "--size", Size, "--kind", "binary"]),
	#{figure => io_lib:format("~w MB/s", [round(MBs)]),
	  ceiling => io_lib:format("~w MB/s (raw TCP, native)", [round(Ceil)]),
	  ratio => pct(MBs, Ceil), target => ">= 50%",
	  notes => io_lib:format("native ws client ~w MB/s", [round(num(<<"mb_per_s">>, Native))])};
scenario(send_small, #{send_n := N} = Cfg) ->
	send(Cfg, N, 1);
scenario(send_batch, #{send_n := N} = Cfg) ->
	send(Cfg, N, 100);
scenario(push_small_tls, #{push_small_n := N} = Cfg0) ->
	Cfg = tls(Cfg0),
	{Secs, _} = gun_part(fun() -> push(Cfg, N, 64, "text") end),
	Rate = N / Secs,
	Ceil = num(<<"msgs_per_s">>, wsbench(Cfg, ["push", "--n", N, "--size", 64, "--kind", "text"])),
	#{figure => [fmt_rate(Rate), "msgs/s"],
	  ceiling => [fmt_rate(Ceil), "msgs/s (native rustls client)"],
	  ratio => pct(Rate, Ceil), target => "-",
	  notes => ["wss", vs_plain(push_small, Rate)]};
scenario(push_large_tls, #{push_large_n := N} = Cfg0) ->
	Cfg = tls(Cfg0),
	Size = 1 bsl 20,
	{Secs, _} = gun_part(fun() -> push(Cfg, N, Size, "binary") end),
	MBs = N * Size / Secs / 1.0e6,
	Ceil = num(<<"mb_per_s">>, wsbench(Cfg, ["push", "--n", N, "--size", Size, "--kind", "binary"])),
	#{figure => io_lib:format("~w MB/s", [round(MBs)]),
	  ceiling => io_lib:format("~w MB/s (native rustls client)", [round(Ceil)]),
	  ratio => pct(MBs, Ceil), target => "-",
	  notes => ["wss", vs_plain(push_large, MBs)]};
scenario(echo_rtt_tls, Cfg) ->
	echo_rtt(tls(Cfg), "native rustls", "wss; ");
scenario(floor, #{floor_n := N, floor_batches := Batches, floor_rounds := Rounds}) ->
	Variants = [{built, B} || B <- Batches] ++ [{handover, B} || B <- Batches]
		++ [{copy, B} || B <- Batches, B > 0] ++ [{sent, B} || B <- Batches, B > 0],
	%% Every measure once per round, in turn: the machine's phases then
	%% touch them all alike; each row gives the median of the rounds.
	Runs = lists:append([[{M, floor_measure(M, N)} || M <- [ceiling, thread, ceiling_2, thread_2 | Variants]]
		|| _ <- lists:seq(1, Rounds)]),
	Median = fun(M) -> median([R || {M1, #{rate := R}} <- Runs, M1 =:= M]) end,
	Spread = fun(M) ->
		Rates = [R || {M1, #{rate := R}} <- Runs, M1 =:= M],
		io_lib:format("median of ~w rounds (~s-~smsgs/s)", [length(Rates), fmt_rate(lists:min(Rates)), fmt_rate(lists:max(Rates))])
	end,
	Ceil = Median(ceiling),
	Thread = Median(thread),
	Row = fun(Name, M, Notes) ->
		Rate = Median(M),
		#{name => Name, figure => [fmt_rate(Rate), "msgs/s"],
		  ceiling => [fmt_rate(Ceil), "msgs/s (Erlang send)"], ratio => pct(Rate, Ceil), target => "-",
		  notes => [Spread(M), "; ", Notes]}
	end,
	ThreadRow = Row("floor_thread", thread,
		"a bare native thread building and enif_send-ing the tuples (push_small's floor today)"),
	Ceil2 = Median(ceiling_2),
	Thread2 = Median(thread_2),
	Thread2Row = #{name => "floor_thread_x2", figure => [fmt_rate(Thread2), "msgs/s"],
		ceiling => [fmt_rate(Ceil2), "msgs/s (2 Erlang pairs)"], ratio => pct(Thread2, Ceil2), target => "-",
		notes => [Spread(thread_2), "; two such threads at once, each to its own process (", pct(Thread2, Thread),
			" of one thread; the 2 Erlang pairs: ", Spread(ceiling_2), ")"]},
	#{rows => [ThreadRow, Thread2Row | [Row(floor_name(V), V, floor_notes(V, [X || {M, X} <- Runs, M =:= V], Thread, N))
		|| V <- Variants]]};
scenario(fan_in, #{fan_conns := K, fan_msgs := M} = Cfg) ->
	Ceil = ceiling_msgs(K, M),
	{Secs, Setup} = gun_part(fun() -> fan_in(Cfg, K, M) end),
	Rate = K * M / Secs,
	#{figure => [fmt_rate(Rate), "msgs/s"],
	  ceiling => [fmt_rate(Ceil), "msgs/s (", integer_to_list(K), " Erlang pairs)"],
	  ratio => pct(Rate, Ceil), target => "-",
	  notes => io_lib:format("~w conns x ~w msgs; setup ~.2f s", [K, M, Setup])};
scenario(conns, #{conns := Stages} = Cfg) ->
	gun_part(fun() -> conns(Cfg, Stages) end);
scenario(echo_rtt, Cfg) ->
	echo_rtt(Cfg, "native", "").

%% The *_tls scenarios: the same paths over wss, against the server's TLS port.
tls(#{tls_port := none}) ->
	exit(no_tls_port_see_BENCH_TLS_DIR);
tls(#{tls_port := Port, tls_dir := Dir} = Cfg) ->
	Cfg#{port => Port, ca => filename:join(Dir, "ca.pem")}.

%% The same scenario's plain figure in this run, if it ran.
vs_plain(Scenario, Figure) ->
	case persistent_term:get({?MODULE, Scenario}, undefined) of
		undefined -> "";
		Plain -> io_lib:format("; ~.2fx plain ~s in this run", [Figure / Plain, Scenario])
	end.

echo_rtt(#{echo_n := N} = Cfg, Native, Note) ->
	Echo = fun() -> gun_part(fun() -> gun_echo(Cfg, N) end) end,
	{Same, Cross, Pinned} = native_echo(Cfg, N, Echo),
	NP50 = num(<<"p50_us">>, Same),
	NP99 = num(<<"p99_us">>, Same),
	Rtts = Echo(),
	P50 = nth_pct(Rtts, 0.50),
	P99 = nth_pct(Rtts, 0.99),
	CP50 = num(<<"p50_us">>, Cross),
	CP99 = num(<<"p99_us">>, Cross),
	PinnedNote = case Pinned of
		none -> "";
		_ ->
			PP50 = nth_pct(Pinned, 0.50),
			PP99 = nth_pct(Pinned, 0.99),
			io_lib:format("; gun with the BEAM on that other core: p50 ~.1f us, p99 ~.1f us (~.2fx / ~.2fx that native client)",
				[PP50, PP99, PP50 / CP50, PP99 / CP99])
	end,
	#{figure => io_lib:format("p50 ~.1f us, p99 ~.1f us", [P50, P99]),
	  ceiling => io_lib:format("p50 ~.1f us, p99 ~.1f us (~s)", [NP50, NP99, Native]),
	  ratio => io_lib:format("~.2fx / ~.2fx", [P50 / NP50, P99 / NP99]),
	  target => "<= 1.5x / 2x",
	  notes => [Note, io_lib:format("native client on the server's core (the ceiling); on the other core: p50 ~.1f us, p99 ~.1f us",
		[CP50, CP99]), PinnedNote]}.


%% The native round trip with the client on the server's core and on
%% another one: on this VM a wake-up across cores costs tens of
%% microseconds. Then GunEcho with the whole BEAM (schedulers and the
%% engine's threads) on that other core: the same placement as the
%% second native client, for a like-for-like ratio.
native_echo(Cfg, N, GunEcho) ->
	Os = integer_to_list(persistent_term:get({?MODULE, server_os_pid})),
	Cpus = erlang:system_info(logical_processors_available),
	case Cpus > 1 andalso os:find_executable("taskset") =/= false of
		true ->
			All = io_lib:format("0-~w", [Cpus - 1]),
			_ = os:cmd("taskset -pc 0 " ++ Os),
			Same = wsbench(Cfg, ["echo", "--n", N, "--size", 32], "taskset -c 0 "),
			Cross = wsbench(Cfg, ["echo", "--n", N, "--size", 32], "taskset -c 1 "),
			_ = os:cmd("taskset -a -pc 1 " ++ os:getpid()),
			Pinned = try GunEcho()
			after os:cmd(["taskset -a -pc ", All, " ", os:getpid()])
			end,
			_ = os:cmd(["taskset -pc ", All, " ", Os]),
			{Same, Cross, Pinned};
		false ->
			R = wsbench(Cfg, ["echo", "--n", N, "--size", 32]),
			{R, R, none}
	end.

%% Sorted round-trip times in microseconds, after a tenth as many unmeasured.
gun_echo(Cfg, N) ->
	C = upgrade(Cfg, "/echo"),
	Bin = binary:copy(<<"e">>, 32),
	_ = echo_loop(C, Bin, max(100, N div 10), []),
	Sorted = lists:sort(echo_loop(C, Bin, N, [])),
	gun:close(C),
	Sorted.

%% One Erlang process sending the gun_ws tuples to another, K pairs at once.
ceiling_msgs(K, M) ->
	Self = self(),
	Bin = binary:copy(<<"a">>, 64),
	Fake = self(),
	Pairs = [begin
		R = spawn_link(fun() -> receive go -> ok end, recv_n(Fake, M), Self ! {done, self()} end),
		S = spawn_link(fun() -> receive go -> ok end, send_n(R, M, {gun_ws, Fake, {text, Bin}}) end),
		{S, R}
	end || _ <- lists:seq(1, K)],
	T0 = now_us(),
	[begin R ! go, S ! go end || {S, R} <- Pairs],
	[receive {done, R} -> ok end || {_, R} <- Pairs],
	K * M / ((now_us() - T0) / 1.0e6).

%% A native thread (bench/floor) sending the same tuples to one process:
%% the most any receive path that sends from threads ERTS does not manage
%% can deliver, whatever it does besides.
floor_msgs(N) ->
	floor_msgs(1, N).

%% K native threads at once, each sending N div K tuples to a process of
%% its own: what more engine threads could add on this machine.
floor_msgs(K, N) ->
	Self = self(),
	Fake = self(),
	M = N div K,
	Rs = [spawn_link(fun() -> receive go -> ok end, recv_n(Fake, M), Self ! {done, self()} end)
		|| _ <- lists:seq(1, K)],
	T0 = now_us(),
	[R ! go || R <- Rs],
	[ok = gun_bench_floor:send_from_thread(R, Fake, M, 64) || R <- Rs],
	[receive {done, R} -> ok end || R <- Rs],
	K * M / ((now_us() - T0) / 1.0e6).

%% One run of a floor measure: the Erlang ceiling, the thread floor, or a
%% scheduler-side floor {Kind, Batch}.
floor_measure(ceiling, N) ->
	#{rate => ceiling_msgs(1, N)};
floor_measure(thread, N) ->
	#{rate => floor_msgs(N)};
floor_measure(ceiling_2, N) ->
	#{rate => ceiling_msgs(2, N div 2)};
floor_measure(thread_2, N) ->
	#{rate => floor_msgs(2, N)};
floor_measure({Kind, Batch}, N) ->
	_ = take_long_schedules(),
	bench_monitor ! {only, self()},
	{Us, BuildUs, Calls} = gun_part(fun() -> sched_floor(Kind, Batch, N, 0, 0, 0) end),
	bench_monitor ! {only, all},
	{LS, LSMax, LSWhere, _} = take_long_schedules(),
	#{rate => N / (Us / 1.0e6), build_rate => N / max(1.0e-6, BuildUs / 1.0e6), calls => Calls,
	  long_schedule => LS, ls_max => LSMax, ls_where => LSWhere}.

floor_name({Kind, 0}) -> io_lib:format("sched_~s_slice", [Kind]);
floor_name({Kind, Batch}) -> io_lib:format("sched_~s_~w", [Kind, Batch]).

floor_notes({Kind, _}, [#{calls := Calls} | _] = Runs, Thread, N) ->
	Rate = median([R || #{rate := R} <- Runs]),
	Build = fmt_rate(median([B || #{build_rate := B} <- Runs])),
	How = case Kind of
		built -> "payloads held natively, tuples built on the scheduler";
		handover -> ["one env per tuple, handed to enif_send; a native thread built them at ", Build, "msgs/s"];
		copy -> ["one env per batch, each tuple copied into the caller's env then sent; a native thread built them at ", Build, "msgs/s"];
		sent -> ["one env per batch, each tuple sent from it (one copy, by enif_send: the engine's outbox); a native thread built them at ", Build, "msgs/s"]
	end,
	LS = lists:sum([L || #{long_schedule := L} <- Runs]),
	LSMax = lists:max([M || #{ls_max := M} <- Runs]),
	LSWhere = case [W || #{ls_where := W} <- Runs, W =/= none] of
		[] -> "";
		Ws -> io_lib:format(", mostly in ~0p", [hd(Ws)])
	end,
	io_lib:format("~s of the thread floor; ~w NIF calls a round (~.1f msgs each); long_schedule of the sender ~w (max ~w ms~s) in all rounds; ~s",
		[pct(Rate, Thread), Calls, N / max(1, Calls), LS, LSMax, LSWhere, How]).

median(Xs) ->
	Sorted = lists:sort(Xs),
	Len = length(Sorted),
	case Len rem 2 of
		1 -> lists:nth((Len + 1) div 2, Sorted);
		0 -> (lists:nth(Len div 2, Sorted) + lists:nth(Len div 2 + 1, Sorted)) / 2
	end.

%% A scheduler-side floor: this process (standing in for ConnPid) sends the
%% tuples from NIF calls, Batch per call (0: as many as the timeslice allows),
%% in chunks of at most ?FLOOR_CHUNK made ready beforehand (not timed; the
%% native thread's build rate goes in the notes). The clock runs from the
%% first call to the receiver's last message of each chunk.
-define(FLOOR_CHUNK, 65536).
sched_floor(_Kind, _Batch, 0, Us, BuildUs, Calls) ->
	{Us, BuildUs, Calls};
sched_floor(Kind, Batch, Left, Us, BuildUs, Calls) ->
	K = min(Left, ?FLOOR_CHUNK),
	Self = self(),
	R = spawn_link(fun() -> recv_n(Self, K), Self ! {done, self()} end),
	{Deliver, Bu} = floor_queue(Kind, R, K, Batch),
	garbage_collect(),
	T0 = now_us(),
	C = deliver_loop(Deliver, 0),
	receive {done, R} -> ok end,
	sched_floor(Kind, Batch, Left - K, Us + now_us() - T0, BuildUs + Bu, Calls + C).

floor_queue(built, To, K, Batch) ->
	Q = gun_bench_floor:prepare_built(self(), K, 64),
	{fun() -> gun_bench_floor:deliver_built(To, Q, Batch) end, 0};
floor_queue(handover, To, K, Batch) ->
	{Q, Us} = gun_bench_floor:prepare_handover(self(), K, 64),
	{fun() -> gun_bench_floor:deliver_handover(To, Q, Batch) end, Us};
floor_queue(copy, To, K, Batch) ->
	{Q, Us} = gun_bench_floor:prepare_copy(self(), K, 64, Batch),
	{fun() -> gun_bench_floor:deliver_copy(To, Q) end, Us};
floor_queue(sent, To, K, Batch) ->
	{Q, Us} = gun_bench_floor:prepare_copy(self(), K, 64, Batch),
	{fun() -> gun_bench_floor:deliver_sent(To, Q) end, Us}.

deliver_loop(Deliver, Calls) ->
	case Deliver() of
		{more, _} -> deliver_loop(Deliver, Calls + 1);
		{done, _} -> Calls + 1
	end.

send_n(_, 0, _) -> ok;
send_n(To, N, Msg) -> To ! Msg, send_n(To, N - 1, Msg).

recv_n(_, 0) -> ok;
recv_n(C, N) ->
	receive {gun_ws, C, {_, _}} -> recv_n(C, N - 1)
	after ?TIMEOUT -> exit({timeout, N, left})
	end.

upgrade(Cfg, Path) ->
	upgrade(Cfg, maps:get(port, Cfg), Path).

upgrade(Cfg, Port, Path) ->
	Opts = case Cfg of
		#{ca := CA} -> #{retry => 0, transport => tls, tls_opts => [{cacertfile, CA}]};
		_ -> #{retry => 0}
	end,
	{ok, C} = gun:open("127.0.0.1", Port, Opts),
	{ok, http} = gun:await_up(C, 10000),
	_ = gun:ws_upgrade(C, Path),
	receive {gun_ws_upgrade, C, ok, _} -> C
	after 10000 -> exit(upgrade_timeout)
	end.

push(Cfg, N, Size, Kind) ->
	C = upgrade(Cfg, io_lib:format("/push?n=~w&size=~w&kind=~s", [N, Size, Kind])),
	T0 = now_us(),
	ok = gun:ws_send(C, {text, <<"go">>}),
	recv_n(C, N),
	Secs = (now_us() - T0) / 1.0e6,
	gun:close(C),
	{Secs, C}.

send(Cfg, N, Batch) ->
	Native = wsbench(Cfg, ["send", "--n", N, "--size", 64]),
	Ceil = num(<<"msgs_per_s">>, Native),
	Calls = N div Batch,
	{T0, TSent, T1, Marks} = gun_part(fun() ->
		C = upgrade(Cfg, io_lib:format("/count?n=~w", [N])),
		Frame = {text, binary:copy(<<"s">>, 64)},
		Msg = case Batch of 1 -> Frame; _ -> lists:duplicate(Batch, Frame) end,
		Tenth = max(1, Calls div 10),
		Start = now_us(),
		Spans = send_loop(C, Msg, Calls, Tenth, Start, []),
		Sent = now_us(),
		Ack = integer_to_binary(Calls * Batch),
		receive {gun_ws, C, {text, Ack}} -> ok
		after ?TIMEOUT -> exit(no_ack)
		end,
		Acked = now_us(),
		gun:close(C),
		{Start, Sent, Acked, Spans}
	end),
	Rate = Calls * Batch / ((T1 - T0) / 1.0e6),
	CallRate = Calls * Batch / ((TSent - T0) / 1.0e6),
	%% Time per call in the first and the last tenth of the calls.
	Spans = lists:reverse(Marks),
	Growth = case Spans of
		[First | _] when length(Spans) >= 2 -> io_lib:format("~.2f", [lists:last(Spans) / max(1, First)]);
		_ -> "-"
	end,
	{Target, VsSmall} = case Batch of
		1 ->
			persistent_term:put({?MODULE, send_small}, Rate),
			{">= 1 M msgs/s", ""};
		_ ->
			{">= 2x send_small", case persistent_term:get({?MODULE, send_small}, undefined) of
				undefined -> "";
				Small -> io_lib:format("~.2fx send_small; ", [Rate / Small])
			end}
	end,
	#{figure => [fmt_rate(Rate), "msgs/s"],
	  ceiling => [fmt_rate(Ceil), "msgs/s (native client, same server)"],
	  ratio => pct(Rate, Ceil), target => Target, rate => Rate,
	  notes => io_lib:format("~sws_send returns at ~smsgs/s; time of the last tenth of the calls / the first: ~s",
		[VsSmall, fmt_rate(CallRate), Growth])}.

send_loop(_C, _Msg, 0, _Tenth, _TMark, Marks) -> Marks;
send_loop(C, Msg, Left, Tenth, TMark, Marks) ->
	ok = gun:ws_send(C, Msg),
	case (Left - 1) rem Tenth of
		0 when Left > 1 ->
			T = now_us(),
			send_loop(C, Msg, Left - 1, Tenth, T, [T - TMark | Marks]);
		_ ->
			send_loop(C, Msg, Left - 1, Tenth, TMark, Marks)
	end.

echo_loop(_C, _Bin, 0, Acc) -> Acc;
echo_loop(C, Bin, N, Acc) ->
	T0 = erlang:monotonic_time(nanosecond),
	ok = gun:ws_send(C, {binary, Bin}),
	receive {gun_ws, C, {binary, _}} -> ok
	after 10000 -> exit(echo_timeout)
	end,
	echo_loop(C, Bin, N - 1, [(erlang:monotonic_time(nanosecond) - T0) / 1000 | Acc]).

nth_pct(Sorted, P) ->
	lists:nth(min(length(Sorted), max(1, round(length(Sorted) * P))), Sorted).

fan_in(#{server_ports := Ports} = Cfg, K, M) ->
	Self = self(),
	Path = io_lib:format("/push?n=~w&size=64&kind=text", [M]),
	T0 = now_us(),
	Owners = [spawn_link(fun() ->
		Port = lists:nth(1 + I rem length(Ports), Ports),
		C = upgrade(Cfg, Port, Path),
		Self ! {ready, self()},
		receive go -> ok end,
		ok = gun:ws_send(C, {text, <<"go">>}),
		recv_n(C, M),
		Self ! {done, self()},
		receive stop -> gun:close(C) end
	end) || I <- lists:seq(1, K)],
	[receive {ready, O} -> ok after ?TIMEOUT -> exit(fan_in_setup) end || O <- Owners],
	T1 = now_us(),
	[O ! go || O <- Owners],
	[receive {done, O} -> ok after ?TIMEOUT -> exit(fan_in_timeout) end || O <- Owners],
	T2 = now_us(),
	[O ! stop || O <- Owners],
	{(T2 - T1) / 1.0e6, (T1 - T0) / 1.0e6}.

%% Idle upgraded connections, opened in stages (10,000 then 50,000 in all),
%% at most 256 upgrades in flight; every memory delta is from the same
%% starting point, so no stage reuses memory another freed.
conns(#{server_ports := Ports}, Stages) ->
	MaxFds = proplists:get_value(max_fds, hd(erlang:system_info(check_io))),
	%% Each connection is a descriptor in this process (and one in the server).
	Room = MaxFds - 1000,
	garbage_collect(),
	timer:sleep(500),
	Mem0 = erlang:memory(total),
	Rss0 = rss_kb(),
	{Rows, Conns} = conns_stages(Ports, Stages, Room, MaxFds, Mem0, Rss0, []),
	[gun:close(C) || C <- Conns],
	timer:sleep(1000),
	#{rows => lists:reverse(Rows)}.

conns_stages(_Ports, [], _Room, _MaxFds, _Mem0, _Rss0, Conns) ->
	{[], Conns};
conns_stages(Ports, [Want | Rest], Room, MaxFds, Mem0, Rss0, Conns) ->
	K = min(Want, Room),
	T0 = now_us(),
	{New, Failed} = open_window(Ports, K - length(Conns), 256, 0, 0, #{}, []),
	T1 = now_us(),
	All = New ++ Conns,
	timer:sleep(2000),
	Up = length(All),
	PerBeam = (erlang:memory(total) - Mem0) / max(1, Up) / 1024,
	PerRss = (rss_kb() - Rss0) / max(1, Up),
	Short = case K < Want of
		true -> io_lib:format("; ONLY ~w: the fd limit is ~w and cannot be raised here (ulimit -Hn; no CAP_SYS_RESOURCE)", [K, MaxFds]);
		false -> ""
	end,
	Row = #{name => "conns_" ++ integer_to_list(Want),
		figure => io_lib:format("~.2f KiB/conn (RSS)", [PerRss]),
		ceiling => io_lib:format("BEAM ~.2f KiB/conn", [PerBeam]),
		ratio => "-", target => "<= 7 KiB total",
		notes => io_lib:format("~w up, ~w failed; the last ~w established in ~.2f s (~w conns/s)~s",
			[Up, Failed, length(New), (T1 - T0) / 1.0e6, round(length(New) / max(1.0e-6, (T1 - T0) / 1.0e6)), Short])},
	{Rows, Final} = case K < Want of
		true -> {[], All};
		false -> conns_stages(Ports, Rest, Room, MaxFds, Mem0, Rss0, All)
	end,
	{Rows ++ [Row], Final}.

open_window(_Ports, 0, _W, 0, Failed, _Pending, Up) ->
	{Up, Failed};
open_window(Ports, Left, W, InFlight, Failed, Pending, Up) when Left > 0, InFlight < W ->
	Port = lists:nth(1 + Left rem length(Ports), Ports),
	case gun:open("127.0.0.1", Port, #{retry => 0}) of
		{ok, C} ->
			_ = gun:ws_upgrade(C, "/idle"),
			open_window(Ports, Left - 1, W, InFlight + 1, Failed, Pending#{C => true}, Up);
		{error, _} ->
			open_window(Ports, Left - 1, W, InFlight, Failed + 1, Pending, Up)
	end;
open_window(Ports, Left, W, InFlight, Failed, Pending, Up) ->
	receive
		{gun_up, _, _} ->
			open_window(Ports, Left, W, InFlight, Failed, Pending, Up);
		{gun_ws_upgrade, C, ok, _} when is_map_key(C, Pending) ->
			open_window(Ports, Left, W, InFlight - 1, Failed, maps:remove(C, Pending), [C | Up]);
		{gun_down, C, _, _, _, _} when is_map_key(C, Pending) ->
			open_window(Ports, Left, W, InFlight - 1, Failed + 1, maps:remove(C, Pending), Up);
		{gun_error, C, _, _} when is_map_key(C, Pending) ->
			open_window(Ports, Left, W, InFlight - 1, Failed + 1, maps:remove(C, Pending), Up);
		_Other ->
			open_window(Ports, Left, W, InFlight, Failed, Pending, Up)
	after 30000 ->
		io:format("conns: stuck with ~w in flight~n", [InFlight]),
		{Up, Failed + InFlight}
	end.

%% ---------------------------------------------------------------- the native peer

%% The server's plain ports, and its wss port (none without certificates
%% in BENCH_TLS_DIR).
start_server(#{wsbench := Exe, ports := N, tls_dir := Dir}) ->
	Cert = filename:join(Dir, "server.pem"),
	Key = filename:join(Dir, "server.key"),
	Tls = case filelib:is_regular(Cert) andalso filelib:is_regular(Key) of
		true -> ["--cert", Cert, "--key", Key];
		false -> []
	end,
	Port = open_port({spawn_executable, Exe},
		[{args, ["serve", "--ports", integer_to_list(N) | Tls]}, {line, 4096}, binary, exit_status]),
	server_ports(Port, none).

server_ports(Port, TlsPort) ->
	receive
		{Port, {data, {eol, <<"tls_port ", P/binary>>}}} ->
			server_ports(Port, binary_to_integer(P));
		{Port, {data, {eol, <<"ports ", Ps/binary>>}}} ->
			{os_pid, OsPid} = erlang:port_info(Port, os_pid),
			persistent_term:put({?MODULE, server_os_pid}, OsPid),
			{[binary_to_integer(P) || P <- binary:split(Ps, <<" ">>, [global, trim_all])], TlsPort}
	after 10000 -> exit(server_did_not_start)
	end.

wsbench(Cfg, Args) -> wsbench(Cfg, Args, "").

wsbench(#{wsbench := Exe, port := Port} = Cfg, Args, Prefix) ->
	Tls = case Cfg of #{ca := CA} -> [" --ca ", CA]; _ -> "" end,
	Cmd = lists:flatten([Prefix, Exe, [[" ", to_list(A)] || A <- Args], " --port ", integer_to_list(Port), Tls, " 2>&1"]),
	Out = string:trim(os:cmd(Cmd)),
	case [P || P <- string:lexemes(Out, " \n"), string:find(P, "=") =/= nomatch] of
		[] -> exit({wsbench_failed, Cmd, Out});
		Pairs -> maps:from_list([list_to_tuple([list_to_binary(X) || X <- string:split(P, "=")]) || P <- Pairs])
	end.

to_list(A) when is_integer(A) -> integer_to_list(A);
to_list(A) -> A.

num(Key, Map) ->
	B = maps:get(Key, Map),
	try binary_to_float(B) catch error:badarg -> float(binary_to_integer(B)) end.

%% ---------------------------------------------------------------- system figures

%% Other work on this machine spoils the figures: wait until the CPUs are
%% mostly idle (under 15% busy over half a second), at most Ms. Returns the
%% last busy fraction seen.
wait_quiet(Ms) ->
	Busy = cpu_busy(500),
	case Busy > 0.15 andalso Ms > 0 of
		true ->
			io:format("(machine busy: ~w% CPU; waiting)~n", [round(Busy * 100)]),
			timer:sleep(2000),
			wait_quiet(Ms - 2500);
		false ->
			Busy
	end.

cpu_busy(Ms) ->
	{B0, T0} = cpu_times(),
	timer:sleep(Ms),
	{B1, T1} = cpu_times(),
	(B1 - B0) / max(1, T1 - T0).

cpu_times() ->
	{ok, Bin} = file:read_file("/proc/stat"),
	[Line | _] = binary:split(Bin, <<"\n">>),
	[_ | Fields] = string:lexemes(binary_to_list(Line), " "),
	[User, Nice, Sys, Idle, IoWait | Rest] = [list_to_integer(F) || F <- Fields],
	Total = User + Nice + Sys + Idle + IoWait + lists:sum(Rest),
	{Total - Idle - IoWait, Total}.

%% long_schedule events are counted apart while a scenario runs gun (its
%% gun_part) and while it measures a ceiling or runs a native client: the
%% target is about gun, and the Erlang ceilings flood a mailbox too.
%% {only, Pid} counts the events of that process alone, {only, all} of any.
start_monitor() ->
	Pid = spawn(fun() -> put(only, all), mon_loop(false, #{}) end),
	register(bench_monitor, Pid),
	erlang:system_monitor(Pid, [{long_schedule, 1}]),
	Pid.

gun_part(Fun) ->
	bench_monitor ! {gun_part, true},
	try Fun()
	after bench_monitor ! {gun_part, false}
	end.

mon_loop(InGun, Counts) ->
	receive
		{gun_part, Flag} ->
			mon_loop(Flag, Counts);
		{only, Only} ->
			put(only, Only),
			mon_loop(InGun, Counts);
		{monitor, Pid, long_schedule, Info} ->
			mon_loop(InGun, mon_count(get(only), Pid, Info, InGun, Counts));
		{take, From} ->
			{N, Max, Where} = maps:get(gun, Counts, {0, 0, #{}}),
			{Elsewhere, _, _} = maps:get(elsewhere, Counts, {0, 0, #{}}),
			Top = case lists:reverse(lists:keysort(2, maps:to_list(Where))) of
				[{W, _} | _] -> W;
				[] -> none
			end,
			From ! {long_schedules, N, Max, Top, Elsewhere},
			mon_loop(InGun, #{})
	end.

mon_count(Only, Pid, _Info, _InGun, Counts) when Only =/= all, Only =/= Pid ->
	Counts;
mon_count(_Only, Pid, Info, InGun, Counts) ->
	Part = case InGun of true -> gun; false -> elsewhere end,
	os:getenv("BENCH_LS_DEBUG") =/= false andalso
		io:format("long_schedule (~s) ~p ~0p ~0p~n", [Part, Pid, Info,
			catch process_info(Pid, [initial_call, current_function, total_heap_size, message_queue_len])]),
	T = proplists:get_value(timeout, Info, 0),
	In = proplists:get_value(in, Info),
	{N, Max, Where} = maps:get(Part, Counts, {0, 0, #{}}),
	Counts#{Part => {N + 1, max(Max, T), maps:update_with(In, fun(X) -> X + 1 end, 1, Where)}}.

take_long_schedules() ->
	bench_monitor ! {take, self()},
	receive {long_schedules, N, Max, Top, Elsewhere} -> {N, Max, Top, Elsewhere} end.

status_kb(Field) ->
	{ok, Bin} = file:read_file("/proc/" ++ os:getpid() ++ "/status"),
	[Line] = [L || L <- binary:split(Bin, <<"\n">>, [global]), binary:match(L, Field) =:= {0, byte_size(Field)}],
	[_, V | _] = string:lexemes(binary_to_list(Line), " \t"),
	list_to_integer(V).

rss_kb() -> status_kb(<<"VmRSS:">>).

reset_peak_rss() ->
	_ = file:write_file("/proc/" ++ os:getpid() ++ "/clear_refs", <<"5">>),
	ok.

peak_rss_mb() -> status_kb(<<"VmHWM:">>) div 1024.

%% The engine's threads as the OS names them (tokio's workers, and its
%% blocking pool if it started one): their number is not configurable
%% (native/src/connection/runtime.rs: half the cores, at least one).
engine_threads() ->
	Tasks = filelib:wildcard("/proc/" ++ os:getpid() ++ "/task/*/comm"),
	Names = [string:trim(Name) || T <- Tasks, {ok, Name} <- [file:read_file(T)]],
	Cores = erlang:system_info(logical_processors_available),
	case length([Name || Name <- Names, string:prefix(Name, "gun-nif") =/= nomatch]) of
		0 -> "engine: its runtime did not start (no connection in this run)";
		N -> io_lib:format("engine: ~w threads named gun-nif (tokio workers + blocking pool) on ~w cores", [N, Cores])
	end.

header_line() ->
	io_lib:format("OTP ~s, ~w schedulers, ~s", [erlang:system_info(otp_release),
		erlang:system_info(schedulers_online), string:trim(os:cmd("uname -srm"))]).

%% ---------------------------------------------------------------- results

write_results(Path, Rows) ->
	ok = filelib:ensure_dir(Path),
	Cpu = string:trim(os:cmd("lscpu | sed -n 's/^Model name: *//p' | head -1")),
	Mem = string:trim(os:cmd("free -g | awk '/^Mem:/ {print $2}'")),
	{Commit, Dirty} = case os:getenv("BENCH_COMMIT") of
		V when V =:= false; V =:= "" ->
			{string:trim(os:cmd("git rev-parse --short HEAD 2>/dev/null")),
			 case string:trim(os:cmd("git status --porcelain --untracked-files=no 2>/dev/null | head -1")) of
				"" -> "";
				_ -> " (with uncommitted changes)"
			 end};
		V -> {V, " (exported tree)"}
	end,
	Date = string:trim(os:cmd("date -u '+%Y-%m-%d %H:%M UTC'")),
	Head = io_lib:format(
		"- machine: ~s, ~w cores, ~s GiB RAM; ~s~n- ~s~n- date: ~s~n- commit: ~s~s~n~n"
		"| scenario | figure | ceiling (same run) | ratio | target | long_schedule >1 ms | peak RSS | notes |~n"
		"|---|---|---|---|---|---|---|---|~n",
		[Cpu, erlang:system_info(logical_processors_available), Mem, header_line(), engine_threads(), Date, Commit, Dirty]),
	Lines = [io_lib:format("| ~s | ~s | ~s | ~s | ~s | ~w~s | ~w MB | ~s |~n",
		[N, F, maps:get(ceiling, R, "-"), maps:get(ratio, R, "-"), maps:get(target, R, "-"),
		 LS, ls_detail(R), P, maps:get(notes, R, "")])
		|| #{name := N, figure := F, long_schedule := LS, peak_rss := P} = R <- Rows],
	ok = file:write_file(Path, [Head, Lines]),
	io:format("results written to ~s~n", [Path]).
