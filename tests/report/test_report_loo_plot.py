"""The report's LOO plot draws the control-adjusted κ difference with its CI, not the raw κ."""

from __future__ import annotations

import math

from persona_testbed.report import build


def _capture(monkeypatch):
    seen = {}

    def bars(labels, values, **kw):
        seen.update(labels=labels, values=values, **kw)
        return "data:image/png;base64,AAAA"

    monkeypatch.setattr(build.plots, "bars", bars)
    return seen


def test_plot_uses_kappa_minus_control_with_its_interval(monkeypatch):
    seen = _capture(monkeypatch)
    loo = [
        {"attribute": "age", "kappa": 0.55, "ci_low": 0.4, "ci_high": 0.7, "kappa_difference": -0.35,
         "kd_low": -0.5, "kd_high": -0.2},
        {"attribute": "sex", "kappa": 0.9, "ci_low": 0.8, "ci_high": 1.0, "kappa_difference": 0.0,
         "kd_low": -1.3, "kd_high": 0.1},
    ]  # fmt: skip
    fig = build._loo_figure(loo)
    assert "img" in fig
    assert seen["values"] == [-0.35, 0.0] and seen["lo"] == [-0.5, -1.3] and seen["hi"] == [-0.2, 0.1]
    assert "control" in seen["title"] and "below 0" in seen["title"]
    low, high = seen["ylim"]
    assert low <= -1.3 and high >= 1.3  # the axis holds every interval


def test_results_without_a_control_arm_fall_back_to_raw_kappa(monkeypatch):
    seen = _capture(monkeypatch)
    fig = build._loo_figure([{"attribute": "age", "kappa": 0.5, "ci_low": 0.3, "ci_high": 0.7}])
    assert "img" in fig and seen["values"] == [0.5] and "no control arm" in seen["title"]
    note = build._loo_figure([{"attribute": "age", "kappa": math.nan, "kappa_difference": None}])
    assert "undefined for every attribute" in note["note"]
