"""The PERSONA authors' published data (the *release*): read it into our personas and pairs, write ours in it.

The release (Hugging Face ``SynthLabsAI/PERSONA``: one ``train`` split of Parquet files, licence
CC-BY-NC-SA-4.0; 1,000 personas x 200 pairs) has one row per pair and six string columns:

=================  ==========================================================  ===================
column             content                                                     ours
=================  ==========================================================  ===================
``persona``        the persona as text (``field: value`` lines)                 ``persona_text``
``instruction``    the question                                                 ``question``
``original``       the answer written without the persona                       ``rejected``
``critique``       the critique in the persona's shoes                          ``critique``
``data``           the answer revised for the persona                           ``chosen``
``question type``  ``train`` or ``test``                                        ``split``
=================  ==========================================================  ===================

:func:`read_release` reads that layout from a Parquet file, a JSON Lines file, a folder of Parquet (or
JSONL) files such as a snapshot of the Hugging Face repository (``data/train-*.parquet``), or a
``datasets`` ``save_to_disk`` folder (a ``Dataset``: ``state.json`` + ``*.arrow``; a ``DatasetDict``:
``dataset_dict.json`` + one folder per split). Column order and extra columns do not matter; a missing
column is a ``UserError`` naming the file and the column.

:func:`import_release` turns the rows into text-only personas (``Persona.from_text``: provenance
``external``, id from the persona text) and ``PreferencePair`` records (prompt id from the question text,
pair id from persona, prompt and split; ``question type`` ``train`` -> ``train``, ``test`` -> ``test`` or,
with ``test_split="held_out"``, ``held_out``), and writes them as our own artifacts (``personas.jsonl`` /
``.parquet``, ``pairs.jsonl`` / ``.parquet``, ``release.json``) into a new directory or a previous import
(``force``), built aside and renamed into place (``core/outputs.py``). Persona and question texts are kept
with line ends normalised and ends stripped; the answers and critiques exactly as they are.

:func:`release_table` is the other direction (``feedback export --format persona-release``): ok pairs as
the release's six string columns; ``held_out`` pairs become ``test`` (counted).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import ipc

from .. import __version__
from ..core.atomic import atomic_write_text
from ..core.errors import UserError
from ..core.hashing import content_hash
from ..core.outputs import check_out, staged_dir
from ..core.records import read_jsonl
from ..personas.io import write_personas
from ..personas.record import Persona, normalise_text
from ..prompts.record import Prompt
from .io import write_pairs
from .record import PreferencePair

#: the release's columns, in the order this tool writes them
RELEASE_COLUMNS: tuple[str, ...] = ("persona", "instruction", "original", "critique", "data", "question type")
#: ``model`` and ``template_version`` of pairs imported from the release (its generator is not recorded)
RELEASE_MODEL = "persona-release"
#: marker kinds of an import directory and of a directory export
IMPORT_KIND = "persona-release-import"
EXPORT_KIND = "persona-release-export"
RELEASE_LICENSE = "cc-by-nc-sa-4.0"
RELEASE_DATASET = "SynthLabsAI/PERSONA"
MANIFEST_NAME = "release.json"
#: the release's ``question type`` values
RELEASE_SPLITS: tuple[str, ...] = ("train", "test")
#: where each of our splits goes in the release (it has no held-out split)
TO_RELEASE = {"train": "train", "test": "test", "held_out": "test"}
#: the file a directory export writes (the Hugging Face layout of one ``train`` split)
DATA_FILE = "data/train-00000-of-00001.parquet"

_JSONL = (".jsonl", ".json", ".ndjson")
_REQUIRED = ("persona", "instruction", "original", "data", "question type")  # non-empty in every row


@dataclass(frozen=True)
class ReleaseRow:
    """One row of the release, with where it was read (``<file>: row N`` or ``<file>:LINE``)."""

    where: str
    persona: str
    instruction: str
    original: str
    critique: str
    data: str
    question_type: str


# -- reading ---------------------------------------------------------------------------------------


def _arrow_table(path: Path) -> pa.Table:
    """An Arrow file of a ``datasets`` folder (IPC stream; the file format also accepted)."""
    try:
        with pa.memory_map(str(path)) as source:
            try:
                return ipc.open_stream(source).read_all()
            except pa.ArrowInvalid:
                source.seek(0)
                return ipc.open_file(source).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise UserError(f"{path}: not a readable Arrow file ({type(exc).__name__})") from None


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({type(exc).__name__})") from None


def _dataset_files(folder: Path) -> list[Path]:
    """The Arrow files of a ``datasets`` ``Dataset.save_to_disk`` folder, in order (``state.json``)."""
    state = _json(folder / "state.json")
    names = [f.get("filename") for f in state.get("_data_files", [])] if isinstance(state, dict) else []
    if not names or not all(isinstance(n, str) for n in names):
        raise UserError(f"{folder / 'state.json'}: lists no data files (_data_files)")
    files = [folder / n for n in names]
    for f in files:
        if not f.is_file():
            raise UserError(f"{f}: listed in {folder / 'state.json'} but missing")
    return files


def release_files(path: str | Path) -> list[Path]:
    """The data files of a release at ``path`` (see the module docstring), in reading order."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: no such file or directory")
    if p.is_file():
        if p.suffix in (".parquet", ".arrow", *_JSONL):
            return [p]
        raise UserError(f"{p}: not a release file (expected .parquet, .jsonl or a datasets folder)")
    if (p / "dataset_dict.json").is_file():  # DatasetDict.save_to_disk: one Dataset folder per split
        meta = _json(p / "dataset_dict.json")
        splits = meta.get("splits") if isinstance(meta, dict) else None
        if not splits or not all(isinstance(s, str) for s in splits):
            raise UserError(f"{p / 'dataset_dict.json'}: lists no splits")
        return [f for s in splits for f in _dataset_files(p / s)]
    if (p / "state.json").is_file():  # Dataset.save_to_disk
        return _dataset_files(p)
    visible = [
        f
        for f in sorted(p.rglob("*"))
        if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts)
    ]
    for suffixes in ((".parquet",), _JSONL):
        found = [f for f in visible if f.suffix in suffixes]
        if found:
            return found
    raise UserError(f"{p}: no release data in it (Parquet or JSONL files, or a datasets save_to_disk folder)")


def _text(value: Any, where: str, column: str, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise UserError(f"{where}: column {column!r} is {type(value).__name__}, not text")
    if required and not value.strip():
        raise UserError(f"{where}: column {column!r} is empty")
    return value


def _row(obj: dict[str, Any], where: str) -> ReleaseRow:
    vals = {c: _text(obj.get(c), where, c, c in _REQUIRED) for c in RELEASE_COLUMNS}
    qt = vals["question type"].strip().lower()
    if qt not in RELEASE_SPLITS:
        raise UserError(
            f"{where}: column 'question type' is {vals['question type']!r} (expected train or test)"
        )
    return ReleaseRow(
        where=where,
        persona=vals["persona"],
        instruction=vals["instruction"],
        original=vals["original"],
        critique=vals["critique"],
        data=vals["data"],
        question_type=qt,
    )


#: Parquet / Arrow rows decoded at once (bounds the memory of Python strings while reading)
BATCH_ROWS = 10_000


def _iter_file(path: Path) -> Iterator[ReleaseRow]:
    """The rows of one release file, checked, a batch at a time."""
    if path.suffix in _JSONL:
        for lineno, obj in read_jsonl(path):
            if not isinstance(obj, dict):
                raise UserError(f"{path}:{lineno}: expected a JSON object")
            missing = [c for c in RELEASE_COLUMNS if c not in obj]
            if missing:
                raise UserError(f"{path}:{lineno}: missing column {missing[0]!r}")
            yield _row(obj, f"{path}:{lineno}")
        return
    if path.suffix == ".arrow":
        table = _arrow_table(path)
        missing = [c for c in RELEASE_COLUMNS if c not in table.column_names]
        if missing:
            raise UserError(f"{path}: missing column {missing[0]!r}")
        batches: Iterator[pa.RecordBatch] = iter(table.select(list(RELEASE_COLUMNS)).to_batches(BATCH_ROWS))
    else:
        try:
            reader = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            raise UserError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None
        missing = [c for c in RELEASE_COLUMNS if c not in reader.schema_arrow.names]
        if missing:
            raise UserError(f"{path}: missing column {missing[0]!r}")
        batches = reader.iter_batches(batch_size=BATCH_ROWS, columns=list(RELEASE_COLUMNS))
    i = 0
    try:
        for batch in batches:
            for obj in batch.to_pylist():
                i += 1
                yield _row(obj, f"{path}: row {i}")
    except (pa.ArrowException, OSError) as exc:
        raise UserError(f"{path}: not a readable Parquet file ({type(exc).__name__}) after row {i}") from None


def iter_release(path: str | Path) -> Iterator[ReleaseRow]:
    """Every row of the release at ``path``, checked, file by file (see :func:`read_release`)."""
    for f in release_files(path):
        yield from _iter_file(f)


def read_release(path: str | Path) -> list[ReleaseRow]:
    """Every row of the release at ``path`` (a file or folder, see the module docstring), checked.

    ``UserError`` naming the file (and row or line) for a missing column, an empty persona, question or
    answer, or a ``question type`` other than train / test; and for a release without rows.
    """
    rows = list(iter_release(path))
    if not rows:
        raise UserError(f"{path}: no rows in the release")
    return rows


# -- import ----------------------------------------------------------------------------------------


@dataclass
class ReleaseImport:
    """Records made from release rows, and what happened on the way."""

    personas: list[Persona]
    pairs: list[PreferencePair]
    rows: int
    duplicates_dropped: int  # rows repeating an earlier row exactly (same persona, question, split, texts)
    duplicate_keys: int  # rows repeating an earlier persona, question and split with other texts (id -dupK)


def pairs_from_release(rows: Iterable[ReleaseRow], test_split: str = "test") -> ReleaseImport:
    """Text-only personas (sorted by id) and pairs from release rows (see the module docstring).

    ``test_split``: our split for ``question type = test`` (``test`` or ``held_out``).
    """
    if test_split not in ("test", "held_out"):
        raise UserError(f"--test-split {test_split!r}: choose test or held_out")
    split_of = {"train": "train", "test": test_split}
    by_text: dict[str, Persona] = {}  # the row's persona text as read -> its persona (hashed once)
    questions: dict[str, tuple[str, str]] = {}  # the row's question as read -> (kept text, prompt id)
    personas: dict[str, Persona] = {}
    pairs: dict[str, PreferencePair] = {}
    texts: dict[str, tuple[str, str, str]] = {}
    seen: dict[str, int] = {}
    n = dropped = dup_keys = 0
    config_key = content_hash({"import": RELEASE_MODEL}, 16)
    for row in rows:
        n += 1
        persona = by_text.get(row.persona)
        if persona is None:
            persona = personas.get(Persona.text_id(row.persona)) or Persona.from_text(row.persona)
            personas[persona.id] = by_text[row.persona] = persona
        if row.instruction not in questions:
            text = normalise_text(row.instruction)
            questions[row.instruction] = (text, Prompt.make_id(text))
        question, prompt_id = questions[row.instruction]
        split = split_of[row.question_type]
        base = PreferencePair.make_id(persona.id, prompt_id, split)
        content = (row.data, row.original, row.critique)
        k = seen.get(base, 0)
        if k and any(texts.get(base if i == 0 else f"{base}-dup{i}") == content for i in range(k)):
            dropped += 1
            continue
        pair_id = base if k == 0 else f"{base}-dup{k}"
        dup_keys += k > 0
        seen[base] = k + 1
        texts[pair_id] = content
        pairs[pair_id] = PreferencePair(
            id=pair_id,
            persona_id=persona.id,
            prompt_id=prompt_id,
            split=split,  # type: ignore[arg-type]
            question=question,
            persona_text=persona.text or "",
            rejected=row.original,
            critique=row.critique,
            chosen=row.data,
            model=RELEASE_MODEL,
            template_version=RELEASE_MODEL,
            seed=0,
            config_key=config_key,
        )
    return ReleaseImport(
        personas=sorted(personas.values(), key=lambda p: p.id),
        pairs=sorted(pairs.values(), key=lambda p: p.id),
        rows=n,
        duplicates_dropped=dropped,
        duplicate_keys=dup_keys,
    )


def import_release(
    path: str | Path, out: str | Path, *, test_split: str = "test", force: bool = False
) -> dict[str, Any]:
    """Read the release at ``path`` and write it into ``out`` as our personas and pairs.

    ``out`` must be new, empty, or (with ``force``) a previous import; anything else is refused before
    the release is read. Bad input (a missing column, an empty text, an unknown ``question type``) is a
    ``UserError`` raised before anything is written. Returns the counts written (also in ``release.json``).
    """
    src = Path(path)
    check_out(out, IMPORT_KIND, inputs=[src], force=force)
    files = release_files(src)
    made = pairs_from_release(iter_release(src), test_split)
    if not made.rows:
        raise UserError(f"{src}: no rows in the release")
    counts = {s: sum(p.split == s for p in made.pairs) for s in ("train", "test", "held_out")}
    info: dict[str, Any] = {
        "source": str(src),
        "files": [str(f) for f in files],
        "dataset": RELEASE_DATASET,
        "license": RELEASE_LICENSE,
        "rows": made.rows,
        "personas": len(made.personas),
        "pairs": len(made.pairs),
        "splits": {s: c for s, c in counts.items() if c},
        "test_split": test_split,
        "duplicates_dropped": made.duplicates_dropped,
        "duplicate_keys": made.duplicate_keys,
        "package_version": __version__,
    }
    with staged_dir(out, IMPORT_KIND, inputs=[src], force=force) as build:
        write_personas(
            made.personas, build, extra_manifest={"source": RELEASE_DATASET, "provenance": "external"}
        )
        write_pairs(made.pairs, build)
        atomic_write_text(build / MANIFEST_NAME, json.dumps(info, indent=2, sort_keys=True) + "\n")
    return {"out": str(out), **info}


# -- export ----------------------------------------------------------------------------------------


def release_table(pairs: Sequence[PreferencePair]) -> tuple[pa.Table, dict[str, int]]:
    """Ok pairs in the release's layout (six string columns, rows grouped by persona) and the counts
    ``{"rows", "train", "test", "held_out_as_test"}``."""
    ok = sorted((p for p in pairs if p.status == "ok"), key=lambda p: (p.persona_id, p.id))
    cols: dict[str, list[str]] = {
        "persona": [p.persona_text for p in ok],
        "instruction": [p.question for p in ok],
        "original": [p.rejected for p in ok],
        "critique": [p.critique for p in ok],
        "data": [p.chosen for p in ok],
        "question type": [TO_RELEASE[p.split] for p in ok],
    }
    schema = pa.schema([(c, pa.string()) for c in RELEASE_COLUMNS])
    table = pa.table({c: pa.array(cols[c], type=pa.string()) for c in RELEASE_COLUMNS}, schema=schema)
    counts = {
        "rows": len(ok),
        "train": sum(p.split == "train" for p in ok),
        "test": sum(p.split != "train" for p in ok),
        "held_out_as_test": sum(p.split == "held_out" for p in ok),
    }
    return table, counts


def write_release_file(table: pa.Table, path: Path) -> None:
    """The table as one Parquet file (the writer's defaults, like the Hugging Face conversion)."""
    pq.write_table(table, path)


def release_card(counts: dict[str, int], from_release: bool) -> str:
    """``README.md`` of a directory export: the Hugging Face config (one ``train`` split) and the columns."""
    licence = RELEASE_LICENSE if from_release else "cc-by-4.0"
    origin = (
        f"Rows imported from the PERSONA authors' release (`{RELEASE_DATASET}`, {RELEASE_LICENSE}); "
        "cite Castricato et al. 2024 (arXiv 2407.17387) and keep its licence."
        if from_release
        else "Pairs generated with persona-testbed; questions are PRISM prompts (Kirk et al. 2024, CC-BY-4.0)."
    )
    return "\n".join(
        [
            "---",
            f"license: {licence}",
            "language:",
            "- en",
            "configs:",
            "- config_name: default",
            "  data_files:",
            "  - split: train",
            "    path: data/train-*.parquet",
            "---",
            "",
            "# PERSONA preference pairs in the release layout",
            "",
            (
                "One row per pair, in the column layout of the PERSONA release (all columns are strings): `persona` "
                "(the persona as text), `instruction` (the question), `original` (the answer without the persona, "
                "i.e. rejected), `critique`, `data` (the answer revised for the persona, i.e. chosen), `question type` "
                "(`train` or `test`)."
            ),
            "",
            (
                f"Rows: {counts['rows']} (train {counts['train']}, test {counts['test']}; {counts['held_out_as_test']} "
                "held-out pairs written as `test`, since the release has no held-out split)."
            ),
            "",
            origin,
            "",
            f"Written by persona-testbed {__version__}.",
            "",
        ]
    )


def write_release_dir(table: pa.Table, build: Path, counts: dict[str, int], from_release: bool) -> None:
    """The Hugging Face layout of a directory export into ``build``: ``data/train-…parquet`` + ``README.md``."""
    (build / "data").mkdir()
    write_release_file(table, build / DATA_FILE)
    (build / "README.md").write_text(release_card(counts, from_release), encoding="utf-8")


__all__ = [
    "DATA_FILE",
    "EXPORT_KIND",
    "IMPORT_KIND",
    "RELEASE_COLUMNS",
    "RELEASE_MODEL",
    "ReleaseImport",
    "ReleaseRow",
    "import_release",
    "iter_release",
    "pairs_from_release",
    "read_release",
    "release_files",
    "release_table",
    "write_release_dir",
    "write_release_file",
]
