"""Structured output: a pydantic model's JSON schema in, a validated object (or the reason it failed) out."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ValidationError

from .backends.base import StructuredRequest

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def structured_request(schema: type[BaseModel]) -> StructuredRequest:
    """The request a backend turns into a grammar (llama.cpp) or ``response_format`` (OpenAI)."""
    return StructuredRequest(name=schema.__name__, schema=schema.model_json_schema())


def _candidates(text: str) -> list[str]:
    out = [text.strip()]
    m = _FENCE.search(text)
    if m:
        out.append(m.group(1).strip())
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        out.append(text[start : end + 1])
    return out


def _lenient_validate(schema: type[BaseModel], text: str) -> dict[str, Any] | None:
    """Accept raw control characters (newlines, tabs) inside JSON strings.

    llama.cpp's JSON grammar lets a raw newline into a string; strict JSON forbids it, but the meaning is
    unambiguous, so such replies are accepted rather than re-asked.
    """
    try:
        obj = json.loads(text, strict=False)
    except ValueError:
        return None
    try:
        return schema.model_validate(obj).model_dump(mode="json")
    except ValidationError:
        return None


def validate(schema: type[BaseModel], text: str) -> tuple[dict[str, Any] | None, str | None]:
    """``(model.model_dump(mode="json"), None)`` when ``text`` holds a valid object, else ``(None, reason)``.

    Accepts the JSON bare, inside a ```json fence, or as the outermost ``{...}`` of the reply.
    """
    first_error: str | None = None
    for cand in _candidates(text):
        try:
            return schema.model_validate_json(cand).model_dump(mode="json"), None
        except ValidationError as exc:
            lenient = _lenient_validate(schema, cand)
            if lenient is not None:
                return lenient, None
            if first_error is None:
                errs = exc.errors(include_url=False)
                first_error = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ())) or '(root)'}: {e.get('msg')}"
                    for e in errs[:5]
                )
    return None, first_error or "empty reply"


def reask_message(bad_reply: str, reason: str, schema: dict[str, Any]) -> list[dict[str, str]]:
    """Follow-up turns that show the model its invalid reply and the validation error."""
    return [
        {"role": "assistant", "content": bad_reply},
        {
            "role": "user",
            "content": (
                f"That reply is not valid: {reason}. Reply again with only one JSON object that matches this "
                f"JSON schema, no other text: {json.dumps(schema, separators=(',', ':'))}"
            ),
        },
    ]
