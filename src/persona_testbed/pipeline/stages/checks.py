"""Cheap input checks before ``run`` does any work (its preflight)."""

from __future__ import annotations

from ...bench.human import read_labels
from ...census.source import open_source
from ...core.errors import UserError
from ...llm.backends import make_backend
from ...llm.deferred import DEFERRABLE_KINDS
from ...llm.models import parse_model
from ...prompts.load import load_source
from ..config import RunConfig
from ..ray_vllm import require_vllm

# -- checks before any work (``run``'s preflight) -------------------------------------------------------


def check_models(cfg: RunConfig, *roles: str) -> None:
    """Model strings resolve to a backend (known kind, model file present, API key set) — no call made.

    With the batch or Ray executor a model must be one whose requests they can defer (``openai/``,
    ``vllm/``): said here, before any stage runs, rather than when the stage first asks for a client."""
    backend = cfg.execution.backend
    for role in roles:
        model = cfg.models.for_role(role)
        spec = parse_model(model)
        if backend in ("batch", "ray"):
            if spec.kind not in DEFERRABLE_KINDS:
                raise UserError(
                    f"models.{role} = {model!r}: the {backend} executor needs an 'openai/<model>' or "
                    "'vllm/<model>' model string (see docs/execution.md)"
                )
            if spec.kind == "vllm":
                if backend == "ray":
                    require_vllm()
                continue
        make_backend(model, base_url=cfg.llm.base_url, timeout_s=cfg.llm.timeout_s)


def preflight_census(cfg: RunConfig) -> None:
    """The census source opens: files present and readable, states present, dictionary of the right year."""
    open_source(cfg.census.source, states=cfg.census.states or None, data_dir=cfg.data.dir)


def preflight_enrich(cfg: RunConfig) -> None:
    check_models(cfg, "enrich", *(["judge"] if cfg.personas.enrich.judge else []))


def preflight_prompts(cfg: RunConfig) -> None:
    """The prompt source reads: present, UTF-8, well-formed, not empty; the classifier's model resolves."""
    load_source(None if cfg.prompts.source == "prism" else cfg.prompts.source, cfg.data.dir)
    if cfg.prompts.classify:
        check_models(cfg, "prompts")


def preflight_feedback(cfg: RunConfig) -> None:
    check_models(cfg, "feedback")


def preflight_bench(cfg: RunConfig) -> None:
    check_models(cfg, "candidate", "judge")
    if "agreement" in cfg.bench.tasks and cfg.bench.agreement.labels:
        read_labels(cfg.bench.agreement.labels)
