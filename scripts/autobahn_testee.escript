#!/usr/bin/env escript
%%! -pa _build/default/lib/gun/ebin
%% The Autobahn|Testsuite client testee: the standard fuzzingserver loop
%% (getCaseCount, runCase for each case, updateReports) driven through
%% gun's public API only, so the report judges what a user gets.
%%
%% usage: AUTOBAHN_URL=ws://127.0.0.1:9001 scripts/autobahn_testee.escript [CASES]
%% CASES: optional case indices, e.g. "1-10,17" (1-based, as the server numbers them).
%% Cases 12.* and 13.* are run with compress => true (all cases with
%% AUTOBAHN_COMPRESS_ALL=1). Each case gets a bounded wait.
-mode(compile).

-define(AGENT, "gun-native").
-define(CASE_TIMEOUT, 120000).

main(Args) ->
	{ok, _} = application:ensure_all_started(gun),
	Url = os:getenv("AUTOBAHN_URL", "ws://127.0.0.1:9001"),
	#{host := Host, port := Port} = uri_string:parse(Url),
	Count = binary_to_integer(fetch(Host, Port, "/getCaseCount")),
	Cases = case Args of
		[] -> lists:seq(1, Count);
		[Spec|_] -> [I || I <- ranges(Spec), I >= 1, I =< Count]
	end,
	io:format("testee ~s: server has ~b cases, running ~b~n", [?AGENT, Count, length(Cases)]),
	T0 = erlang:monotonic_time(millisecond),
	lists:foldl(fun(I, N) ->
		run_case(Host, Port, I),
		case N rem 50 =:= 0 orelse N =:= length(Cases) of
			true -> io:format("  ~b/~b cases done (~bs)~n",
				[N, length(Cases), (erlang:monotonic_time(millisecond) - T0) div 1000]);
			false -> ok
		end,
		N + 1
	end, 1, Cases),
	_ = fetch(Host, Port, "/updateReports?agent=" ++ ?AGENT),
	io:format("reports updated~n").

%% One case: echo every text and binary message until the connection is over.
run_case(Host, Port, I) ->
	Info = fetch(Host, Port, "/getCaseInfo?case=" ++ integer_to_list(I)),
	Id = case re:run(Info, <<"\"id\": *\"([0-9.]+)\"">>, [{capture, all_but_first, binary}]) of
		{match, [CaseId]} -> CaseId;
		nomatch -> <<"?">>
	end,
	%% permessage-deflate only for the compression groups, as the suite's
	%% reference testees do; the other groups then also check that nothing
	%% is offered by default.
	Compress = binary:match(Id, [<<"12.">>, <<"13.">>]) =:= {0, 3}
		orelse os:getenv("AUTOBAHN_COMPRESS_ALL") =:= "1",
	WsOpts = #{compress => Compress, keepalive => infinity},
	Path = "/runCase?case=" ++ integer_to_list(I) ++ "&agent=" ++ ?AGENT,
	{ok, ConnPid} = gun:open(Host, Port, #{retry => 0, ws_opts => WsOpts}),
	MRef = monitor(process, ConnPid),
	_ = gun:ws_upgrade(ConnPid, Path),
	Deadline = erlang:monotonic_time(millisecond) + ?CASE_TIMEOUT,
	case echo(ConnPid, MRef, Deadline) of
		ok -> ok;
		timeout ->
			io:format("case ~b (~s): no end after ~b ms~n", [I, Id, ?CASE_TIMEOUT]),
			gun:close(ConnPid),
			receive {'DOWN', MRef, process, _, _} -> ok after 5000 -> ok end
	end,
	flush_gun().

echo(ConnPid, MRef, Deadline) ->
	Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
	receive
		{gun_ws, ConnPid, {text, _} = Frame} ->
			gun:ws_send(ConnPid, Frame),
			echo(ConnPid, MRef, Deadline);
		{gun_ws, ConnPid, {binary, _} = Frame} ->
			gun:ws_send(ConnPid, Frame),
			echo(ConnPid, MRef, Deadline);
		{'DOWN', MRef, process, ConnPid, _} ->
			ok;
		_Other ->
			%% gun_up, gun_ws_upgrade, close frames, gun_error, gun_down:
			%% ConnPid exits after gun_down (retry => 0), which ends the case
			%% once the engine has let the server close TCP first.
			echo(ConnPid, MRef, Deadline)
	after Left ->
		timeout
	end.

%% The one text message of a control endpoint.
fetch(Host, Port, Path) ->
	{ok, ConnPid} = gun:open(Host, Port, #{retry => 0, ws_opts => #{keepalive => infinity}}),
	MRef = monitor(process, ConnPid),
	_ = gun:ws_upgrade(ConnPid, Path),
	Result = fetch_loop(ConnPid, MRef, <<>>),
	flush_gun(),
	Result.

fetch_loop(ConnPid, MRef, Acc) ->
	receive
		{gun_ws, ConnPid, {text, Text}} -> fetch_loop(ConnPid, MRef, Text);
		{'DOWN', MRef, process, ConnPid, _} -> Acc;
		_ -> fetch_loop(ConnPid, MRef, Acc)
	after 600000 ->
		gun:close(ConnPid),
		Acc
	end.

flush_gun() ->
	receive
		Msg when element(1, Msg) =:= gun_up; element(1, Msg) =:= gun_down;
				element(1, Msg) =:= gun_ws; element(1, Msg) =:= gun_error;
				element(1, Msg) =:= gun_ws_upgrade; element(1, Msg) =:= gun_response;
				element(1, Msg) =:= gun_data; element(1, Msg) =:= 'DOWN' ->
			flush_gun()
	after 0 ->
		ok
	end.

ranges(Spec) ->
	lists:append([case string:split(Part, "-") of
		[A, B] -> lists:seq(list_to_integer(A), list_to_integer(B));
		[A] -> [list_to_integer(A)]
	end || Part <- string:lexemes(Spec, ","), Part =/= ""]).
