"""Builds a synthetic run directory: every artifact the report reads, written by hand (no stage code runs)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from factories import make_persona

EVIL = "<script>window.__pwned = 1; document.title = 'PWNED'</script>"


def write_synthetic_run(
    root: Path,
    *,
    evil: bool = True,
    stages: tuple[str, ...] = ("census", "personas", "prompts", "feedback", "bench"),
) -> Path:
    """A run directory with manifest, config, call log and the artifacts of ``stages``."""
    root.mkdir(parents=True, exist_ok=True)
    records = {}
    for s in stages:
        records[s] = {
            "status": "done",
            "items": 4,
            "ok": 3,
            "failed": 1,
            "duration_s": 1.5,
            "failures": [{"item": f"{s}-item-9", "reason": "gave up after 5 attempts: HTTP 503"}],
            "artifacts": {},
        }
    manifest = {
        "package_version": "0.1.0",
        "name": "synthetic",
        "seed": 7,
        "status": "done",
        "models": {"feedback": "embedded", "judge": "embedded"},
        "data": {"census/acs/2024/1-Year-extract/p_10.parquet": "ab" * 32},
        "stage_order": ["census", "personas", "prompts", "feedback", "bench", "report"],
        "stages": records,
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    (root / "config.toml").write_text('name = "synthetic"\nseed = 7\n')
    conn = sqlite3.connect(root / "calls.db")
    conn.execute(
        "CREATE TABLE calls (id TEXT, purpose TEXT, status TEXT, prompt_tokens INT,"
        " completion_tokens INT, latency_s REAL)"
    )
    conn.executemany(
        "INSERT INTO calls VALUES (?,?,?,?,?,?)",
        [
            ("c1", "feedback.rejected", "ok", 100, 50, 0.5),
            ("c2", "feedback.critique", "failed", 0, 0, 0.1),
            ("c3", "bench.main.judge", "ok", 80, 20, 0.2),
        ],
    )
    conn.commit()
    conn.close()
    if "personas" in stages:
        (root / "personas").mkdir(exist_ok=True)
        (root / "personas" / "fidelity.json").write_text(
            json.dumps(
                {
                    "n": 3,
                    "fields": [
                        {
                            "field": "sex",
                            "tvd": 0.04,
                            "p_value": 0.61,
                            "source": {"Male": 0.49, "Female": 0.51},
                            "sample": {"Male": 0.45, "Female": 0.55},
                            "provenance": {"census": 3},
                        },
                        {
                            "field": "religion",
                            "tvd": 0.12,
                            "p_value": 0.2,
                            "source": {"Catholic": 0.2, "None": 0.3, EVIL if evil else "Other": 0.5},
                            "sample": {"Catholic": 0.3, "None": 0.3, EVIL if evil else "Other": 0.4},
                            "provenance": {"survey": 3},
                        },
                    ],
                    "intersections": [{"name": "age band × sex", "tvd": 0.2, "p_value": 0.3}],
                }
            )
        )
    if "personas" in stages:
        (root / "personas").mkdir(exist_ok=True)
        ps = [
            make_persona("p-aaa", lifestyle=EVIL if evil else "quiet"),
            make_persona("p-bbb", serialno="2024HU0000002", sex="Male", religion="None"),
            make_persona("p-ccc", serialno="2024HU0000003", sex="Male"),
        ]
        (root / "personas" / "personas.jsonl").write_text(
            "".join(json.dumps(p.model_dump(mode="json")) + "\n" for p in ps)
        )
    if "prompts" in stages:
        (root / "prompts").mkdir(exist_ok=True)
        (root / "prompts" / "summary.json").write_text(
            json.dumps(
                {
                    "funnel": [
                        {"step": "loaded", "count": 8011},
                        {"step": "has question mark", "count": 5000},
                        {"step": "≥ 5 words", "count": 4500},
                        {"step": "controversial", "count": 3868},
                    ],
                    "clusters": [
                        {"cluster": 0, "label": "abortion, rights", "size": 5, "train": 4, "held_out": 1},
                        {"cluster": 1, "label": "tax, money", "size": 3, "train": 2, "held_out": 1},
                    ],
                }
            )
        )
    if "feedback" in stages:
        (root / "feedback").mkdir(exist_ok=True)
        pairs = [
            {
                "persona_id": "p-aaa",
                "prompt_id": "q1",
                "question": "Should taxes rise?",
                "split": "train",
                "rejected": "Maybe.",
                "critique": "Too vague for me.",
                "chosen": EVIL if evil else "Yes, modestly.",
                "status": "ok",
            },
            {
                "persona_id": "p-bbb",
                "prompt_id": "q2",
                "question": "Is religion good for society?",
                "split": "held_out",
                "rejected": "It depends.",
                "critique": "Be direct.",
                "chosen": "Often, yes.",
                "status": "ok",
            },
            {
                "persona_id": "p-ccc",
                "prompt_id": "q3",
                "question": "Guns?",
                "split": "test",
                "rejected": "",
                "critique": "",
                "chosen": "",
                "status": "failed",
                "error": "gave up after 5 attempts",
            },
        ]
        (root / "feedback" / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    if "bench" in stages:
        (root / "bench").mkdir(exist_ok=True)
        (root / "bench" / "summary.json").write_text(
            json.dumps(
                {
                    "main": {
                        "modes": [
                            {"mode": "baseline", "accuracy": 0.4, "ci_low": 0.2, "ci_high": 0.6, "n": 10},
                            {"mode": "persona", "accuracy": 0.7, "ci_low": 0.5, "ci_high": 0.9, "n": 10},
                        ]
                    },
                    "passk": {"k": [1, 2, 3], "pass_at_k": [0.3, 0.5, 0.6]},
                    "loo": {
                        "full_accuracy": 0.6,
                        "attributes": [
                            {"attribute": "age", "kappa": 0.8, "ci_low": 0.5, "ci_high": 1.0, "n": 5},
                            {"attribute": "religion", "kappa": 0.2, "ci_low": -0.1, "ci_high": 0.5, "n": 5},
                        ],
                    },
                    "intersections": {
                        "max_gap": 0.3,
                        "groups": [
                            {"group": "women 65+", "accuracy": 0.8, "ci_low": 0.6, "ci_high": 1.0, "n": 5},
                            {"group": "men under 30", "accuracy": 0.5, "ci_low": 0.2, "ci_high": 0.8, "n": 5},
                        ],
                    },
                    "fidelity": {
                        "accuracy": 0.75,
                        "kappa": 0.5,
                        "position_bias": 0.1,
                        "mean_diagonal_rank": 1.5,
                        "n": 8,
                        "labels": ["p-aaa", "p-bbb"],
                        "matrix": [[0.8, 0.2], [0.3, 0.7]],
                    },
                }
            )
        )
    return root


@pytest.fixture
def synthetic_run(tmp_path) -> Path:
    """A synthetic run directory with every artifact (import this fixture into a test module)."""
    return write_synthetic_run(tmp_path / "run")
