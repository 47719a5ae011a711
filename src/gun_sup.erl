%% The gun application's supervisor: every connection gun:open/2,3 starts
%% is its child (temporary, as in Gun: a connection that ends is not
%% restarted; the owner decides). application:stop(gun) ends them all,
%% and with them their sockets and native resources.
-module(gun_sup).
-behaviour(supervisor).

-export([start_link/0]).
-export([start_conn/4]).
-export([init/1]).

-spec start_link() -> {ok, pid()}.
start_link() ->
	supervisor:start_link({local, ?MODULE}, ?MODULE, []).

%% Also callable from another node as
%% supervisor:start_child({gun_sup, Node}, [Owner, Host, Port, Opts]),
%% as with Gun; the owner may then be on the calling node.
-spec start_conn(pid(), gun:host(), inet:port_number(), gun:opts()) -> {ok, pid()} | {error, any()}.
start_conn(Owner, Host, Port, Opts) ->
	supervisor:start_child(?MODULE, [Owner, Host, Port, Opts]).

-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
	{ok, {#{strategy => simple_one_for_one, intensity => 10, period => 10}, [#{
		id => gun_conn,
		start => {gun_conn, start_link, []},
		restart => temporary,
		shutdown => 5000,
		type => worker,
		modules => [gun_conn]
	}]}}.
