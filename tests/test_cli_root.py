from persona_testbed import __version__


def test_version(cli):
    r = cli("--version")
    assert r.exit_code == 0
    assert __version__ in r.stdout


def test_every_command_has_help(cli):
    """Every command and group prints help text that describes it (no undocumented commands)."""
    import typer.main

    from persona_testbed.cli.root import app

    root = typer.main.get_command(app)

    def walk(cmd, path: list[str]):
        yield path, cmd
        if hasattr(cmd, "list_commands"):
            for name in cmd.list_commands(None):
                yield from walk(cmd.get_command(None, name), path + [name])

    seen = 0
    for path, cmd in walk(root, []):
        r = cli(*path, "--help")
        assert r.exit_code == 0, path
        assert cmd.help or cmd.short_help, f"command {' '.join(path)} has no help text"
        if hasattr(cmd, "list_commands"):
            assert cmd.list_commands(None), f"group {' '.join(path)} has no commands"
        seen += 1
    assert seen > 30


def test_root_lists_every_stage(cli):
    r = cli("--help")
    for name in (
        "run",
        "status",
        "report",
        "data",
        "llm",
        "census",
        "personas",
        "prompts",
        "feedback",
        "bench",
    ):
        assert name in r.stdout


def test_version_does_not_import_the_stages():
    """Sub-commands load lazily: a bare start must not pull in polars / scikit-learn."""
    import subprocess
    import sys

    code = (
        "import sys; from persona_testbed.cli.root import main\n"
        "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('polars', 'sklearn', 'scipy', 'llama_cpp') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_user_error_is_one_line_exit_2(cli, tmp_path):
    from persona_testbed.cli.root import app
    from persona_testbed.core.errors import UserError

    @app.command("_boom", hidden=True)
    def _boom():
        raise UserError("bad value 'x' in field y")

    try:
        r = cli("_boom")
        assert r.exit_code == 2
        assert r.stderr.strip() == "error: bad value 'x' in field y"
        assert "Traceback" not in r.stderr
    finally:
        app.registered_commands = [c for c in app.registered_commands if c.name != "_boom"]
