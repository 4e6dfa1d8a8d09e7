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

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..census.source import open_source
from ..core import settings
from ..core.atomic import atomic_write_text
from ..core.errors import UserError
from ..core.filehash import cached_sha256
from ..core.hashing import content_hash, file_sha256
from ..core.output import err_console
from .config import RunConfig, load_config
from .rundir import RunDir
from .session import ItemFailure, Session, StageContext, StageOutcome, now
from .stages import bench, checks, feedback, personas, prompts
from .status import lock_holder
from .view import write_report


@dataclass(frozen=True)
class Stage:
    """A pipeline stage: name, upstream stages, the config it depends on, and the function that runs it."""

    name: str
    deps: tuple[str, ...]
    inputs: Callable[[RunConfig], dict[str, Any]]
    run: Callable[[StageContext, RunConfig], StageOutcome]
    enabled: Callable[[RunConfig], bool] = lambda cfg: True
    uses_data: bool = False
    description: str = ""
    preflight: Callable[[RunConfig], None] | None = None  # cheap input checks before any work


# -- data checksums -------------------------------------------------------------------------------------


def data_files(cfg: RunConfig) -> dict[str, Path]:
    """The input files a run reads (those present), keyed by path relative to the data directory."""
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


# -- the stages of ``run`` -------------------------------------------------------------------------------


def _census(ctx: StageContext, cfg: RunConfig) -> StageOutcome:
    """Open and check the census source (files, checksums, dictionary year, record counts)."""
    src = open_source(cfg.census.source, states=cfg.census.states or None, data_dir=cfg.data.dir)
    inputs = [i.model_dump(mode="json") for i in src.inputs]
    rows = src.row_count()
    doc = {
        "source": src.name,
        "year": src.year,
        "states": list(src.states),
        "persons": rows,
        "checksum": src.checksum,
        "inputs": inputs,
        "dictionary": getattr(src.dictionary, "year", None),
    }
    out = ctx.dir / "source.json"
    atomic_write_text(out, json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, default=str))
    return StageOutcome(
        items=len(inputs),
        ok=len(inputs),
        artifacts=[ctx.rel(out)],
        summary={"source": src.name, "year": src.year, "persons": rows, "states": len(doc["states"])},
    )


def _bench(ctx: StageContext, cfg: RunConfig) -> StageOutcome:
    groups = cfg.bench.intersections.groups if "intersections" in cfg.bench.tasks else None
    return bench.bench_stage(ctx, bench.bench_specs(cfg, ctx.run.path, ctx.dir), groups=groups)


def _report(ctx: StageContext, cfg: RunConfig) -> StageOutcome:
    """The static HTML report of everything above."""
    info = write_report(ctx.run.path, writer="report")
    return StageOutcome(
        items=1,
        ok=1,
        artifacts=[ctx.rel(Path(info["report"]))],
        summary={"bytes": info["bytes"], "render_s": info["render_s"]},
    )


def _census_inputs(c: RunConfig) -> dict[str, Any]:
    return {"census": c.census.model_dump(mode="json")}


def _llm_inputs(c: RunConfig) -> dict[str, Any]:
    return c.llm.model_dump(mode="json", exclude={"concurrency", "timeout_s", "max_retries"})


STAGES: list[Stage] = [
    Stage(
        "census",
        (),
        _census_inputs,
        _census,
        uses_data=True,
        description="open and check the census source",
        preflight=checks.preflight_census,
    ),
    Stage(
        "personas",
        ("census",),
        lambda c: {**_census_inputs(c), "n": c.personas.n},
        lambda ctx, cfg: personas.personas_stage(ctx, personas.sample_spec(cfg)),
        uses_data=True,
        description="census-grounded personas + fidelity",
    ),
    Stage(
        "enrich",
        ("personas",),
        lambda c: {
            "enrich": c.personas.enrich.model_dump(mode="json"),
            "model": c.models.for_role("enrich"),
            "judge": c.models.for_role("judge"),
        },
        lambda ctx, cfg: personas.enrich_stage(ctx, personas.enrich_spec(cfg, ctx.run.path)),
        enabled=lambda c: c.personas.enrich.enabled,
        description="LLM enrichment + judge",
        preflight=checks.preflight_enrich,
    ),
    Stage(
        "prompts",
        (),
        lambda c: {
            "prompts": c.prompts.model_dump(mode="json"),
            "model": c.models.for_role("prompts"),
            "llm": _llm_inputs(c),
        },
        lambda ctx, cfg: prompts.prompts_stage(ctx, prompts.prompts_spec(cfg)),
        uses_data=True,
        description="PRISM → contested questions",
        preflight=checks.preflight_prompts,
    ),
    Stage(
        "feedback",
        ("personas", "enrich", "prompts"),
        lambda c: {
            "feedback": c.feedback.model_dump(mode="json"),
            "render": c.personas.render,
            "model": c.models.for_role("feedback"),
            "llm": _llm_inputs(c),
        },
        lambda ctx, cfg: feedback.feedback_stage(ctx, feedback.feedback_spec(cfg, ctx.run.path)),
        description="DPF preference pairs",
        preflight=checks.preflight_feedback,
    ),
    Stage(
        "bench",
        ("personas", "enrich", "prompts", "feedback"),
        lambda c: {
            "bench": c.bench.model_dump(mode="json"),
            "render": c.personas.render,
            "candidate": c.models.for_role("candidate"),
            "judge": c.models.for_role("judge"),
            "llm": _llm_inputs(c),
        },
        _bench,
        enabled=lambda c: bool(c.bench.tasks),
        description="PERSONA Bench tasks",
        preflight=checks.preflight_bench,
    ),
    Stage(
        "report",
        ("census", "personas", "enrich", "prompts", "feedback", "bench"),
        lambda c: {"report": c.report.model_dump(mode="json")},
        _report,
        enabled=lambda c: c.report.enabled,
        description="HTML report",
    ),
]


# -- the pipeline ---------------------------------------------------------------------------------------


class Pipeline:
    """Runs the stages of one run directory in order, skipping what is complete and unchanged."""

    def __init__(
        self, run: RunDir, config: RunConfig, stages: list[Stage] | None = None, quiet: bool = False
    ):
        self.run = run
        self.config = config
        self.stages = STAGES if stages is None else stages
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
        return content_hash(
            {
                "stage": stage.name,
                "package_version": __version__,
                "seed": self.config.seed,
                "inputs": stage.inputs(self.config),
                "upstream": upstream,
                "data": checksums if stage.uses_data else {},
            }
        )

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

    def execute(self, session: Session, retry_failed: bool = False) -> dict[str, Any]:
        """Run every enabled stage in order inside ``session`` (which holds the run lock)."""
        cfg = self.config
        checksums = data_checksums(cfg)
        self.run.update_manifest(
            name=cfg.name,
            seed=cfg.seed,
            models=cfg.models.used(),
            data=checksums,
            config_hash=content_hash(cfg.model_dump(mode="json")),
            status="running",
            updated=now(),
            stage_order=[s.name for s in self.active()],
        )
        self._log(f"run directory {self.run.path}")
        for stage in self.active():
            manifest = self.run.read_manifest()
            ih = self.input_hash(stage, manifest, checksums)
            why = self.decide(stage, manifest, ih, retry_failed)
            if why == "skip":
                self._log(f"[dim]{stage.name}: up to date, skipped[/dim]")
                continue
            self._log(f"[bold]{stage.name}[/bold]: running ({why})")
            outcome = session.run_stage(
                stage.name,
                self.run.path / stage.name,
                lambda ctx, stage=stage: stage.run(ctx, cfg),
                input_hash=ih,
            )
            msg = f"{stage.name}: done — {outcome.ok}/{outcome.items} ok"
            if outcome.failed:
                msg += f", [yellow]{outcome.failed} failed[/yellow]"
            self._log(msg)
        return self.run.update_manifest(status="done", updated=now(), finished=now())

    def _log(self, msg: str) -> None:
        if not self.quiet:
            err_console.print(msg, highlight=False)


def prepare_run(
    config_path: str | Path | None,
    out: str | Path | None,
    resume: str | Path | None,
    retry_failed: str | Path | None,
) -> tuple[RunDir, RunConfig, bool]:
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


def run_pipeline(
    run: RunDir,
    cfg: RunConfig,
    retry_failed: bool = False,
    quiet: bool = False,
    stages: list[Stage] | None = None,
) -> dict[str, Any]:
    """Lock the run directory, write the resolved config, and execute the pipeline.

    Inputs are checked first (each stage's ``preflight``). A fresh run directory whose run fails before
    any model call is removed again (``Session``): a failure leaves nothing behind. Once model calls were
    made, the directory stays (resumable; the calls are cached).
    """
    if run.path.is_dir() and lock_holder(run) is not None:  # say so before spending time on checks
        with run.locked():
            pass
    pipeline = Pipeline(run, cfg, stages=stages, quiet=quiet)
    pipeline.preflight()
    with Session(run.path, llm=cfg.llm, quiet=quiet, execution=cfg.execution) as session:
        atomic_write_text(run.config_path, cfg.to_toml())
        return pipeline.execute(session, retry_failed=retry_failed)


__all__ = [
    "Pipeline",
    "STAGES",
    "Stage",
    "StageContext",
    "StageOutcome",
    "ItemFailure",
    "prepare_run",
    "run_pipeline",
    "data_checksums",
]
