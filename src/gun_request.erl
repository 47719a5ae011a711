%% What a request must be before it is queued: nothing a caller passes
%% may change the shape of what goes on the wire. The checks run in the
%% caller's process and raise there, as Gun 2.4 does for headers:
%%
%% - the method must be a token (RFC 9110 5.6.2):
%%   error({invalid_request_method, Method, Text});
%% - the target must be non-empty, with no whitespace or control
%%   character (bytes 0 to 32 and 127; other bytes go as given):
%%   error({invalid_request_target, Target, Text});
%% - each header name must be a token and each value free of CR, LF and
%%   NUL: error({invalid_request_header, Name, Text}) (Gun 2.4's term).
%%
%% Method, Target and Name are binaries (the caller's iodata flattened);
%% Text is a string saying what was wrong.
-module(gun_request).

-export([check/4]).

-type check_opts() :: #{invalid_request_headers => raise | ignore}.
-export_type([check_opts/0]).

%% With invalid_request_headers => ignore (Gun 2's opt-out) the headers
%% are not looked at; the method and the target always are.
-spec check(iodata(), iodata(), gun:req_headers(), check_opts()) -> ok.
check(Method, Target, Headers, Opts) ->
	check_method(iolist_to_binary(Method)),
	check_target(iolist_to_binary(Target)),
	case maps:get(invalid_request_headers, Opts, raise) of
		raise -> check_headers(Headers);
		ignore -> ok
	end.

check_method(Method) ->
	case is_token(Method) of
		true -> ok;
		false -> error({invalid_request_method, Method,
			"An invalid request method was detected."})
	end.

check_target(<<>>) ->
	error({invalid_request_target, <<>>, "An invalid request target was detected."});
check_target(Target) ->
	case is_target(Target) of
		true -> ok;
		false -> error({invalid_request_target, Target,
			"An invalid request target was detected."})
	end.

check_headers([]) ->
	ok;
check_headers([{Name0, Value}|Tail]) ->
	Name = iolist_to_binary(Name0),
	case is_token(Name) andalso is_field_value(iolist_to_binary(Value)) of
		true -> check_headers(Tail);
		false -> error({invalid_request_header, Name,
			"An invalid request header was detected."})
	end;
check_headers([Header|_]) ->
	error({invalid_request_header, Header, "A request header must be a {Name, Value} tuple."});
%% The tail of an improper list, or headers that are no list.
check_headers(_) ->
	error(badarg).

is_token(<<>>) -> false;
is_token(Bin) -> is_tchars(Bin).

is_tchars(<<>>) -> true;
is_tchars(<<C, Rest/bits>>) when C >= $a, C =< $z; C >= $A, C =< $Z; C >= $0, C =< $9 ->
	is_tchars(Rest);
is_tchars(<<C, Rest/bits>>) when C =:= $!; C =:= $#; C =:= $$; C =:= $%; C =:= $&;
		C =:= $'; C =:= $*; C =:= $+; C =:= $-; C =:= $.; C =:= $^; C =:= $_;
		C =:= $`; C =:= $|; C =:= $~ ->
	is_tchars(Rest);
is_tchars(_) -> false.

is_target(<<>>) -> true;
is_target(<<C, Rest/bits>>) when C > 32, C =/= 127 -> is_target(Rest);
is_target(_) -> false.

is_field_value(Value) ->
	binary:match(Value, [<<$\r>>, <<$\n>>, <<0>>]) =:= nomatch.
