"""The per-input data blob the page renders from: explanations grouped by target, packed compactly."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .compare import agreement
from .constants import CLIP_PERCENT, METHOD_TITLES
from .encode import block_mean, fmt, is_base64, number, pack_exact, pack_quantized, plain
from .evidence import clean_token, cost_text, noise_floor, output_change, scale_groups, weak_evidence
from .image_attention import image_doc
from .quality import check_lines, flagged
from .removal_text import input_sentence
from .trust import TrustContext, trust_doc

if TYPE_CHECKING:
    from explain.results.explanation import Explanation, InputRecord, Target

MAX_SIDE = 320  # pixel maps larger than this are shown (and compared) as block means


def method_title(name: str) -> str:
    """Return the display name of a registered method (the name itself when unknown)."""
    return METHOD_TITLES.get(name, name)  # shared with the Jupyter view and the index (constants)


def target_key(t: Target) -> tuple[int, int | None]:
    """Return what identifies a target within one input: its position (generated token), else its index."""
    return (-2, int(t.position)) if t.position is not None else (int(t.index), None)


def target_groups(exps: Sequence[Explanation]) -> list[list[Explanation]]:
    """Return the explanations grouped by target: first-seen order; causal-LM tokens by position, whole last."""
    groups: dict[tuple[int, int | None], list[Explanation]] = {}
    for e in exps:
        groups.setdefault(target_key(e.target), []).append(e)
    ordered = list(groups.values())
    if any(e.family == "causal-lm" for e in exps):
        ordered.sort(key=lambda g: (g[0].target.position is None, g[0].target.position or 0))
    return ordered


def target_doc(t: Target) -> dict[str, Any]:
    """Return a target as {'i', 'l', 'p', 'pos'}."""
    return {"i": int(t.index), "l": str(t.label), "p": number(t.probability), "pos": t.position}


def pixel_map(e: Explanation) -> np.ndarray | None:
    """Return the 2-D map the page shows for a pixel explanation (shrunk above MAX_SIDE), else None."""
    s = np.asarray(e.scores)
    if e.granularity != "pixel" or s.ndim != 2 or s.size == 0:
        return None
    return block_mean(s, MAX_SIDE)


def attention_doc(e: Explanation) -> dict[str, Any] | None:
    """Return the attention maps of `e` (word- and token-level, per head and rolled out), if any."""
    x = e.extras or {}
    out: dict[str, Any] = {}
    for key, name, ndim in (("w", "attention", 4), ("wr", "rollout", 2), ("t", "token_attention", 4), ("tr", "token_rollout", 2)):
        v = x.get(name)
        if isinstance(v, np.ndarray) and v.ndim == ndim and v.size and v.shape[-1] == v.shape[-2]:
            # At the precision the results file keeps them (float16: explain/results/arrays.py), so the
            # report of a run and the report of its reopened results file are the same page.
            out[key] = pack_quantized(v.astype(np.float16))
    if not out:
        return None
    tokens = x.get("tokens")
    out["tokens"] = [clean_token(t) for t in tokens] if isinstance(tokens, (list, tuple)) else []
    # The row that answers: CLS for encoders (row 0), the last non-pad token for decoders.
    q = x.get("answer_row", x.get("query"))
    out["q"] = int(q) if isinstance(q, (int, np.integer)) else (0 if e.family != "causal-lm" else None)
    out["heads"] = str(x.get("heads", "all"))
    return out


def explanation_doc(e: Explanation, scale: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return one explanation as the page needs it: features, packed scores, units and scale, checks, cost, maps.

    `max` is the colour scale it is drawn on (the report's, for words in output units), `own`
    its target's; `total` f(x) - f(baseline) where the method reports it; `floor` its noise floor.
    """
    ft = (e.extras or {}).get("feature_tokens")
    if not (isinstance(ft, (list, tuple)) and len(ft) == len(e.features)):
        ft = None
    scale = scale or scale_groups([e])[0]
    feats = [clean_token(f) if e.granularity == "token" else str(f) for f in e.features]
    doc: dict[str, Any] = {
        "m": e.method,
        "title": method_title(e.method),
        "g": e.granularity,
        "f": feats,
        "ft": None if ft is None else [[clean_token(t) for t in ts] for ts in ft],
        "checks": check_lines(e),
        "flag": flagged(e),
        "noev": weak_evidence(e),
        "units": scale["units"],
        "max": number(scale["max"]),
        "own": number(scale.get("own")),
        "shared": scale.get("shared", False),
        "total": output_change(e),
        "floor": noise_floor(e),
        "cost": cost_text(e),
        "settings": settings_text(e.settings),
    }
    pm = pixel_map(e)
    if pm is not None:
        h, w = np.shape(e.scores)
        doc["s"] = pack_quantized(pm)
        doc["full"] = [int(h), int(w)]
        doc["fac"] = max(1, -(-max(h, w) // MAX_SIDE))  # block size of the shown map, in pixels
        a = np.abs(np.asarray(e.scores, dtype=np.float64))
        doc["max"] = number(a.max())
        # The colour range ends at the (100 - CLIP_PERCENT)th percentile of |score|: brighter pixels are clipped.
        doc["clip"] = number(np.percentile(a, 100 - CLIP_PERCENT)) or doc["max"]
    else:
        doc["s"] = pack_exact(np.ravel(np.asarray(e.scores, dtype=np.float32)))
    att = attention_doc(e) if e.method == "attention" or "attention" in (e.extras or {}) else None
    if att is not None:
        doc["att"] = att
    vit = image_doc(e)  # vision transformers: patch grid, rollout, every head (image_attention)
    if vit is not None:
        doc["vit"] = vit
    return doc


def settings_text(settings: Any) -> str:
    """Return method settings as one line 'name=value · ...' (values as JSON-like text)."""
    items = plain(dict(settings or {}))
    return " · ".join(f"{k}={_short(v)}" for k, v in items.items())


def _short(v: Any) -> str:
    if v is None:
        return "default"
    if isinstance(v, float):
        return fmt(v, 4)
    text = str(v)
    return text if len(text) <= 60 else text[:57] + "…"


def input_doc(record: InputRecord, exps: Sequence[Explanation], trust: TrustContext | None = None,
              removal: str | None = None, scales: dict[str, float] | None = None) -> dict[str, Any]:
    """Return everything the page needs to render one input's section (with trust panels when `trust` is enabled).

    `removal` is the run's removal: the section names it, and each method that used another.
    `scales`: the report's colour scale per output kind (evidence.report_scales).
    """
    family = exps[0].family if exps else ""
    groups = []
    for g in target_groups(exps):
        cmp = agreement(g)
        t = g[0].target
        whole = family == "causal-lm" and t.position is None
        group = {
            "t": target_doc(t),
            "title": "whole continuation" if whole else (clean_token(t.label) if family == "causal-lm" else str(t.label)),
            "whole": whole,
            "exps": [explanation_doc(e, sc) for e, sc in zip(g, scale_groups(list(g), scales))],
            "cmp": cmp,
        }
        panel = trust_doc(g, trust) if trust is not None else None
        if panel is not None:
            group["trust"] = panel
        groups.append(group)
    doc: dict[str, Any] = {
        "i": int(record.index),
        "kind": record.kind,
        "family": family,
        "groups": groups,
    }
    if record.kind == "image" and is_base64(record.image_png):
        doc["img"] = "".join(str(record.image_png).split())
        view = next((e.extras["model_view"] for e in exps if isinstance((e.extras or {}).get("model_view"), dict)), None)
        if view is not None:  # a crop: the part of the image the model never saw is shaded on every overlay
            doc["view"] = [float(v) for v in view["box"]]
    if family == "causal-lm":
        doc["prompt_n"] = prompt_features(record, exps)
    removed = input_sentence(exps, family, removal)
    if removed:
        doc["baseline"] = removed
    return doc


def prompt_features(record: InputRecord, exps: Sequence[Explanation]) -> int:
    """Return how many leading features of a causal-LM explanation are prompt words (the rest were generated).

    The whole-continuation target explains over the prompt alone; otherwise the first generated
    token's context is the prompt.
    """
    whole = [e for e in exps if e.target.position is None]
    if whole:
        return len(whole[0].features)
    firsts = [e for e in exps if e.target.position is not None]
    return min((len(e.features) for e in firsts), default=0)


def estimate_height(doc: dict[str, Any]) -> int:
    """Return a rough pixel height of an input's drawn section: its placeholder keeps the page still."""
    lm = doc["family"] == "causal-lm"
    h = 70 + (120 + 26 * int(doc.get("prompt_n") or 0) if lm else 0)
    if doc.get("img"):
        h += 300  # the original, once
    if not lm and len(doc["groups"]) > 1:
        h += 90 + sum(100 + 30 * math.ceil(sum(len(f) + 3 for f in e["f"]) / 110) for e in doc["groups"][0]["exps"])  # contrast
    for g in doc["groups"][-1:] if lm else doc["groups"][:1]:  # one class is drawn at a time (the tabs switch)
        exps, cmp = g["exps"], g["cmp"]
        pixel = any(e["g"] == "pixel" for e in exps)
        h += 50
        if pixel:
            h += 440 * math.ceil(len(exps) / 3)
        for e in [] if pixel else exps:
            chars = sum(len(f) + 3 for f in e["f"])
            h += 110 + 30 * math.ceil(chars / 110) + 30 * len(e["checks"]) + (560 if "att" in e else 0)
        if "trust" in g:
            rows = g["trust"]["rows"]
            h += 90 + 58 * len(rows) + (300 if any(r["curves"] for r in rows) else 0)
        if cmp["rows"]:
            h += 50 + (0 if pixel else 150 + 34 * len(cmp["rows"])) + (60 + 26 * len(cmp["pairs"]) if cmp["pairs"] else 0)
    return int(h)
