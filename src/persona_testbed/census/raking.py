"""Raking (iterative proportional fitting) of record weights to published marginal totals.

A :class:`Margin` is a set of disjoint cells, each a polars condition with a target total, inside an
optional universe (e.g. ages 25+). Each IPF sweep scales, margin by margin, the weights of every cell to
its target; rows outside a margin's cells keep their weights for that margin. Convergence: every cell
within ``tol`` relative error after a full sweep. The result reports iterations, the largest relative
error, the Kish effective sample size before and after, and a per-cell fit table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
from pydantic import BaseModel

from ..core.errors import UserError
from .distributions import kish_ess


@dataclass
class Cell:
    """One target cell: ``condition`` (a polars boolean expression over person columns) and its total."""

    label: str
    target: float
    condition: pl.Expr


@dataclass
class Margin:
    """A named set of disjoint cells; ``universe`` restricts which rows the margin applies to."""

    name: str
    cells: list[Cell]
    universe: pl.Expr | None = None
    columns: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def total(self) -> float:
        return float(sum(c.target for c in self.cells))


class CellFit(BaseModel):
    margin: str
    cell: str
    target: float
    before: float
    after: float
    rel_error: float


class MarginFit(BaseModel):
    margin: str
    cells: int
    target_total: float
    before_total: float
    after_total: float
    max_rel_error: float


@dataclass
class RakeResult:
    """Raked weights (aligned with the input rows) and how well they fit."""

    weights: np.ndarray
    converged: bool
    iterations: int
    max_rel_error: float
    ess: float
    ess_before: float
    fit: list[CellFit]
    n_records: int

    @property
    def margins(self) -> list[MarginFit]:
        """Per-margin summary of :attr:`fit`."""
        out: dict[str, list[CellFit]] = {}
        for f in self.fit:
            out.setdefault(f.margin, []).append(f)
        return [
            MarginFit(
                margin=m,
                cells=len(cs),
                target_total=sum(c.target for c in cs),
                before_total=sum(c.before for c in cs),
                after_total=sum(c.after for c in cs),
                max_rel_error=max(c.rel_error for c in cs),
            )
            for m, cs in out.items()
        ]

    def summary(self) -> dict:
        """JSON-ready summary (no per-record weights)."""
        return {
            "converged": self.converged,
            "iterations": self.iterations,
            "max_rel_error": self.max_rel_error,
            "n_records": self.n_records,
            "ess_before": self.ess_before,
            "ess": self.ess,
            "weight_total": float(self.weights.sum()),
            "margins": [m.model_dump() for m in self.margins],
            "cells": [f.model_dump() for f in self.fit],
        }


def _cell_index(df: pl.DataFrame, margin: Margin) -> np.ndarray:
    """Cell number of each row for ``margin`` (-1 outside its universe or cells)."""
    missing = sorted({c for c in margin.columns if c not in df.columns})
    if missing:
        raise UserError(f"margin {margin.name} needs column {', '.join(missing)}, not in the person records")
    universe = margin.universe if margin.universe is not None else pl.lit(True)
    masks = (
        df.select(
            [(universe & c.condition).fill_null(False).alias(f"c{i}") for i, c in enumerate(margin.cells)]
        )
        .to_numpy()
        .astype(bool)
    )
    hits = masks.sum(axis=1)
    if np.any(hits > 1):
        raise UserError(f"margin {margin.name}: cells overlap (a record falls in {int(hits.max())} cells)")
    idx = np.where(hits == 1, masks.argmax(axis=1), -1)
    return idx


def rake(
    df: pl.DataFrame, margins: list[Margin], weight: str = "PWGTP", max_iter: int = 100, tol: float = 1e-6
) -> RakeResult:
    """Rake ``df[weight]`` to ``margins`` by IPF; returns weights aligned with ``df``'s rows."""
    if weight not in df.columns:
        raise UserError(f"weight column {weight} is not in the person records")
    if not margins:
        raise UserError("no margins to rake to")
    if max_iter < 1 or tol <= 0:
        raise UserError(f"max_iter must be >= 1 and tol > 0 (got {max_iter}, {tol})")
    w0 = df[weight].cast(pl.Float64).fill_null(0.0).to_numpy().copy()
    if np.any(w0 < 0):
        raise UserError(f"weight column {weight} has negative values")
    index = [_cell_index(df, m) for m in margins]
    targets = [np.array([c.target for c in m.cells], dtype=float) for m in margins]
    for m, t in zip(margins, targets):
        if np.any(t < 0):
            raise UserError(f"margin {m.name} has a negative target")

    rows = [np.flatnonzero(ix >= 0) for ix in index]  # rows inside each margin's cells
    cells = [ix[r] for ix, r in zip(index, rows)]

    def sums(w: np.ndarray, k: int) -> np.ndarray:
        return np.bincount(cells[k], weights=w[rows[k]], minlength=len(targets[k]))

    def max_err(w: np.ndarray) -> float:
        errs = [np.abs(sums(w, k) - targets[k]) / np.maximum(targets[k], 1e-12) for k in range(len(margins))]
        return float(max(e.max() for e in errs))

    before = [sums(w0, k) for k in range(len(margins))]
    w = w0.copy()
    converged, it, err = False, 0, max_err(w)
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is reported after the loop
        for k in range(len(margins)):
            cur = sums(w, k)
            factor = np.divide(targets[k], cur, out=np.ones_like(cur), where=cur > 0)
            w[rows[k]] *= factor[cells[k]]
        err = max_err(w)
        if err < tol:
            converged = True
            break
    fit = []
    for k, m in enumerate(margins):
        after = sums(w, k)
        for j, c in enumerate(m.cells):
            rel = abs(after[j] - c.target) / max(c.target, 1e-12)
            fit.append(
                CellFit(
                    margin=m.name,
                    cell=c.label,
                    target=c.target,
                    before=float(before[k][j]),
                    after=float(after[j]),
                    rel_error=float(rel),
                )
            )
    return RakeResult(
        weights=w,
        converged=converged,
        iterations=it,
        max_rel_error=err,
        ess=kish_ess(w),
        ess_before=kish_ess(w0),
        fit=fit,
        n_records=df.height,
    )
