"""Helpers for the enrichment / judge tests (no tests here): persona builders and a scripted model.

Import with ``from test_enrich_support import ...`` after putting this directory on ``sys.path``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from factories import make_persona
from persona_testbed.personas.judge import JUDGE_SYSTEM
from persona_testbed.personas.record import FieldValue, Persona, SourceKey

PROSE = ("defining quirks", "mannerisms", "personal time", "lifestyle")
TAGS = {
    "values": ["honesty", "family"],
    "quirks": ["collects vintage maps"],
    "mannerisms": ["taps pen when thinking"],
    "hobbies": ["gardening", "birdwatching"],
}


def procedural_persona(
    pid: str,
    serialno: str = "2024HU0000001",
    *,
    ancestry: str = "German",
    survey: bool = True,
    sporder: int = 1,
    age: str = "34",
) -> Persona:
    """A persona as the census sampler leaves it: job pending, prose procedural (from tags), survey
    fields from GSS (or pending when ``survey=False``), one derived and one imputed field."""
    p = make_persona(pid, serialno, ancestry=ancestry, age=age)
    fields = dict(p.fields)
    fields["detailed job description"] = FieldValue(value="pending", provenance="pending")
    for name in PROSE:
        fields[name] = FieldValue(
            value=f"procedural {name} of {pid}", provenance="procedural", detail={"tags": name}
        )
    for name in ("ideology", "political views", "religion"):
        fields[name] = (
            FieldValue(value=p.fields[name].value, provenance="survey", detail={"gss_id": 7})
            if survey
            else FieldValue(value="pending", provenance="pending")
        )
    fields["household type"] = FieldValue(
        value="Married couple household", provenance="derived", detail={"from": "RELSHIPP"}
    )
    fields["income"] = FieldValue(value="$52,000", provenance="imputed", detail={"donor": {"serialno": "X"}})
    fields["big five scores"] = FieldValue(
        value=p.fields["big five scores"].value, provenance="procedural", detail={"scores": {"O": 60}}
    )
    return p.model_copy(
        update={
            "fields": fields,
            "tags": {k: list(v) for k, v in TAGS.items()},
            "source": SourceKey(year=2024, state="39", serialno=serialno, sporder=sporder),
        }
    )


def requested_keys(user_message: str) -> list[str]:
    """The JSON keys an enrichment prompt asks for (lines ``- key: guidance`` after 'Write these')."""
    tail = user_message.split("Write these JSON keys", 1)[1]
    return re.findall(r"^- ([a-z_]+):", tail, flags=re.M)


def fact(user_message: str, name: str) -> str:
    m = re.search(rf"^{re.escape(name)}: (.*)$", user_message, flags=re.M)
    return m.group(1) if m else ""


def scripted_reply(
    messages: list[dict[str, str]],
    *,
    inconsistent: Callable[[str], bool] = lambda t: False,
    same_text: bool = False,
) -> str:
    """A deterministic fake model: valid enrichment JSON (text depends on the persona unless
    ``same_text``) and judge verdicts that say inconsistent when ``inconsistent(profile_text)``."""
    system = messages[0]["content"]
    user = [m["content"] for m in messages if m["role"] == "user"][0]
    if system == JUDGE_SYSTEM:
        if inconsistent(user):
            return json.dumps(
                {
                    "consistent": False,
                    "conflicting_fields": ["ancestry", "lifestyle"],
                    "reason": "ancestry conflicts with lifestyle",
                }
            )
        return json.dumps({"consistent": True, "conflicting_fields": [], "reason": "fine"})
    themes = re.search(r"weave into the prose: (.*)\.", user).group(1)
    who = "" if same_text else f"{fact(user, 'ancestry')} {fact(user, 'age')} {themes}"
    return json.dumps({k: f"{k.replace('_', ' ')} prose {who}".strip() for k in requested_keys(user)})


def stub_responder(**kw: Any) -> Callable[[dict[str, Any]], str]:
    """``scripted_reply`` as a ``StubServer`` responder (request JSON in, reply text out)."""
    return lambda request: scripted_reply(request["messages"], **kw)
