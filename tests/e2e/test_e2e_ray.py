"""The Ray executor on a local Ray instance (2 CPUs) against the loopback stub (issue 15 item 2).

A stage run with ``--executor ray`` answers each wave's pending requests in Ray Data workers and ends with
byte-identical artifacts to ``local``; a worker that keeps failing is retried, then its requests are failures
recorded as data. Skipped when the optional extra is not installed.
"""

from __future__ import annotations

import json
import sqlite3
from importlib.util import find_spec
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
    waves = BatchStore(tmp_path / "ray").waves()  # one per Ray block, saved as it arrived
    assert all(w.name.startswith("prompts-ray-") for w in waves), waves
    assert sum(w.requests for w in waves) == online
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


# -- vllm/ models: ray.data.llm's vLLM processor, with a CPU stand-in for the engine ------------------------


def _cpu_vllm_processor(fail_marker: str):
    """A processor shaped like ``ray.data.llm``'s vLLM one (preprocess → engine → postprocess; an engine
    error row skips postprocess), whose engine is ``schema_responder`` on the CPU. Rows whose prompt
    contains ``fail_marker`` fail in the engine."""
    import e2e_tools

    from persona_testbed.llm.vllm_rows import ERROR_COLUMN, postprocess, preprocess

    ray.cloudpickle.register_pickle_by_value(e2e_tools)  # the Ray workers cannot import the test helpers
    seen = []

    def build(source, cfg):
        seen.append((source, cfg))

        def engine(row):
            body = json.loads(row["body"])
            assert "messages" in row and row["sampling_params"]["max_tokens"] == body["max_tokens"]
            if body.get("response_format"):  # the schema reached the engine as structured output
                want = body["response_format"]["json_schema"]["schema"]
                assert row["sampling_params"]["structured_outputs"] == {"json": want}
            if any(fail_marker in m["content"] for m in row["messages"]):
                return {**row, ERROR_COLUMN: "engine died on this prompt"}
            text = e2e_tools.schema_responder(body)
            return {**row, "generated_text": text, "num_input_tokens": 9, "num_generated_tokens": 3}

        def post(row):
            return row if row.get(ERROR_COLUMN) else postprocess(row)

        return lambda ds: ds.map(preprocess).map(engine).map(post)

    return build, seen


def test_vllm_model_runs_through_the_vllm_processor(cli, local_ray, tmp_path, monkeypatch):
    from persona_testbed.pipeline import ray_vllm

    build, seen = _cpu_vllm_processor(fail_marker="eating meat")
    monkeypatch.setattr(ray_vllm, "build_vllm_processor", build)
    monkeypatch.setattr(ray_vllm, "require_vllm", lambda: None)  # the stand-in needs no vLLM
    q = write_prompts_file(tmp_path / "q.txt")
    out = tmp_path / "vllm"
    r = cli(
        "prompts", "build", "--source", q, "--model", "vllm/Qwen/Qwen2.5-0.5B-Instruct", "--seed", "3",
        "--clusters", "2", "--json", "--out", out, "--executor", "ray",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert seen and seen[0][0] == "Qwen/Qwen2.5-0.5B-Instruct"
    store = BatchStore(out)
    sources = {row[0] for row in store._db().execute("SELECT DISTINCT source FROM replies")}
    store.close()
    assert sources == {"vllm"}
    db = sqlite3.connect(out / "calls.db")
    models = {m for (m,) in db.execute("SELECT DISTINCT model FROM calls")}
    ok = db.execute("SELECT COUNT(*) FROM calls WHERE status = 'ok'").fetchone()[0]
    errors = [e for (e,) in db.execute("SELECT error FROM calls WHERE status = 'failed'")]
    db.close()
    assert models == {"vllm/Qwen/Qwen2.5-0.5B-Instruct"}
    assert ok > 0 and errors  # the engine's failure is a failed call, recorded as data
    assert all("vllm: engine died on this prompt" in e for e in errors)
    record = json.loads((out / "manifest.json").read_text())["stages"]["prompts"]
    assert record["status"] == "done", record


def test_vllm_model_on_the_local_executor_is_one_line(cli, tmp_path):
    q = write_prompts_file(tmp_path / "q.txt")
    r = cli(
        "prompts",
        "build",
        "--source",
        q,
        "--model",
        "vllm/Qwen/Qwen2.5-0.5B-Instruct",
        "--out",
        tmp_path / "o",
    )
    assert r.exit_code == 2
    assert "--executor ray" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(
    find_spec("vllm") is not None, reason="vLLM is installed here: the missing-extra error cannot show"
)
def test_vllm_model_without_the_extra_is_one_line(cli, tmp_path):
    q = write_prompts_file(tmp_path / "q.txt")
    r = cli(
        "prompts", "build", "--source", q, "--model", "vllm/Qwen/Qwen2.5-0.5B-Instruct", "--out", tmp_path / "o",
        "--executor", "ray",
    )  # fmt: skip
    assert r.exit_code == 2, r.stderr
    assert "pip install 'persona-testbed[vllm]'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
