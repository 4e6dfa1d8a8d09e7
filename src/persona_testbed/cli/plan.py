"""``persona-testbed plan CONFIG``: projected calls, tokens, wall time and cost of a run, before it runs."""

from __future__ import annotations

from pathlib import Path

import typer

from ..core.errors import UserError
from ..core.output import console, emit
from ..pipeline.plan import PRICE_PRESETS, make_plan


def _n(x: float | int | None, digits: int = 0) -> str:
    if x is None:
        return "?"
    return f"{x:,.{digits}f}"


def _list_prices(as_json: bool) -> None:
    """The price presets: prices, provider, verified or not, the source read and its date."""
    if as_json:
        emit({n: {**p.model_dump(mode="json"), "label": p.label()} for n, p in PRICE_PRESETS.items()}, True)
        return
    console.print("PRICE PRESETS (--prices NAME): USD per million tokens; prices change", highlight=False)
    for n, p in PRICE_PRESETS.items():
        console.print(
            f"{n} ({p.provider or 'no provider'}): ${p.price_in:g}/M in, ${p.price_out:g}/M out, {p.label()}",
            highlight=False,
            markup=False,
        )
        console.print(f"  source: {p.source}", highlight=False, markup=False)
        if p.note:
            console.print(f"  note: {p.note}", highlight=False, markup=False)


def plan_command(
    config: Path | None = typer.Argument(
        None, help="Run configuration (TOML), e.g. configs/paper.toml (not needed with --list-prices)."
    ),
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
    prices: str | None = typer.Option(
        None,
        "--prices",
        help=f"Named prices: {', '.join(PRICE_PRESETS)} (see --list-prices for sources, dates, UNVERIFIED ones).",
    ),
    list_prices: bool = typer.Option(
        False,
        "--list-prices",
        help="List the price presets with their source, its date and whether they were verified; then exit.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """Project calls per stage and step, tokens, wall time and cost of CONFIG before running it."""
    if list_prices:
        _list_prices(as_json)
        return
    if config is None:
        raise UserError(
            "plan: missing CONFIG (a run configuration, e.g. configs/paper.toml), or --list-prices"
        )
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
