"""Turn what a user names (``all``, a group, ``quickstart``, a relative path, a ``pums:`` target) into
data files."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath

from ..core.errors import UserError
from .census_urls import census_file_for_relpath, dictionary_file, parse_target
from .manifest import GROUPS, MANIFEST, DataFile
from .origins import BIGFIVE, GSS, PRISM, QUICKSTART, QUICKSTART_STATES, extra_without_mirror, origin_for
from .states import state as lookup_state

_STATE_FILE = re.compile(r"^census/acs/\d{4}/[^/]+/(?:csv_[ph]([a-z]{2})\.zip|[ph]_(\d{2})\.parquet)$")


def normalize_relpath(relpath: str) -> str:
    """A clean relative POSIX path inside the data directory; rejects absolute paths and ``..``."""
    text = str(relpath).strip().replace("\\", "/")
    p = PurePosixPath(text)
    if not text or p.is_absolute() or ".." in p.parts:
        raise UserError(
            f"bad data file path {relpath!r}: give a path relative to the data directory, "
            "e.g. census/acs/2018/1-Year/csv_pde.zip"
        )
    return str(p)


def entry_for(relpath: str, manifest: Mapping[str, DataFile] = MANIFEST) -> DataFile | None:
    """The manifest entry of ``relpath``, or a checksum-less entry for an official Census file."""
    if relpath in manifest:
        return manifest[relpath]
    cf = census_file_for_relpath(relpath)
    if cf is not None:
        year = relpath.split("/")[2] if relpath.startswith("census/acs/") else "dictionaries"
        group = f"pums-{year}" if year.isdigit() else "dictionaries"
        return DataFile(
            relpath=relpath,
            group=group,
            description=cf.description,
            licence="public domain (U.S. Census Bureau)",
            url=cf.url,
            source="U.S. Census Bureau",
        )
    origin = origin_for(relpath)
    if origin is not None:  # e.g. another year's per-state Parquet, decoded from the official zip
        year = relpath.split("/")[2] if relpath.startswith("census/acs/") else ""
        return DataFile(
            relpath=relpath,
            group=f"census-{year}" if year else origin.key,
            description=origin.description,
            licence=origin.licence,
            source=f"derived from {origin.url or 'package tables'}",
        )
    return None


def file_state(relpath: str) -> str | None:
    """FIPS code of the state a census data file covers (``csv_pca.zip``, ``p_06.parquet``), else None."""
    m = _STATE_FILE.match(relpath)
    if not m:
        return None
    abbr, fips = m.groups()
    if abbr == "us":
        return "us"
    try:
        return lookup_state(abbr or fips).fips
    except UserError:
        return None


def quickstart_files(manifest: Mapping[str, DataFile] = MANIFEST, *, mirror: bool = False) -> list[DataFile]:
    """What ``configs/quickstart.toml`` reads: the 2024 census files (person + housing), their dictionary
    (the mirror's 2023 one, else the official 2024 one), the GSS extracts, Big Five norms, PRISM prompts."""
    rels = [f.relpath for f in manifest.values() if f.group == "census-2024"]
    rels.append(
        "census/dictionaries/PUMS_Data_Dictionary_2023.csv" if mirror else dictionary_file(2024).relpath
    )
    rels += [*GSS.outputs, *BIGFIVE.outputs, *PRISM.outputs]
    return [entry_for(r, manifest) or DataFile(relpath=r, group="extra") for r in rels]


def expand_targets(
    whats: Iterable[str],
    manifest: Mapping[str, DataFile] = MANIFEST,
    *,
    allow_unknown: bool = False,
    mirror: bool = True,
    states: Iterable[str | int] | None = None,
) -> list[tuple[DataFile, bool]]:
    """Expand ``all`` / groups / ``quickstart`` / relpaths / ``pums:`` targets into unique data files, in
    order, each with ``explicit``: named by the user (or needed by the quickstart) rather than swept in by
    ``all`` or a group. A swept-in file with no public origin is skipped without a mirror, not an error.

    Without a ``mirror``, groups also bring what the public origins add (the official 2024 dictionary for
    the 2024 census data). ``states`` keeps only those states' census files of groups, ``all`` and
    ``quickstart`` (the quickstart defaults to ``QUICKSTART_STATES``). An unknown relative path is an
    error unless ``allow_unknown`` (a mirror may hold files the manifest does not list).
    """
    if isinstance(whats, str):  # fetch("prism") means one target, not five letters
        whats = [whats]
    wanted = None if states is None else {lookup_state(s).fips for s in states}
    out: dict[str, tuple[DataFile, bool]] = {}
    groups = sorted({f.group for f in manifest.values()} | set(GROUPS))

    def keep(files: list[DataFile], only: set[str] | None) -> list[DataFile]:
        if only is None:
            return files
        return [f for f in files if (st := file_state(f.relpath)) is None or st in only]

    for what in whats:
        what = str(what).strip()
        explicit = True
        if what == "all":
            found = keep(list(manifest.values()), wanted)
            extra = [r for g in GROUPS for r in extra_without_mirror(g)] if not mirror else []
            found += [entry_for(r, manifest) for r in dict.fromkeys(extra)]  # type: ignore[misc]
            explicit = False
        elif what in groups:
            found = keep([f for f in manifest.values() if f.group == what], wanted)
            if not mirror:
                found += [entry_for(r, manifest) for r in extra_without_mirror(what)]  # type: ignore[misc]
            explicit = False
        elif what == QUICKSTART:
            only = wanted if wanted is not None else {lookup_state(s).fips for s in QUICKSTART_STATES}
            found = keep(quickstart_files(manifest, mirror=mirror), only)
        elif what.startswith("pums:"):
            found = [entry_for(cf.relpath, manifest) for cf in parse_target(what)]  # type: ignore[misc]
        else:
            rel = normalize_relpath(what)
            entry = entry_for(rel, manifest)
            if entry is None and not allow_unknown:
                raise UserError(
                    f"unknown data file or group {what!r}: use all, quickstart, a group ({', '.join(groups)}), "
                    "a path shown by `persona-testbed data list`, or a PUMS target like pums:2019:p:ca"
                )
            found = [entry or DataFile(relpath=rel, group="extra", source="mirror only")]
        for f in found:
            if f.relpath in out:
                out[f.relpath] = (out[f.relpath][0], out[f.relpath][1] or explicit)
            else:
                out[f.relpath] = (f, explicit)
    return list(out.values())


def expand(
    whats: Iterable[str], manifest: Mapping[str, DataFile] = MANIFEST, *, allow_unknown: bool = False
) -> list[DataFile]:
    """The data files of :func:`expand_targets` (as a mirror sees them), without the explicit flags."""
    return [f for f, _ in expand_targets(whats, manifest, allow_unknown=allow_unknown)]
