"""Target specs: one rule for ints and strings, in the Python API and on the command line.

Classifiers (labels are fixed per model, so a spec resolves the same way for every input):

1. ``"#2"`` or ``"index:2"`` is always the class at index 2;
   ``"label:2"`` is always the class whose label is "2".
2. Anything else - a string or a Python int, read as ``str(value)`` - names a label when one is
   spelt that way (exact, then ignoring case). So with labels ("1", "2", "3"), ``target=2``,
   ``target="2"`` and ``--target 2`` all mean the label "2" (index 1).
3. Otherwise an integer (an int or a digit string) is an index; anything else is an error that
   lists the labels.
4. ``"all"`` means every class (``"label:all"`` for a label called "all").

Causal LMs (their "labels", the generated tokens, change from input to input, so a bare
number cannot be decided once per run): a string is a generated token's text or a keyword
(``steps``, ``sum``, ``all``); ``"step:2"`` or ``"#2"`` is step 2 (``"step:-1"``: the last);
``"token:all"`` is the token whose text is "all"; a Python int is a step.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import TargetError

INDEX_PREFIXES = ("#", "index:")
LABEL_PREFIX = "label:"
ALL_CLASSES = "all"


def as_list(spec: Any) -> list[Any]:
    """Return a target spec as a list of single specs."""
    return list(spec) if isinstance(spec, (list, tuple)) else [spec]


def is_int(value: Any) -> bool:
    """Return True for a Python or numpy integer that is not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def strip_prefix(text: str, prefixes: Sequence[str]) -> str | None:
    """Return `text` without the first of `prefixes` it starts with (any case), or None."""
    low = text.lower()
    for p in prefixes:
        if low.startswith(p):
            return text[len(p) :].strip()
    return None


def parse_int(text: str, what: str) -> int:
    """Return `text` as an int, or raise TargetError naming `what` was expected."""
    try:
        return int(text)
    except ValueError:
        raise TargetError(f"{what} {text!r} is not a whole number") from None


def class_indices(spec: Any, labels: Sequence[str]) -> list[int]:
    """Return the class indices one spec names under the rule above (a list for ``all``)."""
    if spec is None or isinstance(spec, bool) or not (is_int(spec) or isinstance(spec, str)):
        raise TargetError(f"target {spec!r} is not understood: give a label name, an index, '#N', 'label:NAME' or 'all'")
    n = len(labels)
    text = str(spec).strip()
    raw_index = strip_prefix(text, INDEX_PREFIXES)
    if raw_index is not None:
        return [_index(parse_int(raw_index, "target index"), n)]
    name = strip_prefix(text, (LABEL_PREFIX,))
    if name is None:
        if text.lower() == ALL_CLASSES:
            return list(range(n))
        name = text
    found = _label(name, labels)
    if found is not None:
        return [found]
    if strip_prefix(text, (LABEL_PREFIX,)) is None and text.lstrip("-").isdigit():
        return [_index(int(text), n)]
    shown = ", ".join(labels[:20]) + (" ..." if n > 20 else "")
    raise TargetError(f"unknown target label {name!r}; the model's labels are: {shown} (or an index as '#N')")


def _label(name: str, labels: Sequence[str]) -> int | None:
    if name in labels:
        return list(labels).index(name)
    lowered = [x.lower() for x in labels]
    return lowered.index(name.lower()) if name.lower() in lowered else None


def _index(i: int, n: int) -> int:
    if 0 <= i < n:
        return i
    raise TargetError(f"target index {i} is out of range: the model has {n} classes (0..{n - 1})")


def top_indices(probs: np.ndarray, k: int) -> list[int]:
    """Return the indices of the k most probable classes, most probable first (ties: lower index)."""
    order = np.argsort(-np.asarray(probs, dtype=np.float64), kind="stable")
    return [int(i) for i in order[:k]]
