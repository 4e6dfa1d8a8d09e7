"""The HTML report: built from artifact files alone; escaped; self-contained; sections say when missing."""

from __future__ import annotations

import re

from report_fixtures import EVIL, synthetic_run, write_synthetic_run  # noqa: F401 (fixture)

from persona_testbed.pipeline.view import load_run, write_report
from persona_testbed.report.build import decode_browser_data, render_html


def render_report(path, **kwargs):
    return render_html(load_run(path, **kwargs))


def embedded(html: str) -> dict:
    """The persona and pair browsers' data block of a report (decoded)."""
    m = re.search(r'<script type="application/json" id="report-data">"([A-Za-z0-9+/=]*)"</script>', html)
    assert m, "no embedded data block"
    return decode_browser_data(m.group(1))


def test_report_has_every_section_and_figure(synthetic_run):
    html = render_report(synthetic_run)
    for sid in ("summary", "fidelity", "personas", "prompts", "pairs", "bench"):
        assert f'<section id="{sid}">' in html
    assert "data-missing=" not in html  # every stage has artifacts here
    assert html.count("data:image/png;base64,") == 1 + 2 + 5  # TVD chart, funnel + clusters, 5 bench plots
    assert html.count('class="card dist"') == 2
    # figures from the artifacts, not invented
    assert "0.040" in html and "8011" in html and "abortion, rights" in html
    data = embedded(html)
    assert "p-aaa" in data["strings"] and "Is religion good for society?" in data["strings"]
    assert "gave up after 5 attempts: HTTP 503" in html  # recorded failures shown
    assert "calls" in html and "150 in / 70 out" not in html  # tokens: 180 in / 70 out
    assert "180 in / 70 out" in html
    # provenance per field, every field of every persona, each string stored once
    ps = data["personas"]
    assert len(ps["rows"]) == 3 and len(ps["fields"]) == 33 and len(ps["rows"][0]) == 3 + 3 * 33
    assert {data["strings"][i] for r in ps["rows"] for i in r[3 + 33 : 3 + 66]} == {"census", "pending"}
    assert len(data["strings"]) == len(set(data["strings"]))
    # latency and queue wait apart
    assert 'id="model-latency"' in html and 'id="queue-wait"' in html and "not in this call log" in html


def test_script_in_persona_field_and_answer_is_escaped(synthetic_run):
    html = render_report(synthetic_run)
    assert EVIL not in html
    assert "&lt;script&gt;window.__pwned = 1;" in html
    assert EVIL in embedded(html)["strings"]  # kept as data; the page sets it with textContent only
    assert "innerHTML" not in html and "insertAdjacentHTML" not in html and "document.write" not in html
    # the only <script> element is the report's own filter code
    assert html.count("<script>") == 1
    assert "__pwned" not in html.split("<script>")[1]


def test_self_contained_no_network(synthetic_run):
    html = render_report(synthetic_run)
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "@import" not in html and "url(http" not in html
    assert "default-src 'none'" in html  # CSP: the page may not fetch anything


def test_missing_stages_say_so(tmp_path):
    run = write_synthetic_run(tmp_path / "partial", stages=("census", "personas"))
    html = render_report(run)
    for stage in ("prompts", "feedback", "bench"):
        assert f'data-missing="{stage}"' in html
    assert 'data-missing="personas"' not in html and 'data-missing="census"' not in html


def test_write_report_cli(cli, synthetic_run, tmp_path):
    r = cli("report", synthetic_run, "--json")
    assert r.exit_code == 0, r.stderr
    out = synthetic_run / "report" / "index.html"
    assert out.is_file() and str(out) in r.stdout
    target = tmp_path / "elsewhere.html"
    info = write_report(synthetic_run, target)
    assert target.is_file() and info["bytes"] == target.stat().st_size > 10_000


def test_report_on_non_run_is_one_line_error(cli, tmp_path):
    r = cli("report", tmp_path / "nope")
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "no such run directory" in r.stderr
    (tmp_path / "empty").mkdir()
    r = cli("report", tmp_path / "empty")
    assert r.exit_code == 2 and "not a run directory" in r.stderr


def test_report_caps_large_runs(tmp_path):
    import json

    run = write_synthetic_run(tmp_path / "big")
    line = (run / "feedback" / "pairs.jsonl").read_text().splitlines()[1]
    (run / "feedback" / "pairs.jsonl").write_text("\n".join([line] * 1200) + "\n")
    html = render_report(run, max_pairs=50)
    assert "Showing 50 of 1200 pairs" in html
    assert len(embedded(html)["pairs"]["rows"]) == 50
    json.loads((run / "manifest.json").read_text())  # untouched
