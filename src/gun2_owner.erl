%% Mode 2's view of the owner's death: the connection exits with
%% normal, shutdown or {shutdown, _} as the owner did, and with
%% {shutdown, {owner_down, Reason}} for anything else, as Gun 2 does.
%%
%% The connection process monitors the owner: its 'DOWN' comes after
%% anything the owner sent it before dying (a set_owner/2 most of all),
%% which an engine-side monitor cannot promise. On it the engine closes
%% the connection (gun_nif:owner_down/1) and then orders
%% {'$gun_exit', owner_down}; the reason comes from this monitor.
-module(gun2_owner).

-export([monitor/2]).
-export([set_owner/2]).
-export([down/1]).
-export([exit_reason/1]).

-spec monitor(map(), pid()) -> undefined | reference().
monitor(#{api := 2}, Owner) ->
	erlang:monitor(process, Owner);
monitor(_, _) ->
	undefined.

-spec set_owner(undefined | reference() | {down, any()}, pid()) -> undefined | reference().
set_owner(undefined, _) ->
	undefined;
set_owner({down, _}, NewOwner) ->
	erlang:monitor(process, NewOwner);
set_owner(MRef, NewOwner) ->
	erlang:demonitor(MRef, [flush]),
	erlang:monitor(process, NewOwner).

-spec down(gun_nif:conn()) -> ok.
down(Conn) ->
	try
		gun_nif:owner_down(Conn)
	catch error:undef ->
		%% An engine that watches the owner itself.
		ok
	end.

%% The owner is dead, so its 'DOWN' was seen, or is in the mailbox or
%% on its way.
-spec exit_reason(undefined | reference() | {down, any()}) -> any().
exit_reason(undefined) ->
	{shutdown, owner_down};
exit_reason({down, Reason}) ->
	owner_down_reason(Reason);
exit_reason(MRef) ->
	receive
		{'DOWN', MRef, process, _, Reason} -> owner_down_reason(Reason)
	end.

owner_down_reason(normal) -> normal;
owner_down_reason(shutdown) -> shutdown;
owner_down_reason(Reason={shutdown, _}) -> Reason;
owner_down_reason(Reason) -> {shutdown, {owner_down, Reason}}.
