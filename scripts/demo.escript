#!/usr/bin/env escript
%%! -pa _build/default/lib/gun/ebin
%% The demo: starts a local WebSocket server (Python's `websockets`,
%% an independent implementation), upgrades to it with gun, sends frames
%% both ways and prints every message the owner receives as an Erlang term.
%% With an argument ws://host:port/path it talks to that server instead.
-mode(compile).

main([]) ->
	Server = open_port({spawn_executable, "/usr/bin/python3"},
		[{args, ["test/support/ws_server.py"]}, {line, 1024}, binary, use_stdio]),
	Port = receive
		{Server, {data, {eol, Line}}} -> binary_to_integer(Line)
	after 10000 ->
		halt_with("the local WebSocket server did not start")
	end,
	io:format("Local WebSocket server (Python websockets) on 127.0.0.1:~b~n", [Port]),
	run("127.0.0.1", Port, "/echo"),
	port_close(Server);
main([Url]) ->
	case uri_string:parse(Url) of
		#{scheme := "ws", host := Host} = Uri ->
			Path = case maps:get(path, Uri, "") of "" -> "/"; P -> P end,
			run(Host, maps:get(port, Uri, 80), Path);
		_ ->
			halt_with("usage: demo.escript [ws://host:port/path]")
	end.

run(Host, Port, Path) ->
	{ok, _} = application:ensure_all_started(gun),
	{ok, ConnPid} = gun:open(Host, Port, #{retry => 0, ws_opts => #{silence_pings => false}}),
	call("gun:open/3 returned {ok, ~p}", [ConnPid]),
	print(),
	call("gun:ws_upgrade(ConnPid, ~p)", [Path]),
	StreamRef = gun:ws_upgrade(ConnPid, Path),
	io:format("    -> ~p~n", [StreamRef]),
	print(),
	Frames = [{text, "Hello!"}, {binary, <<1, 2, 3>>}, {text, [<<"iodata ">>, "works"]}, {ping, <<"are you there?">>}],
	call("gun:ws_send(ConnPid, ~p)", [Frames]),
	ok = gun:ws_send(ConnPid, Frames),
	[print() || _ <- Frames],
	MRef = monitor(process, ConnPid),
	call("gun:ws_send(ConnPid, {close, 1000, <<\"bye\">>})", []),
	ok = gun:ws_send(ConnPid, {close, 1000, <<"bye">>}),
	print(),
	print(),
	receive {'DOWN', MRef, process, ConnPid, Reason} ->
		io:format("ConnPid exited: ~p~n", [Reason])
	after 20000 ->
		halt_with("ConnPid did not exit")
	end.

call(Format, Args) ->
	io:format("~n> " ++ Format ++ "~n", Args).

print() ->
	receive Msg -> io:format("  owner received: ~p~n", [Msg])
	after 5000 -> halt_with("no message within 5 s")
	end.

halt_with(Text) ->
	io:format(standard_error, "demo: ~s~n", [Text]),
	halt(1).
