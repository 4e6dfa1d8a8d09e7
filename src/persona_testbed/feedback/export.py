"""Exports of a pair set: JSONL, Parquet, a Hugging Face dataset folder, TRL preference JSONL.

- ``jsonl`` / ``parquet``: every pair (failed ones included, with their error), sorted by id.
- ``hf``: ``data/<split>-00000-of-00001.parquet`` per split (ok pairs only) + ``README.md`` dataset card
  (YAML header with ``configs`` / ``data_files`` per split, licence, attribution, provenance, counts,
  model ids, seed, template version). Loads with ``datasets.load_dataset("parquet"|folder)``.
- ``trl``: ``<split>.jsonl`` per split (ok pairs only) in TRL's conversational preference format:
  ``prompt`` = [system: persona, user: question], ``chosen`` / ``rejected`` = [assistant: answer].
- ``persona-release``: ok pairs in the PERSONA authors' release layout (``release.py``: six string columns
  ``persona, instruction, original, critique, data, question type``; held-out pairs become ``test``), one
  Parquet file when ``out`` ends in ``.parquet``, else a folder ``data/train-00000-of-00001.parquet`` +
  ``README.md`` (marker kind ``persona-release-export``).

Outputs cannot destroy (``core/outputs.py``): a file is written through a temp file + rename; a folder is
built in a temp sibling and renamed into place, with a ``.persona-testbed.json`` marker of kind
``hf-export`` / ``trl-export``. ``--out`` may not be the source, contain it, or lie inside the feedback
directory; an existing non-empty folder is replaced only when it is a previous export of the same format and
``force`` is given.

``drop_leaky`` (CLI ``--drop-leaky``; default off because it changes the dataset size) leaves out pairs whose
chosen answer names a persona attribute (``feedback/leakage.py``); the count is returned, printed by the
CLI and written into the HF dataset card, never dropped silently.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from .. import __version__
from ..core.errors import UserError
from ..core.outputs import MARKER, check_out, staged_dir, staged_file
from . import release
from .io import pairs_to_frame, read_pairs
from .record import SPLITS, PreferencePair
from .stats import feedback_stats, leakage_stats

ExportFormat = Literal["jsonl", "parquet", "hf", "trl", "persona-release"]
FORMATS: tuple[str, ...] = ("jsonl", "parquet", "hf", "trl", "persona-release")

#: the marker kind of each folder format
DIR_KINDS = {"hf": "hf-export", "trl": "trl-export", "persona-release": release.EXPORT_KIND}

HF_COLUMNS = (
    "id",
    "persona_id",
    "prompt_id",
    "split",
    "persona_text",
    "question",
    "chosen",
    "rejected",
    "critique",
    "model",
    "template_version",
    "seed",
    "flagged",
    "judge_choice_ab",
    "judge_choice_ba",
    "leaky",
)


def trl_row(pair: PreferencePair) -> dict[str, Any]:
    """One pair in TRL's conversational preference format (system = persona)."""
    return {
        "prompt": [
            {"role": "system", "content": pair.persona_text},
            {"role": "user", "content": pair.question},
        ],
        "chosen": [{"role": "assistant", "content": pair.chosen}],
        "rejected": [{"role": "assistant", "content": pair.rejected}],
        "id": pair.id,
        "persona_id": pair.persona_id,
        "prompt_id": pair.prompt_id,
    }


def _ok(pairs: Sequence[PreferencePair]) -> list[PreferencePair]:
    return sorted((p for p in pairs if p.status == "ok"), key=lambda p: p.id)


def _card(
    pairs: Sequence[PreferencePair],
    counts: dict[str, int],
    manifest: dict[str, Any],
    dropped: dict[str, Any] | None = None,
) -> str:
    stats = feedback_stats(pairs)
    dropped = dropped or {"drop_leaky": False, "dropped_leaky": 0}
    lk = dropped.get("leakage") or stats["leakage"]  # rates before any --drop-leaky
    fb = manifest.get("stages", {}).get("feedback", {})
    splits = [s for s in SPLITS if counts.get(s)]
    from_release = any(p.template_version == release.RELEASE_MODEL for p in pairs)  # imported: its licence
    yaml = [
        "---",
        f"license: {release.RELEASE_LICENSE if from_release else 'cc-by-4.0'}",
        "language:",
        "- en",
        "pretty_name: PERSONA DPF preference pairs",
        "tags:",
        "- pluralistic-alignment",
        "- dpo",
        "- persona",
        "- synthetic",
        "configs:",
        "- config_name: default",
        "  data_files:",
    ]
    for s in splits:
        yaml += [f"  - split: {s}", f"    path: data/{s}-*.parquet"]
    yaml += ["---", ""]
    v = stats["validation"]

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}%"

    body = [
        "# PERSONA Direct Principle Feedback pairs",
        "",
        "Preference pairs generated with [persona-testbed](https://arxiv.org/abs/2407.17387) (Castricato et al. "
        "2024, *PERSONA: A Reproducible Testbed for Pluralistic Alignment*). For each persona the model answered "
        "a contested question with no persona information (`rejected`), criticised that answer in the persona's "
        "shoes (`critique`), and revised it subtly for the persona, no longer than the original (`chosen`).",
        "",
        "## Counts",
        "",
        "| split | pairs |",
        "|---|---|",
        *[f"| {s} | {counts.get(s, 0)} |" for s in SPLITS],
        "",
        f"Failed pairs (not exported): {stats['failed']}. Personas: {stats['personas']}.",
        "",
        "## Provenance",
        "",
        f"- models: {', '.join(stats['models'])}",
        f"- template version: {', '.join(stats['template_versions'])}",
        f"- seed: {fb.get('seed', fb.get('summary', {}).get('seed', manifest.get('seed', 'unknown')))}",
        f"- persona-testbed version: {__version__}",
        f"- generation config: `{json.dumps(fb.get('config', {}), sort_keys=True)}`",
        f"- persona-judge validation (both orders): chosen preferred in {pct(v['chosen_preferred_rate'])} of "
        f"{v['judgements']} judgements (paper: 96%), position bias {pct(v['position_bias_rate'])}, "
        f"{v['flagged']} pairs flagged (rejected preferred in both orders; kept, column `flagged`).",
        f"- attribute leakage ({', '.join(lk['version'])}, deterministic; mentions also in the question or "
        f"rejected answer do not count): {lk['leaky']} of {lk['checked']} checked chosen answers "
        f"({pct(lk['leaky_rate'])}) name a persona attribute, vs {lk['rejected_leaky']} "
        f"({pct(lk['rejected_leaky_rate'])}) rejected answers (control); {lk['unchecked']} ok pairs unchecked. "
        + (
            f"**{dropped['dropped_leaky']} leaky pairs were dropped from this export** (`--drop-leaky`)."
            if dropped["drop_leaky"]
            else "Leaky pairs are kept (column `leaky`); `--drop-leaky` removes them."
        ),
        "",
        "## Licence and attribution",
        "",
        *(
            [
                f"- Pairs with model `{release.RELEASE_MODEL}` were imported from the PERSONA authors' release "
                f"(`{release.RELEASE_DATASET}`), licensed **CC-BY-NC-SA-4.0**: "
                "this dataset is shared under that licence, "
                "with attribution to Castricato et al. (2024); its personas are text-only."
            ]
            if from_release
            else []
        ),
        '- Questions are PRISM opening prompts: Kirk, H. R., et al. (2024), "The PRISM Alignment Project" '
        "(arXiv 2404.16019), dataset `HannahRoseKirk/prism-alignment`, licensed **CC-BY-4.0**; this dataset "
        "is shared under the same licence with that attribution. (If you built the prompts from your own file, "
        "its licence applies instead.)",
        "- Personas are derived from U.S. Census Bureau American Community Survey PUMS microdata, which is in "
        "the **public domain**.",
        "- Persona psychographics draw on the General Social Survey (NORC at the University of Chicago; GSS "
        'terms of use, cite "General Social Survey, NORC at the University of Chicago") and Big Five norms '
        "(IPIP-NEO-120, Johnson 2014, IPIP items public domain; NEO-PI-R correlations, Costa & McCrae; SAPA "
        "BFI, Revelle). The default embedded model SmolLM2-135M-Instruct is **Apache-2.0**. Full list: "
        "`DATA_LICENSES.md` in persona-testbed.",
        "- Answers, critiques and revisions were generated by the models listed above; check their terms.",
        "",
        "## Columns",
        "",
        "`id`, `persona_id`, `prompt_id`, `split`, `persona_text` (persona as shown to the model), `question`, "
        "`chosen`, `rejected`, `critique`, `model`, `template_version`, `seed`, `flagged`, `judge_choice_ab` "
        "(judge's pick with A = chosen), `judge_choice_ba` (with A = rejected), `leaky` (chosen names a persona "
        "attribute; null when unchecked).",
        "",
        "## Citation",
        "",
        "```bibtex",
        "@article{castricato2024persona, title={PERSONA: A Reproducible Testbed for Pluralistic Alignment},",
        "  author={Castricato, Louis and Lile, Nathan and Rafailov, Rafael and "
        'Fr{\\"a}nken, Jan-Philipp and Finn, Chelsea},',
        "  journal={arXiv preprint arXiv:2407.17387}, year={2024}}",
        "@article{kirk2024prism, title={The PRISM Alignment Project}, author={Kirk, Hannah Rose and others},",
        "  journal={arXiv preprint arXiv:2404.16019}, year={2024}}",
        "```",
        "",
    ]
    return "\n".join(yaml + body)


def _inputs(source: Path) -> list[Path]:
    """What an export must not overwrite: the source, and the feedback directory it belongs to."""
    if source.is_dir():
        return [source]
    parent = source.parent
    made_here = (parent / "manifest.json").exists() or (parent / MARKER).exists()
    return [source, parent] if made_here else [source]


def _run_manifest(directory: Path) -> dict[str, Any]:
    """The ``manifest.json`` of the run (or ``feedback generate`` directory) holding the pairs; ``{}`` if none."""
    path = directory / "manifest.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    return data if isinstance(data, dict) else {}


def export_pairs(
    source: str | Path,
    fmt: str,
    out: str | Path,
    *,
    drop_leaky: bool = False,
    drop_flagged: bool = False,
    force: bool = False,
) -> dict[str, Any]:
    """Export the pairs of ``source`` (a feedback directory or ``pairs.jsonl``) as ``fmt`` to ``out``.

    ``jsonl`` / ``parquet`` write one file (temp file + rename); ``hf`` / ``trl`` write a directory (built in
    a temp sibling, renamed into place; ``force`` replaces a previous export of the same format, never any
    other directory); ``persona-release`` writes one Parquet file when ``out`` ends in ``.parquet``, else a
    directory (its result adds ``held_out_as_test``: held-out pairs written as ``test``). ``out`` may not be
    the source, contain it, or lie inside its feedback directory.
    ``drop_leaky``: leave out pairs whose chosen answer names a persona attribute (``pair.leaky``; unchecked
    pairs are kept). ``drop_flagged``: leave out pairs with any ``flags`` (``length_out_of_band``,
    ``truncated:<step>``, ``judge_prefers_rejected``). Returns ``{"format", "out", "counts", "dropped_leaky",
    "unchecked_leakage", "dropped_flagged"}``; the HF card records the dropped leaky count too.
    """
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    out = Path(out)
    src = Path(source)
    inputs = _inputs(src)
    is_file = fmt in ("jsonl", "parquet") or (fmt == "persona-release" and out.suffix == ".parquet")
    kind = DIR_KINDS.get(fmt, f"{fmt} export")
    check_out(out, kind, inputs=inputs, force=force, file=is_file)
    pairs = sorted(read_pairs(source), key=lambda p: p.id)
    leakage_before = leakage_stats(pairs)
    n_dropped = sum(p.leaky is True for p in pairs) if drop_leaky else 0
    if drop_leaky:
        pairs = [p for p in pairs if p.leaky is not True]
        if not pairs:
            raise UserError(f"{source}: every pair is leaky; nothing left to export with --drop-leaky")
    # --drop-flagged: pairs with any flag (length_out_of_band, truncated:<step>, judge_prefers_rejected)
    n_flagged = sum(bool(p.flags) for p in pairs) if drop_flagged else 0
    if drop_flagged:
        pairs = [p for p in pairs if not p.flags]
        if not pairs:
            raise UserError(f"{source}: every pair is flagged; nothing left to export with --drop-flagged")
    info = {
        "dropped_leaky": n_dropped,
        "unchecked_leakage": sum(p.leakage is None for p in pairs),
        "dropped_flagged": n_flagged,
    }
    manifest = _run_manifest(src if src.is_dir() else src.parent)
    ok = _ok(pairs)
    counts = {s: sum(p.split == s for p in ok) for s in SPLITS}
    if fmt == "jsonl":
        with staged_file(out, kind, inputs=inputs) as tmp:
            tmp.write_text("".join(p.model_dump_json() + "\n" for p in pairs), encoding="utf-8")
        return {"format": fmt, "out": str(out), "counts": {"pairs": len(pairs)}, **info}
    if fmt == "parquet":
        with staged_file(out, kind, inputs=inputs) as tmp:
            pairs_to_frame(pairs).write_parquet(tmp, compression="zstd")
        return {"format": fmt, "out": str(out), "counts": {"pairs": len(pairs)}, **info}
    if not ok:
        raise UserError(f"{source}: no ok pairs to export")
    if fmt == "persona-release":
        table, rc = release.release_table(ok)
        from_release = all(p.template_version == release.RELEASE_MODEL for p in ok)
        if is_file:
            with staged_file(out, kind, inputs=inputs) as tmp:
                release.write_release_file(table, tmp)
        else:
            with staged_dir(out, kind, inputs=inputs, force=force) as build:
                release.write_release_dir(table, build, rc, from_release)
        return {
            "format": fmt,
            "out": str(out),
            "counts": {k: v for k, v in rc.items() if k != "held_out_as_test"},
            "held_out_as_test": rc["held_out_as_test"],
            **info,
        }
    with staged_dir(out, kind, inputs=inputs, force=force) as build:
        if fmt == "hf":
            (build / "data").mkdir()
            for s in SPLITS:
                rows = [p for p in ok if p.split == s]
                if rows:
                    frame = pairs_to_frame(rows).select(list(HF_COLUMNS))
                    frame.write_parquet(build / "data" / f"{s}-00000-of-00001.parquet", compression="zstd")
            (build / "README.md").write_text(
                _card(pairs, counts, manifest, {"drop_leaky": drop_leaky, "leakage": leakage_before, **info}),
                encoding="utf-8",
            )
        else:
            for s in SPLITS:
                rows = [p for p in ok if p.split == s]
                if rows:
                    (build / f"{s}.jsonl").write_text(
                        "".join(json.dumps(trl_row(p), ensure_ascii=False) + "\n" for p in rows),
                        encoding="utf-8",
                    )
    return {"format": fmt, "out": str(out), "counts": {s: c for s, c in counts.items() if c}, **info}


__all__ = ["export_pairs", "trl_row", "FORMATS", "HF_COLUMNS"]
