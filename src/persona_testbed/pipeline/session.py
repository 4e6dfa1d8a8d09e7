"""A session: a locked run directory + its call store + model clients + progress.

``persona-testbed run`` and every standalone stage command (``prompts build``, ``feedback generate``,
``personas sample``, ``personas enrich``, ``bench run``) open one session and execute stages through
``Session.run_stage``, so a stage runs the same function, logs calls to the same kind of ``calls.db`` and
leaves the same manifest record whichever way it was started::

    with Session(out, llm=LLMConfig(concurrency=8)) as session:
        outcome = session.run_stage("prompts", out, lambda ctx: prompts_stage(ctx, spec), inputs=spec)

Closing the session commits the call log, closes every client and releases the lock, also on errors.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from ..core.errors import CallsFailingError, UserError
from ..core.hashing import content_hash, file_sha256
from ..core.output import err_console
from ..core.outputs import MARKER, claim_dir
from ..llm.breaker import FailureBreaker
from ..llm.client import LLMClient
from ..llm.deferred import BatchBackend, BatchStore, WaitingForBatch, WaveRecorder
from ..llm.models import parse_model
from ..llm.store import CallStore, connect_readonly
from . import ray_vllm
from .config import ExecutionConfig, LLMConfig
from .ray_executor import RayExecutor
from .rundir import RunDir

T = TypeVar("T")
#: failures kept per stage record in ``manifest.json`` (the count is always exact)
MAX_RECORDED_FAILURES = 10_000


class ItemFailure(BaseModel):
    """One work item that ended as a failure, with its reason."""

    item: str
    reason: str


class StageOutcome(BaseModel):
    """What a stage function returns: counts, recorded failures, the artifacts it wrote, a summary."""

    items: int = 0
    """Work items the stage attempted (personas, prompts, pairs, judged rows …)."""
    ok: int = 0
    """Items that ended as a result."""
    failed: int = 0
    """Items that ended as a recorded failure (``items == ok + failed``)."""
    failures: list[ItemFailure] = Field(default_factory=list)
    """The failures with their reasons."""
    artifacts: list[str] = Field(default_factory=list)
    """Files written, relative to the run directory."""
    summary: dict[str, Any] = Field(default_factory=dict)
    """Stage-specific figures shown by ``status`` and the report (kept in the manifest)."""
    detail: Any = Field(default=None, exclude=True)
    """The stage's full result for the command that ran it (reports, statistics); not kept."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class StageContext:
    """What a stage function gets: the session, the stage's name and output directory, and helpers."""

    session: Session
    stage: str
    dir: Path
    breaker: FailureBreaker = field(default_factory=FailureBreaker)
    """Counts this stage's calls; trips (``CallsFailingError``, exit 3) when too many fail."""

    @property
    def quiet(self) -> bool:
        return self.session.quiet

    @property
    def run(self) -> RunDir:
        return self.session.run

    def rel(self, path: Path) -> str:
        """``path`` relative to the run directory (how the manifest names artifacts)."""
        return str(Path(path).resolve().relative_to(self.session.run.path.resolve()))

    def client(self, model: str | LLMClient) -> LLMClient:
        """The session's client for ``model`` (one per model string), counting failures for this stage."""
        return self.session.client(model, breaker=self.breaker)

    def run_async(self, make: Callable[[], Awaitable[T]]) -> T:
        return self.session.run_async(make)

    def log(self, msg: str) -> None:
        self.session.log(msg)


class Session:
    """Open with ``with Session(path, llm=...) as s:``; every write to the run happens inside."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        kind: str = "run",
        inputs: Sequence[Any] = (),
        llm: LLMConfig | None = None,
        quiet: bool = False,
        execution: ExecutionConfig | None = None,
    ):
        """``kind``: what the directory holds (``run``, or a stage name for a stage command's ``--out``);
        an existing directory is used only when it is empty or already a ``kind`` output of this tool.
        ``inputs``: paths the command reads, which the directory may neither be nor contain.
        ``execution``: how calls run (``local``; ``batch``: a stage run is a wave, see docs/execution.md)."""
        self.kind = kind
        self.inputs = [Path(i) for i in inputs if i is not None]
        self.run = RunDir(path)
        self.llm = llm or LLMConfig()
        self.quiet = quiet
        self.execution = execution or ExecutionConfig()
        self._waves: WaveRecorder | None = (
            None  # batch / ray executor: requests deferred by the running stage
        )
        # ray: checked here, so a missing extra is one line before anything is created
        self._ray = RayExecutor(self.execution.ray, self.llm) if self.execution.backend == "ray" else None
        self.store: CallStore | None = None
        self._clients: dict[str, LLMClient] = {}
        self._lock: Any = None
        self.created = False

    # -- lifecycle ----------------------------------------------------------------------------------
    def __enter__(self) -> Session:
        self._created_root = _first_missing(self.run.path)
        self.created = self._created_root is not None
        claim_dir(self.run.path, self.kind, inputs=self.inputs, recognise=_earlier_output)
        self._lock = self.run.locked()
        self._lock.__enter__()
        try:
            self.store = CallStore(self.run.calls_db)
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.close_clients()
        finally:
            try:
                if self.store is not None:
                    self.store.close()
                    self.store = None
            finally:
                if self._waves is not None:
                    self._waves.store.close()
                if self._ray is not None:
                    self._ray.close()
                self._lock.__exit__(*exc)
                if exc[0] is not None and self.created and not issubclass(exc[0], WaitingForBatch):
                    self._discard_if_empty(bad_input=issubclass(exc[0], UserError))

    def _discard_if_empty(self, bad_input: bool) -> None:
        """A directory this session created is removed when the command failed before any model call:
        on bad input (``UserError``) always, after an interruption or crash only if no stage had finished.
        Once calls were made it stays, so a re-run resumes from the call log."""
        try:
            done = not bad_input and any(
                rec.get("status") == "done" for rec in self.run.read_manifest().get("stages", {}).values()
            )
        except UserError:
            done = False
        if self.run.path.is_dir() and not done and not made_calls(self.run.calls_db):
            shutil.rmtree(self._created_root, ignore_errors=True)

    def close_clients(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    # -- models -------------------------------------------------------------------------------------
    def client(self, model: str | LLMClient, breaker: FailureBreaker | None = None) -> LLMClient:
        """An ``LLMClient`` for ``model`` logging to the run's ``calls.db`` (one per model string).

        A client object (a library caller's, e.g. with a mock backend) is adopted: it logs to this run's
        call store unless it has its own.
        """
        if isinstance(model, LLMClient):
            if model.store is None:
                model.store = self.store
            model.breaker = breaker
            self._clients.setdefault(f"client:{id(model)}", model)
            return model
        client = self._clients.get(model)
        if client is None:
            llm = self.llm
            backend = None
            if self.execution.backend in ("batch", "ray"):
                if self.execution.backend == "ray" and parse_model(model).kind == "vllm":
                    ray_vllm.require_vllm()  # said before the stage defers anything
                if self._waves is None:
                    self._waves = WaveRecorder(BatchStore(self.run.path))
                backend = BatchBackend(model, self._waves)
            client = LLMClient(
                model,
                store=self.store,
                concurrency=llm.concurrency,
                max_retries=llm.max_retries,
                timeout_s=llm.timeout_s,
                base_url=llm.base_url,
                backend=backend,
            )
            self._clients[model] = client
        client.breaker = breaker
        return client

    def run_async(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run ``make()`` on a fresh event loop; close the clients' connections bound to that loop after."""

        async def main() -> T:
            try:
                return await make()
            finally:
                for client in self._clients.values():
                    await client.backend.aclose()

        return asyncio.run(main())

    def log(self, msg: str) -> None:
        if not self.quiet:
            err_console.print(msg, highlight=False)

    # -- stages -------------------------------------------------------------------------------------
    def run_stage(
        self,
        name: str,
        out_dir: str | os.PathLike[str],
        fn: Callable[[StageContext], StageOutcome],
        *,
        input_hash: str | None = None,
        inputs: Any = None,
    ) -> StageOutcome:
        """Run one stage into ``out_dir`` and record it in ``manifest.json`` (``stages.<name>``).

        The record is the same for ``run`` and the stage's own command: status, input hash, start and end,
        duration, item counts, failures, artifact sha256s, summary. A stage whose calls fail past the
        breaker's threshold, or whose every item failed, raises ``CallsFailingError`` (exit 3) after
        recording the failure.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        ih = input_hash or content_hash({"stage": name, "inputs": _jsonable(inputs)})
        prev = self.run.read_manifest().get("stages", {}).get(name, {})
        started = time.perf_counter()
        self.run.update_manifest(
            stages={
                name: {
                    **{k: v for k, v in prev.items() if k in ("runs",)},
                    "status": "running",
                    "input_hash": ih,
                    "started": now(),
                    "pid": os.getpid(),
                }
            }
        )
        ctx = StageContext(self, name, out, FailureBreaker(name))
        before = _files(out, self.run.path) if self._waves is not None else {}
        if self._waves is not None:
            self._waves.reset()
        try:
            outcome = self._passes(name, out, fn, ctx)
            self._raise_if_waiting(name)
            ctx.breaker.check_final()  # every call of the stage failed: say why, exit 3
            if outcome.items and outcome.failed == outcome.items:
                first = outcome.failures[0].reason if outcome.failures else "no reason recorded"
                raise CallsFailingError(f"{name}: every one of {outcome.items} items failed (first: {first})")
        except BaseException as caught:
            exc = caught
            if not isinstance(exc, (KeyboardInterrupt, SystemExit, WaitingForBatch)):
                try:  # a stage that stopped on its placeholders (e.g. "no prompt passed") waits for its wave
                    self._raise_if_waiting(name)
                except WaitingForBatch as waiting:
                    exc = waiting
            if isinstance(exc, WaitingForBatch):
                _discard_written(out, self.run.path, before)  # partial artifacts would cite placeholders
                self.run.update_manifest(
                    stages={
                        name: {
                            "status": "waiting_for_batch",
                            "input_hash": ih,
                            "finished": now(),
                            "error": str(exc),
                            "duration_s": round(time.perf_counter() - started, 3),
                            "runs": prev.get("runs", 0) + 1,
                            "pending": getattr(exc, "pending", 0),
                        }
                    },
                    status="waiting_for_batch",
                    updated=now(),
                )
                if exc is caught:
                    raise
                raise exc from None
            if isinstance(exc, UserError) and not isinstance(exc, CallsFailingError):
                try:  # e.g. "no prompt passed the filters" because every classifier call failed: say why
                    ctx.breaker.check_final()
                except CallsFailingError as why:
                    exc = why
            rec = {
                "status": "failed",
                "input_hash": ih,
                "finished": now(),
                "error": str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}",
                "duration_s": round(time.perf_counter() - started, 3),
                "runs": prev.get("runs", 0) + 1,
            }
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                rec["status"] = "interrupted"
            self.run.update_manifest(stages={name: rec}, status="failed", updated=now())
            if exc is caught:
                raise
            raise exc from caught
        artifacts = {rel: file_sha256(self.run.path / rel) for rel in outcome.artifacts}
        self.run.update_manifest(
            stages={
                name: {
                    "status": "done",
                    "input_hash": ih,
                    "finished": now(),
                    "duration_s": round(time.perf_counter() - started, 3),
                    "runs": prev.get("runs", 0) + 1,
                    "items": outcome.items,
                    "ok": outcome.ok,
                    "failed": outcome.failed,
                    "failures": [f.model_dump() for f in outcome.failures[:MAX_RECORDED_FAILURES]],
                    "artifacts": artifacts,
                    "summary": outcome.summary,
                }
            },
            updated=now(),
        )
        return outcome

    def _passes(
        self, name: str, out: Path, fn: Callable[[StageContext], StageOutcome], ctx: StageContext
    ) -> StageOutcome:
        """Run the stage function; with the Ray executor, answer each pass's deferred requests on Ray and run
        it again (replaying them) until a pass defers nothing."""
        while True:
            before = _files(out, self.run.path) if self._ray is not None else {}
            try:
                outcome = fn(ctx)
            except Exception:
                if self._ray is None or self._waves is None or not self._waves.pending:
                    raise
            waves = self._waves
            if self._ray is None or waves is None or not waves.pending:
                return outcome
            pending, model_of = dict(waves.pending), dict(waves.model_of)
            waves.reset()
            _discard_written(out, self.run.path, before)
            self.log(f"{name}: {len(pending)} requests on Ray")
            self._ray.run_wave(waves.store, name, pending, model_of)
            ctx.breaker = FailureBreaker(name)  # the next pass counts its calls afresh

    def _raise_if_waiting(self, name: str) -> None:
        """Batch executor: when the stage deferred requests, write them as a wave and raise ``WaitingForBatch``."""
        waves = self._waves
        if waves is not None and waves.pending:
            ex = self.execution
            raise waves.finish(name, max_lines=ex.batch_max_requests, max_bytes=ex.batch_max_mb * 1024 * 1024)


#: what a waiting stage keeps in its run directory (the call log, manifest, lock, marker, config, batch/)
_RUN_FILES = (
    "manifest.json",
    "calls.db",
    "calls.db-wal",
    "calls.db-shm",
    ".lock",
    MARKER,
    "config.toml",
    "batch",
)


def _files(out: Path, root: Path) -> dict[Path, tuple[int, int]]:
    """Files under ``out`` (except the run's own files) with their mtime and size."""
    found = {}
    for p in out.rglob("*"):
        rel = p.relative_to(root) if p.is_relative_to(root) else p
        if rel.parts and rel.parts[0] in _RUN_FILES or not p.is_file():
            continue
        st = p.stat()
        found[p] = (st.st_mtime_ns, st.st_size)
    return found


def _discard_written(out: Path, root: Path, before: dict[Path, tuple[int, int]]) -> None:
    """Batch executor: remove what a stage wrote during a wave that stopped for its batch (checkpoints and
    artifacts holding placeholders of deferred calls); the next wave rebuilds them from the call log."""
    for p, sig in _files(out, root).items():
        if before.get(p) != sig:
            p.unlink(missing_ok=True)


#: files by which a directory written before outputs carried a marker is recognised as this tool's
EARLIER_OUTPUT_FILES = (
    "manifest.json",
    "pairs.checkpoint.jsonl",
    "pairs.jsonl",
    "prompts.jsonl",
    "personas.jsonl",
)


def _earlier_output(path: Path) -> bool:
    """A directory this tool wrote before outputs carried a marker (a run manifest or a stage artifact)."""
    return any((path / name).is_file() for name in EARLIER_OUTPUT_FILES)


def _first_missing(path: Path) -> Path | None:
    """The outermost directory of ``path`` that does not exist yet (what opening it will create)."""
    path = Path(os.path.abspath(path))
    missing = None
    while not path.exists():
        missing = path
        if path.parent == path:
            break
        path = path.parent
    return missing


def made_calls(calls_db: Path) -> bool:
    """Whether a call log holds any model call (work that would be costly to lose)."""
    if not calls_db.exists():
        return False
    try:
        conn = connect_readonly(calls_db)  # leaves no -wal / -shm behind
        try:
            return conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0] > 0
        finally:
            conn.close()
    except sqlite3.Error:
        return True


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    return obj


__all__ = [
    "ItemFailure",
    "MAX_RECORDED_FAILURES",
    "Session",
    "made_calls",
    "StageContext",
    "StageOutcome",
    "now",
]
