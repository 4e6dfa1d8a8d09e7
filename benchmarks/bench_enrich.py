"""Enrichment throughput: personas per minute and calls per persona.

1. The embedded SmolLM2-135M model in-process (enrich + judge, no resampling): wall-clock personas/min.
2. The pipeline's own overhead: a loopback OpenAI-compatible stub (fixed latency, scripted JSON replies,
   every 10th persona judged inconsistent and resampled) at concurrency 16.

Personas come from the 2018 census mirror when ../shared/data is present, else from a synthetic record.
Usage: python benchmarks/bench_enrich.py [--n 4] [--stub-n 300] [--max-chars 120] [--ablate-categories]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import time
from pathlib import Path

import sklearn.feature_extraction.text  # noqa: F401  (imported up front: timings exclude the import)

from persona_testbed.llm import LLMClient
from persona_testbed.llm.stub_server import StubServer
from persona_testbed.personas.enrich import EnrichOptions, enrich_personas
from persona_testbed.personas.judge import JUDGE_SYSTEM
from persona_testbed.personas.record import PERSONA_FIELDS, FieldValue, Persona, SourceKey

ROOT = Path(__file__).resolve().parents[1]


def mirror() -> Path | None:
    for c in (os.environ.get("PERSONA_TESTBED_MIRROR"), ROOT.parent / "shared" / "data", "/work/shared/data"):
        if c and (Path(c) / "SHA256SUMS").exists():
            return Path(c)
    return None


def synthetic(n: int) -> list[Persona]:
    out = []
    for i in range(n):
        fields = {
            name: FieldValue(value=f"{name} value {i % 7}", provenance="census") for name in PERSONA_FIELDS
        }
        fields["detailed job description"] = FieldValue(value="pending", provenance="pending")
        for name in ("defining quirks", "mannerisms", "personal time", "lifestyle"):
            fields[name] = FieldValue(value=f"tag {i}", provenance="procedural")
        src = SourceKey(year=2018, state="33", serialno=f"S{i}", sporder=1)
        out.append(
            Persona(
                id=f"p-bench{i}",
                source=src,
                fields=fields,
                tags={"values": ["honesty"], "hobbies": ["chess"], "quirks": ["hums"]},
            )
        )
    return out


def personas(n: int) -> tuple[list[Persona], str]:
    m = mirror()
    if m is None:
        return synthetic(n), "synthetic"
    from persona_testbed.personas.sample import sample_personas

    return sample_personas(n, 0, source="acs2018", data_dir=m).personas, "census acs2018 (mirror)"


async def embedded(ps: list[Persona], max_chars: int, categories: int = 3) -> dict:
    client = LLMClient("embedded", concurrency=1)
    warm = time.perf_counter()
    from persona_testbed.llm import ChatParams

    await client.chat([{"role": "user", "content": "hi"}], params=ChatParams(max_tokens=1))  # load the model
    load_s = time.perf_counter() - warm
    t0 = time.perf_counter()
    res = await enrich_personas(
        ps,
        client,
        0,
        judge_client=client,
        progress=False,
        options=EnrichOptions(max_chars=max_chars, categories_per_persona=categories),
    )
    dt = time.perf_counter() - t0
    await client.aclose()
    r = res.report
    return {
        "personas": len(ps),
        "seconds": round(dt, 2),
        "model_load_s": round(load_s, 2),
        "personas_per_min": round(len(ps) / dt * 60, 2),
        "calls_per_persona": r["calls"]["per_persona"],
        "completion_tokens_per_persona": round(r["calls"]["completion_tokens"] / len(ps), 1),
        "accepted": r["counts"]["accepted_first_try"],
        "failed": r["counts"]["failed"],
        "failed_by_stage": r["counts"]["failed_by_stage"],
        "failure_errors": [f["error"][:160] for f in r["failures"]],
        "judge_rejection_rate": r["judge"]["rejection_rate"],
        "distinct_2": r["diversity"]["overall"]["distinct_2"],
        "tfidf_distance": r["diversity"]["overall"]["mean_pairwise_tfidf_distance"],
    }


def scripted(request: dict) -> str:
    msgs = request["messages"]
    user = [m["content"] for m in msgs if m["role"] == "user"][0]
    if msgs[0]["content"] == JUDGE_SYSTEM:
        bad = "value 3\n" in user.split("age: ", 1)[1][:12] if "age: " in user else False
        return json.dumps(
            {"consistent": not bad, "conflicting_fields": ["age"] if bad else [], "reason": "bench"}
        )
    keys = re.findall(r"^- ([a-z_]+):", user.split("Write these JSON keys", 1)[1], flags=re.M)
    return json.dumps({k: f"{k} prose for {hash(user) % 9973}" for k in keys})


async def stub(n: int, latency_s: float) -> dict:
    ps = synthetic(n)
    counter = iter(range(10**9))

    def resample(original: Persona, attempt: int) -> Persona:
        p = synthetic(1)[0]
        return p.model_copy(
            update={"source": SourceKey(year=2018, state="33", serialno=f"R{next(counter)}", sporder=1)}
        )

    with StubServer(responder=scripted, latency_s=latency_s) as srv:
        c = LLMClient("openai/bench", base_url=srv.base_url, api_key="k", concurrency=16)
        t0 = time.perf_counter()
        res = await enrich_personas(ps, c, 0, judge_client=c, resample=resample, progress=False)
        dt = time.perf_counter() - t0
        await c.aclose()
    r = res.report
    ideal = r["calls"]["total"] * latency_s / 16
    return {
        "personas": n,
        "latency_s": latency_s,
        "concurrency": 16,
        "seconds": round(dt, 2),
        "personas_per_min": round(n / dt * 60, 1),
        "calls_per_persona": round(r["calls"]["per_persona"], 3),
        "judge_rejection_rate": round(r["judge"]["rejection_rate"], 4),
        "resampled": r["counts"]["resampled_and_accepted"],
        "failed": r["counts"]["failed"],
        "efficiency_vs_ideal": round(ideal / dt, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=4, help="personas for the embedded-model run")
    ap.add_argument("--stub-n", type=int, default=300, help="personas for the stub-server run")
    ap.add_argument(
        "--max-chars", type=int, default=120, help="longest value per written field (embedded run)"
    )
    ap.add_argument("--latency", type=float, default=0.05, help="stub server latency per call (s)")
    ap.add_argument(
        "--ablate-categories",
        action="store_true",
        help="also run the embedded model without idiosyncratic categories (diversity ablation)",
    )
    args = ap.parse_args()
    ps, origin = personas(args.n)
    out = {
        "embedded": {
            "source": origin,
            "max_chars": args.max_chars,
            **asyncio.run(embedded(ps, args.max_chars)),
        },
        "stub": asyncio.run(stub(args.stub_n, args.latency)),
    }
    if args.ablate_categories:
        out["embedded_no_categories"] = asyncio.run(embedded(ps, args.max_chars, categories=0))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
