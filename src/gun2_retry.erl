%% Mode 2's retry_fun: before each retry the engine asks the connection
%% process ({'$gun_retry', RetriesLeft}), which calls the user's
%% fun(RetriesLeft, Opts) -> #{retries := R, timeout := T} and answers.
%% A fun that crashes or answers anything else stops the retries, so the
%% engine never waits for an answer that does not come. The fun and the
%% options it sees are kept in the connection process's dictionary.
-module(gun2_retry).

-export([init/1]).
-export([answer/2]).

-define(KEY, '$gun2_retry_fun').

%% Opts is the map the engine got: the fun sees the connection's options.
-spec init(map()) -> ok.
init(Opts=#{retry_fun := F}) when is_function(F, 2) ->
	_ = put(?KEY, {F, maps:without([api, erlang_opts], Opts)}),
	ok;
init(_) ->
	ok.

-spec answer(pid(), non_neg_integer()) -> ok.
answer(ConnPid, RetriesLeft) ->
	{Retries, Timeout} = case get(?KEY) of
		{F, Opts} ->
			try F(RetriesLeft, Opts) of
				#{retries := R, timeout := T} when is_integer(R), R >= 0,
						is_integer(T), T >= 0 -> {R, T};
				_ -> {0, 0}
			catch _:_ ->
				{0, 0}
			end;
		undefined ->
			{0, 0}
	end,
	gun_nif:retry(ConnPid, Retries, Timeout).
