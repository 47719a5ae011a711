%% What the Common Test suites share at compile time: the timeouts they
%% wait with, the badstate texts they match, and the pattern-matching
%% forms of suite_helper's message functions.

%% The time a message or an exit may take, and that of a big transfer.
-define(T, 10000).
-define(BIG_T, 60000).

%% Gun's texts for {badstate, Text}: the owner matches them to the letter.
-define(BADSTATE_SEND, "Connection needs to be upgraded to Websocket before the gun:ws_send/1 function can be used.").
-define(BADSTATE_HTTP10, "Websocket cannot be used over an HTTP/1.0 connection.").
-define(BADSTATE_BODY, "The stream is not expecting a request body.").
-define(BADSTATE_UPGRADED, "Connection is already upgraded to Websocket.").

%% The next message from ConnPid must match Pattern (a badmatch shows the
%% message actually received; a timeout error shows the mailbox).
-define(NEXT(ConnPid, Pattern), Pattern = suite_helper:next_from(ConnPid)).
-define(NEXT(ConnPid, Timeout, Pattern), Pattern = suite_helper:next_from(ConnPid, Timeout)).
