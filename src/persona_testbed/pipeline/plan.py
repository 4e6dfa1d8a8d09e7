"""``persona-testbed plan CONFIG``: calls, tokens, wall time and cost of a run, before it runs.

A projection in three parts:

1. **Base calls per step, from the config alone** (``base_calls``): personas x pairs per persona x one call
   per step (rejected, critique, chosen, validation in both orders), classifier calls per prompt,
   enrichment (+ judge) per persona, bench calls per task (main modes, pass@k samples, LOO arms with the
   control arm, intersection groups, fidelity in both orders + the discrimination matrix). The rejected
   answer depends on the prompt only, so it is one call per *distinct* prompt the personas draw.
2. **Measured per-step factors** from a call log: a *pilot* (the same stage functions ``run`` uses, on a
   tiny slice of the config, into a temporary directory) or a finished run (``--from-run``). For each
   call purpose the log gives mean prompt / completion tokens per call and ``observed calls / base calls``
   of that log's own config — which carries re-asks for truncation and the length band, structured-output
   re-asks, enrichment resamples and retried failures into the projection. Without a log (``--no-pilot``)
   the factor is 1 and tokens are unknown.
3. **Throughput and prices**: wall time per stage = max(calls / rps, completion tokens / tokens-per-s)
   on that stage's endpoint (stages run one after another), cost = tokens x price per million (``--price-in``
   / ``--price-out`` or a named preset from ``PRICE_PRESETS``, each with its source, the date of that source
   and whether it was verified; ``plan --list-prices`` prints the table).
"""

from __future__ import annotations

import math
import sqlite3
import tempfile
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl
from pydantic import BaseModel, Field

from ..core.errors import CallsFailingError, UserError
from ..llm.deferred import WaitingForBatch
from ..llm.store import connect_readonly
from .config import RunConfig, load_config
from .engine import run_pipeline
from .rundir import RunDir

#: the classifier's pool when ``prompts.limit`` is unset and no log says otherwise (assumption, see docs)
DEFAULT_PROMPT_POOL = 3868


class PricePreset(BaseModel):
    """USD per million tokens as one source listed them on ``date`` (prices change: check before relying on it)."""

    price_in: float
    price_out: float
    provider: str | None
    """Who charges these prices; None for a preset that is no provider's price (``self-hosted``)."""
    verified: bool
    """Whether ``price_in`` / ``price_out`` were compared with ``source`` and matched it."""
    source: str
    """What was read: a URL, or repository + path + commit, or a package release."""
    date: str
    """Date of that source (YYYY-MM-DD): the prices are "as listed on" this date."""
    checked: str
    """When the preset was compared with ``source`` (YYYY-MM-DD)."""
    note: str = ""

    def label(self) -> str:
        """How the plan output qualifies these prices (every preset of a provider says its date)."""
        if self.provider is None:
            return "not a provider's price"
        listed = f"as listed on {self.date}, check before relying on it"
        if not self.verified:
            return f"UNVERIFIED, {listed}"
        return listed


#: Read on 2026-12-07. LiteLLM's price table (github.com/BerriAI/litellm,
#: model_prices_and_context_window.json) as shipped in the PyPI release below; its OpenAI entries cite
#: OpenAI's pricing page. Cross-check for the synchronous OpenAI prices: simonw/llm-prices.
_LITELLM = (
    "BerriAI/litellm model_prices_and_context_window.json, as shipped in PyPI litellm 1.110.2 "
    "(litellm/model_prices_and_context_window_backup.json, uploaded 2026-11-20), key {key!r}"
)
_LLM_PRICES = "simonw/llm-prices data/openai.json at commit 397ec5f (2026-07-30) lists the same"
_OPENAI_EOL = "LiteLLM lists deprecation_date 2027-01-14 for this model"

#: Named prices, one table; ``persona-testbed plan --list-prices`` prints it. A preset whose prices could
#: not be matched against a provider page or a maintained price table has ``verified=False`` and is
#: printed as UNVERIFIED wherever it is used.
PRICE_PRESETS: dict[str, PricePreset] = {
    "openai-gpt-4o-mini": PricePreset(
        price_in=0.15,
        price_out=0.60,
        provider="OpenAI",
        verified=True,
        source=_LITELLM.format(key="gpt-4o-mini") + " (cites https://developers.openai.com/api/docs/pricing)",
        date="2026-11-20",
        checked="2026-12-07",
        note=f"{_LLM_PRICES}; {_OPENAI_EOL}",
    ),
    "openai-gpt-4o-mini-batch": PricePreset(
        price_in=0.075,
        price_out=0.30,
        provider="OpenAI",
        verified=True,
        source=_LITELLM.format(key="gpt-4o-mini") + " input/output_cost_per_token_batches",
        date="2026-11-20",
        checked="2026-12-07",
        note=f"Batch API: half the synchronous price, results within 24 h; {_OPENAI_EOL}",
    ),
    "openai-gpt-4o": PricePreset(
        price_in=2.50,
        price_out=10.00,
        provider="OpenAI",
        verified=True,
        source=_LITELLM.format(key="gpt-4o") + " (cites https://developers.openai.com/api/docs/pricing)",
        date="2026-11-20",
        checked="2026-12-07",
        note=(
            f"{_LLM_PRICES}; OpenAI announced these prices for gpt-4o-2024-08-06 on 2024-08-06 "
            "(https://community.openai.com/t/introducing-structured-outputs/896022); gpt-4o-2024-05-13 "
            f"costs $5 / $15; {_OPENAI_EOL}"
        ),
    ),
    "openai-gpt-4o-batch": PricePreset(
        price_in=1.25,
        price_out=5.00,
        provider="OpenAI",
        verified=True,
        source=_LITELLM.format(key="gpt-4o") + " input/output_cost_per_token_batches",
        date="2026-11-20",
        checked="2026-12-07",
        note=f"Batch API: half the synchronous price, results within 24 h; {_OPENAI_EOL}",
    ),
    "together-llama-3.1-70b-turbo": PricePreset(
        price_in=0.88,
        price_out=0.88,
        provider="Together AI",
        verified=False,
        source=(
            _LITELLM.format(key="together_ai/meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo")
            + " (cites https://api.together.ai/v1/models)"
        ),
        date="2026-11-20",
        checked="2026-12-07",
        note=(
            "only one secondary table lists $0.88 / $0.88; Together's own pricing page "
            "(https://www.together.ai/pricing) could not be read, and other hosts have retired Llama 3.1 70B "
            "for Llama 3.3 70B: check that Together still serves this model and at what price"
        ),
    ),
    "self-hosted": PricePreset(
        price_in=0.0,
        price_out=0.0,
        provider=None,
        verified=True,
        source="none: your own hardware, no per-token charge",
        date="-",
        checked="-",
        note="only wall time matters",
    ),
}


class Pricing(BaseModel):
    price_in: float = Field(ge=0)
    """USD per million prompt tokens."""
    price_out: float = Field(ge=0)
    """USD per million completion tokens."""
    preset: str | None = None
    """Name in ``PRICE_PRESETS`` when the prices came from one."""
    verified: bool | None = None
    """The preset's ``verified`` flag (None: prices given with ``--price-in`` / ``--price-out`` only)."""
    source: str | None = None
    """What the preset's prices were read from."""
    listed_on: str | None = None
    """Date of that source: the prices are as listed on this date."""
    label: str | None = None
    """How the prices are qualified: ``as listed on DATE, check before relying on it`` (``UNVERIFIED, ...``)."""
    overridden: bool = False
    """``--price-in`` / ``--price-out`` replaced (part of) the preset's prices."""


class StepPlan(BaseModel):
    """One step of one stage: how many calls, how many tokens, how long, how much."""

    stage: str
    """Pipeline stage (enrich, prompts, feedback, bench:TASK)."""
    step: str
    """Call purpose in the call log (e.g. ``feedback.chosen``)."""
    model: str
    """Endpoint (model string) the step calls."""
    base_calls: float
    """Calls from the config alone (one per unit of work)."""
    factor: float
    """Observed calls / base calls in the log (re-asks, resamples, retries); 1 without a log."""
    calls: int
    """Projected calls (``ceil(base_calls x factor)``)."""
    prompt_tokens_per_call: float | None
    """Mean prompt tokens per call in the log (None: not measured)."""
    completion_tokens_per_call: float | None
    """Mean completion tokens per call in the log (None: not measured)."""
    prompt_tokens: int | None
    completion_tokens: int | None
    basis: str
    """Where tokens and factor came from: ``pilot``, ``run:<dir>``, ``stage mean`` or ``none``."""
    wall_s: float | None = None
    """Seconds at the given throughput (stage-level figure, see ``StagePlan``); None without one."""
    cost_usd: float | None = None


class StagePlan(BaseModel):
    stage: str
    model: str
    calls: int
    prompt_tokens: int | None
    completion_tokens: int | None
    wall_s: float | None
    """max(calls / rps, completion tokens / tokens-per-s) on the stage's endpoint."""
    cost_usd: float | None


class Plan(BaseModel):
    """A projection of a run: every number is an estimate under ``assumptions``."""

    schema_version: int = 1
    config: str
    source: str
    """``pilot``, ``run:<dir>`` or ``none``."""
    steps: list[StepPlan]
    stages: list[StagePlan]
    totals: StagePlan
    pricing: Pricing | None
    throughput: dict[str, dict[str, float]]
    """Per endpoint: ``rps`` and / or ``tokens_per_s``."""
    assumptions: list[str]


# -- 1. base calls from the config --------------------------------------------------------------------


def _distinct(pool: float, draws: int, people: int) -> float:
    """Expected distinct prompts when ``people`` each draw ``draws`` of ``pool`` without replacement."""
    if pool <= 0 or draws <= 0:
        return 0.0
    return pool * (1.0 - (1.0 - min(1.0, draws / pool)) ** people)


def base_calls(
    cfg: RunConfig,
    *,
    prompt_pool: int | None = None,
    kept_share: float = 1.0,
) -> list[tuple[str, str, str, float]]:
    """``(stage, purpose, model, calls)`` per step, from the config alone (no re-asks, no resamples)."""
    m = cfg.models
    n = cfg.personas.n
    out: list[tuple[str, str, str, float]] = []
    if cfg.personas.enrich.enabled:
        out.append(("enrich", "personas.enrich", m.for_role("enrich"), n))
        if cfg.personas.enrich.judge:
            out.append(("enrich", "personas.judge", m.for_role("judge"), n))
    pool = cfg.prompts.limit or prompt_pool or DEFAULT_PROMPT_POOL
    if cfg.prompts.limit and prompt_pool:
        pool = min(pool, prompt_pool)
    if cfg.prompts.classify:
        out.append(("prompts", "prompts.controversy", m.for_role("prompts"), pool))
    kept = pool * kept_share
    held_pool, train_pool = kept * cfg.prompts.held_out_fraction, kept * (1 - cfg.prompts.held_out_fraction)
    c = cfg.feedback.pairs
    pairs = n * (c.train + c.test + c.held_out)
    fb = m.for_role("feedback")
    if pairs:
        out.append(
            (
                "feedback",
                "feedback.rejected",
                fb,
                _distinct(train_pool, c.train + c.test, n) + _distinct(held_pool, c.held_out, n),
            )
        )
        out += [("feedback", "feedback.critique", fb, pairs), ("feedback", "feedback.chosen", fb, pairs)]
        if cfg.feedback.validate_pairs:
            out += [
                ("feedback", "feedback.judge_ab", fb, pairs),
                ("feedback", "feedback.judge_ba", fb, pairs),
            ]
    b = cfg.bench
    cand, judge = m.for_role("candidate"), m.for_role("judge")
    for task in b.tasks:
        st = f"bench:{task}"
        if task == "main":
            for mode in b.main.modes:
                out.append((st, f"bench.{mode}.candidate", cand, b.main.n))
            out.append((st, "bench.main.judge", judge, b.main.n * len(b.main.modes)))
        elif task == "passk":
            out += [
                (st, "bench.persona.candidate", cand, b.passk.n * b.passk.samples),
                (st, "bench.passk.judge", judge, b.passk.n * b.passk.samples),
            ]
        elif task == "loo":
            arms = 2 + len(b.loo.attributes)  # full + control + one per attribute
            out += [
                (st, "bench.persona.candidate", cand, b.loo.n * arms),
                (st, "bench.loo.judge", judge, b.loo.n * arms),
            ]
        elif task == "intersections":
            g = len(b.intersections.groups)
            out += [
                (st, "bench.persona.candidate", cand, b.intersections.n * g),
                (st, "bench.intersections.judge", judge, b.intersections.n * g),
            ]
        elif task == "fidelity":
            f = b.fidelity
            out.append((st, "bench.fidelity.persona_judge", cand, 2 * f.n))
            mp = f.discrimination_personas
            if mp >= 2:
                out.append(
                    (st, "bench.persona.candidate", judge, mp * f.discrimination_questions)
                )  # the writer
                out.append(
                    (st, "bench.fidelity.matrix", cand, mp * f.discrimination_questions * mp * (mp - 1))
                )
        # agreement: calls depend on the human labels file, not on the config (left out, see assumptions)
    return out


# -- 2. what a call log says ------------------------------------------------------------------------


class LogFigures(BaseModel):
    """Per purpose: rows, mean tokens per call; and what the logged run's config was."""

    calls: dict[str, int]
    prompt_tokens: dict[str, float]
    completion_tokens: dict[str, float]


def read_log(calls_db: Path) -> LogFigures:
    """Call counts and mean tokens per purpose (ok calls for tokens; every row for counts)."""
    if not calls_db.is_file():
        raise UserError(f"{calls_db}: no call log (calls.db) to plan from")
    try:
        conn = connect_readonly(calls_db)
        try:
            rows = conn.execute(
                "SELECT purpose, COUNT(*), AVG(CASE WHEN status = 'ok' THEN prompt_tokens END), "
                "AVG(CASE WHEN status = 'ok' THEN completion_tokens END) FROM calls GROUP BY purpose"
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise UserError(f"{calls_db}: not a readable call log ({exc})") from None
    return LogFigures(
        calls={p: int(c) for p, c, _, _ in rows},
        prompt_tokens={p: float(a) for p, _, a, _ in rows if a is not None},
        completion_tokens={p: float(b) for p, _, _, b in rows if b is not None},
    )


def _kept_share(run_path: Path) -> tuple[int | None, float]:
    """(prompts classified, kept share) from a run's prompts artifact, when it has one."""
    p = run_path / "prompts" / "prompts.parquet"
    if p.is_file():
        df = pl.read_parquet(p)
        if "kept" in df.columns and len(df):
            return len(df), float(df["kept"].cast(pl.Int64).mean())  # type: ignore[arg-type]
    return None, 1.0


def pilot_config(cfg: RunConfig) -> RunConfig:
    """A tiny slice of ``cfg``: the same models, templates and options, a few items per step."""
    d = cfg.model_dump(mode="python", by_alias=True)
    d["name"] = f"{cfg.name}-pilot"
    d["personas"]["n"] = min(cfg.personas.n, 3)
    d["prompts"]["limit"] = min(cfg.prompts.limit or 24, 24)
    d["feedback"]["pairs"] = {k: min(v, 1) for k, v in d["feedback"]["pairs"].items()}
    b = d["bench"]
    b["tasks"] = [t for t in b["tasks"] if t != "agreement"]
    b["main"]["n"] = 1
    b["main"]["shots"] = 1
    b["passk"].update(n=1, samples=min(cfg.bench.passk.samples, 2), k=min(cfg.bench.passk.k, 2))
    b["loo"].update(n=1, attributes=cfg.bench.loo.attributes[:1])
    groups = dict(list(cfg.bench.intersections.groups.items())[:1])
    b["intersections"].update(n=1, groups=groups)
    if not groups:
        b["tasks"] = [t for t in b["tasks"] if t != "intersections"]
    b["fidelity"].update(
        n=1,
        discrimination_personas=min(cfg.bench.fidelity.discrimination_personas, 2),
        discrimination_questions=1,
    )
    d["report"]["enabled"] = False
    return RunConfig.model_validate(d, context={"base_dir": "."})


def run_pilot(cfg: RunConfig, workdir: Path) -> tuple[LogFigures, RunConfig, int | None, float]:
    """Run the pilot slice with the stage functions of ``run``; what its call log says."""
    pcfg = pilot_config(cfg)
    run = RunDir(workdir / "pilot")
    try:
        run_pipeline(run, pcfg, quiet=True)
    except CallsFailingError as exc:
        raise UserError(
            f"plan: the pilot cannot reach the configured model ({exc}); check the endpoint, or "
            "plan from a finished run with --from-run RUN, or counts only with --no-pilot"
        ) from None
    except WaitingForBatch:
        raise UserError(
            "plan: a pilot cannot wait for a batch (the config's executor is batch); plan from a finished run "
            "with --from-run RUN, or counts only with --no-pilot"
        ) from None
    except UserError as exc:  # e.g. a vllm/ model with the local executor, a missing extra
        raise UserError(
            f"plan: the pilot cannot run: {exc}; plan from a finished run with --from-run RUN, or counts "
            "only with --no-pilot"
        ) from None
    classified, share = _kept_share(run.path)
    return read_log(run.path / "calls.db"), pcfg, classified, share


# -- 3. throughput and prices ---------------------------------------------------------------------


def parse_rates(values: Sequence[str], what: str) -> dict[str, float]:
    """``["20"]`` (every endpoint) or ``["openai/x=20", ...]`` -> ``{"*" or model: rate}``."""
    out: dict[str, float] = {}
    for v in values:
        model, eq, num = v.rpartition("=")
        key = model if eq else "*"
        try:
            rate = float(num)
        except ValueError:
            raise UserError(f"{what} {v!r}: expected a number or MODEL=NUMBER") from None
        if not rate > 0 or math.isinf(rate):
            raise UserError(f"{what} {v!r}: must be a positive number")
        out[key] = rate
    return out


def pricing(preset: str | None, price_in: float | None, price_out: float | None) -> Pricing | None:
    """Prices from a preset (``--price-in`` / ``--price-out`` replace its parts) or from the options alone."""
    for name, v in (("--price-in", price_in), ("--price-out", price_out)):
        if v is not None and v < 0:
            raise UserError(f"{name} must be >= 0 (got {v})")
    if preset is not None:
        if preset not in PRICE_PRESETS:
            raise UserError(f"--prices {preset!r}: unknown preset (choose from {', '.join(PRICE_PRESETS)})")
        p = PRICE_PRESETS[preset]
        return Pricing(
            price_in=p.price_in if price_in is None else price_in,
            price_out=p.price_out if price_out is None else price_out,
            preset=preset,
            verified=p.verified,
            source=p.source,
            listed_on=p.date,
            label=p.label(),
            overridden=price_in is not None or price_out is not None,
        )
    if price_in is None and price_out is None:
        return None
    return Pricing(price_in=price_in or 0.0, price_out=price_out or 0.0)


def _rate(rates: Mapping[str, float], model: str) -> float | None:
    return rates.get(model, rates.get("*"))


# -- the plan ------------------------------------------------------------------------------------------


def make_plan(
    config_path: str | Path,
    *,
    from_run: str | Path | None = None,
    pilot: bool = True,
    rps: Sequence[str] = (),
    tokens_per_s: Sequence[str] = (),
    preset: str | None = None,
    price_in: float | None = None,
    price_out: float | None = None,
) -> Plan:
    """The projection for ``config_path`` (see the module docstring)."""
    cfg = load_config(config_path)
    rps_map = parse_rates(rps, "--rps")
    tps_map = parse_rates(tokens_per_s, "--tokens-per-s")
    price = pricing(preset, price_in, price_out)
    log: LogFigures | None = None
    log_cfg: RunConfig | None = None
    classified: int | None = None
    share = 1.0
    if from_run is not None:
        run_path = Path(from_run)
        if not (run_path / "config.toml").is_file():
            raise UserError(f"--from-run {run_path}: not a run directory (no config.toml)")
        log_cfg = load_config(run_path / "config.toml")
        log = read_log(run_path / "calls.db")
        classified, share = _kept_share(run_path)
        source = f"run:{run_path}"
    elif pilot:
        with tempfile.TemporaryDirectory(prefix="persona-testbed-plan-") as tmp:
            log, log_cfg, classified, share = run_pilot(cfg, Path(tmp))
        source = "pilot"
    else:
        source = "none"

    factors: dict[str, float] = {}
    if log is not None and log_cfg is not None:
        per_purpose: dict[str, float] = defaultdict(float)
        for _, purpose, _, calls in base_calls(log_cfg, prompt_pool=classified, kept_share=share):
            per_purpose[purpose] += calls
        factors = {p: log.calls[p] / b for p, b in per_purpose.items() if b > 0 and p in log.calls}

    steps: list[StepPlan] = []
    merged: dict[tuple[str, str, str], float] = defaultdict(float)
    for stage, purpose, model, calls in base_calls(cfg, kept_share=share):
        merged[(stage, purpose, model)] += calls
    stage_tokens: dict[str, list[tuple[float, float]]] = defaultdict(list)
    if log is not None:
        for p in log.prompt_tokens:
            stage_tokens[p.split(".")[0]].append((log.prompt_tokens[p], log.completion_tokens.get(p, 0.0)))
    for (stage, purpose, model), base in merged.items():
        factor = factors.get(purpose, 1.0)
        calls = int(math.ceil(base * factor - 1e-9))
        pt = ct = None
        basis = source if log is not None else "none"
        if log is not None and purpose in log.prompt_tokens:
            pt, ct = log.prompt_tokens[purpose], log.completion_tokens.get(purpose, 0.0)
        elif stage_tokens.get(purpose.split(".")[0]):
            same = stage_tokens[purpose.split(".")[0]]
            pt, ct = sum(x for x, _ in same) / len(same), sum(y for _, y in same) / len(same)
            basis = "stage mean"
        steps.append(
            StepPlan(
                stage=stage,
                step=purpose,
                model=model,
                base_calls=round(base, 2),
                factor=round(factor, 3),
                calls=calls,
                prompt_tokens_per_call=pt,
                completion_tokens_per_call=ct,
                prompt_tokens=None if pt is None else int(round(calls * pt)),
                completion_tokens=None if ct is None else int(round(calls * ct)),
                basis=basis,
            )
        )
        if price is not None and pt is not None and ct is not None:
            steps[-1].cost_usd = (calls * pt * price.price_in + calls * ct * price.price_out) / 1e6

    stages: list[StagePlan] = []
    for stage in dict.fromkeys(s.stage for s in steps):
        rows = [s for s in steps if s.stage == stage]
        for model in dict.fromkeys(r.model for r in rows):
            mine = [r for r in rows if r.model == model]
            calls = sum(r.calls for r in mine)
            pt = (
                None
                if any(r.prompt_tokens is None for r in mine)
                else sum(r.prompt_tokens or 0 for r in mine)
            )
            ct = (
                None
                if any(r.completion_tokens is None for r in mine)
                else sum(r.completion_tokens or 0 for r in mine)
            )
            limits = []
            if (r_ := _rate(rps_map, model)) is not None:
                limits.append(calls / r_)
            if (t_ := _rate(tps_map, model)) is not None and ct is not None:
                limits.append(ct / t_)
            wall = max(limits) if limits else None
            priced = price is not None and all(r.cost_usd is not None for r in mine)
            cost = sum(r.cost_usd or 0 for r in mine) if priced else None
            stages.append(
                StagePlan(
                    stage=stage,
                    model=model,
                    calls=calls,
                    prompt_tokens=pt,
                    completion_tokens=ct,
                    wall_s=wall,
                    cost_usd=cost,
                )
            )
            for r in mine:
                r.wall_s = None if wall is None or calls == 0 else wall * r.calls / calls

    def total(xs: list[float | None]) -> float | None:
        return None if any(x is None for x in xs) else sum(x or 0 for x in xs)

    totals = StagePlan(
        stage="total",
        model="*",
        calls=sum(s.calls for s in stages),
        prompt_tokens=total([s.prompt_tokens for s in stages]),  # type: ignore[arg-type]
        completion_tokens=total([s.completion_tokens for s in stages]),  # type: ignore[arg-type]
        wall_s=total([s.wall_s for s in stages]),
        cost_usd=total([s.cost_usd for s in stages]),
    )
    return Plan(
        config=str(config_path),
        source=source,
        steps=steps,
        stages=stages,
        totals=totals,
        pricing=price,
        throughput={k: {"rps": v} for k, v in rps_map.items()}
        | {
            k: {**({"rps": rps_map[k]} if k in rps_map else {}), "tokens_per_s": v}
            for k, v in tps_map.items()
        },
        assumptions=_assumptions(cfg, source, share, price, preset),
    )


def _assumptions(
    cfg: RunConfig, source: str, share: float, price: Pricing | None, preset: str | None
) -> list[str]:
    a = ["a projection, not a measurement: every step is scaled from the config's counts"]
    if source == "none":
        a.append("no call log: re-ask / resample factors are 1 (a lower bound) and tokens are unknown")
    else:
        a.append(
            f"tokens per call and re-ask factors measured on {source} (its model, its persona and prompt "
            "mix; a pilot is a few items, so its factors are rough)"
        )
    if cfg.prompts.classify:
        a.append(
            f"classifier calls = prompts.limit ({cfg.prompts.limit})"
            if cfg.prompts.limit
            else f"classifier calls = {DEFAULT_PROMPT_POOL} prompts (prompts.limit unset)"
        )
    a.append(
        f"share of prompts kept by the filters: {share:.2f}; rejected answers: one per distinct prompt drawn "
        "(shared by every persona that draws it)"
    )
    a.append(
        "stages run one after another; within a stage, wall = max(calls / rps, completion tokens / "
        "tokens-per-s) on its endpoint"
    )
    if "agreement" in cfg.bench.tasks:
        a.append("bench task agreement is left out (its calls depend on the human labels file)")
    if price is not None:
        if preset:
            a.append(preset_line(preset))
            if price.overridden:
                a.append(
                    f"prices used: ${price.price_in:g}/M prompt tokens, ${price.price_out:g}/M completion "
                    "tokens (--price-in / --price-out override the preset)"
                )
        else:
            a.append(f"prices: ${price.price_in:g}/M prompt tokens, ${price.price_out:g}/M completion tokens")
    return a


def preset_line(name: str) -> str:
    """One line for a preset: its prices, its label (date, UNVERIFIED) and what they were read from."""
    p = PRICE_PRESETS[name]
    return (
        f"prices: preset {name}: ${p.price_in:g}/M in, ${p.price_out:g}/M out, {p.label()}; "
        f"source: {p.source}{'; ' + p.note if p.note else ''}"
    )


__all__ = [
    "DEFAULT_PROMPT_POOL",
    "PRICE_PRESETS",
    "Plan",
    "PricePreset",
    "Pricing",
    "StagePlan",
    "StepPlan",
    "base_calls",
    "make_plan",
    "parse_rates",
    "pilot_config",
    "preset_line",
    "pricing",
    "read_log",
    "run_pilot",
]
