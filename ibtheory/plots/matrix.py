"""Heat map of a matrix of verdicts: settings (rows) x claims (columns), one colour per verdict, the score in each
cell (:func:`plot_verdict_matrix`, for the critics' matrix of :mod:`ibtheory.reproduce.critiques`)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.colors import BoundaryNorm, ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

__all__ = ["plot_verdict_matrix", "VERDICT_COLOURS"]

#: Verdict code -> (colour, word): -1 n/a, 0 does not hold, 1 partly, 2 holds.
VERDICT_COLOURS = {-1: ("#dddddd", "n/a"), 0: ("#d7301f", "does not hold"), 1: ("#fdbb84", "partly"),
                   2: ("#31a354", "holds")}


def plot_verdict_matrix(m: xr.Dataset, ax=None, title: str = "") -> plt.Figure:
    """Draw ``m["verdict"]`` (setting, claim; codes -1..2) as coloured cells with ``m["score"]`` written in them;
    rows labelled by setting (and ``group`` when present), columns by ``claim_label`` (else ``claim``).
    ``ValueError`` when the variables are missing or a code is outside -1..2."""
    for v in ("verdict", "score"):
        if v not in m:
            raise ValueError(f"m must hold '{v}' (setting, claim), got variables {sorted(m.data_vars)}")
    codes = np.asarray(m["verdict"].transpose("setting", "claim").values, dtype=np.int64)
    if codes.size and not np.isin(codes, list(VERDICT_COLOURS)).all():
        raise ValueError(f"verdict codes must lie in {sorted(VERDICT_COLOURS)}, got {sorted(set(codes.ravel()))}")
    scores = np.asarray(m["score"].transpose("setting", "claim").values, dtype=np.float64)
    n_s, n_c = codes.shape
    if ax is None:
        fig, ax = plt.subplots(figsize=(2.0 + 1.25 * n_c + 2.5, 1.5 + 0.32 * n_s), layout="constrained")
    else:
        fig = ax.figure
    keys = sorted(VERDICT_COLOURS)
    cmap = ListedColormap([VERDICT_COLOURS[k][0] for k in keys])
    ax.imshow(codes, cmap=cmap, norm=BoundaryNorm(np.arange(keys[0] - 0.5, keys[-1] + 1.5), cmap.N), aspect="auto")
    for i in range(n_s):
        for j in range(n_c):
            if np.isfinite(scores[i, j]):
                ax.text(j, i, f"{scores[i, j]:.2f}", ha="center", va="center", fontsize=7)
    cols = m["claim_label"].values if "claim_label" in m.coords or "claim_label" in m else m["claim"].values
    ax.set_xticks(range(n_c), [str(c) for c in cols], rotation=30, ha="right", fontsize=8)
    rows = [str(s) for s in m["setting"].values]
    if "group" in m.coords or "group" in m:
        rows = [f"{s}  [{g}]" for s, g in zip(rows, m["group"].values, strict=True)]
    ax.set_yticks(range(n_s), rows, fontsize=8)
    ax.set_xticks(np.arange(-0.5, n_c), minor=True)
    ax.set_yticks(np.arange(-0.5, n_s), minor=True)
    ax.grid(which="minor", color="white", lw=1.5)
    ax.tick_params(which="minor", length=0)
    ax.legend(handles=[Patch(color=VERDICT_COLOURS[k][0], label=VERDICT_COLOURS[k][1]) for k in keys[::-1]],
              loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.set_title(title or "verdict per setting and claim (cell: the rule's score)", fontsize=9)
    return fig
