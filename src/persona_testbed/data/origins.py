"""Public origins: where an input file comes from when there is no mirror, and what it is made from.

Without a mirror, ``data fetch`` brings every file from its public origin:

- files with an official URL (Census PUMS zips, dictionaries) are downloaded as they are;
- other files are **derived** from a public file: the ACS 2024 per-state Parquet files from the official
  Census zips ``csv_pXX.zip`` / ``csv_hXX.zip``, the PRISM opening prompts from the Hugging Face dataset's
  ``conversations.jsonl``, the two GSS extracts from NORC's cumulative Stata file; the Big Five norms are
  small cited tables shipped inside the package.

Each official host can be moved (a local copy, a caching proxy, the tests' server on 127.0.0.1):
``PERSONA_TESTBED_CENSUS_URL`` (www2.census.gov), ``PERSONA_TESTBED_HF_URL`` (huggingface.co; else
``HF_ENDPOINT``), ``PERSONA_TESTBED_GSS_URL`` (gss.norc.org) replace the scheme and host, keeping the path;
``PERSONA_TESTBED_ORIGINS_URL=BASE`` moves every host at once to ``BASE/<host>/<path>``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from .census_urls import CENSUS_BASE_URL, ENV_CENSUS_URL, dictionary_file, pums_file
from .states import BY_FIPS

ENV_ORIGINS_URL = "PERSONA_TESTBED_ORIGINS_URL"
ENV_HF_URL = "PERSONA_TESTBED_HF_URL"
ENV_GSS_URL = "PERSONA_TESTBED_GSS_URL"
#: host -> environment variables that replace ``https://<host>`` (first set wins)
HOST_ENV: dict[str, tuple[str, ...]] = {
    "www2.census.gov": (ENV_CENSUS_URL,),
    "huggingface.co": (ENV_HF_URL, "HF_ENDPOINT"),
    "gss.norc.org": (ENV_GSS_URL,),
}

PRISM_URL = "https://huggingface.co/datasets/HannahRoseKirk/prism-alignment/resolve/main/conversations.jsonl"
GSS_URL = "https://gss.norc.org/content/dam/gss/get-the-data/documents/stata/GSS_stata.zip"
#: where raw downloads wait to be derived (resumable ``.part`` files live here too)
DOWNLOADS = ".downloads"

CENSUS_PD = "public domain (U.S. Census Bureau)"
CENSUS_CITATION = "U.S. Census Bureau, American Community Survey Public Use Microdata Sample (PUMS)"
GSS_LICENCE = (
    "GSS public-use data distributed by NORC; cite: General Social Survey, NORC at the University of Chicago"
)
GSS_CITATION = (
    "Davern, M., Bautista, R., Freese, J., Herd, P., and Morgan, S. L.; General Social Survey "
    "1972-2024 (machine-readable data file), NORC at the University of Chicago; gss.norc.org"
)
PRISM_LICENCE = "CC-BY-4.0 (human-written text)"
PRISM_CITATION = (
    "Kirk, H. R., et al. (2024), The PRISM Alignment Project, arXiv 2404.16019; "
    "dataset HannahRoseKirk/prism-alignment (Hugging Face)"
)
BIGFIVE_CITATION = (
    "Johnson, J. A. (2014), Measuring thirty facets of the Five Factor Model with a 120-item "
    "public domain inventory: development of the IPIP-NEO-120, J. Res. Pers. 51, 78-89 (norms, "
    "via the MIT-licensed package five-factor-e); Costa, P. T. & McCrae, R. R. (1992), NEO PI-R "
    "manual (domain correlations, via psychTools `neo`, Revelle); SAPA: Revelle et al. (psych `bfi`)"
)

#: group -> citation shown by ``data list`` (licences are per file, in the manifest)
CITATIONS: dict[str, str] = {
    "census-2018": CENSUS_CITATION,
    "census-2024": CENSUS_CITATION,
    "dictionaries": CENSUS_CITATION,
    "targets": CENSUS_CITATION + "; adult shares compiled by Kirk et al. (2024), PRISM",
    "gss": GSS_CITATION,
    "bigfive": BIGFIVE_CITATION,
    "prism": PRISM_CITATION,
}

#: states whose 2024 files the no-mirror quickstart fetches: small, one per census region
QUICKSTART_STATES: tuple[str, ...] = ("VT", "ND", "DE", "WY")
QUICKSTART = "quickstart"

Kind = Literal["pums", "prism", "gss", "package", "dictionary"]


@dataclass(frozen=True)
class Origin:
    """A public file (or package table) and the data-directory files derived from it."""

    key: str
    kind: Kind
    url: str | None  # official URL; None for tables shipped in the package
    outputs: tuple[str, ...]
    licence: str
    citation: str
    description: str

    @property
    def download_relpath(self) -> str | None:
        """Where the raw file is downloaded to (inside the data directory) before it is derived."""
        if self.url is None:
            return None
        parts = urlsplit(self.url)
        return f"{DOWNLOADS}/{parts.netloc}{parts.path}"


PRISM = Origin(
    key="prism",
    kind="prism",
    url=PRISM_URL,
    outputs=("prompts/prism/prism_opening_prompts.json",),
    licence=PRISM_LICENCE,
    citation=PRISM_CITATION,
    description="first user turn of each conversation in conversations.jsonl, in file order",
)
GSS = Origin(
    key="gss",
    kind="gss",
    url=GSS_URL,
    outputs=("survey/gss/gss_1972_2024_long.csv", "survey/gss/gss_2016_2018_crosssection.csv"),
    licence=GSS_LICENCE,
    citation=GSS_CITATION,
    description="NORC GSS cumulative data file (Stata), projected to the columns persona-testbed uses",
)
BIGFIVE = Origin(
    key="bigfive",
    kind="package",
    url=None,
    outputs=(
        "norms/bigfive/ipipneo120_norms_by_sex_age.csv",
        "norms/bigfive/neo_pi_r_domain_correlations.csv",
    ),
    licence="norms: MIT (five-factor-e), IPIP items public domain; correlations: published values, cited",
    citation=BIGFIVE_CITATION,
    description="cited tables shipped in persona_testbed/data/tables",
)

_EXTRACT = re.compile(r"^census/acs/(\d{4})/1-Year-extract/([ph])_(\d{2})\.parquet$")
#: manifest files with an official URL whose mirror copy is not that file byte for byte (the 2023
#: dictionary is the tidycensus package's copy): without a mirror the official file is checked for
#: content (a PUMS dictionary) and its own checksum recorded, instead of failing the mirror's checksum
NOT_BYTE_IDENTICAL = {"census/dictionaries/PUMS_Data_Dictionary_2023.csv": 2023}


def origin_for(relpath: str) -> Origin | None:
    """The public origin that produces ``relpath`` when it cannot simply be downloaded and checked
    against the manifest (no official URL of its own, or not the mirror's bytes), if any."""
    for o in (PRISM, GSS, BIGFIVE):
        if relpath in o.outputs:
            return o
    if relpath in NOT_BYTE_IDENTICAL:
        official = dictionary_file(NOT_BYTE_IDENTICAL[relpath])
        return Origin(
            key=f"dictionary-{NOT_BYTE_IDENTICAL[relpath]}",
            kind="dictionary",
            url=official.url,
            outputs=(relpath,),
            licence=CENSUS_PD,
            citation=CENSUS_CITATION,
            description=f"{official.description} (official CSV, content-checked)",
        )
    m = _EXTRACT.match(relpath)
    if m and m.group(3) in BY_FIPS:
        year, kind, fips = int(m.group(1)), m.group(2), m.group(3)
        s = BY_FIPS[fips]
        official = pums_file(year, kind, s.abbr)
        what = "person" if kind == "p" else "housing"
        return Origin(
            key=f"pums-{year}-{kind}-{fips}",
            kind="pums",
            url=official.url,
            outputs=(relpath,),
            licence=CENSUS_PD,
            citation=CENSUS_CITATION,
            description=f"ACS {year} 1-year PUMS {what} records of {s.name}, decoded from "
            f"{official.url.rsplit('/', 1)[1]} (columns persona-testbed uses)",
        )
    return None


def extra_without_mirror(group: str) -> list[str]:
    """Files a group brings from the public origins in addition to its manifest files: the official
    2024 dictionary (the mirror has only the 2023 one) for the 2024 census data."""
    if group in ("census-2024", "dictionaries"):
        return [dictionary_file(2024).relpath]
    return []


def rebase_url(url: str) -> str:
    """Point an official URL at the host's override (see the module docstring); others unchanged."""
    parts = urlsplit(url)
    if parts.scheme != "https" or parts.netloc not in HOST_ENV:
        return url
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    for env in HOST_ENV[parts.netloc]:
        base = os.environ.get(env)
        if base:
            return base.rstrip("/") + tail
    base = os.environ.get(ENV_ORIGINS_URL)
    if base:
        return f"{base.rstrip('/')}/{parts.netloc}{tail}"
    return url


__all__ = [
    "BIGFIVE",
    "CENSUS_BASE_URL",
    "CITATIONS",
    "DOWNLOADS",
    "GSS",
    "Origin",
    "PRISM",
    "QUICKSTART",
    "QUICKSTART_STATES",
    "extra_without_mirror",
    "origin_for",
    "rebase_url",
]
