defmodule Mix.Tasks.Compile.GunNativeEngine do
  @moduledoc "Builds the Rust NIF crate into priv/gun_nif.so (hex.pm and the rustler package are not needed)."
  use Mix.Task.Compiler

  @impl true
  def run(_args) do
    script = Path.join(Path.dirname(__ENV__.file), "scripts/build_nif.sh")

    case System.cmd("sh", [script], stderr_to_stdout: true, into: IO.stream(:stdio, :line)) do
      {_, 0} -> {:ok, []}
      {_, status} -> Mix.raise("building the gun NIF failed (exit status #{status})")
    end
  end
end

defmodule Gun.MixProject do
  use Mix.Project

  # The .app is generated from src/gun.app.src so that rebar3 and Mix ship the same metadata.
  @app_src (
    {:ok, [{:application, :gun, props}]} =
      :file.consult(Path.join(Path.dirname(__ENV__.file), "src/gun.app.src"))

    props
  )

  def project do
    [
      app: :gun,
      version: to_string(@app_src[:vsn]),
      language: :erlang,
      erlc_paths: ["src"],
      erlc_options: [:debug_info, :warnings_as_errors],
      compilers: [:gun_native_engine] ++ Mix.compilers(),
      test_paths: ["test/elixir"],
      # rebar3 owns _build/default and _build/test.
      build_path: "_build/mix",
      deps: []
    ]
  end

  def application do
    [
      description: to_charlist(@app_src[:description]),
      mod: @app_src[:mod],
      registered: @app_src[:registered],
      extra_applications: @app_src[:applications] -- [:kernel, :stdlib]
    ]
  end
end
