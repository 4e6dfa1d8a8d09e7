"""``openai/<model>``: any OpenAI-compatible server (OpenAI, vLLM, SGLang, Ollama, llama.cpp server ...).

Uses the ``openai`` SDK's ``AsyncOpenAI`` with its own retries off (``LLMClient`` retries). Base URL:
explicit > ``OPENAI_BASE_URL`` > api.openai.com. Key: explicit > ``OPENAI_API_KEY``; a server other than
api.openai.com without a key gets a placeholder key (local servers rarely check it).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any
from urllib.parse import urlparse

from ...core.errors import UserError
from ..models import ModelSpec
from ..retry import parse_retry_after
from ..types import ChatParams, Message, Usage
from .base import BackendReply, PermanentError, StructuredRequest, TransientError

PLACEHOLDER_KEY = "sk-no-key-required"
RETRYABLE_STATUS = {408, 409, 429}


def _is_openai_host(base_url: str | None) -> bool:
    if not base_url:
        return True
    host = (urlparse(base_url).hostname or "").lower()
    return host == "api.openai.com"


class OpenAIBackend:
    kind = "openai"

    def __init__(
        self,
        spec: ModelSpec,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 120.0,
    ):
        self.model_id = spec.name
        self.model_string = spec.model_string
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        key = api_key or os.environ.get("OPENAI_API_KEY") or None
        if key is None:
            if _is_openai_host(self.base_url):
                raise UserError(
                    f"model {spec.model_string!r} needs an API key: set OPENAI_API_KEY (export "
                    "OPENAI_API_KEY=sk-...), or point OPENAI_BASE_URL at your own OpenAI-compatible server "
                    "(e.g. export OPENAI_BASE_URL=http://127.0.0.1:8000/v1)"
                )
            key = PLACEHOLDER_KEY
        self._api_key = key  # kept in memory only; never logged or stored
        self.timeout_s = timeout_s
        self._clients: dict[int, tuple[asyncio.AbstractEventLoop, Any]] = {}
        # "json_schema" (OpenAI, vLLM, SGLang) or "json_object" + schema (llama.cpp server, which rejects
        # json_schema); switched once per backend when the server refuses the first form.
        self.response_format_style = "json_schema"

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIBackend(model={self.model_id!r}, base_url={self.base_url!r})"

    def _client(self) -> Any:
        import openai

        loop = asyncio.get_running_loop()
        entry = self._clients.get(id(loop))
        if entry is None or entry[0] is not loop:
            client = openai.AsyncOpenAI(
                api_key=self._api_key, base_url=self.base_url, max_retries=0, timeout=self.timeout_s
            )
            entry = (loop, client)
            self._clients[id(loop)] = entry
        return entry[1]

    async def complete(
        self, messages: list[Message], params: ChatParams, structured: StructuredRequest | None
    ) -> BackendReply:
        import openai

        kwargs: dict[str, Any] = {
            "model": self.model_id,
            "messages": messages,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
        }
        if params.seed is not None:
            kwargs["seed"] = params.seed
        if params.stop:
            kwargs["stop"] = params.stop
        if params.logprobs:
            kwargs["logprobs"] = True
            if params.top_logprobs:
                kwargs["top_logprobs"] = params.top_logprobs
        style = self.response_format_style
        if structured is not None:
            kwargs["response_format"] = _response_format(structured, style)
        try:
            resp = await self._client().chat.completions.create(**kwargs)
        except openai.APIStatusError as exc:
            code = exc.status_code
            detail = _short(exc.message)
            if (
                structured is not None
                and style == "json_schema"
                and code in (400, 422, 500)
                and "response_format" in str(exc.message)
            ):
                self.response_format_style = "json_object"  # server only knows {"type": "json_object"}
                return await self.complete(messages, params, structured)
            if code in RETRYABLE_STATUS or code >= 500:
                retry_after = parse_retry_after(exc.response.headers.get("retry-after"))
                raise TransientError(f"HTTP {code}: {detail}", retry_after) from None
            raise PermanentError(f"HTTP {code}: {detail}") from None
        except openai.APITimeoutError:
            raise TransientError(
                f"timeout after {self.timeout_s:g}s ({self.base_url or 'api.openai.com'})"
            ) from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            root = _os_error(cause)
            why = f" [{type(root).__name__}: {os.strerror(root.errno or 0)}]" if root is not None else ""
            raise TransientError(
                f"connection error ({self.base_url or 'api.openai.com'}): "
                f"{type(cause).__name__}: {_short(str(cause))}{why}"
            ) from None
        except (json.JSONDecodeError, ValueError) as exc:  # body not JSON / not a completion
            raise TransientError(f"invalid response body: {type(exc).__name__}: {_short(str(exc))}") from None
        return _reply(resp)

    async def aclose(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        entry = self._clients.pop(id(loop), None)
        if entry is not None:
            await entry[1].close()


def _response_format(structured: StructuredRequest, style: str) -> dict[str, Any]:
    if style == "json_object":
        return {"type": "json_object", "schema": structured.schema}
    return {"type": "json_schema", "json_schema": {"name": structured.name, "schema": structured.schema}}


def _os_error(exc: BaseException) -> OSError | None:
    """The innermost ``OSError`` with an errno under ``exc`` (httpx reports "All connection attempts
    failed" and keeps the ``ConnectionRefusedError`` several causes down)."""
    found, seen = None, set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno:
            found = cur
        cur = cur.__cause__ or cur.__context__
    return found


def _short(s: str, n: int = 300) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 1] + "…"


def _reply(resp: Any) -> BackendReply:
    """Turn a ChatCompletion into a reply; a body that is not one is a transient 'invalid body' fault."""
    choices = getattr(resp, "choices", None)
    if not choices:
        raise TransientError(f"invalid response body: no choices ({_short(repr(resp), 120)})")
    choice = choices[0]
    text = (choice.message.content if choice.message is not None else None) or ""
    u = getattr(resp, "usage", None)
    usage = Usage(
        prompt_tokens=getattr(u, "prompt_tokens", 0) or 0,
        completion_tokens=getattr(u, "completion_tokens", 0) or 0,
    )
    logprobs = None
    lp = getattr(choice, "logprobs", None)
    if lp is not None and getattr(lp, "content", None):
        logprobs = [
            {
                "token": t.token,
                "logprob": t.logprob,
                "top_logprobs": [{"token": x.token, "logprob": x.logprob} for x in (t.top_logprobs or [])],
            }
            for t in lp.content
        ]
    finish = getattr(choice, "finish_reason", None)
    return BackendReply(
        text=text, usage=usage, logprobs=logprobs, finish_reason=str(finish) if finish else None
    )
