"""One pair, step by step: rejected -> critique -> chosen (length policy) -> persona-judge in both orders."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from ..core.hashing import content_hash
from ..core.seeds import derive_int
from . import templates
from .leakage import check_pair
from .length import DEFAULT_MAX_ATTEMPTS, truncate_to
from .record import PairValidation, PreferencePair


class GenerationParams(BaseModel):
    """Everything besides the persona and the question that determines a pair's content."""

    seed: int = 0
    persona_format: Literal["full", "list", "summary"] = "summary"
    temperature: float = 0.7
    max_tokens: int = 256  # answers and revisions
    critique_max_tokens: int = 160
    judge_max_tokens: int = 16
    max_revision_attempts: int = DEFAULT_MAX_ATTEMPTS
    validate_pairs: bool = True

    def config_key(self, model: str) -> str:
        """Hash of these parameters, the model and the template version (checkpoint entries must match)."""
        params = self.model_dump(include=set(GenerationParams.model_fields))  # not counts / concurrency
        return content_hash({"params": params, "model": model,
                             "template_version": templates.TEMPLATE_VERSION}, 16)


class _Step:
    """Accumulates call ids and token usage of one pair."""

    def __init__(self) -> None:
        self.call_ids: dict[str, list[str]] = {}
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.new_tokens = 0  # completion tokens of calls that were not replayed from the cache

    def add(self, step: str, res: Any) -> None:
        self.call_ids.setdefault(step, []).append(res.call_id)
        self.prompt_tokens += res.usage.prompt_tokens
        self.completion_tokens += res.usage.completion_tokens
        if not res.cached:
            self.new_tokens += res.usage.completion_tokens


def _params(gp: GenerationParams, item_id: str, step: str, max_tokens: int, temperature: float | None = None):
    from ..llm import ChatParams

    return ChatParams(temperature=gp.temperature if temperature is None else temperature, max_tokens=max_tokens,
                      seed=derive_int(gp.seed, "feedback", templates.TEMPLATE_VERSION, item_id, step))


async def _judge(client, gp: GenerationParams, pair: PreferencePair, acc: _Step) -> PairValidation:
    v = PairValidation()
    errors = []
    for order, (a, b) in (("ab", (pair.chosen, pair.rejected)), ("ba", (pair.rejected, pair.chosen))):
        res = await client.chat(templates.judge_messages(pair.persona_text, pair.question, a, b),
                                params=_params(gp, pair.id, f"judge_{order}", gp.judge_max_tokens, 0.0),
                                schema=templates.JudgeChoice, purpose=f"feedback.judge_{order}")
        acc.add(f"judge_{order}", res)
        if res.ok and res.parsed is not None:
            choice = templates.JudgeChoice.model_validate(
                res.parsed.model_dump() if isinstance(res.parsed, BaseModel) else res.parsed).choice
            setattr(v, f"choice_{order}", choice)
        else:
            errors.append(f"{order}: {res.error or 'no parsed answer'}")
    v.error = "; ".join(errors) or None
    return v


async def make_pair(client, gp: GenerationParams, *, pair_id: str, persona_id: str, prompt_id: str, split: str,
                    question: str, persona_text: str, persona: Any = None) -> tuple[PreferencePair, int]:
    """Generate one pair; returns it (status ok or failed, never raises for model failures) and its new tokens.

    With ``persona`` (a ``Persona``), the ok pair gets its attribute-leakage check (``pair.leakage``).
    """
    acc = _Step()
    pair = PreferencePair(id=pair_id, persona_id=persona_id, prompt_id=prompt_id, split=split,  # type: ignore[arg-type]
                          question=question, persona_text=persona_text, model=client.model,
                          template_version=templates.TEMPLATE_VERSION, seed=gp.seed,
                          config_key=gp.config_key(client.model))

    def fail(error: str) -> tuple[PreferencePair, int]:
        pair.status, pair.error = "failed", error
        return _finish(pair, acc), acc.new_tokens

    # The rejected answer knows nothing of the persona: its seed depends on the prompt only, so every
    # persona sampling this prompt shares one (cached) call.
    res = await client.chat(templates.answer_messages(question), params=_params(gp, prompt_id, "rejected", gp.max_tokens),
                            purpose="feedback.rejected")
    acc.add("rejected", res)
    if not res.ok:
        return fail(f"rejected: {res.error}")
    pair.rejected = res.text.strip()
    if not pair.rejected:
        return fail("rejected: the model returned an empty answer")

    res = await client.chat(templates.critique_messages(persona_text, question, pair.rejected),
                            params=_params(gp, pair_id, "critique", gp.critique_max_tokens), purpose="feedback.critique")
    acc.add("critique", res)
    if not res.ok:
        return fail(f"critique: {res.error}")
    pair.critique = res.text.strip()
    if not pair.critique:
        return fail("critique: the model returned an empty critique")

    limit = len(pair.rejected)
    attempts: list[str] = []
    previous: int | None = None
    for attempt in range(max(1, gp.max_revision_attempts)):
        res = await client.chat(templates.revise_messages(persona_text, question, pair.rejected, pair.critique, previous),
                                params=_params(gp, pair_id, "chosen", gp.max_tokens), sample_index=attempt,
                                purpose="feedback.chosen")
        acc.add("chosen", res)
        pair.revision_attempts = attempt + 1
        if not res.ok:
            return fail(f"chosen: {res.error}")
        text = res.text.strip()
        if not text:
            continue
        attempts.append(text)
        if len(text) <= limit:
            pair.chosen = text
            pair.length_action = "ok" if attempt == 0 else "retried"
            break
        previous = len(text)
    else:
        if not attempts:
            return fail(f"chosen: the model returned an empty revision {pair.revision_attempts} times")
        pair.chosen = truncate_to(min(attempts, key=len), limit)
        pair.length_action = "truncated"
        if not pair.chosen:
            return fail("chosen: nothing left after truncating the revision to the original's length")

    if persona is not None:
        pair.leakage = check_pair(persona, question, pair.rejected, pair.chosen)
    if gp.validate_pairs:
        pair.validation = await _judge(client, gp, pair, acc)
        pair.flagged = pair.validation.flagged
    return _finish(pair, acc), acc.new_tokens


def _finish(pair: PreferencePair, acc: _Step) -> PreferencePair:
    pair.call_ids = acc.call_ids
    pair.prompt_tokens, pair.completion_tokens = acc.prompt_tokens, acc.completion_tokens
    return pair
