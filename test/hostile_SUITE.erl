%% The client against hostile servers (issue 7): scripted raw TCP peers
%% (raw_peer) that trickle or withhold the 101, send endless heads,
%% garbage after the 101, frames claiming huge lengths and then stalling,
%% floods of tiny frames and of pings, control frames inside fragmented
%% messages, invalid close payloads; the limits that bound what a server
%% can make us hold (max_frame_size, max_message_size, max_fragments,
%% max_headers, max_head_size, owner_queue_limit, upgrade_timeout); a
%% panic in a connection's task; and a storm of random bytes.
%%
%% Each case asserts the exact messages the owner gets, what the peer
%% reads where it matters (the close code), and ends with a leak check:
%% gun_nif:resources(), the VM's file descriptors and process count back
%% to their values when the case started, erlang:memory(total) back
%% within 8 MB (all polled for up to 5 s, not slept for).
%%
%% Terms: ../shared/spec/contract.md, doc/behaviour.md.
%%
%% Run: rebar3 ct --suite test/hostile_SUITE
-module(hostile_SUITE).
-compile([export_all, nowarn_export_all]).

-include_lib("common_test/include/ct.hrl").
-include("suite_helper.hrl").

-import(suite_helper, [
	monitor_conn/1, next_from/1, next_from/2, down/2, no_more_from/1, flush_mailbox/0,
	settle/3, fd_count/0, proc_count/0, now_ms/0, ms_since/1
]).

-define(MiB, 1048576).
-define(MEM_SLACK, (8 * ?MiB)).

suite() ->
	[{timetrap, {seconds, 60}}].

all() ->
	cases() ++ [{group, mode2}].

%% The cases that run in mode 2 as well (through mode.erl): all but those
%% that look at terms only mode 1 has.
groups() ->
	mode:groups(cases(), mode1_only()).

%% Mode 1's terms: the reasons of upgrade timeouts, head limits and
%% close codes (mode 2 has Gun 2's {closed, _} and
%% {connection_error, Kind, Text}), and owners and floods matched with
%% mode 1's raw message patterns.
mode1_only() ->
	[slowloris_upgrade_timeout, slowloris_open_ws_opts, silent_server, endless_headers,
		endless_header_line, max_headers_option, max_head_size_option, tiny_frames_flood,
		tiny_frames_flow, owner_queue_full, close_invalid_codes].

init_per_group(mode2, Config) ->
	ok = mode:set(2),
	Config.

end_per_group(mode2, _) ->
	mode:unset().

cases() ->
	[
		%% The upgrade.
		slowloris_upgrade_timeout,
		slowloris_open_ws_opts,
		silent_server,
		endless_headers,
		endless_header_line,
		max_headers_option,
		max_head_size_option,
		garbage_in_101_packet,
		http_after_101,
		%% Length claims.
		length_2_63_minus_1,
		length_msb_set,
		claim_60_mib_then_stall,
		%% Limits.
		max_frame_size,
		max_message_size,
		default_max_message_size,
		max_fragments,
		default_max_fragments,
		%% Floods.
		tiny_frames_flood,
		tiny_frames_flow,
		owner_queue_full,
		ping_flood,
		%% Control frames.
		interleaved_control_frames,
		interleaved_control_frames_silenced,
		close_1_byte,
		close_invalid_codes,
		close_reason_bad_utf8,
		control_frame_too_long,
		%% Faults.
		panic_fails_one_connection,
		garbage_storm
	].

init_per_suite(Config) ->
	{ok, _} = application:ensure_all_started(gun),
	%% Warm-up: the engine's runtime starts its threads (and opens its
	%% descriptors) on first use; the baselines come after.
	St = connect(#{}, #{}),
	close_conn(St),
	Config.

end_per_suite(_) ->
	ok.

%% Each case starts with an empty mailbox and takes its own baseline.
init_per_testcase(_, Config) ->
	flush_mailbox(),
	garbage_collect(),
	Baseline = #{resources => gun_nif:resources(), fds => fd_count(),
		procs => proc_count(), memory => erlang:memory(total)},
	[{baseline, Baseline}|Config].

end_per_testcase(_, _) ->
	ok.

%% Helpers: connections.

%% gun:open/3 (raw_peer:client_opts/1) and an upgrade (gun:ws_upgrade/4
%% with WsOpts, or /2 for undefined); the peer accepts and reads the request.
open_upgrade(Opts, WsOpts) ->
	raw_peer:open_upgrade(Opts, fun(ConnPid) -> ws_upgrade(ConnPid, WsOpts) end).

ws_upgrade(ConnPid, undefined) ->
	gun:ws_upgrade(ConnPid, "/");
ws_upgrade(ConnPid, WsOpts) ->
	gun:ws_upgrade(ConnPid, "/", [], WsOpts).

connect(Opts, WsOpts) ->
	connect(Opts, WsOpts, <<>>).

%% Extra: bytes sent in the same gen_tcp:send/2 as the 101.
connect(Opts, WsOpts, Extra) ->
	St = #{conn := ConnPid, sock := Sock, req := Req} = open_upgrade(Opts, WsOpts),
	raw_peer:send(Sock, [raw_peer:response_101(Req), Extra]),
	?NEXT(ConnPid, {gun_ws_upgrade, ConnPid, ok, _}),
	St.

%% The peer's sockets are closed (they count as file descriptors).
finish(#{lsock := LSock, sock := Sock}) ->
	ok = gen_tcp:close(Sock),
	ok = gen_tcp:close(LSock).

%% gun:close/1: ConnPid exits normal, nothing more is sent to the owner.
close_conn(St = #{conn := ConnPid, mref := MRef}) ->
	ok = gun:close(ConnPid),
	normal = down(ConnPid, MRef),
	no_more_from(ConnPid),
	finish(St).

%% Before the upgrade: gun_error for the upgrade's stream, gun_down http
%% with it killed, ConnPid exits {shutdown, Reason}, the socket is closed.
expect_http_failure(St = #{conn := ConnPid, mref := MRef, ref := StreamRef, sock := Sock}, Reason) ->
	?NEXT(ConnPid, {gun_error, ConnPid, StreamRef, Reason}),
	?NEXT(ConnPid, {gun_down, ConnPid, http, Reason, [StreamRef], []}),
	{shutdown, Reason} = down(ConnPid, MRef),
	raw_peer:expect_eof(Sock),
	no_more_from(ConnPid),
	finish(St).

%% The server broke the protocol: the peer reads the client's close with
%% Code and, like a server, closes TCP at once (the client does not wait
%% out its linger); the owner gets gun_error then gun_down {error, Why},
%% and ConnPid exits {shutdown, {error, Why}}.
expect_error_close(St = #{sock := Sock}, Code, Why) ->
	expect_close(Sock, Code, 5000),
	ok = gen_tcp:close(Sock),
	expect_error_down(St, Why, 5000),
	finish(St).

%% The same with a peer that keeps TCP open: the client closes its socket
%% after its linger (up to 1 s) and only then tells the owner.
expect_error_stall(St = #{sock := Sock}, Code, Why, CloseWithin) ->
	expect_close(Sock, Code, CloseWithin),
	expect_error_down(St, Why, 3000),
	raw_peer:expect_eof(Sock),
	finish(St).

expect_close(Sock, Code, Timeout) ->
	case raw_peer:expect_frame(Sock, 8, Timeout) of
		<<Code:16, _/binary>> -> ok;
		Payload -> ct:fail({client_close_payload, {expected_code, Code}, Payload})
	end.

expect_error_down(#{conn := ConnPid, mref := MRef, ref := StreamRef}, Why, Timeout) ->
	?NEXT(ConnPid, Timeout, {gun_error, ConnPid, StreamRef, {error, Why}}),
	?NEXT(ConnPid, {gun_down, ConnPid, ws, {error, Why}, [StreamRef], []}),
	{shutdown, {error, Why}} = down(ConnPid, MRef),
	no_more_from(ConnPid).

%% A fresh connection that gets Bytes after its 101 and must fail with
%% Code and {error, Why}.
fails_with(Bytes, Code, Why) ->
	St = #{sock := Sock} = connect(#{}, #{}),
	raw_peer:send(Sock, Bytes),
	expect_error_close(St, Code, Why).

%% Helpers: frames.

frag(Opcode, Fin, Payload) ->
	raw_peer:frame(#{opcode => Opcode, fin => Fin, payload => Payload}).

%% A message in fragments: the first with Opcode, then continuations.
fragments(Opcode, [Last]) ->
	[frag(Opcode, true, Last)];
fragments(Opcode, [First|Tail]) ->
	[frag(Opcode, false, First)|continuations(Tail)].

continuations([Last]) ->
	[frag(0, true, Last)];
continuations([P|Tail]) ->
	[frag(0, false, P)|continuations(Tail)].

%% A frame header alone, claiming Len bytes.
header(Opcode, Fin, Len) ->
	raw_peer:frame(#{opcode => Opcode, fin => Fin, len => Len}).

pattern(N) ->
	<< <<(I rem 251)>> || I <- lists:seq(1, N) >>.

%% Helpers: resources.

%% From /proc/self/status, in bytes: the resident set (native allocations
%% included, which erlang:memory/1 does not see) and the virtual size
%% (which a reserved but untouched allocation grows).
proc_status(Field) ->
	{ok, Status} = file:read_file("/proc/self/status"),
	[_, Rest] = binary:split(Status, Field),
	[Kb|_] = string:lexemes(Rest, " \t\n"),
	binary_to_integer(Kb) * 1024.

mem() ->
	#{beam => erlang:memory(total), rss => proc_status(<<"VmRSS:">>),
		vsz => proc_status(<<"VmSize:">>)}.

max_mem(M1, M2) ->
	maps:merge_with(fun(_, V1, V2) -> max(V1, V2) end, M1, M2).

%% The VM's memory figures grew by less than 8 MB since Mem0 (32 MB for
%% the virtual size, which a new thread's malloc arena alone may grow by
%% more than 8 MB, but not by a 60 MiB reservation).
mem_within(Mem0, Mem) ->
	Growth = maps:map(fun(K, V) -> V - maps:get(K, Mem0) end, Mem),
	Limits = #{beam => ?MEM_SLACK, rss => ?MEM_SLACK, vsz => 32 * ?MiB},
	ct:log("memory growth (bytes): ~p", [Growth]),
	case maps:filter(fun(K, G) -> G >= maps:get(K, Limits) end, Growth) of
		Over when map_size(Over) =:= 0 -> ok;
		Over -> ct:fail({memory_grew, Over, {limits, Limits}})
	end.

%% Nothing left behind: the engine's connections and tasks, the VM's file
%% descriptors and processes back to (at most) their baseline, memory
%% back within ?MEM_SLACK of it.
no_leak(Config) ->
	#{resources := #{connections := Conns0, tasks := Tasks0}, fds := Fds0,
		procs := Procs0, memory := Mem0} = ?config(baseline, Config),
	settle(resources, fun gun_nif:resources/0,
		fun(#{connections := C, tasks := T}) -> C =< Conns0 andalso T =< Tasks0 end),
	settle(fds, fun suite_helper:fd_count/0, Fds0),
	settle(procs, fun suite_helper:proc_count/0, Procs0),
	settle(memory, fun() -> garbage_collect(), erlang:memory(total) end,
		fun(M) -> M < Mem0 + ?MEM_SLACK end),
	ct:log("back to baseline: resources ~p, fds ~p, processes ~p, memory ~p (baseline ~p)",
		[gun_nif:resources(), fd_count(), proc_count(), erlang:memory(total), Mem0]).

%% The upgrade.

%% A 101 head trickled one byte every 50 ms never completes: the upgrade
%% ends at upgrade_timeout although bytes keep coming (a deadline, not an
%% idle timer).
slowloris_upgrade_timeout(Config) ->
	slowloris(#{}, #{upgrade_timeout => 500}),
	no_leak(Config).

%% The same with upgrade_timeout among gun:open/3's ws_opts and
%% gun:ws_upgrade/2: the connection's default ws_opts bound it too.
slowloris_open_ws_opts(Config) ->
	slowloris(#{ws_opts => #{upgrade_timeout => 500}}, undefined),
	no_leak(Config).

slowloris(Opts, WsOpts) ->
	T0 = now_ms(),
	St = #{sock := Sock} = open_upgrade(Opts, WsOpts),
	Head = <<"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nx-slow: ">>,
	Writer = raw_peer:write_forever(Sock, fun(N) -> trickled_byte(Head, N) end, 50),
	expect_http_failure(St, {error, upgrade_timeout}),
	Elapsed = ms_since(T0),
	{Written, Why} = raw_peer:writer_stopped(Writer, 5000),
	ct:log("upgrade_timeout after ~b ms, ~b bytes trickled (writer stopped: ~p)",
		[Elapsed, Written, Why]),
	true = Elapsed >= 500,
	true = Elapsed < 5000,
	true = Written >= 3.

trickled_byte(Head, N) when N =< byte_size(Head) ->
	binary:part(Head, N - 1, 1);
trickled_byte(_, _) ->
	<<"a">>.

%% A server that reads the request and never answers: upgrade_timeout.
silent_server(Config) ->
	T0 = now_ms(),
	St = open_upgrade(#{}, #{upgrade_timeout => 300}),
	expect_http_failure(St, {error, upgrade_timeout}),
	Elapsed = ms_since(T0),
	ct:log("upgrade_timeout after ~b ms", [Elapsed]),
	true = Elapsed >= 300,
	no_leak(Config).

%% A 101 line then header lines forever: the default max_headers (100)
%% ends it with {bad_response, too_many_headers}.
endless_headers(Config) ->
	St = #{sock := Sock} = open_upgrade(#{}, #{}),
	Writer = raw_peer:write_forever(Sock, fun header_lines/1, 0),
	expect_http_failure(St, {error, {bad_response, too_many_headers}}),
	{Written, _} = raw_peer:writer_stopped(Writer, 5000),
	ct:log("~b chunks of 20 header lines written", [Written - 1]),
	no_leak(Config).

header_lines(1) ->
	<<"HTTP/1.1 101 Switching Protocols\r\n">>;
header_lines(N) ->
	[[<<"x-h">>, integer_to_binary(N), $-, integer_to_binary(I), <<": v\r\n">>]
		|| I <- lists:seq(1, 20)].

%% A 101 line then one header line that never ends: the default
%% max_head_size (64 KiB) ends it with {bad_response, head_too_large}.
endless_header_line(Config) ->
	St = #{sock := Sock} = open_upgrade(#{}, #{}),
	Writer = raw_peer:write_forever(Sock, fun endless_line/1, 0),
	expect_http_failure(St, {error, {bad_response, head_too_large}}),
	{Written, _} = raw_peer:writer_stopped(Writer, 5000),
	ct:log("~b chunks of 4 KiB written", [Written - 1]),
	no_leak(Config).

endless_line(1) ->
	<<"HTTP/1.1 101 Switching Protocols\r\nx-long: ">>;
endless_line(_) ->
	binary:copy(<<"a">>, 4096).

%% http_opts max_headers => 5: a 101 with 5 headers is an upgrade, with 6
%% it is {bad_response, too_many_headers}.
max_headers_option(Config) ->
	Opts = #{http_opts => #{max_headers => 5}},
	Extra = [{<<"x-a">>, <<"1">>}, {<<"x-b">>, <<"2">>}, {<<"x-c">>, <<"3">>}],
	upgraded_with(Opts, fun(_, Hs) -> Hs ++ lists:sublist(Extra, 2) end),
	refused_with(Opts, fun(_, Hs) -> Hs ++ Extra end, {error, {bad_response, too_many_headers}}),
	no_leak(Config).

%% http_opts max_head_size => 1024: a 101 head of 1024 bytes (status line
%% to blank line) is an upgrade, of 1025 {bad_response, head_too_large};
%% a frame follows in the same packet both times.
max_head_size_option(Config) ->
	Opts = #{http_opts => #{max_head_size => 1024}},
	upgraded_with(Opts, fun(Req, Hs) -> pad_head(Req, Hs, 1024) end),
	refused_with(Opts, fun(Req, Hs) -> pad_head(Req, Hs, 1025) end,
		{error, {bad_response, head_too_large}}),
	no_leak(Config).

%% Adds an x-pad header that makes the head Size bytes.
pad_head(Req, Hs, Size) ->
	Base = iolist_size(raw_peer:response_101(Req, Hs)),
	Padded = Hs ++ [{<<"x-pad">>, binary:copy(<<"p">>, Size - Base - byte_size(<<"x-pad: \r\n">>))}],
	Size = iolist_size(raw_peer:response_101(Req, Padded)),
	Padded.

upgraded_with(Opts, HeadersFun) ->
	St = #{conn := ConnPid, sock := Sock, req := Req} = open_upgrade(Opts, #{}),
	raw_peer:send(Sock, [raw_peer:response_101(Req, HeadersFun(Req, raw_peer:headers_101(Req))),
		raw_peer:frame(1, <<"in">>)]),
	?NEXT(ConnPid, {gun_ws_upgrade, ConnPid, ok, _}),
	?NEXT(ConnPid, {gun_ws, ConnPid, {text, <<"in">>}}),
	close_conn(St).

refused_with(Opts, HeadersFun, Reason) ->
	St = #{sock := Sock, req := Req} = open_upgrade(Opts, #{}),
	raw_peer:send(Sock, [raw_peer:response_101(Req, HeadersFun(Req, raw_peer:headers_101(Req))),
		raw_peer:frame(1, <<"in">>)]),
	expect_http_failure(St, Reason).

%% Bytes that cannot start a frame (0xFF: RSV bits set) right behind the
%% 101, in its packet: close 1002, {error, badframe}.
garbage_in_101_packet(Config) ->
	St = connect(#{}, #{}, binary:copy(<<255>>, 16)),
	expect_error_close(St, 1002, badframe),
	no_leak(Config).

%% An HTTP response after the 101 ('H' is FIN 0, RSV1 set): close 1002,
%% {error, badframe}; nothing is delivered.
http_after_101(Config) ->
	St = #{sock := Sock} = connect(#{}, #{}),
	raw_peer:send(Sock, <<"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n">>),
	expect_error_close(St, 1002, badframe),
	no_leak(Config).

%% Length claims.

%% A binary frame header claiming 2^63-1 bytes is refused from the header
%% alone (over the 64 MiB default max_message_size): the peer reads close
%% 1009 within a second although it then stalls with TCP open, the owner
%% gets {error, badsize}, and no memory is taken for the claim.
length_2_63_minus_1(Config) ->
	St = #{sock := Sock} = connect(#{}, #{}),
	Header = header(2, true, (1 bsl 63) - 1),
	<<16#82, 127, 16#7fffffffffffffff:64>> = Header,
	Mem0 = mem(),
	raw_peer:send(Sock, Header),
	expect_error_stall(St, 1009, badsize, 1000),
	mem_within(Mem0, mem()),
	no_leak(Config).

%% A 64-bit length with its most significant bit set is not a length
%% (RFC 6455 5.2): close 1002, {error, badframe}.
length_msb_set(Config) ->
	Header = header(2, true, 1 bsl 63),
	<<16#82, 127, 1:1, 0:63>> = Header,
	fails_with(Header, 1002, badframe),
	no_leak(Config).

%% A header claiming 60 MiB (under the default limit) and 64 KiB of it,
%% then silence: nothing is delivered, the 60 MiB is not allocated up
%% front (BEAM memory and RSS grow by less than 8 MB, the virtual size by
%% less than 32 MB), and keepalive => 200 with keepalive_tolerance => 2
%% ends it: the peer gets pings then close 1001, the owner
%% {error, keepalive_timeout}.
claim_60_mib_then_stall(Config) ->
	St = #{conn := ConnPid, mref := MRef, ref := StreamRef, sock := Sock} =
		connect(#{}, #{keepalive => 200, keepalive_tolerance => 2}),
	garbage_collect(),
	Mem0 = mem(),
	raw_peer:send(Sock, [header(2, true, 60 * ?MiB), binary:copy(<<"z">>, 65536)]),
	{First, MaxMem} = sample_mem_until_message(ConnPid, Mem0, 5000),
	{gun_error, ConnPid, StreamRef, {error, keepalive_timeout}} = First,
	?NEXT(ConnPid, {gun_down, ConnPid, ws, {error, keepalive_timeout}, [StreamRef], []}),
	{shutdown, {error, keepalive_timeout}} = down(ConnPid, MRef),
	no_more_from(ConnPid),
	mem_within(Mem0, MaxMem),
	{closed, Written} = raw_peer:drain(Sock, 5000),
	{Frames, <<>>} = raw_peer:decode_frames(Written),
	ct:log("the client wrote: ~p", [Frames]),
	[#{opcode := 8, payload := <<1001:16, _/binary>>, masked := true}|Pings] = lists:reverse(Frames),
	[_|_] = Pings,
	[#{opcode := 9, payload := <<>>, masked := true} = P || P <- Pings],
	finish(St),
	no_leak(Config).

%% Samples the memory figures every 20 ms until a message from ConnPid
%% arrives; returns it and the highest figures seen.
sample_mem_until_message(ConnPid, Max, Timeout) when Timeout > 0 ->
	receive
		Msg when element(2, Msg) =:= ConnPid ->
			{Msg, max_mem(Max, mem())}
	after 20 ->
		sample_mem_until_message(ConnPid, max_mem(Max, mem()), Timeout - 20)
	end;
sample_mem_until_message(ConnPid, Max, _) ->
	ct:fail({no_message_from, ConnPid, {memory, Max}}).

%% Limits.

%% max_frame_size => 1000 bounds each frame, not the message: 1000 bytes
%% in one frame, and 2000 in two such frames, are delivered; a header
%% claiming 1001 is refused from the header alone: 1009, {error, badsize}.
max_frame_size(Config) ->
	St = #{conn := ConnPid, sock := Sock} = connect(#{}, #{max_frame_size => 1000}),
	P = pattern(1000),
	raw_peer:send(Sock, raw_peer:frame(2, P)),
	?NEXT(ConnPid, {gun_ws, ConnPid, {binary, P}}),
	raw_peer:send(Sock, fragments(2, [P, P])),
	P2 = <<P/binary, P/binary>>,
	?NEXT(ConnPid, {gun_ws, ConnPid, {binary, P2}}),
	Header = header(2, true, 1001),
	<<16#82, 126, 1001:16>> = Header,
	raw_peer:send(Sock, Header),
	expect_error_close(St, 1009, badsize),
	no_leak(Config).

%% max_message_size => 1000 counts a message's bytes across its fragments:
%% 1000 in one frame or in three is delivered; 400 + 400 and a header for
%% 201 more is refused from that header: 1009, {error, badsize}.
max_message_size(Config) ->
	St = #{conn := ConnPid, sock := Sock} = connect(#{}, #{max_message_size => 1000}),
	P = <<P1:400/binary, P2:400/binary, P3/binary>> = pattern(1000),
	raw_peer:send(Sock, raw_peer:frame(2, P)),
	?NEXT(ConnPid, {gun_ws, ConnPid, {binary, P}}),
	raw_peer:send(Sock, fragments(2, [P1, P2, P3])),
	?NEXT(ConnPid, {gun_ws, ConnPid, {binary, P}}),
	raw_peer:send(Sock, [frag(2, false, P1), frag(0, false, P2), header(0, true, 201)]),
	expect_error_close(St, 1009, badsize),
	no_leak(Config).

%% The default max_message_size is 64 MiB: after a 1-byte first fragment,
%% a continuation header claiming 64 MiB is refused at once.
default_max_message_size(Config) ->
	fails_with([frag(2, false, <<"x">>), header(0, true, 64 * ?MiB)], 1009, badsize),
	no_leak(Config).

%% max_fragments => 4: four frames (with a ping and a pong among them,
%% which do not count) make a message; a fifth frame is refused: 1009.
max_fragments(Config) ->
	St = #{conn := ConnPid, sock := Sock} = connect(#{}, #{max_fragments => 4}),
	raw_peer:send(Sock, [frag(1, false, <<"a">>), raw_peer:frame(9, <<"p">>),
		frag(0, false, <<"b">>), raw_peer:frame(10, <<"q">>),
		frag(0, false, <<"c">>), frag(0, true, <<"d">>)]),
	<<"p">> = raw_peer:expect_frame(Sock, 10),
	?NEXT(ConnPid, {gun_ws, ConnPid, {text, <<"abcd">>}}),
	raw_peer:send(Sock, fragments(1, [<<"a">>, <<"b">>, <<"c">>, <<"d">>, <<"e">>])),
	expect_error_close(St, 1009, badsize),
	no_leak(Config).

%% The default max_fragments is 2^20: a message in 2^20 one-byte frames
%% is delivered whole; one in 2^20 + 1 frames is refused: 1009.
default_max_fragments(Config) ->
	N = 1 bsl 20,
	St = #{conn := ConnPid, sock := Sock} = connect(#{}, #{}),
	raw_peer:send(Sock, one_byte_fragments(N)),
	Expected = << <<(I rem 256)>> || I <- lists:seq(1, N) >>,
	?NEXT(ConnPid, {gun_ws, ConnPid, {binary, Expected}}),
	raw_peer:send(Sock, one_byte_fragments(N + 1)),
	expect_error_close(St, 1009, badsize),
	no_leak(Config).

%% A binary message in N frames of one byte each (I rem 256 for frame I).
one_byte_fragments(N) ->
	<<16#02, 1, 1, (<< <<16#00, 1, (I rem 256)>> || I <- lists:seq(2, N - 1) >>)/binary,
		16#80, 1, (N rem 256)>>.

%% Floods.

-define(FLOOD, 200000).

%% 200,000 one-byte text messages written in one go: all delivered, in
%% order, and no more.
tiny_frames_flood(Config) ->
	St = #{conn := ConnPid, sock := Sock} = connect(#{}, #{}),
	T0 = now_ms(),
	raw_peer:send(Sock, tiny_frames(1, ?FLOOD)),
	ok = expect_tiny(ConnPid, 1, ?FLOOD),
	ct:log("~b messages in ~b ms", [?FLOOD, ms_since(T0)]),
	no_more_from(ConnPid),
	close_conn(St),
	no_leak(Config).

%% Message I is the text <<$a + (I - 1) rem 26>>.
tiny_frames(From, To) ->
	<< <<16#81, 1, (letter(I))>> || I <- lists:seq(From, To) >>.

letter(I) ->
	$a + (I - 1) rem 26.

expect_tiny(_, I, To) when I > To ->
	ok;
expect_tiny(ConnPid, I, To) ->
	L = letter(I),
	receive
		{gun_ws, ConnPid, {text, <<L>>}} -> expect_tiny(ConnPid, I + 1, To);
		Msg when element(2, Msg) =:= ConnPid -> ct:fail({unexpected_message, {expected, I, <<L>>}, Msg})
	after 5000 ->
		ct:fail({timeout, {expected, I, <<L>>}})
	end.

-define(FLOW_FLOOD, (10 * ?FLOOD)).

%% The same flood, ten times longer (6 MB in 200 writes, from a peer
%% socket with a 16 KiB send buffer: far more than the kernel's buffers
%% take), with flow => 10 and an owner that takes its time: exactly 10
%% messages are delivered, the engine stops reading and the peer's writes
%% block; gun:update_flow/3 lets the rest through, in order, and the
%% writes complete.
tiny_frames_flow(Config) ->
	St = #{conn := ConnPid, ref := StreamRef, sock := Sock} = connect(#{}, #{flow => 10}),
	ok = inet:setopts(Sock, [{sndbuf, 16384}]),
	Chunks = [tiny_frames(I, I + 9999) || I <- lists:seq(1, ?FLOW_FLOOD, 10000)],
	{Writer, Counter} = raw_peer:send_async(Sock, Chunks),
	ok = expect_tiny(ConnPid, 1, 10),
	receive after 500 -> ok end,
	no_more_from(ConnPid),
	Stalled = raw_peer:chunks_sent(Counter),
	ct:log("~b of ~b writes done while the owner took its time", [Stalled, length(Chunks)]),
	true = Stalled < length(Chunks),
	ok = gun:update_flow(ConnPid, StreamRef, ?FLOW_FLOOD - 10),
	ok = expect_tiny(ConnPid, 11, ?FLOW_FLOOD),
	ok = raw_peer:await_sent(Writer, 5000),
	no_more_from(ConnPid),
	close_conn(St),
	no_leak(Config).

%% owner_queue_limit => 1,000,000 and an owner that never receives while
%% the peer floods 64-byte messages: the peer gets close 1008, ConnPid
%% exits {shutdown, {error, owner_queue_full}}, and the owner's mailbox
%% holds, in order, between limit / 128 and 1.5 x limit / 128 gun_ws
%% messages (payload + 64 bytes each as the engine counts them), then
%% gun_error and gun_down {error, owner_queue_full}.
owner_queue_full(Config) ->
	Limit = 1000000,
	{LSock, Port} = raw_peer:listen(),
	Self = self(),
	Owner = spawn_link(fun() -> lazy_owner(Self, Port, #{owner_queue_limit => Limit}) end),
	Sock = raw_peer:accept(LSock),
	Req = raw_peer:read_request(Sock),
	raw_peer:send(Sock, raw_peer:response_101(Req)),
	{ConnPid, StreamRef} = receive
		{upgraded, Owner, C, R} -> {C, R}
	after 5000 -> ct:fail(owner_not_upgraded)
	end,
	MRef = monitor_conn(ConnPid),
	Writer = raw_peer:write_forever(Sock, fun seq_frames/1, 0),
	expect_close(Sock, 1008, 10000),
	{shutdown, {error, owner_queue_full}} = down(ConnPid, MRef),
	Owner ! {report, Self},
	{WsCount, InOrder, Tail} = receive
		{mailbox, Owner, Report} -> Report
	after 5000 -> ct:fail(owner_did_not_report)
	end,
	ct:log("the owner's mailbox: ~b gun_ws messages (in order: ~p), then ~p",
		[WsCount, InOrder, Tail]),
	Reason = {error, owner_queue_full},
	[{gun_error, ConnPid, StreamRef, Reason},
		{gun_down, ConnPid, ws, Reason, [StreamRef], []}] = Tail,
	true = InOrder,
	true = WsCount >= Limit div 128,
	true = WsCount =< Limit * 3 div 2 div 128,
	ok = gen_tcp:close(Sock),
	_ = raw_peer:writer_stopped(Writer, 5000),
	ok = gen_tcp:close(LSock),
	no_leak(Config).

%% Chunk N: 100 binary frames with 64-byte payloads, numbered.
seq_frames(N) ->
	Filler = binary:copy(<<"f">>, 60),
	[raw_peer:frame(2, <<Seq:32, Filler/binary>>)
		|| Seq <- lists:seq((N - 1) * 100 + 1, N * 100)].

%% Opens and upgrades, then takes nothing but the gun_down (a selective
%% receive: everything else stays in its mailbox) and reports its mailbox.
lazy_owner(Parent, Port, WsOpts) ->
	{ok, ConnPid} = gun:open("127.0.0.1", Port, raw_peer:client_opts(#{})),
	StreamRef = gun:ws_upgrade(ConnPid, "/", [], WsOpts),
	{gun_up, ConnPid, http} = next_from(ConnPid),
	{gun_ws_upgrade, ConnPid, ok, _} = next_from(ConnPid),
	Parent ! {upgraded, self(), ConnPid, StreamRef},
	Down = receive
		D = {gun_down, ConnPid, _, _, _, _} -> D
	after 30000 -> exit(no_gun_down)
	end,
	receive {report, Parent} -> ok end,
	{messages, Msgs} = process_info(self(), messages),
	{Ws, Rest} = lists:splitwith(fun(M) -> element(1, M) =:= gun_ws end, Msgs),
	Seqs = [Seq || {gun_ws, _, {binary, <<Seq:32, _:60/binary>>}} <- Ws],
	InOrder = Seqs =:= lists:seq(1, length(Ws)),
	Parent ! {mailbox, self(), {length(Ws), InOrder, Rest ++ [Down]}}.

-define(PINGS, 300000).

%% 300,000 pings with 125-byte payloads from a peer that does not read
%% meanwhile: the client does not queue a pong for each (far fewer pongs
%% than pings), the pongs it sends echo pings in order, the last one the
%% last ping; the owner hears nothing (silence_pings); then the
%% connection still works both ways.
ping_flood(Config) ->
	St = #{conn := ConnPid, sock := Sock} = connect(#{}, #{}),
	T0 = now_ms(),
	Filler = binary:copy(<<"p">>, 121),
	Chunks = [<< <<16#89, 125, Seq:32, Filler/binary>> || Seq <- lists:seq(I, I + 999) >>
		|| I <- lists:seq(1, ?PINGS, 1000)],
	{Writer, _} = raw_peer:send_async(Sock, Chunks),
	ok = raw_peer:await_sent(Writer, 50000),
	Written = ms_since(T0),
	{{Pongs, ?PINGS}, [], <<>>} = raw_peer:fold_frames(Sock, fun pong_seq/2, {0, 0}, 10000),
	ct:log("~b pings written in ~b ms; ~b pongs read, the last for ping ~b",
		[?PINGS, Written, Pongs, ?PINGS]),
	true = Pongs < ?PINGS div 4,
	no_more_from(ConnPid),
	raw_peer:send(Sock, raw_peer:frame(1, <<"still there?">>)),
	?NEXT(ConnPid, {gun_ws, ConnPid, {text, <<"still there?">>}}),
	ok = gun:ws_send(ConnPid, {text, <<"yes">>}),
	<<"yes">> = raw_peer:expect_frame(Sock, 1),
	close_conn(St),
	no_leak(Config).

%% Counts pongs; each echoes a ping later than the one before.
pong_seq(#{opcode := 10, fin := true, masked := true, payload := <<Seq:32, _:121/binary>>},
		{N, Last}) when Seq > Last ->
	case Seq of
		?PINGS -> {done, {N + 1, Seq}};
		_ -> {more, {N + 1, Seq}}
	end;
pong_seq(Frame, Acc) ->
	ct:fail({unexpected_client_frame, Frame, {pongs_and_last_seq, Acc}}).

%% Control frames.

%% A text in five fragments with pings (with payloads or not) and pongs
%% between them, silence_pings => false: the owner gets each control frame
%% in order, then the whole text once; the peer gets a pong echoing each
%% ping, in order, the first while the message is still incomplete.
interleaved_control_frames(Config) ->
	St = #{conn := ConnPid, sock := Sock} = connect(#{}, #{silence_pings => false}),
	raw_peer:send(Sock, [frag(1, false, <<"one ">>), raw_peer:frame(9, <<"p1">>)]),
	<<"p1">> = raw_peer:expect_frame(Sock, 10),
	?NEXT(ConnPid, {gun_ws, ConnPid, {ping, <<"p1">>}}),
	raw_peer:send(Sock, [frag(0, false, <<"two ">>), raw_peer:frame(10, <<"q1">>),
		raw_peer:frame(9, <<"p2">>), frag(0, false, <<"three ">>), raw_peer:frame(10, <<>>),
		frag(0, false, <<"four ">>), raw_peer:frame(9, <<>>), frag(0, true, <<"five">>)]),
	<<"p2">> = raw_peer:expect_frame(Sock, 10),
	<<>> = raw_peer:expect_frame(Sock, 10),
	?NEXT(ConnPid, {gun_ws, ConnPid, {pong, <<"q1">>}}),
	?NEXT(ConnPid, {gun_ws, ConnPid, {ping, <<"p2">>}}),
	?NEXT(ConnPid, {gun_ws, ConnPid, pong}),
	?NEXT(ConnPid, {gun_ws, ConnPid, ping}),
	?NEXT(ConnPid, {gun_ws, ConnPid, {text, <<"one two three four five">>}}),
	no_more_from(ConnPid),
	close_conn(St),
	no_leak(Config).

%% The same with pings silenced (the default), and a UTF-8 character
%% split by a ping: the owner gets the text alone; the pongs still come,
%% the first while the message is incomplete.
interleaved_control_frames_silenced(Config) ->
	St = #{conn := ConnPid, sock := Sock} = connect(#{}, #{}),
	raw_peer:send(Sock, [frag(1, false, <<"caf", 16#C3>>), raw_peer:frame(9, <<"p1">>)]),
	<<"p1">> = raw_peer:expect_frame(Sock, 10),
	raw_peer:send(Sock, [frag(0, false, <<16#A9>>), raw_peer:frame(10, <<"q">>),
		raw_peer:frame(9, <<"p2">>), frag(0, true, <<" ok">>)]),
	<<"p2">> = raw_peer:expect_frame(Sock, 10),
	?NEXT(ConnPid, {gun_ws, ConnPid, {text, <<"caf", 16#C3, 16#A9, " ok">>}}),
	no_more_from(ConnPid),
	close_conn(St),
	no_leak(Config).

%% A close frame with a 1-byte payload: 1002, {error, badframe}.
close_1_byte(Config) ->
	fails_with(raw_peer:frame(8, <<3>>), 1002, badframe),
	no_leak(Config).

%% Each close code a server may not send (RFC 6455 7.4): 1002; the valid
%% codes beside them are delivered and echoed.
close_invalid_codes(Config) ->
	[fails_with(raw_peer:frame(8, <<Code:16>>), 1002, badframe)
		|| Code <- [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535]],
	[close_accepted(Code) || Code <- [1000, 1003, 1007, 1014, 3000, 4999]],
	no_leak(Config).

close_accepted(Code) ->
	St = #{conn := ConnPid, mref := MRef, ref := StreamRef, sock := Sock} = connect(#{}, #{}),
	raw_peer:send(Sock, raw_peer:frame(8, <<Code:16>>)),
	?NEXT(ConnPid, {gun_ws, ConnPid, {close, Code, <<>>}}),
	expect_close(Sock, Code, 5000),
	ok = gen_tcp:close(Sock),
	?NEXT(ConnPid, {gun_down, ConnPid, ws, normal, [StreamRef], []}),
	{shutdown, normal} = down(ConnPid, MRef),
	no_more_from(ConnPid),
	finish(St).

%% A valid close code with a reason that is not UTF-8: 1007,
%% {error, badencoding}.
close_reason_bad_utf8(Config) ->
	fails_with(raw_peer:frame(8, <<1000:16, "ok", 16#FF, 16#FE>>), 1007, badencoding),
	no_leak(Config).

%% Control frames over 125 bytes (close, ping, pong; 126 bytes in the
%% 16-bit form, or a 64-bit claim with no payload): 1002, {error, badframe}.
control_frame_too_long(Config) ->
	[begin
		Frame = raw_peer:frame(Opcode, pattern(126)),
		<<_:9, 126:7, 126:16, _:126/binary>> = Frame,
		fails_with(Frame, 1002, badframe)
	end || Opcode <- [8, 9, 10]],
	fails_with(raw_peer:frame(#{opcode => 9, len => (1 bsl 63) - 1, len_form => 64}), 1002, badframe),
	no_leak(Config).

%% Faults.

%% A panic in one connection's task (gun_nif:inject_panic/1) fails that
%% connection alone: its owner gets gun_down {error, internal_error},
%% ConnPid exits {shutdown, {error, internal_error}}, its socket is
%% closed; another connection still echoes and a new one can be opened.
panic_fails_one_connection(Config) ->
	St1 = #{conn := C1, mref := MRef1, sock := Sock1} = connect(#{}, #{}),
	St2 = connect(#{}, #{}),
	ok = gun_nif:inject_panic(C1),
	?NEXT(C1, {gun_down, C1, ws, {error, internal_error}, [], []}),
	{shutdown, {error, internal_error}} = down(C1, MRef1),
	raw_peer:expect_eof(Sock1),
	no_more_from(C1),
	finish(St1),
	echo(St2),
	St3 = connect(#{}, #{}),
	echo(St3),
	close_conn(St2),
	close_conn(St3),
	no_leak(Config).

echo(#{conn := ConnPid, sock := Sock}) ->
	raw_peer:send(Sock, raw_peer:frame(1, <<"from the peer">>)),
	?NEXT(ConnPid, {gun_ws, ConnPid, {text, <<"from the peer">>}}),
	ok = gun:ws_send(ConnPid, {text, <<"from the owner">>}),
	<<"from the owner">> = raw_peer:expect_frame(Sock, 1).

-define(STORM, 200).

%% 200 connections at once, each fed a different seeded random byte
%% stream after a valid 101, then the peer's half-close: each ends with
%% gun_down (after gun_error with the same reason unless a close frame
%% came), ConnPid exits, only masked frames are written, all within 30 s.
garbage_storm(Config) ->
	Self = self(),
	T0 = now_ms(),
	Workers = [spawn_monitor(fun() -> Self ! {outcome, self(), storm_session(I)} end)
		|| I <- lists:seq(1, ?STORM)],
	Outcomes = [storm_outcome(W) || W <- Workers],
	ct:log("~b connections in ~b ms; gun_down reasons: ~p",
		[?STORM, ms_since(T0), count(Outcomes)]),
	no_leak(Config).

storm_outcome({Pid, MRef}) ->
	receive
		{outcome, Pid, Outcome} ->
			receive {'DOWN', MRef, process, Pid, normal} -> Outcome end;
		{'DOWN', MRef, process, Pid, Reason} ->
			ct:fail({storm_session_failed, Reason})
	after 30000 ->
		ct:fail({storm_session_hung, Pid})
	end.

count(L) ->
	lists:foldl(fun(X, Acc) -> maps:update_with(X, fun(N) -> N + 1 end, 1, Acc) end, #{}, L).

storm_session(I) ->
	_ = rand:seed(exsss, {7, 7, I}),
	Bytes = storm_bytes(),
	St = #{conn := ConnPid, mref := MRef, ref := StreamRef, sock := Sock} = connect(#{}, #{}),
	raw_peer:send(Sock, Bytes),
	ok = gen_tcp:shutdown(Sock, write),
	Reason = storm_collect(ConnPid, StreamRef, none),
	{shutdown, Reason} = down(ConnPid, MRef),
	{closed, Written} = raw_peer:drain(Sock, 5000),
	{ClientFrames, <<>>} = raw_peer:decode_frames(Written),
	[] = [F || F = #{masked := false} <- ClientFrames],
	no_more_from(ConnPid),
	finish(St),
	Reason.

%% Random bytes of four kinds, so that more than the first byte is parsed:
%% any bytes; bytes after a plausible first byte; a binary frame header
%% with a random length claim (which may exceed the limit, or wait for
%% more than comes) and random bytes; valid frames and then random bytes.
storm_bytes() ->
	Random = rand:bytes(rand:uniform(4096)),
	storm_bytes(rand:uniform(4), Random).

storm_bytes(1, Random) ->
	Random;
storm_bytes(2, <<_, Rest/binary>>) ->
	<<(lists:nth(rand:uniform(5), [16#01, 16#02, 16#81, 16#82, 16#89])), Rest/binary>>;
storm_bytes(3, Random) ->
	Len = rand:uniform(1 bsl (4 * rand:uniform(16))) - 1,
	[header(2, true, Len), Random];
storm_bytes(4, Random) ->
	[[raw_peer:frame(2, rand:bytes(rand:uniform(300) - 1)) || _ <- lists:seq(1, rand:uniform(5))],
		Random].

storm_collect(ConnPid, StreamRef, Error) ->
	case next_from(ConnPid, 10000) of
		{gun_ws, ConnPid, _} when Error =:= none ->
			storm_collect(ConnPid, StreamRef, Error);
		{gun_error, ConnPid, StreamRef, Reason} when Error =:= none ->
			storm_collect(ConnPid, StreamRef, Reason);
		{gun_down, ConnPid, ws, normal, [StreamRef], []} when Error =:= none ->
			normal;
		{gun_down, ConnPid, ws, Reason, [StreamRef], []} when Reason =:= Error ->
			storm_reason(Reason);
		Other ->
			error({unexpected_message, Other, {gun_error_before, Error}})
	end.

storm_reason(Reason = closed) -> Reason;
storm_reason(Reason = {error, badframe}) -> Reason;
storm_reason(Reason = {error, badencoding}) -> Reason;
storm_reason(Reason = {error, badsize}) -> Reason;
storm_reason(Reason) -> error({unexpected_gun_down_reason, Reason}).
