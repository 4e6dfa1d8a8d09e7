"""``LLMClient``: the one place every model call goes through.

It applies the cache, enforces the concurrency limit, retries transient faults with backoff (honouring
Retry-After), validates structured output and re-asks, and logs each logical call to the ``CallStore``.
Model and network failures come back as ``ChatResult(status="failed", error=...)``, never as exceptions,
unless the client was given the ``FailureBreaker`` of its stage and too many of the stage's calls failed:
then ``chat`` raises ``CallsFailingError`` (see ``breaker.py``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future
from typing import Any, Literal

from pydantic import BaseModel

from ..core.errors import UserError
from ..core.seeds import derive_int
from .backends import make_backend
from .backends.base import Backend, BackendReply, PermanentError, StructuredRequest, TransientError
from .breaker import FailureBreaker
from .deferred import BatchBackend, DeferredCall, is_pending
from .retry import RetryPolicy
from .store import CallStore, cache_key, new_call_id, ok_call_id, replayed_call_id
from .structured import reask_message, structured_request, validate
from .types import ChatParams, ChatResult, Message, Usage


def sample_params(params: ChatParams, sample_index: int) -> ChatParams:
    """The parameters sent for sample ``sample_index``: sample 0 uses ``params.seed`` as given, sample i > 0
    a seed derived from (seed, i), so pass@k samples with one seed are independent yet reproducible."""
    if sample_index == 0 or params.seed is None:
        return params
    return params.model_copy(update={"seed": derive_int(params.seed, "sample", int(sample_index))})


class LLMClient:
    """Chat with one model. ``async with LLMClient("embedded", store=CallStore(path)) as c: await c.chat(...)``."""

    def __init__(
        self,
        model: str = "embedded",
        *,
        store: CallStore | None = None,
        concurrency: int = 4,
        max_retries: int = 5,
        max_reasks: int = 2,
        timeout_s: float = 120.0,
        base_url: str | None = None,
        api_key: str | None = None,
        backend: Backend | None = None,
        retry_base_s: float = 0.25,
        retry_max_delay_s: float = 8.0,
        max_retry_after_s: float = 60.0,
        breaker: FailureBreaker | None = None,
    ):
        self.backend: Backend = (
            backend
            if backend is not None
            else make_backend(model, base_url=base_url, api_key=api_key, timeout_s=timeout_s)
        )
        self.model = self.backend.model_string
        self.store = store
        self.concurrency = max(1, int(concurrency))
        self.max_reasks = max(0, int(max_reasks))
        self.retry = RetryPolicy(
            max_retries=max(0, int(max_retries)),
            base_s=retry_base_s,
            max_delay_s=retry_max_delay_s,
            max_retry_after_s=max_retry_after_s,
        )
        self.breaker = breaker  # shared by the clients of one stage; None: failures never raise
        self._semaphores: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Semaphore]] = {}
        self._inflight: dict[int, dict[str, asyncio.Future[ChatResult]]] = {}
        self._sync_loop: asyncio.AbstractEventLoop | None = None
        self._sync_thread: threading.Thread | None = None
        self._sync_lock = threading.Lock()

    # -- public API ----------------------------------------------------------------------------------
    async def chat(
        self,
        messages: list[Message],
        *,
        params: ChatParams | None = None,
        schema: type[BaseModel] | None = None,
        sample_index: int = 0,
        purpose: str = "",
    ) -> ChatResult:
        """One logical call: cached replay, or backend call with retries (+ re-asks for ``schema``).

        With a ``breaker``: raises ``CallsFailingError`` when it has tripped, before a call starts (cached
        or not), after waiting for a concurrency slot, before a retry, and after recording the finished
        call that trips it (its row is still logged). Cached replays count as ok calls.
        """
        params = params or ChatParams()
        messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]
        structured = structured_request(schema) if schema is not None else None
        schema_json = structured.schema if structured else None
        key = cache_key(self.backend.kind, self.backend.model_id, messages, params, schema_json, sample_index)
        breaker = self.breaker
        if breaker is not None:
            breaker.check()
        if self.store is not None:
            hit = self.store.lookup(key)
            if hit is not None:
                if breaker is not None:
                    breaker.record(True)
                return hit

        # single flight: an identical request already in flight on this loop is awaited, not sent again
        inflight = self._inflight.setdefault(id(asyncio.get_running_loop()), {})
        pending = inflight.get(key)
        if pending is not None:
            result = await asyncio.shield(pending)
            if breaker is not None and not is_pending(result):
                breaker.record(result.ok, result.error)
                breaker.check()
            return result
        pending = inflight[key] = asyncio.get_running_loop().create_future()
        try:
            result = await self._fresh_call(
                key, messages, params, schema, structured, schema_json, sample_index, purpose, breaker
            )
        except (
            DeferredCall
        ) as deferred:  # batch executor: the request waits for its wave (no row, not counted)
            result = deferred.result(self.model)
            pending.set_result(result)
        except BaseException as exc:
            pending.set_exception(exc)
            pending.exception()  # retrieved: waiters re-raise it, no "never retrieved" warning
            raise
        else:
            pending.set_result(result)
        finally:
            inflight.pop(key, None)
        return result

    async def _fresh_call(
        self,
        key: str,
        messages: list[Message],
        params: ChatParams,
        schema: type[BaseModel] | None,
        structured: Any,
        schema_json: Any,
        sample_index: int,
        purpose: str,
        breaker: FailureBreaker | None,
    ) -> ChatResult:
        start = time.perf_counter()
        async with self._semaphore():
            acquired = time.perf_counter()  # queue wait (for a concurrency slot) ends, the request starts
            if breaker is not None:
                breaker.check()  # the stage stopped while this call waited for a slot
            result, reasks = await self._call_with_reasks(
                messages, sample_params(params, sample_index), schema, structured
            )
        result.latency_s = time.perf_counter() - acquired
        result.queue_s = acquired - start
        if (
            result.ok
        ):  # an ok result is final for its key: its id is the key's, so reruns give identical artifacts
            result.call_id = ok_call_id(key)
        elif isinstance(self.backend, BatchBackend):
            # a failure replayed from stored batch replies is the same call in every wave: one row for it
            # (online, a retried failure is a new call and gets a new row)
            result.call_id = replayed_call_id(key, result, reasks)
        if self.store is not None:
            self.store.record(
                key=key,
                backend=self.backend.kind,
                result=result,
                messages=messages,
                params=params,
                schema=schema_json,
                sample_index=sample_index,
                purpose=purpose,
                reasks=reasks,
            )
        if breaker is not None:
            breaker.record(result.ok, result.error)
            breaker.check()
        return result

    async def send(
        self, messages: list[Message], params: ChatParams, structured: StructuredRequest | None
    ) -> tuple[BackendReply | None, str | None, int]:
        """One backend request with this client's retries and concurrency limit, no cache, log or validation:
        ``(reply, None, attempts)`` or ``(None, reason, attempts)``. Executors that answer the requests of a
        wave elsewhere (a Ray worker) use it; the stage's own ``chat`` validates the reply when it replays."""
        async with self._semaphore():
            return await self._call_with_retries(messages, params, structured)

    def chat_sync(
        self,
        messages: list[Message],
        *,
        params: ChatParams | None = None,
        schema: type[BaseModel] | None = None,
        sample_index: int = 0,
        purpose: str = "",
    ) -> ChatResult:
        """Blocking ``chat`` for synchronous callers (runs on the client's own event-loop thread)."""
        fut: Future[ChatResult] = asyncio.run_coroutine_threadsafe(
            self.chat(messages, params=params, schema=schema, sample_index=sample_index, purpose=purpose),
            self._ensure_sync_loop(),
        )
        return fut.result()

    async def aclose(self) -> None:
        """Close backend clients bound to this event loop and the private loop of ``chat_sync``.

        Rows this client queued in its call store are committed first (the store itself stays open: its
        owner closes it), so another store opened on the same file sees every finished call.
        """
        await self.backend.aclose()
        if self.store is not None:
            await asyncio.to_thread(self.store.flush)
        self._stop_sync_loop()

    def close(self) -> None:
        """Synchronous counterpart of ``aclose`` for users of ``chat_sync``."""
        loop = self._sync_loop
        if loop is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(self.backend.aclose(), loop).result()
        if self.store is not None:
            self.store.flush()
        self._stop_sync_loop()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------------------
    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        entry = self._semaphores.get(id(loop))
        if entry is None or entry[0] is not loop:
            entry = (loop, asyncio.Semaphore(self.concurrency))
            self._semaphores[id(loop)] = entry
        return entry[1]

    async def _call_with_reasks(
        self, messages: list[Message], params: ChatParams, schema: type[BaseModel] | None, structured: Any
    ) -> tuple[ChatResult, int]:
        convo = list(messages)
        usage = Usage()
        attempts_total = 0
        reasks = 0
        while True:
            reply, error, attempts = await self._call_with_retries(convo, params, structured)
            attempts_total += attempts
            if reply is None:
                return self._result("failed", error=error, usage=usage, attempts=attempts_total), reasks
            usage = Usage(
                prompt_tokens=usage.prompt_tokens + reply.usage.prompt_tokens,
                completion_tokens=usage.completion_tokens + reply.usage.completion_tokens,
            )
            if schema is None:
                return self._result(
                    "ok",
                    text=reply.text,
                    usage=usage,
                    attempts=attempts_total,
                    logprobs=reply.logprobs,
                    finish_reason=reply.finish_reason,
                ), reasks
            parsed, reason = validate(schema, reply.text)
            if parsed is not None:
                return self._result(
                    "ok",
                    text=reply.text,
                    parsed=parsed,
                    usage=usage,
                    attempts=attempts_total,
                    logprobs=reply.logprobs,
                    finish_reason=reply.finish_reason,
                ), reasks
            if reasks >= self.max_reasks:
                return self._result(
                    "failed",
                    text=reply.text,
                    usage=usage,
                    attempts=attempts_total,
                    finish_reason=reply.finish_reason,
                    error=f"invalid structured output ({schema.__name__}) after {reasks + 1} tries: {reason}",
                ), reasks
            reasks += 1
            convo = convo + reask_message(reply.text, reason or "invalid", structured.schema)

    async def _call_with_retries(
        self, messages: list[Message], params: ChatParams, structured: Any
    ) -> tuple[Any, str | None, int]:
        """Return ``(reply, None, attempts)`` or ``(None, reason, attempts)``."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self.backend.complete(messages, params, structured), None, attempt
            except TransientError as exc:
                if attempt > self.retry.max_retries:
                    return None, f"gave up after {attempt} attempts: {exc}", attempt
                if self.breaker is not None:
                    self.breaker.check()  # the stage stopped: abandon this call (no row), do not retry
                await asyncio.sleep(self.retry.delay(attempt - 1, exc.retry_after_s))
                if self.breaker is not None:
                    self.breaker.check()
            except PermanentError as exc:
                return None, f"permanent error: {exc}", attempt
            except (asyncio.CancelledError, UserError, DeferredCall):
                raise
            except Exception as exc:  # a backend bug or library error: recorded, never raised
                return None, f"backend error: {type(exc).__name__}: {exc}", attempt

    def _result(
        self,
        status: Literal["ok", "failed"],
        *,
        text: str = "",
        parsed: Any = None,
        error: str | None = None,
        usage: Usage | None = None,
        attempts: int = 1,
        logprobs: Any = None,
        finish_reason: str | None = None,
    ) -> ChatResult:
        return ChatResult(
            call_id=new_call_id(),
            model=self.model,
            status=status,
            text=text,
            parsed=parsed,
            error=error,
            usage=usage or Usage(),
            attempts=attempts,
            logprobs=logprobs,
            finish_reason=finish_reason,
        )

    def _ensure_sync_loop(self) -> asyncio.AbstractEventLoop:
        with self._sync_lock:
            if self._sync_loop is None:
                loop = asyncio.new_event_loop()
                t = threading.Thread(target=loop.run_forever, name="llm-client-loop", daemon=True)
                t.start()
                self._sync_loop, self._sync_thread = loop, t
            return self._sync_loop

    def _stop_sync_loop(self) -> None:
        with self._sync_lock:
            loop, t = self._sync_loop, self._sync_thread
            self._sync_loop = self._sync_thread = None
        if loop is not None and t is not None:
            if threading.current_thread() is t:  # aclose awaited on the private loop itself
                loop.call_soon(loop.stop)
                return
            loop.call_soon_threadsafe(loop.stop)
            t.join(timeout=10)
            loop.close()
