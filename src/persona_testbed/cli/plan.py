"""``persona-testbed plan CONFIG``: projected calls, tokens, wall time and cost of a run, before it runs."""

from __future__ import annotations

from pathlib import Path

import typer

from ..core.output import console, emit
from ..pipeline.plan import PRICE_PRESETS, make_plan


def _n(x: float | int | None, digits: int = 0) -> str:
    if x is None:
        return "?"
    return f"{x:,.{digits}f}"


def plan_command(
    config: Path = typer.Argument(..., help="Run configuration (TOML), e.g. configs/paper.toml."),
    from_run: Path | None = typer.Option(
        None,
        "--from-run",
        help="Measure tokens and re-ask factors from a finished run's call log instead of a pilot.",
    ),
    pilot: bool = typer.Option(
        True,
        "--pilot/--no-pilot",
        help="Run a pilot (a few items per step on the "
        "configured models, in a temporary directory) to measure tokens; --no-pilot: "
        "calls only.",
    ),
    rps: list[str] | None = typer.Option(
        None, "--rps", help="Requests per second: N for every endpoint or MODEL=N (repeatable)."
    ),
    tokens_per_s: list[str] | None = typer.Option(
        None, "--tokens-per-s", help="Completion tokens per second: N or MODEL=N (repeatable)."
    ),
    price_in: float | None = typer.Option(None, "--price-in", help="USD per million prompt tokens."),
    price_out: float | None = typer.Option(None, "--price-out", help="USD per million completion tokens."),
    prices: str | None = typer.Option(None, "--prices", help=f"Named prices: {', '.join(PRICE_PRESETS)}."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """Project calls per stage and step, tokens, wall time and cost of CONFIG before running it."""
    plan = make_plan(
        config,
        from_run=from_run,
        pilot=pilot,
        rps=rps or [],
        tokens_per_s=tokens_per_s or [],
        preset=prices,
        price_in=price_in,
        price_out=price_out,
    )
    if as_json:
        emit(plan.model_dump(mode="json"), True)
        return
    rows = [
        [
            s.stage,
            s.step,
            _n(s.calls),
            s.factor,
            _n(s.prompt_tokens_per_call, 1),
            _n(s.completion_tokens_per_call, 1),
            _n(s.prompt_tokens),
            _n(s.completion_tokens),
            _n(None if s.wall_s is None else s.wall_s / 3600, 2),
            _n(s.cost_usd, 2),
        ]
        for s in plan.steps
    ]
    for s in [*plan.stages, plan.totals]:
        rows.append(
            [
                s.stage,
                "(stage total)" if s.stage != "total" else "",
                _n(s.calls),
                "",
                "",
                "",
                _n(s.prompt_tokens),
                _n(s.completion_tokens),
                _n(None if s.wall_s is None else s.wall_s / 3600, 2),
                _n(s.cost_usd, 2),
            ]
        )
    emit(
        plan.model_dump(mode="json"),
        False,
        columns=[
            "stage",
            "step",
            "calls",
            "factor",
            "in/call",
            "out/call",
            "in tokens",
            "out tokens",
            "wall h",
            "USD",
        ],
        rows=rows,
        title=f"PROJECTION for {plan.config} (tokens from {plan.source})",
    )
    for a in plan.assumptions:
        console.print(f"- {a}", highlight=False, markup=False)
