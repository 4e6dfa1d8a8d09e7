"""FailureBreaker: a stage whose calls keep failing stops with one line naming the cause (exit code 3).

Mock backends script the failures; one test calls a real closed port. Nothing depends on timing.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from persona_testbed.core.errors import CallsFailingError, UserError
from persona_testbed.llm import (
    CallStore,
    FailureBreaker,
    LLMClient,
    MockBackend,
    PermanentError,
    TransientError,
)
from persona_testbed.llm.breaker import failure_cause

URL = "http://127.0.0.1:9/v1"
REFUSED = (
    f"gave up after 6 attempts: connection error ({URL}): ConnectError: All connection attempts failed "
    "[ConnectionRefusedError: Connection refused]"
)
MSG = [{"role": "user", "content": "hi"}]


def feed(breaker: FailureBreaker, pattern: str, error: str = REFUSED) -> None:
    """``pattern``: one character per finished call, ``x`` failed, ``.`` ok."""
    for c in pattern:
        breaker.record(c == ".", error if c == "x" else None)


# -- causes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error,label",
    [
        (REFUSED, f"connection refused at {URL}"),
        (
            f"gave up after 3 attempts: connection error ({URL}): RemoteProtocolError: Server disconnected",
            f"connection dropped at {URL}",
        ),
        (
            f"connection error ({URL}): ConnectError: [Errno -2] Name or service not known",
            f"host not found at {URL}",
        ),
        (
            f"connection error ({URL}): ConnectError: All connection attempts failed",
            f"cannot connect at {URL}",
        ),
        (f"gave up after 6 attempts: timeout after 30s ({URL})", f"timeout after 30 s at {URL}"),
        ("permanent error: HTTP 401: Incorrect API key provided", "HTTP 401: Incorrect API key provided"),
        (
            "invalid structured output (JudgeVerdict) after 3 tries: field required",
            "invalid structured output (JudgeVerdict)",
        ),
        ("permanent error: backend error: KeyError: 'choices'", "backend error: KeyError"),
        ("gave up after 2 attempts: invalid response body: no choices", "invalid response body: no choices"),
        (None, "unknown error"),
    ],
)
def test_failure_cause_normalises_errors(error, label):
    assert failure_cause(error)[1] == label


def test_same_cause_across_attempt_counts_and_http_details():
    assert (
        failure_cause("gave up after 2 attempts: HTTP 503: busy (req 1)")[0]
        == failure_cause("gave up after 6 attempts: HTTP 503: overloaded (req 2)")[0]
    )
    assert failure_cause("HTTP 401: x")[0] != failure_cause("HTTP 403: x")[0]


# -- the rules ----------------------------------------------------------------------------------------


def test_trips_when_the_first_20_calls_all_fail():
    b = FailureBreaker("prompts")
    feed(b, "x" * 19)
    assert not b.tripped
    b.check()  # not tripped: nothing raised
    feed(b, "x")
    assert b.tripped
    with pytest.raises(CallsFailingError) as err:
        b.check()
    assert str(err.value) == f"prompts: connection refused at {URL} for 20 of 20 calls"
    assert err.value.exit_code == 3 and isinstance(err.value, UserError) and "\n" not in str(err.value)


def test_does_not_trip_at_10_of_30_failed():
    b = FailureBreaker()
    feed(b, "x" * 10 + "." * 20)
    assert not b.tripped and (b.calls, b.failed) == (30, 10)
    b.check_final()  # some calls succeeded: nothing raised


def test_trips_at_16_of_30_failed():
    b = FailureBreaker()
    feed(b, "." * 14)
    feed(b, "x" * 14)
    assert not b.tripped  # 14 of 28: exactly half is not more than half
    feed(b, "xx")
    assert b.tripped and (b.calls, b.failed) == (30, 16)
    with pytest.raises(
        CallsFailingError, match=r"^connection refused at http://127\.0\.0\.1:9/v1 for 15 of 29 calls$"
    ):
        b.check()  # the message is the one of the call that tripped it


def test_share_rule_waits_for_min_calls():
    b = FailureBreaker()
    feed(b, ".xx" * 6)  # 12 of 18 failed, fewer than min_calls
    assert not b.tripped
    feed(b, ".x")  # 13 of 20
    assert b.tripped


def test_check_final_raises_when_every_call_of_a_small_stage_failed():
    b = FailureBreaker("feedback")
    b.check_final()  # no call at all: nothing to say
    feed(b, "x" * 8)
    assert not b.tripped
    with pytest.raises(CallsFailingError) as err:
        b.check_final()
    assert str(err.value) == f"feedback: connection refused at {URL} for 8 of 8 calls"
    ok = FailureBreaker()
    feed(ok, "xxxxxxx.")
    ok.check_final()


def test_message_names_the_most_common_cause_and_all_failures():
    b = FailureBreaker()
    feed(b, "x" * 12)
    feed(b, "x" * 8, error="permanent error: HTTP 401: Incorrect API key provided")
    with pytest.raises(CallsFailingError) as err:
        b.check()
    assert str(err.value) == f"connection refused at {URL} for 12 of 20 calls (20 failed in all)"
    assert b.stats() == {
        "calls": 20,
        "failed": 20,
        "tripped": True,
        "causes": {f"connection refused at {URL}": 12, "HTTP 401: Incorrect API key provided": 8},
    }


def test_thresholds_are_configurable_and_checked():
    b = FailureBreaker(first_n=3, min_calls=10, max_failed_share=0.2)
    feed(b, "xxx")
    assert b.tripped
    b = FailureBreaker(first_n=3, min_calls=10, max_failed_share=0.2)
    feed(b, ".xx" + "." * 6)
    assert not b.tripped
    feed(b, "x")  # 3 of 10 > 20 %
    assert b.tripped
    for bad in ({"first_n": 0}, {"min_calls": 0}, {"max_failed_share": 1.0}, {"max_failed_share": -0.1}):
        with pytest.raises(ValueError):
            FailureBreaker(**bad)


# -- through LLMClient --------------------------------------------------------------------------------


def _requests(n: int) -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": f"question {i}"}] for i in range(n)]


def test_client_raises_once_20_calls_failed_and_gather_stops(tmp_path):
    backend = MockBackend(lambda msgs: PermanentError("HTTP 401: Incorrect API key provided"))
    store = CallStore(tmp_path / "calls.db")
    breaker = FailureBreaker("bench")

    async def stage():
        async with LLMClient(backend=backend, store=store, concurrency=4, breaker=breaker) as client:
            await asyncio.gather(*(client.chat(m, purpose="bench.main.candidate") for m in _requests(50)))

    with pytest.raises(
        CallsFailingError, match=r"^bench: HTTP 401: Incorrect API key provided for 20 of 20 calls$"
    ):
        asyncio.run(stage())
    # no request started after the breaker tripped; every finished call is logged as failed
    assert len(backend.calls) == 20
    assert store.count() == 20 and all(r["status"] == "failed" for r in store.recent(50))
    store.close()


def test_client_keeps_failures_as_data_below_the_threshold():
    replies = ["fine"] * 20 + [PermanentError("HTTP 500: boom")] * 10
    backend = MockBackend(replies)
    breaker = FailureBreaker()

    async def stage():
        async with LLMClient(backend=backend, concurrency=1, breaker=breaker) as client:
            return await asyncio.gather(*(client.chat(m) for m in _requests(30)))

    results = asyncio.run(stage())
    assert sum(not r.ok for r in results) == 10 and not breaker.tripped
    breaker.check_final()


def test_cached_replays_count_as_ok_and_a_tripped_breaker_stops_new_calls(tmp_path):
    store = CallStore(tmp_path / "calls.db")
    with LLMClient(backend=MockBackend(), store=store) as warm:
        for m in _requests(3):
            assert warm.chat_sync(m).ok
    backend = MockBackend(lambda msgs: PermanentError("HTTP 401: no"))
    breaker = FailureBreaker()
    with LLMClient(backend=backend, store=store, breaker=breaker) as client:
        for m in _requests(3):
            assert client.chat_sync(m).cached
        assert (breaker.calls, breaker.failed) == (3, 0) and not backend.calls
        feed(breaker, "x" * 30, error="HTTP 401: no")
        assert breaker.tripped
        with pytest.raises(CallsFailingError):  # chat_sync raises it too
            client.chat_sync([{"role": "user", "content": "new"}])
        with pytest.raises(CallsFailingError):  # even a cached call: the stage has stopped
            client.chat_sync(_requests(1)[0])
    assert not backend.calls
    store.close()


def test_a_call_in_its_retries_stops_when_the_stage_trips():
    breaker = FailureBreaker(first_n=1)

    def reply(msgs):
        breaker.record(False, "HTTP 503: other call failed")  # another call of the stage failed meanwhile
        return TransientError("HTTP 503: busy")

    backend = MockBackend(reply)
    client = LLMClient(backend=backend, max_retries=5, retry_base_s=0, breaker=breaker)
    with pytest.raises(CallsFailingError, match="HTTP 503"):
        asyncio.run(client.chat(MSG))
    assert len(backend.calls) == 1  # no retry after the breaker tripped
    client.close()


def test_without_a_breaker_failures_never_raise():
    backend = MockBackend(lambda msgs: PermanentError("HTTP 401: no"))
    with LLMClient(backend=backend) as client:
        results = [client.chat_sync(m) for m in _requests(25)]
    assert all(not r.ok for r in results)


def test_unreachable_server_says_connection_refused():
    # a bound socket that never listens: its port refuses connections and no other process can take it
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/v1"
        breaker = FailureBreaker("prompts")
        with LLMClient("openai/x", base_url=url, max_retries=1, retry_base_s=0, breaker=breaker) as client:
            results = [client.chat_sync(m) for m in _requests(3)]
        assert all(not r.ok for r in results)
        with pytest.raises(CallsFailingError) as err:
            breaker.check_final()
    assert str(err.value) == f"prompts: connection refused at {url} for 3 of 3 calls"
