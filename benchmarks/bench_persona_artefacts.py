"""Issue 12 persona figures: imputation / survey / Big Five artefacts of a sampled persona set.

Usage: python benchmarks/bench_persona_artefacts.py DIR [DIR ...] [--data-dir /work/shared/data] [--json]

Each DIR holds ``personas sample`` output (e.g. ``personas sample --n 2000 --seed 0 --out DIR``). Printed
per directory:

* marital status vs household (item 5), for personas whose marital status is imputed and for those whose
  record has it (census-coded): married and living alone; unmarried, aged 35+, in a married-couple
  household; each as a share of that group, with the group's size.
* GSS cells (item 6, ``fidelity.survey_cells``): respondents in the cell each persona was drawn from
  (count and Kish effective number), share from cells under 5 respondents, back-off level mix, maximum
  reuse of one respondent; Jewish share among personas aged 18-29 vs the weighted GSS respondents 18-29.
* ancestry / place of birth (item 7): provenance mix and the most common values.
* Big Five (item 8): the reference, share of "High"-or-above Agreeableness per norm group (equal across
  groups under the ``group`` reference) and the max per-domain TVD against the expected level shares.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from persona_testbed.personas.fidelity import bigfive_fidelity, household_consistency, survey_cells  # noqa: E402
from persona_testbed.personas.io import read_personas  # noqa: E402
from persona_testbed.personas.record import Persona  # noqa: E402
from persona_testbed.personas.survey import load_pool  # noqa: E402

HIGH = ("High", "Very High", "Extremely High")


def jewish_18_29(personas: list[Persona], pool: Any) -> dict[str, Any]:
    young = [p for p in personas if p.value("age").isdigit() and 18 <= int(p.value("age")) <= 29]
    frame = pool.frame.filter(pool.frame["ageband"] == "18-29")
    gss = float(frame.filter(frame["religion"] == "Jewish")["weight"].sum() / frame["weight"].sum())
    share = sum(p.value("religion") == "Jewish" for p in young) / len(young) if young else None
    return {
        "personas_18_29": len(young),
        "sample": round(share, 4) if share is not None else None,
        "gss": round(gss, 4),
    }


def bigfive_by_group(personas: list[Persona], data_dir: str | None) -> dict[str, Any]:
    by: dict[str, Counter] = {}
    refs = Counter()
    for p in personas:
        d = p.fields["big five scores"].detail
        refs[d.get("reference", "group (before the option)")] += 1
        level = [x for x in p.value("big five scores").split(", ") if x.startswith("Agreeableness")][0]
        by.setdefault(d.get("norm_group", "?"), Counter())[level.split(": ", 1)[1] in HIGH] += 1
    fid = bigfive_fidelity(personas, data_dir)
    return {
        "reference": dict(refs),
        "agreeableness_high_share": {g: round(c[True] / sum(c.values()), 3) for g, c in sorted(by.items())},
        "max_domain_tvd": fid["tvd"],
    }


def figures(directory: Path, data_dir: str | None) -> dict[str, Any]:
    personas = read_personas(directory)
    year = personas[0].source.year
    report_path = directory / "personas_report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    pool = load_pool(str(data_dir), year)
    return {
        "dir": str(directory),
        "n": len(personas),
        "year": year,
        "household": household_consistency(personas),
        "gss": {
            **survey_cells(personas, pool, (report.get("survey") or {}).get("min_cell")),
            "jewish_18_29": jewish_18_29(personas, pool),
        },
        "ancestry": {
            "provenance": dict(Counter(p.fields["ancestry"].provenance for p in personas)),
            "top": Counter(p.value("ancestry") for p in personas).most_common(4),
        },
        "place_of_birth": {
            "provenance": dict(Counter(p.fields["place of birth"].provenance for p in personas)),
            "top": Counter(p.value("place of birth") for p in personas).most_common(3),
        },
        "big_five": bigfive_by_group(personas, data_dir),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--data-dir", default="/work/shared/data")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    for d in args.dirs:
        fig = figures(d, args.data_dir)
        if args.json:
            print(json.dumps(fig))
            continue
        print(f"== {fig['dir']} ({fig['n']} personas, {fig['year']})")
        for prov, row in fig["household"].items():
            print(
                f"  marital status {prov:8s} n={row['personas']:5d}  married+alone {row['married_living_alone']}"
                f"  unmarried 35+ in married-couple hh {row['unmarried_35plus_in_married_couple_household']}"
            )
        g = fig["gss"]
        print(
            f"  GSS min_cell={g['min_cell']} respondents={g['respondents']} max reuse={g['max_reuse']} "
            f"cells<5: {g['share_in_cells_under_5']} cell respondents {g['cell_respondents']} "
            f"effective {g['cell_effective_respondents']}"
        )
        print("  back-off:", ", ".join(f"{b['level']}: {b['share']}" for b in g["backoff_levels"]))
        print("  Jewish 18-29:", g["jewish_18_29"])
        print("  ancestry:", fig["ancestry"])
        print("  place of birth:", fig["place_of_birth"])
        print("  Big Five:", fig["big_five"])


if __name__ == "__main__":
    main()
