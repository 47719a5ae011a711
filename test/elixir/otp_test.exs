defmodule GunOtpTest do
  # The OTP side seen from Elixir (issue 16): Mix starts the :gun
  # application, connections are children of :gun_sup, ConnPid answers :sys.
  use ExUnit.Case, async: true

  @timeout 10_000

  test "Mix starts :gun, whose supervisor holds the connection" do
    assert List.keymember?(Application.started_applications(), :gun, 0)
    {:ok, conn} = :gun.open(~c"127.0.0.1", GunTest.Server.port(), %{retry: 0})
    assert {:ok, :http} = :gun.await_up(conn)
    assert {:undefined, conn, :worker, [:gun_conn]} in Supervisor.which_children(:gun_sup)
    mref = Process.monitor(conn)
    :ok = :gun.close(conn)
    assert_receive {:DOWN, ^mref, :process, ^conn, :normal}, @timeout
  end

  test "ConnPid answers :sys and works on after a suspend" do
    {:ok, conn} = :gun.open(~c"127.0.0.1", GunTest.Server.port(), %{retry: 0})
    assert {:ok, :http} = :gun.await_up(conn)
    _ = :gun.ws_upgrade(conn, "/echo")
    assert_receive {:gun_ws_upgrade, ^conn, :ok, _}, @timeout
    assert {:conn, _, owner} = :sys.get_state(conn)
    assert owner == self()
    assert {:status, ^conn, {:module, :gun_conn}, _} = :sys.get_status(conn)
    :ok = :sys.suspend(conn)
    :ok = :sys.resume(conn)
    :ok = :gun.ws_send(conn, {:text, "after resume"})
    assert_receive {:gun_ws, ^conn, {:text, "after resume"}}, @timeout
    :ok = :gun.close(conn)
  end
end
