"""Method comparison in the report: which explanations of one input and target agree, and how much.

Agreement is defined once, in `explain.metrics.agreement` (top-k overlap of the most supporting
features, image maps pooled on a grid); this module only picks the comparable explanations and
packs the pairs for the page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from explain.metrics.agreement import basis, default_k, pair_agreement

from .encode import number

if TYPE_CHECKING:
    from explain.results.explanation import Explanation


def comparable(exps: Sequence[Explanation]) -> list[int]:
    """Return the positions of the explanations that share the first one's features (or grid shape)."""
    if not exps:
        return []
    first = exps[0]
    out = []
    for i, e in enumerate(exps):
        if e.granularity == "pixel" or first.granularity == "pixel":
            same = np.shape(e.scores) == np.shape(first.scores) and e.granularity == first.granularity
        else:
            same = tuple(e.features) == tuple(first.features) and np.size(e.scores) == len(e.features)
        if same:
            out.append(i)
    return out


def agreement(exps: Sequence[Explanation]) -> dict[str, Any]:
    """Return the comparison of one target's explanations: comparable rows, k, basis and per-pair [i, j, spearman, top-k]."""
    rows = comparable(exps)
    pairs: list[list[Any]] = []
    k, text = 0, ""
    for x in range(len(rows)):
        for y in range(x + 1, len(rows)):
            a, b = exps[rows[x]], exps[rows[y]]
            if a.method == b.method:
                continue
            p = pair_agreement(a, b)
            if p is not None:
                k = int(p["k"])
                pairs.append([rows[x], rows[y], number(p["spearman"]), number(p["top_k"])])
    if rows:
        first = exps[rows[0]]
        pixel = first.granularity == "pixel"
        n = 64 if pixel else int(np.size(first.scores))
        n = min(n, int(np.size(first.scores)))
        k = k or default_k(n)
        text = basis(n, pixel, k)
    return {"rows": rows, "k": k, "basis": text, "pairs": pairs}
