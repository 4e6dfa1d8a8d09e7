"""Loopback "internet" for data tests: a real HTTP server on 127.0.0.1 (Range support, fault injection)
and builders of tiny files in each public origin's real format.

- Census: ``csv_pXX.zip`` / ``csv_hXX.zip`` holding ``psam_pNN.csv`` / ``psam_hNN.csv`` (official column
  spellings, blanks for N/A, replicate weights and allocation flags included) and a data dictionary
  (``fixtures/PUMS_Data_Dictionary_2024_excerpt.csv``: rows of the official 2023 CSV, years set to 2024).
- PRISM: ``conversations.jsonl`` lines as the Hugging Face dataset has them (``conversation_history`` of
  user / model turns with scores, feedback attributes...).
- GSS: ``GSS_stata.zip`` holding a Stata (.dta) cumulative file with NORC's variable names, numeric
  codes, lower-case value labels and weights (written with pyreadstat).

``serve_origins(server)`` puts all of them where the official URLs point below
``PERSONA_TESTBED_ORIGINS_URL=<server.base>`` (``/<host>/<official path>``).
"""

from __future__ import annotations

import csv
import io
import json
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import polars as pl

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DICTIONARY_EXCERPT = FIXTURES / "PUMS_Data_Dictionary_2024_excerpt.csv"


# -- the server ------------------------------------------------------------------------------------------


@dataclass
class FileServer:
    """Serves ``files`` (url path -> bytes). Faults: ``drop_after[path] = n`` closes the socket after
    n body bytes on the first request; ``ignore_range`` paths answer 200 to Range requests;
    ``fail[path] = [503, ...]`` answers those statuses first; ``content_type[path]`` sets the header;
    ``headers[path]`` adds headers. ``requests`` logs (path, Range, status)."""

    base: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    drop_after: dict[str, int] = field(default_factory=dict)
    ignore_range: set[str] = field(default_factory=set)
    fail: dict[str, list[int]] = field(default_factory=dict)
    content_type: dict[str, str] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    requests: list[tuple[str, str | None, int]] = field(default_factory=list)

    def add(self, path: str, data: bytes) -> str:
        """Serve ``data`` at ``path``; returns the full URL."""
        self.files[path] = data
        return self.base + path

    def add_official(self, url: str, data: bytes) -> str:
        """Serve ``data`` where ``PERSONA_TESTBED_ORIGINS_URL=<base>`` puts the official ``url``."""
        parts = urlsplit(url)
        return self.add(f"/{parts.netloc}{parts.path}", data)

    def bytes_served(self) -> int:
        return sum(len(self.files.get(p, b"")) for p, _, code in self.requests if code == 200)


def _handler(state: FileServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def _empty(self, code: int, path: str, rng: str | None, extra: dict[str, str] | None = None) -> None:
            state.requests.append((path, rng, code))
            self.send_response(code)
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self):  # noqa: N802
            path = self.path.split("?")[0]
            rng = self.headers.get("Range")
            if state.fail.get(path):
                self._empty(state.fail[path].pop(0), path, rng)
                return
            data = state.files.get(path)
            if data is None:
                self._empty(404, path, rng)
                return
            start = 0
            if rng and path not in state.ignore_range:
                start = int(rng.split("=")[1].split("-")[0])
                if start >= len(data):
                    self._empty(416, path, rng, {"Content-Range": f"bytes */{len(data)}"})
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                code = 206
            else:
                self.send_response(200)
                code = 200
            state.requests.append((path, rng, code))
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Type", state.content_type.get(path, "application/octet-stream"))
            for k, v in state.headers.get(path, {}).items():
                self.send_header(k, v)
            self.end_headers()
            cut = state.drop_after.pop(path, None)
            if cut is not None:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # type: ignore[no-untyped-def]
        # the client under test hangs up early on purpose (e.g. on seeing a captive-portal page); under load
        # the server may still be writing, and its traceback would land in the command's captured stderr
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


@contextmanager
def file_server_running() -> Iterator[FileServer]:
    state = FileServer()
    server = _QuietServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


# -- Census PUMS -----------------------------------------------------------------------------------------


def dictionary_codes() -> dict[str, list[str]]:
    """Single codes (``from == to``, not blank) of each variable in the dictionary excerpt."""
    codes: dict[str, list[str]] = {}
    with open(DICTIONARY_EXCERPT, newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            if row[0] == "VAL" and row[4] == row[5] and set(row[4]) != {"b"}:
                codes.setdefault(row[1], []).append(row[4])
    return codes


PERSON_HEADER = [
    "RT",
    "SERIALNO",
    "DIVISION",
    "SPORDER",
    "PUMA",
    "REGION",
    "STATE",
    "ADJINC",
    "PWGTP",
    "AGEP",
    "CIT",
    "COW",
    "DEAR",
    "DEYE",
    "DREM",
    "ENG",
    "FER",
    "LANX",
    "MAR",
    "MIL",
    "RELSHIPP",
    "SCHL",
    "SEX",
    "ANC1P",
    "DIS",
    "ESR",
    "HICOV",
    "HISP",
    "INDP",
    "LANP",
    "NATIVITY",
    "OCCP",
    "PAOC",
    "PINCP",
    "POBP",
    "RAC1P",
    "FAGEP",
    "FSEXP",
] + [f"PWGTP{i}" for i in range(1, 81)]
HOUSING_HEADER = [
    "RT",
    "SERIALNO",
    "DIVISION",
    "PUMA",
    "REGION",
    "STATE",
    "ADJHSG",
    "ADJINC",
    "WGTP",
    "NP",
    "TYPEHUGQ",
    "HHL",
    "HHT",
    "FHHLP",
] + [f"WGTP{i}" for i in range(1, 81)]


def pums_records(fips: str, n_households: int, seed: int, year: int = 2024) -> tuple[str, str]:
    """Person and housing CSV text of one state, spelled as the official files spell them."""
    codes = dictionary_codes()
    g = np.random.default_rng(seed)

    def pick(var: str) -> str:
        return str(g.choice(codes[var]))

    persons, houses = [], []
    for h in range(n_households):
        serial = f"{year}HU{int(fips) * 10000 + h:07d}"
        size = int(g.integers(1, 4))
        langs = pick("LANX")
        for p in range(size):
            age = int(g.integers(18, 90)) if p < 2 else int(g.integers(0, 18))
            sex = pick("SEX")
            worker = age >= 16 and g.random() < 0.7
            row = {
                "RT": "P",
                "SERIALNO": serial,
                "DIVISION": "1",
                "SPORDER": str(p + 1),
                "PUMA": "00100",
                "REGION": "1",
                "STATE": fips,
                "ADJINC": "1019518",
                "PWGTP": str(int(g.integers(5, 300))),
                "AGEP": str(age),
                "CIT": pick("CIT"),
                "COW": pick("COW") if worker else "",
                "DEAR": pick("DEAR"),
                "DEYE": pick("DEAR"),
                "DREM": pick("DEAR") if age >= 5 else "",
                "ENG": pick("ENG") if langs == "1" and age >= 5 else "",
                "FER": pick("FER") if sex == "2" and 15 <= age <= 50 else "",
                "LANX": langs if age >= 5 else "",
                "MAR": pick("MAR") if age >= 15 else "5",
                "MIL": pick("MIL") if age >= 17 else "",
                "RELSHIPP": "20" if p == 0 else ("21" if p == 1 else "25"),
                "SCHL": f"{int(g.integers(1, 25)):02d}" if age >= 3 else "",
                "SEX": sex,
                "ANC1P": pick("ANC1P"),
                "DIS": pick("DIS"),
                "ESR": pick("ESR") if age >= 16 else "",
                "HICOV": pick("HICOV"),
                "HISP": "01" if g.random() < 0.8 else pick("HISP"),
                "INDP": pick("INDP") if worker else "",
                "LANP": pick("LANP") if langs == "1" and age >= 5 else "",
                "NATIVITY": pick("NATIVITY"),
                "OCCP": pick("OCCP") if worker else "",
                "PAOC": pick("PAOC") if sex == "2" and age >= 16 else "",
                "PINCP": str(int(g.integers(-500, 150000))) if age >= 15 else "",
                "POBP": pick("POBP"),
                "RAC1P": pick("RAC1P"),
                "FAGEP": "0",
                "FSEXP": "0",
            }
            row.update({f"PWGTP{i}": str(int(g.integers(0, 400))) for i in range(1, 81)})
            persons.append(row)
        house = {
            "RT": "H",
            "SERIALNO": serial,
            "DIVISION": "1",
            "PUMA": "00100",
            "REGION": "1",
            "STATE": fips,
            "ADJHSG": "1000000",
            "ADJINC": "1019518",
            "WGTP": str(int(g.integers(5, 300))),
            "NP": str(size),
            "TYPEHUGQ": "1",
            "HHL": pick("HHL"),
            "HHT": "1" if size > 1 else str(g.choice(["4", "6"])),
            "FHHLP": "0",
        }
        house.update({f"WGTP{i}": str(int(g.integers(0, 400))) for i in range(1, 81)})
        houses.append(house)

    def text(rows: list[dict], header: list[str]) -> str:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        return buf.getvalue()

    return text(persons, PERSON_HEADER), text(houses, HOUSING_HEADER)


def pums_zip(kind: str, fips: str, csv_text: str, year: int = 2024) -> bytes:
    """An official-style zip: ``psam_<kind><fips>.csv`` and the README PDF."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"psam_{kind}{fips}.csv", csv_text)
        zf.writestr(f"ACS{year}_PUMS_README.pdf", b"%PDF-1.4 not really")
    return buf.getvalue()


# -- PRISM -----------------------------------------------------------------------------------------------


def prism_jsonl(prompts: list[str], seed: int = 0) -> bytes:
    """``conversations.jsonl`` of the PRISM dataset: one conversation per line, ``conversation_history``
    with the user's opening prompt, four scored model answers, and for some a second turn."""
    g = np.random.default_rng(seed)
    lines = []
    for i, prompt in enumerate(prompts):
        history = [{"turn": 0, "role": "user", "content": prompt}]
        for j in range(4):
            history.append(
                {
                    "turn": 0,
                    "role": "model",
                    "content": f"Answer {j} to: {prompt[:30]}",
                    "model_provider": "hf_api",
                    "model_name": f"model-{j}",
                    "score": int(g.integers(1, 101)),
                    "if_chosen": j == 0,
                    "within_turn_id": j,
                }
            )
        if i % 2:
            history.append({"turn": 1, "role": "user", "content": "Can you say more?"})
            history.append(
                {
                    "turn": 1,
                    "role": "model",
                    "content": "More.",
                    "model_provider": "hf_api",
                    "model_name": "model-0",
                    "score": 50,
                    "if_chosen": True,
                    "within_turn_id": 0,
                }
            )
        record = {
            "conversation_id": f"c{i}",
            "user_id": f"user{i // 3}",
            "generated_datetime": "2023-11-22 15:00:00",
            "timing_duration_s": 300.0,
            "timing_duration_mins": 5.0,
            "conversation_type": ["unguided", "values guided", "controversy guided"][i % 3],
            "opening_prompt": prompt,
            "conversation_turns": 1 + i % 2,
            "conversation_history": history,
            "performance_attributes": {"values": 50, "fluency": 80},
            "choice_attributes": {"values": 40},
            "open_feedback": "fine",
            "included_in_US_REP": bool(i % 2),
            "included_in_UK_REP": not i % 2,
            "included_in_balanced_subset": True,
        }
        lines.append(json.dumps(record, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode("utf-8")


# -- GSS -------------------------------------------------------------------------------------------------

GSS_LABELS: dict[str, dict[int, str]] = {
    "sex": {1: "male", 2: "female"},
    "race": {1: "white", 2: "black", 3: "other"},
    "hispanic": {1: "not hispanic", 2: "mexican, mexican american, chicano/a", 3: "puerto rican"},
    "degree": {
        0: "less than high school",
        1: "high school",
        2: "associate/junior college",
        3: "bachelor's",
        4: "graduate",
    },
    "region": {
        1: "new england",
        2: "middle atlantic",
        3: "e. nor. central",
        4: "w. nor. central",
        5: "south atlantic",
        6: "e. sou. central",
        7: "w. sou. central",
        8: "mountain",
        9: "pacific",
    },
    "born": {1: "yes", 2: "no"},
    "relig": {1: "protestant", 2: "catholic", 3: "jewish", 4: "none", 5: "other", 11: "christian"},
    "denom": {10: "american baptist association", 14: "southern baptist", 70: "no denomination"},
    "partyid": {
        0: "strong democrat",
        1: "not very strong democrat",
        2: "independent, close to democrat",
        3: "independent (neither, no response)",
        4: "independent, close to republican",
        5: "not very strong republican",
        6: "strong republican",
        7: "other party",
    },
    "polviews": {
        1: "extremely liberal",
        2: "liberal",
        3: "slightly liberal",
        4: "moderate, middle of the road",
        5: "slightly conservative",
        6: "conservative",
        7: "extremely conservative",
    },
    "age": {89: "89 or older"},
}


def gss_frame(
    per_year: int = 40, years: tuple[int, ...] = (2016, 2018, 2021, 2022, 2024), seed: int = 0
) -> pl.DataFrame:
    """Respondents with NORC's variables (numeric codes; missing answers as Stata missing values)."""
    g = np.random.default_rng(seed)
    rows = []
    for year in years:
        for i in range(1, per_year + 1):
            rows.append(
                {
                    "year": float(year),
                    "id": float(i),
                    "age": float(g.integers(18, 90)),
                    "sex": float(g.integers(1, 3)),
                    "race": float(g.integers(1, 4)),
                    "hispanic": float(g.choice([1, 1, 1, 2, 3])),
                    "degree": float(g.integers(0, 5)),
                    "region": float(g.integers(1, 10)),
                    "born": float(g.choice([1, 1, 2])),
                    "relig": float(g.choice([1, 2, 3, 4, 5, 11])),
                    "denom": float(g.choice([10, 14, 70])),
                    "partyid": float(g.integers(0, 8)),
                    "polviews": None if i % 17 == 0 else float(g.integers(1, 8)),
                    "wtssall": float(g.uniform(0.4, 2.5)) if year < 2021 else None,
                    "wtssnr": float(g.uniform(0.4, 2.5)),
                    "wtssps": float(g.uniform(0.3, 3.0)),
                    "abany": float(g.integers(1, 3)),
                    "happy": float(g.integers(1, 4)),
                }
            )
    return pl.DataFrame(rows, schema={k: pl.Float64 for k in rows[0]})


def gss_stata_zip(frame: pl.DataFrame | None = None) -> bytes:
    """``GSS_stata.zip`` as NORC serves it: the cumulative .dta file (value labels) and a codebook."""
    import pyreadstat

    df = gss_frame() if frame is None else frame
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gss7224_r1.dta"
        pyreadstat.write_dta(
            df,
            str(path),
            file_label="GSS 1972-2024 Cumulative Data (release 1)",
            variable_value_labels={k: v for k, v in GSS_LABELS.items() if k in df.columns},
            version=14,
        )
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.write(path, "GSS_stata/gss7224_r1.dta")
            zf.writestr("GSS_stata/Release Notes 7224.pdf", b"%PDF-1.4 not really")
        return buf.getvalue()


# -- everything at the official locations ---------------------------------------------------------------

QUESTIONS = [
    "Should the government raise taxes on the very rich?",
    "Is it ever right to break the law to protest?",
    "Should parents be allowed to homeschool their children freely?",
    "Do you think religion makes society better or worse?",
    "Should abortion be legal in most cases, in your view?",
    "Is it fair that college admissions consider family legacy?",
    "Should people be allowed to own assault style rifles?",
    "Is eating meat morally wrong in the modern world?",
    "Should the voting age be lowered to sixteen years old?",
    "Is nuclear power a good answer to climate change?",
    "Should immigration to this country be reduced a lot?",
    "Hello",
]


def serve_origins(
    server: FileServer, states: tuple[str, ...] = ("50", "38", "10", "56"), households: int = 60
) -> dict[str, bytes]:
    """Put every public origin's files on ``server`` (official paths below ``/<host>``); returns them."""
    from persona_testbed.data.census_urls import dictionary_file, pums_file
    from persona_testbed.data.origins import GSS_URL, PRISM_URL
    from persona_testbed.data.states import BY_FIPS

    served: dict[str, bytes] = {}
    for k, fips in enumerate(states):
        person, housing = pums_records(fips, households, seed=k)
        abbr = BY_FIPS[fips].abbr
        served[pums_file(2024, "p", abbr).url] = pums_zip("p", fips, person)
        served[pums_file(2024, "h", abbr).url] = pums_zip("h", fips, housing)
    served[dictionary_file(2024).url] = DICTIONARY_EXCERPT.read_bytes()
    served[PRISM_URL] = prism_jsonl(QUESTIONS)
    served[GSS_URL] = gss_stata_zip()
    for url, data in served.items():
        server.add_official(url, data)
    return served
