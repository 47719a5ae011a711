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
	owner :: pid(),
	%% Mode 2 monitors the owner itself: Gun 2's exit reason carries the
	%% owner's (the engine's monitor has none).
	owner_mref = undefined :: undefined | reference() | {down, any()}
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
			erlang:hibernate(?MODULE, idle, [#conn{conn=Conn, owner=Owner,
				owner_mref=gun2_owner:monitor(Opts, Owner)}])
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
		{'$gun_exit', owner_down} ->
			exit(gun2_owner:exit_reason(State#conn.owner_mref));
		{'$gun_exit', Reason} ->
			exit(Reason);
		'$gun_close' ->
			ok = gun_nif:close(self()),
			erlang:hibernate(?MODULE, idle, [State]);
		'$gun_shutdown' ->
			ok = gun_nif:shutdown(self()),
			erlang:hibernate(?MODULE, idle, [State]);
		%% Mode 2: gun:set_owner/2, and the owner's death.
		{'$gun_set_owner', NewOwner} ->
			ok = gun_nif:set_owner(State#conn.conn, NewOwner),
			MRef = gun2_owner:set_owner(State#conn.owner_mref, NewOwner),
			erlang:hibernate(?MODULE, idle, [State#conn{owner=NewOwner, owner_mref=MRef}]);
		{'DOWN', MRef, process, _, Reason} when MRef =:= State#conn.owner_mref ->
			ok = gun2_owner:down(State#conn.conn),
			erlang:hibernate(?MODULE, idle, [State#conn{owner_mref={down, Reason}}]);
		{'$gun_owner_check', MeanBytes} ->
			case erlang:process_info(Owner, message_queue_len) of
				{message_queue_len, Len} -> ok = gun_nif:owner_queue(self(), Len * MeanBytes);
				%% The owner is gone: its monitor ends the connection.
				undefined -> ok
			end,
			erlang:hibernate(?MODULE, idle, [State]);
		_ ->
			erlang:hibernate(?MODULE, idle, [State])
	end.
