"""One command end to end: census → personas (→ enrichment) → prompts → feedback → bench → report.

Every stage writes its artifacts into the run directory and records, in ``manifest.json``, the hash of
its inputs (config section, seed, model ids, data sha256s, upstream artifact sha256s) and the sha256 of
each artifact. A stage is skipped when its record says ``done``, its input hash is unchanged and its
artifacts are intact; otherwise it runs again, and its LLM calls replay from the run's call cache
(``calls.db``), so an interrupted stage resumes instead of repeating finished calls.

Work items that fail (after the LLM layer's retries) are recorded per stage with their reason; they do
not stop the run. ``retry_failed=True`` re-runs only the stages holding recorded failures (and whatever
their changed artifacts feed): finished calls replay from the cache, so only the failed items reach the
model again.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from .. import __version__
from .config import RunConfig, load_config
from ..core.errors import UserError
from ..core.hashing import content_hash, file_sha256
from ..core.output import err_console
from .rundir import RunDir

MAX_RECORDED_FAILURES = 10_000
T = TypeVar("T")


class ItemFailure(BaseModel):
    """One work item that ended as a failure, with its reason."""

    item: str
    reason: str


class StageOutcome(BaseModel):
    """What a stage function returns: counts, recorded failures, the artifacts it wrote, a summary."""

    items: int = 0
    ok: int = 0
    failed: int = 0
    failures: list[ItemFailure] = Field(default_factory=list)
    artifacts: list[str] = Field(default_factory=list)  # paths relative to the run directory
    summary: dict[str, Any] = Field(default_factory=dict)


@dataclass
class StageContext:
    """What a stage function gets: the run, its config, and helpers for models and files."""

    run: RunDir
    config: RunConfig
    stage: str
    data_checksums: dict[str, str]
    quiet: bool = False
    _clients: list[Any] = field(default_factory=list)

    @property
    def dir(self) -> Path:
        return self.run.stage_dir(self.stage)

    def rel(self, path: Path) -> str:
        return str(Path(path).resolve().relative_to(self.run.path.resolve()))

    def client(self, role: str) -> Any:
        """An ``LLMClient`` for a model role, logging to the run's ``calls.db`` (shared cache)."""
        from ..llm.client import LLMClient
        from ..llm.store import CallStore

        llm = self.config.llm
        store = CallStore(self.run.calls_db)
        client = LLMClient(self.config.models.for_role(role), store=store, concurrency=llm.concurrency,
                           max_retries=llm.max_retries, timeout_s=llm.timeout_s, base_url=llm.base_url)
        self._clients.append((client, store))
        return client

    def run_async(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run ``make()`` on a fresh event loop; close the clients' connections bound to that loop after."""

        async def main() -> T:
            try:
                return await make()
            finally:
                for client, _ in self._clients:
                    await client.backend.aclose()

        return asyncio.run(main())

    def close_clients(self) -> None:
        for client, store in self._clients:
            try:
                client.close()
            finally:
                store.close()
        self._clients.clear()


@dataclass(frozen=True)
class Stage:
    """A pipeline stage: name, upstream stages, the config it depends on, and the function that runs it."""

    name: str
    deps: tuple[str, ...]
    inputs: Callable[[RunConfig], dict[str, Any]]
    run: Callable[[StageContext], StageOutcome]
    enabled: Callable[[RunConfig], bool] = lambda cfg: True
    uses_data: bool = False
    description: str = ""
    preflight: Callable[[RunConfig], None] | None = None  # cheap input checks before any work


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# -- data checksums -------------------------------------------------------------------------------------

def _sha_cache_path() -> Path:
    from ..core.settings import cache_dir

    return cache_dir() / "sha256_by_stat.json"


def cached_sha256(paths: list[Path]) -> dict[Path, str]:
    """sha256 of each file, cached by (path, size, mtime) so re-runs do not re-read large inputs."""
    cache_file = _sha_cache_path()
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, json.JSONDecodeError):
        cache = {}
    out: dict[Path, str] = {}
    changed = False
    for p in paths:
        st = p.stat()
        key = f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        if key not in cache:
            cache[key] = file_sha256(p)
            changed = True
        out[p] = cache[key]
    if changed:
        from ..core.atomic import atomic_write_text

        try:
            atomic_write_text(cache_file, json.dumps(cache, sort_keys=True))
        except OSError:
            pass
    return out


def data_files(cfg: RunConfig) -> dict[str, Path]:
    """The input files a run reads (those present), keyed by path relative to the data directory."""
    from ..core import settings

    base = settings.data_dir(cfg.data.dir)
    found: dict[str, Path] = {}

    def add_tree(rel: str) -> None:
        root = base / rel
        if root.is_file():
            found[rel] = root
        elif root.is_dir():
            for p in sorted(root.rglob("*")):
                if p.is_file() and not p.name.startswith("."):
                    found[str(p.relative_to(base))] = p

    src = cfg.census.source
    if src.lower().startswith("acs") and src[3:].isdigit():
        add_tree(f"census/acs/{src[3:]}")
    elif Path(src).exists():
        for p in sorted(Path(src).rglob("*")) if Path(src).is_dir() else [Path(src)]:
            if p.is_file():
                found[f"census-source:{p}"] = p
    for rel in ("census/dictionaries", "census/targets", "survey/gss", "norms/bigfive"):
        add_tree(rel)
    if cfg.prompts.source == "prism":
        add_tree("prompts/prism")
    elif Path(cfg.prompts.source).is_file():
        found[f"prompts-source:{cfg.prompts.source}"] = Path(cfg.prompts.source)
    return found


def data_checksums(cfg: RunConfig) -> dict[str, str]:
    files = data_files(cfg)
    sums = cached_sha256(list(files.values()))
    return {rel: sums[p] for rel, p in files.items()}


# -- the pipeline ---------------------------------------------------------------------------------------

class Pipeline:
    """Runs the stages of one run directory in order, skipping what is complete and unchanged."""

    def __init__(self, run: RunDir, config: RunConfig, stages: list[Stage] | None = None, quiet: bool = False):
        if stages is None:
            from .stages import STAGES

            stages = STAGES
        self.run = run
        self.config = config
        self.stages = stages
        self.quiet = quiet

    def active(self) -> list[Stage]:
        return [s for s in self.stages if s.enabled(self.config)]

    def preflight(self) -> None:
        """Cheap checks of every stage's inputs (files readable, well-formed) before any work starts."""
        for stage in self.active():
            if stage.preflight is not None:
                stage.preflight(self.config)

    def input_hash(self, stage: Stage, manifest: dict[str, Any], checksums: dict[str, str]) -> str:
        records = manifest.get("stages", {})
        active = {s.name for s in self.active()}
        upstream = {d: records.get(d, {}).get("artifacts", {}) for d in stage.deps if d in active}
        return content_hash({
            "stage": stage.name,
            "package_version": __version__,
            "seed": self.config.seed,
            "inputs": stage.inputs(self.config),
            "upstream": upstream,
            "data": checksums if stage.uses_data else {},
        })

    def _artifacts_intact(self, record: dict[str, Any]) -> bool:
        arts = record.get("artifacts") or {}
        for rel, sha in arts.items():
            p = self.run.path / rel
            if not p.is_file() or file_sha256(p) != sha:
                return False
        return True

    def decide(self, stage: Stage, manifest: dict[str, Any], input_hash: str, retry_failed: bool) -> str:
        """``skip`` or the reason to run: ``new``, ``changed``, ``incomplete``, ``retry``."""
        rec = manifest.get("stages", {}).get(stage.name)
        if not rec:
            return "new"
        if rec.get("status") != "done":
            return "incomplete"
        if rec.get("input_hash") != input_hash:
            return "changed"
        if not self._artifacts_intact(rec):
            return "incomplete"
        if retry_failed and rec.get("failed", 0) > 0:
            return "retry"
        return "skip"

    def execute(self, retry_failed: bool = False) -> dict[str, Any]:
        """Run every enabled stage in order (the caller holds the run lock). Returns the manifest."""
        cfg = self.config
        checksums = data_checksums(cfg)
        manifest = self.run.update_manifest(
            name=cfg.name, seed=cfg.seed, models=cfg.models.used(), data=checksums,
            config_hash=content_hash(cfg.model_dump(mode="json")), status="running", updated=_now(),
            stage_order=[s.name for s in self.active()])
        self._log(f"run directory {self.run.path}")
        for stage in self.active():
            manifest = self.run.read_manifest()
            ih = self.input_hash(stage, manifest, checksums)
            why = self.decide(stage, manifest, ih, retry_failed)
            if why == "skip":
                self._log(f"[dim]{stage.name}: up to date, skipped[/dim]")
                continue
            self._log(f"[bold]{stage.name}[/bold]: running ({why})")
            prev = manifest.get("stages", {}).get(stage.name, {})
            started = time.perf_counter()
            self.run.update_manifest(stages={stage.name: {
                **{k: v for k, v in prev.items() if k in ("runs",)},
                "status": "running", "input_hash": ih, "started": _now(), "pid": os.getpid()}})
            ctx = StageContext(self.run, cfg, stage.name, checksums, quiet=self.quiet)
            try:
                outcome = stage.run(ctx)
            except BaseException as exc:
                rec = {"status": "failed", "input_hash": ih, "finished": _now(),
                       "error": str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}",
                       "duration_s": round(time.perf_counter() - started, 3),
                       "runs": prev.get("runs", 0) + 1}
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    rec["status"] = "interrupted"
                self.run.update_manifest(stages={stage.name: rec}, status="failed", updated=_now())
                raise
            finally:
                ctx.close_clients()
            artifacts = {rel: file_sha256(self.run.path / rel) for rel in outcome.artifacts}
            self.run.update_manifest(stages={stage.name: {
                "status": "done", "input_hash": ih, "finished": _now(),
                "duration_s": round(time.perf_counter() - started, 3),
                "runs": prev.get("runs", 0) + 1,
                "items": outcome.items, "ok": outcome.ok, "failed": outcome.failed,
                "failures": [f.model_dump() for f in outcome.failures[:MAX_RECORDED_FAILURES]],
                "artifacts": artifacts, "summary": outcome.summary}}, updated=_now())
            msg = f"{stage.name}: done — {outcome.ok}/{outcome.items} ok"
            if outcome.failed:
                msg += f", [yellow]{outcome.failed} failed[/yellow]"
            self._log(msg)
        return self.run.update_manifest(status="done", updated=_now(), finished=_now())

    def _log(self, msg: str) -> None:
        if not self.quiet:
            err_console.print(msg, highlight=False)


def prepare_run(config_path: str | Path | None, out: str | Path | None, resume: str | Path | None,
                retry_failed: str | Path | None) -> tuple[RunDir, RunConfig, bool]:
    """Resolve the CLI's choice of config and run directory; validate the config before any work."""
    chosen = [x for x in (config_path, resume, retry_failed) if x]
    if len(chosen) != 1:
        raise UserError("give exactly one of CONFIG, --resume DIR or --retry-failed DIR")
    if config_path:
        cfg = load_config(config_path)
        run = RunDir(out or Path("runs") / cfg.name)
        if run.path.exists() and not run.path.is_dir():
            raise UserError(f"{run.path}: exists and is not a directory")
        return run, cfg, False
    if out:
        raise UserError("--out goes with CONFIG; --resume / --retry-failed name the run directory itself")
    run = RunDir(resume or retry_failed)  # type: ignore[arg-type]
    if not run.config_path.is_file():
        raise UserError(f"{run.path}: not a run directory (no config.toml)")
    return run, load_config(run.config_path), bool(retry_failed)


def run_pipeline(run: RunDir, cfg: RunConfig, retry_failed: bool = False, quiet: bool = False,
                 stages: list[Stage] | None = None) -> dict[str, Any]:
    """Lock the run directory, write the resolved config, and execute the pipeline.

    Inputs are checked first (each stage's ``preflight``). A fresh run directory whose run fails on bad
    input (``UserError``) before any model call is removed again: bad input leaves nothing behind. Once
    model calls were made, the directory stays (resumable; the calls are cached).
    """
    from ..core.atomic import atomic_write_text

    from .status import lock_holder

    if run.path.is_dir() and lock_holder(run) is not None:  # say so before spending time on checks
        with run.locked():
            pass
    pipeline = Pipeline(run, cfg, stages=stages, quiet=quiet)
    pipeline.preflight()
    fresh = not run.path.exists()
    try:
        with run.locked():
            atomic_write_text(run.config_path, cfg.to_toml())
            return pipeline.execute(retry_failed=retry_failed)
    except UserError:
        if fresh and run.path.is_dir() and not _made_calls(run):
            shutil.rmtree(run.path, ignore_errors=True)
        raise


def _made_calls(run: RunDir) -> bool:
    """Whether the run has logged any model call (work that would be costly to lose)."""
    import sqlite3

    if not run.calls_db.exists():
        return False
    try:
        conn = sqlite3.connect(f"file:{run.calls_db}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0] > 0
        finally:
            conn.close()
    except sqlite3.Error:
        return True


__all__ = ["Pipeline", "Stage", "StageContext", "StageOutcome", "ItemFailure", "prepare_run", "run_pipeline",
           "data_checksums"]
