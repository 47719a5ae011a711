defmodule Gun2Test do
  # Mode 2 (Gun 2.4.1's API, `config :gun, api: 2`) from Elixir, against
  # test/support/ws_server.py. The env is global and read when a
  # connection opens, so this module is not async: ExUnit runs it after
  # the async modules (mode 1), one test at a time.
  use ExUnit.Case, async: false

  @timeout 10_000

  setup do
    Application.put_env(:gun, :api, 2)
    on_exit(fn -> Application.delete_env(:gun, :api) end)
    :ok
  end

  defp connect(opts \\ %{}) do
    {:ok, conn} = :gun.open(~c"127.0.0.1", GunTest.Server.port(), Map.merge(%{retry: 0}, opts))
    assert {:ok, :http} = :gun.await_up(conn)
    conn
  end

  test "upgrade, ws_send/3 and gun_ws with the StreamRef" do
    conn = connect()
    ref = :gun.ws_upgrade(conn, "/echo")
    assert {:upgrade, ["websocket"], headers} = :gun.await(conn, ref)
    assert {"upgrade", _} = List.keyfind(headers, "upgrade", 0)
    :ok = :gun.ws_send(conn, ref, {:text, "Hello!"})
    assert_receive {:gun_ws, ^conn, ^ref, {:text, "Hello!"}}, @timeout
    :ok = :gun.ws_send(conn, ref, [{:binary, <<1, 2, 3>>}, {:text, "two"}])
    assert {:ws, {:binary, <<1, 2, 3>>}} = :gun.await(conn, ref)
    assert {:ws, {:text, "two"}} = :gun.await(conn, ref)
    :ok = :gun.close(conn)
  end

  test "ws_upgrade/4 with protocols and a fun reply_to" do
    conn = connect()
    me = self()

    ref =
      :gun.ws_upgrade(conn, "/proto", [], %{
        protocols: [{"nope", :gun_ws_h}, {"other", :gun_ws_h}],
        reply_to: fn msg -> send(me, {:relayed, msg}) end
      })

    assert_receive {:relayed, {:gun_upgrade, ^conn, ^ref, ["websocket"], headers}}, @timeout
    assert {"sec-websocket-protocol", "other"} =
             List.keyfind(headers, "sec-websocket-protocol", 0)

    :ok = :gun.close(conn)
  end

  test "a request with a map of headers and ReqOpts" do
    conn = connect()
    ref = :gun.get(conn, "/echo", %{"Accept" => "text/plain", user_agent: "exunit"}, %{})
    assert {:response, _, status, _} = :gun.await(conn, ref)
    assert is_integer(status)
    :ok = :gun.close(conn)
  end

  test "options Gun 2 has and this mode does not are refused" do
    assert {:error, {:options, {:cookie_store, _}}} =
             :gun.open(~c"127.0.0.1", 12345, %{cookie_store: {:gun_cookies_list, %{}}})

    assert {:error, {:options, {:protocols, [:http2]}}} =
             :gun.open(~c"127.0.0.1", 12345, %{protocols: [:http2]})

    assert {:ok, conn} =
             :gun.open(~c"127.0.0.1", 12345, %{retry: 0, http2_opts: %{}, supervise: true})

    :ok = :gun.close(conn)
  end

  test "the owner's death: {shutdown, {owner_down, reason}}" do
    me = self()

    owner =
      spawn(fn ->
        send(me, {:conn, connect()})
        receive do: (:die -> exit(:boom))
      end)

    assert_receive {:conn, conn}, @timeout
    mref = Process.monitor(conn)
    send(owner, :die)
    assert_receive {:DOWN, ^mref, :process, ^conn, {:shutdown, {:owner_down, :boom}}}, @timeout
  end

  test "await errors are wrapped as Gun 2 does" do
    conn = connect()
    ref = make_ref()
    send(self(), {:gun_error, conn, ref, :closed})
    assert {:error, {:stream_error, :closed}} = :gun.await(conn, ref)
    assert {:error, :timeout} = :gun.await(conn, ref, 10)
    :ok = :gun.close(conn)
    assert {:error, {:down, :noproc}} = :gun.await(conn, ref)
  end
end
