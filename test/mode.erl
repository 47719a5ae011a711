%% The suites' adapter between the two API modes. The suites are written
%% in mode 1's terms; a suite's mode2 group runs the cases that make
%% sense in mode 2 with {gun, [{api, 2}]} set, and every message a case
%% takes through suite_helper comes through canonical/1, which checks
%% mode 2's shape to the letter and gives the case mode 1's form of it.
-module(mode).

-export([set/1]).
-export([unset/0]).
-export([current/0]).
-export([canonical/1]).
-export([groups/2]).

-spec set(1 | 2) -> ok.
set(Api) ->
	application:set_env(gun, api, Api).

-spec unset() -> ok.
unset() ->
	application:unset_env(gun, api).

-spec current() -> 1 | 2.
current() ->
	application:get_env(gun, api, 1).

%% A suite's groups: mode2 with its cases but the Excluded ones (those
%% whose terms only mode 1 has: the upgrade's unprocessed streams, mode
%% 1's reasons and await results).
-spec groups([atom()], [atom()]) -> [{mode2, [], [atom()]}].
groups(Cases, Excluded) ->
	[{mode2, [], [C || C <- Cases, not lists:member(C, Excluded)]}].

%% Mode 2's messages that differ from mode 1's, as mode 1 has them.
%% Anything else is the same in both modes and passes as is.
-spec canonical(term()) -> term().
canonical(Msg) ->
	case current() of
		1 -> Msg;
		2 -> canonical2(Msg)
	end.

canonical2({gun_upgrade, C, Ref, [<<"websocket">>], Headers}) when is_reference(Ref) ->
	{gun_ws_upgrade, C, ok, Headers};
canonical2({gun_ws, C, Ref, Frame}) when is_reference(Ref) ->
	{gun_ws, C, Frame};
canonical2({gun_down, C, Protocol, Reason, Killed}) when is_list(Killed) ->
	{gun_down, C, Protocol, Reason, Killed, []};
canonical2(Msg = {gun_down, _, _, _, _, _}) ->
	error({mode1_message_in_mode2, Msg});
canonical2(Msg = {gun_ws_upgrade, _, _, _}) ->
	error({mode1_message_in_mode2, Msg});
canonical2(Msg = {gun_ws, _, Frame}) when not is_reference(Frame) ->
	error({mode1_message_in_mode2, Msg});
canonical2(Msg) ->
	Msg.
