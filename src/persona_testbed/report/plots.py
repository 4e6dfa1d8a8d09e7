"""Report figures: matplotlib (Agg) rendered to PNG and embedded as base64 ``data:`` URIs.

PNG rather than inline SVG: a picture cannot carry markup, so text drawn from personas or models can
never become live HTML.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DPI = 96


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _short(label: Any, n: int = 28) -> str:
    s = str(label)
    return s if len(s) <= n else s[: n - 1] + "…"


def _err(vals: Sequence[float], lo: Sequence[Any], hi: Sequence[Any]) -> list[list[float]] | None:
    if not any(x is not None for x in lo) or not any(x is not None for x in hi):
        return None
    return [
        [max(0.0, v - (low if low is not None else v)) for v, low in zip(vals, lo)],
        [max(0.0, (h if h is not None else v) - v) for v, h in zip(vals, hi)],
    ]


def bars(
    labels: Sequence[Any],
    values: Sequence[float | None],
    *,
    lo: Sequence[Any] | None = None,
    hi: Sequence[Any] | None = None,
    title: str = "",
    ylabel: str = "",
    ylim: tuple[float, float] | None = None,
    horizontal: bool = False,
) -> str:
    """A bar chart (optionally with CI error bars) as a PNG data URI; a missing value draws no bar."""
    n = max(1, len(labels))
    fig, ax = plt.subplots(
        figsize=(6.4, max(2.4, 0.32 * n + 1)) if horizontal else (max(4.0, 0.7 * n + 2), 3.2)
    )
    vals = [float(v) if v is not None else 0.0 for v in values]
    err = _err(vals, lo, hi) if lo is not None and hi is not None else None
    names = [_short(x) for x in labels]
    if horizontal:
        ax.barh(range(len(vals)), vals, xerr=err, color="#4c78a8", capsize=3)
        ax.set_yticks(range(len(vals)), names, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(ylabel)
        if ylim:
            ax.set_xlim(*ylim)
    else:
        ax.bar(range(len(vals)), vals, yerr=err, color="#4c78a8", capsize=3)
        ax.set_xticks(
            range(len(vals)),
            names,
            rotation=30 if n > 4 else 0,
            ha="right" if n > 4 else "center",
            fontsize=8,
        )
        ax.set_ylabel(ylabel)
        if ylim:
            ax.set_ylim(*ylim)
    ax.set_title(title, fontsize=10)
    return _png(fig)


def paired_bars(
    labels: Sequence[Any],
    series: dict[str, Sequence[float | None]],
    *,
    lo: dict[str, Sequence[Any]] | None = None,
    hi: dict[str, Sequence[Any]] | None = None,
    title: str = "",
    xlabel: str = "",
    xlim: tuple[float, float] | None = None,
) -> str:
    """Horizontal grouped bars: one group per label, one bar per series (optionally with CI error bars)."""
    n, k = max(1, len(labels)), max(1, len(series))
    fig, ax = plt.subplots(figsize=(6.8, max(2.4, 0.22 * n * k + 0.25 * n + 1.2)))
    height = 0.8 / k
    colors = ["#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2", "#9d755d", "#bab0ac"]
    for j, (name, values) in enumerate(series.items()):
        vals = [float(v) if v is not None else 0.0 for v in values]
        err = None
        if lo is not None and hi is not None and name in lo and name in hi:
            err = _err(vals, lo[name], hi[name])
        ys = [i - 0.4 + height * (j + 0.5) for i in range(len(vals))]
        ax.barh(
            ys,
            vals,
            height=height * 0.92,
            xerr=err,
            capsize=2,
            label=_short(name, 40),
            color=colors[j % len(colors)],
        )
    ax.set_yticks(range(len(labels)), [_short(x) for x in labels], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    if xlim:
        ax.set_xlim(*xlim)
    ax.legend(fontsize=7, loc="best")
    ax.set_title(title, fontsize=10)
    return _png(fig)


def compare_distributions(
    field: str, source: dict[str, float], sample: dict[str, float], top: int = 10
) -> str:
    """Census (source) vs persona (sample) shares for one attribute, largest categories first."""
    cats = sorted(set(source) | set(sample), key=lambda c: -(source.get(c, 0.0) + sample.get(c, 0.0)))[:top]
    fig, ax = plt.subplots(figsize=(6.4, max(2.2, 0.3 * len(cats) + 1)))
    y = range(len(cats))
    ax.barh(
        [i - 0.2 for i in y], [source.get(c, 0.0) for c in cats], height=0.4, label="census", color="#9ecae9"
    )
    ax.barh(
        [i + 0.2 for i in y],
        [sample.get(c, 0.0) for c in cats],
        height=0.4,
        label="personas",
        color="#4c78a8",
    )
    ax.set_yticks(list(y), [_short(c, 40) for c in cats], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("share")
    ax.set_title(_short(field, 60), fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    return _png(fig)


def curve(xs: Sequence[float], ys: Sequence[float], *, title: str, xlabel: str, ylabel: str) -> str:
    """A line plot with markers (pass@k)."""
    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    ax.plot(list(xs), [float("nan") if y is None else float(y) for y in ys], marker="o", color="#4c78a8")
    ax.set_xticks(list(xs))
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    return _png(fig)


def heatmap(matrix: Sequence[Sequence[float]], labels: Sequence[Any], *, title: str) -> str:
    """A square matrix (discrimination: rows = judging persona, columns = persona the answer was for)."""
    import numpy as np

    m = np.array([[float(x) if x is not None else np.nan for x in row] for row in matrix], dtype=float)
    n = m.shape[0]
    fig, ax = plt.subplots(figsize=(max(3.2, 0.45 * n + 2), max(2.8, 0.45 * n + 1.5)))
    im = ax.imshow(m, cmap="viridis", vmin=0, vmax=1)
    names = [_short(x, 14) for x in labels]
    ax.set_xticks(range(n), names, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(n), names, fontsize=7)
    ax.set_xlabel("answer tailored to")
    ax.set_ylabel("judging persona")
    ax.set_title(title, fontsize=10)
    if n <= 12:
        for i in range(n):
            for j in range(n):
                if not np.isnan(m[i, j]):
                    ax.text(
                        j,
                        i,
                        f"{m[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if m[i, j] < 0.6 else "black",
                    )
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _png(fig)
