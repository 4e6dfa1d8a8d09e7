"""The batch executor: waves of deferred requests, Batch JSONL files, ingest, submit/poll, CLI (issue 14.4)."""

from __future__ import annotations

import json

import pytest

from persona_testbed.core.errors import UserError
from persona_testbed.llm import ChatParams, LLMClient
from persona_testbed.llm.batch_stub import BatchStubServer, run_batch_file
from persona_testbed.llm.deferred import BatchBackend, BatchStore, WaveRecorder, is_pending, request_body

QUESTIONS = [
    "Should the government raise taxes on the very rich?",
    "Is it ever right to break the law to protest?",
    "Should parents be allowed to homeschool their children freely?",
    "Do you think religion makes society better or worse?",
    "Is eating meat morally wrong today?",
    "Should the voting age be lowered to sixteen years old?",
    "Is nuclear power a good answer to climate change?",
    "Should immigration to this country be reduced a lot?",
    "Is it wrong for companies to track workers?",
]


def _pending(n: int, model: str = "m", pad: int = 0) -> dict[str, dict]:
    out = {}
    for i in range(n):
        body = request_body(
            model, [{"role": "user", "content": f"q{i}" + "x" * pad}], ChatParams(seed=i), None
        )
        out[f"{model}-{i:04d}"] = body
    return out


def test_wave_files_split_at_lines_bytes_and_model(tmp_path):
    store = BatchStore(tmp_path)
    pending = {**_pending(5, "a"), **_pending(2, "b")}
    wave = store.write_wave("feedback", "openai/a", pending, max_lines=2)
    assert wave is not None and wave.name == "feedback-001" and wave.requests == 7
    files = [store.root / f for f in wave.files]
    lines = [[json.loads(x) for x in f.read_text().splitlines()] for f in files]
    assert [len(x) for x in lines] == [2, 2, 1, 2]  # a: 2+2+1, b: 2 (one model per file)
    assert all(len({r["body"]["model"] for r in x}) == 1 for x in lines)
    first = lines[0][0]
    assert (
        first["method"] == "POST"
        and first["url"] == "/v1/chat/completions"
        and first["custom_id"] == "a-0000"
    )
    # byte limit: each line is ~1 kB, 3 kB files hold 2 lines
    wave2 = store.write_wave("bench", "openai/c", _pending(5, "c", pad=1000), max_bytes=3000)
    assert [len((store.root / f).read_text().splitlines()) for f in wave2.files] == [2, 2, 1]
    # requests already written are not written again
    assert store.write_wave("feedback", "openai/a", pending) is None
    assert store.unanswered() == 12


def test_ingest_partial_failures_and_bad_lines(tmp_path):
    store = BatchStore(tmp_path)
    wave = store.write_wave("s", "openai/m", _pending(4))
    src = store.root / wave.files[0]
    out = tmp_path / "out.jsonl"
    run_batch_file(src, out, limit=3, fail=frozenset({"m-0001"}))
    rep = store.ingest([out])
    assert (rep.lines, rep.ok, rep.failed, rep.unanswered) == (3, 2, 1, 1)  # partial file accepted
    assert store.reply("m-0001")[2].startswith("batch HTTP 500")
    assert store.reply("m-0003") is None

    good = out.read_text().splitlines()
    truncated = tmp_path / "truncated.jsonl"
    truncated.write_text(good[0] + "\n" + good[1][: len(good[1]) // 2])
    with pytest.raises(UserError, match=r"truncated.jsonl:2: not a JSON line"):
        store.ingest([truncated])
    unknown = tmp_path / "unknown.jsonl"
    rec = json.loads(good[0])
    rec["custom_id"] = "nope"
    unknown.write_text(good[1] + "\n" + json.dumps(rec) + "\n")
    with pytest.raises(UserError, match=r"unknown.jsonl:2: unknown custom_id"):
        store.ingest([unknown])
    assert store.unanswered() == 1  # nothing of a refused file was taken in


def test_client_defers_then_replays_from_batch_replies(tmp_path):
    from persona_testbed.llm import CallStore

    store = BatchStore(tmp_path)
    waves = WaveRecorder(store)
    calls = CallStore(tmp_path / "calls.db")
    client = LLMClient(backend=BatchBackend("openai/stub", waves), store=calls)
    msgs = [{"role": "user", "content": "hello"}]
    res = client.chat_sync(msgs, params=ChatParams(seed=1))
    again = client.chat_sync(msgs, params=ChatParams(seed=1))
    assert is_pending(res) and is_pending(again) and len(waves.pending) == 1
    assert calls.count() == 0  # a deferred call leaves no row
    waves.finish("s")
    src = store.root / store.waves()[0].files[0]
    run_batch_file(src, tmp_path / "o.jsonl")
    store.ingest([tmp_path / "o.jsonl"])
    done = client.chat_sync(msgs, params=ChatParams(seed=1))
    assert done.ok and done.text == "stub reply to: hello" and not waves.pending
    local = LLMClient("openai/stub", base_url="http://127.0.0.1:9/v1")
    assert local.backend.kind == client.backend.kind and local.backend.model_id == client.backend.model_id
    client.close()
    calls.close()


def _prompts(cli, q, out, *extra):
    return cli(
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
        "--out",
        out,
        "--json",
        *extra,
    )


@pytest.fixture
def batch_stub(monkeypatch, tmp_path):
    def classify(request):  # the controversy classifier's schema: contested, with a topic
        fmt = request.get("response_format") or {}
        if fmt:
            props = fmt["json_schema"]["schema"].get("properties", {})
            return json.dumps(
                {k: (True if v.get("type") == "boolean" else "topic") for k, v in props.items()}
            )
        return "text"

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with BatchStubServer(responder=classify) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        yield srv


def test_prompts_stage_through_batch_api_matches_local(cli, tmp_path, batch_stub):
    q = tmp_path / "q.txt"
    q.write_text("\n".join(QUESTIONS) + "\n")
    assert _prompts(cli, q, tmp_path / "local").exit_code == 0
    online = batch_stub.stats["ok"]
    out = tmp_path / "b"
    r = _prompts(cli, q, out, "--executor", "batch")
    assert r.exit_code == 4 and "waiting for batch" in r.stderr and "batch submit" in r.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"]["prompts"]["status"] == "waiting_for_batch"
    assert not (out / "prompts.jsonl").exists()  # no partial artifacts while waiting
    r = _prompts(cli, q, out, "--executor", "batch")  # nothing answered yet: no new wave
    assert r.exit_code == 4 and "already written" in r.stderr and len(BatchStore(out).waves()) == 1
    vllm = cli("batch", "submit", out, "--vllm")
    assert vllm.stdout.startswith("vllm run-batch -i ") and "--model stub" in vllm.stdout
    assert cli("batch", "submit", out, "--json").exit_code == 0
    st = json.loads(cli("batch", "status", out, "--json").stdout)
    assert st["files"][0]["status"] == "in_progress" and st["unanswered"] == len(QUESTIONS)
    st = json.loads(cli("batch", "status", out, "--json").stdout)
    assert st["files"][0]["status"] == "ingested" and st["unanswered"] == 0
    assert _prompts(cli, q, out, "--executor", "batch").exit_code == 0
    assert batch_stub.stats["ok"] == online and batch_stub.stats["batches"] == 1
    for name in ("prompts.jsonl", "prompts.parquet", "summary.json"):
        assert (tmp_path / "local" / name).read_bytes() == (out / name).read_bytes(), name


def test_batch_failures_are_recorded_as_data(cli, tmp_path, batch_stub):
    q = tmp_path / "q.txt"
    q.write_text("\n".join(QUESTIONS) + "\n")
    out = tmp_path / "b"
    assert _prompts(cli, q, out, "--executor", "batch").exit_code == 4
    store = BatchStore(out)
    src = store.root / store.waves()[0].files[0]
    ids = [json.loads(x)["custom_id"] for x in src.read_text().splitlines()]
    run_batch_file(src, tmp_path / "o.jsonl", responder=batch_stub.responder, fail=frozenset(ids[:2]))
    assert cli("batch", "ingest", out, tmp_path / "o.jsonl").exit_code == 0
    r = _prompts(cli, q, out, "--executor", "batch")
    assert r.exit_code == 0, r.stderr
    from persona_testbed.llm import CallStore

    with CallStore(out / "calls.db") as calls:
        assert calls.count("failed") == 2 and calls.count("ok") == len(QUESTIONS) - 2
        assert any("batch HTTP 500" in (row["error"] or "") for row in calls.recent(20))


def test_bad_input(cli, tmp_path, batch_stub):
    q = tmp_path / "q.txt"
    q.write_text("\n".join(QUESTIONS) + "\n")
    r = _prompts(cli, q, tmp_path / "x", "--executor", "ray-ish")
    assert (
        r.exit_code == 2
        and "--executor must be one of local, batch" in r.stderr
        and not (tmp_path / "x").exists()
    )
    r = cli(
        "prompts", "build", "--source", q, "--model", "mock", "--out", tmp_path / "y", "--executor", "batch"
    )
    assert (
        r.exit_code == 2
        and "an 'openai/<model>' or 'vllm/<model>' model string" in r.stderr
        and not (tmp_path / "y").exists()
    )
    r = cli("batch", "status", tmp_path)
    assert r.exit_code == 2 and "no batch requests here" in r.stderr
    assert _prompts(cli, q, tmp_path / "b", "--executor", "batch").exit_code == 4
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"custom_id": "zzz", "response": {"status_code": 200, "body": {}}}\n')
    r = cli("batch", "ingest", tmp_path / "b", bad)
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "bad.jsonl:1: unknown custom_id" in r.stderr


def test_ray_executor_without_ray_is_one_line(cli, tmp_path, batch_stub, monkeypatch):
    import persona_testbed.pipeline.ray_executor as rx

    monkeypatch.setattr(rx, "find_spec", lambda name: None)  # as if the extra were not installed
    q = tmp_path / "q.txt"
    q.write_text("\n".join(QUESTIONS) + "\n")
    r = _prompts(cli, q, tmp_path / "r", "--executor", "ray")
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "pip install 'persona-testbed[ray]'" in r.stderr
    assert not (tmp_path / "r").exists()
