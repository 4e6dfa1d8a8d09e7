"""PERSONA Bench: tasks (main, passk, loo, intersections, fidelity, agreement), judges, metrics, human-eval kit.

Library entry point: ``run_task(name, *, candidate, judge, personas, prompts, pairs=None, n, seed, out_dir,
store, **task_options) -> dict`` (see ``bench.runner``); docs/bench.md describes tasks and outputs.
"""

from __future__ import annotations


def __getattr__(name: str):  # lazy: keeps `import persona_testbed.bench` light
    if name in ("run_task", "arun_task", "read_items"):
        from . import runner

        return getattr(runner, name)
    if name in ("TASKS",):
        from .tasks import TASKS

        return TASKS
    raise AttributeError(name)


__all__ = ["TASKS", "arun_task", "read_items", "run_task"]
