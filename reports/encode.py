"""Compact, script-safe data for the page: packed arrays, plain JSON values, escaping, numbers.

Everything the page's JavaScript reads goes through `script_json`, which escapes `<`, `>` and `&`
(so neither `</script>` nor `<!--` can close or confuse the script element) and writes ASCII only.
Arrays travel as base64: exact float32 for score vectors, 12-bit quantised + deflated for the big
matrices (attention maps, pixel maps) -- 12 bits keep three to four significant digits of the
largest value, which is what a heat map or its hover label can show, at a fifth of float32's size.
"""

from __future__ import annotations

import base64
import html
import json
import math
import zlib
from typing import Any

import numpy as np

QUANT_BITS = 12  # levels per matrix: 4096 (non-negative) or 4095 centred on an exact zero (signed)


def esc(value: Any) -> str:
    """Return `value` as text safe inside HTML element content and quoted attributes."""
    return html.escape("" if value is None else str(value), quote=True)


def plain(v: Any) -> Any:
    """Return `v` as JSON values (tuples to lists, numpy to Python, non-finite floats to None).

    Mirrors the results file's conversion, keys sorted as it writes them, so a report rendered
    before saving equals the report rendered from the reopened file.
    """
    if isinstance(v, dict):
        return {str(k): plain(v[k]) for k in sorted(v, key=str)}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return plain(v.tolist())
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return f if math.isfinite(f) else None
    return v


def number(v: Any) -> float | None:
    """Return `v` as a finite float, or None when it is missing or not a finite number."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def fmt(v: Any, digits: int = 4) -> str:
    """Return a number with `digits` significant digits ('—' when missing): 100 as '100', never '1e+02'."""
    f = number(v)
    if f is None:
        return "—"
    if f == 0:
        return "0"
    if 1e-3 <= abs(f) < 1e5:
        rounded = float(f"{f:.{digits}g}")
        decimals = max(0, digits - 1 - math.floor(math.log10(abs(rounded))))
        return f"{rounded:.{decimals}f}".rstrip("0").rstrip(".") if decimals else f"{rounded:.0f}"
    return f"{f:.{max(digits - 1, 1)}e}"


def signed(v: Any, digits: int = 3) -> str:
    """Return a score with its sign, '+0.012' or '−0.009' (a true minus sign), '0' for zero."""
    f = number(v)
    if f is None:
        return "—"
    text = fmt(abs(f), digits)
    return text if f == 0 else ("+" if f > 0 else "−") + text


def script_json(doc: Any) -> str:
    """Return `doc` as JSON text that is safe inside a <script type="application/json"> element."""
    text = json.dumps(plain(doc), ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def pack_exact(a: np.ndarray) -> dict[str, Any]:
    """Return a float32 array as {'dt': 'f4', 'shape', 'b'} (base64 of little-endian bytes)."""
    a = np.ascontiguousarray(np.nan_to_num(np.asarray(a, dtype="<f4"), nan=0.0, posinf=0.0, neginf=0.0))
    return {"dt": "f4", "shape": list(a.shape), "b": base64.b64encode(a.tobytes()).decode("ascii")}


def pack_quantized(a: np.ndarray) -> dict[str, Any]:
    """Return an array quantised to 12 bits and deflated: value = (q - off) * s.

    Byte-shuffled (all low bytes, then all high bytes) before deflate: the high bytes hold at most
    four bits each and compress to almost nothing.
    """
    a = np.nan_to_num(np.asarray(a, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    top = float(np.abs(a).max()) if a.size else 0.0
    levels = 2**QUANT_BITS - 1
    if a.size and float(a.min()) < 0:
        half = levels // 2  # 2047: zero stays exactly zero
        scale, off = (top / half if top else 1.0), half
    else:
        scale, off = (top / levels if top else 1.0), 0
    q = (np.rint(a / scale) + off).astype("<u2")
    shuffled = np.ascontiguousarray(q.reshape(-1).view(np.uint8).reshape(-1, 2).T).tobytes()
    return {
        "dt": "q",
        "shape": list(a.shape),
        "off": off,
        "s": float(np.float32(scale)),
        "z": 1,
        "b": base64.b64encode(zlib.compress(shuffled, 6)).decode("ascii"),  # 9: 2% smaller, 10x slower
    }


def unpack(p: dict[str, Any]) -> np.ndarray:
    """Return the array packed by `pack_exact` or `pack_quantized` (the page's decoder, in Python)."""
    raw = base64.b64decode(p["b"])
    if p.get("z"):
        raw = zlib.decompress(raw)
    if p["dt"] == "f4":
        return np.frombuffer(raw, dtype="<f4").reshape(p["shape"])
    n = len(raw) // 2
    b = np.frombuffer(raw, dtype=np.uint8)
    q = b[:n].astype(np.int64) | (b[n:].astype(np.int64) << 8)
    return ((q - p["off"]) * p["s"]).astype(np.float32).reshape(p["shape"])


def block_mean(a: np.ndarray, limit: int) -> np.ndarray:
    """Return a 2-D map shrunk by an integer factor (block means) so neither side exceeds `limit`."""
    h, w = a.shape
    f = max(1, math.ceil(max(h, w) / limit))
    if f == 1:
        return a
    ph, pw = -h % f, -w % f
    padded = np.pad(a.astype(np.float64), ((0, ph), (0, pw)), mode="edge")
    return padded.reshape((h + ph) // f, f, (w + pw) // f, f).mean(axis=(1, 3))


def is_base64(text: Any) -> bool:
    """Return True when `text` is a non-empty base64 string (safe to put after 'data:...;base64,')."""
    if not isinstance(text, str) or not text:
        return False
    stripped = "".join(text.split())
    return len(stripped) % 4 == 0 and all(c.isalnum() or c in "+/=" for c in stripped) and stripped.isascii()
