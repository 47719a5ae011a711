%% What the Common Test suites share: the Python servers they start, the
%% owner's side of the messages, and the counts leak checks compare.
-module(suite_helper).

%% Servers.
-export([find_script/1]).
-export([start_server/2]).
-export([stop_server/1]).
%% Messages.
-export([next/0]).
-export([next/1]).
-export([monitor_conn/1]).
-export([down/2]).
-export([close/1]).
-export([check_headers/1]).
-export([no_messages_from/1]).
-export([json_value/2]).
%% Resources.
-export([fd_count/0]).
-export([proc_count/0]).
-export([now_ms/0]).

-define(T, 10000).

%% Servers.

%% A script of test/support; GUN_WS_SERVER may name another ws_server.py.
-spec find_script(string()) -> file:filename().
find_script(Name) ->
	Candidates = [override(Name),
		filename:join([filename:dirname(?FILE), "support", Name]),
		filename:join([filename:dirname(code:which(?MODULE)), "support", Name])],
	case [F || F <- Candidates, is_list(F), filelib:is_regular(F)] of
		[Script|_] -> Script;
		[] -> error({script_not_found, Name, Candidates})
	end.

override("ws_server.py") -> os:getenv("GUN_WS_SERVER");
override(_) -> false.

%% Starts a Python server that prints its port on its first line. The
%% port must outlive the caller (init_per_suite's process): a holder
%% process owns it and closes it (the server then sees EOF on stdin and
%% exits) on stop_server/1.
-spec start_server(file:filename(), [string()]) -> {pid(), inet:port_number()}.
start_server(Script, Args) ->
	Parent = self(),
	Holder = spawn(fun() ->
		Port = open_port({spawn_executable, "/usr/bin/python3"},
			[{args, [Script|Args]}, {line, 1024}, use_stdio, binary, exit_status]),
		receive
			{Port, {data, {eol, Line}}} ->
				Parent ! {self(), {ok, binary_to_integer(Line)}},
				holder_loop(Port);
			{Port, {exit_status, Status}} ->
				Parent ! {self(), {error, {server_exited, Script, Args, Status}}}
		after ?T ->
			Parent ! {self(), {error, {server_printed_no_port, Script, Args}}}
		end
	end),
	receive
		{Holder, {ok, Port}} -> {Holder, Port};
		{Holder, Error} -> error(Error)
	after 2 * ?T ->
		error({server_start_timeout, Script, Args})
	end.

holder_loop(Port) ->
	receive
		stop ->
			port_close(Port);
		{Port, {exit_status, Status}} ->
			exit({server_exited, Status});
		{Port, {data, _}} ->
			holder_loop(Port)
	end.

-spec stop_server(pid()) -> ok.
stop_server(Holder) ->
	MRef = monitor(process, Holder),
	Holder ! stop,
	receive {'DOWN', MRef, process, Holder, _} -> ok after ?T -> error(server_did_not_stop) end.

%% Messages.

%% The next message that is not a monitor's 'DOWN' (those are taken with down/2).
-spec next() -> term().
next() ->
	next(?T).

-spec next(timeout()) -> term().
next(Timeout) ->
	receive
		Msg when not (is_tuple(Msg) andalso element(1, Msg) =:= 'DOWN') ->
			Msg
	after Timeout ->
		error({timeout, {mailbox, element(2, process_info(self(), messages))}})
	end.

%% A monitor in place when this returns. The engine's exit order reaches
%% ConnPid from a native thread, not ordered after our monitor signal; a
%% process_info round trip is ordered after it.
-spec monitor_conn(pid()) -> reference().
monitor_conn(ConnPid) ->
	MRef = monitor(process, ConnPid),
	_ = erlang:process_info(ConnPid, status),
	MRef.

-spec down(pid(), reference()) -> term().
down(Pid, MRef) ->
	receive
		{'DOWN', MRef, process, Pid, Reason} -> Reason
	after ?T ->
		error({timeout_waiting_for_exit, Pid, {mailbox, element(2, process_info(self(), messages))}})
	end.

%% gun:close/1, and ConnPid is gone with reason normal.
-spec close(pid()) -> ok.
close(ConnPid) ->
	MRef = monitor_conn(ConnPid),
	ok = gun:close(ConnPid),
	normal = down(ConnPid, MRef),
	ok = gun:flush(ConnPid).

%% Response headers as the contract has them: a list of binary pairs,
%% names in lower case.
-spec check_headers(term()) -> ok.
check_headers(Headers) when is_list(Headers) ->
	lists:foreach(fun
		({N, V}) when is_binary(N), is_binary(V) ->
			case string:lowercase(N) of
				N -> ok;
				_ -> error({header_name_not_lowercase, N, Headers})
			end;
		(H) ->
			error({bad_header, H, Headers})
	end, Headers);
check_headers(Headers) ->
	error({headers_not_a_list, Headers}).

-spec no_messages_from(pid()) -> ok.
no_messages_from(ConnPid) ->
	{messages, Msgs} = process_info(self(), messages),
	case [M || M <- Msgs, is_tuple(M), tuple_size(M) >= 2, element(2, M) =:= ConnPid] of
		[] -> ok;
		Left -> error({unexpected_messages, Left})
	end.

%% A string value from the JSON the test servers answer with.
-spec json_value(binary(), iodata()) -> binary().
json_value(Json, Name) ->
	Prefix = iolist_to_binary([$", Name, $", $:, $"]),
	case binary:split(Json, Prefix) of
		[_, Rest] -> hd(binary:split(Rest, <<"\"">>));
		[_] -> error({no_value_in_json, Name, Json})
	end.

%% Resources.

-spec fd_count() -> non_neg_integer().
fd_count() ->
	{ok, Fds} = file:list_dir("/proc/self/fd"),
	length(Fds).

-spec proc_count() -> non_neg_integer().
proc_count() ->
	erlang:system_info(process_count).

-spec now_ms() -> integer().
now_ms() ->
	erlang:monotonic_time(millisecond).
