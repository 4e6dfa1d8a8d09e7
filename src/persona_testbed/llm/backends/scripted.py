"""A scripted world with known truth: ``scripted:p=0.6,fail=0.1,uses=age+sex,...`` (no weights, no network).

It plays every bench role from the prompt it is sent, so a bench run on it has figures whose true values
are known in closed form:

- **candidate** (a system prompt with ``User profile:``): fails (a permanent error) with probability
  ``fail`` (per mode ``fail.MODE``); otherwise *personalises* with probability ``p`` (``p.MODE``;
  ``p`` + DELTA for personas matching ``gap=ATTR=VALUE:DELTA``), which means writing the persona's
  *marker* into the answer. The marker is a hash of the persona's values of the ``uses`` attributes, so
  an answer written without one of them (leave-one-out) carries a wrong marker; attributes outside
  ``uses`` are ignored. The baseline mode sees no profile and never personalises. A prompt with the
  bench's few-shot examples is mode ``fewshot`` (``p.fewshot`` / ``fail.fewshot``; persona's otherwise). With
  probability
  ``leak`` an answer opens with "As a 45-year-old ..." (names the age: a leak). In cot / summary mode the
  reply is the requested JSON.
- **critic judge** (``Answer to review:``): passes an answer iff it carries the marker of the profile the
  judge sees; replies with invalid JSON (a judge failure, also on re-asks) with probability ``judge_fail``.
- **persona judge** (``Answer A:`` / ``Answer B:``): picks the answer carrying its own marker, else A or B
  at random.

Randomness comes from the call's seed (the bench derives one per item, arm and sample). With
consistency ``c`` a sample reuses its persona's latent draw instead of a fresh one, so judgements of one
persona are correlated (what the persona-cluster bootstrap is for) while each judgement stays
Bernoulli(p). ``world=N`` seeds the persona latents. True values: accuracy among answered items = p;
intent-to-treat accuracy = p (1 - fail) (1 - judge_fail); pass@k = 1 - (1 - p (1 - fail)(1 - judge_fail))^k
when c = 0.

Spec keys: ``p``, ``p.MODE``, ``fail``, ``fail.MODE``, ``judge_fail``, ``uses`` (``+``-separated persona
fields; ``_`` for spaces; ``none`` = no attribute), ``c``, ``gap``, ``leak``, ``world``. The backend
recognises the bench's prompt layout (``field: value`` profile lines and the section titles above).
"""

from __future__ import annotations

import json

from ..types import ChatParams, Message, Usage
from ..world import EXAMPLES_TITLE, PREFIX, SHOT_MODE, WorldSpec, parse_world, uniform
from .base import BackendReply, PermanentError, StructuredRequest


def _profile(text: str, title: str) -> dict[str, str] | None:
    if title not in text:
        return None
    block = text.split(title, 1)[1].split("\n\n", 1)[0]
    out = {}
    for line in block.splitlines():
        k, sep, v = line.partition(": ")
        if sep:
            out[k.strip()] = v.strip()
    return out


def _section(text: str, title: str, end: str) -> str:
    rest = text.split(title, 1)[1] if title in text else ""
    return rest.split(end, 1)[0]


class ScriptedBackend:
    """The scripted world as a backend; ``calls`` counts replies by role."""

    kind = PREFIX

    def __init__(self, model: str):
        self.spec = parse_world(model)
        self.model_string = model.strip()
        self.model_id = self.model_string
        self.calls: dict[str, int] = {"candidate": 0, "critic": 0, "preference": 0, "other": 0}

    # -- roles ------------------------------------------------------------------------------------
    def _candidate(
        self, system: str, profile: dict[str, str] | None, seed: int, structured: StructuredRequest | None
    ) -> str:
        spec = self.spec
        props = (structured.schema.get("properties", {}) if structured else {}) or {}
        mode = "summary" if "summary" in props else ("cot" if "reasoning" in props else "persona")
        if profile is None:
            mode = "baseline"
        elif mode == "persona" and EXAMPLES_TITLE in system:
            mode = SHOT_MODE  # the bench's few-shot modes (p.fewshot; persona's p unless given)
        if uniform(seed, "fail") < spec.fail.get(spec.mode_of(mode, "fail"), 0.0):
            raise PermanentError(f"scripted world: candidate failure ({mode})")
        shown = profile or {}
        latent = uniform(spec.world, "persona", spec.marker(shown)) if profile is not None else 1.0
        u = latent if uniform(seed, "consistency") < spec.c else uniform(seed, "personalise")
        personal = u < spec.p_for(mode, shown)
        answer = (
            f"Here is advice tailored to you {spec.marker(shown)}."
            if personal
            else "Here is some general advice."
        )
        if profile is not None and "age" in shown and uniform(seed, "leak") < spec.leak:
            answer = f"As a {shown['age']}-year-old, you should know this. " + answer
        if mode == "cot":
            return json.dumps({"reasoning": "thinking about this user", "answer": answer})
        if mode == "summary":
            return json.dumps({"summary": "what matters about this user", "answer": answer})
        return answer

    def _critic(self, user: str, seed: int) -> str:
        if uniform(seed, "judge_fail") < self.spec.judge_fail:
            return "I cannot decide."
        profile = _profile(user, "User profile:\n") or {}
        answer = _section(user, "Answer to review:\n", "\n\nDoes this answer")
        ok = self.spec.marker(profile) in answer
        return json.dumps({"reasoning": "checked the marker", "needs_revision": not ok})

    def _preference(self, system: str, user: str, seed: int) -> str:
        marker = self.spec.marker(_profile(system, "Your profile:\n") or {})
        a = marker in _section(user, "Answer A:\n", "\n\nAnswer B:")
        b = marker in _section(user, "Answer B:\n", "\n\nWhich answer")
        pick = "A" if a and not b else "B" if b and not a else ("A" if uniform(seed, "pick") < 0.5 else "B")
        return json.dumps({"reasoning": "as this person", "preferred": pick})

    async def complete(
        self, messages: list[Message], params: ChatParams, structured: StructuredRequest | None
    ) -> BackendReply:
        system = next((str(m["content"]) for m in messages if m["role"] == "system"), "")
        users = [str(m["content"]) for m in messages if m["role"] == "user"]
        user = users[0] if users else ""
        seed = params.seed if params.seed is not None else 0
        if "Answer to review:\n" in user:
            self.calls["critic"] += 1
            text = self._critic(user, seed)
        elif "Answer A:\n" in user and "Answer B:\n" in user:
            self.calls["preference"] += 1
            text = self._preference(system, user, seed)
        elif system:
            self.calls["candidate"] += 1
            text = self._candidate(system, _profile(system, "User profile:\n"), seed, structured)
        else:
            self.calls["other"] += 1
            text = "{}" if structured else "scripted reply"
        words = sum(len(str(m.get("content", "")).split()) for m in messages)
        return BackendReply(
            text=text,
            usage=Usage(prompt_tokens=words, completion_tokens=len(text.split())),
            finish_reason="stop",
        )

    async def aclose(self) -> None:
        return None


__all__ = ["PREFIX", "ScriptedBackend", "WorldSpec", "parse_world", "uniform"]
