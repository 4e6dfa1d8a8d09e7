"""LLM enrichment of personas, with an LLM consistency judge and census resampling.

For each persona, one structured (JSON-schema) call writes the fields that are still pending or only
procedural: ``detailed job description`` and the prose of ``defining quirks``, ``mannerisms``,
``personal time`` and ``lifestyle`` (built from the persona's procedural tags and a seeded selection of
idiosyncratic categories), plus ``ideology`` / ``political views`` / ``religion`` where no survey filled
them. Fields with provenance census, derived, imputed or survey are never touched.

Then (optionally) a judge model gives a verdict on the whole profile; an inconsistent persona is replaced
by a new census record from ``resample`` (enriched and judged again) up to ``max_resamples`` times.
Every input persona ends enriched, resampled-and-enriched, or as a recorded ``EnrichFailure``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, create_model

from ..core.hashing import content_hash
from ..core.output import err_console
from ..core.seeds import derive_int
from ..llm.types import ChatParams, ChatResult
from .diversity import (
    DEFAULT_CATEGORIES_PER_PERSONA,
    NEAR_DUPLICATE_COSINE,
    diversity_report,
    near_duplicates,
    pick_categories,
)
from .judge import JudgeVerdict, judge_persona, prose_pattern
from .record import LLM_FIELDS, PERSONA_FIELDS, FieldValue, Persona

ENRICH_PURPOSE = "personas.enrich"
# Survey-grounded fields the LLM fills only when no survey draw did.
SURVEY_FIELDS: tuple[str, ...] = ("ideology", "political views", "religion")
# Provenances an LLM may replace; everything else (census, derived, imputed, survey, llm) is kept.
WRITABLE_PROVENANCE = frozenset({"pending", "procedural"})
PAPER_JUDGE_REJECTION_RATE = 0.085  # Castricato et al. 2024: ~8.5% of profiles rejected
NEAR_DUPLICATE_TAG = "near_duplicate_of"  # tag listing the ids of a persona's near-duplicates

FIELD_GUIDANCE: dict[str, str] = {
    "detailed job description": "what this person does at work day to day, consistent with the occupation "
    "category, industry category, class of worker and employment status (if not working, name their "
    "last line of work, if any, and what fills their days now)",
    "defining quirks": "their defining quirks, written from the quirk tags",
    "mannerisms": "how they talk and carry themselves, written from the mannerism tags",
    "personal time": "how they spend their free time, written from the hobby tags",
    "lifestyle": "their lifestyle and what they value, written from the lifestyle and value tags",
    "ideology": "their political ideology on the liberal-conservative scale, in a few words",
    "political views": "their party identification, in a few words",
    "religion": "their religious affiliation (or none), in a few words",
}
assert set(FIELD_GUIDANCE) == set(LLM_FIELDS) | set(SURVEY_FIELDS)


class EnrichOptions(BaseModel):
    """Knobs of the enrichment prompt and sampling (all enter the call cache key through the request)."""

    categories_per_persona: int = Field(DEFAULT_CATEGORIES_PER_PERSONA, ge=0, le=10)
    max_chars: int = Field(240, ge=20, le=2000, description="longest value the schema allows per field")
    max_tokens: int | None = Field(None, ge=16, description="None: derived from the fields and max_chars")
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    judge_max_tokens: int = Field(160, ge=16)
    near_duplicate_threshold: float = Field(NEAR_DUPLICATE_COSINE, ge=0.0, le=1.0)


class EnrichFailure(BaseModel):
    """A persona (slot) that ended without an accepted enriched record, and why."""

    persona_id: str  # the input persona
    record_id: str  # the record that failed (the input, or one of its resamples)
    stage: Literal["enrich", "judge", "resample", "inconsistent"]
    error: str
    call_id: str | None = None
    resamples: int = 0


class EnrichResult(BaseModel):
    """Output of ``enrich_personas``: accepted personas (input order), failures, and a JSON-able report."""

    personas: list[Persona]
    failures: list[EnrichFailure]
    report: dict[str, Any]


ResampleFn = Callable[[Persona, int], "Persona | Awaitable[Persona]"]


# -- what to write ----------------------------------------------------------------------------------------


def fields_to_write(persona: Persona) -> list[str]:
    """The fields an LLM writes for this persona: LLM fields still pending/procedural, survey fields pending."""
    wanted = set(LLM_FIELDS) | set(SURVEY_FIELDS)
    return [n for n in PERSONA_FIELDS if n in wanted and persona.fields[n].provenance in WRITABLE_PROVENANCE]


def json_key(field: str) -> str:
    """JSON key of a field in the enrichment schema: spaces become underscores."""
    return field.replace(" ", "_")


@lru_cache(maxsize=64)
def enrichment_schema(fields: tuple[str, ...], max_chars: int) -> type[BaseModel]:
    """A pydantic model with one required, non-blank string (≤ ``max_chars``) per field to write.

    The pattern keeps control characters, double quotes and backslashes out of the values, so grammar-
    constrained decoders whose string rule admits raw newlines (llama-cpp-python's) still emit valid JSON.
    """
    text = Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=max_chars, pattern=prose_pattern(1, max_chars)
        ),
    ]
    spec: dict[str, Any] = {json_key(f): (text, Field(..., description=FIELD_GUIDANCE[f])) for f in fields}
    return create_model("PersonaEnrichment", **spec)


def default_max_tokens(n_fields: int, max_chars: int) -> int:
    """Enough tokens for ``n_fields`` values of ``max_chars`` characters plus JSON syntax."""
    return n_fields * (max_chars // 2 + 24) + 32


def enrichment_messages(
    persona: Persona, fields: Sequence[str], categories: Sequence[str], max_chars: int
) -> list[dict[str, str]]:
    """Chat messages for one persona: the facts it must respect, its tags, themes, and the fields to write."""
    facts = "\n".join(
        f"{n}: {persona.fields[n].value}"
        for n in PERSONA_FIELDS
        if n not in fields and persona.fields[n].provenance != "pending"
    )
    tags = (
        "\n".join(
            f"- {k}: {', '.join(v)}" for k, v in sorted(persona.tags.items()) if v and k != NEAR_DUPLICATE_TAG
        )
        or "- (none)"
    )
    wanted = "\n".join(f"- {json_key(f)}: {FIELD_GUIDANCE[f]}" for f in fields)
    themes = ", ".join(categories) if categories else "anything that suits them"
    system = (
        "You write short, specific, realistic descriptions of one person for a synthetic population "
        "built from US census records. Never contradict the given facts. Write in the third person, "
        "plain prose, no lists. Answer with one JSON object only."
    )
    user = (
        f"Facts about the person (do not contradict them):\n{facts}\n\n"
        f"Procedural tags for this person:\n{tags}\n\n"
        f"Idiosyncratic themes to weave into the prose: {themes}.\n\n"
        f"Write these JSON keys, each 1-2 sentences and at most {max_chars} characters:\n{wanted}"
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _parsed_dict(parsed: Any) -> dict[str, Any]:
    if isinstance(parsed, BaseModel):
        return parsed.model_dump()
    return dict(parsed or {})


def apply_enrichment(
    persona: Persona,
    fields: Sequence[str],
    values: dict[str, str],
    *,
    model: str,
    call_id: str,
    categories: Sequence[str],
) -> Persona:
    """A copy of ``persona`` with ``fields`` set from ``values`` (keyed by JSON key), provenance ``llm``.

    Only pending/procedural fields may be written (anything else raises ``ValueError``); a replaced
    procedural rendering is kept in ``detail["replaced"]``. Tags are left as they are.
    """
    new_fields = dict(persona.fields)
    for f in fields:
        old = persona.fields[f]
        if old.provenance not in WRITABLE_PROVENANCE:
            raise ValueError(f"refusing to overwrite {f!r} with provenance {old.provenance!r}")
        detail: dict[str, Any] = {"model": model, "call_id": call_id, "categories": list(categories)}
        if old.provenance == "procedural":
            detail["replaced"] = old.model_dump()
        new_fields[f] = FieldValue(value=str(values[json_key(f)]).strip(), provenance="llm", detail=detail)
    return persona.model_copy(update={"fields": new_fields})


async def enrich_one(
    persona: Persona, client: Any, seed: int, options: EnrichOptions | None = None
) -> tuple[Persona | None, ChatResult | None, str | None]:
    """Enrich one persona with one structured call.

    Returns ``(persona, result, None)`` on success, ``(None, result, error)`` on a failed call, and
    ``(persona, None, None)`` unchanged when nothing is left to write.
    """
    opts = options or EnrichOptions()
    fields = fields_to_write(persona)
    if not fields:
        return persona, None, None
    categories = pick_categories(seed, persona.id, opts.categories_per_persona)
    schema = enrichment_schema(tuple(fields), opts.max_chars)
    params = ChatParams(
        temperature=opts.temperature,
        max_tokens=opts.max_tokens or default_max_tokens(len(fields), opts.max_chars),
        seed=derive_int(seed, ENRICH_PURPOSE, persona.id),
    )
    res = await client.chat(
        enrichment_messages(persona, fields, categories, opts.max_chars),
        params=params,
        schema=schema,
        purpose=ENRICH_PURPOSE,
    )
    if not res.ok:
        return None, res, res.error or "enrichment call failed"
    try:
        values = schema.model_validate(_parsed_dict(res.parsed)).model_dump()
    except Exception as exc:  # the layer validated already; a mismatch is a recorded failure, not a crash
        return None, res, f"invalid enrichment: {exc.__class__.__name__}: {str(exc).splitlines()[0]}"
    return (
        apply_enrichment(
            persona, fields, values, model=res.model, call_id=res.call_id, categories=categories
        ),
        res,
        None,
    )


# -- the pipeline -------------------------------------------------------------------------------------------


def resampled_id(original: Persona, replacement: Persona, attempt: int) -> str:
    """Stable, unique id for the ``attempt``-th replacement of ``original``."""
    return "p-" + content_hash(
        {"resample_of": original.id, "attempt": attempt, "source": replacement.source.model_dump()}, 12
    )


class _Slot:
    """Book-keeping for one input persona as it goes through enrich → judge → resample."""

    def __init__(self, original: Persona):
        self.original = original
        self.final: Persona | None = None
        self.failure: EnrichFailure | None = None
        self.results: list[tuple[str, ChatResult]] = []  # (purpose, result)
        self.verdicts: list[dict[str, Any]] = []
        self.resamples = 0

    def fail(self, record: Persona, stage: str, error: str, res: ChatResult | None = None) -> None:
        self.failure = EnrichFailure(
            persona_id=self.original.id,
            record_id=record.id,
            stage=stage,  # type: ignore[arg-type]
            error=error,
            call_id=res.call_id if res else None,
            resamples=self.resamples,
        )


async def _run_slot(
    slot: _Slot,
    client: Any,
    seed: int,
    judge_client: Any,
    resample: ResampleFn | None,
    max_resamples: int,
    opts: EnrichOptions,
) -> None:
    current = slot.original
    while True:
        enriched, res, error = await enrich_one(current, client, seed, opts)
        if res is not None:
            slot.results.append(("enrich", res))
        if enriched is None:
            slot.fail(current, "enrich", error or "enrichment failed", res)
            return
        if judge_client is None:
            slot.final = enriched
            return
        verdict, jres = await judge_persona(enriched, judge_client, seed, max_tokens=opts.judge_max_tokens)
        slot.results.append(("judge", jres))
        if verdict is None:
            slot.fail(enriched, "judge", jres.error or "judge call failed", jres)
            return
        slot.verdicts.append({"record_id": enriched.id, "call_id": jres.call_id, **verdict.model_dump()})
        if verdict.consistent:
            slot.final = enriched
            return
        why = f"judged inconsistent ({', '.join(verdict.conflicting_fields) or 'no fields named'}): {verdict.reason}"
        if resample is None:
            slot.fail(enriched, "inconsistent", why + " [no resampler]", jres)
            return
        if slot.resamples >= max_resamples:
            slot.fail(
                enriched, "inconsistent", why + f" [still inconsistent after {max_resamples} resamples]", jres
            )
            return
        slot.resamples += 1
        try:
            replacement = resample(slot.original, slot.resamples)
            if inspect.isawaitable(replacement):
                replacement = await replacement
        except Exception as exc:  # a resampler problem ends this slot as a recorded failure
            slot.fail(enriched, "resample", f"{exc.__class__.__name__}: {exc}")
            return
        current = replacement.model_copy(
            update={"id": resampled_id(slot.original, replacement, slot.resamples)}
        )


def flag_near_duplicates(personas: Sequence[Persona], pairs: Sequence[dict[str, Any]]) -> list[Persona]:
    """Copies of ``personas`` where each member of a near-duplicate pair lists the other in
    ``tags["near_duplicate_of"]`` (flagged, never dropped)."""
    partners: dict[str, set[str]] = {}
    for pair in pairs:
        partners.setdefault(pair["a"], set()).add(pair["b"])
        partners.setdefault(pair["b"], set()).add(pair["a"])
    return [
        p.model_copy(update={"tags": {**p.tags, NEAR_DUPLICATE_TAG: sorted(partners[p.id])}})
        if p.id in partners
        else p
        for p in personas
    ]


def _report(
    slots: Sequence[_Slot],
    personas: Sequence[Persona],
    *,
    seed: int,
    client: Any,
    judge_client: Any,
    max_resamples: int,
    opts: EnrichOptions,
    dups: list[dict[str, Any]],
) -> dict[str, Any]:
    all_results = [(purpose, r) for s in slots for purpose, r in s.results]
    n_in = len(slots)
    judged = [v for s in slots for v in s.verdicts]
    rejected = [v for v in judged if not v["consistent"]]
    by_field = Counter(f for v in rejected for f in v["conflicting_fields"])
    slots_rejected = sum(1 for s in slots if any(not v["consistent"] for v in s.verdicts))
    failures = [s.failure for s in slots if s.failure]
    return {
        "seed": seed,
        "enrich_model": getattr(client, "model", None),
        "judge_model": getattr(judge_client, "model", None) if judge_client is not None else None,
        "max_resamples": max_resamples,
        "options": opts.model_dump(),
        "counts": {
            "input": n_in,
            "output": len(personas),
            "accepted_first_try": sum(1 for s in slots if s.final is not None and s.resamples == 0),
            "resampled_and_accepted": sum(1 for s in slots if s.final is not None and s.resamples > 0),
            "failed": len(failures),
            "failed_by_stage": dict(Counter(f.stage for f in failures)),
        },
        "calls": {
            "enrich": sum(1 for p, _ in all_results if p == "enrich"),
            "judge": sum(1 for p, _ in all_results if p == "judge"),
            "total": len(all_results),
            "per_persona": (len(all_results) / n_in) if n_in else None,
            "attempts": sum(r.attempts for _, r in all_results),
            "cached": sum(1 for _, r in all_results if r.cached),
            "failed": sum(1 for _, r in all_results if not r.ok),
            "prompt_tokens": sum(r.usage.prompt_tokens for _, r in all_results),
            "completion_tokens": sum(r.usage.completion_tokens for _, r in all_results),
        },
        "judge": None
        if judge_client is None
        else {
            "judged": len(judged),
            "rejected": len(rejected),
            "rejection_rate": (len(rejected) / len(judged)) if judged else None,
            "personas_rejected": slots_rejected,
            "persona_rejection_rate": (slots_rejected / n_in) if n_in else None,
            "paper_reference_rate": PAPER_JUDGE_REJECTION_RATE,
            "by_field": dict(sorted(by_field.items(), key=lambda kv: (-kv[1], kv[0]))),
            "resamples": sum(s.resamples for s in slots),
        },
        "diversity": diversity_report(personas),
        "near_duplicates": dups,
        "outcomes": [
            {
                "persona_id": s.original.id,
                "final_id": s.final.id if s.final else None,
                "status": "accepted" if s.final else "failed",
                "resamples": s.resamples,
                "calls": len(s.results),
                "verdicts": s.verdicts,
            }
            for s in slots
        ],
        "failures": [f.model_dump() for f in failures],
    }


async def enrich_personas(
    personas: Sequence[Persona],
    client: Any,
    seed: int,
    *,
    judge_client: Any = None,
    resample: ResampleFn | None = None,
    max_resamples: int = 3,
    progress: bool = True,
    options: EnrichOptions | None = None,
) -> EnrichResult:
    """Enrich ``personas`` with ``client`` (an ``LLMClient``); judge and resample when ``judge_client`` is given.

    - ``seed`` derives every call seed and every category pick (same seed + inputs -> same output).
    - ``resample(original, attempt)`` returns a new census persona (sync or async) to replace one the judge
      calls inconsistent; it is re-identified, enriched and judged again, at most ``max_resamples`` times.
    - Returns accepted personas in input order, one ``EnrichFailure`` per persona that did not make it,
      and a report (counts, calls per persona, judge rejection rate by field, diversity, near-duplicates).
    """
    if max_resamples < 0:
        raise ValueError("max_resamples must be >= 0")
    opts = options or EnrichOptions()
    slots = [_Slot(p) for p in personas]

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("enrich"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=not progress,
        transient=False,
    ) as bar:
        task = bar.add_task("enrich", total=len(slots))

        async def run(slot: _Slot) -> None:
            await _run_slot(slot, client, seed, judge_client, resample, max_resamples, opts)
            bar.advance(task)

        await asyncio.gather(*(run(s) for s in slots))

    accepted = [s.final for s in slots if s.final is not None]
    dups = near_duplicates(accepted, opts.near_duplicate_threshold)
    accepted = flag_near_duplicates(accepted, dups)
    report = _report(
        slots,
        accepted,
        seed=seed,
        client=client,
        judge_client=judge_client,
        max_resamples=max_resamples,
        opts=opts,
        dups=dups,
    )
    return EnrichResult(personas=accepted, failures=[s.failure for s in slots if s.failure], report=report)


__all__ = [
    "EnrichOptions",
    "EnrichFailure",
    "EnrichResult",
    "ENRICH_PURPOSE",
    "SURVEY_FIELDS",
    "WRITABLE_PROVENANCE",
    "PAPER_JUDGE_REJECTION_RATE",
    "FIELD_GUIDANCE",
    "fields_to_write",
    "json_key",
    "enrichment_schema",
    "enrichment_messages",
    "apply_enrichment",
    "enrich_one",
    "enrich_personas",
    "resampled_id",
    "flag_near_duplicates",
    "default_max_tokens",
    "JudgeVerdict",
]
