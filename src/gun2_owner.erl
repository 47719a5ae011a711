%% Mode 2's view of the owner's death: the connection exits with
%% normal, shutdown or {shutdown, _} as the owner did, and with
%% {shutdown, {owner_down, Reason}} for anything else, as Gun 2 does.
%%
%% The connection process monitors the owner: its 'DOWN' comes after
%% anything the owner sent it before dying (a set_owner/2 most of all),
%% which an engine-side monitor cannot promise. On it the engine closes
%% the connection (gun_nif:owner_down/1) and then orders
%% {'$gun_exit', owner_down}; the reason comes from this monitor.
%%
%% An owner on another node has a relay (gun_relay), which the engine
%% sends to; the monitor is the real owner's, whose reason the relay's
%% own end does not carry.
%%
%% The connection process keeps the monitor in its process dictionary
%% (gun_conn's state stays the same in both modes): a reference while
%% the owner lives, {down, Reason} after.
-module(gun2_owner).

-export([init/2]).
-export([set_owner/1]).
-export([down/2]).
-export([exit_reason/0]).

-define(KEY, '$gun2_owner').

-spec init(map(), pid()) -> ok.
init(#{api := 2}, Via) ->
	_ = put(?KEY, erlang:monitor(process, gun_relay:owner(Via))),
	ok;
init(_, _) ->
	ok.

-spec set_owner(pid()) -> ok.
set_owner(Via) ->
	NewOwner = gun_relay:owner(Via),
	case get(?KEY) of
		undefined ->
			ok;
		MRef when is_reference(MRef) ->
			erlang:demonitor(MRef, [flush]),
			_ = put(?KEY, erlang:monitor(process, NewOwner)),
			ok;
		{down, _} ->
			_ = put(?KEY, erlang:monitor(process, NewOwner)),
			ok
	end.

%% Any other 'DOWN' is not the owner's: dropped, as gun_conn drops
%% stray messages.
-spec down({'DOWN', reference(), process, any(), any()}, gun_nif:conn()) -> ok.
down({'DOWN', MRef, process, _, Reason}, Conn) ->
	case get(?KEY) of
		MRef ->
			_ = put(?KEY, {down, Reason}),
			gun_nif:owner_down(Conn);
		_ ->
			ok
	end.

%% The owner is dead, so its 'DOWN' was seen, or is in the mailbox or
%% on its way.
-spec exit_reason() -> any().
exit_reason() ->
	case get(?KEY) of
		{down, Reason} ->
			owner_down_reason(Reason);
		MRef when is_reference(MRef) ->
			receive
				{'DOWN', MRef, process, _, Reason} -> owner_down_reason(Reason)
			end;
		undefined ->
			{shutdown, owner_down}
	end.

owner_down_reason(normal) -> normal;
owner_down_reason(shutdown) -> shutdown;
owner_down_reason(Reason={shutdown, _}) -> Reason;
owner_down_reason(Reason) -> {shutdown, {owner_down, Reason}}.
