"""Published marginal totals as raking :class:`~.raking.Margin` lists.

- ``acs2018-us``: ``census/targets/acs2018_1yr_us_targets.csv`` (ACS 2018 1-year US estimates mapped to
  PUMS codes: columns dimension, pums_var, pums_code, label, universe, estimate, ...). ``pums_var`` is
  ``VAR`` or ``VAR1;VAR2`` (codes ``c1;c2``) with optional fixed conditions ``VAR=code``
  (``RAC1P;HISP=01``); codes are ``a``, ``a-b`` ranges or comma lists (``3,4,5``), compared as integers.
  Universes: "total population"; "population N years and over" -> AGEP >= N; explicit conditions in
  parentheses ``(MIL!=1, AGEP>=18)``; "civilian noninstitutionalized" -> not active duty (MIL != 1) and,
  when the relationship column is present, not in institutional group quarters (code found by label in
  the source's dictionary).
- ``acs2024-s0101``: ``census/targets/acs_S0101_national_2024.json`` (Census API response for S0101):
  sex (C03 male, C05 female) x 18 five-year age groups. ``acs2024-s0101:CA,TX`` sums the listed states
  from ``acs_S0101_state_2024.json``.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from ..core.errors import UserError
from .dictionary import PumsDictionary
from .locate import resolve
from .raking import Cell, Margin, RakeResult, rake
from .states import STATES, parse_states

if TYPE_CHECKING:
    from .source import CensusSource

TARGETS = {
    "acs2018-us": "census/targets/acs2018_1yr_us_targets.csv",
    "acs2024-s0101": "census/targets/acs_S0101_national_2024.json",
}
S0101_STATES = "census/targets/acs_S0101_state_2024.json"
#: non-redundant default margins of acs2018-us (sex, nativity, race_x_nonhispanic are implied/partial)
DEFAULT_MARGINS_2018 = [
    "sex_x_age",
    "race",
    "hispanic",
    "citizenship",
    "marital_15plus_x_sex",
    "education_25plus",
    "veteran_civ18plus",
    "disability_civnoninst",
]
S0101_AGES = [
    (0, 4),
    (5, 9),
    (10, 14),
    (15, 19),
    (20, 24),
    (25, 29),
    (30, 34),
    (35, 39),
    (40, 44),
    (45, 49),
    (50, 54),
    (55, 59),
    (60, 64),
    (65, 69),
    (70, 74),
    (75, 79),
    (80, 84),
    (85, 200),
]


def load_targets(
    name_or_path: str | Path,
    data_dir: str | Path | None = None,
    dictionary: PumsDictionary | None = None,
    margins: list[str] | None = None,
    columns: list[str] | None = None,
) -> list[Margin]:
    """Margins of a named target set (``acs2018-us``, ``acs2024-s0101[:STATES]``) or a CSV/JSON path.

    ``margins`` selects dimensions (default: a non-redundant set); ``columns`` are the person columns
    available (used to decide optional universe clauses).
    """
    text = str(name_or_path)
    states = None
    if text.startswith("acs2024-s0101:"):
        text, states = "acs2024-s0101", parse_states(text.split(":", 1)[1])
    if text in TARGETS:
        path = resolve(S0101_STATES if states else TARGETS[text], data_dir)
    else:
        path = Path(text).expanduser()
        if not path.is_file():
            raise UserError(f"unknown targets {text!r}: use {', '.join(TARGETS)} or a .csv/.json path")
    if path.suffix.lower() == ".json":
        return [load_s0101(path, states)]
    return load_acs_targets_csv(path, dictionary=dictionary, margins=margins, columns=columns)


# ---- ACS targets CSV ----------------------------------------------------------------------------------
def code_condition(var: str, spec: str) -> pl.Expr:
    """``var`` matches ``spec`` (``"01"``, ``"02-24"``, ``"3,4,5"``), comparing integers when codes are."""
    col = pl.col(var)
    num = col.cast(pl.String).str.strip_chars().cast(pl.Int64, strict=False)
    out = pl.lit(False)
    for item in (s.strip() for s in spec.split(",")):
        m = re.fullmatch(r"(-?\d+)-(-?\d+)", item)
        if m:
            out = out | num.is_between(int(m.group(1)), int(m.group(2)))
        elif re.fullmatch(r"-?\d+", item):
            out = out | (num == int(item))
        elif item:
            out = out | (col.cast(pl.String) == item)
        else:
            raise UserError(f"empty code in {var}={spec!r}")
    return out


_UNIVERSE_COND = re.compile(r"^\s*([A-Z0-9]+)\s*(!=|>=|<=|=|>|<)\s*(-?\d+)\s*$")


def universe_condition(
    text: str, dictionary: PumsDictionary | None, columns: list[str] | None
) -> tuple[pl.Expr | None, list[str], str]:
    """(condition, columns it needs, note) for a universe description of the targets file."""
    t = text.strip().lower()
    paren = re.search(r"\(([^)]*)\)", text)
    if paren and all(_UNIVERSE_COND.match(p) for p in paren.group(1).split(",")):
        expr, cols = pl.lit(True), []
        for part in paren.group(1).split(","):
            var, op, val = _UNIVERSE_COND.match(part).groups()  # type: ignore[union-attr]
            num = pl.col(var).cast(pl.String).cast(pl.Int64, strict=False)
            cmp = {
                "!=": num != int(val),
                ">=": num >= int(val),
                "<=": num <= int(val),
                "=": num == int(val),
                ">": num > int(val),
                "<": num < int(val),
            }[op]
            expr = expr & (cmp.fill_null(op == "!="))  # blank != v holds
            cols.append(var)
        return expr, cols, ""
    if t in ("total population", ""):
        return None, [], ""
    m = re.search(r"(\d+) years and over", t)
    if m and "civilian" not in t:
        return pl.col("AGEP") >= int(m.group(1)), ["AGEP"], ""
    if "civilian noninstitutionalized" in t:
        expr = (pl.col("MIL").cast(pl.String).cast(pl.Int64, strict=False) != 1).fill_null(True)
        cols, note = ["MIL"], "civilian: MIL != 1"
        code = dictionary.find_code("RELSHIPP", "Institutionalized group quarters") if dictionary else None
        if code is not None and (columns is None or "RELSHIPP" in columns):
            expr = expr & (pl.col("RELSHIPP").cast(pl.String) != code).fill_null(True)
            cols.append("RELSHIPP")
            note += f"; noninstitutionalized: RELSHIPP != {code}"
        else:
            note += "; institutional group quarters not identifiable (no RELSHIPP): kept"
        return expr, cols, note
    raise UserError(f"targets universe {text!r} is not understood")


def load_acs_targets_csv(
    path: Path,
    dictionary: PumsDictionary | None = None,
    margins: list[str] | None = None,
    columns: list[str] | None = None,
) -> list[Margin]:
    """Margins from an ACS targets CSV (format of ``acs2018_1yr_us_targets.csv``)."""
    try:
        rows = list(csv.DictReader(path.open(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{path}: cannot read targets ({exc})") from None
    need = {"dimension", "pums_var", "pums_code", "label", "universe", "estimate"}
    if not rows or not need <= set(rows[0]):
        raise UserError(f"{path}: want columns {', '.join(sorted(need))}")
    dims: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        dims.setdefault(r["dimension"], []).append(r)
    if margins is None:
        wanted = [d for d in DEFAULT_MARGINS_2018 if d in dims] or list(dims)
    else:
        unknown = [m for m in margins if m not in dims]
        if unknown:
            raise UserError(f"{path}: no dimension {', '.join(unknown)} (has {', '.join(dims)})")
        wanted = list(margins)
    out = []
    for dim in wanted:
        first = dims[dim][0]
        universe, ucols, note = universe_condition(first["universe"], dictionary, columns)
        vars_ = [v.strip() for v in first["pums_var"].split(";")]
        fixed = [v for v in vars_ if "=" in v]
        free = [v for v in vars_ if "=" not in v]
        for f in fixed:
            var, code = f.split("=", 1)
            cond = code_condition(var, code)
            universe = cond if universe is None else universe & cond
            ucols.append(var)
        cells = []
        for _line, r in enumerate(dims[dim], start=2):
            codes = [c.strip() for c in r["pums_code"].split(";")]
            if len(codes) != len(free) or r["pums_var"] != first["pums_var"]:
                raise UserError(
                    f"{path}: dimension {dim} row {r['label']!r}: codes {r['pums_code']!r} "
                    f"do not match variables {first['pums_var']!r}"
                )
            cond = pl.lit(True)
            for var, code in zip(free, codes):
                cond = cond & code_condition(var, code)
            try:
                target = float(r["estimate"])
            except ValueError:
                raise UserError(
                    f"{path}: estimate {r['estimate']!r} of {r['label']!r} is not a number"
                ) from None
            cells.append(Cell(label=r["label"], target=target, condition=cond))
        out.append(
            Margin(
                name=dim, cells=cells, universe=universe, columns=list(dict.fromkeys(free + ucols)), note=note
            )
        )
    return out


# ---- S0101 JSON ---------------------------------------------------------------------------------------
def load_s0101(path: Path, states: list[str] | None = None) -> Margin:
    """Sex x age margin from a Census API S0101 response (national, or the sum of ``states``)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        header, body = data[0], data[1:]
    except (OSError, ValueError, IndexError, TypeError) as exc:
        raise UserError(f"{path}: not a Census API JSON table ({exc})") from None
    records = [dict(zip(header, r)) for r in body]
    if states:
        if "state" not in header:
            raise UserError(f"{path}: no state column to select {', '.join(states)}")
        records = [r for r in records if str(r["state"]).zfill(2) in states]
        found = {str(r["state"]).zfill(2) for r in records}
        if set(states) - found:
            raise UserError(f"{path}: no rows for state {', '.join(sorted(set(states) - found))}")

    def total(key: str) -> float:
        try:
            return float(sum(float(r[key]) for r in records))
        except KeyError:
            raise UserError(f"{path}: no column {key} (is this table S0101?)") from None
        except ValueError:
            raise UserError(f"{path}: column {key} is not numeric") from None

    cells = []
    for sex_code, col, sex in (("1", "C03", "Male"), ("2", "C05", "Female")):
        parts = []
        for i, (lo, hi) in enumerate(S0101_AGES, start=2):
            est = total(f"S0101_{col}_{i:03d}E")
            parts.append(est)
            label = f"{sex} {lo}+" if hi >= 200 else f"{sex} {lo}-{hi}"
            cells.append(
                Cell(
                    label=label,
                    target=est,
                    condition=code_condition("SEX", sex_code) & pl.col("AGEP").is_between(lo, hi),
                )
            )
        sex_total = total(f"S0101_{col}_001E")
        if abs(sum(parts) - sex_total) > 0.01 * sex_total:
            raise UserError(
                f"{path}: {sex} age groups sum to {sum(parts):.0f}, not the table's {sex_total:.0f}"
            )
    geo = "US" if not states else ",".join(STATES[s][0] for s in states)
    return Margin(name=f"sex_x_age_s0101_{geo}", cells=cells, universe=None, columns=["SEX", "AGEP"])


def rake_source(
    source: CensusSource,
    targets: str | list[Margin] = "acs2018-us",
    margins: list[str] | None = None,
    weight: str = "PWGTP",
    max_iter: int = 100,
    tol: float = 1e-6,
    data_dir: str | Path | None = None,
) -> RakeResult:
    """Rake a :class:`CensusSource`'s person weights; weights align with ``source.persons()`` rows.

    ``targets``: a name from ``targets.TARGETS`` (``acs2018-us``, ``acs2024-s0101``), a path, or margins.
    """
    if isinstance(targets, list):
        ms = targets
    else:
        ms = load_targets(
            targets,
            data_dir=data_dir,
            dictionary=source.dictionary,
            margins=margins,
            columns=source.available_columns(),
        )
    cols = list(dict.fromkeys([weight] + [c for m in ms for c in m.columns]))
    df = source.persons(cols).collect()
    return rake(df, ms, weight=weight, max_iter=max_iter, tol=tol)
