"""CLI for the llm group: ``chat`` (smoke-test a backend), ``log`` (recent calls), ``stub-server``."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import typer

from ..core.errors import UserError
from ..core.output import console, emit, err_console, print_json
from ..core.settings import home_dir
from ..llm.client import LLMClient
from ..llm.store import CallStore
from ..llm.stub_server import StubServer
from ..llm.types import ChatParams

app = typer.Typer(no_args_is_help=True, help="Models: chat with a backend, browse the call log.")


DB_HELP = "Call-log database (default: <home>/logs.db; a run's is <run>/calls.db)."


def default_log_db() -> Path:
    """The call log used outside a run: ``<home>/logs.db``."""
    return home_dir() / "logs.db"


@app.command("chat")
def chat_cmd(
    model: str = typer.Argument(
        ..., help="Model string: embedded, gguf:/path/model.gguf, openai/<model>, mock."
    ),
    text: str = typer.Argument(..., help="The user message."),
    system: str | None = typer.Option(None, "--system", "-s", help="System message."),
    temperature: float = typer.Option(0.7, "--temperature", "-t", help="Sampling temperature."),
    max_tokens: int = typer.Option(256, "--max-tokens", help="Maximum tokens to generate."),
    seed: int | None = typer.Option(None, "--seed", help="Sampling seed."),
    max_retries: int = typer.Option(5, "--max-retries", help="Retries on transient faults."),
    timeout: float = typer.Option(120.0, "--timeout", help="Per-request timeout in seconds."),
    base_url: str | None = typer.Option(
        None, "--base-url", help="OpenAI-compatible base URL (default: $OPENAI_BASE_URL)."
    ),
    db: Path | None = typer.Option(None, "--db", help=DB_HELP),
    old_db: Path | None = typer.Option(None, "--log", hidden=True, help="Deprecated spelling of --db."),
    as_json: bool = typer.Option(False, "--json", help="Print the full ChatResult as JSON."),
) -> None:
    """Send one message to a model and print the reply (logged and cached in the call log)."""
    if max_tokens < 1:
        raise UserError(f"--max-tokens must be at least 1, got {max_tokens}")
    if old_db is not None:
        if db is not None:
            raise UserError("give the call-log database once: --db (--log is its deprecated spelling)")
        err_console.print("warning: --log is deprecated; use --db", highlight=False)
        db = old_db
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": text}
    ]
    params = ChatParams(temperature=temperature, max_tokens=max_tokens, seed=seed)
    # the client first: a bad model string or missing key must not leave a fresh log file behind
    client = LLMClient(model, max_retries=max_retries, timeout_s=timeout, base_url=base_url)
    with CallStore(db or default_log_db()) as store, client:
        client.store = store
        result = client.chat_sync(messages, params=params, purpose="cli.chat")
    if as_json:
        print_json(result.model_dump(mode="json"))
        if not result.ok:
            raise typer.Exit(2)
        return
    if not result.ok:
        raise UserError(f"{model}: {result.error}")
    typer.echo(result.text)


def _first(s: object, n: int = 40) -> str:
    t = " ".join(str(s or "").split())
    return t if len(t) <= n else t[: n - 1] + "…"


@app.command("log")
def log_cmd(
    db: Path | None = typer.Option(None, "--db", help=DB_HELP),
    n: int = typer.Option(20, "-n", "--count", help="How many recent calls to show."),
    as_json: bool = typer.Option(False, "--json", help="Print full rows as JSON."),
) -> None:
    """Show recent calls: time, model, purpose, status, tokens, latency, prompt and response."""
    path = db or default_log_db()
    if not path.exists():
        raise UserError(f"{path}: no call log there (run `persona-testbed llm chat` or a pipeline first)")
    with CallStore(path) as store:
        rows = store.recent(n)
    if as_json:
        print_json(rows)
        return
    table_rows = []
    for r in rows:
        prompt = next((m.get("content") for m in reversed(r["messages"]) if m.get("role") == "user"), "")
        table_rows.append(
            (
                r["created"][5:19].replace("T", " "),
                r["model"],
                r["purpose"],
                r["status"],
                r["prompt_tokens"] + r["completion_tokens"],
                f"{r['latency_s']:.2f}s",
                _first(prompt),
                _first(r["response"] if r["status"] == "ok" else r["error"]),
            )
        )
    emit(
        rows,
        False,
        ["time", "model", "purpose", "status", "tokens", "latency", "prompt", "response"],
        table_rows,
        title=f"{len(rows)} recent calls in {path}",
    )


@app.command("stub-server")
def stub_server_cmd(
    port: int = typer.Option(8099, "--port", help="Port on 127.0.0.1 (0 picks a free one)."),
    fault_rate: float = typer.Option(0.0, "--fault-rate", help="Share of requests that get a fault (0..1)."),
    latency_ms: float = typer.Option(0.0, "--latency-ms", help="Fixed latency added to every request."),
    seed: int = typer.Option(0, "--seed", help="Seed of the fault sequence."),
    retry_after: str = typer.Option("1", "--retry-after", help="Retry-After header sent with 429 faults."),
    slow_s: float = typer.Option(30.0, "--slow-s", help="How long a 'slow' fault stalls."),
) -> None:
    """Serve a loopback OpenAI-compatible stub (echo replies, seeded faults) until Ctrl-C or SIGTERM."""
    if not 0.0 <= fault_rate <= 1.0:
        raise UserError(f"--fault-rate must be between 0 and 1, got {fault_rate}")
    try:
        srv = StubServer(
            port=port,
            latency_s=latency_ms / 1000.0,
            fault_rate=fault_rate,
            seed=seed,
            retry_after=retry_after,
            slow_s=slow_s,
        )
    except OSError as exc:
        raise UserError(f"cannot listen on 127.0.0.1:{port}: {exc}") from None
    start = time.time()

    def announce() -> None:  # once it listens and the stop signals are handled: one line, never wrapped
        console.print(
            f"stub server on {srv.base_url} (fault rate {fault_rate}, latency {latency_ms:g} ms); "
            f"use OPENAI_BASE_URL={srv.base_url} with model openai/stub. Ctrl-C stops.",
            soft_wrap=True,
            highlight=False,
        )

    signum = srv.serve_until_signal(on_ready=announce)
    console.print(
        f"served {srv.stats.get('requests', 0)} requests in {time.time() - start:.0f}s: "
        f"{dict(srv.stats)} (stopped by {signal.Signals(signum).name})",
        soft_wrap=True,
        highlight=False,
    )
