"""LLMClient against the mock backend: cache, re-ask, retries, failure recording, concurrency."""

import asyncio

import pytest
from pydantic import BaseModel

from persona_testbed.llm import CallStore, ChatParams, LLMClient, MockBackend, PermanentError, TransientError
from persona_testbed.llm.client import sample_params

MSG = [{"role": "user", "content": "hello"}]


class Verdict(BaseModel):
    consistent: bool
    reason: str


def client(backend, tmp_path=None, **kw):
    kw.setdefault("retry_base_s", 0.001)
    store = CallStore(tmp_path / "calls.db") if tmp_path is not None else None
    return LLMClient(backend=backend, store=store, **kw)


def test_cache_hit_replays_without_calling_backend(tmp_path):
    mock = MockBackend(["first", "second"])
    c = client(mock, tmp_path)
    r1 = c.chat_sync(MSG, purpose="t")
    r2 = c.chat_sync(MSG, purpose="t")
    assert (r1.text, r1.cached) == ("first", False)
    assert (r2.text, r2.cached, r2.call_id) == ("first", True, r1.call_id)
    assert len(mock.calls) == 1
    c.close()


def test_cache_survives_a_new_client_on_the_same_db(tmp_path):
    c1 = client(MockBackend(["stored"]), tmp_path)
    c1.chat_sync(MSG)
    c1.close()
    mock2 = MockBackend(["fresh"])
    c2 = client(mock2, tmp_path)
    assert c2.chat_sync(MSG).text == "stored" and mock2.calls == []
    c2.close()


@pytest.mark.parametrize(
    "change",
    [
        dict(params=ChatParams(temperature=0.1)),
        dict(params=ChatParams(seed=3)),
        dict(params=ChatParams(max_tokens=7)),
        dict(sample_index=1),
        dict(schema=Verdict),
        dict(messages=[{"role": "user", "content": "hello!"}]),
    ],
)
def test_cache_miss_when_any_key_part_changes(tmp_path, change):
    mock = MockBackend(['{"consistent": true, "reason": "a"}', '{"consistent": false, "reason": "b"}'])
    c = client(mock, tmp_path)
    c.chat_sync(MSG)
    kwargs = dict(change)
    msgs = kwargs.pop("messages", MSG)
    r = c.chat_sync(msgs, **kwargs)
    assert not r.cached and len(mock.calls) == 2
    c.close()


def test_reask_on_invalid_structured_output(tmp_path):
    mock = MockBackend(
        ["not json at all", '{"consistent": "maybe"}', '{"consistent": false, "reason": "age"}']
    )
    c = client(mock, tmp_path, max_reasks=2)
    r = c.chat_sync(MSG, schema=Verdict, purpose="judge")
    assert r.ok and r.parsed == {"consistent": False, "reason": "age"}
    assert len(mock.calls) == 3
    # the follow-up shows the bad reply and the validation error
    assert mock.calls[1][-2] == {"role": "assistant", "content": "not json at all"}
    assert "not valid" in mock.calls[1][-1]["content"] and "consistent" in mock.calls[2][-1]["content"]
    row = c.store.recent(1)[0]
    assert row["reasks"] == 2 and row["parsed"] == r.parsed and row["purpose"] == "judge"
    c.close()


def test_structured_output_accepts_fenced_json(tmp_path):
    c = client(MockBackend(['Sure!\n```json\n{"consistent": true, "reason": "ok"}\n```']), tmp_path)
    assert c.chat_sync(MSG, schema=Verdict).parsed == {"consistent": True, "reason": "ok"}
    c.close()


def test_reask_exhausted_is_a_recorded_failure(tmp_path):
    mock = MockBackend(["nope"] * 5)
    c = client(mock, tmp_path, max_reasks=1)
    r = c.chat_sync(MSG, schema=Verdict)
    assert not r.ok and "Verdict" in r.error and "2 tries" in r.error and r.text == "nope"
    assert len(mock.calls) == 2
    assert c.store.recent(1)[0]["status"] == "failed"
    c.close()


def test_transient_errors_are_retried_then_succeed(tmp_path):
    mock = MockBackend([TransientError("HTTP 503"), TransientError("HTTP 429", retry_after_s=0.0), "finally"])
    c = client(mock, tmp_path, max_retries=3)
    r = c.chat_sync(MSG)
    assert r.ok and r.text == "finally" and r.attempts == 3
    c.close()


def test_retries_exhausted_is_recorded_not_cached_and_rerun_retries(tmp_path):
    mock = MockBackend([TransientError("HTTP 500")] * 3 + ["recovered"])
    c = client(mock, tmp_path, max_retries=2)
    r = c.chat_sync(MSG)
    assert not r.ok and r.attempts == 3 and "gave up after 3 attempts" in r.error and "HTTP 500" in r.error
    row = c.store.recent(1)[0]
    assert (row["status"], row["attempts"], row["id"]) == ("failed", 3, r.call_id)
    r2 = c.chat_sync(MSG)  # failures are not served from the cache: the re-run calls again
    assert r2.ok and r2.text == "recovered" and not r2.cached
    assert c.store.count() == 2
    c.close()


def test_permanent_error_is_not_retried(tmp_path):
    mock = MockBackend([PermanentError("HTTP 400: bad request"), "never"])
    c = client(mock, tmp_path, max_retries=5)
    r = c.chat_sync(MSG)
    assert not r.ok and r.attempts == 1 and "permanent" in r.error and len(mock.calls) == 1
    c.close()


def test_unexpected_backend_exception_becomes_failure(tmp_path):
    def boom(messages):
        raise KeyError("weird")

    c = client(MockBackend(boom), tmp_path)
    r = c.chat_sync(MSG)
    assert not r.ok and "KeyError" in r.error
    c.close()


def test_concurrency_limit_is_enforced(tmp_path):
    mock = MockBackend(lambda m: m[-1]["content"], delay_s=0.02)

    async def main():
        async with LLMClient(backend=mock, store=CallStore(tmp_path / "c.db"), concurrency=3) as c:
            rs = await asyncio.gather(*[c.chat([{"role": "user", "content": f"q{i}"}]) for i in range(20)])
        return rs

    rs = asyncio.run(main())
    assert [r.text for r in rs] == [f"q{i}" for i in range(20)]
    assert mock.max_active == 3


def test_sample_index_changes_the_seed_reproducibly():
    p = ChatParams(seed=42)
    assert sample_params(p, 0).seed == 42
    s1, s2 = sample_params(p, 1).seed, sample_params(p, 2).seed
    assert len({42, s1, s2}) == 3 and sample_params(p, 1).seed == s1
    assert sample_params(ChatParams(), 3).seed is None


def test_no_store_still_works():
    c = LLMClient(backend=MockBackend(["x"]))
    assert c.chat_sync(MSG).text == "x"
    c.close()


def test_mock_model_string_echoes():
    c = LLMClient("mock")
    r = c.chat_sync(MSG)
    assert r.model == "mock" and r.text == "mock: hello"
    c.close()


def test_structured_reply_with_raw_newline_in_string_is_accepted():
    """llama.cpp's grammar can put a raw newline inside a JSON string; it is valid in meaning, so accept it."""
    from pydantic import BaseModel

    from persona_testbed.llm.structured import validate

    class Reply(BaseModel):
        answer: str

    parsed, error = validate(Reply, '{"answer": "line one\nline two"}')
    assert error is None
    assert parsed == {"answer": "line one\nline two"}
    parsed, error = validate(Reply, '{"answer": 3')
    assert parsed is None and error
