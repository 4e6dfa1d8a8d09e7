"""CLI for the feedback group: generate DPF pairs, export them, print their statistics."""

from __future__ import annotations

from pathlib import Path

import typer

from ..core.errors import UserError
from ..core.output import emit
from ..feedback.export import export_pairs
from ..feedback.generate import FeedbackConfig as PairConfig
from ..feedback.generate import validate_pair_config
from ..feedback.io import read_pairs
from ..feedback.length import LengthBand
from ..feedback.plan import PairCounts, plan_pairs
from ..feedback.stats import feedback_stats
from ..llm.models import parse_model
from ..personas.io import read_personas
from ..pipeline.config import MAX_CONCURRENCY, LLMConfig, execution_config
from ..pipeline.session import Session
from ..pipeline.stages.feedback import FeedbackSpec, feedback_stage
from ..prompts.io import read_prompts

app = typer.Typer(no_args_is_help=True, help="Direct Principle Feedback pairs: generate, export, stats.")


def length_band(low: float, high: float) -> LengthBand:
    """The band from two option values; a bad pair is one line naming both options."""
    try:
        return LengthBand(low=low, high=high)
    except ValueError as exc:
        raise UserError(
            f"--length-band-low {low} / --length-band-high {high}: {str(exc).splitlines()[-1].strip()}"
        ) from None


@app.command("generate")
def generate_cmd(
    personas: Path = typer.Option(
        ..., "--personas", help="personas.jsonl / .parquet, or a directory holding one."
    ),
    prompts: Path = typer.Option(
        ..., "--prompts", help="prompts.jsonl / .parquet from `prompts build`, or its directory."
    ),
    model: str = typer.Option(..., "--model", help="Model string (embedded, gguf:/path, openai/<model>)."),
    out: Path = typer.Option(
        ..., "--out", help="Run directory: pairs.jsonl, pairs.parquet, calls.db, checkpoint."
    ),
    train: int = typer.Option(100, "--train", min=0, help="Train pairs per persona (train-split prompts)."),
    test: int = typer.Option(
        50, "--test", min=0, help="Test pairs per persona (train-split prompts, disjoint from train)."
    ),
    held_out: int = typer.Option(
        50, "--held-out", min=0, help="Held-out pairs per persona (held-out prompts)."
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed for prompt sampling and every LLM call."),
    concurrency: int = typer.Option(
        4, "--concurrency", min=1, max=MAX_CONCURRENCY, help="LLM calls in flight at once."
    ),
    validate: bool = typer.Option(
        True,
        "--validate/--no-validate",
        help="Ask the persona-judge to pick chosen vs rejected in both orders.",
    ),
    persona_format: str = typer.Option(
        "summary", "--persona-format", help="Persona rendering: full, list or summary."
    ),
    max_tokens: int = typer.Option(256, "--max-tokens", help="Token limit for answers and revisions."),
    critique_max_tokens: int = typer.Option(160, "--critique-max-tokens", help="Token limit for critiques."),
    length_band_low: float = typer.Option(
        0.85,
        "--length-band-low",
        help="Shortest chosen answer, as a share of the rejected answer's words (re-asked outside the band).",
    ),
    length_band_high: float = typer.Option(
        1.15, "--length-band-high", help="Longest chosen answer, as a share of the rejected answer's words."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the statistics as JSON."),
    executor: str | None = typer.Option(
        None,
        "--executor",
        help="How model calls run: local (default) or "
        "batch (write waves for a batch endpoint; see docs/execution.md).",
    ),
) -> None:
    """Generate rejected -> critique -> chosen pairs per persona; resumable (re-run to continue).

    Runs the same stage function as ``persona-testbed run`` (calls logged to OUT/calls.db, the stage
    recorded in OUT/manifest.json).
    """
    if persona_format not in ("full", "list", "summary"):
        raise UserError(f"--persona-format {persona_format!r}: choose full, list or summary")
    parse_model(model)  # bad input fails before OUT is created
    config = PairConfig(
        seed=seed,
        counts=PairCounts(train=train, test=test, held_out=held_out),
        concurrency=concurrency,
        validate_pairs=validate,
        persona_format=persona_format,
        max_tokens=max_tokens,
        critique_max_tokens=critique_max_tokens,
        length_band=length_band(length_band_low, length_band_high),
    )
    validate_pair_config(config)
    spec = FeedbackSpec(personas=str(personas), prompts=str(prompts), model=model, config=config)
    plan_pairs(read_personas(personas), read_prompts(prompts), config.counts, config.seed)
    with Session(
        out,
        kind="feedback",
        inputs=[personas, prompts],
        llm=LLMConfig(concurrency=concurrency),
        execution=execution_config(executor),
        quiet=as_json,
    ) as session:
        outcome = session.run_stage("feedback", out, lambda ctx: feedback_stage(ctx, spec), inputs=spec)
    result = outcome.detail
    _print_stats(result.stats, as_json, title=f"{out} ({result.reused} reused from checkpoint)")


@app.command("export")
def export_cmd(
    path: Path = typer.Argument(
        ..., help="Feedback run directory (holds pairs.jsonl) or a pairs.jsonl file."
    ),
    fmt: str = typer.Option(
        ...,
        "--format",
        help="jsonl, parquet, hf (dataset folder + card), trl, or "
        "persona-release (the PERSONA authors' layout).",
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        help="Output file (jsonl, parquet; persona-release when it ends in "
        ".parquet) or directory (hf, trl, persona-release); never the "
        "feedback directory or a folder inside it.",
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Replace a previous folder export (hf, trl, persona-release) of the same format "
        "at --out (recognised by its .persona-testbed.json marker); other directories "
        "are never replaced.",
    ),
    drop_leaky: bool = typer.Option(
        False,
        "--drop-leaky/--keep-leaky",
        help="Leave out pairs whose chosen answer names a persona attribute "
        "(default: keep; the dropped count is printed and put in the HF card).",
    ),
    drop_flagged: bool = typer.Option(
        False,
        "--drop-flagged/--keep-flagged",
        help="Leave out flagged pairs: chosen outside the length band "
        "(length_out_of_band), an answer cut off at max_tokens "
        "(truncated:<step>), judge preferred rejected in both orders "
        "(default: keep; the dropped count is printed).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Export pairs as JSONL, Parquet, a Hugging Face dataset folder, TRL preference JSONL, or in the layout of
    the PERSONA authors' release."""
    res = export_pairs(path, fmt, out, drop_leaky=drop_leaky, drop_flagged=drop_flagged, force=force)
    cols = ("format", "out", "counts", "dropped leaky", "unchecked leakage")
    row = (res["format"], res["out"], res["counts"], res["dropped_leaky"], res["unchecked_leakage"])
    if "held_out_as_test" in res:
        cols, row = cols + ("held out as test",), row + (res["held_out_as_test"],)
    if drop_flagged:
        cols, row = cols + ("dropped flagged",), row + (res["dropped_flagged"],)
    emit(res, as_json, cols, [row], title="export")


@app.command("stats")
def stats_cmd(
    path: Path = typer.Argument(..., help="Feedback run directory or pairs.jsonl."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Pairs per split, failures, validation, leakage, length / position giveaways, truncation, flags, format."""

    _print_stats(feedback_stats(read_pairs(path)), as_json, title=str(path))


def _print_stats(stats: dict, as_json: bool, title: str) -> None:
    if as_json:
        emit(stats, True)
        return
    emit(
        None,
        False,
        ("split", "ok", "failed"),
        [(s, c["ok"], c["failed"]) for s, c in stats["splits"].items()],
        title=f"{title}: {stats['pairs']} pairs, {stats['personas']} personas",
    )
    v = stats["validation"]
    emit(
        None,
        False,
        ("metric", "value"),
        [
            ("failures by step", stats["failures_by_step"] or "none"),
            ("length policy", stats["length_action"]),
            ("judged pairs", v["judged_pairs"]),
            ("chosen preferred rate (paper 96%)", v["chosen_preferred_rate"]),
            ("chosen in both orders", v["both_orders_chosen_rate"]),
            ("position bias rate", v["position_bias_rate"]),
            ("flagged (rejected preferred in both orders)", v["flagged"]),
            ("models", ", ".join(stats["models"])),
            ("template", ", ".join(stats["template_versions"])),
        ],
        title="validation",
    )
    lk = stats["leakage"]
    rows = [("all fields", lk["leaky"], lk["leaky_rate"], lk["rejected_leaky"], lk["rejected_leaky_rate"])]
    for field in sorted(set(lk["by_field"]) | set(lk["rejected_by_field"])):
        c, r = lk["by_field"].get(field, {}), lk["rejected_by_field"].get(field, {})
        rows.append((field, c.get("pairs", 0), c.get("rate", 0.0), r.get("pairs", 0), r.get("rate", 0.0)))
    emit(
        None,
        False,
        ("field", "chosen leaky", "chosen rate", "rejected (control)", "rejected rate"),
        rows,
        title=f"attribute leakage ({lk['checked']} checked, {lk['unchecked']} unchecked; "
        f"{lk['in_context_findings']} mentions explained by the question / rejected answer)",
    )
    pr, ln, fl = stats["predictors"], stats["length"], stats["flags"]
    lo = pr["length_only"]
    emit(
        None,
        False,
        ("metric", "value"),
        [
            ("length-only accuracy: pick the shorter (chars)", lo["accuracy"]),
            ("length-only accuracy (words)", lo["accuracy_words"]),
            (
                "chosen shorter / tie / longer",
                f"{lo['chosen_shorter']} / {lo['ties']} / {lo['chosen_longer']}",
            ),
            ("position-only accuracy: pick the first shown", pr["position_only"]["accuracy"]),
            ("judge picks the shorter", pr["judge_picks_shorter_rate"]),
            ("judge picks the first shown", pr["judge_picks_first_rate"]),
            ("chosen/rejected words: median (p10-p90)", _ratio(ln["ratio_words"])),
            ("chosen in its length band", f"{ln['in_band']} of {ln['with_target']}"),
            ("flagged pairs (--drop-flagged drops)", fl["flagged_pairs"]),
            *((f"  {flag}", n) for flag, n in fl["by_flag"].items()),
        ],
        title=f"giveaways ({pr['pairs']} ok pairs; content-blind predictors should score 0.5)",
    )
    tr = stats["truncation"]
    emit(
        None,
        False,
        ("step", "calls cut off", "pairs re-asked", "still cut off (flagged)"),
        [
            (step, r["truncated_calls"], r.get("pairs_reasked", "-"), r.get("flagged", "-"))
            for step, r in tr["by_step"].items()
        ],
        title=f"truncation at max_tokens ({tr['calls']} calls, {tr['unknown_calls']} without a finish reason)",
    )
    fm = stats["format"]
    emit(
        None,
        False,
        ("check", "chosen rate", "rejected rate", "only chosen", "only rejected"),
        [
            (name, c["chosen_rate"], c["rejected_rate"], c["chosen_only"], c["rejected_only"])
            for name, c in fm["checks"].items()
        ],
        title=f"format artefacts ({fm['pairs']} ok pairs)",
    )


def _ratio(r: dict) -> str:
    if r["median"] is None:
        return "n/a"
    return f"{r['median']:.2f} ({r['p10']:.2f}-{r['p90']:.2f})"
