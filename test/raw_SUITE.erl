%% The client against a scripted, possibly hostile WebSocket server
%% (raw_peer: gen_tcp, hand-encoded frames). Each test asserts the exact
%% messages the owner gets, in order, and what the client wrote on the
%% wire. Terms follow ../shared/spec/contract.md and doc/behaviour.md.
-module(raw_SUITE).
-compile([export_all, nowarn_export_all]).

-include_lib("common_test/include/ct.hrl").
-include("suite_helper.hrl").

-import(suite_helper, [next_from/1, down/2, no_more_from/1]).

suite() ->
	[{timetrap, {seconds, 60}}].

init_per_suite(Config) ->
	{ok, _} = application:ensure_all_started(gun),
	Config.

end_per_suite(_Config) ->
	ok.

all() ->
	[
		%% Handshake.
		request_headers,
		request_key_differs,
		protocol_offer_selected,
		frames_in_101_packet,
		response_101_bytewise,
		upgrade_invalid_accept,
		upgrade_missing_upgrade_header,
		upgrade_missing_connection_header,
		upgrade_unexpected_extension,
		upgrade_unexpected_protocol,
		upgrade_unoffered_protocol_among_offers,
		closed_before_101,
		garbage_response,
		%% Receiving.
		server_frame_lengths,
		server_frame_bytewise,
		fragmented_text_3,
		fragmented_binary_2,
		fragmented_zero_length,
		utf8_split_across_fragments_ok,
		%% Pings.
		ping_answered_silenced,
		ping_not_silenced,
		pong_not_silenced,
		keepalive_ping,
		%% Sending and masking.
		mask_keys_differ,
		mask_payload_sizes,
		iodata_payloads,
		%% Protocol errors from the server.
		err_masked_frame,
		err_rsv1,
		err_rsv2,
		err_rsv3,
		err_opcode_3,
		err_opcode_11,
		err_control_not_fin,
		err_continuation_without_start,
		err_text_during_fragmented,
		err_bad_utf8_text,
		err_bad_utf8_first_fragment_fail_fast,
		%% Closing.
		server_close_with_code,
		server_close_empty,
		client_close_reply,
		client_close_timeout,
		client_close_drops_following_frames,
		tcp_closed_after_upgrade,
		%% Robustness.
		random_bytes_after_101,
		random_frames_after_101
	].

%% Helpers.

%% gun:open, gun:ws_upgrade at once (before the connection is up), the
%% peer accepts and reads the request; the owner's first message is gun_up.
%% ReqHeaders: the upgrade's headers (gun:ws_upgrade/3), or undefined
%% (gun:ws_upgrade/2).
open_upgrade(Opts) ->
	open_upgrade(Opts, undefined).

open_upgrade(Opts, ReqHeaders) ->
	{LSock, Port} = raw_peer:listen(),
	open_upgrade(LSock, Port, Opts, ReqHeaders).

open_upgrade(LSock, Port, Opts, undefined) ->
	raw_peer:open_upgrade(LSock, Port, Opts, fun(ConnPid) -> gun:ws_upgrade(ConnPid, "/") end);
open_upgrade(LSock, Port, Opts, ReqHeaders) ->
	raw_peer:open_upgrade(LSock, Port, Opts, fun(ConnPid) -> gun:ws_upgrade(ConnPid, "/", ReqHeaders) end).

%% A fully upgraded connection.
connect(Opts) ->
	connect(Opts, <<>>).

%% Extra: bytes sent in the same gen_tcp:send as the 101.
connect(Opts, Extra) ->
	St = #{sock := Sock, req := Req} = open_upgrade(Opts),
	raw_peer:send(Sock, [raw_peer:response_101(Req), Extra]),
	expect_upgraded(St, raw_peer:headers_101(Req)),
	St.

expect_upgraded(#{conn := ConnPid}, SentHeaders) ->
	?NEXT(ConnPid, {gun_ws_upgrade, ConnPid, ok, Headers}),
	check_headers(SentHeaders, Headers).

%% The 101's headers are delivered with lower-case names and their values.
check_headers(SentHeaders, Headers) ->
	Expected = lists:sort([{string:lowercase(N), V} || {N, V} <- SentHeaders]),
	case lists:sort(Headers) of
		Expected -> ok;
		Sorted -> ct:fail({upgrade_headers, {expected, Expected}, {got, Sorted}})
	end.

%% The server broke the protocol: the client closes with Code, then
%% gun_error, gun_down {error, Why}, and ConnPid exits {shutdown, {error, Why}}.
expect_protocol_error(#{conn := ConnPid, mref := MRef, ref := StreamRef, sock := Sock}, Code, Why) ->
	case raw_peer:expect_frame(Sock, 8) of
		<<Code:16, _/binary>> -> ok;
		ClosePayload -> ct:fail({client_close_payload, {expected_code, Code}, ClosePayload})
	end,
	?NEXT(ConnPid, {gun_error, ConnPid, StreamRef, {error, Why}}),
	?NEXT(ConnPid, {gun_down, ConnPid, ws, {error, Why}, [StreamRef], []}),
	{shutdown, {error, Why}} = down(ConnPid, MRef),
	raw_peer:expect_eof(Sock),
	no_more_from(ConnPid).

protocol_error(Bytes, Code, Why) ->
	protocol_error(#{}, Bytes, Code, Why).

protocol_error(Opts, Bytes, Code, Why) ->
	St = #{sock := Sock} = connect(Opts),
	raw_peer:send(Sock, Bytes),
	expect_protocol_error(St, Code, Why).

%% A 101 that fails validation.
upgrade_failure(Why, HeadersFun) ->
	St = #{sock := Sock, req := Req} = open_upgrade(#{}),
	raw_peer:send(Sock, raw_peer:response_101(Req, HeadersFun(raw_peer:headers_101(Req)))),
	raw_peer:expect_upgrade_failure(St, Why).

pattern(N) ->
	<< <<(I rem 251)>> || I <- lists:seq(1, N) >>.

valid_utf8(<<_/utf8, Rest/binary>>) -> valid_utf8(Rest);
valid_utf8(<<>>) -> true;
valid_utf8(_) -> false.

%% Handshake.

request_headers(_) ->
	{LSock, Port} = raw_peer:listen(),
	{ok, ConnPid} = gun:open("127.0.0.1", Port, raw_peer:client_opts(#{})),
	StreamRef = gun:ws_upgrade(ConnPid, "/some/path?q=1"),
	Sock = raw_peer:accept(LSock),
	Req = raw_peer:read_request(Sock),
	ct:log("request:~n~s", [maps:get(raw, Req)]),
	#{method := <<"GET">>, path := <<"/some/path?q=1">>, version := <<"HTTP/1.1">>} = Req,
	Host = iolist_to_binary(["127.0.0.1:", integer_to_list(Port)]),
	Host = raw_peer:header(<<"host">>, Req),
	true = lists:member(<<"upgrade">>, raw_peer:header_tokens(<<"connection">>, Req)),
	[<<"websocket">>] = raw_peer:header_tokens(<<"upgrade">>, Req),
	<<"13">> = raw_peer:header(<<"sec-websocket-version">>, Req),
	Key = raw_peer:header(<<"sec-websocket-key">>, Req),
	<<_:16/binary>> = base64:decode(Key),
	%% No protocol or extension was asked for.
	undefined = raw_peer:header(<<"sec-websocket-protocol">>, Req),
	?NEXT(ConnPid, {gun_up, ConnPid, http}),
	raw_peer:send(Sock, raw_peer:response_101(Req)),
	expect_upgraded(#{conn => ConnPid}, raw_peer:headers_101(Req)),
	true = is_reference(StreamRef),
	no_more_from(ConnPid).

request_key_differs(_) ->
	#{req := Req1} = open_upgrade(#{}),
	#{req := Req2} = open_upgrade(#{}),
	Key1 = raw_peer:header(<<"sec-websocket-key">>, Req1),
	Key2 = raw_peer:header(<<"sec-websocket-key">>, Req2),
	<<_:16/binary>> = base64:decode(Key1),
	<<_:16/binary>> = base64:decode(Key2),
	case Key1 =:= Key2 of
		false -> ok;
		true -> ct:fail({same_sec_websocket_key, Key1})
	end.

protocol_offer_selected(_) ->
	#{conn := ConnPid, sock := Sock, req := Req} =
		open_upgrade(#{}, [{<<"sec-websocket-protocol">>, "a, b"}]),
	[<<"a">>, <<"b">>] = raw_peer:header_tokens(<<"sec-websocket-protocol">>, Req),
	Headers = raw_peer:headers_101(Req) ++ [{<<"Sec-WebSocket-Protocol">>, <<"b">>}],
	raw_peer:send(Sock, raw_peer:response_101(Req, Headers)),
	expect_upgraded(#{conn => ConnPid}, Headers),
	%% And the connection works.
	raw_peer:send(Sock, raw_peer:frame(1, <<"hi">>)),
	?NEXT(ConnPid, {gun_ws, ConnPid, {text, <<"hi">>}}),
	no_more_from(ConnPid).

frames_in_101_packet(_) ->
	#{conn := ConnPid} = connect(#{}, [raw_peer:frame(1, <<"one">>), raw_peer:frame(1, <<"two">>)]),
	?NEXT(ConnPid, {gun_ws, ConnPid, {text, <<"one">>}}),
	?NEXT(ConnPid, {gun_ws, ConnPid, {text, <<"two">>}}),
	no_more_from(ConnPid).

%% The 101 and a frame, written one byte at a time.
response_101_bytewise(_) ->
	St = #{conn := ConnPid, sock := Sock, req := Req} = open_upgrade(#{}),
	Bytes = iolist_to_binary([raw_peer:response_101(Req), raw_peer:frame(1, <<"split">>)]),
	[raw_peer:send(Sock, <<B>>) || <<B>> <= Bytes],
	expect_upgraded(St, raw_peer:headers_101(Req)),
	?NEXT(ConnPid, {gun_ws, ConnPid, {text, <<"split">>}}),
	no_more_from(ConnPid).

upgrade_invalid_accept(_) ->
	upgrade_failure(invalid_accept, fun(Hs) ->
		lists:keyreplace(<<"Sec-WebSocket-Accept">>, 1, Hs,
			{<<"Sec-WebSocket-Accept">>, raw_peer:accept_key(<<"dGhlIHNhbXBsZSBub25jZQ==">>)})
	end).

upgrade_missing_upgrade_header(_) ->
	upgrade_failure(missing_upgrade_header, fun(Hs) ->
		lists:keydelete(<<"Upgrade">>, 1, Hs)
	end).

upgrade_missing_connection_header(_) ->
	upgrade_failure(missing_connection_header, fun(Hs) ->
		lists:keydelete(<<"Connection">>, 1, Hs)
	end).

upgrade_unexpected_extension(_) ->
	upgrade_failure(unexpected_extension, fun(Hs) ->
		Hs ++ [{<<"Sec-WebSocket-Extensions">>, <<"x-raw-suite-ext">>}]
	end).

upgrade_unexpected_protocol(_) ->
	upgrade_failure(unexpected_protocol, fun(Hs) ->
		Hs ++ [{<<"Sec-WebSocket-Protocol">>, <<"c">>}]
	end).

upgrade_unoffered_protocol_among_offers(_) ->
	St = #{sock := Sock, req := Req} =
		open_upgrade(#{}, [{<<"sec-websocket-protocol">>, "a, b"}]),
	Headers = raw_peer:headers_101(Req) ++ [{<<"Sec-WebSocket-Protocol">>, <<"c">>}],
	raw_peer:send(Sock, raw_peer:response_101(Req, Headers)),
	raw_peer:expect_upgrade_failure(St, unexpected_protocol).

closed_before_101(_) ->
	#{conn := ConnPid, mref := MRef, ref := StreamRef, sock := Sock} = open_upgrade(#{}),
	ok = gen_tcp:close(Sock),
	?NEXT(ConnPid, {gun_error, ConnPid, StreamRef, closed}),
	?NEXT(ConnPid, {gun_down, ConnPid, http, closed, [StreamRef], []}),
	{shutdown, closed} = down(ConnPid, MRef),
	no_more_from(ConnPid).

%% The contract names no reason here: any gun_error for the stream, then
%% a gun_down, then an exit, and the socket is closed.
garbage_response(_) ->
	#{conn := ConnPid, mref := MRef, ref := StreamRef, sock := Sock} = open_upgrade(#{}),
	raw_peer:send(Sock, <<"hello\r\n\r\n">>),
	?NEXT(ConnPid, {gun_error, ConnPid, StreamRef, ErrorReason}),
	?NEXT(ConnPid, {gun_down, ConnPid, http, DownReason, [StreamRef], []}),
	{shutdown, _} = ExitReason = down(ConnPid, MRef),
	ct:log("gun_error reason ~p~ngun_down reason ~p~nexit reason ~p",
		[ErrorReason, DownReason, ExitReason]),
	raw_peer:expect_eof(Sock),
	no_more_from(ConnPid).

%% Receiving.

server_frame_lengths(_) ->
	#{conn := ConnPid, sock := Sock} = connect(#{}),
	lists:foreach(fun(N) ->
		P = pattern(N),
		raw_peer:send(Sock, raw_peer:frame(2, P)),
		?NEXT(ConnPid, {gun_ws, ConnPid, {binary, P}})
	end, [0, 1, 125, 126, 65535, 65536, 70000]),
	raw_peer:send(Sock, raw_peer:frame(1, binary:copy(<<"t">>, 300))),
	?NEXT(ConnPid, {gun_ws, ConnPid, {text, _}}),
	no_more_from(ConnPid).

server_frame_bytewise(_) ->
	#{conn := ConnPid, sock := Sock} = connect(#{}),
	Bytes = iolist_to_binary([raw_peer:frame(1, <<"byte by byte">>),
		raw_peer:frame(2, pattern(300))]),
	[raw_peer:send(Sock, <<B>>) || <<B>> <= Bytes],
	?NEXT(ConnPid, {gun_ws, ConnPid, {text, <<"byte by byte">>}}),
	P = pattern(300),
	?NEXT(ConnPid, {gun_ws, ConnPid, {binary, P}}),
	no_more_from(ConnPid).

fragmented_text_3(_) ->
	#{conn := ConnPid, sock := Sock} = connect(#{}),
	raw_peer:send(Sock, raw_peer:frame(#{fin => false, opcode => 1, payload => <<"Hel">>})),
	raw_peer:send(Sock, raw_peer:frame(#{fin => false, opcode => 0, payload => <<"lo, ">>})),
	raw_peer:send(Sock, raw_peer:frame(#{fin => true, opcode => 0, payload => <<"world">>})),
	?NEXT(ConnPid, {gun_ws, ConnPid, {text, <<"Hello, world">>}}),
	no_more_from(ConnPid).

fragmented_binary_2(_) ->
	#{conn := ConnPid, sock := Sock} = connect(#{}),
	raw_peer:send(Sock, [
		raw_peer:frame(#{fin => false, opcode => 2, payload => <<0, 1, 2>>}),
		raw_peer:frame(#{fin => true, opcode => 0, payload => <<3, 4, 255>>})]),
	?NEXT(ConnPid, {gun_ws, ConnPid, {binary, <<0, 1, 2, 3, 4, 255>>}}),
	no_more_from(ConnPid).

fragmented_zero_length(_) ->
	#{conn := ConnPid, sock := Sock} = connect(#{}),
	raw_peer:send(Sock, [
		raw_peer:frame(#{fin => false, opcode => 1, payload => <<>>}),
		raw_peer:frame(#{fin => false, opcode => 0, payload => <<"x">>}),
		raw_peer:frame(#{fin => false, opcode => 0, payload => <<>>}),
		raw_peer:frame(#{fin => true, opcode => 0, payload => <<>>})]),
	?NEXT(ConnPid, {gun_ws, ConnPid, {text, <<"x">>}}),
	%% A message made only of empty fragments.
	raw_peer:send(Sock, [
		raw_peer:frame(#{fin => false, opcode => 2, payload => <<>>}),
		raw_peer:frame(#{fin => true, opcode => 0, payload => <<>>})]),
	?NEXT(ConnPid, {gun_ws, ConnPid, {binary, <<>>}}),
	%% An unfragmented empty text.
	raw_peer:send(Sock, raw_peer:frame(1, <<>>)),
	?NEXT(ConnPid, {gun_ws, ConnPid, {text, <<>>}}),
	no_more_from(ConnPid).

%% "café 😀": é split after its first byte, the emoji over three fragments.
utf8_split_across_fragments_ok(_) ->
	#{conn := ConnPid, sock := Sock} = connect(#{}),
	raw_peer:send(Sock, [
		raw_peer:frame(#{fin => false, opcode => 1, payload => <<"caf", 16#C3>>}),
		raw_peer:frame(#{fin => false, opcode => 0, payload => <<16#A9, " ", 16#F0>>}),
		raw_peer:frame(#{fin => false, opcode => 0, payload => <<16#9F, 16#98>>}),
		raw_peer:frame(#{fin => true, opcode => 0, payload => <<16#80>>})]),
	Expected = <<"caf", 16#C3, 16#A9, " ", 16#F0, 16#9F, 16#98, 16#80>>,
	true = valid_utf8(Expected),
	?NEXT(ConnPid, {gun_ws, ConnPid, {text, Expected}}),
	no_more_from(ConnPid).

%% Pings.

ping_answered_silenced(_) ->
	#{conn := ConnPid, sock := Sock} = connect(#{}),
	raw_peer:send(Sock, raw_peer:frame(9, <<"abc">>)),
	<<"abc">> = raw_peer:expect_frame(Sock, 10),
	P125 = pattern(125),
	raw_peer:send(Sock, raw_peer:frame(9, P125)),
	P125 = raw_peer:expect_frame(Sock, 10),
	raw_peer:send(Sock, raw_peer:frame(9, <<>>)),
	<<>> = raw_peer:expect_frame(Sock, 10),
	%% A server pong is silenced as well.
	raw_peer:send(Sock, raw_peer:frame(10, <<"x">>)),
	%% Nothing about the pings or the pong reaches the owner: the next
	%% message is the text sent after them.
	raw_peer:send(Sock, raw_peer:frame(1, <<"after">>)),
	?NEXT(ConnPid, {gun_ws, ConnPid, {text, <<"after">>}}),
	no_more_from(ConnPid).

ping_not_silenced(_) ->
	#{conn := ConnPid, sock := Sock} = connect(#{ws_opts => #{silence_pings => false}}),
	raw_peer:send(Sock, raw_peer:frame(9, <<"abc">>)),
	<<"abc">> = raw_peer:expect_frame(Sock, 10),
	?NEXT(ConnPid, {gun_ws, ConnPid, {ping, <<"abc">>}}),
	raw_peer:send(Sock, raw_peer:frame(9, <<>>)),
	<<>> = raw_peer:expect_frame(Sock, 10),
	?NEXT(ConnPid, {gun_ws, ConnPid, ping}),
	no_more_from(ConnPid).

pong_not_silenced(_) ->
	#{conn := ConnPid, sock := Sock} = connect(#{ws_opts => #{silence_pings => false}}),
	raw_peer:send(Sock, raw_peer:frame(10, <<"x">>)),
	?NEXT(ConnPid, {gun_ws, ConnPid, {pong, <<"x">>}}),
	raw_peer:send(Sock, raw_peer:frame(10, <<>>)),
	?NEXT(ConnPid, {gun_ws, ConnPid, pong}),
	no_more_from(ConnPid).

%% The client pings the server every keepalive ms while upgraded.
keepalive_ping(_) ->
	#{conn := ConnPid, sock := Sock} = connect(#{ws_opts => #{keepalive => 100}}),
	_ = raw_peer:expect_frame(Sock, 9, 2000),
	_ = raw_peer:expect_frame(Sock, 9, 2000),
	no_more_from(ConnPid).

%% Sending and masking.

mask_keys_differ(_) ->
	#{conn := ConnPid, sock := Sock} = connect(#{}),
	ok = gun:ws_send(ConnPid, {text, <<"same">>}),
	ok = gun:ws_send(ConnPid, {text, <<"same">>}),
	ok = gun:ws_send(ConnPid, [{text, <<"same">>}, {text, <<"same">>}]),
	Frames = [raw_peer:recv_frame(Sock) || _ <- lists:seq(1, 4)],
	Keys = [case F of
		#{masked := true, fin := true, rsv := 0, opcode := 1, payload := <<"same">>,
			mask_key := K} -> K;
		_ -> ct:fail({unexpected_client_frame, F})
	end || F <- Frames],
	case length(lists:usort(Keys)) of
		4 -> ok;
		_ -> ct:fail({mask_keys_repeated, Keys})
	end,
	no_more_from(ConnPid).

mask_payload_sizes(_) ->
	#{conn := ConnPid, sock := Sock} = connect(#{}),
	lists:foreach(fun({N, Form}) ->
		P = pattern(N),
		ok = gun:ws_send(ConnPid, {binary, P}),
		case raw_peer:recv_frame(Sock) of
			#{masked := true, fin := true, rsv := 0, opcode := 2, len := N,
				len_form := Form, payload := P} -> ok;
			F -> ct:fail({size, N, {expected_len_form, Form},
				maps:remove(payload, F), payload_ok, maps:get(payload, F) =:= P})
		end,
		%% The same as text.
		T = binary:copy(<<"z">>, N),
		ok = gun:ws_send(ConnPid, {text, T}),
		T = raw_peer:expect_frame(Sock, 1)
	end, [{0, 7}, {1, 7}, {125, 7}, {126, 16}, {65535, 16}, {65536, 64}, {70000, 64}]),
	no_more_from(ConnPid).

iodata_payloads(_) ->
	#{conn := ConnPid, sock := Sock} = connect(#{}),
	ok = gun:ws_send(ConnPid, {text, ["he", [<<"l">>, $l], $o]}),
	<<"hello">> = raw_peer:expect_frame(Sock, 1),
	ok = gun:ws_send(ConnPid, [{binary, [<<1>>, [2, <<3>>]]}, {ping, "pi"}, {pong, [<<"po">>]}]),
	<<1, 2, 3>> = raw_peer:expect_frame(Sock, 2),
	<<"pi">> = raw_peer:expect_frame(Sock, 9),
	<<"po">> = raw_peer:expect_frame(Sock, 10),
	ok = gun:ws_send(ConnPid, [ping, pong]),
	<<>> = raw_peer:expect_frame(Sock, 9),
	<<>> = raw_peer:expect_frame(Sock, 10),
	no_more_from(ConnPid).

%% Protocol errors from the server.

err_masked_frame(_) ->
	protocol_error(raw_peer:frame(#{opcode => 1, payload => <<"hello">>, mask => <<1, 2, 3, 4>>}),
		1002, badframe).

err_rsv1(_) ->
	protocol_error(raw_peer:frame(#{opcode => 1, rsv => 4, payload => <<"x">>}), 1002, badframe).

err_rsv2(_) ->
	protocol_error(raw_peer:frame(#{opcode => 1, rsv => 2, payload => <<"x">>}), 1002, badframe).

err_rsv3(_) ->
	protocol_error(raw_peer:frame(#{opcode => 1, rsv => 1, payload => <<"x">>}), 1002, badframe).

err_opcode_3(_) ->
	protocol_error(raw_peer:frame(3, <<"x">>), 1002, badframe).

err_opcode_11(_) ->
	protocol_error(raw_peer:frame(11, <<"x">>), 1002, badframe).

err_control_not_fin(_) ->
	protocol_error(raw_peer:frame(#{opcode => 9, fin => false, payload => <<"p">>}), 1002, badframe).

err_continuation_without_start(_) ->
	protocol_error(raw_peer:frame(0, <<"x">>), 1002, badframe).

err_text_during_fragmented(_) ->
	protocol_error([
		raw_peer:frame(#{fin => false, opcode => 1, payload => <<"a">>}),
		raw_peer:frame(1, <<"b">>)], 1002, badframe).

err_bad_utf8_text(_) ->
	protocol_error(raw_peer:frame(1, <<"a", 16#FF, "b">>), 1007, badencoding).

%% Only the first fragment is sent, and it is invalid whatever follows.
err_bad_utf8_first_fragment_fail_fast(_) ->
	protocol_error(raw_peer:frame(#{fin => false, opcode => 1, payload => <<"ab", 16#FF, "cd">>}),
		1007, badencoding).

%% Closing.

server_close_with_code(_) ->
	#{conn := ConnPid, mref := MRef, ref := StreamRef, sock := Sock} = connect(#{}),
	raw_peer:send(Sock, raw_peer:frame(8, <<4000:16, "bye">>)),
	?NEXT(ConnPid, {gun_ws, ConnPid, {close, 4000, <<"bye">>}}),
	case raw_peer:expect_frame(Sock, 8) of
		<<4000:16, _/binary>> -> ok;
		Payload -> ct:fail({client_close_payload, {expected_code, 4000}, Payload})
	end,
	?NEXT(ConnPid, {gun_down, ConnPid, ws, normal, [StreamRef], []}),
	{shutdown, normal} = down(ConnPid, MRef),
	raw_peer:expect_eof(Sock),
	no_more_from(ConnPid).

server_close_empty(_) ->
	#{conn := ConnPid, mref := MRef, ref := StreamRef, sock := Sock} = connect(#{}),
	raw_peer:send(Sock, raw_peer:frame(8, <<>>)),
	?NEXT(ConnPid, {gun_ws, ConnPid, close}),
	case raw_peer:expect_frame(Sock, 8) of
		<<>> -> ok;
		<<1000:16, _/binary>> -> ok;
		Payload -> ct:fail({client_close_payload, Payload})
	end,
	?NEXT(ConnPid, {gun_down, ConnPid, ws, normal, [StreamRef], []}),
	{shutdown, normal} = down(ConnPid, MRef),
	raw_peer:expect_eof(Sock),
	no_more_from(ConnPid).

client_close_reply(_) ->
	#{conn := ConnPid, mref := MRef, ref := StreamRef, sock := Sock} = connect(#{}),
	ok = gun:ws_send(ConnPid, {close, 1000, <<"bye">>}),
	<<1000:16, "bye">> = raw_peer:expect_frame(Sock, 8),
	raw_peer:send(Sock, raw_peer:frame(8, <<1000:16>>)),
	?NEXT(ConnPid, {gun_ws, ConnPid, {close, 1000, <<>>}}),
	?NEXT(ConnPid, {gun_down, ConnPid, ws, normal, [StreamRef], []}),
	normal = down(ConnPid, MRef),
	%% No second close frame: the socket just closes.
	raw_peer:expect_eof(Sock),
	no_more_from(ConnPid).

client_close_timeout(_) ->
	#{conn := ConnPid, mref := MRef, ref := StreamRef, sock := Sock} =
		connect(#{ws_opts => #{closing_timeout => 200}}),
	T0 = erlang:monotonic_time(millisecond),
	ok = gun:ws_send(ConnPid, {close, 1000, <<"bye">>}),
	<<1000:16, "bye">> = raw_peer:expect_frame(Sock, 8),
	%% The peer never answers.
	?NEXT(ConnPid, {gun_down, ConnPid, ws, normal, [StreamRef], []}),
	normal = down(ConnPid, MRef),
	Elapsed = erlang:monotonic_time(millisecond) - T0,
	ct:log("closed after ~b ms (closing_timeout 200)", [Elapsed]),
	case Elapsed of
		_ when Elapsed < 150 -> ct:fail({closed_before_closing_timeout, Elapsed});
		_ when Elapsed > 1200 -> ct:fail({closing_timeout_not_honoured, Elapsed});
		_ -> ok
	end,
	raw_peer:expect_eof(Sock),
	no_more_from(ConnPid).

client_close_drops_following_frames(_) ->
	#{conn := ConnPid, mref := MRef, ref := StreamRef, sock := Sock} =
		connect(#{ws_opts => #{closing_timeout => 200}}),
	ok = gun:ws_send(ConnPid, [{text, <<"a">>}, {close, 1000, <<>>},
		{text, <<"b">>}, {binary, <<"c">>}, ping, close]),
	<<"a">> = raw_peer:expect_frame(Sock, 1),
	<<1000:16>> = raw_peer:expect_frame(Sock, 8),
	%% Nothing more is written: the next thing the peer sees is EOF
	%% (after closing_timeout, as the peer does not answer the close).
	raw_peer:expect_eof(Sock),
	?NEXT(ConnPid, {gun_down, ConnPid, ws, normal, [StreamRef], []}),
	normal = down(ConnPid, MRef),
	no_more_from(ConnPid).

tcp_closed_after_upgrade(_) ->
	#{conn := ConnPid, mref := MRef, ref := StreamRef, sock := Sock} = connect(#{}),
	ok = gen_tcp:close(Sock),
	?NEXT(ConnPid, {gun_error, ConnPid, StreamRef, closed}),
	?NEXT(ConnPid, {gun_down, ConnPid, ws, closed, [StreamRef], []}),
	{shutdown, closed} = down(ConnPid, MRef),
	no_more_from(ConnPid).

%% Robustness.

random_bytes_after_101() ->
	[{timetrap, {minutes, 5}}].

random_bytes_after_101(_) ->
	_ = rand:seed(exsss, {2024, 11, 25}),
	{LSock, Port} = raw_peer:listen(),
	Outcomes = lists:foldl(fun(I, Acc) ->
		Bytes = rand:bytes(1 + rand:uniform(48)),
		Outcome = random_session(LSock, Port, I, Bytes),
		maps:update_with(Outcome, fun(X) -> X + 1 end, 1, Acc)
	end, #{}, lists:seq(1, 300)),
	ct:log("outcomes (gun_down reason => count): ~p", [Outcomes]),
	normal_session(LSock, Port).

random_frames_after_101() ->
	[{timetrap, {minutes, 5}}].

%% Random sequences of plausible frames (random flags, opcodes, lengths,
%% payloads, sometimes masked, sometimes truncated) to reach deeper states.
random_frames_after_101(_) ->
	_ = rand:seed(exsss, {6455, 1, 13}),
	{LSock, Port} = raw_peer:listen(),
	Outcomes = lists:foldl(fun(I, Acc) ->
		Frames = [rand_frame() || _ <- lists:seq(1, rand:uniform(4))],
		Bytes0 = iolist_to_binary(Frames),
		Bytes = case rand:uniform(5) of
			1 -> binary:part(Bytes0, 0, rand:uniform(byte_size(Bytes0)) - 1);
			_ -> Bytes0
		end,
		Outcome = random_session(LSock, Port, I, Bytes),
		maps:update_with(Outcome, fun(X) -> X + 1 end, 1, Acc)
	end, #{}, lists:seq(1, 200)),
	ct:log("outcomes (gun_down reason => count): ~p", [Outcomes]),
	normal_session(LSock, Port).

rand_frame() ->
	Opcode = pick([0, 1, 1, 1, 2, 2, 8, 8, 9, 9, 10, 3, 7, 11, 15]),
	Payload = case Opcode of
		8 ->
			case rand:uniform(4) of
				1 -> <<>>;
				2 -> <<(pick([1000, 1001, 1002, 1005, 999, 4000, 2000, 1016, 3000]
					++ [rand:uniform(65535)])):16>>;
				3 -> <<(pick([1000, 4000, 1011])):16, (rand_payload(20))/binary>>;
				4 -> rand:bytes(1)
			end;
		_ ->
			rand_payload(pick([0, 1, 5, 20, 125, 126, 127, 300]))
	end,
	Fin = rand:uniform(5) > 1,
	Rsv = case rand:uniform(8) of 1 -> rand:uniform(7); _ -> 0 end,
	Mask = case rand:uniform(10) of 1 -> rand:bytes(4); _ -> undefined end,
	raw_peer:frame(#{fin => Fin, rsv => Rsv, opcode => Opcode, payload => Payload, mask => Mask}).

rand_payload(0) ->
	<<>>;
rand_payload(N) ->
	case rand:uniform(3) of
		1 -> rand:bytes(rand:uniform(N));
		_ -> unicode:characters_to_binary([pick("aé😀z ") || _ <- lists:seq(1, rand:uniform(N))])
	end.

pick(L) ->
	lists:nth(rand:uniform(length(L)), L).

%% One connection: 101, Bytes, then the peer half-closes. The client must
%% end the connection (gun_down, exit) within the usual ?T, deliver only
%% well-formed messages, mask everything it writes, and close its socket.
random_session(LSock, Port, I, Bytes) ->
	SilencePings = I rem 2 =:= 0,
	Opts = #{ws_opts => #{silence_pings => SilencePings}},
	Ctx = {iteration, I, {bytes, Bytes}},
	try
		#{conn := ConnPid, mref := MRef, ref := StreamRef, sock := Sock, req := Req}
			= open_upgrade(LSock, Port, Opts, undefined),
		raw_peer:send(Sock, raw_peer:response_101(Req)),
		?NEXT(ConnPid, {gun_ws_upgrade, ConnPid, ok, _}),
		raw_peer:send(Sock, Bytes),
		ok = gen_tcp:shutdown(Sock, write),
		DownReason = random_collect(ConnPid, StreamRef, SilencePings, none),
		{shutdown, DownReason} = down(ConnPid, MRef),
		{closed, Written} = raw_peer:drain(Sock, 5000),
		ok = gen_tcp:close(Sock),
		case raw_peer:decode_frames(Written) of
			{ClientFrames, <<>>} ->
				[ct:fail({unmasked_client_frame, F}) || F = #{masked := false} <- ClientFrames];
			{_, Partial} ->
				ct:fail({partial_client_frame, Partial, Written})
		end,
		receive
			Msg when element(2, Msg) =:= ConnPid -> ct:fail({extra_message, Msg})
		after 0 -> ok
		end,
		outcome(DownReason)
	catch Class:Reason:Stack ->
		ct:log("failed ~p", [Ctx]),
		erlang:raise(Class, {Reason, Ctx}, Stack)
	end.

random_collect(ConnPid, StreamRef, SilencePings, Error) ->
	case next_from(ConnPid) of
		{gun_ws, ConnPid, Frame} when Error =:= none ->
			check_frame(Frame, SilencePings),
			random_collect(ConnPid, StreamRef, SilencePings, Error);
		{gun_error, ConnPid, StreamRef, Reason} when Error =:= none ->
			random_collect(ConnPid, StreamRef, SilencePings, {error_sent, Reason});
		{gun_down, ConnPid, ws, normal, [StreamRef], []} when Error =:= none ->
			normal;
		{gun_down, ConnPid, ws, Reason, [StreamRef], []} when Error =:= {error_sent, Reason} ->
			Reason;
		Other ->
			ct:fail({unexpected_message, Other, {gun_error_before, Error}})
	end.

check_frame({text, B}, _) when is_binary(B) ->
	case valid_utf8(B) of
		true -> ok;
		false -> ct:fail({invalid_utf8_delivered, B})
	end;
check_frame({binary, B}, _) when is_binary(B) ->
	ok;
check_frame(close, _) ->
	ok;
check_frame({close, Code, B}, _) when is_integer(Code), is_binary(B) ->
	ValidCode = (Code >= 1000 andalso Code =< 1003) orelse (Code >= 1007 andalso Code =< 1014)
		orelse (Code >= 3000 andalso Code =< 4999),
	case ValidCode andalso valid_utf8(B) of
		true -> ok;
		false -> ct:fail({invalid_close_delivered, Code, B})
	end;
check_frame(F, false) when F =:= ping; F =:= pong ->
	ok;
check_frame({P, B}, false) when (P =:= ping orelse P =:= pong), is_binary(B), byte_size(B) =< 125 ->
	ok;
check_frame(F, SilencePings) ->
	ct:fail({unexpected_frame_delivered, F, {silence_pings, SilencePings}}).

outcome(Reason) -> Reason.

%% After all that, a normal connection still works.
normal_session(LSock, Port) ->
	St = #{conn := ConnPid, mref := MRef, ref := StreamRef, sock := Sock, req := Req}
		= open_upgrade(LSock, Port, #{}, undefined),
	raw_peer:send(Sock, raw_peer:response_101(Req)),
	expect_upgraded(St, raw_peer:headers_101(Req)),
	raw_peer:send(Sock, raw_peer:frame(1, <<"still alive">>)),
	?NEXT(ConnPid, {gun_ws, ConnPid, {text, <<"still alive">>}}),
	ok = gun:ws_send(ConnPid, {text, <<"yes">>}),
	<<"yes">> = raw_peer:expect_frame(Sock, 1),
	ok = gun:ws_send(ConnPid, close),
	<<_/binary>> = raw_peer:expect_frame(Sock, 8),
	raw_peer:send(Sock, raw_peer:frame(8, <<>>)),
	?NEXT(ConnPid, {gun_ws, ConnPid, close}),
	?NEXT(ConnPid, {gun_down, ConnPid, ws, normal, [StreamRef], []}),
	normal = down(ConnPid, MRef),
	raw_peer:expect_eof(Sock).
