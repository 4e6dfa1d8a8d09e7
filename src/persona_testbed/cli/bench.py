"""CLI for the bench group: ``run`` a task, ``tasks list|export``, ``human export|import``."""

from __future__ import annotations

from pathlib import Path

import typer

from ..bench.compare import compare_runs
from ..bench.export import export_items
from ..bench.human import export_sheets, import_sheets
from ..bench.inputs import load_pairs, load_prompts
from ..bench.leaderboard import Comparison, differences_table, leaderboard_table
from ..bench.plan import plan_many, results_files
from ..bench.results import read_results
from ..bench.runner import check_run_options
from ..bench.tasks import TASKS
from ..core.errors import UserError
from ..core.output import emit
from ..llm.models import parse_model
from ..llm.types import ChatParams
from ..personas.io import read_personas
from ..pipeline.config import MAX_CONCURRENCY, LLMConfig, execution_config
from ..pipeline.session import Session
from ..pipeline.stages.bench import BenchTaskSpec, bench_stage, check_candidates

app = typer.Typer(no_args_is_help=True, help="PERSONA Bench: run tasks, export items, human-eval kit.")
tasks_app = typer.Typer(no_args_is_help=True, help="Bench tasks: list them, export their items as JSONL.")
human_app = typer.Typer(no_args_is_help=True, help="Human-eval kit: annotation sheets out, filled sheets in.")
app.add_typer(tasks_app, name="tasks", help="Bench tasks: list them, export their items as JSONL.")
app.add_typer(human_app, name="human", help="Human-eval kit: annotation sheets out, filled sheets in.")

TASK_HELP = {name: t.help for name, t in TASKS.items()}


@app.command("run")
def run_cmd(
    task: str = typer.Argument(..., help=f"Task: {', '.join(TASK_HELP)}."),
    candidate: list[str] | None = typer.Option(
        None,
        "--candidate",
        "-c",
        help="Candidate model string (repeat to compare several on the same items, seeds and judge).",
    ),
    judge: list[str] | None = typer.Option(
        None, "--judge", "-j", help="Judge model string (repeat for several judges in agreement)."
    ),
    personas: Path = typer.Option(
        ..., "--personas", "-p", help="Personas (personas.jsonl/.parquet or its directory)."
    ),
    prompts: Path | None = typer.Option(
        None, "--prompts", "-q", help="Prompt set (prompts.parquet/.jsonl or dir)."
    ),
    pairs: Path | None = typer.Option(
        None,
        "--pairs",
        help="Feedback pairs (fidelity, agreement; main's few-shot modes read the train split).",
    ),
    answers: Path | None = typer.Option(
        None,
        "--answers",
        help="Score precomputed answers (JSONL: persona_id, "
        "prompt_id, answer[, sample_index]) instead of a candidate model.",
    ),
    approach: str | None = typer.Option(
        None,
        "--approach",
        help="Score a Python function 'package.module:function' (persona, question) -> answer.",
    ),
    mode: list[str] | None = typer.Option(
        None,
        "--mode",
        "-m",
        help="Candidate mode(s): baseline, persona, "
        "cot, summary, and for main fewshot, fewshot-retrieved (main: the "
        "first four by default; others: persona).",
    ),
    shots: int | None = typer.Option(
        None,
        "--shots",
        help="main, few-shot modes: the persona's own train pairs shown per answer (default 4).",
    ),
    n: int | None = typer.Option(
        None,
        "--n",
        help="Items (per group for intersections; pairs for "
        "fidelity/agreement). Default 20 items, all pairs.",
    ),
    k: int | None = typer.Option(None, "--k", help="passk: largest k."),
    samples: int | None = typer.Option(None, "--samples", help="passk: samples per item (default k)."),
    attribute: list[str] | None = typer.Option(
        None, "--attribute", "-a", help="loo: attribute to remove (repeatable; 'all' for every field)."
    ),
    ablate: str | None = typer.Option(
        None, "--ablate", help="loo: remove the attribute from the 'candidate' (default) or the 'judge' view."
    ),
    group: list[str] | None = typer.Option(
        None,
        "--group",
        "-g",
        help='intersections: filters like "sex=Female,race=Black or African American alone" (repeatable).',
    ),
    groups_file: Path | None = typer.Option(
        None, "--groups", help="intersections: TOML file of [groups.NAME]."
    ),
    matrix_personas: int | None = typer.Option(
        None,
        "--matrix-personas",
        help="fidelity: personas in the discrimination matrix (0 = off; default 3).",
    ),
    matrix_questions: int | None = typer.Option(
        None, "--matrix-questions", help="fidelity: questions per matrix cell (default 2)."
    ),
    labels: Path | None = typer.Option(None, "--labels", help="agreement: human labels CSV."),
    split: str = typer.Option("held_out", "--split", help="Prompt/pair split to use ('all' for every one)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed for every random choice."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Output directory (default bench-results/TASK)."
    ),
    max_tokens: int = typer.Option(512, "--max-tokens", help="Candidate max tokens."),
    judge_max_tokens: int = typer.Option(384, "--judge-max-tokens", help="Judge max tokens."),
    temperature: float = typer.Option(0.7, "--temperature", help="Candidate sampling temperature."),
    judge_temperature: float = typer.Option(0.0, "--judge-temperature", help="Judge sampling temperature."),
    concurrency: int = typer.Option(
        4, "--concurrency", min=1, max=MAX_CONCURRENCY, help="Concurrent calls per model."
    ),
    ci_method: str = typer.Option("percentile", "--ci-method", help="Bootstrap CI: percentile or bca."),
    resamples: int = typer.Option(2000, "--resamples", help="Bootstrap resamples."),
    confidence: float = typer.Option(
        0.95, "--confidence", help="Confidence level of every interval (0 < c < 1; e.g. 0.9, 0.99)."
    ),
    cluster: str = typer.Option(
        "persona",
        "--cluster",
        help="Resampling unit of every interval: persona, "
        "prompt or none (fidelity always keeps a pair's two orders together).",
    ),
    exclude_leaky: bool = typer.Option(
        False,
        "--exclude-leaky",
        help="Leave answers that name a persona "
        "attribute out of the accuracies (they are flagged either way).",
    ),
    calibration: Path | None = typer.Option(
        None,
        "--calibration",
        help="main: human pass/fail labels of this "
        "run's answers (CSV item_id, arm, annotator_id, label) for "
        "judge-corrected accuracy.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON."),
    executor: str | None = typer.Option(
        None,
        "--executor",
        help="How model calls run: local (default) or "
        "batch (write waves for a batch endpoint; see docs/execution.md).",
    ),
) -> None:
    """Run one bench task; write results.json and items.parquet; print the figures.

    Runs the same stage function as ``persona-testbed run`` (calls logged to OUT/calls.db, the stage
    recorded in OUT/manifest.json). A command that fails before any model call leaves nothing behind.
    """
    if task not in TASKS:
        raise UserError(f"unknown bench task {task!r} (choose from {', '.join(TASKS)})")
    if max_tokens < 1 or judge_max_tokens < 1:
        raise UserError("--max-tokens and --judge-max-tokens must be at least 1")
    options: dict = {}
    if mode:
        options["modes" if task == "main" else "mode"] = list(mode) if task == "main" else mode[0]
    if shots is not None:
        if task != "main":
            raise UserError("--shots applies to task main (modes fewshot, fewshot-retrieved) only")
        options["shots"] = shots
    for name, value in (
        ("k", k),
        ("samples", samples),
        ("attributes", attribute),
        ("ablate", ablate),
        ("groups", group),
        ("groups_file", groups_file),
        ("matrix_personas", matrix_personas),
        ("matrix_questions", matrix_questions),
        ("labels", labels),
        ("calibration", calibration),
    ):
        if value:
            options[name] = (
                [str(v) for v in value]
                if isinstance(value, list)
                else (str(value) if isinstance(value, Path) else value)
            )
    if task == "passk" and "k" not in options:
        options["k"] = 3
    if task == "fidelity" and matrix_personas == 0:
        options["matrix_personas"] = 0
    candidates = list(candidate or [])
    check_candidates(candidates)
    for m in (*candidates, *(judge or [])):
        parse_model(m)  # a bad model string fails before OUT is created
    check_run_options(  # so do a bad --cluster, --confidence, --ci-method, --resamples and labels file
        cluster=cluster,
        calibration=calibration,
        ci_method=ci_method,
        confidence=confidence,
        n_resamples=resamples,
    )
    spec = BenchTaskSpec(
        task=task,
        candidate=candidates[0] if len(candidates) == 1 else None,
        candidates=candidates if len(candidates) > 1 else [],
        judges=list(judge or []),
        personas=str(personas),
        prompts=str(prompts) if prompts else None,
        pairs=str(pairs) if pairs else None,
        answers=str(answers) if answers else None,
        approach=approach,
        split=split,
        n=n,
        seed=seed,
        candidate_params=ChatParams(temperature=temperature, max_tokens=max_tokens),
        judge_params=ChatParams(temperature=judge_temperature, max_tokens=judge_max_tokens),
        concurrency=concurrency,
        run_options={
            "ci_method": ci_method,
            "n_resamples": resamples,
            "confidence": confidence,
            "cluster": cluster,
            "exclude_leaky": exclude_leaky,
        },
        options=options,
    )
    read_personas(personas)  # bad input fails before OUT is created
    out_dir = out or Path("bench-results") / task
    inputs = [personas, prompts, pairs, answers, labels, groups_file]
    with Session(
        out_dir,
        kind="bench",
        inputs=inputs,
        llm=LLMConfig(concurrency=concurrency),
        execution=execution_config(executor),
        quiet=as_json,
    ) as session:
        outcome = session.run_stage(
            "bench", out_dir, lambda ctx: bench_stage(ctx, [spec], nested=False), inputs=spec
        )
    res = outcome.detail[task]
    if "comparison" in res:
        _emit_comparison(Comparison.model_validate(res["comparison"]), as_json)
        return
    title = (
        f"{task}: candidate {res['models']['candidate']}, judge {res['models']['judge']}, "
        f"{res['counts']['failed']} failures, {res['counts']['llm_calls_total']} LLM calls"
    )
    emit(res, as_json, columns=res["table"]["columns"], rows=res["table"]["rows"], title=title)


def _emit_comparison(c: Comparison, as_json: bool) -> None:
    if as_json:
        emit(c.model_dump(mode="json"), True)
        return
    board, diffs = leaderboard_table(c), differences_table(c)
    emit(
        None,
        False,
        columns=board.columns,
        rows=board.rows,
        title=f"{c.task} leaderboard: {len(c.candidates)} candidates, judge {c.judge}, {c.items} shared items "
        f"(95% CIs resample {c.cluster}s)",
    )
    emit(
        None,
        False,
        columns=diffs.columns,
        rows=diffs.rows,
        title="paired differences (clusters drawn once for both; unpaired = drawn independently)",
    )
    for w in c.warnings:
        typer.echo(f"warning: {w}", err=True)


@app.command("compare")
def compare_cmd(
    runs: list[Path] = typer.Argument(
        ...,
        help="Finished bench task directories (results.json + items.parquet), "
        "their results.json files, or multi-candidate task directories.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Compare finished runs on the items they share: leaderboard, paired differences, McNemar.

    Refuses (exit 2, one line) runs of different tasks or judges, runs whose shared items or logged
    prompts differ, and runs without judged items. Writes nothing.
    """
    _emit_comparison(compare_runs(runs), as_json)


@tasks_app.command("list")
def tasks_list_cmd(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """List the bench tasks."""
    emit(
        [{"task": t, "description": d} for t, d in TASK_HELP.items()],
        as_json,
        columns=["task", "description"],
        rows=list(TASK_HELP.items()),
    )


@tasks_app.command("export")
def tasks_export_cmd(
    personas: Path = typer.Option(..., "--personas", "-p", help="Personas file or directory."),
    prompts: Path = typer.Option(..., "--prompts", "-q", help="Prompt set file or directory."),
    out: Path = typer.Option(..., "--out", "-o", help="Output JSONL file."),
    n: int = typer.Option(20, "--n", help="Items to export."),
    seed: int = typer.Option(0, "--seed", help="Seed (same items as task main with this seed)."),
    mode: str = typer.Option(
        "persona", "--mode", "-m", help="Prompt style: baseline, persona, cot, summary."
    ),
    split: str = typer.Option("held_out", "--split", help="Prompt split ('all' for every prompt)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Write the items (system/user prompts, persona, question) to JSONL for answering elsewhere."""

    count = export_items(
        read_personas(personas),
        load_prompts(prompts, split),
        out,
        n=n,
        seed=seed,
        mode=mode,
        inputs=[personas, prompts],
    )
    emit({"items": count, "out": str(out), "mode": mode, "seed": seed}, as_json)


@human_app.command("export")
def human_export_cmd(
    pairs: Path = typer.Option(..., "--pairs", help="Feedback pairs file or directory."),
    personas: Path = typer.Option(..., "--personas", "-p", help="Personas file or directory."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory for the sheets (new or empty)."),
    force: bool = typer.Option(
        False,
        "--force",
        help="Replace a previous sheets directory at --out (recognised by "
        "its .persona-testbed.json marker); nothing else.",
    ),
    n: int = typer.Option(20, "--n", help="Pairs to annotate in all."),
    annotators: int = typer.Option(4, "--annotators", help="Number of annotators."),
    questions: int = typer.Option(10, "--questions", help="Questions per sheet (one persona per sheet)."),
    raters: int = typer.Option(3, "--raters", help="Annotators per sheet (3 for a majority vote)."),
    split: str = typer.Option("all", "--split", help="Pair split to draw from ('all' for every pair)."),
    seed: int = typer.Option(0, "--seed", help="Seed for the choice of pairs and answer order."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Write annotation sheets: a CSV and a self-contained HTML form per annotator, plus key.csv."""

    info = export_sheets(
        load_pairs(pairs, split),
        read_personas(personas),
        out,
        n=n,
        annotators=annotators,
        questions=questions,
        raters=raters,
        seed=seed,
        inputs=[pairs, personas],
        force=force,
    )
    emit(info, as_json)


@human_app.command("import")
def human_import_cmd(
    sheets: list[Path] = typer.Argument(
        ..., help="Filled annotator-*.csv files or directories holding them."
    ),
    key: Path = typer.Option(..., "--key", help="key.csv written by 'bench human export'."),
    out: Path = typer.Option(..., "--out", "-o", help="Labels CSV to write (input of task agreement)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Read filled sheets back into a labels CSV (persona_id, pair_id, annotator_id, choice)."""
    labels = import_sheets(sheets, key, out)
    counts = {c: sum(1 for x in labels if x.choice == c) for c in ("chosen", "rejected", "tie")}
    emit(
        {
            "labels": len(labels),
            **counts,
            "annotators": len({x.annotator_id for x in labels}),
            "out": str(out),
        },
        as_json,
    )


@app.command("plan")
def plan_cmd(
    results: list[Path] = typer.Argument(
        ...,
        help="Pilot results.json files, task directories, or a run's bench/ "
        "directory (every TASK/results.json in it; a pilot comparing candidates: each candidates/*/results.json).",
    ),
    half_width: float = typer.Option(
        0.05, "--half-width", help="Target CI half-width (e.g. 0.05 for +-5 points)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Items needed per mode / group / k for a chosen CI half-width, scaled from a pilot run's intervals."""
    files = [f for p in results for f in results_files(p)]
    rows = plan_many([read_results(f) for f in files], half_width)
    emit(
        [r.model_dump() for r in rows],
        as_json,
        columns=[
            "task",
            "candidate",
            "figure",
            "estimate",
            "pilot n",
            "pilot +-",
            "design effect",
            "n needed",
            "unit",
        ],
        rows=[
            [
                r.task,
                r.candidate,
                r.figure,
                r.estimate,
                r.pilot_n,
                r.pilot_half_width,
                r.design_effect,
                r.n_needed,
                r.unit,
            ]
            for r in rows
        ],
        title=f"items for a +-{half_width} interval",
    )
