"""Start-up cost of ``personas sample``: the LLM enrichment commands load only when named."""

from __future__ import annotations

import subprocess
import sys


def test_personas_cli_does_not_import_enrichment_or_scipy_stats():
    # The session (run lock + call store + clients) loads the LLM client module (~0.06 s); the bench,
    # feedback and prompts stages, the enrichment commands and scipy.stats stay out of ``personas sample``.
    code = (
        "import sys, persona_testbed.cli.personas, persona_testbed.personas.sample; "
        "print(sorted(m for m in ('persona_testbed.cli.enrich', 'persona_testbed.bench.runner', "
        "'persona_testbed.feedback.generate', 'persona_testbed.prompts.build', 'openai', "
        "'scipy.stats') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_lazy_commands_listed_and_runnable(cli):
    r = cli("personas", "--help")
    assert r.exit_code == 0
    for name in ("sample", "show", "enrich", "stats"):
        assert name in r.stdout
    r = cli("personas", "stats", "--help")
    assert r.exit_code == 0 and "Provenance counts" in r.stdout
    r = cli("personas", "enrich", "--help")
    assert r.exit_code == 0 and "--model" in r.stdout
