%% ConnPid as an OTP citizen on one node (issue 16): connections are
%% children of gun_sup, application:stop(gun) ends them all and frees
%% every native resource, the application starts again; sys and proc_lib
%% conventions (get_state, get_status, suspend/resume, initial_call,
%% crash reports naming the host and port); an idle connection
%% hibernates; reloading the code with connections open.
%%
%% Run: rebar3 ct --suite test/otp_SUITE
-module(otp_SUITE).
-compile([export_all, nowarn_export_all]).

-include_lib("common_test/include/ct.hrl").

-import(suite_helper, [
	find_script/1, start_server/2, stop_server/1, next/0, monitor_conn/1, down/2,
	close/1, echo/2, flush_mailbox/0, settle/4, snapshot/0, no_leak/1, hibernated/1
]).

-define(T, 10000).

suite() ->
	[{timetrap, {minutes, 3}}].

all() ->
	[
		%% Supervision.
		children_of_gun_sup,
		app_stop_closes_all,
		%% sys and proc_lib.
		sys_get_state,
		sys_get_status,
		sys_suspend_resume,
		sys_log_leaves_no_state,
		initial_call,
		crash_report_failed_start,
		crash_report_sys_terminate,
		idle_hibernates,
		%% Hot code loading.
		reload_gun_nif_refused,
		reload_erlang_modules
	].

init_per_suite(Config) ->
	{ok, _} = application:ensure_all_started(gun),
	{Holder, Port} = start_server(find_script("ws_server.py"), []),
	%% Warm-up: the engine's runtime opens its own descriptors on first use.
	close(upgraded(Port)),
	[{ws_port, Port}, {ws_holder, Holder}|Config].

end_per_suite(Config) ->
	ok = stop_server(?config(ws_holder, Config)).

init_per_testcase(_, Config) ->
	flush_mailbox(),
	Config.

%% Whatever a case did, the application runs for the next one.
end_per_testcase(_, _) ->
	{ok, _} = application:ensure_all_started(gun),
	ok.

%% Helpers.

upgraded(Port) ->
	{ok, ConnPid} = gun:open("127.0.0.1", Port, #{retry => 0}),
	{ok, http} = gun:await_up(ConnPid, ?T),
	_ = gun:ws_upgrade(ConnPid, "/echo"),
	{gun_ws_upgrade, ConnPid, ok, _} = next(),
	ConnPid.

%% A logger handler sending every event to the test process.
log(Event, #{config := #{pid := Pid}}) ->
	Pid ! {logged, Event}.

capture_logs(Fun) ->
	ok = logger:add_handler(?MODULE, ?MODULE, #{config => #{pid => self()}}),
	try Fun() after logger:remove_handler(?MODULE) end.

%% The proc_lib crash report of Pid, from the captured events.
crash_report(Pid) ->
	receive
		{logged, #{msg := {report, #{label := {proc_lib, crash}, report := [Crasher|_]}}}} ->
			case proplists:get_value(pid, Crasher) of
				Pid -> Crasher;
				_ -> crash_report(Pid)
			end
	after ?T ->
		error({no_crash_report, Pid})
	end.

%% Supervision.

%% gun:open/2,3 starts the connection under gun_sup, which does not
%% restart it (temporary, as in Gun).
children_of_gun_sup(Config) ->
	ConnPid = upgraded(?config(ws_port, Config)),
	Sup = whereis(gun_sup),
	true = lists:member({undefined, ConnPid, worker, [gun_conn]}, supervisor:which_children(gun_sup)),
	{links, Links} = erlang:process_info(ConnPid, links),
	true = lists:member(Sup, Links),
	{ok, #{restart := temporary, start := {gun_conn, start_link, _}}} =
		supervisor:get_childspec(gun_sup, ConnPid),
	close(ConnPid),
	false = lists:keymember(ConnPid, 2, supervisor:which_children(gun_sup)).

%% application:stop(gun) with connections open (upgraded, plain HTTP,
%% one still connecting): every ConnPid exits, every socket is closed,
%% the engine holds no connection and runs no task for them; then the
%% application starts again and connections work.
app_stop_closes_all(Config) ->
	Port = ?config(ws_port, Config),
	Snap = snapshot(),
	Upgraded = [upgraded(Port) || _ <- lists:seq(1, 5)],
	Http = [begin
		{ok, C} = gun:open("127.0.0.1", Port, #{retry => 0}),
		{ok, http} = gun:await_up(C, ?T),
		C
	end || _ <- lists:seq(1, 3)],
	%% Nothing listens there: it keeps retrying until stopped.
	{ok, Retrying} = gun:open("127.0.0.1", 1, #{retry => 1000, retry_timeout => 100}),
	Conns = Upgraded ++ Http ++ [Retrying],
	#{connections := N} = gun_nif:resources(),
	true = N >= length(Conns),
	MRefs = [{C, monitor_conn(C)} || C <- Conns],
	ok = application:stop(gun),
	[shutdown = down(C, MRef) || {C, MRef} <- MRefs],
	undefined = whereis(gun_sup),
	no_leak(Snap#{procs := maps:get(procs, Snap) - 2}),
	ok = application:start(gun),
	ConnPid = upgraded(Port),
	ok = echo(ConnPid, <<"started again">>),
	close(ConnPid),
	flush_mailbox(),
	no_leak(Snap).

%% sys and proc_lib.

sys_get_state(Config) ->
	ConnPid = upgraded(?config(ws_port, Config)),
	State = sys:get_state(ConnPid),
	State = sys:get_state(ConnPid, 1000),
	conn = element(1, State),
	true = lists:member(self(), tuple_to_list(State)),
	ok = echo(ConnPid, <<"after get_state">>),
	close(ConnPid).

%% The status names the connection (host and port) and shows what
%% gun:info/1 does.
sys_get_status(Config) ->
	Port = ?config(ws_port, Config),
	ConnPid = upgraded(Port),
	{status, ConnPid, {module, gun_conn}, [_PDict, running, Parent, [], Formatted]} =
		sys:get_status(ConnPid),
	Parent = whereis(gun_sup),
	Header = proplists:get_value(header, Formatted),
	ct:log("~s", [Header]),
	{match, _} = re:run(Header, "127\\.0\\.0\\.1.*" ++ integer_to_list(Port)),
	Data = proplists:get_value(data, Formatted),
	Info = proplists:get_value("Info", Data),
	Info = gun:info(ConnPid),
	#{owner := Owner, origin_port := Port, protocol := ws} = Info,
	Owner = self(),
	close(ConnPid).

%% Suspended, ConnPid answers no call made through it; the engine's
%% path to the owner does not go through it, so the echo still comes.
%% Resumed, it hibernates again.
sys_suspend_resume(Config) ->
	ConnPid = upgraded(?config(ws_port, Config)),
	ok = sys:suspend(ConnPid),
	{status, ConnPid, _, [_, suspended|_]} = sys:get_status(ConnPid),
	ok = echo(ConnPid, <<"while suspended">>),
	ok = sys:resume(ConnPid),
	{status, ConnPid, _, [_, running|_]} = sys:get_status(ConnPid),
	hibernated(ConnPid),
	ok = echo(ConnPid, <<"resumed">>),
	close(ConnPid).

%% sys's debug options live with the process only while there are any.
sys_log_leaves_no_state(Config) ->
	ConnPid = upgraded(?config(ws_port, Config)),
	{memory, Mem0} = erlang:process_info(ConnPid, memory),
	ok = sys:log(ConnPid, true),
	{ok, []} = sys:log(ConnPid, get),
	ok = sys:log(ConnPid, false),
	_ = sys:replace_state(ConnPid, fun(S) -> S end),
	hibernated(ConnPid),
	{dictionary, Dict} = erlang:process_info(ConnPid, dictionary),
	false = lists:keymember('$gun_sys_debug', 1, Dict),
	{memory, Mem0} = erlang:process_info(ConnPid, memory),
	close(ConnPid).

initial_call(Config) ->
	ConnPid = upgraded(?config(ws_port, Config)),
	{gun_conn, init, Args} = proc_lib:initial_call(ConnPid),
	5 = length(Args),
	{gun_conn, init, 5} = proc_lib:translate_initial_call(ConnPid),
	close(ConnPid).

%% A start that fails (here, options gun:open/3 would have refused,
%% given straight to the supervisor) leaves a crash report naming the
%% host and port.
crash_report_failed_start(Config) ->
	Port = ?config(ws_port, Config),
	capture_logs(fun() ->
		%% Options the engine refuses end the start quietly (input_SUITE);
		%% an owner that is no pid crashes it.
		{error, _} = supervisor:start_child(gun_sup, [not_a_pid, "127.0.0.1", Port, #{}]),
		Crasher = receive
			{logged, #{msg := {report, #{label := {proc_lib, crash}, report := [C|_]}}}} -> C
		after ?T ->
			error(no_crash_report)
		end,
		ct:log("~p", [Crasher]),
		{gun_conn, init, _} = proplists:get_value(initial_call, Crasher),
		{"127.0.0.1", Port} = proplists:get_value(gun_origin, proplists:get_value(dictionary, Crasher))
	end).

%% A connection ended abnormally from outside (sys:terminate/2): the
%% crash report names the host and port it was connected to.
crash_report_sys_terminate(Config) ->
	Port = ?config(ws_port, Config),
	ConnPid = upgraded(Port),
	MRef = monitor_conn(ConnPid),
	capture_logs(fun() ->
		ok = sys:terminate(ConnPid, boom),
		boom = down(ConnPid, MRef),
		Crasher = crash_report(ConnPid),
		ct:log("~p", [Crasher]),
		{"127.0.0.1", Port} = proplists:get_value(gun_origin, proplists:get_value(dictionary, Crasher))
	end),
	%% Its death closed the socket: the engine holds it no more.
	ok = settle(connection, fun() ->
		case gun_nif:info(ConnPid) of undefined -> 0; _ -> 1 end
	end, 0, 50),
	flush_mailbox().

%% An idle connection sleeps in erlang:hibernate/3 with a small heap.
idle_hibernates(Config) ->
	ConnPid = upgraded(?config(ws_port, Config)),
	ok = echo(ConnPid, <<"x">>),
	_ = gun:info(ConnPid),
	hibernated(ConnPid),
	{total_heap_size, Words} = erlang:process_info(ConnPid, total_heap_size),
	{memory, Bytes} = erlang:process_info(ConnPid, memory),
	ct:log("idle ConnPid: heap ~p words, memory ~p bytes", [Words, Bytes]),
	true = Words < 100,
	close(ConnPid).

%% Hot code loading.

%% The NIF library has no upgrade callback: loading gun_nif again while
%% it is in use is refused (on_load fails), the loaded code stays and
%% open connections keep working; new ones open.
reload_gun_nif_refused(Config) ->
	Port = ?config(ws_port, Config),
	ConnPid = upgraded(Port),
	Loaded = code:is_loaded(gun_nif),
	{error, on_load_failure} = code:load_file(gun_nif),
	Loaded = code:is_loaded(gun_nif),
	false = erlang:check_old_code(gun_nif),
	ok = echo(ConnPid, <<"still here">>),
	#{protocol := ws} = gun:info(ConnPid),
	ConnPid2 = upgraded(Port),
	ok = echo(ConnPid2, <<"new one">>),
	close(ConnPid),
	close(ConnPid2).

%% The Erlang modules reload with connections open: a hibernated
%% ConnPid wakes in the new code (nothing runs the old one, so it purges),
%% sys:change_code/4 goes through, and the connection works on.
reload_erlang_modules(Config) ->
	ConnPid = upgraded(?config(ws_port, Config)),
	hibernated(ConnPid),
	[{module, M} = code:load_file(M) || M <- [gun, gun_conn, gun_relay, gun_sup, gun_ws]],
	ok = echo(ConnPid, <<"new code">>),
	_ = sys:get_state(ConnPid),
	%% As a release upgrade's {update, gun_conn, ...} would.
	ok = sys:suspend(ConnPid),
	ok = sys:change_code(ConnPid, gun_conn, undefined, []),
	ok = sys:resume(ConnPid),
	hibernated(ConnPid),
	[true = code:soft_purge(M) || M <- [gun, gun_conn, gun_relay, gun_sup, gun_ws]],
	ok = echo(ConnPid, <<"after purge">>),
	close(ConnPid).
