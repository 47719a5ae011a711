# Starts the independent WebSocket server (test/support/ws_server.py, Python's
# websockets 10.4) for the whole run. The Port belongs to the process that
# evaluates this file, which lives until the run ends; when the VM exits the
# server sees EOF on stdin and exits too.
defmodule GunTest.Server do
  @python "/usr/bin/python3"

  def start do
    script = Path.expand("../support/ws_server.py", __DIR__)

    port =
      Port.open({:spawn_executable, @python}, [
        {:args, [script]},
        {:line, 1024},
        :use_stdio,
        :binary,
        :exit_status
      ])

    receive do
      {^port, {:data, {:eol, line}}} -> {port, String.to_integer(line)}
      {^port, {:exit_status, status}} -> raise "#{script} exited with status #{status}"
    after
      10_000 -> raise "#{script} printed no port"
    end
  end

  def port, do: Application.fetch_env!(:gun, :test_ws_port)
end

{_server, ws_port} = GunTest.Server.start()
Application.put_env(:gun, :test_ws_port, ws_port)
{:ok, _} = Application.ensure_all_started(:gun)

ExUnit.start()
