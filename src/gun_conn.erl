%% The process behind ConnPid. The socket, the protocol and the timers
%% live in the native engine; this process gives the connection an
%% identity users can monitor and link to, keeps the native resource
%% alive, and exits when the engine says the connection is over. Its
%% death (whatever the reason) makes the engine close the socket.
-module(gun_conn).

-export([start/4]).
-export([init/5]).
-export([idle/1]).

-record(conn, {
	conn :: gun_nif:conn(),
	owner :: pid()
}).

%% Opts were checked by gun:open/3. Should the engine still refuse them
%% (a bound gun:open/3 missed), the process ends quietly and the caller
%% gets {error, {options, Opts}}: never a crash report.
-spec start(pid(), gun:host(), inet:port_number(), gun:opts())
	-> {ok, pid()} | {error, {options, gun:opts()}}.
start(Owner, Host, Port, Opts) ->
	proc_lib:start(?MODULE, init, [self(), Owner, Host, Port, Opts]).

-spec init(pid(), pid(), gun:host(), inet:port_number(), gun:opts()) -> no_return().
init(Parent, Owner, Host, Port, Opts) ->
	try gun_nif:open(Owner, Host, Port, Opts) of
		Conn ->
			proc_lib:init_ack(Parent, {ok, self()}),
			erlang:hibernate(?MODULE, idle, [#conn{conn=Conn, owner=Owner}])
	catch error:badarg ->
		proc_lib:init_ack(Parent, {error, {options, Opts}}),
		exit(normal)
	end.

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
-spec idle(#conn{}) -> no_return().
idle(State=#conn{owner=Owner}) ->
	receive
		{'$gun_exit', Reason} ->
			exit(Reason);
		'$gun_close' ->
			ok = gun_nif:close(self()),
			erlang:hibernate(?MODULE, idle, [State]);
		'$gun_shutdown' ->
			ok = gun_nif:shutdown(self()),
			erlang:hibernate(?MODULE, idle, [State]);
		{'$gun_owner_check', MeanBytes} ->
			case erlang:process_info(Owner, message_queue_len) of
				{message_queue_len, Len} -> ok = gun_nif:owner_queue(self(), Len * MeanBytes);
				%% The owner is gone: its monitor ends the connection.
				undefined -> ok
			end,
			erlang:hibernate(?MODULE, idle, [State]);
		'$gun_drain' ->
			ok = drain(State),
			erlang:hibernate(?MODULE, idle, [State]);
		_ ->
			erlang:hibernate(?MODULE, idle, [State])
	end.

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
