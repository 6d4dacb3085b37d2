"""The dataset-level view of big runs: what carries attribution per class, distributions, slow inputs, a sample.

A run over thousands of inputs cannot show a section per input and stay one small, usable file.
What it shows instead is computed here, from the Results alone:
- per class (target label) and method, the words (text, prompts) or image regions that carry the
  most attribution across inputs: each explanation's |score| is divided by its total (words) or
  its max (maps), so every input counts once whatever its scale;
- histograms of the quality figures and trust metrics, binned here (a few numbers per bin, not
  one point per explanation);
- the slowest inputs by Explanation.seconds;
- which inputs get a full section: the first ones, failures, flagged, the slowest, and a seeded
  random sample of the rest, so the same Results always give the same report.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np

from .data import method_title
from .encode import block_mean, number, pack_quantized
from .quality import SERIES, check_value, flagged, series_limit
from .trust import AGREEMENT, FAITHFULNESS, SANITY, per_method_values

if TYPE_CHECKING:
    from explain.results.explanation import Explanation, Results

MAX_INPUTS = 100  # sections shown by default: 100 texts x 4 methods with attention made an 8.2 MB report
AGGREGATE_MIN = 20  # runs with at least this many inputs get the across-inputs view
SAMPLE_SEED = 0
TOP_WORDS = 25  # words listed per class and method
MIN_COUNT = 3  # a word must occur in this many explanations to be ranked by its mean share
MAP_SIDE = 48  # class-mean attribution maps are shown at most this many cells a side
MAX_CLASSES = 40  # classes with the most explanations first; an ImageNet head has 1000
SLOWEST = 15
BINS = 30


def sample(results: Results, max_inputs: int | None, seed: int = SAMPLE_SEED) -> dict[int, str] | None:
    """Return {input index: why it is shown} for the inputs that get a section, or None when all of them do.

    Deterministic: the first max_inputs/4 inputs, failed inputs (up to max_inputs/4), flagged
    ones and the slowest (up to max_inputs/10 each), then a random sample of the rest seeded
    with `seed`.
    """
    order = [int(r.index) for r in results.inputs]
    if max_inputs is None or len(order) <= max_inputs:
        return None
    if max_inputs < 1:
        raise ValueError(f"max_inputs must be at least 1 (or None for every input), got {max_inputs}")
    chosen: dict[int, str] = {}

    def take(candidates: Iterable[int], why: str, limit: int) -> None:
        n = 0
        for i in candidates:
            if n >= limit or len(chosen) >= max_inputs:
                return
            if i not in chosen:
                chosen[i] = why
                n += 1

    take(order, "first", max(1, max_inputs // 4))
    failed = list(dict.fromkeys(int(f.input) for f in results.failures))
    take(failed, "failed", max(1, max_inputs // 4))
    flags = [int(e.input) for e in results if flagged(e) or number((e.metrics or {}).get("sanity_flag")) == 1.0]
    take(dict.fromkeys(flags), "flagged", max(1, max_inputs // 10))
    seconds = input_seconds(results)
    take(sorted(seconds, key=lambda i: (-seconds[i], i)), "slowest", max(1, max_inputs // 10))
    rest = [i for i in order if i not in chosen]
    rng = np.random.default_rng(seed)
    picked: list[int] = rng.choice(len(rest), size=min(len(rest), max_inputs - len(chosen)), replace=False).tolist() if rest else []
    take((rest[k] for k in sorted(int(p) for p in picked)), "random", max_inputs)
    return {i: chosen[i] for i in order if i in chosen}


def input_seconds(results: Iterable[Explanation]) -> dict[int, float]:
    """Return the seconds spent on each input (all its explanations)."""
    out: dict[int, float] = {}
    for e in results:
        out[int(e.input)] = out.get(int(e.input), 0.0) + float(e.seconds)
    return out


def slowest(results: Results, shown: Mapping[int, str] | None, k: int = SLOWEST) -> list[dict[str, Any]]:
    """Return the k slowest inputs: index, seconds, rows, seconds per method, and whether a section shows it."""
    per: dict[int, dict[str, Any]] = {}
    for e in results:
        d = per.setdefault(int(e.input), {"i": int(e.input), "seconds": 0.0, "rows": 0, "methods": {}})
        d["seconds"] += float(e.seconds)
        d["rows"] += int(e.rows)
        d["methods"][e.method] = d["methods"].get(e.method, 0.0) + float(e.seconds)
    top = sorted(per.values(), key=lambda d: (-d["seconds"], d["i"]))[:k]
    for d in top:
        d["seconds"] = round(d["seconds"], 4)
        d["methods"] = [[m, round(s, 4)] for m, s in sorted(d["methods"].items(), key=lambda x: -x[1])]
        d["shown"] = shown is None or d["i"] in shown
    return top


def _class_groups(results: Results) -> list[tuple[str, list[Explanation]]]:
    """Return (class label, explanations) with the most explained classes first; causal LMs by whole continuation."""
    exps = list(results)
    if any(e.family == "causal-lm" for e in exps):
        whole = [e for e in exps if e.target.position is None]
        return [("whole continuation", whole)] if whole else [("generated tokens", exps)]
    groups: dict[str, list[Explanation]] = {}
    for e in exps:
        groups.setdefault(str(e.target.label), []).append(e)
    return sorted(groups.items(), key=lambda kv: (-len({e.input for e in kv[1]}), kv[0]))


def _by_method(exps: Sequence[Explanation]) -> dict[str, list[Explanation]]:
    out: dict[str, list[Explanation]] = {}
    for e in exps:
        out.setdefault(e.method, []).append(e)
    return out


def _word(f: str) -> str:
    return " ".join(str(f).split()).lower()


def top_words(exps: Sequence[Explanation], k: int = TOP_WORDS, min_count: int = MIN_COUNT) -> dict[str, Any]:
    """Return the words that carry the most attribution over `exps` (one method, one class).

    Each explanation's |scores| are divided by their sum (its attribution, as shares adding to 1).
    Per word (case-folded): `share`, its mean share per explanation (all words' shares add to 1),
    `count`, the explanations it occurs in, `mean`, its share where it occurs, and `sign`, its mean
    signed score / max |score| there (red supports, blue opposes). Rows: [word, share, count, mean, sign].
    """
    acc: dict[str, list[float]] = {}
    n = 0
    for e in exps:
        s = np.ravel(np.asarray(e.scores, dtype=np.float64))
        if e.granularity == "pixel" or s.size != len(e.features) or not s.size:
            continue
        n += 1
        a = np.abs(np.nan_to_num(s))
        total, top = float(a.sum()), float(a.max())
        if total == 0:
            continue
        here: dict[str, list[float]] = {}
        for f, v, av in zip(e.features, s, a):
            w = _word(f)
            if w:
                h = here.setdefault(w, [0.0, 0.0])
                h[0] += av / total
                h[1] += v / top
        for w, (share, sign) in here.items():
            t = acc.setdefault(w, [0.0, 0.0, 0.0])
            t[0] += share
            t[1] += 1
            t[2] += sign
    rows = [(w, t[0] / max(n, 1), int(t[1]), t[0] / t[1], t[2] / t[1]) for w, t in acc.items()]
    by_share = sorted(rows, key=lambda r: (-r[1], r[0]))[:k]
    by_mean = sorted((r for r in rows if r[2] >= min(min_count, n)), key=lambda r: (-r[3], r[0]))[:k]

    def rnd(r: tuple[str, float, int, float, float]) -> list[Any]:
        return [r[0], round(float(r[1]), 5), r[2], round(float(r[3]), 5), round(float(r[4]), 4)]

    return {"n": n, "vocab": len(rows), "share": [rnd(r) for r in by_share], "mean": [rnd(r) for r in by_mean]}


def resize(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Return a 2-D map resampled to `shape`: block means down to about twice the size, then bilinear."""
    h, w = shape
    a = np.asarray(a, dtype=np.float64)
    if a.shape == (h, w):
        return a
    a = block_mean(a, max(2 * max(h, w), 1))
    ys = (np.arange(h) + 0.5) * a.shape[0] / h - 0.5
    xs = (np.arange(w) + 0.5) * a.shape[1] / w - 0.5
    rows = np.stack([np.interp(xs, np.arange(a.shape[1]), r) for r in a])  # (H0, w)
    return np.stack([np.interp(ys, np.arange(a.shape[0]), c) for c in rows.T], axis=1)  # (h, w)


def map_shape(exps: Sequence[Explanation]) -> tuple[int, int] | None:
    """Return the common grid of the class-mean maps: the maps' own shape when they share one, shrunk to MAP_SIDE."""
    shapes = {np.shape(e.scores) for e in exps if e.granularity == "pixel" and np.ndim(e.scores) == 2 and np.size(e.scores)}
    if not shapes:
        return None
    h, w = max(shapes, key=lambda s: (sum(np.shape(e.scores) == s for e in exps), s))
    f = max(1, math.ceil(max(h, w) / MAP_SIDE))
    return (max(1, round(h / f)), max(1, round(w / f)))


def mean_map(exps: Sequence[Explanation], shape: tuple[int, int]) -> tuple[np.ndarray, int]:
    """Return the mean of |map| / max |map| over the pixel explanations, at `shape`, and how many there were."""
    total, n = np.zeros(shape), 0
    for e in exps:
        s = np.asarray(e.scores, dtype=np.float64)
        if e.granularity != "pixel" or s.ndim != 2 or not s.size:
            continue
        a = np.abs(np.nan_to_num(s))
        top = float(a.max())
        total += resize(a / top if top else a, shape)
        n += 1
    return (total / n if n else total), n


def aggregate(results: Results) -> dict[str, Any] | None:
    """Return the per-class view: the top words per method (text) or the mean |attribution| maps (images)."""
    groups = _class_groups(results)
    if not groups:
        return None
    shape = map_shape(list(results))
    kind = "maps" if shape is not None else "words"
    classes = []
    for label, exps in groups[:MAX_CLASSES]:
        methods = []
        for m, es in _by_method(exps).items():
            if kind == "maps":
                avg, n = mean_map(es, shape)  # type: ignore[arg-type]
                if n:
                    methods.append({"m": m, "title": method_title(m), "n": n, "map": pack_quantized(avg.astype(np.float32))})
            else:
                words = top_words(es)
                if words["n"]:
                    methods.append({"m": m, "title": method_title(m), **words})
        if methods:
            classes.append({"label": label, "inputs": len({e.input for e in exps}), "methods": methods})
    if not classes:
        return None
    return {"kind": kind, "classes": classes, "more": max(0, len(groups) - MAX_CLASSES), "shape": list(shape) if shape else None}


def histogram(values: Sequence[float], edges: np.ndarray) -> list[int]:
    """Return the counts of `values` in the bins `edges` (values outside go to the end bins)."""
    x = np.clip(np.asarray(values, dtype=np.float64), edges[0], edges[-1])
    return np.histogram(x, bins=edges)[0].astype(int).tolist()


def _edges(values: Iterable[float], log: bool, span: tuple[float, float] | None = None) -> np.ndarray:
    v = np.asarray(list(values), dtype=np.float64)
    if log:
        pos = v[v > 0]
        lo, hi = (float(pos.min()), float(pos.max())) if pos.size else (1e-6, 1.0)
        lo, hi = math.log10(lo), math.log10(hi)
        if hi - lo < 1e-9:
            lo, hi = lo - 0.5, hi + 0.5
        return 10 ** np.linspace(lo, hi, BINS + 1)
    lo, hi = span if span else ((float(v.min()), float(v.max())) if v.size else (0.0, 1.0))
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, BINS + 1)


def _dist(key: str, title: str, help: str, per: Mapping[str, Sequence[float]], *, log: bool = False,
          span: tuple[float, float] | None = None, limit: float | None = None, random: float | None = None) -> dict[str, Any]:
    vals = [v for vs in per.values() for v in vs]
    zeros = 0
    if log:  # exact zeros have no place on a log axis: counted and said, never drawn at an invented floor
        zeros = sum(1 for v in vals if v == 0)
        per = {m: [abs(v) for v in vs if v != 0] for m, vs in per.items()}
        per = {m: vs for m, vs in per.items() if vs}
        vals = [v for vs in per.values() for v in vs]
    marks = [v for v in (limit, random) if v is not None and (v > 0 or not log)]
    edges = _edges(vals + marks, log, span)  # the limit and the random mean stay in view
    return {
        "key": key, "title": title, "help": help, "log": log, "limit": limit, "random": random, "zeros": zeros,
        "edges": [float(f"{x:.6g}") for x in edges],
        "traces": [{"m": m, "title": method_title(m), "n": len(vs), "counts": histogram(vs, edges),
                    "median": float(f"{float(np.median(vs)):.6g}")} for m, vs in per.items()],
    }


def self_distributions(results: Results) -> list[dict[str, Any]]:
    """Return histograms of the methods' self-check figures (IG δ, SHAP and LIME stability, LIME R²) in `results`."""
    out = []
    for s in SERIES:
        exps = [e for e in results if e.method == s.method]
        vals = {s.method: [v for v in (check_value(e, s.check) for e in exps) if v is not None]}
        if vals[s.method]:
            out.append(_dist(s.key, s.title, s.help, vals, log=s.log, limit=series_limit(exps, s)))
    return out


def metric_distributions(results: Results) -> list[dict[str, Any]]:
    """Return histograms of the trust metrics present: faithfulness (with the random mean), sanity, agreement."""
    out = []
    for f in FAITHFULNESS:
        vals = per_method_values(results, f.key)
        if vals:
            rnd = [v for vs in per_method_values(results, f.key + "_random").values() for v in vs]
            arrow = " (lower is better)" if f.better == "lower" else " (higher is better)"
            out.append(_dist(f.key, f.title + arrow, f.help, vals, random=float(np.mean(rnd)) if rnd else None))
    for f, span in ((SANITY, (-1.0, 1.0)), (AGREEMENT, (-1.0, 1.0))):
        vals = per_method_values(results, f.key)
        if vals:
            out.append(_dist(f.key, f.title, f.help, vals, span=span))
    return out


def sample_note(shown: Mapping[int, str] | None, total: int, failed: set[int]) -> str:
    """Return the plain-text note that says which inputs have a section (empty when all do)."""
    if shown is None:
        return ""
    why: dict[str, int] = {}
    for w in shown.values():
        why[w] = why.get(w, 0) + 1
    parts = ", ".join(f"{n} {w}" for w, n in why.items())
    note = (f"Showing {len(shown):,} of {total:,} inputs ({parts}); the views above cover all of them. The full results "
            "are in results.json (or the shards folder of a distributed run; explain.open_results reads either).")
    if failed:
        note += f" {len(failed):,} input{'s' if len(failed) != 1 else ''} had a failure ({len(failed & set(shown)):,} of them shown)."
    return note
