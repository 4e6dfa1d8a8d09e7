"""Turn a downloaded public file into the data-directory files persona-testbed reads.

Each function reads the raw file, checks that it is what the origin serves (a zip holding the expected
member, JSON lines with conversations, a Stata file with the expected variables) and writes its outputs
to the paths it is given; the caller moves them into place. Anything that is not the expected content
raises ``ContentError`` (one line naming the file and its URL), and the caller discards the download.

- PUMS: ``csv_pXX.zip`` / ``csv_hXX.zip`` -> ``p_NN.parquet`` / ``h_NN.parquet`` with the columns
  persona-testbed uses (``PERSON_COLUMNS`` / ``HOUSING_COLUMNS``, those the file has), codes as integers
  where every value is one, identifiers as text; every row kept.
- PRISM: ``conversations.jsonl`` -> the first user turn of each conversation, in file order, written as
  the mirror's ``prism_opening_prompts.json`` is (``json.dumps(prompts, indent=4)``).
- GSS: the cumulative Stata file (in ``GSS_stata.zip``) -> ``gss_1972_2024_long.csv`` (all years) and
  ``gss_2016_2018_crosssection.csv`` (2016 and 2018), value labels applied, weights included.
- Big Five: the cited package tables (``tables/``) without their ``source`` column.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import zipfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl

from ..core.errors import UserError

#: person columns kept from the official files (those present): identity, weight, every variable the
#: persona mapping, imputation, household derivation, fidelity and census commands read, and a few
#: close relatives; not the 80 replicate weights or the allocation flags.
PERSON_COLUMNS: tuple[str, ...] = (
    "RT",
    "SERIALNO",
    "SPORDER",
    "DIVISION",
    "REGION",
    "STATE",
    "ST",
    "PUMA",
    "ADJINC",
    "PWGTP",
    "AGEP",
    "SEX",
    "RAC1P",
    "RAC2P",
    "RAC3P",
    "HISP",
    "ANC1P",
    "ANC2P",
    "POBP",
    "WAOB",
    "CIT",
    "CITWP",
    "NATIVITY",
    "YOEP",
    "LANX",
    "LANP",
    "ENG",
    "SCHL",
    "SCHG",
    "FOD1P",
    "MAR",
    "MSP",
    "FER",
    "ESR",
    "COW",
    "INDP",
    "OCCP",
    "NAICSP",
    "SOCP",
    "WKHP",
    "WKWN",
    "JWMNP",
    "JWTRNS",
    "JWTR",
    "PINCP",
    "WAGP",
    "POVPIP",
    "MIGSP",
    "HICOV",
    "PRIVCOV",
    "PUBCOV",
    "DIS",
    "DEAR",
    "DEYE",
    "DREM",
    "DPHY",
    "DOUT",
    "DDRS",
    "MIL",
    "RELSHIPP",
    "RELP",
    "PAOC",
    "GCL",
)
HOUSING_COLUMNS: tuple[str, ...] = (
    "RT",
    "SERIALNO",
    "DIVISION",
    "REGION",
    "STATE",
    "ST",
    "PUMA",
    "ADJHSG",
    "ADJINC",
    "WGTP",
    "NP",
    "TYPEHUGQ",
    "TEN",
    "VALP",
    "RNTP",
    "GRPIP",
    "OCPIP",
    "HINCP",
    "FINCP",
    "MV",
    "BDSP",
    "RMSP",
    "YRBLT",
    "BLD",
    "HHT",
    "HHT2",
    "HHL",
    "HHLANP",
    "LNGI",
    "MULTG",
    "NPF",
    "NOC",
    "NRC",
    "FPARC",
    "HUPAC",
    "HUPAOC",
    "HUPARC",
    "PARTNER",
    "R18",
    "R60",
    "R65",
    "SSMC",
    "WIF",
    "WKEXREL",
    "WORKSTAT",
    "FS",
    "VACS",
)
#: always text: identifiers and codes with letters or leading zeros that matter
TEXT_COLUMNS = frozenset({"RT", "SERIALNO", "STATE", "ST", "PUMA", "NAICSP", "SOCP"})
REQUIRED = {"p": ("SERIALNO", "SPORDER", "PWGTP", "AGEP"), "h": ("SERIALNO",)}

GSS_REQUIRED = (
    "year",
    "id",
    "age",
    "sex",
    "race",
    "degree",
    "region",
    "relig",
    "partyid",
    "polviews",
    "wtssps",
)
GSS_OPTIONAL = ("hispanic", "born", "denom", "wtssall", "wtssnr", "ballot")
#: GSS region (9 census divisions) -> 4 census regions
BIG_REGION = {
    1: "Northeast",
    2: "Northeast",
    3: "Midwest",
    4: "Midwest",
    5: "South",
    6: "South",
    7: "South",
    8: "West",
    9: "West",
}
CROSS_SECTION_YEARS = (2016, 2018)
_SMALL_WORDS = {"a", "an", "and", "as", "at", "for", "in", "of", "on", "or", "than", "the", "to"}


class ContentError(UserError):
    """A downloaded file is not what its origin serves (HTML page, wrong or damaged file)."""


# -- helpers ---------------------------------------------------------------------------------------------


def _sniff(raw: Path, label: str) -> None:
    """Reject an HTML page (captive portal, login, error page) or an empty file before parsing."""
    with open(raw, "rb") as f:
        head = f.read(512)
    if not head:
        raise ContentError(f"{label} is empty")
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<?xml")):
        raise ContentError(
            f"{label} is an HTML/XML page, not the data file (a captive portal, login or error page?)"
        )


def _open_zip(raw: Path, label: str) -> zipfile.ZipFile:
    _sniff(raw, label)
    try:
        return zipfile.ZipFile(raw)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
        raise ContentError(f"{label} is not a readable zip archive ({exc})") from None


def _extract(zf: zipfile.ZipFile, member: str, dest: Path, label: str) -> Path:
    try:
        with zf.open(member) as fin, open(dest, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
    except (zipfile.BadZipFile, EOFError, ValueError, zipfile.LargeZipFile) as exc:
        raise ContentError(f"{label}: member {member} is damaged ({exc})") from None
    return dest


def title_label(text: str) -> str:
    """A GSS value label in the mirror's casing: ``Less than High School``, ``Independent (Neither, No
    Response)``, ``Moderate, Middle of the Road``."""
    words = str(text).strip().split(" ")
    out = []
    for i, w in enumerate(words):
        lead = len(w) - len(w.lstrip("(\"'"))
        core = w[lead:]
        if i and core.lower().rstrip(",;:)") in _SMALL_WORDS:
            out.append(w.lower())
        else:
            out.append(w[:lead] + "/".join(p[:1].upper() + p[1:] for p in core.split("/")))
    return " ".join(out)


# -- PUMS ------------------------------------------------------------------------------------------------


def derive_pums(raw: Path, out: Path, *, kind: str, fips: str, year: int, label: str, work: Path) -> int:
    """Decode one official PUMS zip into ``out`` (Parquet); returns the number of records."""
    with _open_zip(raw, label) as zf:
        want = f"psam_{kind}{fips}.csv"
        names = [n for n in zf.namelist() if Path(n).name.lower() == want]
        if not names:
            found = [Path(n).name for n in zf.namelist() if n.lower().endswith(".csv")]
            raise ContentError(f"{label} holds no {want} (found: {', '.join(found) or 'no CSV file'})")
        csv_path = _extract(zf, names[0], work / want, label)
    try:
        lf = pl.scan_csv(csv_path, infer_schema=False)
        header = lf.collect_schema().names()
    except pl.exceptions.PolarsError as exc:
        raise ContentError(f"{label}: {want} is not a readable CSV ({str(exc).splitlines()[0]})") from None
    upper = {h.strip().upper(): h for h in header}
    missing = [c for c in REQUIRED[kind] if c not in upper]
    if missing:
        raise ContentError(
            f"{label}: {want} lacks PUMS column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} (is it a PUMS {'person' if kind == 'p' else 'housing'} file?)"
        )
    keep = [c for c in (PERSON_COLUMNS if kind == "p" else HOUSING_COLUMNS) if c in upper]
    try:
        text = {c: pl.col(upper[c]).str.strip_chars() for c in keep}
        df = lf.select([pl.when(t == "").then(None).otherwise(t).alias(c) for c, t in text.items()]).collect()
    except pl.exceptions.PolarsError as exc:
        raise ContentError(f"{label}: {want} is not a readable CSV ({str(exc).splitlines()[0]})") from None
    if df.height == 0:
        raise ContentError(f"{label}: {want} has no records")
    first = df["SERIALNO"][0] or ""
    if not first[:4].isdigit() or int(first[:4]) != year:
        raise ContentError(f"{label}: {want} holds records of {first[:4] or 'an unknown year'}, not {year}")
    cols = []
    for name in df.columns:
        col = df[name]
        if name not in TEXT_COLUMNS:
            as_int = col.cast(pl.Int64, strict=False)
            if as_int.null_count() == col.null_count():
                col = as_int
        cols.append(col)
    pl.DataFrame(cols).write_parquet(out, compression="zstd")
    return df.height


# -- PUMS data dictionary -------------------------------------------------------------------------------


def derive_dictionary(raw: Path, out: Path, *, label: str) -> int:
    """Check that ``raw`` is a PUMS data dictionary (``NAME`` / ``VAL`` rows) and copy it to ``out``."""
    _sniff(raw, label)
    try:
        with open(raw, encoding="utf-8-sig", newline="") as f:
            rows = list(csv.reader(f))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ContentError(f"{label} is not a PUMS data dictionary CSV ({exc})") from None
    kinds = {r[0] for r in rows if r}
    names = sum(1 for r in rows if r and r[0] == "NAME")
    if (
        not rows
        or not kinds <= {"NAME", "VAL"}
        or names == 0
        or not any(r[:2] == ["NAME", "SERIALNO"] for r in rows)
    ):
        raise ContentError(f"{label} is not a PUMS data dictionary (expected NAME/VAL rows with SERIALNO)")
    shutil.copyfile(raw, out)
    return names


# -- PRISM -----------------------------------------------------------------------------------------------


def first_user_turn(conversation: object) -> str | None:
    """The first user message of a PRISM conversation record (``conversation_history``), else None."""
    if not isinstance(conversation, dict):
        return None
    history = conversation.get("conversation_history")
    if not isinstance(history, list):
        return None
    users = [
        (t.get("turn") if isinstance(t.get("turn"), int) else 10**9, i, t.get("content"))
        for i, t in enumerate(history)
        if isinstance(t, dict) and t.get("role") == "user"
    ]
    if not users:
        return None
    text = min(users)[2]
    return text if isinstance(text, str) and text.strip() else None


def derive_prism(raw: Path, out: Path, *, label: str) -> int:
    """``conversations.jsonl`` -> JSON list of opening prompts (first user turn per line, in order)."""
    _sniff(raw, label)
    prompts: list[str] = []
    with open(raw, "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                raise ContentError(
                    f"{label} line {n}: not a JSON object (expected one PRISM conversation per line)"
                ) from None
            text = first_user_turn(record)
            if text is None:
                raise ContentError(f"{label} line {n}: no user turn with text in conversation_history")
            prompts.append(text)
    if not prompts:
        raise ContentError(f"{label} holds no conversations")
    out.write_text(json.dumps(prompts, indent=4), encoding="utf-8")
    return len(prompts)


# -- GSS -------------------------------------------------------------------------------------------------


def _read_dta(path: Path, label: str) -> tuple[pl.DataFrame, dict[str, dict[Any, str]]]:
    try:
        import pyreadstat
    except ImportError:  # a dependency; only a broken install lacks it
        raise UserError("reading the GSS Stata file needs pyreadstat: pip install pyreadstat") from None
    try:
        _, meta = pyreadstat.read_dta(str(path), metadataonly=True, output_format="polars")
    except Exception as exc:  # noqa: BLE001 - pyreadstat raises its own error types for bad files
        raise ContentError(f"{label}: not a readable Stata file ({type(exc).__name__}: {exc})") from None
    have = {c.lower(): c for c in meta.column_names}
    missing = [c for c in GSS_REQUIRED if c not in have]
    if missing:
        raise ContentError(
            f"{label}: the Stata file lacks GSS variable{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}"
        )
    use = [have[c] for c in (*GSS_REQUIRED, *GSS_OPTIONAL) if c in have]
    try:
        df, meta = pyreadstat.read_dta(str(path), usecols=use, output_format="polars")
    except Exception as exc:  # noqa: BLE001
        raise ContentError(f"{label}: Stata file damaged ({type(exc).__name__}: {exc})") from None
    df = df.rename({c: c.lower() for c in df.columns})
    labels = {k.lower(): v for k, v in (meta.variable_value_labels or {}).items()}
    return df, labels


def _labelled(
    df: pl.DataFrame, var: str, labels: dict[str, dict[Any, str]], fmt: Callable[[str], str]
) -> pl.Series:
    mapping = {
        float(k): fmt(v)
        for k, v in labels.get(var, {}).items()
        if isinstance(k, (int, float)) and not isinstance(k, bool)
    }
    col = df[var].cast(pl.Float64, strict=False)
    return col.replace_strict(mapping, default=None, return_dtype=pl.String).alias(var)


def _code(df: pl.DataFrame, var: str) -> pl.Series:
    return df[var].cast(pl.Float64, strict=False).round(0).cast(pl.Int64).alias(var)


def derive_gss(raw: Path, outputs: dict[str, Path], *, label: str, work: Path) -> int:
    """GSS cumulative Stata zip -> the long file (all years) and the 2016+2018 cross-section."""
    with _open_zip(raw, label) as zf:
        members = sorted(
            (i for i in zf.infolist() if i.filename.lower().endswith(".dta")),
            key=lambda i: i.file_size,
            reverse=True,
        )
        if not members:
            found = ", ".join(Path(n).name for n in zf.namelist()[:5]) or "nothing"
            raise ContentError(f"{label} holds no Stata .dta file (found: {found})")
        dta = _extract(zf, members[0].filename, work / "gss.dta", label)
    df, labels = _read_dta(dta, label)
    dta.unlink(missing_ok=True)
    if df.height == 0:
        raise ContentError(f"{label}: the Stata file has no respondents")
    year = _code(df, "year")
    first = year.min()
    if year.null_count() or not isinstance(first, int) or first < 1972:
        raise ContentError(f"{label}: variable year holds values that are not survey years")
    weight_all = df["wtssall"] if "wtssall" in df.columns else df["wtssps"]
    region = _code(df, "region")
    long = pl.DataFrame(
        [
            year,
            _code(df, "id"),
            _code(df, "age"),
            _labelled(df, "sex", labels, title_label),
            _labelled(df, "race", labels, title_label),
            _labelled(df, "degree", labels, title_label),
            region.replace_strict(BIG_REGION, default=None, return_dtype=pl.String).alias("bigregion"),
            region,
            _code(df, "relig"),
            _labelled(df, "relig", labels, str.lower).alias("relig_label"),
            _labelled(df, "partyid", labels, title_label),
            _labelled(df, "polviews", labels, title_label),
            weight_all.cast(pl.Float64).alias("wtssall"),
            df["wtssps"].cast(pl.Float64).alias("wtssps"),
        ]
    )
    outputs_written = 0
    if "survey/gss/gss_1972_2024_long.csv" in outputs:
        long.write_csv(outputs["survey/gss/gss_1972_2024_long.csv"])
        outputs_written += long.height
    cross_path = outputs.get("survey/gss/gss_2016_2018_crosssection.csv")
    if cross_path is not None:
        cols = [year, _code(df, "id"), _code(df, "age")]
        for var in (
            "sex",
            "race",
            "hispanic",
            "degree",
            "region",
            "born",
            "relig",
            "denom",
            "partyid",
            "polviews",
        ):
            if var not in df.columns:
                cols += [
                    pl.Series(var, [None] * df.height, dtype=pl.Int64),
                    pl.Series(f"{var}_label", [None] * df.height, dtype=pl.String),
                ]
                continue
            cols += [_code(df, var), _labelled(df, var, labels, str.lower).alias(f"{var}_label")]
        cols += [
            weight_all.cast(pl.Float64).alias("wtssall"),
            (df["wtssnr"] if "wtssnr" in df.columns else df["wtssps"]).cast(pl.Float64).alias("wtssnr"),
        ]
        cross = pl.DataFrame(cols).filter(pl.col("year").is_in(list(CROSS_SECTION_YEARS)))
        cross.write_csv(cross_path)
    return long.height


# -- Big Five package tables -----------------------------------------------------------------------------


def package_table(name: str) -> str:
    """A cited table shipped in ``persona_testbed/data/tables`` (CSV text with a ``source`` column)."""
    return resources.files(__package__).joinpath("tables", name).read_text(encoding="utf-8")


def derive_package(outputs: dict[str, Path]) -> int:
    """Write the Big Five tables as the data directory expects them (the ``source`` column dropped)."""
    for rel, out in outputs.items():
        rows = list(csv.reader(io.StringIO(package_table(Path(rel).name))))
        drop = rows[0].index("source")
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        for row in rows:
            writer.writerow(row[:drop] + row[drop + 1 :])
        out.write_text(buf.getvalue(), encoding="utf-8")
    return len(outputs)


_PUMS_NAME = re.compile(r"^census/acs/(\d{4})/1-Year-extract/([ph])_(\d{2})\.parquet$")


def pums_output(relpath: str) -> tuple[int, str, str]:
    """(year, kind, fips) of a derived PUMS Parquet path."""
    m = _PUMS_NAME.match(relpath)
    if not m:
        raise ValueError(relpath)
    return int(m.group(1)), m.group(2), m.group(3)
