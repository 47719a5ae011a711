%% A relay for a stream whose reply_to is a fun, {Fun, Args} or
%% {M, F, A}, or a pid of another node: the engine sends the stream's
%% messages to this process, on the connection's node, which calls the
%% fun with each one, in order, as Gun 2's connection process does, or
%% forwards them to the pid (the engine sends to local pids only). A pid
%% of the connection's node never comes here: its messages go straight
%% from the engine.
%%
%% The relay ends with its stream (a fin response or data, trailers, a
%% stream error, a close frame), with the connection, or with the pid
%% it forwards to.
-module(gun_reply_to).

-export([start/2]).
-export([init/3]).
-export([reply_to/1]).
-export([stop/1]).

%% A plain spawn: the initial call names this module, which is how
%% reply_to/1 tells a relay from any other pid. The relay has recorded
%% its reply_to when this returns.
-spec start(pid(), gun2_opts:reply_to()) -> pid().
start(ConnPid, ReplyTo) ->
	Relay = spawn(?MODULE, init, [self(), ConnPid, ReplyTo]),
	receive {Relay, ready} -> Relay end.

-spec init(pid(), pid(), gun2_opts:reply_to()) -> no_return().
init(Parent, ConnPid, ReplyTo) ->
	put('$gun_reply_to', ReplyTo),
	MRef = monitor(process, ConnPid),
	_ = case ReplyTo of
		Pid when is_pid(Pid) -> monitor(process, Pid);
		_ -> undefined
	end,
	Parent ! {self(), ready},
	loop(ConnPid, MRef, ReplyTo).

loop(ConnPid, MRef, ReplyTo) ->
	receive
		{'DOWN', MRef, process, ConnPid, _} ->
			exit(normal);
		{'DOWN', _, process, ReplyTo, _} ->
			exit(normal);
		Msg ->
			_ = call(ReplyTo, Msg),
			case is_last(Msg) of
				true -> exit(normal);
				false -> loop(ConnPid, MRef, ReplyTo)
			end
	end.

%% What the user gave as reply_to, for the pid the engine knows: a
%% relay's fun, or the pid itself.
-spec reply_to(pid()) -> gun2_opts:reply_to().
reply_to(Pid) when node(Pid) =:= node() ->
	case erlang:process_info(Pid, initial_call) of
		{initial_call, {?MODULE, init, 3}} ->
			case erlang:process_info(Pid, dictionary) of
				{dictionary, Dict} -> proplists:get_value('$gun_reply_to', Dict, Pid);
				undefined -> Pid
			end;
		_ ->
			Pid
	end;
reply_to(Pid) ->
	Pid.

%% Ends Pid when it is a relay (its stream was cancelled); any other
%% pid, or undefined, is left alone.
-spec stop(pid() | undefined) -> ok.
stop(Pid) when is_pid(Pid), node(Pid) =:= node() ->
	case erlang:process_info(Pid, initial_call) of
		{initial_call, {?MODULE, init, 3}} -> exit(Pid, kill), ok;
		_ -> ok
	end;
stop(_) ->
	ok.

call(Pid, Msg) when is_pid(Pid) ->
	Pid ! Msg;
call(F, Msg) when is_function(F, 1) ->
	F(Msg);
call({F, A}, Msg) ->
	apply(F, [Msg|A]);
call({M, F, A}, Msg) ->
	apply(M, F, [Msg|A]).

is_last({gun_response, _, _, fin, _, _}) -> true;
is_last({gun_data, _, _, fin, _}) -> true;
is_last({gun_trailers, _, _, _}) -> true;
is_last({gun_error, _, _, _}) -> true;
is_last({gun_ws, _, _, close}) -> true;
is_last({gun_ws, _, _, {close, _, _}}) -> true;
is_last(_) -> false.
