%% The process behind ConnPid. The socket, the protocol and the timers
%% live in the native engine; this process gives the connection an
%% identity users can monitor and link to, keeps the native resource
%% alive, and exits when the engine says the connection is over. Its
%% death (whatever the reason) makes the engine close the socket.
%%
%% It is a proc_lib process under gun_sup that answers sys's system
%% messages, and it is how other nodes reach the engine: the engine's
%% table of connections is per node, so a call made on another node
%% comes here as a message and is run locally (see gun:ws_send/2 and
%% the other functions taking a ConnPid).
-module(gun_conn).

-export([start_link/4]).
-export([run/2]).
-export([query/2]).
-export([info/1]).

%% proc_lib and sys.
-export([init/5]).
-export([wake/1]).
-export([idle/1]).
-export([system_continue/3]).
-export([system_terminate/4]).
-export([system_get_state/1]).
-export([system_replace_state/2]).
-export([system_code_change/4]).
-export([format_status/2]).

%% What the engine does for the functions of gun taking a ConnPid.
-type call() :: {request, reference(), iodata(), iodata(), gun:req_headers(), none | streamed | iodata()}
	| {data, reference(), fin | nofin, iodata()}
	| {cancel, reference()}
	| {update_flow, reference(), pos_integer()}
	| {ws_upgrade, reference(), iodata(), gun:req_headers(), gun:ws_opts()}
	| {ws_send, gun:ws_frame() | [gun:ws_frame()]}
	%% Mode 2's own (gun2:run/2).
	| {gun2, gun2:call()}.
-export_type([call/0]).

%% What the functions of gun asking a connection for an answer ask.
-type query() :: info | {stream_info, reference()}.
-export_type([query/0]).

%% Kept small: an idle connection hibernates with this as its whole heap.
%% What is only needed now and then is found when needed: the host and
%% port in the engine (gun_nif:info/1), the parent in '$ancestors' (as
%% proc_lib put it there), sys's debug options in the process dictionary
%% while there are any.
-record(conn, {
	conn :: gun_nif:conn(),
	%% The pid the engine sends to and monitors: the owner, or its relay
	%% when the owner is on another node.
	owner :: pid()
}).

%% Linked to the caller, which becomes the parent (gun_sup, or the
%% caller's own supervisor for a connection that gun_sup does not hold).
%% Opts were checked by gun:open/3. Should the engine still refuse them
%% (a bound gun:open/3 missed), the process ends quietly and the caller
%% gets {error, {options, Opts}}: never a crash report.
-spec start_link(pid(), gun:host(), inet:port_number(), gun:opts())
	-> {ok, pid()} | {error, {options, gun:opts()}}.
start_link(Owner, Host, Port, Opts) ->
	proc_lib:start_link(?MODULE, init, [self(), Owner, Host, Port, Opts]).

-spec init(pid(), pid(), gun:host(), inet:port_number(), gun:opts()) -> no_return().
init(Parent, Owner, Host, Port, Opts) ->
	%% A crash report of a failed start names the connection.
	put(gun_origin, {Host, Port}),
	Via = gun_relay:start_link(Owner),
	try gun_nif:open(Via, Host, Port, Opts) of
		Conn ->
			erase(gun_origin),
			proc_lib:init_ack(Parent, {ok, self()}),
			%% Mode 2 keeps its own in the process dictionary.
			ok = gun2_owner:init(Opts, Via),
			ok = gun2_retry:init(Opts),
			erlang:hibernate(?MODULE, wake, [#conn{conn=Conn, owner=Via}])
	catch error:badarg ->
		proc_lib:init_ack(Parent, {error, {options, Opts}}),
		exit(normal)
	end.

%% Runs Call on ConnPid, a connection of this node. Raises badarg where
%% the engine does; on a pid that is no connection (any more), it checks
%% the arguments and does nothing else, as a message to a dead Gun
%% process would.
-spec run(pid(), call()) -> ok.
run(ConnPid, {request, StreamRef, Method, Path, Headers, Body}) ->
	case gun_nif:request(ConnPid, StreamRef, Method, Path, Headers, Body) of
		dirty -> gun_nif:request_dirty(ConnPid, StreamRef, Method, Path, Headers, Body);
		ok -> ok
	end;
run(ConnPid, {data, StreamRef, IsFin, Data}) ->
	case gun_nif:data(ConnPid, StreamRef, IsFin, Data) of
		dirty -> gun_nif:data_dirty(ConnPid, StreamRef, IsFin, Data);
		ok -> ok
	end;
run(ConnPid, {cancel, StreamRef}) ->
	gun_nif:cancel(ConnPid, StreamRef);
run(ConnPid, {update_flow, StreamRef, Increment}) ->
	gun_nif:update_flow(ConnPid, StreamRef, Increment);
run(ConnPid, {ws_upgrade, StreamRef, Path, Headers, WsOpts}) ->
	gun_nif:ws_upgrade(ConnPid, StreamRef, Path, Headers, WsOpts);
run(ConnPid, {ws_send, Frames}) ->
	case gun_nif:ws_send(ConnPid, Frames) of
		dirty -> gun_nif:ws_send_dirty(ConnPid, Frames);
		ok -> ok
	end;
run(ConnPid, {gun2, Call}) ->
	gun2:run(ConnPid, Call).

%% Answers Query for ConnPid, a connection of this node; undefined once
%% it is over.
-spec query(pid(), query()) -> any().
query(ConnPid, info) ->
	info(ConnPid);
query(ConnPid, {stream_info, StreamRef}) ->
	gun2:stream_info_here(ConnPid, StreamRef).

%% gun:info/1 of a connection of this node, with the real owner in place
%% of its relay; undefined once the connection is over.
-spec info(pid()) -> map() | undefined.
info(ConnPid) ->
	case gun_nif:info(ConnPid) of
		Info = #{owner := Via} -> Info#{owner := gun_relay:owner(Via)};
		undefined -> undefined
	end.

%% Asleep, the heap holds the state alone. Awake, the process runs under
%% proc_lib's wake-up, as after proc_lib:hibernate/3 (which would keep its
%% {M, F, A} on the heap while asleep), so a crash still gets proc_lib's
%% crash report.
-spec wake(#conn{}) -> no_return().
wake(State) ->
	proc_lib:wake_up(?MODULE, idle, [State]).

%% gun:close/1 and gun:shutdown/1 come through here rather than straight
%% to the engine: a message from the caller is handled after any monitor
%% the caller set up before, so that monitor sees the real exit reason
%% (the engine's exit order comes from another thread, with no such
%% ordering). Anything else is dropped so a stray message cannot grow
%% the mailbox.
%%
%% The engine cannot see a mailbox: with owner_queue_limit it asks here
%% how much waits in the owner's, estimated as its length times the mean
%% size of the messages the engine delivered lately.
%%
%% Idle, the process hibernates; it only stays awake while messages keep
%% coming (calls from other nodes).
-spec idle(#conn{}) -> no_return().
idle(State) ->
	receive
		{'$gun_exit', owner_down} -> exit(gun2_owner:exit_reason());
		{'$gun_exit', Reason} -> exit_seen(Reason);
		Msg -> awake(handle_named(Msg, State))
	end.

awake(State) ->
	receive
		{'$gun_exit', owner_down} -> exit(gun2_owner:exit_reason());
		{'$gun_exit', Reason} -> exit_seen(Reason);
		Msg -> awake(handle_named(Msg, State))
	after 0 ->
		erlang:hibernate(?MODULE, wake, [State])
	end.

%% A connection that fails at once (refused, no such device, an
%% unreadable cacertfile) can end before the reply to gun:open/3 has
%% reached its caller, who would then see noproc from gun:await_up/1,2
%% instead of why. Such an end, while no process monitors ConnPid yet,
%% waits for a monitor for up to about 100 ms before it exits all the
%% same. The owner's death has nobody to tell: it exits at once.
exit_seen(Reason={shutdown, Why}) when Why =/= owner_gone ->
	exit_seen(Reason, 100);
exit_seen(Reason) ->
	exit(Reason).

exit_seen(Reason, 0) ->
	exit(Reason);
exit_seen(Reason, Tries) ->
	%% The engine's own monitor of ConnPid is a resource, not a pid.
	{monitored_by, By} = erlang:process_info(self(), monitored_by),
	case lists:any(fun is_pid/1, By) of
		true -> exit(Reason);
		false -> receive after 1 -> exit_seen(Reason, Tries - 1) end
	end.

%% A crash report names the connection's host and port.
handle_named(Msg, State) ->
	try
		handle(Msg, State)
	catch Class:Reason:Stacktrace ->
		name_origin(),
		erlang:raise(Class, Reason, Stacktrace)
	end.

handle({'$gun_call', Call}, State) ->
	%% The caller checked the arguments as the engine does.
	try run(self(), Call) catch error:badarg -> ok end,
	State;
handle({'$gun_query', ReplyTo, Query}, State) ->
	ReplyTo ! {ReplyTo, query(self(), Query)},
	State;
handle('$gun_close', State) ->
	ok = gun_nif:close(self()),
	State;
handle('$gun_shutdown', State) ->
	ok = gun_nif:shutdown(self()),
	State;
handle({'$gun_owner_check', MeanBytes}, State=#conn{owner=Via}) ->
	case erlang:process_info(Via, message_queue_len) of
		{message_queue_len, Len} -> ok = gun_nif:owner_queue(self(), Len * MeanBytes);
		%% The owner is gone: its monitor ends the connection.
		undefined -> ok
	end,
	State;
%% Mode 2: gun:set_owner/2, the owner's death (gun2_owner), retry_fun
%% (gun2_retry).
handle({'$gun_set_owner', NewOwner}, State=#conn{conn=Conn}) ->
	Via = gun_relay:start_link(NewOwner),
	ok = gun_nif:set_owner(Conn, Via),
	ok = gun2_owner:set_owner(Via),
	State#conn{owner=Via};
handle(Msg={'DOWN', _, process, _, _}, State=#conn{conn=Conn}) ->
	ok = gun2_owner:down(Msg, Conn),
	State;
handle({'$gun_retry', RetriesLeft}, State) ->
	ok = gun2_retry:answer(self(), RetriesLeft),
	State;
handle('$gun_drain', State) ->
	ok = drain(State),
	State;
handle({system, From, Request}, State) ->
	sys:handle_system_msg(Request, From, parent(), ?MODULE, debug(), State);
handle(_, State) ->
	State.

%% A burst read for the owner waits in the engine: it is sent from here,
%% from a scheduler, where sending costs a third of what it costs the
%% engine's threads. A call that returns more has used up this process's
%% timeslice: the next call comes after it is rescheduled.
-spec drain(#conn{}) -> ok.
drain(State=#conn{conn=Conn}) ->
	case gun_nif:drain(Conn) of
		more -> drain(State);
		done -> ok
	end.

name_origin() ->
	case gun_nif:info(self()) of
		#{origin_host := Host, origin_port := Port} -> put(gun_origin, {Host, Port});
		undefined -> ok
	end.

%% sys.

%% The process that started the connection: proc_lib's first ancestor
%% (a name when it was registered).
parent() ->
	case get('$ancestors') of
		[Parent|_] when is_pid(Parent) -> Parent;
		[Name|_] when is_atom(Name) -> whereis(Name)
	end.

debug() ->
	case get('$gun_sys_debug') of
		undefined -> [];
		Debug -> Debug
	end.

keep_debug([]) ->
	_ = erase('$gun_sys_debug'),
	ok;
keep_debug(Debug) ->
	_ = put('$gun_sys_debug', Debug),
	ok.

-spec system_continue(pid(), [sys:dbg_opt()], #conn{}) -> no_return().
system_continue(_, Debug, State) ->
	keep_debug(Debug),
	erlang:hibernate(?MODULE, wake, [State]).

%% The native resource goes with the process: the engine closes the socket.
-spec system_terminate(any(), pid(), [sys:dbg_opt()], #conn{}) -> no_return().
system_terminate(Reason, _, _, _) ->
	name_origin(),
	exit(Reason).

-spec system_get_state(#conn{}) -> {ok, #conn{}}.
system_get_state(State) ->
	{ok, State}.

-spec system_replace_state(fun((#conn{}) -> #conn{}), #conn{}) -> {ok, #conn{}, #conn{}}.
system_replace_state(StateFun, State) ->
	NewState = StateFun(State),
	{ok, NewState, NewState}.

%% The state lives in the engine, which the code of this module does not
%% see: there is nothing to convert.
-spec system_code_change(#conn{}, module(), any(), any()) -> {ok, #conn{}}.
system_code_change(State, _, _, _) ->
	{ok, State}.

%% sys:get_status/1: the connection as gun:info/1 shows it.
-spec format_status(normal | terminate, [any()]) -> [{atom(), any()}].
format_status(_, [_PDict, SysState, Parent, Debug, #conn{}]) ->
	Info = info(self()),
	Header = case Info of
		#{origin_host := Host, origin_port := Port} ->
			lists:flatten(io_lib:format("Status for gun connection to ~0p port ~b", [Host, Port]));
		undefined ->
			"Status for gun connection (over)"
	end,
	[{header, Header},
		{data, [{"Status", SysState}, {"Parent", Parent}, {"Info", Info},
			{"Logged events", sys:get_log(Debug)}]}].
