"""Failures replayed from the batch store are logged once; online retries of a failure stay new calls.

Each wave (batch) or pass (Ray) of a stage replays every earlier step from ``batch.db``. An ok replay keeps
the key's id (one row); a failed replay gets an id derived from the key and the failure, which names the
result it came from, so it is one row too, and a new result for the same request is a new row.
"""

from __future__ import annotations

import json

from persona_testbed.llm import CallStore, ChatParams, LLMClient, MockBackend
from persona_testbed.llm.backends.base import PermanentError
from persona_testbed.llm.batch_stub import run_batch_file
from persona_testbed.llm.deferred import BatchBackend, BatchStore, WaveRecorder, is_pending

MSGS = [{"role": "user", "content": "hello"}]


def _client(tmp_path, calls):
    store = BatchStore(tmp_path)
    return store, LLMClient(backend=BatchBackend("openai/stub", WaveRecorder(store)), store=calls)


def test_replayed_batch_failure_is_one_row_until_a_new_result(tmp_path):
    calls = CallStore(tmp_path / "calls.db")
    store, client = _client(tmp_path, calls)
    assert is_pending(client.chat_sync(MSGS, params=ChatParams(seed=1)))
    client.backend.recorder.finish("s")
    src = store.root / store.waves()[0].files[0]
    rid = json.loads(src.read_text().splitlines()[0])["custom_id"]
    out = src.with_name("results-001.jsonl")
    run_batch_file(src, out, fail=frozenset({rid}))
    store.ingest([out])

    first = [client.chat_sync(MSGS, params=ChatParams(seed=1)) for _ in range(3)]  # three waves replay it
    assert all(not r.ok for r in first) and len({r.call_id for r in first}) == 1
    assert (
        first[0].error
        == "permanent error: batch HTTP 500: server error (stub) [batch/s-001/results-001.jsonl:1]"
    )
    assert calls.count("failed") == 1

    # the batch route itself: a retry's output that fails again is a new call (named by its own file)
    retry = tmp_path / "retry.jsonl"
    run_batch_file(src, retry, fail=frozenset({rid}))
    store.ingest([retry])
    again = client.chat_sync(MSGS, params=ChatParams(seed=1))
    assert again.error.endswith(f"[{retry.absolute().as_posix()}:1]") and again.call_id != first[0].call_id
    client.chat_sync(MSGS, params=ChatParams(seed=1))
    assert calls.count("failed") == 2

    # an answer replaces the failure: one ok row, the failed rows stay (they happened)
    ok = tmp_path / "ok.jsonl"
    run_batch_file(src, ok)
    store.ingest([ok])
    assert client.chat_sync(MSGS, params=ChatParams(seed=1)).ok
    assert (calls.count("failed"), calls.count("ok")) == (2, 1)
    client.close()
    calls.close()
    store.close()


def test_failure_answered_by_an_executor_is_one_row(tmp_path):
    """Ray saves answers with ``save_answers``; every later pass of the stage replays them."""
    calls = CallStore(tmp_path / "calls.db")
    store, client = _client(tmp_path, calls)
    client.chat_sync(MSGS)
    recorder = client.backend.recorder
    pending = dict(recorder.pending)
    recorder.reset()
    (rid,) = pending
    store.save_answers(
        "s", "openai/stub", pending, [(rid, None, None, "gave up after 5 attempts: HTTP 503")], "ray"
    )
    results = [client.chat_sync(MSGS) for _ in range(3)]
    assert results[0].error == "permanent error: gave up after 5 attempts: HTTP 503 [ray]"
    assert len({r.call_id for r in results}) == 1 and calls.count("failed") == 1
    client.close()
    calls.close()
    store.close()


def test_online_retries_of_a_failure_are_new_rows(tmp_path):
    """The local executor is unchanged: each failed call that is tried again online is a new call."""
    calls = CallStore(tmp_path / "calls.db")
    backend = MockBackend([PermanentError("HTTP 400: bad"), PermanentError("HTTP 400: bad")])
    client = LLMClient(backend=backend, store=calls)
    a = client.chat_sync(MSGS)
    b = client.chat_sync(MSGS)
    assert not a.ok and not b.ok and a.error == b.error and a.call_id != b.call_id
    assert calls.count("failed") == 2 and len(backend.calls) == 2
    client.close()
    calls.close()
