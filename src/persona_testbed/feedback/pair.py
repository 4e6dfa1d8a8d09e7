"""One pair, step by step: rejected -> critique -> chosen (length band) -> persona-judge in both orders."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from ..core.hashing import content_hash
from ..core.seeds import derive_int
from ..llm.types import ChatParams
from . import templates
from .leakage import can_check, check_pair
from .length import DEFAULT_MAX_ATTEMPTS, LengthBand, band_distance, count_words, trim_to_band
from .record import FLAG_JUDGE, FLAG_LENGTH, PairValidation, PreferencePair, truncated_flag

TRUNCATION_BUDGET_FACTOR = 2  # a reply cut off at max_tokens is asked once more with this times the budget


class GenerationParams(BaseModel):
    """Everything besides the persona and the question that determines a pair's content."""

    seed: int = 0
    persona_format: Literal["full", "list", "summary"] = "summary"
    temperature: float = 0.7
    max_tokens: int = 256  # answers and revisions
    critique_max_tokens: int = 160
    judge_max_tokens: int = 16
    max_revision_attempts: int = DEFAULT_MAX_ATTEMPTS
    # chosen words within low..high x rejected words (length.py; --length-band-low/--length-band-high)
    length_band: LengthBand = LengthBand()
    validate_pairs: bool = True

    def config_key(self, model: str) -> str:
        """Hash of these parameters, the model and the template version (checkpoint entries must match)."""
        params = self.model_dump(include=set(GenerationParams.model_fields))  # not counts / concurrency
        return content_hash(
            {"params": params, "model": model, "template_version": templates.TEMPLATE_VERSION}, 16
        )


class _Step:
    """Accumulates call ids and token usage of one pair."""

    def __init__(self) -> None:
        self.call_ids: dict[str, list[str]] = {}
        self.finish_reasons: dict[str, list[str | None]] = {}
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.new_tokens = 0  # completion tokens of calls that were not replayed from the cache

    def add(self, step: str, res: Any) -> None:
        self.call_ids.setdefault(step, []).append(res.call_id)
        self.finish_reasons.setdefault(step, []).append(res.finish_reason)
        self.prompt_tokens += res.usage.prompt_tokens
        self.completion_tokens += res.usage.completion_tokens
        if not res.cached:
            self.new_tokens += res.usage.completion_tokens


def _params(
    gp: GenerationParams, item_id: str, step: str, max_tokens: int, temperature: float | None = None
) -> ChatParams:
    return ChatParams(
        temperature=gp.temperature if temperature is None else temperature,
        max_tokens=max_tokens,
        seed=derive_int(gp.seed, "feedback", templates.TEMPLATE_VERSION, item_id, step),
    )


async def _judge(client, gp: GenerationParams, pair: PreferencePair, acc: _Step) -> PairValidation:
    v = PairValidation()
    errors = []
    for order, (a, b) in (("ab", (pair.chosen, pair.rejected)), ("ba", (pair.rejected, pair.chosen))):
        res = await client.chat(
            templates.judge_messages(pair.persona_text, pair.question, a, b),
            params=_params(gp, pair.id, f"judge_{order}", gp.judge_max_tokens, 0.0),
            schema=templates.JudgeChoice,
            purpose=f"feedback.judge_{order}",
        )
        acc.add(f"judge_{order}", res)
        if res.ok and res.parsed is not None:
            choice = templates.JudgeChoice.model_validate(
                res.parsed.model_dump() if isinstance(res.parsed, BaseModel) else res.parsed
            ).choice
            setattr(v, f"choice_{order}", choice)
        else:
            errors.append(f"{order}: {res.error or 'no parsed answer'}")
    v.error = "; ".join(errors) or None
    return v


async def _ask(
    client,
    gp: GenerationParams,
    acc: _Step,
    step: str,
    messages,
    item_id: str,
    max_tokens: int,
    *,
    sample_index: int = 0,
    reask: bool = True,
) -> tuple[Any, int]:
    """One step's call; a reply cut off at ``max_tokens`` is asked once more (``reask``) with twice the budget.

    Returns ``(result, budget of the last call)``; ``result.truncated`` says the last reply was cut off.
    """
    purpose = f"feedback.{step}"
    res = await client.chat(
        messages, params=_params(gp, item_id, step, max_tokens), sample_index=sample_index, purpose=purpose
    )
    acc.add(step, res)
    if reask and res.ok and res.truncated:
        max_tokens *= TRUNCATION_BUDGET_FACTOR
        res = await client.chat(
            messages,
            params=_params(gp, item_id, step, max_tokens),
            sample_index=sample_index,
            purpose=purpose,
        )
        acc.add(step, res)
    return res, max_tokens


async def make_pair(
    client,
    gp: GenerationParams,
    *,
    pair_id: str,
    persona_id: str,
    prompt_id: str,
    split: str,
    question: str,
    persona_text: str,
    persona: Any = None,
) -> tuple[PreferencePair, int]:
    """Generate one pair; returns it (status ok or failed, never raises for model failures) and its new tokens.

    Each step's answer cut off at its token limit is asked again once with twice the limit; still cut off,
    the pair is kept and flagged ``truncated:<step>``. The chosen answer must land in the word band around
    the rejected one (``length.py``); else it is flagged ``length_out_of_band``. With ``persona`` (a
    ``Persona``), the ok pair gets its attribute-leakage check (``pair.leakage``).
    """
    acc = _Step()
    pair = PreferencePair(
        id=pair_id,
        persona_id=persona_id,
        prompt_id=prompt_id,
        split=split,  # type: ignore[arg-type]
        question=question,
        persona_text=persona_text,
        model=client.model,
        template_version=templates.TEMPLATE_VERSION,
        seed=gp.seed,
        config_key=gp.config_key(client.model),
    )

    def fail(error: str) -> tuple[PreferencePair, int]:
        pair.status, pair.error = "failed", error
        return _finish(pair, acc), acc.new_tokens

    # The rejected answer knows nothing of the persona: its seed depends on the prompt only, so every
    # persona sampling this prompt shares one (cached) call, and its re-ask with a larger budget.
    res, budget = await _ask(
        client, gp, acc, "rejected", templates.answer_messages(question), prompt_id, gp.max_tokens
    )
    if not res.ok:
        return fail(f"rejected: {res.error}")
    pair.rejected = res.text.strip()
    if not pair.rejected:
        return fail("rejected: the model returned an empty answer")
    if res.truncated:
        pair.add_flag(truncated_flag("rejected"))

    res, _ = await _ask(
        client,
        gp,
        acc,
        "critique",
        templates.critique_messages(persona_text, question, pair.rejected),
        pair_id,
        gp.critique_max_tokens,
    )
    if not res.ok:
        return fail(f"critique: {res.error}")
    pair.critique = res.text.strip()
    if not pair.critique:
        return fail("critique: the model returned an empty critique")
    if res.truncated:
        pair.add_flag(truncated_flag("critique"))

    error = await _revise(client, gp, acc, pair, budget)  # the budget the rejected answer needed
    if error:
        return fail(error)

    if persona is not None and can_check(persona):  # text-only personas: unchecked (leakage None)
        pair.leakage = check_pair(persona, question, pair.rejected, pair.chosen)
    if gp.validate_pairs:
        pair.validation = await _judge(client, gp, pair, acc)
        pair.flagged = pair.validation.flagged
        if pair.flagged:
            pair.add_flag(FLAG_JUDGE)
    return _finish(pair, acc), acc.new_tokens


async def _revise(client, gp: GenerationParams, acc: _Step, pair: PreferencePair, budget: int) -> str | None:
    """The chosen step: revisions until one lands in the word band (see ``length.py``); returns an error."""
    bounds = gp.length_band.bounds(count_words(pair.rejected))
    pair.length_target = bounds
    attempts: list[tuple[str, bool]] = []  # (text, cut off at the token limit)
    previous: int | None = None
    start_budget = budget
    for attempt in range(max(1, gp.max_revision_attempts)):
        messages = templates.revise_messages(
            pair.persona_text, pair.question, pair.rejected, pair.critique, bounds, previous
        )
        # one re-ask for a cut-off revision per step: later attempts keep the larger budget
        res, budget = await _ask(
            client,
            gp,
            acc,
            "chosen",
            messages,
            pair.id,
            budget,
            sample_index=attempt,
            reask=budget == start_budget,
        )
        pair.revision_attempts = attempt + 1
        if not res.ok:
            return f"chosen: {res.error}"
        text = res.text.strip()
        if not text:
            continue
        attempts.append((text, res.truncated))
        words = count_words(text)
        if band_distance(words, bounds) == 0:
            if not res.truncated:
                pair.chosen = text
                pair.length_action = "ok" if attempt == 0 else "retried"
                return None
        else:
            previous = words
    if not attempts:
        return f"chosen: the model returned an empty revision {pair.revision_attempts} times"
    complete = [t for t, cut in attempts if not cut]
    reference = count_words(pair.rejected)
    trimmed = [x for x in (trim_to_band(t, bounds, reference) for t in complete) if x]
    if trimmed:  # too long, but a sentence end lands in the band: cut there, never inside a sentence
        pair.chosen = min(trimmed, key=lambda t: abs(count_words(t) - reference))
        pair.length_action = "trimmed"
        return None
    text, cut = min(attempts, key=lambda a: (a[1], band_distance(count_words(a[0]), bounds)))
    pair.chosen = text
    if band_distance(count_words(text), bounds):
        pair.length_action = "out_of_band"
        pair.add_flag(FLAG_LENGTH)
    else:  # in the band, but every attempt was cut off at the token limit
        pair.length_action = "ok" if len(attempts) == 1 else "retried"
    if cut:
        pair.add_flag(truncated_flag("chosen"))
    return None


def _finish(pair: PreferencePair, acc: _Step) -> PreferencePair:
    pair.call_ids = acc.call_ids
    pair.finish_reasons = acc.finish_reasons
    pair.prompt_tokens, pair.completion_tokens = acc.prompt_tokens, acc.completion_tokens
    return pair
