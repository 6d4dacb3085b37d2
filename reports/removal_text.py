"""What removing a feature meant in a run, in words: the run's removal, the methods that used another, faithfulness's.

Every score of an output-changing method answers "how does the output change when this feature is
removed?", so the report states what *removed* meant: the run's baseline (run["baseline"], else the
removal most explanations recorded in settings["baseline"], or the old settings["mask"]), each method
that used another one, and the removal the faithfulness metrics used (run["metrics"]["settings"]).
The sentences come from explain.adapters.removal (names and meanings only; it loads no model).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from explain.adapters import removal

from .constants import METHOD_TITLES, UNITLESS

if TYPE_CHECKING:
    from explain.results.explanation import Explanation, Results


def used(e: Explanation) -> str | None:
    """Return the removal an explanation recorded (None for methods that remove nothing, e.g. attention)."""
    if e.method in UNITLESS:
        return None
    return removal.used(e.settings or {})


def phrase(family: str, name: str) -> str:
    """Return '<name> (<what it means>)' for a known removal of `family`, else the recorded text itself."""
    known = {**removal.DESCRIPTIONS.get(family, {}), **removal.GRADIENT_ONLY}
    if name not in known:
        return name
    text = removal.describe(family, name)
    cut = text.find(" (IG cannot")  # advice for choosing a removal, not what this one meant
    return f"{name} ({text[:cut] if cut > 0 else text})"


def _feature(family: str) -> str:
    return "regions" if family == "image-classifier" else "words"


def run_removal(results: Results) -> str | None:
    """Return the run's removal: run['baseline'], else the one most of its explanations recorded."""
    given = results.run.get("baseline")
    if isinstance(given, str) and given:
        return given
    counts = Counter(n for n in (used(e) for e in results) if n)
    return counts.most_common(1)[0][0] if counts else None


def per_method(exps: Iterable[Explanation]) -> dict[str, list[str]]:
    """Return {method: the removals its explanations recorded, in order}, for methods that remove features."""
    out: dict[str, list[str]] = {}
    for e in exps:
        n = used(e)
        if n and n not in out.setdefault(e.method, []):
            out[e.method].append(n)
    return out


def others(exps: Iterable[Explanation], main: str | None, family: str) -> str:
    """Return the methods that removed features another way than `main`, as one clause ('' when none)."""
    parts = []
    for m, names in per_method(exps).items():
        rest = [n for n in names if n != main]
        if rest:
            parts.append(f"{METHOD_TITLES.get(m, m)} removed {_feature(family)} by {' and '.join(phrase(family, n) for n in rest)} instead")
    return "; ".join(parts)


def run_sentence(results: Results) -> str | None:
    """Return what removing a feature meant in this run, with any method that used another removal, or None."""
    family = results.model.family
    main = run_removal(results)
    rest = others(results, main, family)
    if main is None and not rest:
        return None
    text = f"removing a feature means: {phrase(family, main)}" if main else "removing a feature"
    return text + (f"; {rest}" if rest else "")


def input_sentence(exps: Iterable[Explanation], family: str, main: str | None) -> str | None:
    """Return the sentence an input's section shows: the removal its scores are measured against, per method where they differ."""
    exps = list(exps)
    names = per_method(exps)
    if not names:
        return None
    counts = Counter(n for ns in names.values() for n in ns)
    first = main if main is not None and main in counts else counts.most_common(1)[0][0]
    text = f"Removing a {_feature(family)[:-1]} means {phrase(family, first)}. Scores are changes of the model's output against that."
    rest = others(exps, first, family)
    return text + (f" {rest[0].upper() + rest[1:]}." if rest else "")


def faithfulness_sentence(results: Results) -> str | None:
    """Return how the faithfulness metrics removed features (run['metrics']['settings']), or None when not recorded."""
    settings = (results.run.get("metrics") or {}).get("settings")
    if not isinstance(settings, Mapping):
        return None
    names = [str(n) for n in settings.get("removals") or [] if n]
    first = settings.get("removal") or settings.get("mask")
    if first and str(first) not in names:
        names.insert(0, str(first))
    if not names:
        return None
    family = results.model.family
    text = f"The faithfulness figures removed {_feature(family)} by {phrase(family, names[0])}"
    if len(names) > 1:
        text += f" (the plain figures; also {', '.join(names[1:])}, as figure@removal)"
    return text + "."
