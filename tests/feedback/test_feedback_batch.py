"""Feedback pairs through the batch executor: a request whose batch reply is an error is one failed call.

Feedback advances one step per wave (rejected -> critique -> chosen -> validation), and every earlier step
replays from the batch store on each later wave. A failure replayed that way is the same call, not a new one:
it is logged once, so ``status`` counts it once however many waves the stage takes.
"""

from __future__ import annotations

import json
import sqlite3

from persona_testbed.llm.batch_stub import run_batch_file
from persona_testbed.llm.deferred import BatchStore


def _generate(cli, personas, prompts, out, *extra):
    return cli(
        "feedback",
        "generate",
        "--personas",
        personas,
        "--prompts",
        prompts,
        "--model",
        "openai/stub",
        "--out",
        out,
        "--train",
        "2",
        "--test",
        "1",
        "--held-out",
        "1",
        "--json",
        *extra,
    )


def _failed_rows(out):
    with sqlite3.connect(out / "calls.db") as db:
        return db.execute("SELECT cache_key, error FROM calls WHERE status != 'ok'").fetchall()


def test_replayed_batch_failure_is_logged_once(cli, tmp_path, input_files, scripted, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    personas, prompts = input_files
    out = tmp_path / "fb"
    responder = lambda body: scripted(body["messages"])  # noqa: E731
    failing: set[str] = set()
    r = _generate(cli, personas, prompts, out, "--executor", "batch")
    waves = 0
    while r.exit_code == 4:
        waves += 1
        assert waves < 20, r.stderr
        store = BatchStore(out)
        outs = []
        for wave in store.waves():
            for f in wave.files:
                src = store.root / f
                dst = src.with_name(src.name.replace("requests-", "results-"))
                if dst.exists():
                    continue
                fail = frozenset()
                if not failing:  # the first request of the first wave gets an HTTP 500 result line
                    first = json.loads(src.read_text().splitlines()[0])["custom_id"]
                    failing.add(first)
                    fail = frozenset({first})
                run_batch_file(src, dst, responder=responder, fail=fail)
                outs.append(dst)
        store.close()
        assert cli("batch", "ingest", out, *outs).exit_code == 0
        r = _generate(cli, personas, prompts, out, "--executor", "batch")
    assert r.exit_code == 0, r.stderr
    assert waves >= 3  # the failure of wave 1 is replayed by every later wave
    stats = json.loads(r.stdout)
    assert stats["pairs"] == 12 and stats["failed"] == 1

    rows = _failed_rows(out)
    assert len(rows) == 1, rows  # one failed request, one failed row (not one per wave)
    assert "batch HTTP 500" in rows[0][1]
    status = json.loads(cli("status", out, "--json").stdout)
    feedback = {s["stage"]: s for s in status["stages"]}["feedback"]
    assert feedback["calls_failed"] == 1 and status["totals"]["failed"] == 1

    # a re-run retries the failed pair: it replays the same failure (every call of this pass fails, exit 3
    # as online) and logs nothing new
    calls = sqlite3.connect(out / "calls.db").execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    r = _generate(cli, personas, prompts, out, "--executor", "batch")
    assert r.exit_code == 3 and "batch HTTP 500" in r.stderr, r.stderr
    assert sqlite3.connect(out / "calls.db").execute("SELECT COUNT(*) FROM calls").fetchone()[0] == calls
    assert len(_failed_rows(out)) == 1
