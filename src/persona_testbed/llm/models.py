"""Model strings: one string names one model (``embedded``, ``gguf:/path``, ``openai/<model>``,
``vllm/<hf-id-or-path>``, ``mock``, ``scripted[:spec]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from ..core.errors import UserError
from .world import parse_world

VALID_FORMS = (
    "'embedded', 'gguf:/path/model.gguf', 'openai/<model>', 'vllm/<hf-id-or-path>', "
    "'mock' or 'scripted[:spec]'"
)


class ModelSpec(BaseModel):
    """A parsed model string."""

    kind: Literal["embedded", "gguf", "openai", "vllm", "mock", "scripted"]
    name: str  # the model id sent to the backend (openai), the vLLM model source (vllm), the gguf path, ...
    model_string: str  # the original string, as stored in results and the call log

    @property
    def path(self) -> Path | None:
        return Path(self.name).expanduser() if self.kind == "gguf" else None


def parse_model(model: str) -> ModelSpec:
    """Parse a model string; raise ``UserError`` naming it (and the valid forms) when it is unknown."""
    s = (model or "").strip()
    if s == "embedded":
        return ModelSpec(kind="embedded", name="embedded", model_string=s)
    if s == "mock":
        return ModelSpec(kind="mock", name="mock", model_string=s)
    if s == "scripted" or s.startswith("scripted:"):
        parse_world(s)  # a malformed world is a UserError here, before anything is created
        return ModelSpec(kind="scripted", name=s, model_string=s)
    if s.startswith("gguf:") and len(s) > len("gguf:"):
        return ModelSpec(kind="gguf", name=s[len("gguf:") :], model_string=s)
    if s.startswith("openai/") and len(s) > len("openai/"):
        return ModelSpec(kind="openai", name=s[len("openai/") :], model_string=s)
    if s.startswith("vllm/") and len(s) > len("vllm/"):
        # a Hugging Face id or a local path, loaded by vLLM engines on Ray GPU workers (docs/execution.md)
        return ModelSpec(kind="vllm", name=s[len("vllm/") :], model_string=s)
    raise UserError(f"unknown model string {model!r}: use {VALID_FORMS}")
