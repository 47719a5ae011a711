%% Integration tests of Gun's HTTP/1.1 request API (before an upgrade)
%% against an independent server: test/support/http_server.py (Python's
%% http.server, HTTP/1.1, keep-alive). One test (upgrade_queued_ws_server)
%% uses test/support/ws_server.py (Python's websockets).
%%
%% The terms asserted come from ../shared/spec/contract.md and the section
%% "HTTP requests (before an upgrade)" of doc/behaviour.md. Most checks take
%% the next message in the mailbox (next/0), so they also check the order
%% and that nothing else arrived.
%%
%% Run: rebar3 ct --suite test/http_SUITE
-module(http_SUITE).

-import(suite_helper, [
	find_script/1, start_server/2, stop_server/1, next/0, next/1, monitor_conn/1,
	down/2, close/1, check_headers/1, header/2, json_value/2, no_messages_from/1,
	response/3, body/2, body/3, ok_body/2, trailer_body/2, now_ms/0, ms_since/1
]).

-compile([export_all, nowarn_export_all]).

-include("suite_helper.hrl").

suite() ->
	[{timetrap, {minutes, 5}}].

all() ->
	cases() ++ [{group, mode2}].

%% The cases that run in mode 2 as well (through mode.erl): all but those
%% that look at terms only mode 1 has.
groups() ->
	mode:groups(cases(), mode1_only()).

%% Mode 1's terms: await results (mode 2 wraps errors), down and stream
%% reasons (mode 2's are Gun 2's: normal after connection: close,
%% closing, {closed, _}, {connection_error, Kind, Text}), and the
%% badstate of requests on an upgraded connection. gun2_SUITE and Gun 2's
%% own suites check mode 2's.
mode1_only() ->
	[await_conn_killed, await_conn_closed, await_dead_conn, await_lost_connection,
		eof_delimited_body, http10, connection_close_response, connection_close_reconnect,
		connection_close_pipelined_unprocessed, lost_with_unwritten_requests,
		request_while_down, upgrade_queued_behind_requests, requests_after_upgrade_badstate,
		upgrade_queued_ws_server, bad_malformed, bad_head_too_large, bad_too_many_headers,
		bad_content_length, bad_chunk].

init_per_group(mode2, Config) ->
	ok = mode:set(2),
	Config.

end_per_group(mode2, _) ->
	mode:unset().

cases() ->
	[
		%% Requests and responses.
		get_fixed,
		get_request_headers,
		method_arities,
		head_no_body,
		status_204,
		status_304,
		inform_1xx,
		chunked_body,
		chunked_trailers,
		big_body,
		eof_delimited_body,
		http10,
		%% Request bodies.
		post_put_patch_body,
		long_iolist_bodies,
		request_5_method,
		body_content_length_given,
		empty_body,
		big_request_body,
		streamed_chunked,
		streamed_content_length,
		streamed_request_4,
		streamed_big,
		requests_wait_for_body,
		data_not_expecting_body,
		%% Keep-alive and pipelining.
		keepalive_reuse,
		pipelining_10,
		pipelining_mixed,
		%% Cancel.
		cancel_before_response,
		cancel_mid_body,
		%% await and await_body.
		await_response_data,
		await_body_arities,
		await_inform_trailers,
		await_timeout,
		await_body_timeout,
		await_default_timeout,
		await_body_default_timeout,
		await_conn_killed,
		await_conn_closed,
		await_dead_conn,
		await_lost_connection,
		%% Losing the connection.
		connection_close_response,
		connection_close_reconnect,
		connection_close_pipelined_unprocessed,
		lost_mid_body_killed,
		lost_with_unwritten_requests,
		request_before_up,
		request_while_down,
		%% The upgrade among requests.
		upgrade_queued_behind_requests,
		requests_after_upgrade_badstate,
		upgrade_queued_ws_server,
		upgrade_refused_then_requests,
		%% Bad responses.
		bad_malformed,
		bad_head_too_large,
		bad_too_many_headers,
		bad_content_length,
		bad_chunk,
		%% Info and flush.
		info_http,
		flush_stream_ref
	].

%% Setup.

init_per_suite(Config) ->
	{ok, _} = application:ensure_all_started(gun),
	{HttpHolder, HttpPort} = start_server(find_script("http_server.py"), []),
	{WsHolder, WsPort} = start_server(find_script("ws_server.py"), []),
	[{http_port, HttpPort}, {ws_port, WsPort}, {holders, [HttpHolder, WsHolder]}|Config].

end_per_suite(Config) ->
	[stop_server(H) || H <- proplists:get_value(holders, Config)],
	ok.

%% Helpers.

port(Config) ->
	proplists:get_value(http_port, Config).

%% No message about StreamRef (third element of the stream messages).
no_messages_for(StreamRef) ->
	{messages, Msgs} = process_info(self(), messages),
	case [M || M <- Msgs, is_tuple(M), tuple_size(M) >= 3, element(3, M) =:= StreamRef] of
		[] -> ok;
		Left -> error({unexpected_messages, StreamRef, Left})
	end.

connect(Config) ->
	connect(Config, #{}).

connect(Config, Opts) ->
	suite_helper:open_up("127.0.0.1", port(Config), Opts).

%% The gun_data nofin messages that come next, concatenated, and the
%% message after them.
collect_nofin(ConnPid, StreamRef, Acc) ->
	case next() of
		{gun_data, ConnPid, StreamRef, nofin, Data} -> collect_nofin(ConnPid, StreamRef, <<Acc/binary, Data/binary>>);
		Msg -> {Acc, Msg}
	end.

pattern(Size) ->
	Base = list_to_binary(lists:seq(0, 255)),
	binary:part(binary:copy(Base, Size div 256 + 1), 0, Size).

sock_port(ConnPid) ->
	#{sock_port := SockPort} = gun:info(ConnPid),
	SockPort.

%% Requests and responses.

get_fixed(Config) ->
	ConnPid = connect(Config),
	StreamRef = gun:get(ConnPid, "/fixed"),
	true = is_reference(StreamRef),
	{gun_response, ConnPid, StreamRef, nofin, 200, Headers} = next(),
	ok = check_headers(Headers),
	<<"12">> = header(<<"content-length">>, Headers),
	<<"text/plain">> = header(<<"content-type">>, Headers),
	<<"Hello world!">> = body(ConnPid, StreamRef),
	close(ConnPid).

%% The caller's headers are sent (names and values iodata), with a host
%% header and the HTTP/1.1 request line.
get_request_headers(Config) ->
	Port = port(Config),
	ConnPid = connect(Config),
	StreamRef = gun:get(ConnPid, "/headers?q=1", [
		{<<"x-test">>, <<"value">>},
		{"x-list", ["two ", <<"words">>]},
		{<<"accept">>, <<"text/plain">>}
	]),
	{_, Json} = ok_body(ConnPid, StreamRef),
	<<"GET">> = json_value(Json, "method"),
	<<"/headers?q=1">> = json_value(Json, "path"),
	<<"HTTP/1.1">> = json_value(Json, "version"),
	<<"value">> = json_value(Json, "x-test"),
	<<"two words">> = json_value(Json, "x-list"),
	<<"text/plain">> = json_value(Json, "accept"),
	Host = iolist_to_binary(["127.0.0.1:", integer_to_list(Port)]),
	Host = json_value(Json, "host"),
	%% A binary path works too.
	StreamRef2 = gun:get(ConnPid, <<"/headers">>),
	{_, Json2} = ok_body(ConnPid, StreamRef2),
	<<"/headers">> = json_value(Json2, "path"),
	close(ConnPid).

%% get/head/options/delete with and without headers: the method the server
%% saw, and no body (the answer has content-length 0: the response is fin).
method_arities(Config) ->
	ConnPid = connect(Config),
	H = [{<<"x-a">>, <<"1">>}],
	lists:foreach(fun({Method, Fun}) ->
		StreamRef = Fun(),
		{fin, Headers} = response(ConnPid, StreamRef, 200),
		Method = header(<<"x-method">>, Headers),
		<<"0">> = header(<<"content-length">>, Headers),
		<<"none">> = header(<<"x-request-transfer-encoding">>, Headers)
	end, [
		{<<"GET">>, fun() -> gun:get(ConnPid, "/echo") end},
		{<<"GET">>, fun() -> gun:get(ConnPid, "/echo", H) end},
		{<<"HEAD">>, fun() -> gun:head(ConnPid, "/echo") end},
		{<<"HEAD">>, fun() -> gun:head(ConnPid, "/echo", H) end},
		{<<"OPTIONS">>, fun() -> gun:options(ConnPid, "/echo") end},
		{<<"OPTIONS">>, fun() -> gun:options(ConnPid, "/echo", H) end},
		{<<"DELETE">>, fun() -> gun:delete(ConnPid, "/echo") end},
		{<<"DELETE">>, fun() -> gun:delete(ConnPid, "/echo", H) end}
	]),
	close(ConnPid).

%% HEAD: the content-length of the body that is not sent; nothing is read
%% as a body (the next response on the connection is intact).
head_no_body(Config) ->
	ConnPid = connect(Config),
	SockPort = sock_port(ConnPid),
	StreamRef = gun:head(ConnPid, "/fixed"),
	{gun_response, ConnPid, StreamRef, fin, 200, Headers} = next(),
	ok = check_headers(Headers),
	<<"12">> = header(<<"content-length">>, Headers),
	StreamRef2 = gun:get(ConnPid, "/fixed"),
	{_, <<"Hello world!">>} = ok_body(ConnPid, StreamRef2),
	SockPort = sock_port(ConnPid),
	no_messages_from(ConnPid),
	close(ConnPid).

status_204(Config) ->
	ConnPid = connect(Config),
	StreamRef = gun:get(ConnPid, "/status?code=204"),
	{gun_response, ConnPid, StreamRef, fin, 204, Headers} = next(),
	<<"204">> = header(<<"x-status">>, Headers),
	StreamRef2 = gun:get(ConnPid, "/fixed"),
	{_, <<"Hello world!">>} = ok_body(ConnPid, StreamRef2),
	close(ConnPid).

%% A 304 with a content-length has no body either.
status_304(Config) ->
	ConnPid = connect(Config),
	StreamRef = gun:get(ConnPid, "/status?code=304", [{<<"if-none-match">>, <<"\"v1\"">>}]),
	{gun_response, ConnPid, StreamRef, fin, 304, Headers} = next(),
	<<"\"v1\"">> = header(<<"etag">>, Headers),
	<<"12">> = header(<<"content-length">>, Headers),
	StreamRef2 = gun:get(ConnPid, "/fixed"),
	{_, <<"Hello world!">>} = ok_body(ConnPid, StreamRef2),
	close(ConnPid).

inform_1xx(Config) ->
	ConnPid = connect(Config),
	StreamRef = gun:get(ConnPid, "/inform"),
	{gun_inform, ConnPid, StreamRef, 100, []} = next(),
	{gun_inform, ConnPid, StreamRef, 103, [{<<"link">>, <<"</style.css>; rel=preload">>}]} = next(),
	{Headers, <<"informed">>} = ok_body(ConnPid, StreamRef),
	<<"8">> = header(<<"content-length">>, Headers),
	close(ConnPid).

chunked_body(Config) ->
	ConnPid = connect(Config),
	StreamRef = gun:get(ConnPid, "/chunked"),
	{gun_response, ConnPid, StreamRef, nofin, 200, Headers} = next(),
	ok = check_headers(Headers),
	<<"chunked">> = header(<<"transfer-encoding">>, Headers),
	<<"Hello chunked world!">> = body(ConnPid, StreamRef),
	%% The connection is still usable.
	StreamRef2 = gun:get(ConnPid, "/fixed"),
	{_, <<"Hello world!">>} = ok_body(ConnPid, StreamRef2),
	close(ConnPid).

%% The last gun_data is nofin; gun_trailers ends the stream.
chunked_trailers(Config) ->
	ConnPid = connect(Config),
	StreamRef = gun:get(ConnPid, "/chunked?trailers=1"),
	{nofin, Headers} = response(ConnPid, StreamRef, 200),
	<<"x-checksum, x-two">> = header(<<"trailer">>, Headers),
	<<"Hello chunked world!">> = trailer_body(ConnPid, StreamRef),
	StreamRef2 = gun:get(ConnPid, "/fixed"),
	{_, <<"Hello world!">>} = ok_body(ConnPid, StreamRef2),
	close(ConnPid).

big_body(Config) ->
	ConnPid = connect(Config),
	Size = 5000000,
	StreamRef = gun:get(ConnPid, "/big?size=" ++ integer_to_list(Size)),
	{nofin, Headers} = response(ConnPid, StreamRef, 200),
	<<"5000000">> = header(<<"content-length">>, Headers),
	Body = body(ConnPid, StreamRef, ?BIG_T),
	Size = byte_size(Body),
	true = Body =:= pattern(Size),
	close(ConnPid).

%% No content-length, connection: close: the body ends with the connection.
eof_delimited_body(Config) ->
	ConnPid = connect(Config),
	MRef = monitor_conn(ConnPid),
	StreamRef = gun:get(ConnPid, "/eof"),
	{nofin, _} = response(ConnPid, StreamRef, 200),
	<<"until the end">> = body(ConnPid, StreamRef),
	{gun_down, ConnPid, http, closed, [], []} = next(),
	{shutdown, closed} = down(ConnPid, MRef).

%% The request line says HTTP/1.0. (Whether the connection is kept alive
%% after it is not asserted: the server closes it unless the client asked
%% for keep-alive.)
http10(Config) ->
	ConnPid = connect(Config, #{http_opts => #{version => 'HTTP/1.0'}}),
	MRef = monitor_conn(ConnPid),
	StreamRef = gun:get(ConnPid, "/headers"),
	{_, Json} = ok_body(ConnPid, StreamRef),
	<<"HTTP/1.0">> = json_value(Json, "version"),
	ok = gun:close(ConnPid),
	Exit = down(ConnPid, MRef),
	Left = [M || M <- element(2, process_info(self(), messages)), element(2, M) =:= ConnPid],
	ct:log("HTTP/1.0: exit ~p, then ~p", [Exit, Left]),
	case {Exit, Left} of
		{normal, []} -> ok;
		{{shutdown, closed}, [{gun_down, ConnPid, http, closed, [], []}]} -> ok
	end,
	ok = gun:flush(ConnPid).

%% Request bodies.

post_put_patch_body(Config) ->
	ConnPid = connect(Config),
	CT = [{<<"content-type">>, <<"text/plain">>}],
	lists:foreach(fun({Method, StreamRef, Expected}) ->
		{Headers, Expected} = ok_body(ConnPid, StreamRef),
		Method = header(<<"x-method">>, Headers),
		Len = integer_to_binary(byte_size(Expected)),
		Len = header(<<"x-request-content-length">>, Headers),
		<<"none">> = header(<<"x-request-transfer-encoding">>, Headers)
	end, [
		{<<"POST">>, gun:post(ConnPid, "/echo", CT, <<"posted">>), <<"posted">>},
		{<<"PUT">>, gun:put(ConnPid, "/echo", CT, <<"put body">>), <<"put body">>},
		{<<"PATCH">>, gun:patch(ConnPid, "/echo", CT, <<"patch">>), <<"patch">>},
		%% iodata bodies.
		{<<"POST">>, gun:post(ConnPid, "/echo", CT, ["io", [<<"da">>, $t], <<"a">>]), <<"iodata">>},
		{<<"PUT">>, gun:put(ConnPid, "/echo", CT, [<<1, 2>>, [3]]), <<1, 2, 3>>}
	]),
	close(ConnPid).

%% Bodies given as iolists of many cells (few bytes) are sent whole, by
%% request and by gun:data/4: the normal NIF call leaves them to a dirty
%% one rather than walk them.
long_iolist_bodies(Config) ->
	ConnPid = connect(Config),
	Long = lists:duplicate(100000, [<<"ab">>]),
	Flat = iolist_to_binary(Long),
	StreamRef = gun:post(ConnPid, "/echo", [], Long),
	{_, Flat} = ok_body(ConnPid, StreamRef),
	StreamRef2 = gun:post(ConnPid, "/echo", []),
	ok = gun:data(ConnPid, StreamRef2, fin, Long),
	{_, Flat} = ok_body(ConnPid, StreamRef2),
	close(ConnPid).

request_5_method(Config) ->
	ConnPid = connect(Config),
	StreamRef = gun:request(ConnPid, <<"PROPFIND">>, "/echo", [{<<"depth">>, <<"1">>}], <<"<x/>">>),
	{Headers, <<"<x/>">>} = ok_body(ConnPid, StreamRef),
	<<"PROPFIND">> = header(<<"x-method">>, Headers),
	<<"4">> = header(<<"x-request-content-length">>, Headers),
	StreamRef2 = gun:request(ConnPid, <<"POST">>, <<"/echo">>, [], <<"b">>),
	{Headers2, <<"b">>} = ok_body(ConnPid, StreamRef2),
	<<"POST">> = header(<<"x-method">>, Headers2),
	close(ConnPid).

%% A content-length given by the caller is not added a second time.
body_content_length_given(Config) ->
	ConnPid = connect(Config),
	StreamRef = gun:post(ConnPid, "/echo", [{<<"content-length">>, <<"5">>}], <<"hello">>),
	{Headers, <<"hello">>} = ok_body(ConnPid, StreamRef),
	<<"5">> = header(<<"x-request-content-length">>, Headers),
	<<"none">> = header(<<"x-request-transfer-encoding">>, Headers),
	close(ConnPid).

empty_body(Config) ->
	ConnPid = connect(Config),
	StreamRef = gun:post(ConnPid, "/echo", [], <<>>),
	%% The echo has content-length 0: the response is fin.
	{fin, Headers} = response(ConnPid, StreamRef, 200),
	<<"0">> = header(<<"x-request-content-length">>, Headers),
	close(ConnPid).

big_request_body(Config) ->
	ConnPid = connect(Config),
	Body = pattern(5000000),
	StreamRef = gun:put(ConnPid, "/echo", [], Body),
	{nofin, Headers} = response(ConnPid, StreamRef, 200),
	<<"5000000">> = header(<<"x-request-content-length">>, Headers),
	Echo = body(ConnPid, StreamRef, ?BIG_T),
	true = Echo =:= Body,
	close(ConnPid).

%% post/3 then gun:data/4: transfer-encoding chunked.
streamed_chunked(Config) ->
	ConnPid = connect(Config),
	StreamRef = gun:post(ConnPid, "/echo", [{<<"content-type">>, <<"text/plain">>}]),
	true = is_reference(StreamRef),
	ok = gun:data(ConnPid, StreamRef, nofin, <<"Hello ">>),
	ok = gun:data(ConnPid, StreamRef, nofin, [<<"stream">>, "ed", [$\s]]),
	ok = gun:data(ConnPid, StreamRef, nofin, <<>>),
	ok = gun:data(ConnPid, StreamRef, fin, "world"),
	{Headers, <<"Hello streamed world">>} = ok_body(ConnPid, StreamRef),
	<<"POST">> = header(<<"x-method">>, Headers),
	<<"chunked">> = header(<<"x-request-transfer-encoding">>, Headers),
	<<"none">> = header(<<"x-request-content-length">>, Headers),
	%% put/3 and patch/3 too, ending with an empty fin.
	lists:foreach(fun({Method, Ref}) ->
		ok = gun:data(ConnPid, Ref, nofin, <<"abc">>),
		ok = gun:data(ConnPid, Ref, fin, <<>>),
		{H, <<"abc">>} = ok_body(ConnPid, Ref),
		Method = header(<<"x-method">>, H),
		<<"chunked">> = header(<<"x-request-transfer-encoding">>, H)
	end, [{<<"PUT">>, gun:put(ConnPid, "/echo", [])}, {<<"PATCH">>, gun:patch(ConnPid, "/echo", [])}]),
	close(ConnPid).

%% A content-length given by the caller: the body is sent as is.
streamed_content_length(Config) ->
	ConnPid = connect(Config),
	StreamRef = gun:post(ConnPid, "/echo", [{<<"content-length">>, <<"11">>}]),
	ok = gun:data(ConnPid, StreamRef, nofin, <<"Hello">>),
	ok = gun:data(ConnPid, StreamRef, fin, <<" world">>),
	{Headers, <<"Hello world">>} = ok_body(ConnPid, StreamRef),
	<<"11">> = header(<<"x-request-content-length">>, Headers),
	<<"none">> = header(<<"x-request-transfer-encoding">>, Headers),
	close(ConnPid).

streamed_request_4(Config) ->
	ConnPid = connect(Config),
	StreamRef = gun:request(ConnPid, <<"PUT">>, "/echo", [{<<"content-type">>, <<"text/plain">>}]),
	ok = gun:data(ConnPid, StreamRef, nofin, <<"req">>),
	ok = gun:data(ConnPid, StreamRef, fin, <<"uest/4">>),
	{Headers, <<"request/4">>} = ok_body(ConnPid, StreamRef),
	<<"PUT">> = header(<<"x-method">>, Headers),
	<<"chunked">> = header(<<"x-request-transfer-encoding">>, Headers),
	close(ConnPid).

streamed_big(Config) ->
	ConnPid = connect(Config),
	Body = pattern(2000000),
	StreamRef = gun:post(ConnPid, "/echo", []),
	send_pieces(ConnPid, StreamRef, Body, 65536),
	{nofin, _} = response(ConnPid, StreamRef, 200),
	Echo = body(ConnPid, StreamRef, ?BIG_T),
	true = Echo =:= Body,
	close(ConnPid).

send_pieces(ConnPid, StreamRef, Bin, Size) when byte_size(Bin) =< Size ->
	ok = gun:data(ConnPid, StreamRef, fin, Bin);
send_pieces(ConnPid, StreamRef, Bin, Size) ->
	<<Piece:Size/binary, Rest/binary>> = Bin,
	ok = gun:data(ConnPid, StreamRef, nofin, Piece),
	send_pieces(ConnPid, StreamRef, Rest, Size).

%% Requests asked for while a body is being sent wait until it is finished.
requests_wait_for_body(Config) ->
	ConnPid = connect(Config),
	StreamRef = gun:post(ConnPid, "/echo", []),
	ok = gun:data(ConnPid, StreamRef, nofin, <<"part1 ">>),
	StreamRef2 = gun:get(ConnPid, "/fixed"),
	StreamRef3 = gun:post(ConnPid, "/echo", [], <<"third">>),
	%% Nothing can be answered: the server is still reading the first body.
	receive Msg -> error({unexpected, Msg}) after 500 -> ok end,
	ok = gun:data(ConnPid, StreamRef, fin, <<"part2">>),
	{_, <<"part1 part2">>} = ok_body(ConnPid, StreamRef),
	{_, <<"Hello world!">>} = ok_body(ConnPid, StreamRef2),
	{_, <<"third">>} = ok_body(ConnPid, StreamRef3),
	close(ConnPid).

data_not_expecting_body(Config) ->
	ConnPid = connect(Config),
	Badstate = {badstate, ?BADSTATE_BODY},
	%% A request without a body.
	StreamRef = gun:get(ConnPid, "/slow?ms=300"),
	ok = gun:data(ConnPid, StreamRef, fin, <<"x">>),
	{gun_error, ConnPid, StreamRef, Badstate} = next(),
	{_, <<"slow">>} = ok_body(ConnPid, StreamRef),
	%% A request with its whole body (the error and the response may come
	%% in either order; the response is complete and intact).
	StreamRef2 = gun:post(ConnPid, "/echo", [], <<"whole">>),
	ok = gun:data(ConnPid, StreamRef2, nofin, <<"more">>),
	{gun_error, ConnPid, StreamRef2, Badstate} = take_error(ConnPid, StreamRef2),
	{_, <<"whole">>} = ok_body(ConnPid, StreamRef2),
	%% A streamed body after its fin.
	StreamRef3 = gun:post(ConnPid, "/echo", []),
	ok = gun:data(ConnPid, StreamRef3, fin, <<"done">>),
	ok = gun:data(ConnPid, StreamRef3, fin, <<"again">>),
	{gun_error, ConnPid, StreamRef3, Badstate} = take_error(ConnPid, StreamRef3),
	{_, <<"done">>} = ok_body(ConnPid, StreamRef3),
	timer:sleep(200),
	no_messages_from(ConnPid),
	close(ConnPid).

take_error(ConnPid, StreamRef) ->
	receive
		Error = {gun_error, ConnPid, StreamRef, _} -> Error
	after ?T ->
		error({no_gun_error, StreamRef, {mailbox, element(2, process_info(self(), messages))}})
	end.

%% Keep-alive and pipelining.

%% Two requests one after the other on the same socket: the server saw the
%% same client port, the one gun:info/1 reports.
keepalive_reuse(Config) ->
	ConnPid = connect(Config),
	SockPort = integer_to_binary(sock_port(ConnPid)),
	StreamRef = gun:get(ConnPid, "/headers"),
	{_, Json} = ok_body(ConnPid, StreamRef),
	SockPort = json_value(Json, "peer"),
	timer:sleep(200),
	StreamRef2 = gun:get(ConnPid, "/headers"),
	true = StreamRef2 =/= StreamRef,
	{_, Json2} = ok_body(ConnPid, StreamRef2),
	SockPort = json_value(Json2, "peer"),
	SockPort = integer_to_binary(sock_port(ConnPid)),
	close(ConnPid).

%% 10 requests asked for at once: all written before the first response
%% (the server, which sleeps 300 ms before the first, sees the next
%% request waiting), answered in order.
pipelining_10(Config) ->
	ConnPid = connect(Config),
	SockPort = sock_port(ConnPid),
	Refs = [gun:get(ConnPid, "/pipe?i=" ++ integer_to_list(I) ++ "&ms=" ++ ms(I))
		|| I <- lists:seq(1, 10)],
	10 = length(lists:usort(Refs)),
	lists:foreach(fun({I, StreamRef}) ->
		{Headers, Body} = ok_body(ConnPid, StreamRef),
		Body = integer_to_binary(I),
		case I of
			10 -> ok;
			_ -> <<"yes">> = header(<<"x-pipelined">>, Headers)
		end
	end, lists:zip(lists:seq(1, 10), Refs)),
	SockPort = sock_port(ConnPid),
	no_messages_from(ConnPid),
	close(ConnPid).

ms(1) -> "300";
ms(_) -> "20".

%% Pipelined responses of every framing keep their boundaries.
pipelining_mixed(Config) ->
	ConnPid = connect(Config),
	SockPort = sock_port(ConnPid),
	R1 = gun:head(ConnPid, "/fixed"),
	R2 = gun:get(ConnPid, "/status?code=204"),
	R3 = gun:get(ConnPid, "/status?code=304"),
	R4 = gun:get(ConnPid, "/chunked"),
	R5 = gun:post(ConnPid, "/echo", [], <<"abc">>),
	R6 = gun:get(ConnPid, "/inform"),
	R7 = gun:get(ConnPid, "/chunked?trailers=1"),
	R8 = gun:get(ConnPid, "/fixed"),
	{fin, _} = response(ConnPid, R1, 200),
	{fin, _} = response(ConnPid, R2, 204),
	{fin, _} = response(ConnPid, R3, 304),
	{_, <<"Hello chunked world!">>} = ok_body(ConnPid, R4),
	{_, <<"abc">>} = ok_body(ConnPid, R5),
	{gun_inform, ConnPid, R6, 100, []} = next(),
	{gun_inform, ConnPid, R6, 103, _} = next(),
	{_, <<"informed">>} = ok_body(ConnPid, R6),
	{nofin, _} = response(ConnPid, R7, 200),
	<<"Hello chunked world!">> = trailer_body(ConnPid, R7),
	{_, <<"Hello world!">>} = ok_body(ConnPid, R8),
	SockPort = sock_port(ConnPid),
	no_messages_from(ConnPid),
	close(ConnPid).

%% Cancel.

cancel_before_response(Config) ->
	ConnPid = connect(Config),
	SockPort = sock_port(ConnPid),
	StreamRef = gun:get(ConnPid, "/slow?ms=300"),
	ok = gun:cancel(ConnPid, StreamRef),
	StreamRef2 = gun:get(ConnPid, "/fixed"),
	%% The next messages are the second response's: the first was read and
	%% dropped.
	{_, <<"Hello world!">>} = ok_body(ConnPid, StreamRef2),
	{error, timeout} = gun:await(ConnPid, StreamRef, 300),
	no_messages_for(StreamRef),
	%% Same connection.
	SockPort = sock_port(ConnPid),
	no_messages_from(ConnPid),
	close(ConnPid).

%% Cancelled while its body arrives: no gun_data fin for it, and the
%% connection goes on with the next response.
cancel_mid_body(Config) ->
	ConnPid = connect(Config),
	SockPort = sock_port(ConnPid),
	StreamRef = gun:get(ConnPid, "/big?size=20000000"),
	{nofin, _} = response(ConnPid, StreamRef, 200),
	{gun_data, ConnPid, StreamRef, nofin, _} = next(),
	ok = gun:cancel(ConnPid, StreamRef),
	StreamRef2 = gun:get(ConnPid, "/fixed"),
	%% Messages sent before the cancel was handled may still arrive; all
	%% of them gun_data nofin. Then the next response.
	{Late, Next} = skip_data_nofin(ConnPid, StreamRef, 0),
	ct:log("~p gun_data nofin after gun:cancel/2", [Late]),
	{gun_response, ConnPid, StreamRef2, nofin, 200, _} = Next,
	<<"Hello world!">> = body(ConnPid, StreamRef2),
	no_messages_for(StreamRef),
	SockPort = sock_port(ConnPid),
	close(ConnPid).

skip_data_nofin(ConnPid, StreamRef, N) ->
	case next(?BIG_T) of
		{gun_data, ConnPid, StreamRef, nofin, _} -> skip_data_nofin(ConnPid, StreamRef, N + 1);
		Msg -> {N, Msg}
	end.

%% await and await_body.

await_response_data(Config) ->
	ConnPid = connect(Config),
	StreamRef = gun:get(ConnPid, "/fixed"),
	{response, nofin, 200, Headers} = gun:await(ConnPid, StreamRef),
	ok = check_headers(Headers),
	<<"12">> = header(<<"content-length">>, Headers),
	{data, fin, <<"Hello world!">>} = gun:await(ConnPid, StreamRef),
	StreamRef2 = gun:head(ConnPid, "/fixed"),
	{response, fin, 200, _} = gun:await(ConnPid, StreamRef2, ?T),
	StreamRef3 = gun:get(ConnPid, "/status?code=204"),
	{response, fin, 204, _} = gun:await(ConnPid, StreamRef3),
	no_messages_from(ConnPid),
	close(ConnPid).

await_body_arities(Config) ->
	ConnPid = connect(Config),
	StreamRef = gun:get(ConnPid, "/fixed"),
	{response, nofin, 200, _} = gun:await(ConnPid, StreamRef),
	{ok, <<"Hello world!">>} = gun:await_body(ConnPid, StreamRef),
	StreamRef2 = gun:get(ConnPid, "/chunked"),
	{response, nofin, 200, _} = gun:await(ConnPid, StreamRef2, ?T),
	{ok, <<"Hello chunked world!">>} = gun:await_body(ConnPid, StreamRef2, ?T),
	StreamRef3 = gun:get(ConnPid, "/big?size=1000000"),
	{response, nofin, 200, _} = gun:await(ConnPid, StreamRef3),
	{ok, Big} = gun:await_body(ConnPid, StreamRef3, ?BIG_T),
	true = Big =:= pattern(1000000),
	StreamRef4 = gun:post(ConnPid, "/echo", [], <<"echoed">>),
	{response, nofin, 200, _} = gun:await(ConnPid, StreamRef4),
	{ok, <<"echoed">>} = gun:await_body(ConnPid, StreamRef4),
	no_messages_from(ConnPid),
	close(ConnPid).

await_inform_trailers(Config) ->
	ConnPid = connect(Config),
	StreamRef = gun:get(ConnPid, "/inform"),
	{inform, 100, []} = gun:await(ConnPid, StreamRef),
	{inform, 103, [{<<"link">>, <<"</style.css>; rel=preload">>}]} = gun:await(ConnPid, StreamRef),
	{response, nofin, 200, _} = gun:await(ConnPid, StreamRef),
	{ok, <<"informed">>} = gun:await_body(ConnPid, StreamRef),
	StreamRef2 = gun:get(ConnPid, "/chunked?trailers=1"),
	{response, nofin, 200, _} = gun:await(ConnPid, StreamRef2),
	<<"Hello chunked world!">> = await_trailers(ConnPid, StreamRef2, <<>>),
	no_messages_from(ConnPid),
	close(ConnPid).

await_trailers(ConnPid, StreamRef, Acc) ->
	case gun:await(ConnPid, StreamRef) of
		{data, nofin, Data} -> await_trailers(ConnPid, StreamRef, <<Acc/binary, Data/binary>>);
		{trailers, [{<<"x-checksum">>, <<"3a2b">>}, {<<"x-two">>, <<"2">>}]} -> Acc;
		Other -> error({unexpected, Other})
	end.

await_timeout(Config) ->
	ConnPid = connect(Config),
	StreamRef = gun:get(ConnPid, "/slow?ms=1000"),
	{error, timeout} = gun:await(ConnPid, StreamRef, 100),
	%% The response still comes.
	{response, nofin, 200, _} = gun:await(ConnPid, StreamRef, ?T),
	{ok, <<"slow">>} = gun:await_body(ConnPid, StreamRef),
	close(ConnPid).

await_body_timeout(Config) ->
	ConnPid = connect(Config),
	StreamRef = gun:get(ConnPid, "/slow?ms=1000&where=body"),
	{response, nofin, 200, _} = gun:await(ConnPid, StreamRef),
	{error, timeout} = gun:await_body(ConnPid, StreamRef, 100),
	{ok, <<"slow">>} = gun:await_body(ConnPid, StreamRef, ?T),
	close(ConnPid).

%% The default timeout of gun:await/2 is 5000 ms.
await_default_timeout(Config) ->
	ConnPid = connect(Config),
	StreamRef = gun:get(ConnPid, "/slow?ms=7000"),
	T0 = now_ms(),
	{error, timeout} = gun:await(ConnPid, StreamRef),
	Ms = ms_since(T0),
	ct:log("gun:await/2 timed out after ~p ms", [Ms]),
	true = Ms >= 4900 andalso Ms < 6500,
	close(ConnPid).

await_body_default_timeout(Config) ->
	ConnPid = connect(Config),
	StreamRef = gun:get(ConnPid, "/slow?ms=7000&where=body"),
	{response, nofin, 200, _} = gun:await(ConnPid, StreamRef),
	T0 = now_ms(),
	{error, timeout} = gun:await_body(ConnPid, StreamRef),
	Ms = ms_since(T0),
	ct:log("gun:await_body/2 timed out after ~p ms", [Ms]),
	true = Ms >= 4900 andalso Ms < 6500,
	close(ConnPid).

%% ConnPid killed while the caller waits: {error, killed} (the exit reason),
%% promptly.
await_conn_killed(Config) ->
	ConnPid = connect(Config, #{retry => 5}),
	StreamRef = gun:get(ConnPid, "/slow?ms=3000"),
	_ = spawn(fun() -> timer:sleep(200), exit(ConnPid, kill) end),
	T0 = now_ms(),
	{error, killed} = gun:await(ConnPid, StreamRef, ?T),
	true = ms_since(T0) < 2000,
	ConnPid2 = connect(Config, #{retry => 5}),
	StreamRef2 = gun:get(ConnPid2, "/slow?ms=3000&where=body"),
	{response, nofin, 200, _} = gun:await(ConnPid2, StreamRef2),
	_ = spawn(fun() -> timer:sleep(200), exit(ConnPid2, kill) end),
	{error, killed} = gun:await_body(ConnPid2, StreamRef2, ?T).

%% gun:close/1 from another process while the owner waits: {error, normal}.
await_conn_closed(Config) ->
	ConnPid = connect(Config, #{retry => 5}),
	StreamRef = gun:get(ConnPid, "/slow?ms=3000"),
	_ = spawn(fun() -> timer:sleep(200), gun:close(ConnPid) end),
	{error, normal} = gun:await(ConnPid, StreamRef, ?T),
	ConnPid2 = connect(Config, #{retry => 5}),
	StreamRef2 = gun:get(ConnPid2, "/slow?ms=3000&where=body"),
	{response, nofin, 200, _} = gun:await(ConnPid2, StreamRef2),
	_ = spawn(fun() -> timer:sleep(200), gun:close(ConnPid2) end),
	{error, normal} = gun:await_body(ConnPid2, StreamRef2, ?T).

%% A ConnPid that is already gone: {error, noproc} at once (as Gun's
%% monitor-based await gives), not a hang until the timeout.
await_dead_conn(Config) ->
	ConnPid = connect(Config),
	StreamRef = gun:get(ConnPid, "/slow?ms=3000"),
	close(ConnPid),
	T0 = now_ms(),
	{error, noproc} = gun:await(ConnPid, StreamRef, ?T),
	{error, noproc} = gun:await_body(ConnPid, StreamRef, ?T),
	{error, noproc} = gun:await(ConnPid, StreamRef),
	{error, noproc} = gun:await_body(ConnPid, StreamRef),
	true = ms_since(T0) < 1000.

%% The connection is lost mid-body: the stream's gun_error gives
%% await_body's {error, closed}.
await_lost_connection(Config) ->
	ConnPid = connect(Config),
	StreamRef = gun:get(ConnPid, "/midbody"),
	{response, nofin, 200, _} = gun:await(ConnPid, StreamRef),
	{error, closed} = gun:await_body(ConnPid, StreamRef, ?T).

%% Losing the connection.

%% connection: close from the server: the response is complete, then the
%% connection is down (closed), nothing killed; retry => 0 ends ConnPid.
connection_close_response(Config) ->
	ConnPid = connect(Config),
	MRef = monitor_conn(ConnPid),
	StreamRef = gun:get(ConnPid, "/close"),
	{nofin, Headers} = response(ConnPid, StreamRef, 200),
	<<"close">> = header(<<"connection">>, Headers),
	<<"closing">> = body(ConnPid, StreamRef),
	{gun_down, ConnPid, http, closed, [], []} = next(),
	{shutdown, closed} = down(ConnPid, MRef).

connection_close_reconnect(Config) ->
	ConnPid = connect(Config, #{retry => 1, retry_timeout => 100}),
	SockPort = sock_port(ConnPid),
	StreamRef = gun:get(ConnPid, "/close"),
	{_, <<"closing">>} = ok_body(ConnPid, StreamRef),
	{gun_down, ConnPid, http, closed, [], []} = next(),
	{gun_up, ConnPid, http} = next(),
	ct:log("socket port ~p, then ~p", [SockPort, sock_port(ConnPid)]),
	StreamRef2 = gun:get(ConnPid, "/fixed"),
	{_, <<"Hello world!">>} = ok_body(ConnPid, StreamRef2),
	close(ConnPid).

%% Requests pipelined behind a connection: close response are unprocessed:
%% in UnprocessedStreams, no gun_error, not retried on the next connection.
connection_close_pipelined_unprocessed(Config) ->
	ConnPid = connect(Config, #{retry => 1, retry_timeout => 100}),
	R1 = gun:get(ConnPid, "/close?ms=300"),
	R2 = gun:get(ConnPid, "/fixed"),
	R3 = gun:get(ConnPid, "/headers"),
	{_, <<"closing">>} = ok_body(ConnPid, R1),
	{gun_down, ConnPid, http, closed, [], Unprocessed} = next(),
	true = lists:sort(Unprocessed) =:= lists:sort([R2, R3]),
	{gun_up, ConnPid, http} = next(),
	R4 = gun:get(ConnPid, "/fixed"),
	{_, <<"Hello world!">>} = ok_body(ConnPid, R4),
	timer:sleep(300),
	no_messages_from(ConnPid),
	close(ConnPid).

%% Lost mid-body with two requests written behind it: all three killed, each
%% with a gun_error (the gun_down Reason).
lost_mid_body_killed(Config) ->
	ConnPid = connect(Config),
	MRef = monitor_conn(ConnPid),
	R1 = gun:get(ConnPid, "/midbody"),
	R2 = gun:get(ConnPid, "/fixed"),
	R3 = gun:get(ConnPid, "/fixed"),
	{nofin, Headers} = response(ConnPid, R1, 200),
	<<"100">> = header(<<"content-length">>, Headers),
	{<<"0123456789">>, First} = collect_nofin(ConnPid, R1, <<>>),
	Errors = [First, next(), next()],
	true = lists:sort(Errors) =:= lists:sort([{gun_error, ConnPid, R, closed} || R <- [R1, R2, R3]]),
	{gun_down, ConnPid, http, closed, Killed, []} = next(),
	true = lists:sort(Killed) =:= lists:sort([R1, R2, R3]),
	{shutdown, closed} = down(ConnPid, MRef).

%% Lost while a request body is being sent: that request was written
%% (killed, with its gun_error); the request and the upgrade asked for
%% behind it were not (they wait for the body): unprocessed, no gun_error.
lost_with_unwritten_requests(Config) ->
	ConnPid = connect(Config),
	MRef = monitor_conn(ConnPid),
	R1 = gun:post(ConnPid, "/midbody", []),
	ok = gun:data(ConnPid, R1, nofin, <<"never finished">>),
	R2 = gun:get(ConnPid, "/fixed"),
	Up = gun:ws_upgrade(ConnPid, "/ws"),
	{nofin, _} = response(ConnPid, R1, 200),
	{<<"0123456789">>, Error} = collect_nofin(ConnPid, R1, <<>>),
	{gun_error, ConnPid, R1, closed} = Error,
	{gun_down, ConnPid, http, closed, [R1], Unprocessed} = next(),
	true = lists:sort(Unprocessed) =:= lists:sort([R2, Up]),
	{shutdown, closed} = down(ConnPid, MRef).

request_before_up(Config) ->
	{ok, ConnPid} = gun:open("127.0.0.1", port(Config), #{retry => 0}),
	StreamRef = gun:get(ConnPid, "/fixed"),
	{gun_up, ConnPid, http} = next(),
	{_, <<"Hello world!">>} = ok_body(ConnPid, StreamRef),
	close(ConnPid).

%% Requests asked for while the connection is down wait for the next one.
request_while_down(Config) ->
	ConnPid = connect(Config, #{retry => 1, retry_timeout => 500}),
	StreamRef = gun:get(ConnPid, "/close"),
	{_, <<"closing">>} = ok_body(ConnPid, StreamRef),
	{gun_down, ConnPid, http, closed, [], []} = next(),
	StreamRef2 = gun:get(ConnPid, "/fixed"),
	StreamRef3 = gun:post(ConnPid, "/echo", [], <<"queued">>),
	{gun_up, ConnPid, http} = next(),
	{_, <<"Hello world!">>} = ok_body(ConnPid, StreamRef2),
	{_, <<"queued">>} = ok_body(ConnPid, StreamRef3),
	close(ConnPid).

%% The upgrade among requests.

%% Two requests, then an upgrade, then a request: the upgrade is written
%% only once both responses are in (the server, answering the second after
%% 300 ms, sees nothing waiting behind it), the request after it gets the
%% badstate error once upgraded. http_server.py's /ws is a minimal RFC 6455
%% echo (Python's websockets closes the connection after any non-101
%% response, so it cannot answer requests before an upgrade on one
%% connection; see upgrade_queued_ws_server).
upgrade_queued_behind_requests(Config) ->
	ConnPid = connect(Config),
	R1 = gun:get(ConnPid, "/pipe?i=1&ms=300"),
	R2 = gun:get(ConnPid, "/pipe?i=2&ms=300"),
	Up = gun:ws_upgrade(ConnPid, "/ws"),
	R3 = gun:get(ConnPid, "/fixed"),
	true = is_reference(Up),
	{H1, <<"1">>} = ok_body(ConnPid, R1),
	<<"yes">> = header(<<"x-pipelined">>, H1),
	{H2, <<"2">>} = ok_body(ConnPid, R2),
	<<"no">> = header(<<"x-pipelined">>, H2),
	{gun_ws_upgrade, ConnPid, ok, UpHeaders} = next(),
	ok = check_headers(UpHeaders),
	{gun_error, ConnPid, R3, {badstate, ?BADSTATE_UPGRADED}} = next(),
	ok = gun:ws_send(ConnPid, {text, <<"hello">>}),
	{gun_ws, ConnPid, {text, <<"hello">>}} = next(),
	#{protocol := ws} = gun:info(ConnPid),
	close(ConnPid).

requests_after_upgrade_badstate(Config) ->
	ConnPid = connect(Config),
	_ = gun:ws_upgrade(ConnPid, "/ws"),
	{gun_ws_upgrade, ConnPid, ok, _} = next(),
	Badstate = {badstate, ?BADSTATE_UPGRADED},
	R1 = gun:get(ConnPid, "/fixed"),
	{gun_error, ConnPid, R1, Badstate} = next(),
	R2 = gun:post(ConnPid, "/echo", [], <<"body">>),
	{gun_error, ConnPid, R2, Badstate} = next(),
	R3 = gun:request(ConnPid, <<"PUT">>, "/echo", []),
	{gun_error, ConnPid, R3, Badstate} = next(),
	R4 = gun:head(ConnPid, "/fixed", []),
	{gun_error, ConnPid, R4, Badstate} = next(),
	%% The WebSocket is unaffected.
	ok = gun:ws_send(ConnPid, {binary, <<1, 2, 3>>}),
	{gun_ws, ConnPid, {binary, <<1, 2, 3>>}} = next(),
	close(ConnPid).

%% An upgrade refused with a 404 (http_server.py keeps the connection): the
%% response and its body for the upgrade's StreamRef, then the request that
%% waited for the outcome is answered on the same connection.
upgrade_refused_then_requests(Config) ->
	ConnPid = connect(Config),
	SockPort = sock_port(ConnPid),
	R1 = gun:get(ConnPid, "/fixed"),
	Up = gun:ws_upgrade(ConnPid, "/missing"),
	R2 = gun:get(ConnPid, "/fixed"),
	{_, <<"Hello world!">>} = ok_body(ConnPid, R1),
	{gun_response, ConnPid, Up, nofin, 404, Headers} = next(),
	ok = check_headers(Headers),
	<<"not found">> = body(ConnPid, Up),
	{_, <<"Hello world!">>} = ok_body(ConnPid, R2),
	#{protocol := http} = gun:info(ConnPid),
	SockPort = sock_port(ConnPid),
	no_messages_from(ConnPid),
	close(ConnPid).

%% Against Python's websockets: two GET /missing then an upgrade to /echo.
%% The server answers the first with its 404 refusal and closes the
%% connection (connection: close), so the second request and the upgrade,
%% queued behind it, are unprocessed (doc/behaviour.md); after the
%% reconnect the upgrade asked for again succeeds.
upgrade_queued_ws_server(Config) ->
	WsPort = proplists:get_value(ws_port, Config),
	{ok, ConnPid} = gun:open("127.0.0.1", WsPort, #{retry => 1, retry_timeout => 100}),
	{ok, http} = gun:await_up(ConnPid, ?T),
	R1 = gun:get(ConnPid, "/missing"),
	R2 = gun:get(ConnPid, "/missing"),
	Up = gun:ws_upgrade(ConnPid, "/echo"),
	{gun_response, ConnPid, R1, nofin, 404, Headers} = next(),
	ok = check_headers(Headers),
	<<"not found">> = body(ConnPid, R1),
	{gun_down, ConnPid, http, closed, [], Unprocessed} = next(),
	true = lists:sort(Unprocessed) =:= lists:sort([R2, Up]),
	{gun_up, ConnPid, http} = next(),
	_ = gun:ws_upgrade(ConnPid, "/echo"),
	{gun_ws_upgrade, ConnPid, ok, _} = next(),
	ok = gun:ws_send(ConnPid, {text, <<"after">>}),
	{gun_ws, ConnPid, {text, <<"after">>}} = next(),
	close(ConnPid).

%% Bad responses: only that connection fails, with {error, {bad_response,
%% Why}} as the stream's gun_error, the gun_down Reason and (retry => 0)
%% the exit reason.

bad_malformed(Config) ->
	bad_response(Config, "/garbage", malformed, none).

bad_head_too_large(Config) ->
	bad_response(Config, "/hugehead", head_too_large, none).

bad_too_many_headers(Config) ->
	bad_response(Config, "/manyheaders", too_many_headers, none).

bad_content_length(Config) ->
	bad_response(Config, "/badlength", bad_content_length, none).

bad_chunk(Config) ->
	bad_response(Config, "/badchunk", bad_chunk, 200).

bad_response(Config, Path, Why, Status) ->
	Other = connect(Config),
	ConnPid = connect(Config),
	MRef = monitor_conn(ConnPid),
	StreamRef = gun:get(ConnPid, Path),
	case Status of
		none -> ok;
		_ -> {nofin, _} = response(ConnPid, StreamRef, Status)
	end,
	Reason = {error, {bad_response, Why}},
	{gun_error, ConnPid, StreamRef, Reason} = next(),
	{gun_down, ConnPid, http, Reason, [StreamRef], []} = next(),
	{shutdown, Reason} = down(ConnPid, MRef),
	%% The other connection to the same server is fine.
	StreamRef2 = gun:get(Other, "/fixed"),
	{_, <<"Hello world!">>} = ok_body(Other, StreamRef2),
	close(Other).

%% Info.

info_http(Config) ->
	Port = port(Config),
	Self = self(),
	ConnPid = connect(Config),
	StreamRef = gun:get(ConnPid, "/fixed"),
	{_, _} = ok_body(ConnPid, StreamRef),
	#{sock_ip := {127, 0, 0, 1}, sock_port := SockPort, origin_host := "127.0.0.1",
		origin_port := Port, transport := tcp, protocol := http, owner := Self} = gun:info(ConnPid),
	true = is_integer(SockPort),
	close(ConnPid).

%% gun:flush/1 with an HTTP stream's StreamRef drops that stream's messages
%% only.
flush_stream_ref(Config) ->
	ConnPid = connect(Config),
	R1 = gun:get(ConnPid, "/inform"),
	R2 = gun:get(ConnPid, "/chunked?trailers=1"),
	R3 = gun:get(ConnPid, "/fixed"),
	receive {gun_data, ConnPid, R3, fin, _} -> ok after ?T -> error(timeout) end,
	{messages, Before} = process_info(self(), messages),
	[_, _, _, _|_] = [M || M <- Before, element(3, M) =:= R1],
	[_, _, _|_] = [M || M <- Before, element(3, M) =:= R2],
	ok = gun:flush(R1),
	ok = gun:flush(R2),
	{messages, After} = process_info(self(), messages),
	After = [M || M <- Before, element(3, M) =:= R3],
	[{gun_response, ConnPid, R3, nofin, 200, _}] = After,
	close(ConnPid).
