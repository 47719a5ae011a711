%% Mode 2's retry_fun: before each retry the engine asks the connection
%% process ({'$gun_retry', RetriesLeft}), which calls the user's
%% fun(RetriesLeft, Opts) -> #{retries := R, timeout := T} and answers.
%% A fun that crashes or answers anything else stops the retries, so the
%% engine never waits for an answer that does not come.
-module(gun2_retry).

-export([init/1]).
-export([answer/3]).

-type retry() :: undefined | {fun((non_neg_integer(), map()) -> map()), map()}.
-export_type([retry/0]).

%% Opts is the map the engine got: the fun sees the connection's options.
-spec init(map()) -> retry().
init(Opts=#{retry_fun := F}) when is_function(F, 2) ->
	{F, maps:without([api, erlang_opts], Opts)};
init(_) ->
	undefined.

-spec answer(pid(), retry(), non_neg_integer()) -> ok.
answer(ConnPid, {F, Opts}, RetriesLeft) ->
	{Retries, Timeout} = try F(RetriesLeft, Opts) of
		#{retries := R, timeout := T} when is_integer(R), R >= 0, is_integer(T), T >= 0 -> {R, T};
		_ -> {0, 0}
	catch _:_ ->
		{0, 0}
	end,
	gun_nif:retry(ConnPid, Retries, Timeout);
answer(ConnPid, undefined, _) ->
	gun_nif:retry(ConnPid, 0, 0).
