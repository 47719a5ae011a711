#!/usr/bin/env escript
%%! -pa _build/default/lib/gun/ebin
%% The demo: starts a local WebSocket server (Python's `websockets`,
%% an independent implementation), upgrades to it with gun, sends frames
%% both ways and prints every message the owner receives as an Erlang term.
%% With an argument ws://host:port/path or wss://host:port/path it talks to
%% that server instead (wss verifies the server against the system's trust
%% store, or against the CA file given as a second argument).
%% `--api 2` first runs it in mode 2, Gun 2's API ({gun, [{api, 2}]}).
-mode(compile).

main(["--api", Api|Args]) ->
	ok = application:load(gun),
	ok = application:set_env(gun, api, list_to_integer(Api)),
	main(Args);
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
	main([Url, system]);
main([Url, CaCertFile]) ->
	case uri_string:parse(Url) of
		#{scheme := Scheme, host := Host} = Uri when Scheme =:= "ws"; Scheme =:= "wss" ->
			Path = case maps:get(path, Uri, "") of "" -> "/"; P -> P end,
			{Transport, DefaultPort} = case Scheme of
				"ws" -> {tcp, 80};
				"wss" -> {tls, 443}
			end,
			TlsOpts = case CaCertFile of
				system -> [];
				_ -> [{cacertfile, CaCertFile}]
			end,
			run(Host, maps:get(port, Uri, DefaultPort), Path,
				#{transport => Transport, tls_opts => TlsOpts});
		_ ->
			halt_with("usage: demo.escript [--api 1|2] [ws[s]://host:port/path [CaCertFile]]")
	end.

run(Host, Port, Path) ->
	run(Host, Port, Path, #{}).

run(Host, Port, Path, Opts) ->
	{ok, _} = application:ensure_all_started(gun),
	Api = application:get_env(gun, api, 1),
	io:format("API mode ~p~n", [Api]),
	{ok, ConnPid} = gun:open(Host, Port, Opts#{retry => 0, ws_opts => #{silence_pings => false}}),
	call("gun:open/3 returned {ok, ~p}", [ConnPid]),
	print(),
	call("gun:ws_upgrade(ConnPid, ~p)", [Path]),
	StreamRef = gun:ws_upgrade(ConnPid, Path),
	io:format("    -> ~p~n", [StreamRef]),
	print(),
	Frames = [{text, "Hello!"}, {binary, <<1, 2, 3>>}, {text, [<<"iodata ">>, "works"]}, {ping, <<"are you there?">>}],
	send(Api, ConnPid, StreamRef, Frames),
	[print() || _ <- Frames],
	MRef = monitor(process, ConnPid),
	send(Api, ConnPid, StreamRef, {close, 1000, <<"bye">>}),
	print(),
	print(),
	receive {'DOWN', MRef, process, ConnPid, Reason} ->
		io:format("ConnPid exited: ~p~n", [Reason])
	after 20000 ->
		halt_with("ConnPid did not exit")
	end.

%% Mode 1's ws_send/2; mode 2's ws_send/3 names the stream.
send(1, ConnPid, _, Frames) ->
	call("gun:ws_send(ConnPid, ~p)", [Frames]),
	ok = gun:ws_send(ConnPid, Frames);
send(2, ConnPid, StreamRef, Frames) ->
	call("gun:ws_send(ConnPid, StreamRef, ~p)", [Frames]),
	ok = gun:ws_send(ConnPid, StreamRef, Frames).

call(Format, Args) ->
	io:format("~n> " ++ Format ++ "~n", Args).

print() ->
	receive Msg -> io:format("  owner received: ~p~n", [Msg])
	after 5000 -> halt_with("no message within 5 s")
	end.

halt_with(Text) ->
	io:format(standard_error, "demo: ~s~n", [Text]),
	halt(1).
