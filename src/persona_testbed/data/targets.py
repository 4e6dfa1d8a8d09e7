"""Turn what a user names (``all``, a group, a relative path, a ``pums:`` target) into data files."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Iterable, Mapping

from ..core.errors import UserError
from .census_urls import census_file_for_relpath, parse_target
from .manifest import GROUPS, MANIFEST, DataFile


def normalize_relpath(relpath: str) -> str:
    """A clean relative POSIX path inside the data directory; rejects absolute paths and ``..``."""
    text = str(relpath).strip().replace("\\", "/")
    p = PurePosixPath(text)
    if not text or p.is_absolute() or ".." in p.parts:
        raise UserError(f"bad data file path {relpath!r}: give a path relative to the data directory, "
                        "e.g. census/acs/2018/1-Year/csv_pde.zip")
    return str(p)


def entry_for(relpath: str, manifest: Mapping[str, DataFile] = MANIFEST) -> DataFile | None:
    """The manifest entry of ``relpath``, or a checksum-less entry for an official Census file."""
    if relpath in manifest:
        return manifest[relpath]
    cf = census_file_for_relpath(relpath)
    if cf is not None:
        year = relpath.split("/")[2] if relpath.startswith("census/acs/") else "dictionaries"
        group = f"pums-{year}" if year.isdigit() else "dictionaries"
        return DataFile(relpath=relpath, group=group, description=cf.description,
                        licence="public domain (U.S. Census Bureau)", url=cf.url,
                        source="U.S. Census Bureau")
    return None


def expand(whats: Iterable[str], manifest: Mapping[str, DataFile] = MANIFEST, *,
           allow_unknown: bool = False) -> list[DataFile]:
    """Expand ``all`` / group names / relpaths / ``pums:`` targets into unique data files, in order.

    An unknown relative path is an error unless ``allow_unknown`` (e.g. fetching from a mirror that
    holds files the manifest does not list).
    """
    if isinstance(whats, str):  # fetch("prism") means one target, not five letters
        whats = [whats]
    out: dict[str, DataFile] = {}
    groups = sorted({f.group for f in manifest.values()} | set(GROUPS))
    for what in whats:
        what = str(what).strip()
        if what == "all":
            found = list(manifest.values())
        elif what in groups:
            found = [f for f in manifest.values() if f.group == what]
        elif what.startswith("pums:"):
            found = [entry_for(cf.relpath, manifest) for cf in parse_target(what)]  # type: ignore[misc]
        else:
            rel = normalize_relpath(what)
            entry = entry_for(rel, manifest)
            if entry is None and not allow_unknown:
                raise UserError(
                    f"unknown data file or group {what!r}: use all, a group ({', '.join(groups)}), "
                    "a path shown by `persona-testbed data list`, or a PUMS target like pums:2019:p:ca")
            found = [entry or DataFile(relpath=rel, group="extra", source="mirror only")]
        for f in found:
            out.setdefault(f.relpath, f)
    return list(out.values())
