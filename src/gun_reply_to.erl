%% A relay for a stream whose reply_to is a fun, {Fun, Args} or
%% {M, F, A}: the engine sends the stream's messages to this process,
%% which calls the fun with each one, in order, as Gun 2's connection
%% process does. A plain pid never comes here: its messages go straight
%% from the engine.
%%
%% The relay ends with its stream (a fin response or data, trailers, a
%% stream error, a close frame) or with the connection.
-module(gun_reply_to).

-export([start/2]).
-export([init/2]).

-spec start(pid(), gun2_opts:reply_to()) -> pid().
start(ConnPid, ReplyTo) ->
	proc_lib:spawn(?MODULE, init, [ConnPid, ReplyTo]).

-spec init(pid(), gun2_opts:reply_to()) -> no_return().
init(ConnPid, ReplyTo) ->
	MRef = monitor(process, ConnPid),
	loop(ConnPid, MRef, ReplyTo).

loop(ConnPid, MRef, ReplyTo) ->
	receive
		{'DOWN', MRef, process, ConnPid, _} ->
			exit(normal);
		Msg ->
			_ = call(ReplyTo, Msg),
			case is_last(Msg) of
				true -> exit(normal);
				false -> loop(ConnPid, MRef, ReplyTo)
			end
	end.

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
