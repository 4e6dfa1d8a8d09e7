"""Rows for ``ray.data.llm``'s vLLM engine processor, and its output rows back as chat completions.

A deferred request (``deferred.request_body``: what the ``openai/`` backend would send) becomes a processor
row: ``messages`` for the chat-template stage and ``sampling_params`` for the engine (temperature, top_p,
max_tokens, seed, stop, logprobs; a JSON schema as ``structured_outputs.json``). The engine's output row
(``generated_text``, ``num_input_tokens``, ``num_generated_tokens``, ``generated_tokens``, ``logprobs``)
becomes the ``(status_code, chat completion JSON, error)`` answer the batch store keeps, so the stage
replays it through the client exactly like an answer from an OpenAI-compatible endpoint.

The processor reports no finish reason: a reply that used the whole ``max_tokens`` budget is reported as
``length`` (cut off), any other as ``stop``, which is what the truncation re-asks need. No ``model`` column
is passed: in the processor a per-row model names a LoRA adapter.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .backends.base import BackendReply
from .deferred import body_from_reply
from .types import Usage

Answer = tuple[int | None, str | None, str | None]
#: the column that carries the request body (canonical JSON) through the processor to ``postprocess``
BODY = "body"
#: the column ``ray.data.llm`` fills on a row that failed when ``should_continue_on_error`` is set
ERROR_COLUMN = "__inference_error__"


def sampling_params(body: Mapping[str, Any]) -> dict[str, Any]:
    """vLLM ``SamplingParams`` keyword arguments for a request body."""
    params: dict[str, Any] = {
        "temperature": float(body.get("temperature", 0.7)),
        "top_p": float(body.get("top_p", 1.0)),
        "max_tokens": int(body.get("max_tokens", 256)),
    }
    if body.get("seed") is not None:
        params["seed"] = int(body["seed"])
    stop = body.get("stop")
    if stop:
        params["stop"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("logprobs"):
        params["logprobs"] = int(body.get("top_logprobs") or 0)
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        params["structured_outputs"] = {"json": (fmt.get("json_schema") or {}).get("schema") or {}}
    elif fmt.get("type") == "json_object":
        params["structured_outputs"] = {"json_object": True}
    return params


def preprocess(row: dict[str, Any]) -> dict[str, Any]:
    """``build_processor(preprocess=…)``: ``{"id", "body"}`` → the processor's input row (id and body kept)."""
    body = json.loads(str(row[BODY]))
    return {
        "id": str(row["id"]),
        BODY: str(row[BODY]),
        "messages": [{"role": str(m["role"]), "content": str(m["content"])} for m in body["messages"]],
        "sampling_params": sampling_params(body),
    }


def _logprobs(row: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """vLLM's per-token ``{token_id: {logprob, rank, decoded_token}}`` as OpenAI ``logprobs.content``."""
    steps = row.get("logprobs")
    if steps is None or len(steps) == 0:
        return None
    chosen: Sequence[Any] = list(row.get("generated_tokens") or [])
    out: list[dict[str, Any]] = []
    for i, step in enumerate(steps):
        if not step:
            continue
        entries = {int(k): v for k, v in dict(step).items() if v is not None}
        token_id = int(chosen[i]) if i < len(chosen) else None
        pick = entries.get(token_id) if token_id is not None else None
        ranked = sorted(entries.values(), key=lambda e: int(e.get("rank") or 0))
        if pick is None and ranked:
            pick = ranked[0]
        if pick is None:
            continue
        top = [e for e in ranked if int(e.get("rank") or 0) >= 1]
        out.append(
            {
                "token": str(pick.get("decoded_token") or ""),
                "logprob": float(pick["logprob"]),
                "top_logprobs": [
                    {"token": str(e.get("decoded_token") or ""), "logprob": float(e["logprob"])} for e in top
                ],
            }
        )
    return out or None


def error_of(row: Mapping[str, Any]) -> str:
    """The engine's error on a row, or "" (rows gathered in a table hold NaN or None where it is absent)."""
    value = row.get(ERROR_COLUMN)
    return value if isinstance(value, str) else ""


def answer_from_output(row: Mapping[str, Any]) -> Answer:
    """The batch store's answer for one processor output row (a failed row is an error recorded as data)."""
    error = error_of(row)
    if error:
        return None, None, f"vllm: {' '.join(error.split())[:300]}"
    body = json.loads(str(row[BODY]))
    generated = int(row.get("num_generated_tokens") or 0)
    budget = int(body.get("max_tokens", 256))
    reply = BackendReply(
        text=str(row.get("generated_text") or ""),
        usage=Usage(prompt_tokens=int(row.get("num_input_tokens") or 0), completion_tokens=generated),
        logprobs=_logprobs(row) if body.get("logprobs") else None,
        finish_reason="length" if generated >= budget else "stop",
    )
    return 200, json.dumps(body_from_reply(reply), ensure_ascii=False, separators=(",", ":")), None


def postprocess(row: dict[str, Any]) -> dict[str, Any]:
    """``build_processor(postprocess=…)``: an output row → ``{"id", "status_code", "response", "error"}``."""
    code, response, error = answer_from_output(row)
    return {"id": str(row["id"]), "status_code": code or 0, "response": response or "", "error": error or ""}


__all__ = [
    "Answer",
    "BODY",
    "ERROR_COLUMN",
    "answer_from_output",
    "error_of",
    "postprocess",
    "preprocess",
    "sampling_params",
]
