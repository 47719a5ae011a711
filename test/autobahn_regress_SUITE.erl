%% Regression tests for what the Autobahn|Testsuite client run checks
%% (scripts/autobahn.sh), one per class of behaviour, against scripted
%% gen_tcp peers (raw_peer) so they run without the fuzzingserver:
%% failing fast and closing cleanly after a protocol error, and
%% permessage-deflate (RFC 7692): the offer, the checking of the answer,
%% compressed messages both ways with and without context takeover,
%% window sizes, RSV1 rules and the decompression bomb limit.
%% The server side uses Erlang's zlib, an implementation independent of ours.
-module(autobahn_regress_SUITE).
-compile([export_all, nowarn_export_all]).

-include_lib("common_test/include/ct.hrl").
-include("suite_helper.hrl").

-import(suite_helper, [down/2, no_more_from/1]).

suite() ->
	[{timetrap, {seconds, 60}}].

init_per_suite(Config) ->
	{ok, _} = application:ensure_all_started(gun),
	Config.

end_per_suite(_Config) ->
	ok.

all() ->
	[
		%% Cases 3.2, 4.1.3, 5.15 (NON-STRICT): fail at once, then a clean close.
		fail_fast_after_delivered_message,
		no_frames_after_failing,
		%% Cases 12.* and 13.*.
		no_offer_without_compress,
		deflate_offer_default,
		deflate_offer_options,
		deflate_offer_per_upgrade,
		deflate_declined_by_server,
		deflate_echo_context_takeover,
		deflate_server_no_context_takeover,
		deflate_client_no_context_takeover,
		deflate_client_window_9,
		deflate_client_window_8_uncompressed,
		deflate_fragmented_and_uncompressed,
		deflate_empty_message,
		deflate_rsv1_on_continuation,
		deflate_rsv1_on_control,
		deflate_bad_data,
		deflate_bad_utf8_fails_fast,
		deflate_bomb_stopped,
		deflate_answer_unknown_param,
		deflate_answer_repeated_param,
		deflate_answer_bad_window_bits,
		deflate_answer_twice,
		deflate_answer_other_extension,
		deflate_answer_missing_requested,
		deflate_options_checked,
		%% Against another implementation: Python's websockets.
		python_websockets_default,
		python_websockets_strict
	].

%% Helpers.

%% gun:open and gun:ws_upgrade; the peer reads the request.
open_upgrade(Opts) ->
	raw_peer:open_upgrade(Opts, fun(ConnPid) -> gun:ws_upgrade(ConnPid, "/") end).

%% The 101 with a sec-websocket-extensions answer (none if undefined).
answer(#{sock := Sock, req := Req}, Extensions) ->
	Headers = raw_peer:headers_101(Req) ++ case Extensions of
		undefined -> [];
		_ -> [{<<"Sec-WebSocket-Extensions">>, Extensions}]
	end,
	raw_peer:send(Sock, raw_peer:response_101(Req, Headers)).

%% An upgraded connection with permessage-deflate answered as given.
connect(WsOpts, Extensions) ->
	St = #{conn := ConnPid} = open_upgrade(#{ws_opts => WsOpts#{compress => true}}),
	answer(St, Extensions),
	?NEXT(ConnPid, {gun_ws_upgrade, ConnPid, ok, _}),
	St.

offer(#{req := Req}) ->
	raw_peer:header(<<"sec-websocket-extensions">>, Req).

%% The server's compressor: raw deflate, sync flush, tail removed.
deflater() ->
	deflater(15).

deflater(Bits) ->
	Z = zlib:open(),
	ok = zlib:deflateInit(Z, default, deflated, -Bits, 8, default),
	Z.

compress(Z, Data) ->
	Out = iolist_to_binary(zlib:deflate(Z, Data, sync)),
	Size = byte_size(Out) - 4,
	<<Body:Size/binary, 0, 0, 255, 255>> = Out,
	Body.

%% The server's decompressor for the client's messages.
inflater(Bits) ->
	Z = zlib:open(),
	ok = zlib:inflateInit(Z, -Bits),
	Z.

inflate(Z, Data) ->
	iolist_to_binary(zlib:inflate(Z, <<Data/binary, 0, 0, 255, 255>>)).

compressed_frame(Opcode, Payload) ->
	raw_peer:frame(#{opcode => Opcode, rsv => 4, payload => Payload}).

%% One client data frame: masked, whole, RSV1 as expected.
client_frame(Sock, Opcode, Rsv) ->
	case raw_peer:recv_frame(Sock) of
		#{masked := true, fin := true, rsv := Rsv, opcode := Opcode, payload := Payload} ->
			Payload;
		Frame ->
			ct:fail({unexpected_client_frame, {opcode, Opcode}, {rsv, Rsv}, Frame})
	end.

expect_protocol_error(#{conn := ConnPid, mref := MRef, ref := StreamRef, sock := Sock}, Code, Why) ->
	case raw_peer:expect_frame(Sock, 8) of
		<<Code:16, _/binary>> -> ok;
		ClosePayload -> ct:fail({client_close_payload, {expected_code, Code}, ClosePayload})
	end,
	gen_tcp:close(Sock),
	?NEXT(ConnPid, {gun_error, ConnPid, StreamRef, {error, Why}}),
	?NEXT(ConnPid, {gun_down, ConnPid, ws, {error, Why}, [StreamRef], []}),
	{shutdown, {error, Why}} = down(ConnPid, MRef),
	no_more_from(ConnPid).

upgrade_failure(Extensions, Why) ->
	St = open_upgrade(#{ws_opts => #{compress => true}}),
	answer(St, Extensions),
	raw_peer:expect_upgrade_failure(St, Why).

%% Fail fast, close cleanly.

%% A send after the failure is refused like one on a connection that is
%% down (or, if it raced ahead of the failure, dropped): either way it
%% must not reach the wire, which the callers check.
skip_badstate(ConnPid) ->
	receive
		{gun_error, ConnPid, {badstate, _}} -> ok
	after 100 ->
		ok
	end.

%% Autobahn 3.2: a message, then a frame with RSV2 and a ping in the same
%% packet. The message is delivered, the client closes with 1002 at once
%% (the owner's echo comes too late: nothing may follow our close), and
%% it leaves closing the TCP connection to the server (RFC 6455 §7.1.1).
fail_fast_after_delivered_message(_) ->
	St = #{conn := ConnPid, sock := Sock} = open_upgrade(#{}),
	answer(St, undefined),
	?NEXT(ConnPid, {gun_ws_upgrade, ConnPid, ok, _}),
	raw_peer:send(Sock, [raw_peer:frame(1, <<"Hello, world!">>),
		raw_peer:frame(#{opcode => 1, rsv => 2, payload => <<"Hello, world!">>}),
		raw_peer:frame(9, <<>>)]),
	?NEXT(ConnPid, {gun_ws, ConnPid, {text, <<"Hello, world!">>}}),
	ok = gun:ws_send(ConnPid, {text, <<"Hello, world!">>}),
	<<1002:16>> = raw_peer:expect_frame(Sock, 8),
	skip_badstate(ConnPid),
	%% The client waits for the server to close first: its socket is
	%% still open a while after its close frame.
	{error, timeout} = gen_tcp:recv(Sock, 0, 200),
	raw_peer:send(Sock, raw_peer:frame(8, <<1002:16>>)),
	gen_tcp:close(Sock),
	?NEXT(ConnPid, {gun_error, ConnPid, _, {error, badframe}}),
	?NEXT(ConnPid, {gun_down, ConnPid, ws, {error, badframe}, [_], []}),
	#{mref := MRef} = St,
	{shutdown, {error, badframe}} = down(ConnPid, MRef),
	no_more_from(ConnPid).

%% Autobahn 5.15: after the failure nothing else is sent (no pong, no
%% echo), and the close is the last frame.
no_frames_after_failing(_) ->
	St = #{conn := ConnPid, sock := Sock} = open_upgrade(#{}),
	answer(St, undefined),
	?NEXT(ConnPid, {gun_ws_upgrade, ConnPid, ok, _}),
	raw_peer:send(Sock, [raw_peer:frame(#{opcode => 1, fin => false, payload => <<"fragment1">>}),
		raw_peer:frame(#{opcode => 0, payload => <<"fragment2">>}),
		raw_peer:frame(#{opcode => 0, fin => false, payload => <<"fragment3">>}),
		raw_peer:frame(9, <<"ping">>)]),
	?NEXT(ConnPid, {gun_ws, ConnPid, {text, <<"fragment1fragment2">>}}),
	ok = gun:ws_send(ConnPid, {text, <<"fragment1fragment2">>}),
	<<1002:16>> = raw_peer:expect_frame(Sock, 8),
	skip_badstate(ConnPid),
	{error, timeout} = gen_tcp:recv(Sock, 0, 200),
	gen_tcp:close(Sock),
	?NEXT(ConnPid, {gun_error, ConnPid, _, {error, badframe}}),
	?NEXT(ConnPid, {gun_down, ConnPid, ws, {error, badframe}, [_], []}),
	no_more_from(ConnPid).

%% The offer.

no_offer_without_compress(_) ->
	St = open_upgrade(#{}),
	undefined = offer(St),
	St2 = open_upgrade(#{ws_opts => #{compress => false, deflate_level => 1}}),
	undefined = offer(St2).

deflate_offer_default(_) ->
	St = open_upgrade(#{ws_opts => #{compress => true}}),
	<<"permessage-deflate; client_max_window_bits">> = offer(St).

deflate_offer_options(_) ->
	St = open_upgrade(#{ws_opts => #{compress => true, client_max_window_bits => 10,
		server_max_window_bits => 12, client_no_context_takeover => true,
		server_no_context_takeover => true, deflate_level => 1}}),
	<<"permessage-deflate; client_max_window_bits=10; server_max_window_bits=12; "
		"client_no_context_takeover; server_no_context_takeover">> = offer(St).

%% gun:ws_upgrade/4's options apply to that upgrade.
deflate_offer_per_upgrade(_) ->
	St = #{conn := ConnPid} = raw_peer:open_upgrade(#{}, fun(ConnPid) ->
		gun:ws_upgrade(ConnPid, "/", [], #{compress => true})
	end),
	<<"permessage-deflate; client_max_window_bits">> = offer(St),
	answer(St, <<"permessage-deflate">>),
	?NEXT(ConnPid, {gun_ws_upgrade, ConnPid, ok, _}).

%% No answer: an uncompressed connection; RSV1 is then an error.
deflate_declined_by_server(_) ->
	St = #{conn := ConnPid, sock := Sock} = open_upgrade(#{ws_opts => #{compress => true}}),
	answer(St, undefined),
	?NEXT(ConnPid, {gun_ws_upgrade, ConnPid, ok, _}),
	ok = gun:ws_send(ConnPid, {text, <<"plain">>}),
	<<"plain">> = client_frame(Sock, 1, 0),
	raw_peer:send(Sock, compressed_frame(1, compress(deflater(), <<"x">>))),
	expect_protocol_error(St, 1002, badframe).

%% Messages both ways.

%% Autobahn 12.*: compressed messages each way, windows kept across messages.
deflate_echo_context_takeover(_) ->
	#{conn := ConnPid, sock := Sock} = connect(#{}, <<"permessage-deflate">>),
	D = deflater(),
	Text = binary:copy(<<"Hello, κόσμε! "/utf8>>, 50),
	First = compress(D, Text),
	Second = compress(D, Text),
	true = byte_size(Second) < byte_size(First),
	raw_peer:send(Sock, [compressed_frame(1, First), compressed_frame(2, Second)]),
	?NEXT(ConnPid, {gun_ws, ConnPid, {text, Text}}),
	?NEXT(ConnPid, {gun_ws, ConnPid, {binary, Text}}),
	ok = gun:ws_send(ConnPid, [{text, Text}, {binary, Text}]),
	I = inflater(15),
	Out1 = client_frame(Sock, 1, 4),
	Out2 = client_frame(Sock, 2, 4),
	Text = inflate(I, Out1),
	Text = inflate(I, Out2),
	%% Our compressor kept its window too.
	true = byte_size(Out2) < byte_size(Out1),
	no_more_from(ConnPid),
	gen_tcp:close(Sock).

%% Autobahn 13.2 and others: the server resets its window per message.
deflate_server_no_context_takeover(_) ->
	#{conn := ConnPid, sock := Sock} =
		connect(#{server_no_context_takeover => true},
			<<"permessage-deflate; server_no_context_takeover">>),
	Msg = <<"the same message twice, the same message twice">>,
	raw_peer:send(Sock, [compressed_frame(1, compress(deflater(), Msg)),
		compressed_frame(1, compress(deflater(), Msg))]),
	?NEXT(ConnPid, {gun_ws, ConnPid, {text, Msg}}),
	?NEXT(ConnPid, {gun_ws, ConnPid, {text, Msg}}),
	no_more_from(ConnPid),
	gen_tcp:close(Sock).

%% Autobahn 13.2: the server asks us to reset our window: two equal
%% messages compress to equal bytes, each inflating on its own.
deflate_client_no_context_takeover(_) ->
	#{conn := ConnPid, sock := Sock} =
		connect(#{}, <<"permessage-deflate; client_no_context_takeover">>),
	Msg = <<"the same message twice, the same message twice">>,
	ok = gun:ws_send(ConnPid, [{text, Msg}, {text, Msg}]),
	Out1 = client_frame(Sock, 1, 4),
	Out1 = client_frame(Sock, 1, 4),
	Msg = inflate(inflater(15), Out1),
	gen_tcp:close(Sock).

%% Autobahn 13.3: the server limits our window to 9 bits; a 512-byte
%% window inflater reads what we send.
deflate_client_window_9(_) ->
	#{conn := ConnPid, sock := Sock} =
		connect(#{}, <<"permessage-deflate; client_max_window_bits=9">>),
	Msg = iolist_to_binary([integer_to_binary(I) || I <- lists:seq(1, 3000)]),
	ok = gun:ws_send(ConnPid, [{binary, Msg}, {binary, Msg}]),
	I = inflater(9),
	Msg = inflate(I, client_frame(Sock, 2, 4)),
	Msg = inflate(I, client_frame(Sock, 2, 4)),
	gen_tcp:close(Sock).

%% zlib cannot compress with a 256-byte window: with client_max_window_bits=8
%% the client sends uncompressed messages (RSV1 clear), which RFC 7692 allows.
deflate_client_window_8_uncompressed(_) ->
	#{conn := ConnPid, sock := Sock} =
		connect(#{}, <<"permessage-deflate; client_max_window_bits=8">>),
	ok = gun:ws_send(ConnPid, {text, <<"as is">>}),
	<<"as is">> = client_frame(Sock, 1, 0),
	gen_tcp:close(Sock).

%% RSV1 on the first frame only; an uncompressed message in between.
deflate_fragmented_and_uncompressed(_) ->
	#{conn := ConnPid, sock := Sock} = connect(#{}, <<"permessage-deflate">>),
	Msg = binary:copy(<<"fragmented and compressed ">>, 40),
	<<A:5/binary, B:9/binary, C/binary>> = compress(deflater(), Msg),
	raw_peer:send(Sock, [raw_peer:frame(#{opcode => 1, rsv => 4, fin => false, payload => A}),
		raw_peer:frame(9, <<"p">>),
		raw_peer:frame(#{opcode => 0, fin => false, payload => B}),
		raw_peer:frame(#{opcode => 0, payload => C}),
		raw_peer:frame(2, <<"not compressed">>)]),
	?NEXT(ConnPid, {gun_ws, ConnPid, {text, Msg}}),
	?NEXT(ConnPid, {gun_ws, ConnPid, {binary, <<"not compressed">>}}),
	<<"p">> = client_frame(Sock, 10, 0),
	no_more_from(ConnPid),
	gen_tcp:close(Sock).

%% RFC 7692 §7.2.3.6, both ways.
deflate_empty_message(_) ->
	#{conn := ConnPid, sock := Sock} = connect(#{}, <<"permessage-deflate">>),
	raw_peer:send(Sock, [compressed_frame(1, <<0>>), compressed_frame(2, <<>>)]),
	?NEXT(ConnPid, {gun_ws, ConnPid, {text, <<>>}}),
	?NEXT(ConnPid, {gun_ws, ConnPid, {binary, <<>>}}),
	ok = gun:ws_send(ConnPid, {text, <<>>}),
	<<>> = inflate(inflater(15), client_frame(Sock, 1, 4)),
	gen_tcp:close(Sock).

%% Errors in compressed traffic.

deflate_rsv1_on_continuation(_) ->
	St = #{sock := Sock} = connect(#{}, <<"permessage-deflate">>),
	<<A:3/binary, B/binary>> = compress(deflater(), <<"abcdefabcdef">>),
	raw_peer:send(Sock, [raw_peer:frame(#{opcode => 1, rsv => 4, fin => false, payload => A}),
		raw_peer:frame(#{opcode => 0, rsv => 4, payload => B})]),
	expect_protocol_error(St, 1002, badframe).

deflate_rsv1_on_control(_) ->
	St = #{sock := Sock} = connect(#{}, <<"permessage-deflate">>),
	raw_peer:send(Sock, raw_peer:frame(#{opcode => 9, rsv => 4, payload => <<>>})),
	expect_protocol_error(St, 1002, badframe).

deflate_bad_data(_) ->
	St = #{sock := Sock} = connect(#{}, <<"permessage-deflate">>),
	raw_peer:send(Sock, compressed_frame(2, <<255, 255, 255, 255, 255>>)),
	expect_protocol_error(St, 1002, badframe).

%% Bad UTF-8 fails as it is inflated, before the message is over.
deflate_bad_utf8_fails_fast(_) ->
	St = #{sock := Sock} = connect(#{}, <<"permessage-deflate">>),
	Bad = compress(deflater(), <<"ok ", 16#ed, 16#a0, 16#80, " and more">>),
	raw_peer:send(Sock, raw_peer:frame(#{opcode => 1, rsv => 4, fin => false, payload => Bad})),
	expect_protocol_error(St, 1007, badencoding).

%% A 16 KiB frame that inflates to 16 MiB, with max_frame_size 64 KiB:
%% refused with 1009 once 64 KiB are out, not after inflating it all.
deflate_bomb_stopped(_) ->
	St = #{sock := Sock} = connect(#{max_frame_size => 65536}, <<"permessage-deflate">>),
	Bomb = compress(deflater(), binary:copy(<<0>>, 16 bsl 20)),
	true = byte_size(Bomb) < 65536,
	raw_peer:send(Sock, compressed_frame(2, Bomb)),
	expect_protocol_error(St, 1009, badsize).

%% The server's answer.

deflate_answer_unknown_param(_) ->
	upgrade_failure(<<"permessage-deflate; foo=1">>, invalid_extension_params).

deflate_answer_repeated_param(_) ->
	upgrade_failure(<<"permessage-deflate; server_no_context_takeover; server_no_context_takeover">>,
		invalid_extension_params).

deflate_answer_bad_window_bits(_) ->
	[upgrade_failure(<<"permessage-deflate; ", Param/binary>>, invalid_extension_params)
		|| Param <- [<<"server_max_window_bits=7">>, <<"server_max_window_bits=16">>,
			<<"client_max_window_bits">>, <<"client_max_window_bits=09">>,
			<<"client_no_context_takeover=1">>]],
	ok.

deflate_answer_twice(_) ->
	upgrade_failure(<<"permessage-deflate, permessage-deflate">>, invalid_extension_params).

deflate_answer_other_extension(_) ->
	upgrade_failure(<<"x-webkit-deflate-frame">>, unexpected_extension).

%% What we asked of the server must be in its answer (RFC 7692 §7.1.1.1, §7.1.2.1).
deflate_answer_missing_requested(_) ->
	St = open_upgrade(#{ws_opts => #{compress => true, server_no_context_takeover => true}}),
	answer(St, <<"permessage-deflate">>),
	raw_peer:expect_upgrade_failure(St, invalid_extension_params),
	St2 = open_upgrade(#{ws_opts => #{compress => true, server_max_window_bits => 10}}),
	answer(St2, <<"permessage-deflate; server_max_window_bits=11">>),
	raw_peer:expect_upgrade_failure(St2, invalid_extension_params).

deflate_options_checked(_) ->
	Bad = [{deflate_level, 10}, {deflate_level, -1}, {deflate_level, best},
		{client_max_window_bits, 8}, {client_max_window_bits, 16},
		{server_max_window_bits, 7}, {server_max_window_bits, 16},
		{client_no_context_takeover, yes}, {server_no_context_takeover, 1}],
	[{error, {options, {ws, Opt}}} = gun:open("127.0.0.1", 1, #{ws_opts => maps:from_list([Opt])})
		|| Opt <- Bad],
	Good = #{compress => true, deflate_level => 0, client_max_window_bits => 9,
		server_max_window_bits => 8, client_no_context_takeover => false,
		server_no_context_takeover => true},
	{ok, ConnPid} = gun:open("127.0.0.1", 1, #{retry => 0, ws_opts => Good}),
	gun:close(ConnPid),
	{'EXIT', _} = (catch gun:ws_upgrade(self(), "/", [], #{deflate_level => 11})),
	ok.

%% Against Python's websockets (test/support/deflate_server.py).

python_websockets_default(_) ->
	python_echo("default", #{},
		<<"permessage-deflate; server_max_window_bits=12; client_max_window_bits=12">>).

python_websockets_strict(_) ->
	python_echo("strict", #{server_no_context_takeover => true, server_max_window_bits => 10,
			client_no_context_takeover => true},
		<<"permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
			"server_max_window_bits=10; client_max_window_bits=9">>).

python_echo(Mode, WsOpts, Answer) ->
	Script = filename:join([filename:dirname(?FILE), "support", "deflate_server.py"]),
	Server = open_port({spawn_executable, "/usr/bin/python3"},
		[{args, [Script, Mode]}, {line, 1024}, use_stdio, binary]),
	Port = receive
		{Server, {data, {eol, Line}}} -> binary_to_integer(Line)
	after 10000 ->
		ct:fail(deflate_server_did_not_start)
	end,
	try
		{ok, ConnPid} = gun:open("127.0.0.1", Port,
			raw_peer:client_opts(#{ws_opts => WsOpts#{compress => true}})),
		?NEXT(ConnPid, {gun_up, ConnPid, http}),
		_ = gun:ws_upgrade(ConnPid, "/"),
		?NEXT(ConnPid, {gun_ws_upgrade, ConnPid, ok, Headers}),
		{_, Answer} = lists:keyfind(<<"sec-websocket-extensions">>, 1, Headers),
		Noise = crypto:strong_rand_bytes(300000),
		Frames = [{text, <<"Hello">>}, {text, <<"Hello">>}, {binary, <<>>},
			{text, binary:copy(<<"κόσμε "/utf8>>, 20000)}, {binary, Noise},
			{binary, binary:copy(<<1, 2, 3, 4>>, 1 bsl 18)}, {text, <<"Hello">>}],
		ok = gun:ws_send(ConnPid, Frames),
		[?NEXT(ConnPid, {gun_ws, ConnPid, Frame}) || Frame <- Frames],
		ok = gun:ws_send(ConnPid, close),
		%% An empty close is answered with an empty close.
		?NEXT(ConnPid, {gun_ws, ConnPid, close}),
		?NEXT(ConnPid, {gun_down, ConnPid, ws, normal, [_], []})
	after
		port_close(Server)
	end.
