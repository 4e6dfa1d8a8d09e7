"""`batch submit` resubmits the requests that ended batches left without a result (expired, partial output).

Against the loopback Files + Batches API (``BatchStubServer``): a batch that expires after answering some
requests leaves the others unanswered; ``batch submit`` writes exactly those into a new request file of the
wave and submits it, never a request that has a result, never twice while a resubmission is in flight.
"""

from __future__ import annotations

import json

import pytest

from persona_testbed.llm import ChatParams
from persona_testbed.llm.batch_stub import BatchStubServer, expired_text, run_batch_file
from persona_testbed.llm.deferred import BatchStore, request_body

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


def _prompts(cli, q, out, *extra):
    args = ("--model", "openai/stub", "--seed", "3", "--clusters", "2", "--out", out, "--json", *extra)
    return cli("prompts", "build", "--source", q, *args)


def _pending(n: int) -> dict[str, dict]:
    return {
        f"m-{i:04d}": request_body("m", [{"role": "user", "content": f"q{i}"}], ChatParams(seed=i), None)
        for i in range(n)
    }


def _classify(request):  # the controversy classifier's schema: contested, with a topic
    fmt = request.get("response_format") or {}
    if fmt:
        props = fmt["json_schema"]["schema"].get("properties", {})
        return json.dumps({k: (True if v.get("type") == "boolean" else "topic") for k, v in props.items()})
    return "text"


def _ids(path):
    return [json.loads(x)["custom_id"] for x in path.read_text().splitlines()]


def _status(cli, out):
    r = cli("batch", "status", out, "--json")
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def _submit(cli, out):
    r = cli("batch", "submit", out, "--json")
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("expired_errors", [True, False], ids=["error-file", "omitted"])
def test_unanswered_requests_of_ended_batches_are_resubmitted_once(
    cli, tmp_path, monkeypatch, expired_errors
):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    q = tmp_path / "q.txt"
    q.write_text("\n".join(QUESTIONS) + "\n")
    with BatchStubServer(responder=_classify) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        srv.expired_errors = expired_errors
        assert _prompts(cli, q, tmp_path / "local").exit_code == 0
        online = srv.stats["ok"]
        out = tmp_path / "b"
        assert _prompts(cli, q, out, "--executor", "batch").exit_code == 4
        store = BatchStore(out)
        wave = store.root / "prompts-001"

        srv.expire_after = 4  # the first batch answers 4 of the 9 requests, then expires
        assert _submit(cli, out)["resubmitted"] == []
        _status(cli, out)
        st = _status(cli, out)
        assert (
            st["files"][0]["status"] == "ingested (expired)"
            and st["unanswered"] == 5
            and st["to_resubmit"] == 5
        )
        answered_first = set(_ids(wave / "results-001.jsonl"))
        assert len(answered_first) == 4
        if expired_errors:
            assert len(_ids(wave / "errors-001.jsonl")) == 5  # not failures: no reply
        r = _prompts(cli, q, out, "--executor", "batch")
        assert r.exit_code == 4 and "already written" in r.stderr  # the stage still waits for them

        srv.expire_after = 2  # the resubmission expires too, after 2 answers
        doc = _submit(cli, out)
        assert doc["resubmitted"] == [
            {"file": "prompts-001/requests-002.jsonl", "wave": "prompts-001", "requests": 5}
        ]
        resent = _ids(wave / "requests-002.jsonl")
        assert set(resent) == set(_ids(wave / "requests-001.jsonl")) - answered_first
        assert srv.stats["batches"] == 2
        assert _submit(cli, out)["resubmitted"] == []  # in flight: not resubmitted again
        assert srv.stats["batches"] == 2 and _status(cli, out)["to_resubmit"] == 0

        _status(cli, out)  # the resubmission ends: 3 requests still without a result
        assert _status(cli, out)["unanswered"] == 3
        srv.expire_after = None
        doc = _submit(cli, out)  # each once: not also again from requests-002
        assert [d["requests"] for d in doc["resubmitted"]] == [3] and srv.stats["batches"] == 3
        third = _ids(wave / "requests-003.jsonl")
        assert set(third) == set(resent) - set(_ids(wave / "results-002.jsonl"))
        _status(cli, out)
        assert _status(cli, out)["unanswered"] == 0
        assert _submit(cli, out)["resubmitted"] == [] and srv.stats["batches"] == 3

        r = _prompts(cli, q, out, "--executor", "batch")
        assert r.exit_code == 0, r.stderr
        assert srv.stats["ok"] == online  # no online call
    for name in ("prompts.jsonl", "prompts.parquet", "summary.json"):
        assert (tmp_path / "local" / name).read_bytes() == (out / name).read_bytes(), name
    from persona_testbed.llm import CallStore

    with CallStore(out / "calls.db") as calls:
        assert calls.count("failed") == 0 and calls.count("ok") == len(QUESTIONS)


def test_resubmission_text_output_and_vllm(cli, tmp_path, monkeypatch):
    """Without --json the resubmission is one line on stderr; with --vllm it is written too and its
    `vllm run-batch` command printed (the ended file's is not)."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    q = tmp_path / "q.txt"
    q.write_text("\n".join(QUESTIONS) + "\n")
    with BatchStubServer(responder=_classify) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        out = tmp_path / "b"
        assert _prompts(cli, q, out, "--executor", "batch").exit_code == 4
        srv.expire_after = 0  # nothing answered
        assert cli("batch", "submit", out).exit_code == 0
        _status(cli, out)
        r = cli("batch", "status", out)
        assert r.exit_code == 0 and "9 of them in ended batches" in r.stdout.replace("\n", " ")
        r = cli("batch", "submit", out, "--vllm")
        assert r.exit_code == 0 and "resubmitting 9 requests" in r.stderr
        assert r.stdout.count("vllm run-batch") == 1 and "requests-002.jsonl" in r.stdout
        assert cli("batch", "submit", out, "--vllm").stderr == ""  # written, not yet answered: not again


def test_not_run_lines_are_no_reply_and_keep_an_earlier_one(tmp_path):
    store = BatchStore(tmp_path)
    wave = store.write_wave("s", "openai/m", _pending(3))
    src = store.root / wave.files[0]
    run_batch_file(src, tmp_path / "o.jsonl", limit=1)
    expired = tmp_path / "e.jsonl"
    expired.write_text(expired_text(src.read_text(), 0))  # all three: "never ran"
    rep = store.ingest([tmp_path / "o.jsonl", expired])
    assert (rep.lines, rep.ok, rep.failed, rep.not_run, rep.unanswered) == (1, 1, 0, 3, 2)
    assert store.reply("m-0000")[2] is None  # the answer is kept
    assert store.reply("m-0001") is None


def test_an_ended_batch_keeps_how_it_ended():
    from types import SimpleNamespace

    from persona_testbed.llm.batch_api import _batch_error, has_ended, ingested_state

    assert ingested_state("completed") == "ingested" and ingested_state("expired") == "ingested (expired)"
    bad = SimpleNamespace(errors=SimpleNamespace(data=[SimpleNamespace(message="Invalid\n  JSON on line 3")]))
    assert (
        _batch_error(bad) == "Invalid JSON on line 3" and _batch_error(SimpleNamespace()) == "no reason given"
    )
    assert all(has_ended(s) for s in ("ingested", "ingested (failed: x)", "expired", "completed"))
    assert not any(has_ended(s) for s in ("written", "validating", "in_progress", "finalizing"))
