"""PERSONA Bench: tasks (main, passk, loo, intersections, fidelity, agreement), judges, metrics, human-eval kit.

Library entry point: ``run_task(name, *, candidate, judge, personas, prompts, pairs=None, n, seed, out_dir,
store, **task_options) -> dict`` (see ``bench.runner``); the dict is a ``bench.results.BenchResults``
dumped to JSON (``read_results`` reads ``results.json`` back). docs/bench.md describes tasks and outputs.
"""

from __future__ import annotations

from .results import BenchResults, read_results
from .runner import arun_task, read_items, run_task
from .tasks import TASKS

__all__ = ["TASKS", "BenchResults", "arun_task", "read_items", "read_results", "run_task"]
