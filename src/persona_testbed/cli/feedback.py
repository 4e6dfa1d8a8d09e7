"""CLI for the feedback group: generate DPF pairs, export them, print their statistics."""

from __future__ import annotations

from pathlib import Path

import typer

from ..core.output import emit

app = typer.Typer(no_args_is_help=True, help="Direct Principle Feedback pairs: generate, export, stats.")


@app.command("generate")
def generate_cmd(
    personas: Path = typer.Option(..., "--personas", help="personas.jsonl / .parquet, or a directory holding one."),
    prompts: Path = typer.Option(..., "--prompts", help="prompts.jsonl / .parquet from `prompts build`, or its directory."),
    model: str = typer.Option(..., "--model", help="Model string (embedded, gguf:/path, openai/<model>)."),
    out: Path = typer.Option(..., "--out", help="Run directory: pairs.jsonl, pairs.parquet, calls.db, checkpoint."),
    train: int = typer.Option(100, "--train", help="Train pairs per persona (train-split prompts)."),
    test: int = typer.Option(50, "--test", help="Test pairs per persona (train-split prompts, disjoint from train)."),
    held_out: int = typer.Option(50, "--held-out", help="Held-out pairs per persona (held-out prompts)."),
    seed: int = typer.Option(0, "--seed", help="Seed for prompt sampling and every LLM call."),
    concurrency: int = typer.Option(4, "--concurrency", help="LLM calls in flight at once."),
    validate: bool = typer.Option(True, "--validate/--no-validate",
                                  help="Ask the persona-judge to pick chosen vs rejected in both orders."),
    persona_format: str = typer.Option("summary", "--persona-format", help="Persona rendering: full, list or summary."),
    max_tokens: int = typer.Option(256, "--max-tokens", help="Token limit for answers and revisions."),
    critique_max_tokens: int = typer.Option(160, "--critique-max-tokens", help="Token limit for critiques."),
    as_json: bool = typer.Option(False, "--json", help="Print the statistics as JSON."),
) -> None:
    """Generate rejected -> critique -> chosen pairs per persona; resumable (re-run to continue)."""
    from ..core.errors import UserError
    from ..core.hashing import file_sha256
    from ..personas import read_personas
    from ..personas.io import resolve_personas_path
    from ..prompts import read_prompts
    from ..prompts.io import resolve_prompts_path
    from ..feedback.generate import FeedbackConfig, generate_pairs
    from ..feedback.plan import PairCounts

    if persona_format not in ("full", "list", "summary"):
        raise UserError(f"--persona-format {persona_format!r}: choose full, list or summary")
    persona_records = read_personas(personas)
    prompt_records = read_prompts(prompts)
    sources = {"personas": {"path": str(resolve_personas_path(personas)),
                            "sha256": file_sha256(resolve_personas_path(personas))},
               "prompts": {"path": str(resolve_prompts_path(prompts)),
                           "sha256": file_sha256(resolve_prompts_path(prompts))}}
    config = FeedbackConfig(seed=seed, counts=PairCounts(train=train, test=test, held_out=held_out),
                            concurrency=concurrency, validate_pairs=validate, persona_format=persona_format,
                            max_tokens=max_tokens, critique_max_tokens=critique_max_tokens)
    result = generate_pairs(persona_records, prompt_records, out_dir=out, model=model, config=config,
                            progress=not as_json, sources=sources)
    _print_stats(result.stats, as_json, title=f"{out} ({result.reused} reused from checkpoint)")


@app.command("export")
def export_cmd(
    path: Path = typer.Argument(..., help="Feedback run directory (holds pairs.jsonl) or a pairs.jsonl file."),
    fmt: str = typer.Option(..., "--format", help="jsonl, parquet, hf (dataset folder + card) or trl."),
    out: Path = typer.Option(..., "--out", help="Output file (jsonl, parquet) or directory (hf, trl)."),
    drop_leaky: bool = typer.Option(False, "--drop-leaky/--keep-leaky",
                                    help="Leave out pairs whose chosen answer names a persona attribute "
                                         "(default: keep; the dropped count is printed and put in the HF card)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Export pairs as JSONL, Parquet, a Hugging Face dataset folder, or TRL preference JSONL."""
    from ..feedback.export import export_pairs

    res = export_pairs(path, fmt, out, drop_leaky=drop_leaky)
    emit(res, as_json, ("format", "out", "counts", "dropped leaky", "unchecked leakage"),
         [(res["format"], res["out"], res["counts"], res["dropped_leaky"], res["unchecked_leakage"])], title="export")


@app.command("stats")
def stats_cmd(
    path: Path = typer.Argument(..., help="Feedback run directory or pairs.jsonl."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Pairs per split, failures, length policy, persona-judge validation and attribute-leakage rates."""
    from ..feedback.io import read_pairs
    from ..feedback.stats import feedback_stats

    _print_stats(feedback_stats(read_pairs(path)), as_json, title=str(path))


def _print_stats(stats: dict, as_json: bool, title: str) -> None:
    if as_json:
        emit(stats, True)
        return
    emit(None, False, ("split", "ok", "failed"),
         [(s, c["ok"], c["failed"]) for s, c in stats["splits"].items()],
         title=f"{title}: {stats['pairs']} pairs, {stats['personas']} personas")
    v = stats["validation"]
    emit(None, False, ("metric", "value"), [
        ("failures by step", stats["failures_by_step"] or "none"),
        ("length policy", stats["length_action"]),
        ("judged pairs", v["judged_pairs"]),
        ("chosen preferred rate (paper 96%)", v["chosen_preferred_rate"]),
        ("chosen in both orders", v["both_orders_chosen_rate"]),
        ("position bias rate", v["position_bias_rate"]),
        ("flagged (rejected preferred in both orders)", v["flagged"]),
        ("models", ", ".join(stats["models"])),
        ("template", ", ".join(stats["template_versions"])),
    ], title="validation")
    lk = stats["leakage"]
    rows = [("all fields", lk["leaky"], lk["leaky_rate"], lk["rejected_leaky"], lk["rejected_leaky_rate"])]
    for field in sorted(set(lk["by_field"]) | set(lk["rejected_by_field"])):
        c, r = lk["by_field"].get(field, {}), lk["rejected_by_field"].get(field, {})
        rows.append((field, c.get("pairs", 0), c.get("rate", 0.0), r.get("pairs", 0), r.get("rate", 0.0)))
    emit(None, False, ("field", "chosen leaky", "chosen rate", "rejected (control)", "rejected rate"), rows,
         title=f"attribute leakage ({lk['checked']} checked, {lk['unchecked']} unchecked; "
               f"{lk['in_context_findings']} mentions explained by the question / rejected answer)")
