%% What the Common Test suites share: the Python servers they start, the
%% client's side of a connection to them, the owner's side of the
%% messages, and the counts leak checks compare. suite_helper.hrl has the
%% macros that go with them.
-module(suite_helper).

%% Servers.
-export([find_script/1]).
-export([start_server/2]).
-export([stop_server/1]).
%% Connections to the Python servers.
-export([open_up/3]).
-export([upgrade/2]).
-export([upgrade/3]).
-export([echo_check/1]).
-export([echo/2]).
-export([lastclose/2]).
-export([cycles/2]).
%% Messages.
-export([next/0]).
-export([next/1]).
-export([next_from/1]).
-export([next_from/2]).
-export([monitor_conn/1]).
-export([down/2]).
-export([close/1]).
-export([check_headers/1]).
-export([header/2]).
-export([no_messages_from/1]).
-export([no_more_from/1]).
-export([flush_mailbox/0]).
-export([json_value/2]).
-export([response/3]).
-export([body/2]).
-export([body/3]).
-export([ok_body/2]).
-export([trailer_body/2]).
%% Resources.
-export([fd_count/0]).
-export([proc_count/0]).
-export([rss/0]).
-export([settle/3]).
-export([settle/4]).
-export([snapshot/0]).
-export([no_leak/1]).
-export([hibernated/1]).
%% Time and names.
-export([now_ms/0]).
-export([ms_since/1]).
-export([id/0]).
-export([failed_start/3]).

-include("suite_helper.hrl").

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

%% Connections to the Python servers.

%% gun:open/3 (retry => 0 unless Opts says otherwise) and gun_up.
-spec open_up(inet:hostname() | inet:ip_address(), inet:port_number(), map()) -> pid().
open_up(Host, Port, Opts) ->
	{ok, ConnPid} = gun:open(Host, Port, maps:merge(#{retry => 0}, Opts)),
	case gun:await_up(ConnPid, ?T) of
		{ok, http} -> ConnPid;
		Error -> error({await_up, Host, Port, Opts, Error})
	end.

%% The upgrade is the next message, with the contract's headers.
-spec upgrade(pid(), iodata()) -> reference().
upgrade(ConnPid, Path) ->
	upgrade(ConnPid, Path, []).

-spec upgrade(pid(), iodata(), [{iodata(), iodata()}]) -> reference().
upgrade(ConnPid, Path, Headers) ->
	StreamRef = gun:ws_upgrade(ConnPid, Path, Headers),
	true = is_reference(StreamRef),
	{gun_ws_upgrade, ConnPid, ok, RespHeaders} = next(),
	ok = check_headers(RespHeaders),
	StreamRef.

%% An upgraded connection to an echo path echoes a text of its own next.
-spec echo_check(pid()) -> ok.
echo_check(ConnPid) ->
	echo(ConnPid, list_to_binary("check " ++ id())).

%% Text sent on an upgraded connection to an echo path comes back next.
-spec echo(pid(), binary()) -> ok.
echo(ConnPid, Text) ->
	ok = gun:ws_send(ConnPid, {text, Text}),
	{gun_ws, ConnPid, {text, Text}} = next(),
	ok.

%% How ws_server.py saw the connection tagged Id end: the client's close
%% code as a binary (<<"1005">>: empty close, <<"1006">>: no close frame,
%% <<"none">>: unknown). ConnPid is a new connection to that server, up,
%% with retry => 0: the server closes it (1000), which ends it. Messages
%% from other connections stay in the mailbox.
-spec lastclose(pid(), string()) -> binary().
lastclose(ConnPid, Id) ->
	MRef = monitor_conn(ConnPid),
	StreamRef = gun:ws_upgrade(ConnPid, "/lastclose?id=" ++ Id),
	{gun_ws_upgrade, ConnPid, ok, _} = next_from(ConnPid),
	%% The server waits up to 10 s for the connection tagged Id to end.
	{gun_ws, ConnPid, {text, Code}} = next_from(ConnPid, 3 * ?T),
	{gun_ws, ConnPid, {close, 1000, <<>>}} = next_from(ConnPid),
	{gun_down, ConnPid, ws, normal, [StreamRef], []} = next_from(ConnPid),
	{shutdown, normal} = down(ConnPid, MRef),
	Code.

%% N open/upgrade/echo/close cycles against ws_server.py on Port, each
%% ending with ConnPid gone (normal) and an empty mailbox.
-spec cycles(inet:port_number(), non_neg_integer()) -> ok.
cycles(_, 0) ->
	ok;
cycles(Port, N) ->
	{ok, ConnPid} = gun:open("127.0.0.1", Port, #{retry => 0}),
	MRef = monitor_conn(ConnPid),
	{ok, http} = gun:await_up(ConnPid, ?T),
	_ = gun:ws_upgrade(ConnPid, "/echo"),
	receive {gun_ws_upgrade, ConnPid, ok, _} -> ok after ?T -> error({upgrade_timeout, N}) end,
	ok = gun:ws_send(ConnPid, {text, <<"ping">>}),
	receive {gun_ws, ConnPid, {text, <<"ping">>}} -> ok after ?T -> error({echo_timeout, N}) end,
	%% Nothing ended it so far.
	receive {'DOWN', MRef, process, ConnPid, Early} -> error({exited_before_close, N, Early}) after 0 -> ok end,
	ok = gun:close(ConnPid),
	receive
		{'DOWN', MRef, process, ConnPid, normal} -> ok;
		{'DOWN', MRef, process, ConnPid, Reason} ->
			%% Let whatever the engine sent about it arrive.
			Down = receive D = {gun_down, ConnPid, _, _, _, _} -> D after 1000 -> no_gun_down end,
			error({bad_exit_after_close, N, Reason, Down, {mailbox, mailbox()}})
	after ?T ->
		error({close_timeout, N, {conn, erlang:process_info(ConnPid, [status, current_function, message_queue_len])},
			{mailbox, mailbox()}})
	end,
	ok = gun:flush(ConnPid),
	{messages, []} = process_info(self(), messages),
	cycles(Port, N - 1).

%% Messages.

%% The next message that is not a monitor's 'DOWN' (those are taken with
%% down/2), in mode 1's form (mode:canonical/1) whatever the mode.
-spec next() -> term().
next() ->
	next(?T).

-spec next(timeout()) -> term().
next(Timeout) ->
	receive
		Msg when not (is_tuple(Msg) andalso element(1, Msg) =:= 'DOWN') ->
			mode:canonical(Msg)
	after Timeout ->
		error({timeout, {mailbox, mailbox()}})
	end.

%% The next message from ConnPid, in arrival order (all gun_* messages
%% carry ConnPid as their second element; 'DOWN' messages do not);
%% messages from elsewhere stay in the mailbox.
-spec next_from(pid()) -> tuple().
next_from(ConnPid) ->
	next_from(ConnPid, ?T).

-spec next_from(pid(), timeout()) -> tuple().
next_from(ConnPid, Timeout) ->
	receive
		Msg when is_tuple(Msg), tuple_size(Msg) >= 2, element(2, Msg) =:= ConnPid ->
			mode:canonical(Msg)
	after Timeout ->
		error({timeout, {no_message_from, ConnPid, Timeout}, {mailbox, mailbox()}})
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
		error({timeout_waiting_for_exit, Pid, {alive, erlang:is_process_alive(Pid)},
			{mailbox, mailbox()}})
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

%% The value of a response header (names as check_headers/1 has them).
-spec header(binary(), [{binary(), binary()}]) -> binary().
header(Name, Headers) ->
	case lists:keyfind(Name, 1, Headers) of
		{_, Value} -> Value;
		false -> error({no_header, Name, Headers})
	end.

-spec no_messages_from(pid()) -> ok.
no_messages_from(ConnPid) ->
	case [M || M <- mailbox(), is_tuple(M), tuple_size(M) >= 2, element(2, M) =:= ConnPid] of
		[] -> ok;
		Left -> error({unexpected_messages, Left})
	end.

%% A final negative check: nothing else arrives from ConnPid. The short
%% wait only gives a stray message a chance to show up; no result depends
%% on it.
-spec no_more_from(pid()) -> ok.
no_more_from(ConnPid) ->
	receive after 100 -> ok end,
	no_messages_from(ConnPid).

-spec flush_mailbox() -> ok.
flush_mailbox() ->
	receive _ -> flush_mailbox() after 0 -> ok end.

mailbox() ->
	element(2, process_info(self(), messages)).

%% A string value from the JSON the test servers answer with.
-spec json_value(binary(), iodata()) -> binary().
json_value(Json, Name) ->
	Prefix = iolist_to_binary([$", Name, $", $:, $"]),
	case binary:split(Json, Prefix) of
		[_, Rest] -> hd(binary:split(Rest, <<"\"">>));
		[_] -> error({no_value_in_json, Name, Json})
	end.

%% The next message is the response for StreamRef: returns {IsFin, Headers}.
-spec response(pid(), reference(), 100..599) -> {fin | nofin, [{binary(), binary()}]}.
response(ConnPid, StreamRef, Status) ->
	case next() of
		{gun_response, ConnPid, StreamRef, IsFin, Status, Headers} ->
			ok = check_headers(Headers),
			{IsFin, Headers};
		Other ->
			error({expected_response, StreamRef, Status, Other})
	end.

%% The next messages are StreamRef's body: gun_data nofin* then gun_data
%% fin, each within Timeout (?T by default).
-spec body(pid(), reference()) -> binary().
body(ConnPid, StreamRef) ->
	body(ConnPid, StreamRef, ?T).

-spec body(pid(), reference(), timeout()) -> binary().
body(ConnPid, StreamRef, Timeout) ->
	body(ConnPid, StreamRef, Timeout, []).

body(ConnPid, StreamRef, Timeout, Acc) ->
	case next(Timeout) of
		{gun_data, ConnPid, StreamRef, nofin, Data} when is_binary(Data) ->
			body(ConnPid, StreamRef, Timeout, [Data|Acc]);
		{gun_data, ConnPid, StreamRef, fin, Data} when is_binary(Data) ->
			iolist_to_binary(lists:reverse([Data|Acc]));
		Other ->
			error({expected_data, StreamRef, Other})
	end.

%% A whole 200 response with a body: returns {Headers, Body}.
-spec ok_body(pid(), reference()) -> {[{binary(), binary()}], binary()}.
ok_body(ConnPid, StreamRef) ->
	{nofin, Headers} = response(ConnPid, StreamRef, 200),
	{Headers, body(ConnPid, StreamRef)}.

%% The body of http_server.py's /chunked?trailers=1 response, whose
%% trailers must follow it.
-spec trailer_body(pid(), reference()) -> binary().
trailer_body(ConnPid, StreamRef) ->
	trailer_body(ConnPid, StreamRef, <<>>).

trailer_body(ConnPid, StreamRef, Acc) ->
	case next() of
		{gun_data, ConnPid, StreamRef, nofin, Data} ->
			trailer_body(ConnPid, StreamRef, <<Acc/binary, Data/binary>>);
		{gun_trailers, ConnPid, StreamRef, [{<<"x-checksum">>, <<"3a2b">>}, {<<"x-two">>, <<"2">>}]} ->
			Acc;
		Other ->
			error({unexpected, Other})
	end.

%% Resources.

-spec fd_count() -> non_neg_integer().
fd_count() ->
	{ok, Fds} = file:list_dir("/proc/self/fd"),
	length(Fds).

%% The VM's resident set, in bytes (native allocations included, which
%% erlang:memory/1 does not see).
-spec rss() -> non_neg_integer().
rss() ->
	{ok, Status} = file:read_file("/proc/self/status"),
	[_, Rest] = binary:split(Status, <<"VmRSS:">>),
	[Kb|_] = string:lexemes(Rest, " \t\n"),
	binary_to_integer(Kb) * 1024.

-spec proc_count() -> non_neg_integer().
proc_count() ->
	erlang:system_info(process_count).

%% Polls Fun() every 100 ms, up to Tries times (50 by default: 5 s),
%% until its value is Ok: at most Ok when Ok is a number, else Ok(Value).
%% What names the value in the error.
-spec settle(atom(), fun(() -> V), number() | fun((V) -> boolean())) -> ok.
settle(What, Fun, Ok) ->
	settle(What, Fun, Ok, 50).

-spec settle(atom(), fun(() -> V), number() | fun((V) -> boolean()), non_neg_integer()) -> ok.
settle(What, Fun, Ok, Tries) ->
	V = Fun(),
	case settled(V, Ok) of
		true -> ok;
		false when Tries =:= 0 -> error({leak, What, {now, V}, {wanted, Ok}});
		false ->
			receive after 100 -> ok end,
			settle(What, Fun, Ok, Tries - 1)
	end.

settled(V, Limit) when is_number(Limit) -> V =< Limit;
settled(V, Ok) -> Ok(V).

%% What this node holds: the engine's connections and tasks, descriptors
%% and processes.
-spec snapshot() -> map().
snapshot() ->
	#{resources => gun_nif:resources(), fds => fd_count(), procs => proc_count()}.

%% Back to (at most) a snapshot/0, polled for up to 5 s.
-spec no_leak(map()) -> ok.
no_leak(#{resources := #{connections := Conns, tasks := Tasks}, fds := Fds, procs := Procs}) ->
	ok = settle(connections, fun() -> maps:get(connections, gun_nif:resources()) end, Conns),
	ok = settle(tasks, fun() -> maps:get(tasks, gun_nif:resources()) end, Tasks),
	ok = settle(fds, fun fd_count/0, Fds),
	ok = settle(procs, fun proc_count/0, Procs).

%% Polls until ConnPid, on whichever node, sleeps in erlang:hibernate/3.
-spec hibernated(pid()) -> ok.
hibernated(ConnPid) ->
	hibernated(ConnPid, 50).

hibernated(ConnPid, 0) ->
	error({not_hibernated, erpc:call(node(ConnPid), erlang, process_info,
		[ConnPid, [current_function, status]])});
hibernated(ConnPid, Tries) ->
	case erpc:call(node(ConnPid), erlang, process_info, [ConnPid, current_function]) of
		{current_function, {erlang, hibernate, 3}} -> ok;
		_ -> receive after 100 -> ok end, hibernated(ConnPid, Tries - 1)
	end.

%% Time and names.

-spec now_ms() -> integer().
now_ms() ->
	erlang:monotonic_time(millisecond).

%% Milliseconds since T0, a now_ms/0.
-spec ms_since(integer()) -> integer().
ms_since(T0) ->
	now_ms() - T0.

%% A name no other call returns (a server-side tag, a text to echo).
-spec id() -> string().
id() ->
	integer_to_list(erlang:unique_integer([positive])).

%% How a connection that fails before it is up ends, through gun:open/3
%% and through a link. A failure found without touching the network can
%% end ConnPid before gun:await_up/1 monitors it (then {error, noproc},
%% doc/behaviour.md); the link sees the exit reason whatever the timing.
-spec failed_start(gun:host(), inet:port_number(), gun:opts()) -> any().
failed_start(Host, Port, Opts) ->
	{ok, ConnPid} = gun:open(Host, Port, Opts#{retry => 0}),
	{error, Reason} = gun:await_up(ConnPid),
	Trap = process_flag(trap_exit, true),
	{ok, Linked} = gun_conn:start_link(self(), Host, Port, Opts#{retry => 0}),
	Exit = receive {'EXIT', Linked, E} -> E after 10000 -> error({no_exit, Linked}) end,
	process_flag(trap_exit, Trap),
	case Reason of
		noproc -> ok;
		Exit -> ok
	end,
	Exit.
