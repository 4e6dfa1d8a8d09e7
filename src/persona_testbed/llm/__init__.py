"""LLM layer: model strings, backends (embedded, gguf, openai, mock), ``LLMClient``, SQLite call log + cache.

See docs/llm.md and the "LLM contract" in docs/architecture.md.
"""

import os as _os

# llama.cpp's OpenMP threads busy-wait by default; on a shared or oversubscribed CPU that makes the embedded
# model 10-20x slower (measured: 32 tokens in 0.7 s passive vs 9-15 s active on 2 busy cores). It must be set
# before llama_cpp is first imported; an explicit setting by the user wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .backends import MockBackend, PermanentError, TransientError
from .breaker import FailureBreaker
from .client import LLMClient
from .models import ModelSpec, parse_model
from .store import CallStore
from .types import ChatParams, ChatResult, Message, Usage

__all__ = [
    "CallStore",
    "ChatParams",
    "ChatResult",
    "FailureBreaker",
    "LLMClient",
    "Message",
    "MockBackend",
    "ModelSpec",
    "PermanentError",
    "TransientError",
    "Usage",
    "parse_model",
]
