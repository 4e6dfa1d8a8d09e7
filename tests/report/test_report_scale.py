"""The report at scale: compact embedded data, noise TVD, notes for empty plots, leaderboard, latency vs queue."""

from __future__ import annotations

import asyncio
import json
import re

import numpy as np
import pytest
from report_fixtures import write_synthetic_run

from persona_testbed.llm import CallStore, LLMClient
from persona_testbed.llm.backends.base import BackendReply
from persona_testbed.llm.types import ChatParams, Usage
from persona_testbed.pipeline.status import call_stats, run_status
from persona_testbed.pipeline.view import load_run
from persona_testbed.report.build import (
    _figure,
    browser_data,
    decode_browser_data,
    encode_browser_data,
    noise_tvd,
    render_html,
    text_cap,
)


def test_noise_tvd_matches_brute_force_and_shrinks_with_n():
    shares = {"a": 0.5, "b": 0.3, "c": 0.2}
    # brute force: exact expectation over every multinomial outcome at n = 6
    from itertools import product
    from math import factorial

    n, p = 6, np.array([0.5, 0.3, 0.2])
    exact = 0.0
    for k in product(range(n + 1), repeat=2):
        if sum(k) > n:
            continue
        c = np.array([k[0], k[1], n - sum(k)])
        prob = factorial(n) / np.prod([factorial(x) for x in c]) * np.prod(p**c)
        exact += prob * 0.5 * np.abs(c / n - p).sum()
    assert noise_tvd(shares, 6, draws=20000) == pytest.approx(exact, abs=0.005)
    assert noise_tvd(shares, 1586) < noise_tvd(shares, 100) < noise_tvd(shares, 6)
    assert noise_tvd({}, 10) is None and noise_tvd(shares, 0) is None


def test_all_zero_or_undefined_plot_is_a_one_line_note():
    assert "note" in _figure("pass@k", [0, 0.0, None, float("nan")], lambda: "never drawn")
    assert _figure("pass@k", [0, 0.2], lambda: "img") == {"img": "img"}
    run = write_synthetic_run_with_zero_bench()
    html = render_html(load_run(run))
    assert 'class="plot-note">pass@k: every value is zero or undefined; nothing to plot.</p>' in html
    assert "accuracy per mode: every value is zero or undefined" in html


def write_synthetic_run_with_zero_bench(root=None):
    import tempfile
    from pathlib import Path

    run = write_synthetic_run(Path(root or tempfile.mkdtemp()) / "run")
    (run / "bench" / "summary.json").write_text(
        json.dumps(
            {
                "main": {
                    "modes": [{"mode": "persona", "accuracy": 0.0, "ci_low": 0.0, "ci_high": 0.0, "n": 4}]
                },
                "passk": {"k": [1, 2], "pass_at_k": [0.0, None]},
            }
        )
    )
    return run


def test_text_cap_fits_budget():
    assert text_cap([10, 20, 30], budget=100) is None
    cap = text_cap([10, 200, 3000], budget=500)
    assert sum(min(n, cap) for n in [10, 200, 3000]) <= 500 < sum(min(n, cap + 1) for n in [10, 200, 3000])


def test_browser_data_is_compact_and_round_trips():
    data = {
        "personas": [
            {
                "id": f"p{i}",
                "source": {},
                "flagged": False,
                "fields": [
                    {"name": "sex", "value": "Female", "provenance": "census", "detail": "{}"},
                    {
                        "name": "occupation category",
                        "value": f"job {i % 3}",
                        "provenance": "census",
                        "detail": "{}",
                    },
                ],
            }
            for i in range(300)
        ],
        "n_personas": 300,
        "pairs": None,
    }
    payload = browser_data(data)
    assert len(payload["strings"]) == 300 + 1 + 3 + 1 + 1 + 1  # ids, Female, jobs, census, {}, "" (source)
    blob = encode_browser_data(payload)
    assert decode_browser_data(blob) == payload and re.fullmatch(r"[A-Za-z0-9+/=]+", blob)
    assert encode_browser_data(payload) == blob  # deterministic bytes


def test_leaderboard_table_and_chart_in_report(cli, tmp_path):
    from factories import make_persona
    from persona_testbed.bench.leaderboard import Comparison, comparison_view
    from persona_testbed.personas.io import write_personas

    crowd = [make_persona(f"c{i:02d}", age=str(20 + i)) for i in range(12)]
    write_personas(crowd, tmp_path / "personas")
    q = tmp_path / "prompts.jsonl"
    q.write_text(
        "".join(json.dumps({"id": f"w{i}", "text": f"Q {i}?", "split": "held_out"}) + "\n" for i in range(4))
    )
    args = [
        "bench",
        "run",
        "main",
        "--judge",
        "scripted:p=1",
        "--personas",
        tmp_path / "personas",
        "--prompts",
        q,
        "--n",
        24,
        "--mode",
        "persona",
        "--resamples",
        200,
        "--out",
        tmp_path / "b",
        "--json",
    ]
    for c in ("scripted:p=0.9", "scripted:p=0.5", "scripted:p=0.1"):
        args += ["--candidate", c]
    r = cli(*args)
    assert r.exit_code == 0, r.stderr
    comp = Comparison.model_validate(json.loads(r.stdout))
    run = write_synthetic_run(tmp_path / "run", evil=False)
    summary = json.loads((run / "bench" / "summary.json").read_text())
    summary["leaderboards"] = {"main": comparison_view(comp)}
    (run / "bench" / "summary.json").write_text(json.dumps(summary))
    html = render_html(load_run(run))
    assert 'id="leaderboard-main"' in html and html.count("scripted:p=0.9") >= 3
    assert 'alt="main leaderboard"' in html
    assert html.count("data:image/png;base64,") == 1 + 2 + 5 + 1


class _SlowBackend:
    kind = "mock"
    model_id = model_string = "slow"

    async def complete(self, messages, params, structured):
        await asyncio.sleep(0.03)
        return BackendReply(text="ok", usage=Usage(prompt_tokens=2, completion_tokens=3))

    async def aclose(self):
        return None


def test_status_and_report_separate_model_latency_from_queue_wait(tmp_path):
    """Concurrency 1, four calls at once: three wait for the slot; the log keeps both figures apart."""
    run = write_synthetic_run(tmp_path / "run", evil=False)
    (run / "calls.db").unlink()
    store = CallStore(run / "calls.db")

    async def go():
        client = LLMClient(backend=_SlowBackend(), store=store, concurrency=1)
        await asyncio.gather(
            *(
                client.chat(
                    [{"role": "user", "content": f"q{i}"}],
                    params=ChatParams(),
                    purpose="bench.main.candidate",
                )
                for i in range(4)
            )
        )
        await client.aclose()

    asyncio.run(go())
    store.close()
    stats = call_stats(run / "calls.db")["bench"]
    assert stats["calls"] == 4 and stats["model_s"] > 0 and stats["queue_s"] > 0
    # the queue wait is the time others held the one slot: at least the first call's request duration
    assert stats["queue_s"] >= stats["model_s"] / 4
    status = run_status(run)
    assert status["totals"]["queue_s"] == stats["queue_s"]
    html = render_html(load_run(run))
    assert f'{stats["queue_s"]:.1f} s <span class="muted">(calls waiting' in html
