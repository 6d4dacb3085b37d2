"""The per-input data blob the page renders from: explanations grouped by target, packed compactly."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .compare import agreement
from .encode import block_mean, fmt, is_base64, number, pack_exact, pack_quantized, plain
from .quality import check_lines, flagged
from .trust import TrustContext, trust_doc

if TYPE_CHECKING:
    from explain.explanation import Explanation, InputRecord, Target

MAX_SIDE = 320  # pixel maps larger than this are shown (and compared) as block means

METHOD_TITLES = {
    "ig": "Integrated Gradients",
    "shap": "SHAP",
    "lime": "LIME",
    "attention": "Attention relevance",
    "ablation": "Ablation",
    "occlusion": "Occlusion",
    "gradcam": "Grad-CAM",
    "saliency": "Saliency",
    "gradient_shap": "GradientSHAP",
    "deeplift": "DeepLIFT",
}


def method_title(name: str) -> str:
    """Return the display name of a registered method (the name itself when unknown)."""
    return METHOD_TITLES.get(name, name)


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
            out[key] = pack_quantized(v)
    if not out:
        return None
    tokens = x.get("tokens")
    out["tokens"] = [str(t) for t in tokens] if isinstance(tokens, (list, tuple)) else []
    out["q"] = int(x["query"]) if isinstance(x.get("query"), (int, np.integer)) else None
    out["heads"] = str(x.get("heads", "all"))
    return out


def explanation_doc(e: Explanation) -> dict[str, Any]:
    """Return one explanation as the page needs it: features, packed scores, checks, cost, maps."""
    ft = (e.extras or {}).get("feature_tokens")
    if not (isinstance(ft, (list, tuple)) and len(ft) == len(e.features)):
        ft = None
    doc: dict[str, Any] = {
        "m": e.method,
        "title": method_title(e.method),
        "g": e.granularity,
        "f": [str(f) for f in e.features],
        "ft": None if ft is None else [[str(t) for t in ts] for ts in ft],
        "checks": check_lines(e),
        "flag": flagged(e),
        "cost": f"{fmt(round(float(e.seconds), 4), 3)} s · {int(e.rows):,} row{'' if int(e.rows) == 1 else 's'}",
        "settings": settings_text(e.settings),
    }
    pm = pixel_map(e)
    if pm is not None:
        h, w = np.shape(e.scores)
        doc["s"] = pack_quantized(pm)
        doc["full"] = [int(h), int(w)]
        doc["fac"] = max(1, -(-max(h, w) // MAX_SIDE))  # block size of the shown map, in pixels
        doc["max"] = number(np.abs(np.asarray(e.scores, dtype=np.float64)).max())
    else:
        doc["s"] = pack_exact(np.ravel(np.asarray(e.scores, dtype=np.float32)))
    att = attention_doc(e) if e.method == "attention" or "attention" in (e.extras or {}) else None
    if att is not None:
        doc["att"] = att
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


def input_doc(record: InputRecord, exps: Sequence[Explanation], trust: TrustContext | None = None) -> dict[str, Any]:
    """Return everything the page needs to render one input's section (with trust panels when `trust` is enabled)."""
    family = exps[0].family if exps else ""
    groups = []
    for g in target_groups(exps):
        maps = [pixel_map(e) for e in g]
        use_maps = all(m is not None for m in maps)
        cmp = agreement(g, [m for m in maps if m is not None] if use_maps else None)
        t = g[0].target
        whole = family == "causal-lm" and t.position is None
        group = {
            "t": target_doc(t),
            "title": "whole continuation" if whole else str(t.label),
            "whole": whole,
            "exps": [explanation_doc(e) for e in g],
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
    return doc


def estimate_height(doc: dict[str, Any]) -> int:
    """Return a rough pixel height of an input's drawn section: its placeholder keeps the page still."""
    lm = doc["family"] == "causal-lm"
    h = 70 if lm else 0
    for g in doc["groups"][-1:] if lm else doc["groups"]:
        exps, cmp = g["exps"], g["cmp"]
        pixel = any(e["g"] == "pixel" for e in exps)
        h += 50
        if pixel:
            h += 380 * math.ceil(len(exps) / 3)
        for e in [] if pixel else exps:
            chars = sum(len(f) + 3 for f in e["f"])
            h += 100 + 30 * math.ceil(chars / 110) + 40 * len(e["checks"]) + (520 if "att" in e else 0)
        if "trust" in g:
            rows = g["trust"]["rows"]
            h += 90 + 58 * len(rows) + (300 if any(r["curves"] for r in rows) else 0)
        if cmp["rows"]:
            h += 50 + (0 if pixel else 150 + 34 * len(cmp["rows"])) + (60 + 26 * len(cmp["pairs"]) if cmp["pairs"] else 0)
    return int(h)
