%% A scripted, possibly hostile WebSocket server for the suites, built on
%% gen_tcp in passive mode. It reads the client's HTTP upgrade request,
%% answers whatever the test scripts, writes hand-encoded frames (valid or
%% not) and reads and decodes the client's masked frames.
%%
%% Everything here runs in the calling (test case) process: the sockets
%% are passive, so the test process can both drive the peer and receive
%% the gun_* messages sent to it as the connection owner. The writers
%% (send_async/2, write_forever/3) are the exception: they write from a
%% process of their own, for a peer whose writes may block for long.
-module(raw_peer).

%% Sockets.
-export([listen/0]).
-export([accept/1]).
-export([send/2]).
-export([expect_eof/1]).
-export([expect_eof/2]).
-export([drain/2]).

%% Writers.
-export([send_async/2]).
-export([chunks_sent/1]).
-export([await_sent/2]).
-export([write_forever/3]).
-export([writer_stopped/2]).

%% HTTP.
-export([read_request/1]).
-export([parse_request/1]).
-export([header/2]).
-export([header_tokens/2]).
-export([accept_key/1]).
-export([response_101/1]).
-export([response_101/2]).
-export([headers_101/1]).

%% Frames.
-export([frame/1]).
-export([frame/2]).
-export([mask/2]).
-export([recv_frame/1]).
-export([recv_frame/2]).
-export([expect_frame/2]).
-export([expect_frame/3]).
-export([decode_frames/1]).
-export([fold_frames/4]).

%% The client's side.
-export([client_opts/1]).
-export([open_upgrade/2]).
-export([open_upgrade/4]).
-export([expect_upgrade_failure/2]).
%% Owner's mailbox, for suites written before suite_helper had it.
-export([next_msg/1]).
-export([next_msg/2]).
-export([exit_reason/2]).
-export([no_more_msgs/1]).

-define(TIMEOUT, 5000).
-define(WS_GUID, <<"258EAFA5-E914-47DA-95CA-C5AB0DC85B11">>).

%% Sockets.

-spec listen() -> {gen_tcp:socket(), inet:port_number()}.
listen() ->
	{ok, LSock} = gen_tcp:listen(0, [binary, {active, false}, {packet, raw},
		{reuseaddr, true}, {ip, {127, 0, 0, 1}}, {nodelay, true}]),
	{ok, Port} = inet:port(LSock),
	{LSock, Port}.

accept(LSock) ->
	case gen_tcp:accept(LSock, ?TIMEOUT) of
		{ok, Sock} -> Sock;
		{error, Reason} -> error({peer_accept_failed, Reason})
	end.

send(Sock, Data) ->
	case gen_tcp:send(Sock, Data) of
		ok -> ok;
		{error, Reason} -> error({peer_send_failed, Reason})
	end.

%% The client closed its side: the peer reads EOF. A reset is accepted as
%% well: closing a socket with unread bytes in its receive buffer makes
%% the kernel send RST instead of FIN, which is not the client's choice.
expect_eof(Sock) ->
	expect_eof(Sock, ?TIMEOUT).

expect_eof(Sock, Timeout) ->
	case gen_tcp:recv(Sock, 0, Timeout) of
		{error, closed} -> ok;
		{error, econnreset} -> ok;
		{ok, Data} -> error({expected_eof_got_data, Data});
		{error, timeout} -> error({expected_eof_got_timeout, Timeout})
	end.

%% Reads everything until the client closes; returns the bytes.
drain(Sock, Timeout) ->
	drain(Sock, Timeout, <<>>).

drain(Sock, Timeout, Acc) ->
	case gen_tcp:recv(Sock, 0, Timeout) of
		{ok, Data} -> drain(Sock, Timeout, <<Acc/binary, Data/binary>>);
		{error, closed} -> {closed, Acc};
		{error, econnreset} -> {closed, Acc};
		{error, timeout} -> error({drain_timeout_client_never_closed, Acc})
	end.

%% Writers.

%% Writes each chunk of Chunks with its own gen_tcp:send/2 from a new
%% (linked) process; returns {Writer, Counter}. chunks_sent(Counter) is
%% how many were written so far (a blocked writer stops counting), and
%% await_sent/2 returns the writer's last gen_tcp:send/2 result.
send_async(Sock, Chunks) ->
	Self = self(),
	Counter = counters:new(1, []),
	Writer = spawn_link(fun() ->
		Self ! {sent, self(), send_chunks(Sock, Chunks, Counter)}
	end),
	{Writer, Counter}.

send_chunks(_, [], _) ->
	ok;
send_chunks(Sock, [Chunk|Tail], Counter) ->
	case gen_tcp:send(Sock, Chunk) of
		ok ->
			counters:add(Counter, 1, 1),
			send_chunks(Sock, Tail, Counter);
		Error ->
			Error
	end.

chunks_sent(Counter) ->
	counters:get(Counter, 1).

await_sent(Writer, Timeout) ->
	receive
		{sent, Writer, Result} -> Result
	after Timeout ->
		error({writer_still_blocked, Writer, Timeout})
	end.

%% Writes Fun(1), Fun(2), ... Interval ms apart, from a new (linked)
%% process, until a write fails: the client closed the connection, or the
%% test closed the socket. writer_stopped/2 then returns {Written, Why}.
write_forever(Sock, Fun, Interval) ->
	Self = self(),
	spawn_link(fun() -> write_loop(Self, Sock, Fun, Interval, 1) end).

write_loop(Parent, Sock, Fun, Interval, N) ->
	case gen_tcp:send(Sock, Fun(N)) of
		ok ->
			receive after Interval -> ok end,
			write_loop(Parent, Sock, Fun, Interval, N + 1);
		{error, Why} ->
			Parent ! {stopped, self(), N - 1, Why}
	end.

writer_stopped(Writer, Timeout) ->
	receive
		{stopped, Writer, Written, Why} -> {Written, Why}
	after Timeout ->
		error({writer_did_not_stop, Writer, Timeout})
	end.

%% HTTP.

%% Reads the request head until "\r\n\r\n", however it is split across
%% packets. The client cannot send anything after the request before it
%% has seen the 101, so trailing bytes are an error.
read_request(Sock) ->
	read_request(Sock, <<>>).

read_request(Sock, Acc) ->
	case binary:split(Acc, <<"\r\n\r\n">>) of
		[Head, <<>>] ->
			parse_request(Head);
		[_Head, Rest] ->
			error({unexpected_bytes_after_request_head, Rest});
		[_] ->
			case gen_tcp:recv(Sock, 0, ?TIMEOUT) of
				{ok, Data} -> read_request(Sock, <<Acc/binary, Data/binary>>);
				{error, Reason} -> error({peer_request_recv_failed, Reason, Acc})
			end
	end.

%% A request head (without its final empty line) as read_request/1 returns it.
-spec parse_request(binary()) -> map().
parse_request(Head) ->
	[ReqLine|HeaderLines] = binary:split(Head, <<"\r\n">>, [global]),
	[Method, Path, Version] = binary:split(ReqLine, <<" ">>, [global]),
	Headers = [begin
		[Name, Value] = binary:split(Line, <<":">>),
		{string:lowercase(Name), string:trim(Value)}
	end || Line <- HeaderLines],
	#{method => Method, path => Path, version => Version, headers => Headers,
		raw => Head}.

%% The value of a request header, or undefined. A header sent twice is an
%% error here: none of those the tests look at may be repeated.
header(Name, #{headers := Headers}) ->
	case [V || {N, V} <- Headers, N =:= Name] of
		[] -> undefined;
		[Value] -> Value;
		Values -> error({header_repeated, Name, Values})
	end.

%% A comma-separated header as a list of lower-case tokens ([] if absent).
header_tokens(Name, #{headers := Headers}) ->
	[string:lowercase(string:trim(T))
		|| {N, V} <- Headers, N =:= Name,
		T <- binary:split(V, <<",">>, [global])].

accept_key(Key) ->
	base64:encode(crypto:hash(sha, <<Key/binary, ?WS_GUID/binary>>)).

%% A proper 101 for the request's key.
response_101(Req) ->
	response_101(Req, headers_101(Req)).

%% A 101 with the given headers (names as they go on the wire).
response_101(_Req, Headers) ->
	[<<"HTTP/1.1 101 Switching Protocols\r\n">>,
		[[N, <<": ">>, V, <<"\r\n">>] || {N, V} <- Headers],
		<<"\r\n">>].

headers_101(Req) ->
	Key = header(<<"sec-websocket-key">>, Req),
	[{<<"Upgrade">>, <<"websocket">>},
		{<<"Connection">>, <<"Upgrade">>},
		{<<"Sec-WebSocket-Accept">>, accept_key(Key)}].

%% Frames.

frame(Opcode, Payload) ->
	frame(#{opcode => Opcode, payload => Payload}).

%% Encodes a server frame; every field can be set to anything:
%%   fin (default true), rsv (3-bit integer, default 0), opcode,
%%   payload (iodata, default <<>>), len (declared length, default the
%%   payload's), len_form (auto | 7 | 16 | 64, default auto = shortest),
%%   mask (undefined or a 4-byte key: sets the mask bit and masks).
frame(M) ->
	Fin = case maps:get(fin, M, true) of true -> 1; false -> 0 end,
	Rsv = maps:get(rsv, M, 0),
	Opcode = maps:get(opcode, M),
	Payload = iolist_to_binary(maps:get(payload, M, <<>>)),
	Len = maps:get(len, M, byte_size(Payload)),
	LenBits = case maps:get(len_form, M, auto) of
		auto when Len =< 125 -> <<Len:7>>;
		auto when Len =< 16#ffff -> <<126:7, Len:16>>;
		auto -> <<127:7, Len:64>>;
		7 -> <<Len:7>>;
		16 -> <<126:7, Len:16>>;
		64 -> <<127:7, Len:64>>
	end,
	case maps:get(mask, M, undefined) of
		undefined ->
			<<Fin:1, Rsv:3, Opcode:4, 0:1, LenBits/bits, Payload/binary>>;
		Key = <<_:32>> ->
			Masked = mask(Payload, Key),
			<<Fin:1, Rsv:3, Opcode:4, 1:1, LenBits/bits, Key/binary, Masked/binary>>
	end.

%% Masking and unmasking are the same XOR.
mask(Data, <<Key:32>>) ->
	mask(Data, Key, <<>>).

mask(<<D:32, Rest/binary>>, Key, Acc) ->
	mask(Rest, Key, <<Acc/binary, (D bxor Key):32>>);
mask(<<D:24>>, Key, Acc) ->
	<<Acc/binary, (D bxor (Key bsr 8)):24>>;
mask(<<D:16>>, Key, Acc) ->
	<<Acc/binary, (D bxor (Key bsr 16)):16>>;
mask(<<D:8>>, Key, Acc) ->
	<<Acc/binary, (D bxor (Key bsr 24)):8>>;
mask(<<>>, _, Acc) ->
	Acc.

%% Reads one client frame from the socket and decodes it (unmasking the
%% payload if the mask bit is set; the caller asserts it is).
recv_frame(Sock) ->
	recv_frame(Sock, ?TIMEOUT).

recv_frame(Sock, Timeout) ->
	<<Fin:1, Rsv:3, Opcode:4, MaskBit:1, Len7:7>> = recv_exact(Sock, 2, Timeout),
	{Len, Form} = case Len7 of
		126 -> <<L:16>> = recv_exact(Sock, 2, Timeout), {L, 16};
		127 -> <<L:64>> = recv_exact(Sock, 8, Timeout), {L, 64};
		_ -> {Len7, 7}
	end,
	Key = case MaskBit of
		1 -> recv_exact(Sock, 4, Timeout);
		0 -> undefined
	end,
	Raw = recv_exact(Sock, Len, Timeout),
	Payload = case Key of
		undefined -> Raw;
		_ -> mask(Raw, Key)
	end,
	#{fin => Fin =:= 1, rsv => Rsv, opcode => Opcode, masked => MaskBit =:= 1,
		mask_key => Key, len => Len, len_form => Form, payload => Payload}.

recv_exact(_, 0, _) ->
	<<>>;
recv_exact(Sock, N, Timeout) ->
	case gen_tcp:recv(Sock, N, Timeout) of
		{ok, Data} -> Data;
		{error, Reason} -> error({peer_recv_failed, Reason, {expecting_bytes, N}})
	end.

%% Reads one client frame and asserts: masked, fin, no RSV bit, the
%% opcode, and a length in its shortest form. Returns the payload.
expect_frame(Sock, Opcode) ->
	expect_frame(Sock, Opcode, ?TIMEOUT).

expect_frame(Sock, Opcode, Timeout) ->
	Frame = recv_frame(Sock, Timeout),
	case Frame of
		#{masked := true, fin := true, rsv := 0, opcode := Opcode,
				len := Len, len_form := Form, payload := Payload} ->
			case shortest_form(Len) of
				Form -> Payload;
				Shortest -> error({client_frame_length_not_shortest, Form, Shortest, Frame})
			end;
		_ ->
			error({unexpected_client_frame, {expected_opcode, Opcode}, Frame})
	end.

shortest_form(Len) when Len =< 125 -> 7;
shortest_form(Len) when Len =< 16#ffff -> 16;
shortest_form(_) -> 64.

%% Decodes a buffer of complete client frames; {Frames, Rest}.
decode_frames(Bin) ->
	decode_frames(Bin, []).

decode_frames(Bin = <<Fin:1, Rsv:3, Opcode:4, MaskBit:1, Len7:7, R0/binary>>, Acc) ->
	Parsed = case {Len7, R0} of
		{126, <<L:16, R1/binary>>} -> {L, R1};
		{127, <<L:64, R1/binary>>} -> {L, R1};
		{126, _} -> more;
		{127, _} -> more;
		_ -> {Len7, R0}
	end,
	case Parsed of
		more ->
			{lists:reverse(Acc), Bin};
		{Len, R2} ->
			KeyLen = 4 * MaskBit,
			case R2 of
				<<Key:KeyLen/binary, Raw:Len/binary, Rest/binary>> ->
					Payload = case MaskBit of
						1 -> mask(Raw, Key);
						0 -> Raw
					end,
					F = #{fin => Fin =:= 1, rsv => Rsv, opcode => Opcode,
						masked => MaskBit =:= 1, payload => Payload},
					decode_frames(Rest, [F|Acc]);
				_ ->
					{lists:reverse(Acc), Bin}
			end
	end;
decode_frames(Bin, Acc) ->
	{lists:reverse(Acc), Bin}.

%% Reads client frames as they come and folds Fun(Frame, Acc) -> {more,
%% Acc} | {done, Acc} over them (frames as decode_frames/1 makes them),
%% for a stream of frames too long to hold. Returns {Acc, FramesLeft,
%% BytesLeft}: what was read after the frame that returned done.
fold_frames(Sock, Fun, Acc, Timeout) ->
	fold_frames(Sock, Fun, Acc, Timeout, <<>>).

fold_frames(Sock, Fun, Acc0, Timeout, Buf) ->
	Data = case gen_tcp:recv(Sock, 0, Timeout) of
		{ok, D} -> D;
		{error, Reason} -> error({peer_recv_failed, Reason, {folded_so_far, Acc0}})
	end,
	{Frames, Rest} = decode_frames(<<Buf/binary, Data/binary>>),
	case fold_while(Fun, Acc0, Frames) of
		{done, Acc, Left} -> {Acc, Left, Rest};
		{more, Acc} -> fold_frames(Sock, Fun, Acc, Timeout, Rest)
	end.

fold_while(_, Acc, []) ->
	{more, Acc};
fold_while(Fun, Acc0, [Frame|Tail]) ->
	case Fun(Frame, Acc0) of
		{more, Acc} -> fold_while(Fun, Acc, Tail);
		{done, Acc} -> {done, Acc, Tail}
	end.

%% The client's side (the owner's mailbox is suite_helper's).

%% The client's options against a peer: retry => 0 (a loss ends ConnPid)
%% and keepalive => infinity (no client ping comes between the frames a
%% test reads), unless Opts says otherwise.
-spec client_opts(map()) -> map().
client_opts(Opts) ->
	WsOpts = maps:merge(#{keepalive => infinity}, maps:get(ws_opts, Opts, #{})),
	maps:merge(#{retry => 0}, Opts#{ws_opts => WsOpts}).

%% gun:open/3 (client_opts/1) on a new listener and Upgrade(ConnPid), the
%% upgrade's StreamRef, at once (before the connection is up); the peer
%% accepts and reads the request, and the owner's first message is
%% gun_up. Returns what the suites pass around:
%% #{lsock, port, conn, mref (monitors ConnPid), ref, sock, req}.
-spec open_upgrade(map(), fun((pid()) -> reference())) -> map().
open_upgrade(Opts, Upgrade) ->
	{LSock, Port} = listen(),
	open_upgrade(LSock, Port, Opts, Upgrade).

-spec open_upgrade(gen_tcp:socket(), inet:port_number(), map(), fun((pid()) -> reference())) -> map().
open_upgrade(LSock, Port, Opts, Upgrade) ->
	{ok, ConnPid} = gun:open("127.0.0.1", Port, client_opts(Opts)),
	MRef = suite_helper:monitor_conn(ConnPid),
	StreamRef = Upgrade(ConnPid),
	true = is_reference(StreamRef),
	Sock = accept(LSock),
	Req = read_request(Sock),
	{gun_up, ConnPid, http} = suite_helper:next_from(ConnPid),
	#{lsock => LSock, port => Port, conn => ConnPid, mref => MRef,
		ref => StreamRef, sock => Sock, req => Req}.

%% A 101 refused by the client: gun_error and gun_down with
%% {error, {ws_upgrade, Why}}, ConnPid exits with it, the socket is closed.
expect_upgrade_failure(#{conn := ConnPid, mref := MRef, ref := StreamRef, sock := Sock}, Why) ->
	Reason = {error, {ws_upgrade, Why}},
	{gun_error, ConnPid, StreamRef, Reason} = suite_helper:next_from(ConnPid),
	{gun_down, ConnPid, http, Reason, [StreamRef], []} = suite_helper:next_from(ConnPid),
	{shutdown, Reason} = suite_helper:down(ConnPid, MRef),
	expect_eof(Sock),
	suite_helper:no_more_from(ConnPid).

%% Owner's mailbox: suite_helper's functions under the names suites
%% written before them call.

-spec next_msg(pid()) -> tuple().
next_msg(ConnPid) ->
	suite_helper:next_from(ConnPid, ?TIMEOUT).

-spec next_msg(pid(), timeout()) -> tuple().
next_msg(ConnPid, Timeout) ->
	suite_helper:next_from(ConnPid, Timeout).

-spec exit_reason(reference(), pid()) -> term().
exit_reason(MRef, ConnPid) ->
	suite_helper:down(ConnPid, MRef).

-spec no_more_msgs(pid()) -> ok.
no_more_msgs(ConnPid) ->
	suite_helper:no_more_from(ConnPid).
