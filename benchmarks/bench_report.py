"""Report size and first paint at paper scale: 100 / 1,586 personas and 1,000 / 10,000 pairs.

Writes a synthetic run directory per scale (personas with census, survey and LLM-written fields of
realistic length; pairs with ~900-character answers and ~250-character critiques over 400 questions), builds
its report with ``write_report`` and opens it in headless Chromium (the flags of the browser tests). Prints
the file size, the render time in Python, Chromium's first contentful paint and the time until the persona
and pair browsers are drawn (data unpacked, first page shown), both from navigation start.

    python benchmarks/bench_report.py [--json] [--repeats 3]

Goals (issue 16): ≤ 8 MB and first paint ≤ 2 s at 1,586 personas and 10,000 pairs on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import tempfile
from pathlib import Path

from persona_testbed.personas.record import PERSONA_FIELDS, FieldValue, Persona, SourceKey
from persona_testbed.pipeline.view import write_report

CHROMIUM = Path("/usr/bin/chromium")
WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at which but have "
    "an they you were her she there been one all we their has would when if so no will can more other what "
    "time people about into could them only some these two may first then do any like my now over such our "
    "man me even most made after also did many before must through back years where much your way well down "
    "should because each just those family community faith tradition budget health school church neighbors "
    "values career savings children parents retirement insurance rent mortgage garden veterans union taxes "
    "freedom responsibility balance practical honest careful local rural urban small business"
).split()
CHOICES = {
    "age": [str(a) for a in range(18, 95)],
    "sex": ["Female", "Male"],
    "race": [
        "White alone",
        "Black or African American alone",
        "Asian alone",
        "Two or More Races",
        "Some Other Race alone",
        "American Indian alone",
    ],
    "education": [
        "High school diploma",
        "Bachelor's degree",
        "Master's degree",
        "Some college, no degree",
        "Associate's degree",
        "Doctorate degree",
        "Grade 9",
        "Professional degree",
    ],
    "occupation category": [
        f"Occupation {i}: " + w
        for i, w in enumerate(
            [
                "registered nurses",
                "software developers",
                "farmers and ranchers",
                "retail salespersons",
                "truck drivers",
                "elementary teachers",
                "cashiers",
                "janitors",
                "accountants",
                "electricians",
                "cooks",
                "lawyers",
                "police officers",
                "carpenters",
                "physicians",
                "customer service",
            ]
        )
    ],
    "religion": ["Catholic", "Protestant", "None", "Jewish", "Muslim", "Buddhist", "Other"],
}
LLM_FIELDS = ("detailed job description", "defining quirks", "mannerisms", "personal time", "lifestyle")
SURVEY_FIELDS = ("ideology", "political views", "religion", "big five scores")


def _text(rng: random.Random, n_chars: int) -> str:
    words: list[str] = []
    total = 0
    while total < n_chars:
        w = rng.choice(WORDS)
        words.append(w)
        total += len(w) + 1
    return " ".join(words).capitalize() + "."


def _persona(i: int, rng: random.Random) -> Persona:
    fields = {}
    for name in PERSONA_FIELDS:
        if name in LLM_FIELDS:
            fields[name] = FieldValue(
                value=_text(rng, rng.randint(120, 300)),
                provenance="llm",
                detail={"model": "embedded", "call_id": f"c{rng.getrandbits(48):012x}"},
            )
        elif name in SURVEY_FIELDS:
            fields[name] = FieldValue(
                value=rng.choice(CHOICES.get(name, ["Moderate", "Liberal", "Conservative", "Independent"])),
                provenance="survey",
                detail={"source": "GSS 2022", "year": 2022},
            )
        else:
            values = CHOICES.get(name) or [f"{name} value {k}" for k in range(8)]
            fields[name] = FieldValue(
                value=rng.choice(values),
                provenance="census",
                detail={"column": name.upper().replace(" ", "_")[:6]},
            )
    return Persona(
        id=f"p-{i:05d}",
        source=SourceKey(year=2023, state=f"{rng.randint(1, 56):02d}", serialno=f"2023HU{i:07d}", sporder=1),
        fields=fields,
    )


def build_run(root: Path, n_personas: int, n_pairs: int, seed: int = 0) -> Path:
    """A run directory with every artifact the report reads, at the given scale."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    manifest = {
        "package_version": "bench",
        "name": f"report-{n_personas}-{n_pairs}",
        "seed": seed,
        "status": "done",
        "models": {"default": "embedded"},
        "stage_order": ["census", "personas", "prompts", "feedback", "bench", "report"],
        "stages": {
            s: {"status": "done", "items": 1, "ok": 1, "failed": 0, "duration_s": 1.0}
            for s in ("census", "personas", "prompts", "feedback")
        },
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    (root / "config.toml").write_text(f'name = "report-bench"\nseed = {seed}\n')
    conn = sqlite3.connect(root / "calls.db")
    conn.execute(
        "CREATE TABLE calls (id TEXT, purpose TEXT, status TEXT, prompt_tokens INT, completion_tokens INT,"
        " latency_s REAL, queue_s REAL)"
    )
    conn.commit()
    conn.close()
    (root / "personas").mkdir(exist_ok=True)
    personas = [_persona(i, rng) for i in range(n_personas)]
    with (root / "personas" / "personas.jsonl").open("w") as fh:
        for p in personas:
            fh.write(json.dumps(p.model_dump(mode="json")) + "\n")
    fields = []
    for name in PERSONA_FIELDS:
        vals = CHOICES.get(name) or [f"{name} value {k}" for k in range(8)]
        share = {v: 1 / len(vals) for v in vals}
        fields.append(
            {
                "field": name,
                "tvd": rng.uniform(0.01, 0.1),
                "p_value": rng.random(),
                "source": share,
                "sample": share,
                "provenance": {"census": n_personas},
            }
        )
    (root / "personas" / "fidelity.json").write_text(json.dumps({"n": n_personas, "fields": fields}))
    questions = [_text(rng, rng.randint(60, 180)).rstrip(".") + "?" for _ in range(400)]
    (root / "feedback").mkdir(exist_ok=True)
    with (root / "feedback" / "pairs.jsonl").open("w") as fh:
        for k in range(n_pairs):
            q = rng.randrange(len(questions))
            fh.write(
                json.dumps(
                    {
                        "persona_id": personas[k % n_personas].id,
                        "prompt_id": f"q{q}",
                        "question": questions[q],
                        "split": rng.choice(["train", "test", "held_out"]),
                        "rejected": _text(rng, rng.randint(500, 1200)),
                        "critique": _text(rng, rng.randint(150, 350)),
                        "chosen": _text(rng, rng.randint(600, 1400)),
                        "status": "ok",
                        "flags": ["length_out_of_band"] if rng.random() < 0.05 else [],
                    }
                )
                + "\n"
            )
    return root


def first_paint(report: Path, profile: Path) -> tuple[float, float]:
    """(first contentful paint, browsers drawn) in ms from navigation start, headless Chromium."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    opts = Options()
    opts.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--window-size=1280,2000",
        f"--user-data-dir={profile}",
    ):
        opts.add_argument(flag)
    driver = webdriver.Chrome(
        service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=opts
    )
    try:
        driver.get(report.as_uri())
        WebDriverWait(driver, 120).until(
            lambda d: d.execute_script("return document.documentElement.getAttribute('data-browsers-ready')")
        )
        fcp = driver.execute_script(
            "var e = performance.getEntriesByName('first-contentful-paint'); return e.length ? e[0].startTime : null"
        )
        ready = float(
            driver.execute_script("return document.documentElement.getAttribute('data-browsers-ready')")
        )
        return float(fcp or "nan"), ready
    finally:
        driver.quit()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--repeats", type=int, default=3, help="Chromium loads per report (median reported)")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n_personas, n_pairs in ((100, 1000), (1586, 10000)):
            run = build_run(Path(tmp) / f"run-{n_personas}", n_personas, n_pairs)
            info = write_report(run)
            report = Path(info["report"])
            row = {
                "personas": n_personas,
                "pairs": n_pairs,
                "bytes": info["bytes"],
                "mb": round(info["bytes"] / 1e6, 2),
                "render_s": info["render_s"],
            }
            if CHROMIUM.exists():
                loads = [
                    first_paint(report, Path(tmp) / f"profile-{n_personas}-{k}") for k in range(args.repeats)
                ]
                row["first_paint_ms"] = round(statistics.median(x[0] for x in loads))
                row["browsers_ready_ms"] = round(statistics.median(x[1] for x in loads))
            rows.append(row)
    if args.json:
        print(json.dumps({"cores": os.cpu_count(), "rows": rows}, indent=2))
        return
    print(f"report size and first paint (headless Chromium, {os.cpu_count()} cores)")
    print(
        f"{'personas':>9} {'pairs':>7} {'size MB':>8} {'render s':>9} {'first paint ms':>15} {'browsers ms':>12}"
    )
    for r in rows:
        print(
            f"{r['personas']:>9} {r['pairs']:>7} {r['mb']:>8} {r['render_s']:>9} "
            f"{r.get('first_paint_ms', '-'):>15} {r.get('browsers_ready_ms', '-'):>12}"
        )


if __name__ == "__main__":
    main()
