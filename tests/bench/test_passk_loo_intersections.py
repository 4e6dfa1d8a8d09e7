"""Tasks passk, loo and intersections with scripted mock models."""

from __future__ import annotations

import hashlib

import polars as pl
import pytest

from persona_testbed.bench import run_task
from persona_testbed.bench.metrics import cohen_kappa, pass_at_k
from persona_testbed.core.errors import UserError


def _good(answer: str) -> bool:
    return hashlib.sha256(answer.encode()).digest()[0] % 3 != 0


def test_passk_judges_every_sample_with_question_and_its_answer(
    tmp_path, personas, prompts, scripted, helpers
):
    cand, cb = scripted(lambda m, p: f"sample answer with seed {p.seed}", "cand")

    def judge_fn(messages, params):
        return helpers.verdict(needs_revision=not _good(helpers.section(messages, "Answer to review:\n")))

    judge, jb = scripted(judge_fn, "judge")
    res = run_task(
        "passk",
        candidate=cand,
        judge=judge,
        personas=personas,
        prompts=prompts,
        n=4,
        seed=5,
        out_dir=tmp_path,
        k=3,
        samples=5,
    )
    # 2 calls per sample, separate conversations with distinct seeds
    assert len(cb.calls) == 20 and len(jb.calls) == 20
    items = pl.read_parquet(tmp_path / "items.parquet")
    assert items.height == 20
    for _item_id, grp in items.group_by("item_id"):
        assert sorted(grp["sample_index"]) == [0, 1, 2, 3, 4]
        assert grp["answer"].n_unique() == 5
    # The reference's bug: its judge never saw the question and always judged the last answer.
    judge_user = [m[-1]["content"] for m, _ in jb.calls]
    for row in items.iter_rows(named=True):
        assert any(
            row["question"] in t and f"Answer to review:\n{row['answer']}\n" in t for t in judge_user
        ), row
    for t in judge_user:
        assert "Question from this user:\nQuestion number" in t
    # figures equal the unbiased estimator over per-item (n, c)
    per = items.group_by("item_id").agg(pl.len().alias("n"), pl.col("score").sum().alias("c"))
    for k in (1, 2, 3):
        expect = sum(pass_at_k(int(n), int(c), k) for n, c in per.select("n", "c").iter_rows()) / per.height
        assert res["figures"]["pass_at_k"][str(k)]["estimate"] == pytest.approx(expect)
    assert res["counts"]["llm_calls_total"] / items.height == 2.0


def test_passk_k_greater_than_n_is_user_error(personas, prompts, scripted):
    cand, _ = scripted(lambda m, p: "x", "cand")
    with pytest.raises(UserError, match="need n >= k"):
        run_task("passk", candidate=cand, judge=cand, personas=personas, prompts=prompts, n=2, k=4, samples=3)


def test_loo_kappa_per_attribute_candidate_ablation(tmp_path, personas, prompts, scripted, helpers):
    def cand_fn(messages, params):
        s = messages[0]["content"]
        return "good" if ("religion:" in s and "sex: Female" in s) else "bad"

    cand, cb = scripted(cand_fn, "cand")
    judge, jb = scripted(
        lambda m, p: helpers.verdict("bad" in helpers.section(m, "Answer to review:\n")), "judge"
    )
    # 4 personas are too few clusters for a persona bootstrap to exclude 0: resample items here
    res = run_task(
        "loo",
        candidate=cand,
        judge=judge,
        personas=personas,
        prompts=prompts,
        n=10,
        seed=1,
        out_dir=tmp_path,
        attributes=["religion", "age"],
        cluster="none",
    )
    items = pl.read_parquet(tmp_path / "items.parquet")
    assert sorted(items["arm"].unique()) == ["control", "full", "without:age", "without:religion"]
    assert len(cb.calls) == 40  # full + control + 2 ablations per item
    full = dict(zip(*items.filter(pl.col("arm") == "full").select("item_id", "score").to_dict().values()))
    ctl = dict(zip(*items.filter(pl.col("arm") == "control").select("item_id", "score").to_dict().values()))
    fig = res["figures"]
    for attr in ("religion", "age"):
        arm = items.filter(pl.col("arm") == f"without:{attr}")
        a = [full[i] for i in arm["item_id"]]
        got = fig["attributes"][attr]
        expect = cohen_kappa(a, arm["score"].to_list())
        assert got["kappa"]["estimate"] == pytest.approx(expect)
        changed = sum(x != y for x, y in zip(a, arm["score"]))
        changed_ctl = sum(full[i] != ctl[i] for i in arm["item_id"])
        assert got["changed"] == changed and got["changed_share"]["estimate"] == pytest.approx(changed / 10)
        assert got["changed_share_difference"]["estimate"] == pytest.approx((changed - changed_ctl) / 10)
    assert fig["attributes"]["age"]["kappa"]["estimate"] == 1.0
    assert fig["attributes"]["religion"]["kappa"]["estimate"] == 0.0
    assert fig["attributes"]["religion"]["changed"] > 0 and fig["attributes"]["religion"]["matters"]
    assert not fig["attributes"]["age"]["matters"]
    # a deterministic candidate: the control arm changes nothing
    assert fig["control_changed_share"]["estimate"] == 0.0 and fig["control_kappa"]["estimate"] == 1.0
    assert fig["attributes"]["age"]["kappa_difference"]["estimate"] == 0.0
    assert 0 < fig["full_accuracy"]["accuracy"]["estimate"] < 1
    # the judge always sees the full persona in candidate ablation
    assert all("religion:" in m[-1]["content"] for m, _ in jb.calls)


def test_loo_control_arm_is_an_independent_sample(tmp_path, personas, prompts, scripted, helpers):
    """A candidate that ignores the persona and answers at random: no attribute may look influential."""
    cand, cb = scripted(lambda m, p: "good" if p.seed % 2 else "bad", "cand")
    judge, _ = scripted(
        lambda m, p: helpers.verdict("bad" in helpers.section(m, "Answer to review:\n")), "judge"
    )
    res = run_task(
        "loo",
        candidate=cand,
        judge=judge,
        personas=personas,
        prompts=prompts,
        n=20,
        seed=3,
        out_dir=tmp_path,
        attributes=["hearing difficulty"],
    )
    seeds = {}
    for msgs, params in cb.calls:
        seeds.setdefault("hearing difficulty:" in msgs[0]["content"], []).append(params.seed)
    assert len(set(seeds[True])) == 40  # full and control: 20 items x 2 distinct seeds
    fig = res["figures"]
    eff = fig["attributes"]["hearing difficulty"]
    assert (
        eff["kappa"]["estimate"] < 0.5 and fig["control_kappa"]["estimate"] < 0.5
    )  # both look "influential"...
    d = eff["changed_share_difference"]
    assert d["low"] < 0 < d["high"] and not eff["matters"]  # ... but not beyond the noise floor
    assert eff["nearly_constant"] and any("nearly constant" in w for w in res["warnings"])


def test_loo_judge_ablation_reuses_full_answer(tmp_path, personas, prompts, scripted, helpers):
    cand, cb = scripted(lambda m, p: "one answer", "cand")
    judge, jb = scripted(lambda m, p: helpers.verdict("religion:" not in m[-1]["content"]), "judge")
    res = run_task(
        "loo",
        candidate=cand,
        judge=judge,
        personas=personas,
        prompts=prompts,
        n=4,
        seed=1,
        out_dir=tmp_path,
        attributes=["religion"],
        ablate="judge",
    )
    assert len(cb.calls) == 4 and len(jb.calls) == 12  # full, control (re-judged) and ablated
    assert res["figures"]["full_accuracy"]["accuracy"]["estimate"] == 1.0
    assert res["figures"]["control_accuracy"]["accuracy"]["estimate"] == 1.0
    eff = res["figures"]["attributes"]["religion"]
    assert eff["accuracy"]["accuracy"]["estimate"] == 0.0 and eff["changed_share"]["estimate"] == 1.0


def test_loo_unknown_attribute(personas, prompts, scripted):
    cand, _ = scripted(lambda m, p: "x", "cand")
    with pytest.raises(UserError, match="unknown persona attribute 'shoe size'"):
        run_task(
            "loo",
            candidate=cand,
            judge=cand,
            personas=personas,
            prompts=prompts,
            n=2,
            attributes=["shoe size"],
        )


def test_intersections_groups_gap_and_validation(tmp_path, personas, prompts, scripted, helpers):
    cand, _ = scripted(lambda m, p: "an answer", "cand")
    judge, _ = scripted(lambda m, p: helpers.verdict("sex: Female" not in m[-1]["content"]), "judge")
    res = run_task(
        "intersections",
        candidate=cand,
        judge=judge,
        personas=personas,
        prompts=prompts,
        n=4,
        seed=2,
        out_dir=tmp_path,
        groups=[
            "sex=Female,race=Black or African American alone",
            "sex=Male",
            "education=Bachelor's degree",
            "employment status=Civilian employed, at work,sex=Male",
        ],
    )
    g = res["figures"]["groups"]
    assert g["sex=Female,race=Black or African American alone"]["accuracy"]["estimate"] == 1.0
    assert g["sex=Female,race=Black or African American alone"]["personas"] == 1
    assert g["sex=Male"]["accuracy"]["estimate"] == 0.0
    assert g["employment status=Civilian employed, at work,sex=Male"]["personas"] == 2  # comma inside a value
    gap = res["figures"]["largest_gap"]
    assert gap["estimate"] == 1.0 and gap["lowest"] in (
        "sex=Male",
        "employment status=Civilian employed, at work,sex=Male",
    )
    assert gap["low"] <= 1.0 <= gap["high"] and 0 < gap["p_value"] <= 1
    groups_file = tmp_path / "groups.toml"
    groups_file.write_text(
        '[groups."older men"]\nsex = "Male"\nage = "60..90"\n'
        '[groups.grads]\neducation = ["Bachelor\'s degree", "Master\'s degree"]\n'
    )
    res2 = run_task(
        "intersections",
        candidate=cand,
        judge=judge,
        personas=personas,
        prompts=prompts,
        n=3,
        groups_file=groups_file,
    )
    assert res2["figures"]["groups"]["older men"]["personas"] == 1
    assert res2["figures"]["groups"]["grads"]["personas"] == 4
    with pytest.raises(UserError, match="is empty"):
        run_task(
            "intersections",
            candidate=cand,
            judge=judge,
            personas=personas,
            prompts=prompts,
            n=2,
            groups=["sex=Female,race=Asian alone"],
        )
    with pytest.raises(UserError, match="not a value of any persona"):
        run_task(
            "intersections",
            candidate=cand,
            judge=judge,
            personas=personas,
            prompts=prompts,
            n=2,
            groups=["sex=Femal"],
        )
    with pytest.raises(UserError, match="unknown persona attribute"):
        run_task(
            "intersections",
            candidate=cand,
            judge=judge,
            personas=personas,
            prompts=prompts,
            n=2,
            groups=["planet=Mars"],
        )
