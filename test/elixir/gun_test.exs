defmodule GunTest do
  # The Gun API from Elixir, against test/support/ws_server.py. The message
  # terms are those of ../shared/spec/contract.md and doc/behaviour.md.
  use ExUnit.Case, async: true

  @timeout 10_000
  @badstate_send ~c"Connection needs to be upgraded to Websocket before the gun:ws_send/1 function can be used."

  defp connect(opts \\ %{}) do
    {:ok, conn} = :gun.open(~c"127.0.0.1", GunTest.Server.port(), Map.merge(%{retry: 0}, opts))
    assert is_pid(conn)
    assert {:ok, :http} = :gun.await_up(conn)
    conn
  end

  defp upgrade(conn, path) do
    ref = :gun.ws_upgrade(conn, path)
    assert is_reference(ref)
    assert_receive {:gun_ws_upgrade, ^conn, :ok, headers}, @timeout
    ref_headers_ok(headers)
    ref
  end

  defp ref_headers_ok(headers) do
    assert is_list(headers)

    for {name, value} <- headers do
      assert is_binary(name) and is_binary(value)
      assert String.downcase(name) == name
    end

    assert {"upgrade", _} = List.keyfind(headers, "upgrade", 0)
    assert {"sec-websocket-accept", _} = List.keyfind(headers, "sec-websocket-accept", 0)
  end

  # A monitor in place when this returns. The engine's exit order reaches
  # ConnPid from a native thread, not ordered after our monitor signal; a
  # process_info round trip is ordered after it.
  defp monitor_conn(conn) do
    mref = Process.monitor(conn)
    _ = :erlang.process_info(conn, :status)
    mref
  end

  defp close(conn) do
    mref = monitor_conn(conn)
    assert :ok = :gun.close(conn)
    assert_receive {:DOWN, ^mref, :process, ^conn, :normal}, @timeout
    :ok = :gun.flush(conn)
  end

  test "open, upgrade and echo text and binary" do
    {:ok, conn} = :gun.open(~c"127.0.0.1", GunTest.Server.port(), %{retry: 0})
    assert is_pid(conn)
    assert {:ok, :http} = :gun.await_up(conn)
    ref = :gun.ws_upgrade(conn, "/echo")
    assert is_reference(ref)
    assert_receive {:gun_ws_upgrade, ^conn, :ok, headers}, @timeout
    ref_headers_ok(headers)
    assert %{protocol: :ws, transport: :tcp, owner: owner} = :gun.info(conn)
    assert owner == self()

    assert :ok = :gun.ws_send(conn, {:text, "Hello!"})
    assert_receive {:gun_ws, ^conn, {:text, "Hello!"}}, @timeout

    assert :ok = :gun.ws_send(conn, {:text, [~c"Hel", ["lo" | "!"]]})
    assert_receive {:gun_ws, ^conn, {:text, "Hello!"}}, @timeout

    assert :ok = :gun.ws_send(conn, {:text, "héllo ✓"})
    assert_receive {:gun_ws, ^conn, {:text, "héllo ✓"}}, @timeout

    assert :ok = :gun.ws_send(conn, {:binary, <<0, 1, 2, 255>>})
    assert_receive {:gun_ws, ^conn, {:binary, <<0, 1, 2, 255>>}}, @timeout

    big = :binary.copy(<<1, 2, 3, 4>>, 100_000)
    assert :ok = :gun.ws_send(conn, [{:binary, big}, {:text, "after"}])
    assert_receive {:gun_ws, ^conn, {:binary, ^big}}, @timeout
    assert_receive {:gun_ws, ^conn, {:text, "after"}}, @timeout

    close(conn)
    refute_received {:gun_down, ^conn, _, _, _, _}
  end

  test "gun_ws.upgrade/2 and a protocol offer" do
    conn = connect()
    _ref = :gun_ws.upgrade(conn, "/proto", [{"sec-websocket-protocol", ~c"mychat"}])
    assert_receive {:gun_ws_upgrade, ^conn, :ok, headers}, @timeout
    assert {"sec-websocket-protocol", "mychat"} = List.keyfind(headers, "sec-websocket-protocol", 0)
    assert_receive {:gun_ws, ^conn, {:text, "mychat"}}, @timeout
    close(conn)
  end

  test "a refused upgrade is an HTTP response" do
    conn = connect()
    mref = monitor_conn(conn)
    ref = :gun.ws_upgrade(conn, "/missing")
    assert_receive {:gun_response, ^conn, ^ref, :nofin, 404, headers}, @timeout
    assert {"content-type", "text/plain"} = List.keyfind(headers, "content-type", 0)
    assert read_body(conn, ref, "") == "not found"
    assert_receive {:gun_down, ^conn, :http, :closed, [], []}, @timeout
    assert_receive {:DOWN, ^mref, :process, ^conn, {:shutdown, :closed}}, @timeout
  end

  defp read_body(conn, ref, acc) do
    receive do
      {:gun_data, ^conn, ^ref, :nofin, data} -> read_body(conn, ref, acc <> data)
      {:gun_data, ^conn, ^ref, :fin, data} -> acc <> data
    after
      @timeout -> flunk("no body; mailbox: #{inspect(Process.info(self(), :messages))}")
    end
  end

  test "option errors" do
    port = GunTest.Server.port()

    assert {:error, {:options, {:protocols, [:spdy]}}} =
             :gun.open(~c"127.0.0.1", port, %{protocols: [:spdy]})

    assert {:error, {:options, {:retry, -1}}} = :gun.open(~c"127.0.0.1", port, %{retry: -1})

    assert {:error, {:options, {:ws, {:keepalive, :foo}}}} =
             :gun.open(~c"127.0.0.1", port, %{ws_opts: %{keepalive: :foo}})

    assert {:error, {:options, {:http, {:version, :"HTTP/2"}}}} =
             :gun.open(~c"127.0.0.1", port, %{http_opts: %{version: :"HTTP/2"}})

    assert {:error, {:options, {:bad, 1}}} = :gun.open(~c"127.0.0.1", port, %{bad: 1})

    assert {:error, {:options, {:ws, {:owner_queue_limit, 0}}}} =
             :gun.open(~c"127.0.0.1", port, %{ws_opts: %{owner_queue_limit: 0}})

    assert {:error, {:options, {:http, {:max_headers, 0}}}} =
             :gun.open(~c"127.0.0.1", port, %{http_opts: %{max_headers: 0}})

    conn = connect()

    error =
      assert_raise MatchError, fn ->
        :gun.ws_upgrade(conn, "/echo", [], %{keepalive: :foo})
      end

    assert error.term == {:error, {:options, {:ws, {:keepalive, :foo}}}}
    close(conn)
  end

  test "integer options past what the engine takes are option errors, with no crash" do
    port = GunTest.Server.port()
    big = Bitwise.bsl(1, 40)

    assert {:error, {:options, {:retry, ^big}}} = :gun.open(~c"127.0.0.1", port, %{retry: big})

    too_long = Bitwise.bsl(1, 64)

    assert {:error, {:options, {:ws, {:keepalive, ^too_long}}}} =
             :gun.open(~c"127.0.0.1", port, %{ws_opts: %{keepalive: too_long}})

    assert {:error, {:options, {:tcp_opts, {:no_such_option, 1}}}} =
             :gun.open(~c"127.0.0.1", port, %{tcp_opts: [{:no_such_option, 1}]})

    conn = connect()

    error =
      assert_raise MatchError, fn ->
        :gun.ws_upgrade(conn, "/echo", [], %{keepalive: too_long})
      end

    assert error.term == {:error, {:options, {:ws, {:keepalive, too_long}}}}
    close(conn)
  end

  test "header and request line injection raise in the caller" do
    conn = connect()

    error =
      assert_raise ErlangError, fn ->
        :gun.get(conn, "/", [{"x-a", "1\r\nx-injected: yes"}])
      end

    assert {:invalid_request_header, "x-a", _} = error.original

    error =
      assert_raise ErlangError, fn ->
        :gun.get(conn, "/ HTTP/1.1\r\nx-smuggled: 1\r\n\r\nGET /", [])
      end

    assert {:invalid_request_target, "/ HTTP/1.1\r\nx-smuggled: 1\r\n\r\nGET /", _} =
             error.original

    error =
      assert_raise ErlangError, fn ->
        :gun.ws_upgrade(conn, "/echo", [{"x-a: 1\r\nx-injected", "yes"}])
      end

    assert {:invalid_request_header, "x-a: 1\r\nx-injected", _} = error.original
    # The connection is untouched: an upgrade still works.
    upgrade(conn, "/echo")
    close(conn)
  end

  test "a message over max_message_size fails the connection with badsize" do
    conn = connect()
    mref = monitor_conn(conn)
    ref = :gun.ws_upgrade(conn, "/push?n=1&size=2000", [], %{max_message_size: 1000})
    assert_receive {:gun_ws_upgrade, ^conn, :ok, _}, @timeout
    assert_receive {:gun_error, ^conn, ^ref, {:error, :badsize}}, @timeout
    assert_receive {:gun_down, ^conn, :ws, {:error, :badsize}, [^ref], []}, @timeout
    refute_received {:gun_ws, ^conn, _}
    assert_receive {:DOWN, ^mref, :process, ^conn, {:shutdown, {:error, :badsize}}}, @timeout
    :ok = :gun.flush(conn)
  end

  test "an owner that does not keep up is protected by owner_queue_limit" do
    conn = connect()
    mref = monitor_conn(conn)
    # 5,000 messages of 64 bytes, and an owner that takes none of them.
    ref = :gun.ws_upgrade(conn, "/push?n=5000&size=64", [], %{owner_queue_limit: 100_000})
    assert_receive {:gun_error, ^conn, ^ref, {:error, :owner_queue_full}}, @timeout
    assert_receive {:gun_down, ^conn, :ws, {:error, :owner_queue_full}, [^ref], []}, @timeout
    {:messages, messages} = Process.info(self(), :messages)
    delivered = Enum.count(messages, &match?({:gun_ws, ^conn, {:binary, _}}, &1))
    # The limit is about 780 such messages (64 bytes each and 64 of
    # overhead); reading pauses while a look at the mailbox is pending.
    assert delivered > 500 and delivered < 2000, "#{delivered} delivered"
    assert_receive {:DOWN, ^mref, :process, ^conn, {:shutdown, {:error, :owner_queue_full}}}, @timeout
    :ok = :gun.flush(conn)
  end

  test "a ws_send list over send_queue_limit is refused whole" do
    conn = connect()
    ref = :gun.ws_upgrade(conn, "/echo", [], %{send_queue_limit: 1000})
    assert_receive {:gun_ws_upgrade, ^conn, :ok, _}, @timeout
    # 998 + 5 bytes: the list does not fit, although its first frame would.
    big = :binary.copy("b", 998)
    assert :ok = :gun.ws_send(conn, [{:binary, big}, {:text, "SMALL"}])
    assert_receive {:gun_error, ^conn, ^ref, {:error, :send_queue_full}}, @timeout
    assert :ok = :gun.ws_send(conn, [{:text, "after"}, {:binary, "1"}])
    # The echo server got neither frame of the refused list.
    assert_receive {:gun_ws, ^conn, first}, @timeout
    assert first == {:text, "after"}
    assert_receive {:gun_ws, ^conn, {:binary, "1"}}, @timeout
    refute_received {:gun_error, ^conn, ^ref, _}
    close(conn)
  end

  test "ws_send before the upgrade is a badstate error" do
    conn = connect()
    assert :ok = :gun.ws_send(conn, {:text, "early"})
    assert_receive {:gun_error, ^conn, {:badstate, @badstate_send}}, @timeout
    close(conn)
  end

  test "a malformed frame raises badarg in the caller" do
    conn = connect()
    upgrade(conn, "/echo")
    assert_raise ArgumentError, fn -> :gun.ws_send(conn, {:text, 123}) end
    assert_raise ArgumentError, fn -> :gun.ws_send(conn, {:ping, :binary.copy(<<0>>, 126)}) end
    assert :ok = :gun.ws_send(conn, {:text, "good"})
    assert_receive {:gun_ws, ^conn, msg}, @timeout
    assert msg == {:text, "good"}
    close(conn)
  end

  test "close handshake started by the server, then reconnect and upgrade again" do
    conn = connect(%{retry: 1, retry_timeout: 100})
    ref = upgrade(conn, "/close")
    assert :ok = :gun.ws_send(conn, {:text, "hi"})
    assert_receive {:gun_ws, ^conn, {:close, 4000, "bye"}}, @timeout
    assert_receive {:gun_down, ^conn, :ws, :normal, [^ref], []}, @timeout
    assert_receive {:gun_up, ^conn, :http}, @timeout
    ref2 = upgrade(conn, "/echo")
    assert ref2 != ref
    assert :ok = :gun.ws_send(conn, {:text, "again"})
    assert_receive {:gun_ws, ^conn, {:text, "again"}}, @timeout
    close(conn)
  end

  test "close handshake started by the client" do
    conn = connect(%{retry: 5})
    mref = monitor_conn(conn)
    ref = upgrade(conn, "/echo")
    assert :ok = :gun.ws_send(conn, [{:text, "last"}, {:close, 4001, "done"}, {:text, "never"}])
    assert_receive {:gun_ws, ^conn, {:text, "last"}}, @timeout
    assert_receive {:gun_ws, ^conn, {:close, 4001, "done"}}, @timeout
    assert_receive {:gun_down, ^conn, :ws, :normal, [^ref], []}, @timeout
    assert_receive {:DOWN, ^mref, :process, ^conn, :normal}, @timeout
    refute_received {:gun_ws, ^conn, {:text, "never"}}
    refute_received {:gun_up, ^conn, _}
  end

  test "gun.shutdown/1 closes with 1001" do
    conn = connect(%{retry: 5})
    mref = monitor_conn(conn)
    ref = upgrade(conn, "/echo")
    assert :ok = :gun.shutdown(conn)
    assert_receive {:gun_ws, ^conn, {:close, 1001, _}}, @timeout
    assert_receive {:gun_down, ^conn, :ws, :normal, [^ref], []}, @timeout
    assert_receive {:DOWN, ^mref, :process, ^conn, :normal}, @timeout
  end
end
