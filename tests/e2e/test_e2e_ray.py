"""The Ray executor on a local Ray instance (2 CPUs) against the loopback stub (issue 15 item 2).

A stage run with ``--executor ray`` answers each wave's pending requests in Ray Data workers and ends with
byte-identical artifacts to ``local``; a worker that keeps failing is retried, then its requests are failures
recorded as data. Skipped when the optional extra is not installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'persona-testbed[ray]')")

from e2e_tools import e2e_env, schema_responder, shared_home, stub_config, write_prompts_file  # noqa: E402,F401

from persona_testbed.llm.deferred import BatchStore, request_body  # noqa: E402
from persona_testbed.llm.stub_server import StubServer  # noqa: E402
from persona_testbed.llm.types import ChatParams  # noqa: E402
from persona_testbed.pipeline.config import LLMConfig, RayConfig  # noqa: E402
from persona_testbed.pipeline.ray_executor import RayExecutor  # noqa: E402

#: time, and how many calls a stage replayed from the cache (a resumed local run differs the same way)
VOLATILE = {"seconds", "render_s", "duration_s", "started", "finished", "updated", "paths", "cached"}


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.fixture
def stub(monkeypatch):
    with StubServer(responder=schema_responder, seed=11) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        yield srv


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _same(a: Path, b: Path) -> None:
    if a.suffix == ".json":
        assert _strip(json.loads(a.read_text())) == _strip(json.loads(b.read_text())), (a, b)
    else:
        assert a.read_bytes() == b.read_bytes(), (a, b)


def test_prompts_stage_on_ray_matches_local(cli, local_ray, stub, tmp_path):
    q = write_prompts_file(tmp_path / "q.txt")
    args = (
        "prompts",
        "build",
        "--source",
        q,
        "--model",
        "openai/stub",
        "--seed",
        "3",
        "--clusters",
        "2",
        "--json",
    )
    assert cli(*args, "--out", tmp_path / "local").exit_code == 0
    online = stub.stats["ok"]
    r = cli(*args, "--out", tmp_path / "ray", "--executor", "ray")
    assert r.exit_code == 0, r.stderr
    assert stub.stats["ok"] == 2 * online  # every request went once more, from the Ray workers
    for name in ("prompts.jsonl", "prompts.parquet", "summary.json"):
        _same(tmp_path / "local" / name, tmp_path / "ray" / name)
    assert {w.name for w in BatchStore(tmp_path / "ray").waves()} == {"prompts-ray-001"}
    # a re-run replays everything from the call log: no request reaches the stub or Ray
    assert cli(*args, "--out", tmp_path / "ray", "--executor", "ray").exit_code == 0
    assert stub.stats["ok"] == 2 * online


def test_worker_failure_is_retried_then_recorded(local_ray, tmp_path, monkeypatch):
    store = BatchStore(tmp_path)
    good = request_body("stub", [{"role": "user", "content": "hi"}], ChatParams(), None)
    bad = {"model": "stub"}  # no messages: the worker raises on it every time
    with StubServer() as srv:
        ex = RayExecutor(RayConfig(workers=1, batch_size=1, task_retries=1), LLMConfig(base_url=srv.base_url))
        done = ex.run_wave(store, "s", {"a-good": good, "b-bad": bad})
    assert done <= 1
    code, _, error = store.reply("b-bad")
    assert code is None and error.startswith("ray worker failed")
    assert store.reply("a-good") is not None


@pytest.mark.shared_data
def test_run_on_ray_matches_local(cli, e2e_env, mirror, local_ray, tmp_path, monkeypatch):
    with StubServer(responder=schema_responder, seed=11) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        cfg = stub_config(tmp_path, mirror, srv.base_url, enrich=True)
        r = cli("run", cfg, "--out", tmp_path / "local", "--quiet")
        assert r.exit_code == 0, r.stderr
        r = cli("run", cfg, "--out", tmp_path / "ray", "--quiet", "--executor", "ray")
        assert r.exit_code == 0, r.stderr
    for rel in (
        "enrich/personas.jsonl",
        "enrich/enrich_report.json",
        "prompts/prompts.jsonl",
        "feedback/pairs.jsonl",
        "feedback/pairs.parquet",
        "feedback/stats.json",
        "bench/main/items.parquet",
        "bench/main/results.json",
        "bench/passk/results.json",
    ):
        _same(tmp_path / "local" / rel, tmp_path / "ray" / rel)


def test_unreachable_ray_address_is_one_line():
    from persona_testbed.core.errors import UserError
    from persona_testbed.pipeline.ray_executor import check_reachable

    with pytest.raises(UserError, match=r"cannot reach Ray at 127.0.0.1:9: .*RAY_ADDRESS"):
        check_reachable("127.0.0.1:9", timeout_s=2)
    with pytest.raises(UserError, match="expected host:port"):
        check_reachable("nonsense")
