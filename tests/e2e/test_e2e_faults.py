"""Fault drill: ~30% of requests fail (429, 5xx, resets, timeouts, truncated / invalid JSON). The run
completes, every item ends as a result or a recorded failure with its reason, status reports them, and
`run --retry-failed` retries only those (no finished call is repeated)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from e2e_tools import schema_responder, stub_config, e2e_env, shared_home  # noqa: F401 (fixtures)

from persona_testbed.llm.stub_server import StubServer


def _rows(db: Path) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT id, cache_key, status FROM calls").fetchall()
    finally:
        conn.close()


def test_faults_recorded_then_retry_failed_only(cli, e2e_env, mirror, tmp_path):
    with StubServer(responder=schema_responder, fault_rate=0.3, seed=5, slow_s=1.5) as srv:
        # the prompt classifier is off here: a retried classification changes the prompt set (and so
        # every pair plan); with it off, the finished pairs must come through a retry untouched
        cfg = stub_config(tmp_path, mirror, srv.base_url, max_retries=1, timeout_s=0.75, concurrency=1,
                          pairs=(2, 1, 1), classify=False)
        out = tmp_path / "run"
        r = cli("run", cfg, "--out", out, "--quiet")
        assert r.exit_code == 0, r.stderr
        assert srv.stats["requests"] > srv.stats["ok"] > 0  # faults were injected
        assert sum(srv.stats[f"fault_{k}"] for k in ("429", "500", "503", "reset", "slow", "truncated", "invalid_json")) > 5

        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["status"] == "done"
        pairs = [json.loads(x) for x in (out / "feedback" / "pairs.jsonl").read_text().splitlines()]
        assert len(pairs) == 3 * 4 and len({p["id"] for p in pairs}) == 12  # every planned pair: no drop
        failed_pairs = {p["id"] for p in pairs if p["status"] == "failed"}
        assert all(p["error"] for p in pairs if p["status"] == "failed")
        recorded = {f["item"]: f["reason"] for f in manifest["stages"]["feedback"]["failures"]}
        assert set(recorded) == failed_pairs
        bench_rec = manifest["stages"]["bench"]
        assert bench_rec["items"] == bench_rec["ok"] + bench_rec["failed"] - sum(
            1 for f in bench_rec["failures"] if f["item"].startswith("task:"))
        total_failed = sum(rec.get("failed", 0) for rec in manifest["stages"].values())
        assert total_failed > 0, "a 30% fault rate with one retry should leave some failures"

        status = json.loads(cli("status", out, "--json").stdout)
        assert status["totals"]["failed_items"] == total_failed
        assert status["totals"]["failed"] > 0  # failed calls in the call log
        for s in status["stages"]:
            assert len(s["failures"]) == s["failed"]
            assert all(f["reason"] for f in s["failures"])
        text = cli("status", out).stdout
        assert "failed item" in text

        # retry with a healthy server: only the failures reach the model
        before = _rows(out / "calls.db")
        ok_keys = {k for _, k, st in before if st == "ok"}
        ok_pairs_before = {p["id"]: p for p in pairs if p["status"] == "ok"}
        srv.fault_rate = 0.0
        requests_before = srv.stats["requests"]
        r = cli("run", "--retry-failed", out, "--quiet")
        assert r.exit_code == 0, r.stderr
        after = _rows(out / "calls.db")
        new = after[len(before):]
        assert len(new) == srv.stats["requests"] - requests_before > 0
        assert not [k for _, k, _ in new if k in ok_keys], "a finished call was repeated"
        final = json.loads((out / "manifest.json").read_text())
        assert sum(rec.get("failed", 0) for rec in final["stages"].values()) == 0
        pairs2 = {p["id"]: p for p in map(json.loads, (out / "feedback" / "pairs.jsonl").read_text().splitlines())}
        assert set(pairs2) == {p["id"] for p in pairs}
        for pid, p in ok_pairs_before.items():  # finished pairs are untouched
            assert pairs2[pid] == p
        assert all(p["status"] == "ok" for p in pairs2.values())

        # nothing left to retry: a second retry makes no request
        requests_before = srv.stats["requests"]
        assert cli("run", "--retry-failed", out, "--quiet").exit_code == 0
        assert srv.stats["requests"] == requests_before
