"""Backends by model string: ``embedded`` / ``gguf:`` (llama.cpp in-process), ``openai/`` , ``mock``,
``scripted:...`` (a world with known truth for the bench). ``vllm/`` has no online backend: its requests are
deferred and answered by vLLM engines on Ray (``--executor ray``) or by ``vllm run-batch`` (``--executor batch``)."""

from __future__ import annotations

from ...core.errors import UserError
from ..models import parse_model
from .base import Backend, BackendReply, PermanentError, StructuredRequest, TransientError
from .mock import MockBackend
from .scripted import ScriptedBackend


def make_backend(
    model: str, *, base_url: str | None = None, api_key: str | None = None, timeout_s: float = 120.0
) -> Backend:
    """The backend for a model string; ``UserError`` for unknown strings, missing files or keys."""
    spec = parse_model(model)
    if spec.kind == "mock":
        return MockBackend()
    if spec.kind == "scripted":
        return ScriptedBackend(spec.model_string)
    if spec.kind == "openai":
        from .openai_compat import OpenAIBackend

        return OpenAIBackend(spec, base_url=base_url, api_key=api_key, timeout_s=timeout_s)
    if spec.kind == "vllm":
        raise UserError(
            f"{spec.model_string}: vllm/ models run in vLLM engines on Ray GPU workers (--executor ray, "
            "pip install 'persona-testbed[vllm]') or through `vllm run-batch` (--executor batch, then "
            "`batch submit --vllm`); for a running vLLM server use openai/<model> with OPENAI_BASE_URL"
        )
    from .llamacpp import LlamaCppBackend

    return LlamaCppBackend(spec)


__all__ = [
    "Backend",
    "BackendReply",
    "MockBackend",
    "PermanentError",
    "ScriptedBackend",
    "StructuredRequest",
    "TransientError",
    "make_backend",
]
