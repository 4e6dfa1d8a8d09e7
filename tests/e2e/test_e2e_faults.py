"""Fault drill: ~30% of requests fail (429, 5xx, resets, timeouts, truncated / invalid JSON). The run
completes, every item ends as a result or a recorded failure with its reason, status reports them, and
`run --retry-failed` retries only those (no finished call is repeated).

The prompt classifier is on: a failed classification drops its prompt from the kept set, which changes
the pair plan. The split is keyed per prompt and the clusters are fitted on the classifier's input, so
the faulty run's kept prompts keep their cluster and (but for boundary prompts) their side, and after
`--retry-failed` the prompt split and the pair plan equal those of a fault-free run."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from e2e_tools import e2e_env, schema_responder, shared_home, stub_config  # noqa: F401 (fixtures)

from persona_testbed.llm.stub_server import StubServer
from persona_testbed.prompts.cluster import side_changes_bound


def _rows(db: Path) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT id, cache_key, status FROM calls").fetchall()
    finally:
        conn.close()


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def _split_of(run: Path) -> dict[str, tuple]:
    """prompt id -> (kept, cluster, cluster label, split)."""
    return {
        p["id"]: (p["kept"], p["cluster"], p["cluster_label"], p["split"])
        for p in _jsonl(run / "prompts" / "prompts.jsonl")
    }


def _plan_of(run: Path) -> list[tuple]:
    return sorted(
        (p["id"], p["persona_id"], p["prompt_id"], p["split"])
        for p in _jsonl(run / "feedback" / "pairs.jsonl")
    )


def test_faults_recorded_then_retry_failed_only(cli, e2e_env, mirror, tmp_path):
    with StubServer(responder=schema_responder, fault_rate=0.0, seed=5, slow_s=1.5) as srv:
        cfg = stub_config(
            tmp_path,
            mirror,
            srv.base_url,
            max_retries=1,
            timeout_s=0.75,
            concurrency=1,
            pairs=(2, 1, 1),
            classify=True,
        )
        # the fault-free reference (the stub draws no fault number while fault_rate is 0)
        ref = tmp_path / "reference"
        r = cli("run", cfg, "--out", ref, "--quiet")
        assert r.exit_code == 0, r.stderr
        ref_split = _split_of(ref)
        assert all(kept for kept, *_ in ref_split.values()) and len(ref_split) == 12
        srv.fault_rate = 0.3
        srv.stats.clear()
        out = tmp_path / "run"
        r = cli("run", cfg, "--out", out, "--quiet")
        assert r.exit_code == 0, r.stderr
        assert srv.stats["requests"] > srv.stats["ok"] > 0  # faults were injected
        assert (
            sum(
                srv.stats[f"fault_{k}"]
                for k in ("429", "500", "503", "reset", "slow", "truncated", "invalid_json")
            )
            > 5
        )

        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["status"] == "done"
        # some classifications failed: those prompts left the kept set, the others kept their cluster
        # and, but for at most the bounded boundary prompts per cluster, their side
        split1 = _split_of(out)
        dropped = [pid for pid, (kept, *_) in split1.items() if not kept]
        assert dropped and {f["item"] for f in manifest["stages"]["prompts"]["failures"]} == set(dropped)
        kept1 = {pid: v for pid, v in split1.items() if v[0]}
        assert all(v[1:3] == ref_split[pid][1:3] for pid, v in kept1.items())
        bound = side_changes_bound(
            {pid: v[1] for pid, v in ref_split.items()}, {pid: v[1] for pid, v in kept1.items()}, 0.34
        )
        moved = [pid for pid, v in kept1.items() if v[3] != ref_split[pid][3]]
        for c, b in bound.items():
            assert sum(1 for pid in moved if ref_split[pid][1] == c) <= b
        pairs = [json.loads(x) for x in (out / "feedback" / "pairs.jsonl").read_text().splitlines()]
        assert len(pairs) == 3 * 4 and len({p["id"] for p in pairs}) == 12  # every planned pair: no drop
        failed_pairs = {p["id"] for p in pairs if p["status"] == "failed"}
        assert all(p["error"] for p in pairs if p["status"] == "failed")
        recorded = {f["item"]: f["reason"] for f in manifest["stages"]["feedback"]["failures"]}
        assert set(recorded) == failed_pairs
        bench_rec = manifest["stages"]["bench"]
        assert bench_rec["items"] == bench_rec["ok"] + bench_rec["failed"] - sum(
            1 for f in bench_rec["failures"] if f["item"].startswith("task:")
        )
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
        new = after[len(before) :]
        assert len(new) == srv.stats["requests"] - requests_before > 0
        assert not [k for _, k, _ in new if k in ok_keys], "a finished call was repeated"
        final = json.loads((out / "manifest.json").read_text())
        assert sum(rec.get("failed", 0) for rec in final["stages"].values()) == 0
        pairs2 = {
            p["id"]: p for p in map(json.loads, (out / "feedback" / "pairs.jsonl").read_text().splitlines())
        }
        # the retried classifications restore the fault-free prompt split and pair plan
        assert _split_of(out) == ref_split
        assert _plan_of(out) == _plan_of(ref)
        assert len(pairs2) == 12
        kept_pairs = set(ok_pairs_before) & set(pairs2)
        assert kept_pairs, "the plan kept none of the finished pairs"
        for pid in kept_pairs:  # finished pairs still in the plan are untouched
            assert pairs2[pid] == ok_pairs_before[pid]
        assert all(p["status"] == "ok" for p in pairs2.values())

        # nothing left to retry: a second retry makes no request
        requests_before = srv.stats["requests"]
        assert cli("run", "--retry-failed", out, "--quiet").exit_code == 0
        assert srv.stats["requests"] == requests_before
