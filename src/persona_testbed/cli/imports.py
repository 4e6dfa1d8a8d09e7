"""CLI for the import group: published data in, written as our own artifacts (``import persona-release``)."""

from __future__ import annotations

from pathlib import Path

import typer

from ..core.output import emit
from ..feedback.release import import_release

app = typer.Typer(no_args_is_help=True, help="Import published data as our personas and pairs.")


@app.command("persona-release")
def persona_release_cmd(
    path: Path = typer.Argument(
        ...,
        help="The PERSONA authors' release: a Parquet or JSONL file, a folder of "
        "them (e.g. a snapshot of SynthLabsAI/PERSONA), or a `datasets` "
        "save_to_disk folder.",
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        help="New or empty directory: personas.jsonl/.parquet, pairs.jsonl/.parquet, release.json.",
    ),
    test_split: str = typer.Option(
        "test",
        "--test-split",
        help="Our split for rows with question type 'test': test, or held_out (bench's default --split).",
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Replace a previous import at --out (recognised by its "
        ".persona-testbed.json marker); nothing else.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Read the published PERSONA data into text-only personas (provenance external) and preference pairs.

    The result works like our own artifacts: `bench run fidelity --pairs OUT --personas OUT`, `feedback
    export OUT`, `feedback stats OUT`. A missing column is a one-line error naming the file; nothing is written.
    """
    res = import_release(path, out, test_split=test_split, force=force)
    emit(
        res,
        as_json,
        ("out", "rows", "personas", "pairs", "splits", "duplicates dropped"),
        [(res["out"], res["rows"], res["personas"], res["pairs"], res["splits"], res["duplicates_dropped"])],
        title=f"import persona-release ({res['dataset']}, licence {res['license']})",
    )
