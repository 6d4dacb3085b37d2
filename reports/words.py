"""A text's words coloured by their scores, as plain HTML: the first screen's strips and the inputs table's 'why' cell.

The markup is the one the page's script gives its method cards (assets/views.js): each word a
`span.w` with its score in `aria-label` and `data-tip`, in a `.heat` list that is one tab stop
(arrow keys move between its words, assets/core.js), so every score a mouse can read, a keyboard
and a screen reader can read too. A long text keeps its strongest words in view wherever they
are, with the words between them folded behind a button that unfolds them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .encode import esc, fmt, signed
from .inline import diverging_rgb

LIMIT = 60  # texts up to this many words are shown whole
TOP_SHOWN = 5  # longer ones: the strongest words by |score| ...
CONTEXT = 4  # ... each with this many words either side, and the opening words


def word_span(word: str, score: float, scale: float, units: str, grey: bool = False, extra: str = "") -> str:
    """Return one word: coloured by score / scale (grey: not coloured), its score readable by hover, focus and screen reader."""
    label = f"{word.strip() or repr(word)}: {signed(score)} {units}"
    style = ""
    if not grey:
        t = float(np.clip(score / (scale or 1.0), -1, 1))
        r, g, b = (int(x) for x in diverging_rgb(np.array([t]))[0])
        style = f' style="background:rgb({r},{g},{b});{"color:#fff;" if abs(t) > 0.6 else ""}"'
    tip = f"{word}\n{units}: {fmt(score, 4)}" + (f"\n{extra}" if extra else "")
    return (f'<span class="w" role="listitem" tabindex="-1" aria-label="{esc(label)}" data-tip="{esc(tip)}"{style}>'
            f"{esc(word)}</span>")


def shown_words(values: np.ndarray, limit: int = LIMIT, top: int = TOP_SHOWN, context: int = CONTEXT) -> list[bool]:
    """Return which words a strip shows at first: all up to `limit`; else the opening words and the strongest `top` with context."""
    n = len(values)
    if n <= limit:
        return [True] * n
    keep = np.zeros(n, dtype=bool)
    keep[: 2 * context] = True
    for j in np.argsort(-np.abs(np.nan_to_num(values)), kind="stable")[:top]:
        keep[max(0, j - context) : j + context + 1] = True
    return keep.tolist()


def strip_html(features: Sequence[str], values: np.ndarray, scale: float, units: str, what: str, *, grey: bool = False,
               limit: int = LIMIT) -> str:
    """Return the words of one explanation as a `.heat` list (long texts folded between their strongest words)."""
    shown = shown_words(values, limit)
    parts: list[str] = []
    run: list[str] = []

    def fold() -> None:
        if run:
            n = len(run)
            parts.append(f'<button type="button" class="more" aria-expanded="false" title="show the {n} words here">'
                         f'… {n} more</button><span class="el" hidden>{" ".join(run)}</span>')
            run.clear()

    for k, (f, v) in enumerate(zip(features, values)):
        span = word_span(str(f), float(v), scale, units, grey)
        if shown[k]:
            fold()
            parts.append(span)
        else:
            run.append(span)
    fold()
    folded = " · long text: its strongest words are shown, the rest folded" if not all(shown) else ""
    return (f'<div class="heat small{" grey" if grey else ""}" role="list" tabindex="0" '
            f'aria-label="{esc(what)}: {len(values)} words, arrow keys read each score{folded}">{" ".join(parts)}</div>')
