"""`persona-testbed llm chat` / `llm log` / bad input: one line on stderr, exit 2, no traceback."""

import json
import re
import signal
import socket
import subprocess
import sys

import pytest

from persona_testbed.llm.stub_server import StubServer


def _assert_one_line_error(r, *needles):
    assert r.exit_code == 2, (r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    for n in needles:
        assert n in r.stderr, (n, r.stderr)


def test_chat_mock_prints_reply_and_logs(cli, tmp_home):
    r = cli("llm", "chat", "mock", "hello there")
    assert r.exit_code == 0 and r.stdout.strip() == "mock: hello there"
    assert (tmp_home / "logs.db").exists()
    r = cli("llm", "log", "--json")
    rows = json.loads(r.stdout)
    assert len(rows) == 1 and rows[0]["model"] == "mock" and rows[0]["purpose"] == "cli.chat"
    assert rows[0]["messages"][-1]["content"] == "hello there"


def test_chat_json_and_custom_log(cli, tmp_path):
    db = tmp_path / "my.db"
    r = cli(
        "llm",
        "chat",
        "mock",
        "x",
        "--system",
        "be brief",
        "--temperature",
        "0",
        "--max-tokens",
        "5",
        "--seed",
        "3",
        "--json",
        "--db",
        db,
    )
    res = json.loads(r.stdout)
    assert r.exit_code == 0 and res["status"] == "ok" and res["text"] == "mock: x" and not res["cached"]
    res2 = json.loads(
        cli(
            "llm",
            "chat",
            "mock",
            "x",
            "--system",
            "be brief",
            "--temperature",
            "0",
            "--max-tokens",
            "5",
            "--seed",
            "3",
            "--json",
            "--db",
            db,
        ).stdout
    )
    assert res2["cached"] and res2["call_id"] == res["call_id"]
    rows = json.loads(cli("llm", "log", "--db", db, "--json", "-n", "5").stdout)
    assert len(rows) == 1 and rows[0]["params"]["seed"] == 3 and rows[0]["messages"][0]["role"] == "system"


def test_chat_and_log_name_the_call_log_the_same_way(cli):
    for cmd in ("chat", "log"):
        r = cli("llm", cmd, "--help")
        assert r.exit_code == 0 and "--db" in r.stdout and "Call-log database" in r.stdout, r.stdout
        assert "--log" not in r.stdout  # chat's old spelling is a hidden alias


def test_chat_log_option_is_a_deprecated_alias_of_db(cli, tmp_path):
    db = tmp_path / "old.db"
    r = cli("llm", "chat", "mock", "x", "--log", db)
    assert r.exit_code == 0 and r.stdout.strip() == "mock: x"
    assert "--log is deprecated; use --db" in r.stderr
    assert len(json.loads(cli("llm", "log", "--db", db, "--json").stdout)) == 1
    _assert_one_line_error(cli("llm", "chat", "mock", "x", "--log", db, "--db", db), "--db")


def test_log_table(cli, tmp_home):
    cli("llm", "chat", "mock", "a question about tables")
    r = cli("llm", "log", "-n", "5")
    assert r.exit_code == 0 and "mock" in r.stdout and "cli.chat" in r.stdout and "ok" in r.stdout


def test_chat_against_stub_server(cli, monkeypatch):
    with StubServer() as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        r = cli("llm", "chat", "openai/stub", "ping")
    assert r.exit_code == 0 and r.stdout.strip() == "stub reply to: ping"


def test_unknown_model_string(cli, tmp_home):
    r = cli("llm", "chat", "gpt5-please", "hi")
    _assert_one_line_error(r, "gpt5-please", "openai/<model>")
    assert not (tmp_home / "logs.db").exists()  # nothing written


def test_missing_key_for_real_openai(cli, tmp_home):
    r = cli("llm", "chat", "openai/gpt-4o-mini", "hi")
    _assert_one_line_error(r, "OPENAI_API_KEY", "openai/gpt-4o-mini")
    assert not (tmp_home / "logs.db").exists()


def test_unreachable_base_url(cli, monkeypatch):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    r = cli("llm", "chat", "openai/any", "hi", "--max-retries", "1")
    _assert_one_line_error(r, f"127.0.0.1:{port}", "connection error")


def test_corrupt_db(cli, tmp_path):
    bad = tmp_path / "calls.db"
    bad.write_bytes(b"\x00garbage, not sqlite" * 500)
    _assert_one_line_error(cli("llm", "log", "--db", bad), str(bad))
    _assert_one_line_error(cli("llm", "chat", "mock", "hi", "--db", bad), str(bad))


def test_log_missing_db(cli, tmp_path):
    _assert_one_line_error(cli("llm", "log", "--db", tmp_path / "nope.db"), "nope.db")


def test_missing_gguf_file(cli, tmp_path):
    _assert_one_line_error(cli("llm", "chat", f"gguf:{tmp_path}/missing.gguf", "hi"), "missing.gguf")


def test_bad_gguf_file(cli, tmp_path):
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a model")
    _assert_one_line_error(cli("llm", "chat", f"gguf:{fake}", "hi"), "fake.gguf")


# Runs the CLI with SIGINT ignored, as a shell starts a background job (`make test &`): Python then never
# raises KeyboardInterrupt, so the server must handle the signal itself.
_SIGINT_IGNORED = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execv(sys.executable, [sys.executable, '-m', 'persona_testbed', *sys.argv[1:]])"
)


@pytest.mark.parametrize(
    "sig,inherited", [("SIGINT", "default"), ("SIGINT", "ignored"), ("SIGTERM", "default")]
)
def test_stub_server_command_serves_until_interrupted(sig, inherited):
    from persona_testbed.llm import ChatParams, LLMClient

    launch = (
        [sys.executable, "-m", "persona_testbed"]
        if inherited == "default"
        else [sys.executable, "-c", _SIGINT_IGNORED]
    )
    proc = subprocess.Popen(
        [*launch, "llm", "stub-server", "--port", "0", "--latency-ms", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # readiness is explicit: the server prints its address once it listens and handles the signals
        first = proc.stdout.readline()
        ready = re.match(r"stub server on (http://127\.0\.0\.1:\d+/v1) ", first)
        assert ready, first + proc.stdout.read()
        c = LLMClient("openai/stub", base_url=ready.group(1))
        r = c.chat_sync([{"role": "user", "content": "drill"}], params=ChatParams(max_tokens=5))
        c.close()
        assert r.ok and r.text == "stub reply to: drill"
    finally:
        proc.send_signal(getattr(signal, sig))
        out, _ = proc.communicate(timeout=60)  # a safety net only: shutdown takes well under a second
    assert proc.returncode == 0, out
    assert "served 1 requests" in out and f"(stopped by {sig})" in out


def test_stub_server_is_quiet_when_a_client_hangs_up(capsys):
    """A client that resets the connection mid-reply (a cancelled call, a refused download) left a traceback
    on stderr, inside the output of the command under test; under load that broke one-line-error tests."""
    from persona_testbed.llm.stub_server import StubServer

    with StubServer() as srv:
        try:
            raise ConnectionResetError(104, "Connection reset by peer")
        except ConnectionResetError:
            srv._httpd.handle_error(None, ("127.0.0.1", 1))
        assert capsys.readouterr().err == ""
        try:
            raise ValueError("a real bug in a handler")
        except ValueError:
            srv._httpd.handle_error(None, ("127.0.0.1", 1))
        assert "ValueError: a real bug in a handler" in capsys.readouterr().err
