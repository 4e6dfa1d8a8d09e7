"""The ``feedback generate`` progress bar: pairs done / total, failures, new tokens per second, ETA."""

from __future__ import annotations

import time

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..core.output import err_console
from .record import PreferencePair


class PairProgress:
    """Context manager; ``update(pair, new_tokens)`` after each pair (reused pairs count with 0 tokens)."""

    def __init__(self, total: int):
        self.total = total
        self.tokens = 0
        self.failed = 0
        self.started = time.perf_counter()
        self._progress = Progress(
            TextColumn("pairs"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} tok/s · {task.fields[failed]} failed"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err_console,
            transient=False,
        )
        self._task = None

    def __enter__(self) -> PairProgress:
        self._progress.__enter__()
        self._task = self._progress.add_task("pairs", total=self.total, rate="0", failed=0)
        return self

    def update(self, pair: PreferencePair, new_tokens: int) -> None:
        self.tokens += new_tokens
        self.failed += pair.status == "failed"
        elapsed = max(1e-9, time.perf_counter() - self.started)
        self._progress.update(self._task, advance=1, rate=f"{self.tokens / elapsed:.1f}", failed=self.failed)

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)
