%% The owner's stand-in when it lives on another node. The engine sends
%% with enif_send, which reaches local pids only, and monitors the owner
%% natively, which works on local pids only: for an owner on another
%% node, the connection gets a relay on its own node instead. The engine
%% sends to the relay and monitors it as if it were the owner; the relay
%% forwards every message, in order, and ends when the real owner does
%% (the engine then closes the connection as on the owner's death) or
%% when ConnPid does.
-module(gun_relay).

-export([start_link/1]).
-export([owner/1]).
-export([init/2]).

%% A local Owner needs no relay: it is returned as is. Called by the
%% process behind ConnPid, which the relay is linked to. The relay has
%% recorded its owner when this returns (owner/1 sees it).
-spec start_link(pid()) -> pid().
start_link(Owner) when is_pid(Owner), node(Owner) =:= node() ->
	Owner;
start_link(Owner) when is_pid(Owner) ->
	Relay = spawn_link(?MODULE, init, [self(), Owner]),
	receive {Relay, ready} -> Relay end.

%% The owner behind Pid: the real owner when Pid is a relay, else Pid.
%% gun:info/1 reports the real owner, not its stand-in.
-spec owner(pid()) -> pid().
owner(Pid) when node(Pid) =:= node() ->
	case erlang:process_info(Pid, initial_call) of
		{initial_call, {?MODULE, init, 2}} ->
			case erlang:process_info(Pid, dictionary) of
				{dictionary, Dict} -> proplists:get_value('$gun_owner', Dict, Pid);
				undefined -> Pid
			end;
		_ ->
			Pid
	end;
owner(Pid) ->
	Pid.

-spec init(pid(), pid()) -> no_return().
init(ConnPid, Owner) ->
	process_flag(trap_exit, true),
	put('$gun_owner', Owner),
	MRef = monitor(process, Owner),
	ConnPid ! {self(), ready},
	loop(ConnPid, Owner, MRef).

%% The relay ends with reason normal: the link must not take ConnPid down
%% with it, since the engine's close on the owner's death is graceful
%% (close 1001 when upgraded), unlike ConnPid's own death.
loop(ConnPid, Owner, MRef) ->
	receive
		{'DOWN', MRef, process, Owner, _} ->
			exit(normal);
		{'EXIT', ConnPid, _} ->
			forward_queued(Owner);
		{'EXIT', _, _} ->
			loop(ConnPid, Owner, MRef);
		Msg ->
			Owner ! Msg,
			loop(ConnPid, Owner, MRef)
	end.

%% The engine's last messages (gun_down) may be queued behind nothing
%% more than ConnPid's exit: they still go out.
forward_queued(Owner) ->
	receive
		{'DOWN', _, process, Owner, _} -> exit(normal);
		{'EXIT', _, _} -> forward_queued(Owner);
		Msg -> Owner ! Msg, forward_queued(Owner)
	after 0 ->
		exit(normal)
	end.
