%% ConnPid across a cluster (issue 16), with real nodes started by the
%% suite (peer, distribution on 127.0.0.1): every gun function taking a
%% ConnPid or a StreamRef called on another node than the connection's,
%% with its result and the owner's messages; badarg raised in the caller
%% for malformed arguments, as on the connection's own node; an owner on
%% another node (its messages through a relay); the connection's node
%% going down (ConnPid behaves as a dead one); the owner's node going
%% down (the connection closes as on the owner's death, nothing is left
%% on the connection's node); application:stop(gun) with remote owners.
%%
%% The gun2 group does the same for mode 2 ({gun, [{api, 2}]} on both
%% nodes): Gun 2's functions on a ConnPid of another node, reply_to in
%% its four forms naming a process of another node than the
%% connection's, set_owner/2 to a process of another node.
%%
%% Run: rebar3 ct --suite test/cluster_SUITE
-module(cluster_SUITE).
-compile([export_all, nowarn_export_all]).

-include_lib("common_test/include/ct.hrl").

-import(suite_helper, [
	find_script/1, start_server/2, stop_server/1, next/0, next/1, monitor_conn/1,
	down/2, no_messages_from/1, now_ms/0, echo/2, id/0, flush_mailbox/0, hibernated/1,
	no_leak/1
]).

-define(T, 10000).

suite() ->
	[{timetrap, {minutes, 3}}].

all() ->
	[
		remote_owner_websocket,
		remote_owner_http,
		remote_calls_local_owner,
		remote_close,
		badarg_in_caller,
		badstate_before_upgrade,
		relay_keeps_order,
		conn_node_down,
		owner_node_down,
		remote_owner_exits,
		app_stop_with_remote_owners,
		{group, gun2}
	].

groups() ->
	[{gun2, [], [
		remote2_websocket,
		remote2_http,
		remote2_reply_to,
		remote2_set_owner,
		remote2_owner_node_down,
		remote2_stream_info
	]}].

init_per_group(gun2, Config) ->
	set_api(Config, 2),
	Config.

end_per_group(gun2, Config) ->
	set_api(Config, undefined).

%% Here and on B: a connection is in the mode of the node it opens on.
set_api(Config, Api) ->
	lists:foreach(fun(Node) ->
		ok = case Api of
			undefined -> erpc:call(Node, application, unset_env, [gun, api]);
			_ -> erpc:call(Node, application, set_env, [gun, api, Api])
		end
	end, [node(), ?config(node, Config)]).

init_per_suite(Config) ->
	{ok, _} = application:ensure_all_started(gun),
	Dist = start_distribution(),
	{WsHolder, WsPort} = start_server(find_script("ws_server.py"), []),
	{HttpHolder, HttpPort} = start_server(find_script("http_server.py"), []),
	{Peer, Node} = start_peer(gun_b),
	%% Warm-up: the engine's runtime opens its own descriptors on first use.
	close_conn(upgraded(node(), WsPort, "/echo")),
	[{dist, Dist}, {peer, Peer}, {node, Node}, {ws_port, WsPort}, {http_port, HttpPort},
		{holders, [WsHolder, HttpHolder]}|Config].

end_per_suite(Config) ->
	ok = peer:stop(?config(peer, Config)),
	[ok = stop_server(H) || H <- ?config(holders, Config)],
	stop_distribution(?config(dist, Config)).

init_per_testcase(_, Config) ->
	flush_mailbox(),
	Config.

%% Mode 2: a connection on Node (opened there in mode 2) whose owner is a
%% process there passing the owner's messages on to the caller as
%% {via_owner, Msg}. The stream messages of the caller's calls come
%% straight to the caller (their reply_to): through a relay on Node.
conn2_on(Node, Port) ->
	Test = self(),
	Owner = spawn(Node, fun() ->
		{ok, ConnPid} = gun:open("127.0.0.1", Port, #{retry => 0}),
		Test ! {owner2, self(), ConnPid},
		forward(Test, monitor(process, Test))
	end),
	ConnPid = receive {owner2, Owner, C} -> C after ?T -> error(no_owner) end,
	Node = node(ConnPid),
	{gun_up, ConnPid, http} = via_owner(),
	{Owner, ConnPid}.

%% A process that passes what it gets on to Test as {Tag, Msg}.
collector(Node, Tag) ->
	Test = self(),
	spawn(Node, fun() -> forward_tagged(Test, Tag, monitor(process, Test)) end).

forward_tagged(Test, Tag, MRef) ->
	receive
		{'DOWN', MRef, process, Test, _} -> ok;
		Msg -> Test ! {Tag, Msg}, forward_tagged(Test, Tag, MRef)
	end.

tagged(Tag) ->
	receive
		{Tag, Msg} -> Msg
	after ?T ->
		error({timeout, Tag, {mailbox, element(2, process_info(self(), messages))}})
	end.

%% The next message as it came (next/0 gives mode 2's in mode 1's form).
next2() ->
	receive
		Msg when not (is_tuple(Msg) andalso element(1, Msg) =:= 'DOWN') -> Msg
	after ?T ->
		error({timeout, {mailbox, element(2, process_info(self(), messages))}})
	end.

%% set_owner/2 is asynchronous, as Gun 2's: polls gun:info/1.
owner_is(ConnPid, Owner, 0) ->
	error({owner, gun:info(ConnPid), Owner});
owner_is(ConnPid, Owner, Tries) ->
	case gun:info(ConnPid) of
		#{owner := Owner} -> ok;
		_ -> timer:sleep(20), owner_is(ConnPid, Owner, Tries - 1)
	end.

%% A reply_to {M, F, A}.
tagged_reply(Msg, Test, Tag) ->
	Test ! {Tag, Msg}.

end_per_testcase(_, _) ->
	{ok, _} = application:ensure_all_started(gun),
	ok.

%% Nodes.

%% rebar3 ct does not start distribution; then the suite does, with long
%% names on 127.0.0.1 (net_kernel needs epmd, which erl -name would have
%% started), and stops what it started at the end.
start_distribution() ->
	case is_alive() of
		true ->
			already;
		false ->
			Epmd = case os:cmd("epmd -names") of
				"epmd: up and running" ++ _ -> running;
				_ -> _ = os:cmd("epmd -daemon"), started
			end,
			Name = list_to_atom("gun_ct_" ++ os:getpid() ++ "@127.0.0.1"),
			{ok, _} = net_kernel:start([Name, longnames]),
			{started, Epmd}
	end.

%% epmd refuses to stop while other nodes are registered with it.
stop_distribution(already) ->
	ok;
stop_distribution({started, Epmd}) ->
	ok = net_kernel:stop(),
	case Epmd of
		started -> ct:log("epmd -kill: ~s", [os:cmd("epmd -kill")]);
		running -> ok
	end.

%% A node with this one's code paths (OTP's own aside) and gun started.
start_peer(Prefix) ->
	[_, Host] = string:split(atom_to_list(node()), "@"),
	Paths = [P || P <- code:get_path(), not lists:prefix(code:lib_dir(), P)],
	{ok, Peer, Node} = peer:start(#{
		name => peer:random_name(Prefix),
		host => Host,
		longnames => net_kernel:longnames(),
		args => ["-pa"|Paths]
	}),
	{ok, _} = erpc:call(Node, application, ensure_all_started, [gun]),
	{Peer, Node}.

%% Stops a node at once, as a crash would.
halt_node(Node) ->
	MRef = monitor(process, rpc:call(Node, erlang, whereis, [init])),
	erpc:cast(Node, erlang, halt, []),
	receive {'DOWN', MRef, process, _, _} -> ok after ?T -> error({node_still_up, Node}) end.

%% Helpers: connections.

%% A connection on Node owned by the caller (gun_sup's child there, as
%% gun:open/3 run on Node would make it).
conn_on(Node, Port, Opts) ->
	{ok, ConnPid} = supervisor:start_child({gun_sup, Node}, [self(), "127.0.0.1", Port, Opts]),
	Node = node(ConnPid),
	ConnPid.

upgraded(Node, Port, Path) ->
	ConnPid = conn_on(Node, Port, #{retry => 0}),
	{ok, http} = gun:await_up(ConnPid, ?T),
	_ = gun:ws_upgrade(ConnPid, Path),
	{gun_ws_upgrade, ConnPid, ok, _} = next(),
	ConnPid.

%% How the server saw the connection tagged Id end (its close code).
lastclose(Port, Id) ->
	suite_helper:lastclose(suite_helper:open_up("127.0.0.1", Port, #{}), Id).

%% What a node holds, and back to (at most) that, polled for up to 5 s.
snapshot(Node) ->
	erpc:call(Node, suite_helper, snapshot, []).

no_leak(Node, Snap) ->
	erpc:call(Node, suite_helper, no_leak, [Snap]).

%% gun:close/1, and ConnPid, on whichever node, is gone with reason
%% normal. (The monitor and the close go from here to ConnPid in order.)
close_conn(ConnPid) ->
	MRef = monitor(process, ConnPid),
	ok = gun:close(ConnPid),
	normal = down(ConnPid, MRef),
	ok = gun:flush(ConnPid).

%% An owner on another node: it opens a connection on ConnNode (so the
%% connection's owner is remote there), upgrades it and waits.
remote_owner(Test, ConnNode, Port, Path) ->
	{ok, ConnPid} = supervisor:start_child({gun_sup, ConnNode}, [self(), "127.0.0.1", Port, #{retry => 0}]),
	{ok, http} = gun:await_up(ConnPid, ?T),
	_ = gun:ws_upgrade(ConnPid, Path),
	receive {gun_ws_upgrade, ConnPid, ok, _} -> ok after ?T -> exit(no_upgrade) end,
	Test ! {owner_ready, self(), ConnPid},
	receive stop -> ok end.

spawn_remote_owner(OwnerNode, Port, Path) ->
	Owner = spawn(OwnerNode, ?MODULE, remote_owner, [self(), node(), Port, Path]),
	receive
		{owner_ready, Owner, ConnPid} -> {Owner, ConnPid}
	after ?T ->
		error(owner_not_ready)
	end.

%% An owner on the connection's node that passes every message on to Test.
forwarder(Test, Port) ->
	{ok, ConnPid} = gun:open("127.0.0.1", Port, #{retry => 0}),
	MRef = monitor(process, Test),
	Test ! {forwarder, self(), ConnPid},
	forward(Test, MRef).

forward(Test, MRef) ->
	receive
		{'DOWN', MRef, process, Test, _} -> ok;
		Msg -> Test ! {via_owner, Msg}, forward(Test, MRef)
	end.

via_owner() ->
	receive
		{via_owner, Msg} -> Msg
	after ?T ->
		error({timeout, {mailbox, element(2, process_info(self(), messages))}})
	end.

%% Cases.

%% The connection on node B, its owner here: every WebSocket call from
%% here, the owner's messages through the relay on B, gun:info/1 as B
%% itself sees it (the real owner, not the relay).
remote_owner_websocket(Config) ->
	Node = ?config(node, Config),
	Port = ?config(ws_port, Config),
	ConnPid = conn_on(Node, Port, #{retry => 0}),
	{ok, http} = gun:await_up(ConnPid, ?T),
	Self = self(),
	#{owner := Self, protocol := http, origin_host := "127.0.0.1", origin_port := Port,
		transport := tcp} = gun:info(ConnPid),
	StreamRef = gun_ws:upgrade(ConnPid, "/echo", [{<<"x-from">>, <<"elsewhere">>}], #{closing_timeout => 5000}),
	{gun_ws_upgrade, ConnPid, ok, _} = next(),
	Info = #{protocol := ws} = gun:info(ConnPid),
	Info = erpc:call(Node, gun, info, [ConnPid]),
	%% sys's calls are messages: they work from here too.
	{conn, _, _} = sys:get_state(ConnPid),
	{status, ConnPid, {module, gun_conn}, _} = sys:get_status(ConnPid),
	ok = echo(ConnPid, <<"one">>),
	ok = gun:ws_send(ConnPid, [{text, <<"a">>}, {binary, [<<1>>, [<<2>>]]}, ping, {text, <<"b">>}]),
	{gun_ws, ConnPid, {text, <<"a">>}} = next(),
	{gun_ws, ConnPid, {binary, <<1, 2>>}} = next(),
	{gun_ws, ConnPid, {text, <<"b">>}} = next(),
	%% Too large for a normal scheduler: the dirty call, there as here.
	Big = binary:copy(<<"0123456789abcdef">>, 65536),
	ok = gun:ws_send(ConnPid, {binary, Big}),
	{gun_ws, ConnPid, {binary, Big}} = next(),
	ok = gun:update_flow(ConnPid, StreamRef, 1),
	ok = echo(ConnPid, <<"two">>),
	%% Calls from here leave it hibernating on its node, as before them.
	hibernated(ConnPid),
	MRef = monitor(process, ConnPid),
	ok = gun:ws_send(ConnPid, {close, 4001, <<"done">>}),
	{gun_ws, ConnPid, {close, 4001, <<"done">>}} = next(),
	{gun_down, ConnPid, ws, normal, [StreamRef], []} = next(),
	normal = down(ConnPid, MRef),
	ok = gun:flush(ConnPid),
	no_messages_from(ConnPid).

%% HTTP from here to a connection on B: requests with and without a
%% body, a body streamed with gun:data/4, a large body, cancel/2.
remote_owner_http(Config) ->
	Node = ?config(node, Config),
	ConnPid = conn_on(Node, ?config(http_port, Config), #{retry => 0}),
	{ok, http} = gun:await_up(ConnPid, ?T),
	Get = gun:get(ConnPid, "/fixed"),
	{response, nofin, 200, _} = gun:await(ConnPid, Get),
	{ok, <<"Hello world!">>} = gun:await_body(ConnPid, Get),
	Head = gun:head(ConnPid, "/fixed", [{<<"x-one">>, <<"1">>}]),
	{response, fin, 200, _} = gun:await(ConnPid, Head),
	Post = gun:post(ConnPid, "/echo", [{<<"content-type">>, <<"text/plain">>}], <<"posted">>),
	{response, nofin, 200, _} = gun:await(ConnPid, Post),
	{ok, <<"posted">>} = gun:await_body(ConnPid, Post),
	Streamed = gun:request(ConnPid, <<"PUT">>, "/echo", [{<<"content-length">>, <<"6">>}]),
	ok = gun:data(ConnPid, Streamed, nofin, <<"abc">>),
	ok = gun:data(ConnPid, Streamed, fin, [<<"d">>, "ef"]),
	{response, nofin, 200, _} = gun:await(ConnPid, Streamed),
	{ok, <<"abcdef">>} = gun:await_body(ConnPid, Streamed),
	Big = binary:copy(<<"0123456789abcdef">>, 65536),
	Large = gun:post(ConnPid, "/echo", [], Big),
	{response, nofin, 200, _} = gun:await(ConnPid, Large),
	{ok, Big} = gun:await_body(ConnPid, Large),
	Slow = gun:get(ConnPid, "/slow?ms=300"),
	ok = gun:cancel(ConnPid, Slow),
	{error, timeout} = gun:await(ConnPid, Slow, 1000),
	Again = gun:get(ConnPid, "/fixed"),
	{response, nofin, 200, _} = gun:await(ConnPid, Again),
	{ok, <<"Hello world!">>} = gun:await_body(ConnPid, Again),
	hibernated(ConnPid),
	ok = gun:close(ConnPid),
	false = erpc:call(Node, erlang, is_process_alive, [ConnPid]),
	ok = gun:flush(ConnPid).

%% The connection and its owner on B, the calls from here: no relay,
%% the same results, the messages to the owner on B.
remote_calls_local_owner(Config) ->
	Node = ?config(node, Config),
	Forwarder = spawn(Node, ?MODULE, forwarder, [self(), ?config(ws_port, Config)]),
	ConnPid = receive {forwarder, Forwarder, C} -> C after ?T -> error(no_forwarder) end,
	{gun_up, ConnPid, http} = via_owner(),
	#{owner := Forwarder} = gun:info(ConnPid),
	StreamRef = gun:ws_upgrade(ConnPid, "/echo", [], #{silence_pings => false}),
	{gun_ws_upgrade, ConnPid, ok, _} = via_owner(),
	ok = gun:ws_send(ConnPid, {text, <<"hello">>}),
	{gun_ws, ConnPid, {text, <<"hello">>}} = via_owner(),
	ok = gun:ws_send(ConnPid, {ping, <<"p">>}),
	{gun_ws, ConnPid, {pong, <<"p">>}} = via_owner(),
	MRef = monitor(process, ConnPid),
	ok = gun:shutdown(ConnPid),
	{gun_ws, ConnPid, {close, 1001, _}} = via_owner(),
	{gun_down, ConnPid, ws, normal, [StreamRef], []} = via_owner(),
	normal = down(ConnPid, MRef),
	exit(Forwarder, kill).

%% gun:close/1 from here: ConnPid on B is dead on return, as locally.
remote_close(Config) ->
	Node = ?config(node, Config),
	Snap = snapshot(Node),
	ConnPid = upgraded(Node, ?config(ws_port, Config), "/echo"),
	MRef = monitor(process, ConnPid),
	ok = gun:close(ConnPid),
	false = erpc:call(Node, erlang, is_process_alive, [ConnPid]),
	normal = down(ConnPid, MRef),
	%% The relay went with it.
	no_leak(Node, Snap),
	ok = gun:flush(ConnPid),
	no_messages_from(ConnPid).

%% Malformed arguments raise in the caller, here as on B itself, and
%% nothing reaches the connection, which works on.
badarg_in_caller(Config) ->
	Node = ?config(node, Config),
	ConnPid = upgraded(Node, ?config(ws_port, Config), "/echo"),
	Ref = make_ref(),
	Calls = [
		{frame_not_a_frame, fun(C) -> gun:ws_send(C, {text, 1}) end},
		{frame_unknown_atom, fun(C) -> gun:ws_send(C, hello) end},
		{frame_ping_over_125, fun(C) -> gun:ws_send(C, {ping, binary:copy(<<0>>, 126)}) end},
		{frame_close_reason_over_123, fun(C) -> gun:ws_send(C, {close, 1000, binary:copy(<<"x">>, 124)}) end},
		{frame_bad_in_list, fun(C) -> gun:ws_send(C, [{text, <<"ok">>}, {text, <<"x">>, extra}]) end},
		%% An improper list is a badarg too, never a panic of the list walk.
		{frame_improper_list, fun(C) -> gun:ws_send(C, [{text, <<"ok">>}|tail]) end},
		{frame_bad_after_many, fun(C) -> gun:ws_send(C, lists:duplicate(20000, {text, <<"x">>}) ++ [bad]) end},
		{data_bad_fin, fun(C) -> gun:data(C, Ref, maybe, <<>>) end},
		{data_not_iodata, fun(C) -> gun:data(C, Ref, fin, [1000]) end},
		{request_bad_header, fun(C) -> gun:get(C, "/", [{<<"a">>, 1}]) end},
		{request_bad_path, fun(C) -> gun:get(C, 42) end},
		{request_bad_body, fun(C) -> gun:post(C, "/", [], {body}) end},
		{upgrade_bad_headers, fun(C) -> gun:ws_upgrade(C, "/echo", [bogus]) end},
		{update_flow_too_big, fun(C) -> gun:update_flow(C, Ref, 1 bsl 70) end}
	],
	lists:foreach(fun({Name, Call}) ->
		Here = try Call(ConnPid) of R -> {returned, R} catch Class:Reason -> {Class, Reason} end,
		There = try erpc:call(Node, erlang, apply, [Call, [ConnPid]]) of
			R2 -> {returned, R2}
		catch error:{exception, Reason2, _} -> {error, Reason2}
		end,
		ct:log("~p: here ~p, on the connection's node ~p", [Name, Here, There]),
		{Name, There} = {Name, Here},
		{Name, {error, _}} = {Name, Here}
	end, Calls),
	[{error, badarg} = {error, element(2, catch_error(F, ConnPid))}
		|| {N, F} <- Calls, lists:prefix("frame_", atom_to_list(N))],
	ok = echo(ConnPid, <<"still fine">>),
	no_messages_from(ConnPid),
	true = erpc:call(Node, erlang, is_process_alive, [ConnPid]),
	close_conn(ConnPid).

catch_error(F, ConnPid) ->
	try F(ConnPid) catch error:Reason -> {error, Reason} end.

%% gun:ws_send/2 before the upgrade: the owner's badstate, the same text
%% as for a connection of this node.
badstate_before_upgrade(Config) ->
	Port = ?config(ws_port, Config),
	Remote = conn_on(?config(node, Config), Port, #{retry => 0}),
	Local = conn_on(node(), Port, #{retry => 0}),
	{ok, http} = gun:await_up(Remote, ?T),
	{ok, http} = gun:await_up(Local, ?T),
	ok = gun:ws_send(Remote, {text, <<"too early">>}),
	{gun_error, Remote, {badstate, Text}} = next(),
	ok = gun:ws_send(Local, {text, <<"too early">>}),
	{gun_error, Local, {badstate, Text}} = next(),
	close_conn(Remote),
	close_conn(Local).

%% A thousand messages from the server reach the owner here in order
%% through the relay on B.
relay_keeps_order(Config) ->
	ConnPid = upgraded(?config(node, Config), ?config(ws_port, Config), "/push?n=1000&size=1000&seq=1"),
	Base = << <<(I rem 256)>> || I <- lists:seq(0, 1255) >>,
	lists:foreach(fun(K) ->
		Expected = binary:part(Base, K rem 256, 1000),
		case next() of
			{gun_ws, ConnPid, {binary, Expected}} -> ok;
			Other -> error({message, K, Other})
		end
	end, lists:seq(0, 999)),
	close_conn(ConnPid).

%% The connection's node goes down: ConnPid is then as a dead ConnPid of
%% this node (the same results, no message); awaiting it returns at once.
conn_node_down(Config) ->
	{Peer, Node} = start_peer(gun_c),
	Port = ?config(ws_port, Config),
	Remote = upgraded(Node, Port, "/echo"),
	ok = echo(Remote, <<"before">>),
	MRef = monitor(process, Remote),
	halt_node(Node),
	noconnection = down(Remote, MRef),
	Dead = upgraded(node(), Port, "/echo"),
	close_conn(Dead),
	Calls = [
		fun(C) -> gun:ws_send(C, {text, <<"lost">>}) end,
		fun(C) -> gun:ws_send(C, [{text, <<"lost">>}, close]) end,
		fun(C) -> catch gun:ws_send(C, {text, 1}) end,
		fun(C) -> catch gun:info(C) end,
		fun(C) -> is_reference(gun:ws_upgrade(C, "/echo")) end,
		fun(C) -> is_reference(gun:get(C, "/")) end,
		fun(C) -> gun:data(C, make_ref(), fin, <<"x">>) end,
		fun(C) -> gun:cancel(C, make_ref()) end,
		fun(C) -> gun:update_flow(C, make_ref(), 1) end,
		fun(C) -> gun:shutdown(C) end,
		fun(C) -> gun:close(C) end,
		fun(C) -> gun:flush(C) end
	],
	T0 = now_ms(),
	Results = [{normalize(F(Remote), Remote), normalize(F(Dead), Dead)} || F <- Calls],
	ct:log("(remote, dead local): ~p in ~p ms", [Results, now_ms() - T0]),
	[R = D || {R, D} <- Results],
	{error, noconnection} = gun:await(Remote, make_ref(), ?T),
	{error, noconnection} = gun:await_up(Remote, ?T),
	{error, noproc} = gun:await(Dead, make_ref(), ?T),
	receive after 200 -> ok end,
	no_messages_from(Remote),
	catch peer:stop(Peer),
	ok.

%% Each ConnPid in a result stands for "the ConnPid", whichever it is.
normalize({'EXIT', {Reason, {gun, F, [C]}}}, C) -> {'EXIT', {Reason, {gun, F, [conn]}}};
normalize({'EXIT', {badarg, _}}, _) -> badarg;
normalize(R, _) -> R.

%% The owner's node goes down: the relay sees it, the connection closes
%% as on the owner's death (close 1001), and the connection's node (this
%% one) is back to what it held before: no connection, task, socket or
%% process left.
owner_node_down(Config) ->
	Port = ?config(ws_port, Config),
	Snap = snapshot(node()),
	{Peer, OwnerNode} = start_peer(gun_d),
	Id = id(),
	{_, ConnPid} = spawn_remote_owner(OwnerNode, Port, "/echo?id=" ++ Id),
	true = node(ConnPid) =:= node(),
	MRef = monitor_conn(ConnPid),
	halt_node(OwnerNode),
	{shutdown, owner_gone} = down(ConnPid, MRef),
	<<"1001">> = lastclose(Port, Id),
	catch peer:stop(Peer),
	no_leak(node(), Snap).

%% The owner on B ends (normally): the same as the owner's death on the
%% connection's node.
remote_owner_exits(Config) ->
	Port = ?config(ws_port, Config),
	Snap = snapshot(node()),
	Id = id(),
	{Owner, ConnPid} = spawn_remote_owner(?config(node, Config), Port, "/echo?id=" ++ Id),
	#{owner := Owner} = gun:info(ConnPid),
	MRef = monitor_conn(ConnPid),
	Owner ! stop,
	{shutdown, owner_gone} = down(ConnPid, MRef),
	<<"1001">> = lastclose(Port, Id),
	no_leak(node(), Snap).

%% application:stop(gun) here ends the connections of this node, those
%% with an owner on B too (their relays with them), and leaves those of
%% B alone; the application starts again.
app_stop_with_remote_owners(Config) ->
	Node = ?config(node, Config),
	Port = ?config(ws_port, Config),
	Snap = snapshot(node()),
	Owned = [spawn_remote_owner(Node, Port, "/echo") || _ <- lists:seq(1, 3)],
	OnB = upgraded(Node, Port, "/echo"),
	MRefs = [{C, monitor_conn(C)} || {_, C} <- Owned],
	ok = application:stop(gun),
	[shutdown = down(C, MRef) || {C, MRef} <- MRefs],
	no_leak(Snap#{procs := maps:get(procs, Snap) - 2}),
	ok = echo(OnB, <<"B is fine">>),
	ok = application:start(gun),
	Again = upgraded(node(), Port, "/echo"),
	ok = echo(Again, <<"started again">>),
	close_conn(Again),
	close_conn(OnB),
	[Owner ! stop || {Owner, _} <- Owned],
	flush_mailbox(),
	no_leak(Snap).

%% Mode 2.

%% A Websocket on B, upgraded from here: gun_upgrade and gun_ws with the
%% StreamRef come here (the stream's reply_to, the caller), ws_send/3
%% and await/2,3 from here, gun:info/1 from here; the owner on B sees
%% the gun_down.
remote2_websocket(Config) ->
	{Owner, ConnPid} = conn2_on(?config(node, Config), ?config(ws_port, Config)),
	StreamRef = gun:ws_upgrade(ConnPid, "/echo", #{<<"x-from">> => <<"elsewhere">>}),
	{upgrade, [<<"websocket">>], _} = gun:await(ConnPid, StreamRef, ?T),
	#{owner := Owner, protocol := ws, state_name := connected} = gun:info(ConnPid),
	ok = gun:ws_send(ConnPid, StreamRef, {text, <<"one">>}),
	{gun_ws, ConnPid, StreamRef, {text, <<"one">>}} = next2(),
	ok = gun:ws_send(ConnPid, StreamRef, [{text, <<"a">>}, {binary, [<<1>>, [<<2>>]]}]),
	{ws, {text, <<"a">>}} = gun:await(ConnPid, StreamRef),
	{ws, {binary, <<1, 2>>}} = gun:await(ConnPid, StreamRef, ?T),
	Big = binary:copy(<<"0123456789abcdef">>, 65536),
	ok = gun:ws_send(ConnPid, StreamRef, {binary, Big}),
	{ws, {binary, Big}} = gun:await(ConnPid, StreamRef, ?T),
	%% A malformed frame raises here, as on B.
	{'EXIT', {badarg, _}} = (catch gun:ws_send(ConnPid, StreamRef, {text, 1})),
	MRef = monitor(process, ConnPid),
	ok = gun:ws_send(ConnPid, StreamRef, {close, 4001, <<"done">>}),
	{gun_ws, ConnPid, StreamRef, {close, 4001, <<"done">>}} = next2(),
	{gun_down, ConnPid, ws, normal, [StreamRef]} = via_owner(),
	normal = down(ConnPid, MRef),
	ok = gun:flush(ConnPid),
	no_messages_from(ConnPid).

%% HTTP on B from here: Gun 2's request functions (with ReqOpts too),
%% await/await_body, headers/4 with data/4, flow with update_flow/3,
%% cancel/2, ping/1 (which HTTP/1.1 has not: the owner on B hears of it).
remote2_http(Config) ->
	{_Owner, ConnPid} = conn2_on(?config(node, Config), ?config(http_port, Config)),
	Get = gun:get(ConnPid, "/fixed"),
	{response, nofin, 200, _} = gun:await(ConnPid, Get),
	{ok, <<"Hello world!">>} = gun:await_body(ConnPid, Get),
	Get4 = gun:get(ConnPid, "/fixed", #{<<"x-one">> => <<"1">>}, #{}),
	{response, nofin, 200, _} = gun:await(ConnPid, Get4, ?T),
	{ok, <<"Hello world!">>} = gun:await_body(ConnPid, Get4, ?T),
	Post = gun:post(ConnPid, "/echo", [{<<"content-type">>, <<"text/plain">>}], <<"posted">>, #{}),
	{response, nofin, 200, _} = gun:await(ConnPid, Post),
	{ok, <<"posted">>} = gun:await_body(ConnPid, Post),
	Streamed = gun:headers(ConnPid, <<"PUT">>, "/echo", [{<<"content-length">>, <<"6">>}]),
	ok = gun:data(ConnPid, Streamed, nofin, <<"abc">>),
	ok = gun:data(ConnPid, Streamed, fin, [<<"d">>, "ef"]),
	{response, nofin, 200, _} = gun:await(ConnPid, Streamed),
	{ok, <<"abcdef">>} = gun:await_body(ConnPid, Streamed),
	Big = binary:copy(<<"0123456789abcdef">>, 65536),
	Large = gun:request(ConnPid, <<"POST">>, "/echo", [], Big, #{}),
	{response, nofin, 200, _} = gun:await(ConnPid, Large),
	{ok, Big} = gun:await_body(ConnPid, Large),
	Flow = gun:get(ConnPid, "/chunked", [], #{flow => 1}),
	{response, nofin, 200, _} = gun:await(ConnPid, Flow),
	{data, nofin, _} = gun:await(ConnPid, Flow),
	{error, timeout} = gun:await(ConnPid, Flow, 300),
	ok = gun:update_flow(ConnPid, Flow, 1000),
	{ok, _} = gun:await_body(ConnPid, Flow),
	Slow = gun:get(ConnPid, "/slow?ms=300"),
	ok = gun:cancel(ConnPid, Slow),
	{error, timeout} = gun:await(ConnPid, Slow, 1000),
	%% A bad header raises here, with Gun 2's term.
	{'EXIT', {{invalid_request_header, <<"a">>, _}, _}} =
		(catch gun:get(ConnPid, "/", [{<<"a">>, <<"x\r\ny">>}])),
	MRef = monitor(process, ConnPid),
	PingRef = gun:ping(ConnPid),
	{gun_down, ConnPid, http, {error, {ping_unsupported_by_protocol, PingRef}}, []} = via_owner(),
	_ = down(ConnPid, MRef),
	ok = gun:flush(ConnPid).

%% reply_to naming a process of another node than the connection's, in
%% Gun 2's four forms: a pid here, from a caller here and from a caller
%% on B; a fun, {Fun, Args} and {M, F, A} (run on B, as Gun 2 runs them
%% in the connection's process) sending here.
remote2_reply_to(Config) ->
	Node = ?config(node, Config),
	Test = self(),
	{_Owner, ConnPid} = conn2_on(Node, ?config(http_port, Config)),
	Here = collector(node(), pid_here),
	R1 = gun:get(ConnPid, "/fixed", [], #{reply_to => Here}),
	{gun_response, ConnPid, R1, nofin, 200, _} = tagged(pid_here),
	{gun_data, ConnPid, R1, fin, <<"Hello world!">>} = tagged(pid_here),
	R2 = erpc:call(Node, gun, get, [ConnPid, "/fixed", [], #{reply_to => Here}]),
	{gun_response, ConnPid, R2, nofin, 200, _} = tagged(pid_here),
	{gun_data, ConnPid, R2, fin, <<"Hello world!">>} = tagged(pid_here),
	Forms = [
		{fun1, fun(Msg) -> Test ! {fun1, Msg} end},
		{fun_args, {fun(Msg, Tag) -> Test ! {Tag, Msg} end, [fun_args]}},
		{mfa, {?MODULE, tagged_reply, [Test, mfa]}}
	],
	lists:foreach(fun({Tag, ReplyTo}) ->
		R = gun:get(ConnPid, "/fixed", [], #{reply_to => ReplyTo}),
		{gun_response, ConnPid, R, nofin, 200, _} = tagged(Tag),
		{gun_data, ConnPid, R, fin, <<"Hello world!">>} = tagged(Tag),
		%% From B, too.
		R3 = erpc:call(Node, gun, get, [ConnPid, "/fixed", [], #{reply_to => ReplyTo}]),
		{gun_response, ConnPid, R3, nofin, 200, _} = tagged(Tag),
		{gun_data, ConnPid, R3, fin, <<"Hello world!">>} = tagged(Tag)
	end, Forms),
	%% A Websocket whose reply_to is here.
	WsConn = element(2, conn2_on(Node, ?config(ws_port, Config))),
	Ws = gun:ws_upgrade(WsConn, "/echo", [], #{reply_to => Here}),
	{gun_upgrade, WsConn, Ws, [<<"websocket">>], _} = tagged(pid_here),
	ok = gun:ws_send(WsConn, Ws, {text, <<"to here">>}),
	{gun_ws, WsConn, Ws, {text, <<"to here">>}} = tagged(pid_here),
	no_messages_from(ConnPid),
	close_conn(WsConn),
	close_conn(ConnPid),
	exit(Here, kill).

%% set_owner/2 to a process of another node: the owner's messages go
%% there, gun:info/1 names it, and its death is the owner's death, with
%% its reason ({shutdown, {owner_down, Reason}}), here and on B.
remote2_set_owner(Config) ->
	Node = ?config(node, Config),
	Port = ?config(ws_port, Config),
	lists:foreach(fun(ConnNode) ->
		{_, ConnPid} = conn2_on(ConnNode, Port),
		NewOwner = collector(Node, new_owner),
		ok = gun:set_owner(ConnPid, NewOwner),
		StreamRef = gun:ws_upgrade(ConnPid, "/echo"),
		{upgrade, [<<"websocket">>], _} = gun:await(ConnPid, StreamRef, ?T),
		ok = owner_is(ConnPid, NewOwner, 50),
		MRef = monitor(process, ConnPid),
		exit(NewOwner, boom),
		{shutdown, {owner_down, boom}} = down(ConnPid, MRef),
		ok = gun:flush(ConnPid)
	end, [node(), Node]).

%% The node of an owner set with set_owner/2 goes down: the connection
%% here ends as on its owner's death, with {owner_down, noconnection},
%% and this node holds no connection, task or process more than before.
remote2_owner_node_down(Config) ->
	%% After the peer's start, and with the name resolver's port program
	%% running: calling a halted node looks its host up, which starts it
	%% once in a VM (owner_node_down run alone shows it too).
	{Peer, OwnerNode} = start_peer(gun_e),
	_ = inet:gethostbyname("localhost"),
	Snap = snapshot(node()),
	{OldOwner, ConnPid} = conn2_on(node(), ?config(ws_port, Config)),
	NewOwner = collector(OwnerNode, new_owner),
	ok = gun:set_owner(ConnPid, NewOwner),
	ok = owner_is(ConnPid, NewOwner, 50),
	exit(OldOwner, kill),
	MRef = monitor(process, ConnPid),
	halt_node(OwnerNode),
	{shutdown, {owner_down, noconnection}} = down(ConnPid, MRef),
	catch peer:stop(Peer),
	flush_mailbox(),
	no_leak(node(), Snap).

%% stream_info/2 from here of streams on B: running with the reply_to as
%% given, a fun's too; {ok, undefined} once over, or for a ConnPid that
%% is gone.
remote2_stream_info(Config) ->
	Self = self(),
	{_, ConnPid} = conn2_on(?config(node, Config), ?config(http_port, Config)),
	{ok, undefined} = gun:stream_info(ConnPid, make_ref()),
	Ref = gun:get(ConnPid, "/slow?ms=500"),
	{ok, #{ref := Ref, reply_to := Self, state := running}} = gun:stream_info(ConnPid, Ref),
	Fun = fun(Msg) -> Self ! {relayed, Msg} end,
	Ref2 = gun:get(ConnPid, "/slow?ms=500", [], #{reply_to => Fun}),
	{ok, #{ref := Ref2, reply_to := Fun, state := running}} = gun:stream_info(ConnPid, Ref2),
	{response, nofin, 200, _} = gun:await(ConnPid, Ref, ?T),
	{ok, <<"slow">>} = gun:await_body(ConnPid, Ref, ?T),
	{ok, undefined} = gun:stream_info(ConnPid, Ref),
	{gun_response, ConnPid, Ref2, nofin, 200, _} = tagged(relayed),
	close_conn(ConnPid),
	{ok, undefined} = gun:stream_info(ConnPid, Ref2).
