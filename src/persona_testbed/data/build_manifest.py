"""Regenerate ``manifest.json`` from a data mirror (its ``SHA256SUMS`` and file sizes).

Usage: ``python -m persona_testbed.data.build_manifest /work/shared/data`` (writes the packaged
``manifest.json``; ``--out FILE`` writes elsewhere). Descriptions, groups, licences and official URLs
come from the rules below, which follow the mirror's README. A file no rule knows is an error, so the
manifest always describes every file of the mirror.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from .census_urls import dictionary_file, pums_file
from .states import BY_FIPS

CENSUS_PD = "public domain (U.S. Census Bureau)"
GSS_LICENCE = (
    "GSS public-use data distributed by NORC; cite: General Social Survey, NORC at the University of Chicago"
)

# relpath -> (group, description, licence, url, source) for single files
_FIXED: dict[str, tuple[str, str, str, str | None, str]] = {
    "census/dictionaries/PUMS_Data_Dictionary_2018.csv": (
        "dictionaries",
        "ACS 2018 PUMS data dictionary (official CSV)",
        CENSUS_PD,
        dictionary_file(2018).url,
        "U.S. Census Bureau",
    ),
    "census/dictionaries/PUMS_Data_Dictionary_2023.csv": (
        "dictionaries",
        "ACS 2023 PUMS data dictionary (closest available for the 2024 extract)",
        CENSUS_PD,
        dictionary_file(2023).url,
        "tidycensus package copy of the Census CSV; the official file may differ byte-wise (checksum)",
    ),
    "census/targets/acs2018_1yr_us_targets.csv": (
        "targets",
        "ACS 2018 1-year US estimates mapped to PUMS variables/codes (sex x age, race, "
        "Hispanic origin, citizenship, marital status, education, veteran status, disability)",
        CENSUS_PD,
        None,
        "compiled from ACS 2018 tables B01001 B02001 B03002 B05003 B12001 B15003 B21001 B18101 (mirror only)",
    ),
    "census/targets/acs2018_1yr_state_population.csv": (
        "targets",
        "ACS 2018 1-year population by state and sex (B01001)",
        CENSUS_PD,
        None,
        "compiled from ACS 2018 table B01001 (mirror only)",
    ),
    "census/targets/acs_S0101_national_2024.json": (
        "targets",
        "ACS 2024 table S0101 (age x sex), US: raw Census API response",
        CENSUS_PD,
        None,
        "Census API via the policyengine-us-data package (mirror only)",
    ),
    "census/targets/acs_S0101_state_2024.json": (
        "targets",
        "ACS 2024 table S0101 (age x sex) by state: raw Census API response",
        CENSUS_PD,
        None,
        "Census API via the policyengine-us-data package (mirror only)",
    ),
    "census/targets/us_adults_age_sex_race_shares_prism.csv": (
        "targets",
        "US adult (18+) population shares by age group x sex x race/ethnicity",
        CENSUS_PD + "; compiled by the PRISM project (Kirk et al. 2024)",
        None,
        "github.com/HannahKirk/prism-alignment data/storage/census_data/us_census_aggregate.csv "
        "(mirror only)",
    ),
    "survey/gss/gss_2016_2018_crosssection.csv": (
        "gss",
        "GSS 2016 + 2018 cross-sections (5,215 respondents): demographics, religion, politics",
        GSS_LICENCE,
        None,
        "NORC GSS 2020 Panel Release 1 via the gssr R package; without a mirror: derived from NORC's cumulative "
        "Stata file (GSS_stata.zip), years 2016 and 2018",
    ),
    "survey/gss/gss_panel20_value_labels.json": (
        "gss",
        "GSS code -> label lists for the cross-section file",
        GSS_LICENCE,
        None,
        "NORC GSS 2020 Panel Release 1 via the gssr R package (mirror only)",
    ),
    "survey/gss/gss_1972_2024_long.csv": (
        "gss",
        "GSS 1972-2024 (75,699 respondents): demographics, religion, party, views, weights",
        GSS_LICENCE,
        None,
        "NORC GSS cumulative file via the gssr R package; without a mirror: derived from NORC's cumulative Stata "
        "file (GSS_stata.zip)",
    ),
    "norms/bigfive/ipipneo120_norms_by_sex_age.csv": (
        "bigfive",
        "IPIP-NEO-120 norms (Johnson) by sex x age group: domain means and SDs",
        "MIT (PyPI package five-factor-e); IPIP items public domain",
        None,
        "five-factor-e package; without a mirror: the cited table in persona_testbed/data/tables",
    ),
    "norms/bigfive/neo_pi_r_domain_correlations.csv": (
        "bigfive",
        "Big Five domain intercorrelations implied by NEO-PI-R facet correlations",
        "derived from the psychTools R package dataset neo (GPL); cite Costa & McCrae",
        None,
        "psychTools `neo` (1,000 adults); without a mirror: the cited table in persona_testbed/data/tables",
    ),
    "norms/bigfive/sapa_bfi25_items.csv": (
        "bigfive",
        "SAPA project: 2,800 respondents x 25 Big Five items, gender, education, age",
        "SAPA project data (Revelle et al.) from the psych/psychTools R packages (GPL); cite Revelle",
        None,
        "psychTools `bfi` (mirror only)",
    ),
    "prompts/prism/prism_opening_prompts.json": (
        "prism",
        "8,011 opening prompts of the PRISM alignment dataset, in conversation order",
        "CC-BY-4.0; attribute Kirk, H. R., et al. (2024), The PRISM Alignment Project (arXiv 2404.16019)",
        None,
        "Hugging Face dataset HannahRoseKirk/prism-alignment; without a mirror: derived from its conversations.jsonl "
        "(first user turn per conversation)",
    ),
}

_PUMS_2018 = re.compile(r"^census/acs/2018/1-Year/csv_p([a-z]{2})\.zip$")
_EXTRACT_2024 = re.compile(r"^census/acs/2024/1-Year-extract/([ph])_(\d{2})\.parquet$")


def describe(relpath: str) -> dict[str, str | None]:
    """Group, description, licence, official URL and source note of one mirror file."""
    if relpath in _FIXED:
        group, desc, licence, url, source = _FIXED[relpath]
        return dict(group=group, description=desc, licence=licence, url=url, source=source)
    m = _PUMS_2018.match(relpath)
    if m:
        f = pums_file(2018, "p", m.group(1))
        return dict(
            group="census-2018",
            description=f.description + " (official zip)",
            licence=CENSUS_PD,
            url=f.url,
            source="U.S. Census Bureau",
        )
    m = _EXTRACT_2024.match(relpath)
    if m:
        kind, fips = m.groups()
        s = BY_FIPS[fips]
        official = pums_file(2024, kind, s.abbr).url
        what = "person" if kind == "p" else "housing"
        return dict(
            group="census-2024",
            description=f"ACS 2024 1-year PUMS {what} records, column extract, {s.name} (FIPS {fips})",
            licence=CENSUS_PD,
            url=None,
            source=f"derived extract (columns projected) of {official}, as ingested by "
            "github.com/mikesimonsen/acs-pums-explorer; without a mirror: decoded from the official zip (more columns)",
        )
    raise SystemExit(f"build_manifest: no rule describes {relpath}; add one")


def build(mirror: Path) -> dict[str, Any]:
    """The manifest document for every file listed in ``mirror/SHA256SUMS``."""
    files = []
    for line in (mirror / "SHA256SUMS").read_text().splitlines():
        if not line.strip():
            continue
        sha, relpath = line.split(maxsplit=1)
        relpath = relpath.lstrip("*").strip()
        size = (mirror / relpath).stat().st_size
        files.append(dict(relpath=relpath, sha256=sha, size=size, **describe(relpath)))
    return {
        "format": 1,
        "generated_from": "SHA256SUMS of the persona-testbed offline data mirror",
        "files": files,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mirror", type=Path, help="mirror directory holding SHA256SUMS")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("manifest.json"))
    args = ap.parse_args(argv)
    doc = build(args.mirror)
    args.out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(doc['files'])} files to {args.out}")


if __name__ == "__main__":
    main()
