%% The process behind ConnPid. The socket, the protocol and the timers
%% live in the native engine; this process gives the connection an
%% identity users can monitor and link to, keeps the native resource
%% alive, and exits when the engine says the connection is over. Its
%% death (whatever the reason) makes the engine close the socket.
-module(gun_conn).

-export([start/4]).
-export([init/5]).
-export([idle/1]).

-spec start(pid(), gun:host(), inet:port_number(), gun:opts()) -> {ok, pid()}.
start(Owner, Host, Port, Opts) ->
	proc_lib:start(?MODULE, init, [self(), Owner, Host, Port, Opts]).

-spec init(pid(), pid(), gun:host(), inet:port_number(), gun:opts()) -> no_return().
init(Parent, Owner, Host, Port, Opts) ->
	Conn = gun_nif:open(Owner, Host, Port, Opts),
	proc_lib:init_ack(Parent, {ok, self()}),
	erlang:hibernate(?MODULE, idle, [Conn]).

%% gun:close/1 and gun:shutdown/1 come through here rather than straight
%% to the engine: a message from the caller is handled after any monitor
%% the caller set up before, so that monitor sees the real exit reason
%% (the engine's exit order comes from another thread, with no such
%% ordering). Anything else is dropped so a stray message cannot grow
%% the mailbox.
-spec idle(gun_nif:conn()) -> no_return().
idle(Conn) ->
	receive
		{'$gun_exit', Reason} ->
			exit(Reason);
		'$gun_close' ->
			ok = gun_nif:close(self()),
			erlang:hibernate(?MODULE, idle, [Conn]);
		'$gun_shutdown' ->
			ok = gun_nif:shutdown(self()),
			erlang:hibernate(?MODULE, idle, [Conn]);
		_ ->
			erlang:hibernate(?MODULE, idle, [Conn])
	end.
