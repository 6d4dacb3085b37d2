"""Jupyter view of one Explanation: a compact, script-free heat strip (Results: reports.show), and the PNG helpers."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import TYPE_CHECKING

import numpy as np

from .data import method_title, pixel_map
from .encode import esc, fmt
from .evidence import score_units, weak_evidence
from .quality import check_lines
from .constants import COLORSCALE

if TYPE_CHECKING:
    from explain.results.explanation import Explanation

_STOPS = np.array([t for t, _ in COLORSCALE])
_RGB = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for _, c in COLORSCALE], dtype=np.float64)
_LEGEND = "linear-gradient(to right, " + ", ".join(f"{c} {t:.0%}" for t, c in COLORSCALE) + ")"


def diverging_rgb(v: np.ndarray) -> np.ndarray:
    """Return uint8 RGB colours (..., 3) for values in [-1, 1] on the report's diverging scale."""
    t = (np.clip(np.nan_to_num(np.asarray(v, dtype=np.float64)), -1, 1) + 1) / 2
    out = np.stack([np.interp(t, _STOPS, _RGB[:, k]) for k in range(3)], axis=-1)
    return np.rint(out).astype(np.uint8)


def png_base64(rgb: np.ndarray) -> str:
    """Return an (H, W, 3) RGB or (H, W, 4) RGBA uint8 image as a base64 PNG (no imaging library needed)."""
    h, w, channels = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6 if channels == 4 else 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    return base64.b64encode(png).decode("ascii")


def explanation_html(e: Explanation) -> str:
    """Return one Explanation as a small self-contained HTML block (heat strip or heat map, no script)."""
    units = score_units(e)
    head = (
        f"<div style='font-weight:600'>{esc(method_title(e.method))} "
        f"<span style='font-weight:400;color:#59636e'>· input {esc(e.input)} · target {esc(e.target.label)} "
        f"(p = {fmt(e.target.probability, 3)}) · {esc(e.granularity)} · {fmt(round(float(e.seconds), 4), 3)} s, "
        f"{int(e.rows):,} row{'' if int(e.rows) == 1 else 's'}</span></div>"
    )
    quiet = weak_evidence(e)
    pm = pixel_map(e)
    if pm is not None:
        m = float(np.abs(pm).max()) or 1.0
        pm = pm * 0 if quiet else pm
        body = (
            f"<img alt='attribution map' src='data:image/png;base64,{png_base64(diverging_rgb(pm / m))}' "
            "style='width:224px;image-rendering:pixelated;border:1px solid #d1d9e0'>"
        )
    else:
        scores = np.ravel(np.asarray(e.scores, dtype=np.float64))
        m = float(np.abs(scores).max()) if scores.size else 0.0
        m = m or 1.0
        colours = diverging_rgb(scores / m * (0 if quiet else 1))
        tokens = (e.extras or {}).get("feature_tokens")
        spans = []
        for k, (f, s) in enumerate(zip(e.features, scores)):
            r, g, b = (int(x) for x in colours[k])
            tip = f"{units}: {fmt(s, 5)}"
            if isinstance(tokens, (list, tuple)) and len(tokens) == len(e.features):
                tip += " · tokens: " + " ".join(str(t) for t in tokens[k])
            fg = "#fff" if abs(s / m) > 0.6 else "#1f2328"
            spans.append(
                f"<span title='{esc(tip)}' style='background:rgb({r},{g},{b});color:{fg};padding:1px 4px;"
                f"border-radius:3px'>{esc(f)}</span>"
            )
        body = f"<div style='line-height:2;font-size:14px'>{' '.join(spans)}</div>"
    checks = "".join(
        f"<div style='font-size:12px;color:{'#b2182b' if c['bad'] else '#59636e'}'>{esc(c['label'])}: {esc(c['value'])}</div>"
        for c in check_lines(e)
    )
    legend = (
        f"<div style='display:flex;gap:6px;align-items:center;font-size:11px;color:#59636e;margin-top:4px'>−{fmt(m, 3)} "
        f"<span style='display:inline-block;width:120px;height:8px;background:{_LEGEND}'></span> +{fmt(m, 3)} {esc(units)}</div>"
    )
    if quiet:
        legend = f"<div style='font-size:12px;color:#6e4b00;background:#fff8e1;padding:2px 6px;margin-top:4px'>{esc(quiet)}</div>"
    return (
        "<div style='font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;max-width:900px'>"
        f"{head}{body}{legend}{checks}</div>"
    )
