"""``persona-testbed data``: list input files, fetch them from a mirror or the official URLs."""

from __future__ import annotations

import typer

from ..core import settings
from ..core.errors import UserError
from ..core.output import console, emit, table
from ..data.fetcher import FetchFailed, fetch
from ..data.resolver import resolve
from ..data.status import verify

app = typer.Typer(
    no_args_is_help=True,
    help="Input data: list, fetch from a mirror or from the public origins (Census, Hugging "
    "Face, NORC, package tables).",
)

WHAT_HELP = (
    "What to fetch: all (default), quickstart (what configs/quickstart.toml reads), a group "
    "(census-2018, census-2024, dictionaries, targets, gss, bigfive, prism), a relative path, or a "
    "PUMS target pums:YEAR:p|h:STATE[:1|5] / pums:YEAR:dict (e.g. pums:2019:p:ca, pums:2022:h:all:5)."
)
DATA_DIR_HELP = "Data directory (default: $PERSONA_TESTBED_HOME/data or the user cache dir)."


def _human(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


@app.command("fetch")
def fetch_cmd(
    what: list[str] | None = typer.Argument(None, help=WHAT_HELP, show_default=False),
    mirror: str | None = typer.Option(
        None,
        "--mirror",
        help="Copy from this mirror (a directory laid out like the data directory, or an "
        "http(s):// URL) instead of the official URLs. Default: $PERSONA_TESTBED_MIRROR.",
    ),
    data_dir: str | None = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    force: bool = typer.Option(False, "--force", help="Fetch again even if present with a good checksum."),
    states: str | None = typer.Option(
        None,
        "--states",
        help="Only these states' census files (comma-separated abbreviations or FIPS "
        "codes, e.g. ca,tx) of groups, all and quickstart; quickstart defaults to VT,ND,DE,WY.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Copy input files from a mirror, or download them from their public origins (resumable,
    checksum- or content-verified, atomic)."""
    wanted = [s.strip() for s in states.split(",") if s.strip()] if states is not None else None
    if wanted is not None and not wanted:
        raise UserError("--states is empty: give state abbreviations or FIPS codes, e.g. --states ca,tx")
    try:
        results = fetch(what or ["all"], mirror=mirror, data_dir=data_dir, force=force, states=wanted)
        failure = None
    except FetchFailed as exc:
        results, failure = exc.results, exc
    if len(results) > 1 or as_json:
        rows = [
            (
                r.relpath,
                r.status,
                _human(r.size),
                "" if r.status in ("failed", "skipped") else r.checksum,
                r.note,
            )
            for r in results
        ]
        counts = {
            s: sum(r.status == s for r in results)
            for s in ("present", "copied", "downloaded", "derived", "skipped", "failed")
        }
        title = ", ".join(f"{n} {s}" for s, n in counts.items() if n) + f" → {settings.data_dir(data_dir)}"
        emit(
            [r.model_dump() for r in results],
            as_json,
            columns=("file", "status", "size", "checksum", "note"),
            rows=rows,
            title=title,
        )
    elif results and failure is None:
        r = results[0]
        typer.echo(f"{r.relpath}: {r.status} ({_human(r.size)}, checksum {r.checksum})", err=True)
    if failure is not None:
        raise failure


@app.command("list")
def list_cmd(
    what: list[str] | None = typer.Argument(
        None,
        help="Limit to these files / groups / PUMS targets (default: every known file).",
        show_default=False,
    ),
    data_dir: str | None = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    check: bool = typer.Option(
        True, "--verify/--no-verify", help="Hash files to check them (cached by path, size and mtime)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the list as JSON."),
) -> None:
    """Show every known input file: present?, size, checksum status (ok/mismatch/missing/unverified), group,
    where it comes from without a mirror; then each group's licence and citation."""
    statuses = verify(what or None, data_dir, hash_files=check)
    counts = {s: sum(x.status == s for x in statuses) for s in ("ok", "mismatch", "missing", "unverified")}
    title = ", ".join(f"{n} {s}" for s, n in counts.items() if n) + f" in {settings.data_dir(data_dir)}"
    rows = [
        (s.relpath, s.group, _human(s.size or s.expected_size), s.status, _origin(s.origin)) for s in statuses
    ]
    emit(
        [s.model_dump() for s in statuses],
        as_json,
        columns=("file", "group", "size", "checksum", "public origin"),
        rows=rows,
        title=title,
    )
    if not as_json:
        groups: dict[str, tuple[str, str]] = {}
        for s in statuses:
            groups.setdefault(s.group, (s.licence, s.citation))
        console.print(
            table(
                "licences and citations",
                ("group", "licence", "cite"),
                [(g, lic, cite) for g, (lic, cite) in groups.items() if lic or cite],
            )
        )


def _origin(url: str | None) -> str:
    """Where a file comes from without a mirror, short: the host, ``package``, or ``mirror only``."""
    if url is None:
        return "mirror only"
    if "://" not in url:
        return url
    return url.split("://", 1)[1].split("/", 1)[0]


@app.command("path")
def path_cmd(
    relpath: str = typer.Argument(..., help="File path relative to the data directory."),
    data_dir: str | None = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
    check: bool = typer.Option(True, "--verify/--no-verify", help="Check the file's sha256 first."),
) -> None:
    """Print the absolute path of a data file (for scripts); exit 2 with the fetch command if missing."""
    typer.echo(str(resolve(relpath, data_dir, verify=check)))
