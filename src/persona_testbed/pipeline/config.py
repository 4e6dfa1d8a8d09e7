"""A run's configuration: pydantic models loaded from TOML and validated up front.

Every problem in a config file is reported at once, each with its TOML path
(``feedback.pairs.train: must be ≥ 0``), before any work starts. ``docs/config.md`` documents every
option; ``tests/e2e/test_config.py`` checks that the page and these models agree.

API keys never live in a config file: remote models read ``OPENAI_API_KEY`` from the environment, so a
resolved ``config.toml`` written into a run directory holds no secret.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..core.errors import ConfigError, UserError
from ..llm.models import parse_model
from ..personas.record import PERSONA_FIELDS

MAIN_MODES = ("baseline", "persona", "cot", "summary")
STAGES = ("census", "personas", "enrich", "prompts", "feedback", "bench", "report")


def _check_model(value: str | None) -> str | None:
    """A model string that ``llm.models.parse_model`` knows (one parser for the CLI and config files)."""
    if value is None:
        return value
    try:
        parse_model(value)
    except UserError as exc:
        raise ValueError(str(exc)) from None
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, strict=True)


def _resolve_path(value: str | None, info: Any, must_exist: bool = True) -> str | None:
    """Resolve ``value`` against the config file's directory (``context['base_dir']``)."""
    if value is None or value == "":
        return None
    base = Path((info.context or {}).get("base_dir", "."))
    p = Path(value).expanduser()
    if not p.is_absolute():
        p = (base / p).resolve()
    if must_exist and not p.exists():
        raise ValueError(f"no such file or directory: {p}")
    return str(p)


class ModelsConfig(_Section):
    """Model strings per role; a role left out uses ``default``."""

    default: str = "embedded"
    enrich: str | None = None
    prompts: str | None = None
    feedback: str | None = None
    candidate: str | None = None
    judge: str | None = None

    _models = field_validator("default", "enrich", "prompts", "feedback", "candidate", "judge")(
        classmethod(lambda cls, v: _check_model(v))
    )

    def for_role(self, role: str) -> str:
        """The model string used for ``role`` (enrich, prompts, feedback, candidate, judge)."""
        return getattr(self, role) or self.default

    def used(self) -> dict[str, str]:
        return {role: self.for_role(role) for role in ("enrich", "prompts", "feedback", "candidate", "judge")}


#: the most LLM calls in flight at once that a config or a command accepts
MAX_CONCURRENCY = 4096


class LLMConfig(_Section):
    """How calls are made (the key always comes from the environment, never from this file)."""

    concurrency: int = Field(4, ge=1, le=MAX_CONCURRENCY)
    max_retries: int = Field(4, ge=0, le=100)
    timeout_s: float = Field(120.0, gt=0)
    base_url: str | None = None
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int = Field(256, ge=1)

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v and not re.match(r"^https?://", v):
            raise ValueError(f"must start with http:// or https:// (got {v!r})")
        return v or None

    @model_validator(mode="before")
    @classmethod
    def _no_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and "api_key" in data:
            raise ValueError(
                "api_key does not belong in a config file: set the OPENAI_API_KEY environment variable"
            )
        return data


EXECUTORS = ("local", "batch", "ray")


class VLLMConfig(_Section):
    """``vllm/<model>`` on the Ray executor: vLLM engines on GPU workers (``ray.data.llm``)."""

    replicas: int = Field(1, ge=1, le=1024)
    """Engine replicas (each on its own GPU or GPUs, see ``engine_kwargs.tensor_parallel_size``)."""
    batch_size: int = Field(32, ge=1)
    """Requests per batch sent to an engine."""
    accelerator_type: str | None = None
    """Ray accelerator type the engines need (e.g. ``H100``); unset: any GPU."""
    engine_kwargs: dict[str, Any] = Field(default_factory=dict)
    """vLLM engine arguments (``max_model_len``, ``tensor_parallel_size``, ``gpu_memory_utilization`` …)."""


class RayConfig(_Section):
    """The Ray executor: where Ray runs and how a wave is spread over its workers."""

    address: str | None = None
    num_cpus: int | None = Field(None, ge=1)
    workers: int = Field(2, ge=1, le=MAX_CONCURRENCY)
    batch_size: int = Field(64, ge=1)
    task_retries: int = Field(3, ge=0, le=100)
    vllm: VLLMConfig = Field(default_factory=VLLMConfig)


class ExecutionConfig(_Section):
    """How a stage's model calls are executed (``--executor`` on the commands wins); see docs/execution.md."""

    backend: Literal["local", "batch", "ray"] = "local"
    batch_max_requests: int = Field(50_000, ge=1, le=50_000)
    batch_max_mb: int = Field(200, ge=1, le=200)
    ray: RayConfig = Field(default_factory=RayConfig)


def execution_config(executor: str | None, base: ExecutionConfig | None = None) -> ExecutionConfig:
    """``base`` (or the defaults) with ``--executor`` applied; an unknown executor is a ``ConfigError``."""
    base = base or ExecutionConfig()
    if executor is None:
        return base
    if executor not in EXECUTORS:
        raise ConfigError(f"--executor must be one of {', '.join(EXECUTORS)} (got {executor!r})")
    return base.model_copy(update={"backend": executor})


class DataConfig(_Section):
    """Where input files are read from (laid out like the offline mirror)."""

    dir: str | None = None

    @field_validator("dir")
    @classmethod
    def _dir(cls, v: str | None, info: Any) -> str | None:
        return _resolve_path(v, info)


class CensusConfig(_Section):
    """Which census records personas are drawn from."""

    source: str = "acs2024"
    states: list[str] = Field(default_factory=list)
    adults_only: bool = True
    min_age: int | None = Field(None, ge=0, le=120)
    max_age: int | None = Field(None, ge=0, le=120)
    quota_by: list[str] = Field(default_factory=list)
    rake: str | None = None
    replacement: bool = True
    fidelity_reference: int = Field(2000, ge=100)
    national_donors: str | None = None

    @field_validator("states")
    @classmethod
    def _states(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if not re.match(r"^([A-Za-z]{2}|\d{1,2})$", s)]
        if bad:
            raise ValueError(f"unknown state {bad[0]!r} (use a two-letter abbreviation or a FIPS code)")
        return v

    @model_validator(mode="after")
    def _ages(self) -> CensusConfig:
        if self.min_age is not None and self.max_age is not None and self.min_age > self.max_age:
            raise ValueError(f"min_age {self.min_age} is greater than max_age {self.max_age}")
        return self


class EnrichConfig(_Section):
    """LLM enrichment of the open-ended persona fields (issue 4)."""

    enabled: bool = False
    judge: bool = True
    max_resamples: int = Field(3, ge=0)


class PersonasConfig(_Section):
    """How many personas, and how they are shown to models."""

    n: int = Field(3, ge=1)
    render: Literal["full", "list", "summary"] = "full"
    big_five_reference: Literal["pooled", "group"] = "pooled"
    gss_min_cell: int = Field(20, ge=1)
    enrich: EnrichConfig = Field(default_factory=EnrichConfig)


class PromptsConfig(_Section):
    """Which prompts become contested questions."""

    source: str = "prism"
    limit: int | None = Field(None, ge=1)
    classify: bool = True
    clusters: int = Field(8, ge=1)
    held_out_fraction: float = Field(868 / 3868, ge=0, lt=1)

    @field_validator("source")
    @classmethod
    def _source(cls, v: str, info: Any) -> str:
        if v == "prism":
            return v
        return _resolve_path(v, info) or "prism"


class PairsConfig(_Section):
    """DPF pairs per persona and split."""

    train: int = Field(1, ge=0)
    test: int = Field(1, ge=0)
    held_out: int = Field(1, ge=0)


class FeedbackConfig(_Section):
    """Direct Principle Feedback pair generation."""

    pairs: PairsConfig = Field(default_factory=PairsConfig)
    validate_pairs: bool = Field(True, alias="validate")
    # [low, high]: chosen words within low..high x rejected words (feedback/length.py)
    length_band: list[float] = Field(default_factory=lambda: [0.85, 1.15])

    model_config = ConfigDict(extra="forbid", validate_default=True, strict=True, populate_by_name=True)

    @field_validator("length_band")
    @classmethod
    def _band(cls, v: list[float]) -> list[float]:
        if len(v) != 2:
            raise ValueError(f"must be [low, high], two numbers (got {len(v)})")
        low, high = v
        if low <= 0 or high <= 0:
            raise ValueError(f"both ends must be positive (got [{low:g}, {high:g}])")
        if low > high:
            raise ValueError(f"low {low:g} is above high {high:g}")
        return v


class MainTask(_Section):
    n: int = Field(4, ge=1)
    modes: list[Literal["baseline", "persona", "cot", "summary", "fewshot", "fewshot-retrieved"]] = Field(
        default_factory=lambda: list(MAIN_MODES)
    )
    shots: int = Field(4, ge=1)

    @field_validator("modes")
    @classmethod
    def _nonempty(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("must name at least one mode")
        return v


class PassKTask(_Section):
    n: int = Field(2, ge=1)
    samples: int = Field(3, ge=1)
    k: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _k(self) -> PassKTask:
        if self.k > self.samples:
            raise ValueError(f"k = {self.k} is larger than samples = {self.samples}")
        return self


def _check_attributes(v: list[str]) -> list[str]:
    bad = [a for a in v if a not in PERSONA_FIELDS]
    if bad:
        raise ValueError(
            f"unknown attribute {bad[0]!r} (not one of the 33 persona fields, see docs/config.md)"
        )
    return v


class LooTask(_Section):
    n: int = Field(2, ge=1)
    attributes: list[str] = Field(default_factory=lambda: ["age", "sex", "religion"])

    _attrs = field_validator("attributes")(classmethod(lambda cls, v: _check_attributes(v)))


class IntersectionsTask(_Section):
    n: int = Field(2, ge=1)
    groups: dict[str, dict[str, str | list[str]]] = Field(default_factory=dict)

    @field_validator("groups")
    @classmethod
    def _groups(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, filters in v.items():
            if not filters:
                raise ValueError(f"group {name!r} has no filters")
            _check_attributes(list(filters))
        return v


class FidelityTask(_Section):
    n: int = Field(2, ge=1)
    discrimination_personas: int = Field(2, ge=0)
    discrimination_questions: int = Field(1, ge=1)

    @field_validator("discrimination_personas")
    @classmethod
    def _not_one(cls, v: int) -> int:
        if v == 1:
            raise ValueError("must be 0 (off) or at least 2 (a matrix compares personas)")
        return v


class AgreementTask(_Section):
    labels: str | None = None

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: str | None, info: Any) -> str | None:
        return _resolve_path(v, info)


class BenchConfig(_Section):
    """PERSONA Bench tasks (candidate and judge models are under ``[models]``)."""

    tasks: list[Literal["main", "passk", "loo", "intersections", "fidelity", "agreement"]] = Field(
        default_factory=lambda: ["main", "passk", "loo", "intersections", "fidelity"]
    )
    split: Literal["train", "test", "held_out"] = "held_out"
    candidates: list[str] = Field(default_factory=list)
    judge_max_tokens: int = Field(192, ge=16)
    main: MainTask = Field(default_factory=MainTask)
    passk: PassKTask = Field(default_factory=PassKTask)
    loo: LooTask = Field(default_factory=LooTask)
    intersections: IntersectionsTask = Field(default_factory=IntersectionsTask)
    fidelity: FidelityTask = Field(default_factory=FidelityTask)
    agreement: AgreementTask = Field(default_factory=AgreementTask)

    @field_validator("candidates")
    @classmethod
    def _candidates_once(cls, v: list[str]) -> list[str]:
        for i, m in enumerate(v):
            if m in v[:i]:
                raise ValueError(f"candidate {m!r} is listed twice; list each candidate once")
            _check_model(m)
        return v

    @model_validator(mode="after")
    def _agreement_needs_labels(self) -> BenchConfig:
        if "agreement" in self.tasks and not self.agreement.labels:
            raise ValueError("task 'agreement' needs bench.agreement.labels (a CSV of human labels)")
        return self


class ReportConfig(_Section):
    """The HTML report written at the end of a run."""

    enabled: bool = True
    max_pairs: int = Field(10_000, ge=0)
    max_personas: int = Field(2000, ge=0)


class RunConfig(_Section):
    """One run of the pipeline: census → personas (→ enrichment) → prompts → feedback → bench → report."""

    name: str = "run"
    seed: int = Field(0, ge=0, lt=2**63)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    census: CensusConfig = Field(default_factory=CensusConfig)
    personas: PersonasConfig = Field(default_factory=PersonasConfig)
    prompts: PromptsConfig = Field(default_factory=PromptsConfig)
    feedback: FeedbackConfig = Field(default_factory=FeedbackConfig)
    bench: BenchConfig = Field(default_factory=BenchConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)

    @model_validator(mode="after")
    def _shots(self) -> RunConfig:
        few = [m for m in self.bench.main.modes if m in ("fewshot", "fewshot-retrieved")]
        if few and "main" in self.bench.tasks and self.bench.main.shots > self.feedback.pairs.train:
            raise ValueError(
                f"bench.main.shots: {self.bench.main.shots} is more than the "
                f"{self.feedback.pairs.train} train pairs per persona (feedback.pairs.train) that "
                f"mode {few[0]!r} draws its examples from"
            )
        return self

    def to_toml(self) -> str:
        """The resolved configuration as TOML (paths absolute, defaults filled in)."""
        import tomli_w

        return tomli_w.dumps(self.model_dump(mode="json", by_alias=True, exclude_none=True))


# ------------------------------------------------------------------------------------------------
# errors


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if not (isinstance(p, str) and p.startswith(("function-", "literal[")))]
    return ".".join(parts) or "(top level)"


def _message(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    given = err.get("input")
    if kind == "greater_than_equal":
        return f"must be ≥ {ctx.get('ge')} (got {given!r})"
    if kind == "greater_than":
        return f"must be > {ctx.get('gt')} (got {given!r})"
    if kind == "less_than_equal":
        return f"must be ≤ {ctx.get('le')} (got {given!r})"
    if kind == "less_than":
        return f"must be < {ctx.get('lt')} (got {given!r})"
    if kind == "extra_forbidden":
        return "unknown option (see docs/config.md)"
    if kind == "missing":
        return "required option is missing"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be an integer (got {given!r})"
    if kind in ("float_type", "float_parsing"):
        return f"must be a number (got {given!r})"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false (got {given!r})"
    if kind == "string_type":
        return f"must be a string (got {given!r})"
    if kind in ("list_type", "dict_type", "model_type", "model_attributes_type"):
        what = {"list_type": "a list", "dict_type": "a table"}.get(kind, "a table")
        return f"must be {what} (got {given!r})"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')} (got {given!r})"
    msg = str(err.get("msg", "invalid"))
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def config_errors(exc: ValidationError) -> list[str]:
    """Every validation problem as ``path: message``, in file order."""
    return [f"{_loc(tuple(e.get('loc', ())))}: {_message(e)}" for e in exc.errors()]


def parse_config(data: dict[str, Any], base_dir: str | Path = ".", where: str = "config") -> RunConfig:
    """Validate a config dict; raise ``ConfigError`` listing every problem with its TOML path."""
    try:
        return RunConfig.model_validate(data, context={"base_dir": str(base_dir)})
    except ValidationError as exc:
        problems = config_errors(exc)
        raise ConfigError(
            f"{where}: {len(problems)} problem{'s' if len(problems) != 1 else ''}: " + "; ".join(problems)
        ) from None


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a run config TOML file (relative paths resolve against the file's folder)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a directory, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc})") from None
    return parse_config(data, base_dir=p.resolve().parent, where=str(p))


__all__ = [
    "RunConfig",
    "ModelsConfig",
    "LLMConfig",
    "ExecutionConfig",
    "RayConfig",
    "EXECUTORS",
    "execution_config",
    "DataConfig",
    "CensusConfig",
    "PersonasConfig",
    "EnrichConfig",
    "PromptsConfig",
    "PairsConfig",
    "FeedbackConfig",
    "BenchConfig",
    "ReportConfig",
    "load_config",
    "parse_config",
    "config_errors",
    "MAIN_MODES",
    "STAGES",
]
