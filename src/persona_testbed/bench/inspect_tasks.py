"""PERSONA Bench as ``inspect_ai`` tasks (optional: ``pip install inspect-ai``).

Same items, prompts and critic judge as ``persona-testbed bench run main|passk``; the candidate is
inspect's ``--model``, the judge ``-T judge=...`` (default: the candidate model)::

    inspect eval src/persona_testbed/bench/inspect_tasks.py@persona_main --model openai/gpt-4o-mini \\
        -T personas=run/personas -T prompts=run/prompts -T n=50 -T mode=cot -T judge=openai/gpt-4o
    inspect eval src/persona_testbed/bench/inspect_tasks.py@persona_passk --model ... -T k=3

A judge reply that never validates scores NOANSWER (counted as not passed) with the error as the
explanation and ``metadata.failed_stage = "judge"``, so it is visible in the log, never silent.
"""

from __future__ import annotations

from typing import Any

from inspect_ai import Epochs, Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import (ChatMessageSystem, ChatMessageUser, GenerateConfig, Model, ResponseSchema,
                              get_model)
from inspect_ai.scorer import CORRECT, INCORRECT, NOANSWER, Score, Target, accuracy, scorer, stderr
from inspect_ai.solver import TaskState, generate

from ..llm.structured import validate
from ..personas.io import read_personas
from ..personas.record import Persona
from .inputs import load_prompts, select_items
from .records import CriticVerdict
from .templates import MODE_SCHEMAS, MODES, critic_messages, candidate_messages


def persona_samples(personas: list[Persona], prompts: Any, n: int, seed: int, mode: str) -> list[Sample]:
    """The bench items (seeded like ``bench run main``) as inspect samples."""
    out = []
    for item in select_items(personas, prompts, n, seed):
        msgs = candidate_messages(mode, item.persona, item.question)
        out.append(Sample(id=item.id, input=[ChatMessageSystem(content=msgs[0]["content"]),
                                             ChatMessageUser(content=msgs[1]["content"])],
                          metadata={"persona_id": item.persona.id, "prompt_id": item.prompt_id,
                                    "question": item.question, "mode": mode}))
    return out


def _answer(text: str, mode: str) -> tuple[str | None, str | None]:
    schema = MODE_SCHEMAS.get(mode)
    if schema is None:
        return text.strip(), None
    parsed, reason = validate(schema, text)
    if parsed is None or not str(parsed.get("answer", "")).strip():
        return None, f"candidate output is not a valid {schema.__name__}: {reason or 'empty answer'}"
    return str(parsed["answer"]).strip(), None


@scorer(metrics=[accuracy(), stderr()])
def persona_critic(personas: dict[str, Persona], judge: str | Model | None = None, max_tokens: int = 384):
    """Critic judge: persona + question + answer -> CORRECT when no revision is needed."""

    async def score(state: TaskState, target: Target) -> Score:
        md = state.metadata
        answer, err = _answer(state.output.completion, md["mode"])
        if answer is None:
            return Score(value=NOANSWER, explanation=err, metadata={"failed_stage": "candidate"})
        model = get_model(judge) if judge is not None else get_model()
        msgs = critic_messages(personas[md["persona_id"]], md["question"], answer)
        out = await model.generate(
            [ChatMessageSystem(content=msgs[0]["content"]), ChatMessageUser(content=msgs[1]["content"])],
            config=GenerateConfig(temperature=0.0, max_tokens=max_tokens,
                                  response_schema=ResponseSchema(name="CriticVerdict",
                                                                 json_schema=CriticVerdict.model_json_schema())))
        parsed, reason = validate(CriticVerdict, out.completion)
        if parsed is None:
            return Score(value=NOANSWER, answer=answer, explanation=f"judge output invalid: {reason}",
                         metadata={"failed_stage": "judge", "judge_raw": out.completion})
        return Score(value=INCORRECT if parsed["needs_revision"] else CORRECT, answer=answer,
                     explanation=parsed["reasoning"], metadata={"judge_raw": out.completion})

    return score


def _task(personas: str | list[Persona], prompts: Any, n: int, seed: int, mode: str, judge: str | Model | None,
          split: str, epochs: Epochs | None = None) -> Task:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} (choose from {', '.join(MODES)})")
    plist = read_personas(personas) if isinstance(personas, str) else list(personas)
    qlist = load_prompts(prompts, split) if isinstance(prompts, str) else list(prompts)
    schema = MODE_SCHEMAS.get(mode)
    config = GenerateConfig(response_schema=ResponseSchema(name=schema.__name__, json_schema=schema.model_json_schema())
                            ) if schema else GenerateConfig()
    return Task(dataset=MemoryDataset(persona_samples(plist, qlist, n, seed, mode)), solver=[generate()],
                scorer=persona_critic({p.id: p for p in plist}, judge), config=config, epochs=epochs)


@task
def persona_main(personas: Any, prompts: Any, n: int = 20, seed: int = 0, mode: str = "persona",
                 judge: Any = None, split: str = "held_out") -> Task:
    """PERSONA Bench main: candidate answers for a persona, critic judge; accuracy."""
    return _task(personas, prompts, n, seed, mode, judge, split)


@task
def persona_passk(personas: Any, prompts: Any, n: int = 20, seed: int = 0, k: int = 3, samples: int | None = None,
                  mode: str = "persona", judge: Any = None, split: str = "held_out") -> Task:
    """PERSONA Bench pass@k: ``samples`` epochs per item, each judged; pass@1..k reducers."""
    n_samples = samples or k
    if k > n_samples:
        raise ValueError(f"k={k} exceeds samples={n_samples} (need n >= k)")
    return _task(personas, prompts, n, seed, mode, judge, split,
                 epochs=Epochs(n_samples, [f"pass_at_{j}" for j in range(1, k + 1)]))


__all__ = ["persona_critic", "persona_main", "persona_passk", "persona_samples"]
