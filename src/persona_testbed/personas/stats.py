"""``personas stats``: provenance per field, rejection rates by reason (rules and judge), diversity."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from .diversity import diversity_report, near_duplicates
from .enrich import PAPER_JUDGE_REJECTION_RATE
from .io import read_personas, resolve_personas_path
from .record import PERSONA_FIELDS
from .resample import REPORT_NAME, _load_json, find_sample_report


def persona_stats(path: str | Path) -> dict[str, Any]:
    """Provenance counts per field, rejection rates by reason (rules + judge), diversity, near-duplicates."""
    file = resolve_personas_path(path)
    personas = read_personas(file)
    prov = {name: dict(Counter(p.fields[name].provenance for p in personas)) for name in PERSONA_FIELDS}
    enrich_report = _load_json(file.parent / REPORT_NAME)
    rules = (enrich_report or {}).get("rules") or (find_sample_report(file) or {}).get("rules")
    judge = (enrich_report or {}).get("judge")
    rejections: list[dict[str, Any]] = []
    if isinstance(rules, dict) and isinstance(rules.get("rejections"), dict):
        checked = int(rules.get("checked") or 0)
        by_rule = {k: int(v) for k, v in rules["rejections"].items()}
        for rule, n in sorted(by_rule.items(), key=lambda kv: (-kv[1], kv[0])):
            if n:
                rejections.append(
                    {
                        "source": "rules",
                        "reason": rule,
                        "rejected": n,
                        "checked": checked,
                        "rate": n / checked if checked else None,
                    }
                )
        total = sum(by_rule.values())
        rejections.append(
            {
                "source": "rules",
                "reason": "(all rules, breaches)",
                "rejected": total,
                "checked": checked,
                "rate": total / checked if checked else None,
            }
        )
    if judge:
        for fname, n in judge.get("by_field", {}).items():
            rejections.append(
                {
                    "source": "llm judge",
                    "reason": f"conflict: {fname}",
                    "rejected": n,
                    "checked": judge["judged"],
                    "rate": n / judge["judged"] if judge["judged"] else None,
                }
            )
        rejections.append(
            {
                "source": "llm judge",
                "reason": "(inconsistent)",
                "rejected": judge["rejected"],
                "checked": judge["judged"],
                "rate": judge["rejection_rate"],
            }
        )
    return {
        "file": str(file),
        "personas": len(personas),
        "provenance": prov,
        "rejections": rejections,
        "paper_judge_rejection_rate": PAPER_JUDGE_REJECTION_RATE,
        "diversity": diversity_report(personas),
        "near_duplicates": near_duplicates(personas),
        "enrich_failures": len((enrich_report or {}).get("failures", [])),
    }


def enrich_summary_rows(report: dict[str, Any]) -> list[tuple[str, Any]]:
    """The figures ``personas enrich`` prints, from an ``enrich_report.json``."""
    c, calls, judge = report["counts"], report["calls"], report.get("judge") or {}
    div = report["diversity"]["overall"]
    return [
        ("input personas", c["input"]),
        ("written", c["output"]),
        ("accepted first try", c["accepted_first_try"]),
        ("resampled and accepted", c["resampled_and_accepted"]),
        ("failed", c["failed"]),
        ("calls per persona", calls["per_persona"]),
        ("cached calls", calls["cached"]),
        ("judge rejection rate", judge.get("rejection_rate")),
        ("paper rejection rate", judge.get("paper_reference_rate")),
        ("distinct-2", div["distinct_2"]),
        ("mean pairwise TF-IDF distance", div["mean_pairwise_tfidf_distance"]),
        ("near-duplicates", len(report["near_duplicates"])),
    ]
