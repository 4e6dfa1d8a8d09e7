"""Tasks fidelity and agreement, and the human-eval kit (export -> fill -> import -> agreement)."""

from __future__ import annotations

import csv
import html
import io

import polars as pl
import pytest
from sklearn.metrics import cohen_kappa_score

from persona_testbed.bench import run_task
from persona_testbed.bench.human import export_sheets, import_sheets, read_labels
from persona_testbed.bench.records import BenchPair
from persona_testbed.core.errors import UserError


def _answers(messages):
    user = messages[-1]["content"]
    a = user.split("Answer A:\n", 1)[1].split("\n\nAnswer B:\n", 1)[0]
    b = user.split("\n\nAnswer B:\n", 1)[1].split("\n\nWhich answer", 1)[0]
    return a, b


def test_fidelity_always_A_has_position_bias(tmp_path, personas, prompts, pairs, scripted, helpers):
    cand, cb = scripted(lambda m, p: helpers.pick("A"), "cand")
    res = run_task(
        "fidelity",
        candidate=cand,
        judge=None,
        personas=personas,
        prompts=prompts,
        pairs=pairs,
        n=6,
        seed=0,
        out_dir=tmp_path,
        matrix_personas=0,
    )
    f = res["figures"]
    assert len(cb.calls) == 12  # both orders
    assert f["accuracy"]["estimate"] == 0.5 and f["position_bias"] == 0.5
    assert f["kappa"]["estimate"] == 0.0 and f["consistent_share"] == 0.0


def test_fidelity_faithful_judge_and_discrimination_matrix(
    tmp_path, personas, prompts, pairs, scripted, helpers
):
    def persona_judge(messages, params):
        a, b = _answers(messages)
        if "CHOSEN" in a or "CHOSEN" in b:
            return helpers.pick("A" if "CHOSEN" in a else "B")
        quirk = messages[0]["content"].split("defining quirks: ", 1)[1].split("\n", 1)[0]
        return helpers.pick("A" if quirk in a else ("B" if quirk in b else "A"))

    def writer(messages, params):
        quirk = messages[0]["content"].split("defining quirks: ", 1)[1].split("\n", 1)[0]
        return f"an answer written for someone with {quirk}"

    cand, _ = scripted(persona_judge, "cand")
    judge, wb = scripted(writer, "writer")
    res = run_task(
        "fidelity",
        candidate=cand,
        judge=judge,
        personas=personas,
        prompts=prompts,
        pairs=pairs,
        n=8,
        seed=4,
        out_dir=tmp_path,
        matrix_personas=3,
        matrix_questions=2,
    )
    f = res["figures"]
    assert f["accuracy"]["estimate"] == 1.0 and f["kappa"]["estimate"] == 1.0
    assert f["position_bias"] == 0.0 and f["consistent_share"] == 1.0
    m = f["matrix"]
    assert m["mean_diagonal_rank"] == 1.0 and m["chance_rank"] == 2.0 and len(wb.calls) == 6
    assert all(m["win_rate"][i][i] == 1.0 for i in range(3))
    items = pl.read_parquet(tmp_path / "items.parquet")
    assert items.filter(pl.col("arm") == "matrix").height == 3 * 2 * 6


def test_fidelity_unknown_pair_persona(personas, prompts, pairs, scripted, helpers):
    cand, _ = scripted(lambda m, p: helpers.pick("A"), "cand")
    bad = pairs + [
        BenchPair(
            id="x",
            persona_id="ghost",
            prompt_id="q0",
            question="?",
            chosen="c",
            rejected="r",
            split="held_out",
        )
    ]
    with pytest.raises(UserError, match="ghost"):
        run_task("fidelity", candidate=cand, personas=personas, pairs=bad, n=2, matrix_personas=0)


def _write_labels(path, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["persona_id", "pair_id", "annotator_id", "choice"])
        w.writerows(rows)


def test_agreement_kappas_and_ties(tmp_path, personas, pairs, scripted, helpers):
    # model judge: picks CHOSEN except for pair0 of each persona (picks REJECTED there)
    def judge_fn(messages, params):
        a, b = _answers(messages)
        want = "REJECTED" if "answer 0 " in a else "CHOSEN"
        return helpers.pick("A" if want in a else "B")

    judge, _ = scripted(judge_fn, "judge-model")
    rows, human = [], {}
    for i, pair in enumerate(pairs[:6]):
        votes = {
            0: ["chosen"] * 3,
            1: ["chosen", "chosen", "rejected"],
            2: ["rejected", "rejected", "chosen"],
        }[i % 3]
        if i == 5:
            votes = ["chosen", "rejected", "tie"]  # no majority: reported, not broken
        for a, v in zip(("ann1", "ann2", "ann3"), votes):
            rows.append([pair.persona_id, pair.id, a, v])
        human[pair.id] = None if i == 5 else max(set(votes), key=votes.count)
    labels = tmp_path / "labels.csv"
    _write_labels(labels, rows)
    res = run_task(
        "agreement", judge=judge, personas=personas, pairs=pairs, labels=labels, out_dir=tmp_path / "o"
    )
    f = res["figures"]
    assert f["human_ties"] == [pairs[5].id]
    model = {p.id: ("rejected" if p.id.endswith("pair0") else "chosen") for p in pairs[:6]}
    common = [pid for pid in human if human[pid] is not None]
    expect = cohen_kappa_score([human[p] for p in common], [model[p] for p in common])
    assert f["judges"]["judge-model"]["kappa"]["estimate"] == pytest.approx(expect)
    by = {(r[1], r[2]): r[3] for r in rows}
    k12 = cohen_kappa_score([by[(p.id, "ann1")] for p in pairs[:6]], [by[(p.id, "ann2")] for p in pairs[:6]])
    assert f["annotators"]["ann1|ann2"]["kappa"] == pytest.approx(k12)
    bad = tmp_path / "bad.csv"
    _write_labels(bad, [["p-f1", "nope", "ann1", "chosen"]])
    with pytest.raises(UserError, match="bad.csv:2: pair_id 'nope'"):
        run_task("agreement", judge=judge, personas=personas, pairs=pairs, labels=bad)
    _write_labels(bad, [["p-f1", pairs[0].id, "ann1", "maybe"]])
    with pytest.raises(UserError, match="must be one of"):
        read_labels(bad)


def test_human_kit_roundtrip(tmp_path, personas, pairs, scripted, helpers):
    evil = BenchPair(
        id="p-f1-evil",
        persona_id="p-f1",
        prompt_id="q9",
        question="Is <script>alert(1)</script> O'Brien's?",
        chosen="CHOSEN <b>bold</b> & co",
        rejected='REJECTED "quoted"',
    )
    esc = export_sheets([evil], personas, tmp_path / "esc", n=1, annotators=1, raters=1, seed=0)
    assert esc["rows"] == 1
    text = (tmp_path / "esc" / "annotator-a01.html").read_text()
    assert "<script>alert(1)" not in text and "<b>bold</b>" not in text and "\\u003cscript" in text
    assert html.escape("Is <script>alert(1)</script> O'Brien's?") in text
    allp = pairs + [evil]
    info = export_sheets(pairs, personas, tmp_path / "kit", n=6, annotators=4, questions=3, raters=3, seed=1)
    assert info["pairs"] == 6 and info["sheets"] == 2 and info["rows"] == 18
    kit = tmp_path / "kit"
    sheets = sorted(kit.glob("annotator-*.csv"))
    assert len(sheets) == 4 and len(list(kit.glob("annotator-*.html"))) == 4
    # fill: every annotator picks the CHOSEN answer (A or B depending on the random order)
    filled = tmp_path / "filled"
    filled.mkdir()
    orders = set()
    for s in sheets:
        rows = list(csv.DictReader(s.open()))
        for r in rows:
            r["choice"] = "A" if "CHOSEN" in r["answer_a"] else "B"
            orders.add(r["choice"])
        with (filled / s.name).open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    assert orders == {"A", "B"}  # answers really shown in random order
    labels = import_sheets([filled], kit / "key.csv", out=tmp_path / "labels.csv")
    assert len(labels) == 18 and {x.choice for x in labels} == {"chosen"}
    assert len(read_labels(tmp_path / "labels.csv")) == 18
    judge, _ = scripted(lambda m, p: helpers.pick("A" if "CHOSEN" in _answers(m)[0] else "B"), "j")
    res = run_task("agreement", judge=judge, personas=personas, pairs=allp, labels=tmp_path / "labels.csv")
    assert res["figures"]["pairs"] == 6 and res["figures"]["human_ties"] == []
    assert res["figures"]["judges"]["j"]["raw_agreement"] == 1.0
    # an unfilled row is an error naming the file and line
    rows = list(csv.DictReader(sheets[0].open()))
    with (filled / sheets[0].name).open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(UserError, match=r"annotator-a01.csv:2: choice '' must be A, B or tie"):
        import_sheets([filled], kit / "key.csv")


def test_human_html_is_self_contained_and_bad_sizes(tmp_path, personas, pairs):
    export_sheets(pairs, personas, tmp_path / "k", n=3, annotators=3, questions=3, raters=3, seed=0)
    for h in (tmp_path / "k").glob("*.html"):
        text = h.read_text()
        assert (
            "http://" not in text and "https://" not in text and " src=" not in text and "<link" not in text
        )
        assert text.count("<fieldset>") == 3 and "Download CSV" in text
    with pytest.raises(UserError, match="exceeds --annotators"):
        export_sheets(pairs, personas, tmp_path / "x", n=3, annotators=2, raters=3)
    with pytest.raises(UserError, match="exceeds the 12 pairs"):
        export_sheets(pairs, personas, tmp_path / "x", n=50, annotators=3)


def test_html_form_download_produces_the_sheet_csv(tmp_path, personas, pairs):
    """Run the form's script in node with a tiny DOM shim: 'Download CSV' yields the filled sheet."""
    import re
    import shutil
    import subprocess

    node = shutil.which("node")
    if node is None:
        pytest.skip("node not available")
    tricky = BenchPair(
        id="p-f1-tricky",
        persona_id="p-f1",
        prompt_id="q7",
        question='Say "hi", then\nnew line?',
        chosen="CHOSEN, with comma",
        rejected="REJECTED </script> tag",
        split="held_out",
    )
    export_sheets([tricky] + pairs[:2], personas, tmp_path, n=3, annotators=1, raters=1, questions=3, seed=0)
    page = (tmp_path / "annotator-a01.html").read_text()
    data = re.search(r"<script type='application/json' id='data'>(.*?)</script>", page, re.S).group(1)
    code = re.findall(r"<script>(.*?)</script>", page, re.S)[-1]
    shim = f"""
const data = {data};
let clicked = null, blobText = null;
const form = {{querySelector: (sel) => {{ const f = sel.match(/name=(c\\d+)/)[1];
  return f === 'c1' ? null : {{value: f === 'c0' ? 'B' : 'tie'}}; }}}};
global.document = {{getElementById: (id) => id === 'data' ? {{textContent: JSON.stringify(data)}}
  : id === 'f' ? form : (id === 'dl' ? (clicked = {{}}) : null),
  createElement: () => ({{click() {{}}}})}};
global.Blob = function (parts) {{ blobText = parts.join(''); }};
global.URL = {{createObjectURL: () => 'blob:x'}};
"""
    script = shim + code + "\nclicked.onclick(); process.stdout.write(blobText);"
    out = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    sheet = list(csv.DictReader((tmp_path / "annotator-a01.csv").open()))
    assert [r["choice"] for r in rows] == ["B", "", "tie"]
    for got, want in zip(rows, sheet):
        assert {k: v for k, v in got.items() if k != "choice"} == {
            k: v for k, v in want.items() if k != "choice"
        }


def test_agreement_with_two_judges(tmp_path, personas, pairs, scripted, helpers):
    labels = tmp_path / "l.csv"
    _write_labels(
        labels,
        [[pairs[0].persona_id, pairs[0].id, a, "chosen"] for a in ("x", "y", "z")]
        + [[pairs[1].persona_id, pairs[1].id, a, "rejected"] for a in ("x", "y", "z")],
    )
    good, _ = scripted(lambda m, p: helpers.pick("A" if "CHOSEN" in _answers(m)[0] else "B"), "good-judge")
    always_a, _ = scripted(lambda m, p: helpers.pick("A"), "a-judge")
    res = run_task("agreement", judge=[good, always_a], personas=personas, pairs=pairs, labels=labels)
    j = res["figures"]["judges"]
    assert set(j) == {"good-judge", "a-judge"}
    assert j["good-judge"]["raw_agreement"] == 0.5 and j["a-judge"]["model_ties"] == 2
    assert res["counts"]["llm_calls"]["judge#2"]["calls"] == 4
