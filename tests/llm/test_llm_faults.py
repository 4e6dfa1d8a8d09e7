"""The openai/<model> path against the loopback stub server: every fault kind retried and recorded."""

import asyncio
import json
import socket
import time

import pytest
from pydantic import BaseModel

from persona_testbed.llm import CallStore, ChatParams, LLMClient
from persona_testbed.llm.stub_server import FAULT_KINDS, StubServer

MSG = [{"role": "user", "content": "hello"}]


def run(coro):
    return asyncio.run(coro)


async def one_call(srv, store=None, **kw):
    kw.setdefault("retry_base_s", 0.001)
    kw.setdefault("timeout_s", 0.5)
    async with LLMClient("openai/stub", base_url=srv.base_url, store=store, **kw) as c:
        return await c.chat(MSG)


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_each_fault_kind_is_retried_and_then_recorded(tmp_path, kind):
    store = CallStore(tmp_path / "c.db")
    with StubServer(fault_rate=1.0, fault_kinds=[kind], slow_s=1.0) as srv:
        r = run(one_call(srv, store, max_retries=2))
        assert srv.stats["requests"] == 3 and srv.stats[f"fault_{kind}"] == 3
    assert not r.ok and r.attempts == 3 and "gave up after 3 attempts" in r.error
    row = store.recent(1)[0]
    assert row["status"] == "failed" and row["error"] == r.error and row["attempts"] == 3
    assert store.lookup(row["cache_key"]) is None


def test_fault_then_success_when_the_fault_stops(tmp_path):
    """A fault-heavy server: every call still ends ok thanks to retries; the tally adds up."""
    store = CallStore(tmp_path / "c.db")

    async def main(srv):
        async with LLMClient(
            "openai/stub",
            base_url=srv.base_url,
            store=store,
            max_retries=12,
            timeout_s=0.5,
            retry_base_s=0.001,
            retry_max_delay_s=0.01,
            concurrency=16,
        ) as c:
            return await asyncio.gather(*[c.chat([{"role": "user", "content": f"q{i}"}]) for i in range(60)])

    with StubServer(fault_rate=0.4, seed=3, slow_s=0.8) as srv:
        rs = run(main(srv))
        stats = dict(srv.stats)
    assert all(r.ok for r in rs), [r.error for r in rs if not r.ok]
    assert [r.text for r in rs] == [f"stub reply to: q{i}" for i in range(60)]
    faults = sum(v for k, v in stats.items() if k.startswith("fault_"))
    assert faults > 0 and stats["ok"] == 60 and stats["requests"] == 60 + faults
    assert sum(r.attempts for r in rs) == stats["requests"]
    assert store.count("ok") == 60


def test_retry_after_is_honoured(tmp_path):
    with StubServer(fault_rate=1.0, fault_kinds=["429"], retry_after="0.4") as srv:
        t0 = time.perf_counter()
        r = run(one_call(srv, max_retries=2))
        elapsed = time.perf_counter() - t0
    assert not r.ok and "429" in r.error
    assert elapsed >= 0.8  # two waits of 0.4 s, while the jittered backoff alone would be ~0 s


def test_retry_after_is_capped(tmp_path):
    with StubServer(fault_rate=1.0, fault_kinds=["429"], retry_after="3600") as srv:
        t0 = time.perf_counter()
        r = run(one_call(srv, max_retries=1, max_retry_after_s=0.2))
        assert time.perf_counter() - t0 < 5 and not r.ok


def test_permanent_400_is_not_retried(tmp_path):
    store = CallStore(tmp_path / "c.db")
    with StubServer(status_override=(400, "bad model parameter")) as srv:
        r = run(one_call(srv, store, max_retries=5))
        assert srv.stats["requests"] == 1
    assert not r.ok and r.attempts == 1 and "HTTP 400" in r.error and "bad model parameter" in r.error
    assert store.recent(1)[0]["status"] == "failed"


def test_unreachable_base_url_is_a_recorded_failure(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    store = CallStore(tmp_path / "c.db")

    async def main():
        async with LLMClient(
            "openai/x", base_url=f"http://127.0.0.1:{port}/v1", store=store, max_retries=1, retry_base_s=0.001
        ) as c:
            return await c.chat(MSG)

    r = run(main())
    assert not r.ok and "connection error" in r.error and str(port) in r.error
    assert store.count("failed") == 1


def test_params_usage_logprobs_and_structured_output_over_http(tmp_path):
    seen = []

    class Verdict(BaseModel):
        consistent: bool
        reason: str

    def responder(req):
        seen.append(req)
        if req.get("response_format"):
            return json.dumps({"consistent": False, "reason": "too young for a PhD"})
        return "alpha beta gamma"

    store = CallStore(tmp_path / "c.db")

    async def main(srv):
        async with LLMClient("openai/stub", base_url=srv.base_url, store=store) as c:
            a = await c.chat(
                MSG,
                params=ChatParams(
                    temperature=0.2,
                    top_p=0.9,
                    max_tokens=9,
                    seed=5,
                    stop=["\n"],
                    logprobs=True,
                    top_logprobs=1,
                ),
            )
            b = await c.chat(MSG, schema=Verdict)
            return a, b

    with StubServer(responder=responder) as srv:
        a, b = run(main(srv))
    req = seen[0]
    assert (req["temperature"], req["top_p"], req["max_tokens"], req["seed"], req["stop"]) == (
        0.2,
        0.9,
        9,
        5,
        ["\n"],
    )
    assert req["model"] == "stub" and req["logprobs"] is True
    assert a.text == "alpha beta gamma" and a.usage.completion_tokens == 3 and a.usage.prompt_tokens == 1
    assert [t["token"] for t in a.logprobs] == ["alpha", "beta", "gamma"]
    rf = seen[1]["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["name"] == "Verdict"
    assert rf["json_schema"]["schema"]["required"] == ["consistent", "reason"]
    assert b.parsed == {"consistent": False, "reason": "too young for a PhD"}


def test_api_key_never_enters_the_db(tmp_path, monkeypatch):
    secret = "sk-test-SECRET-1234567890abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    db = tmp_path / "c.db"
    store = CallStore(db)
    with StubServer() as srv:
        r = run(one_call(srv, store))
        r2 = run(one_call(srv, store))  # a replay too
    assert r.ok and r2.cached
    store.close()
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert secret.encode() not in blob and b"SECRET" not in blob
    assert secret not in repr(LLMClient("openai/stub", base_url="http://127.0.0.1:1/v1").backend)


def test_models_endpoint():
    import httpx

    with StubServer(model_name="m1") as srv:
        data = httpx.get(srv.base_url + "/models").json()
    assert data["data"][0]["id"] == "m1"


def test_falls_back_to_json_object_when_server_rejects_json_schema():
    """llama.cpp's server only knows response_format {"type": "json_object", "schema": ...}."""

    class Verdict(BaseModel):
        consistent: bool

    kinds = []

    def responder(req):
        kinds.append(req["response_format"]["type"])
        if req["response_format"]["type"] != "json_object":
            raise ValueError("response_format.type: Input should be 'text' or 'json_object'")
        assert req["response_format"]["schema"]["required"] == ["consistent"]
        return '{"consistent": true}'

    async def main(srv):
        async with LLMClient("openai/stub", base_url=srv.base_url) as c:
            a = await c.chat(MSG, schema=Verdict)
            b = await c.chat([{"role": "user", "content": "again"}], schema=Verdict)
            return c, a, b

    with StubServer(responder=responder) as srv:
        c, a, b = run(main(srv))
    assert a.ok and b.ok and a.parsed == {"consistent": True}
    assert kinds == ["json_schema", "json_object", "json_object"]
    assert c.backend.response_format_style == "json_object"
