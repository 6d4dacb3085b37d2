"""The image view of vision transformers: the patch grid under the maps, rollout on the image, every head's map.

Built here from an explanation's extras as plotly figure specs (arrays packed as the page packs
them); the page draws them with its one plotting call (reports/assets/vit.js, hooked into each method card):

- `lay`: faint lines on the patch boundaries, added to the card's image overlay (attention's
  relevance, token Grad-CAM), so a reader sees the map is one value per patch;
- attention only, two figures: the rollout row (what the head's rows receive through every
  layer) over the image, and the overview of every layer and head (bertviz's model view for
  images): each tile is what the head's rows pay every patch, tiles on one scale, the mean over
  heads in the last column;
- `note`: patch size, the tokens dropped, the rows the head reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .constants import ATTENTION_SCALE
from .encode import fmt, pack_quantized

if TYPE_CHECKING:
    from explain.results.explanation import Explanation

GRID_LINE = "rgba(255, 255, 255, 0.35)"  # faint on dark and mid tones, nearly invisible on white
MAX_LINES = 64  # per direction; finer grids are drawn without lines (they would grey the map)


def patch_grid_shapes(grid: tuple[int, int], size: tuple[int, int], box: Any = None) -> list[dict[str, Any]]:
    """Return plotly line shapes on the patch boundaries of an image of `size` (H, W) cut into `grid` (rows, cols).

    `box` (x0, y0, x1, y1 in the image's pixels, explanation extras' model_view) is the window the
    model sees when its processor crops: the patches tile that window, not the whole image.
    """
    rows, cols = grid
    h, w = size
    if rows > MAX_LINES or cols > MAX_LINES:
        return []
    x0, y0, x1, y1 = (float(v) for v in box) if box is not None else (0.0, 0.0, float(w), float(h))
    line = {"color": GRID_LINE, "width": 1}
    # pixel (i, j) is centred at (j, i): its edges are at -0.5 and W - 0.5
    xs = [x0 + c * (x1 - x0) / cols - 0.5 for c in range(1, cols)]
    ys = [y0 + r * (y1 - y0) / rows - 0.5 for r in range(1, rows)]
    return [{"type": "line", "x0": x, "x1": x, "y0": y0 - 0.5, "y1": y1 - 0.5, "line": line, "layer": "above"} for x in xs] + [
        {"type": "line", "x0": x0 - 0.5, "x1": x1 - 0.5, "y0": y, "y1": y, "line": line, "layer": "above"} for y in ys
    ]


def _box(e: Explanation) -> Any:
    """Return the model's window in the image (extras' model_view box), or None when it sees the whole image."""
    view = (e.extras or {}).get("model_view")
    return view.get("box") if isinstance(view, dict) else None


def _grid(e: Explanation) -> tuple[int, int] | None:
    """Return the patch grid an image explanation's map sits on (attention; token Grad-CAM), else None."""
    x = e.extras or {}
    g = x.get("grid") if e.method == "attention" else (x.get("layer_map_size") if "tokens_dropped" in x else None)
    if isinstance(g, (list, tuple)) and len(g) == 2 and all(isinstance(v, (int, np.integer)) and v > 0 for v in g):
        return int(g[0]), int(g[1])
    return None


def _note(e: Explanation) -> str:
    x = e.extras or {}
    patch = x.get("patch_size") or []
    size = " × ".join(fmt(v, 3) for v in patch)
    dropped = x.get("special_tokens", x.get("tokens_dropped")) or []
    parts = [f"{'×'.join(str(v) for v in _grid(e) or ())} patches" + (f" of {size} model-input pixels" if size else "")]
    parts.append(f"{', '.join(dropped)} dropped from the maps" if dropped else "no special tokens")
    if x.get("answer_rule"):
        parts.append(f"the head reads the {x['answer_rule']}")
    if e.method == "gradcam" and x.get("layer_rule"):
        parts.append(f"layer {e.settings.get('layer')}: {x['layer_rule']}")
    return " · ".join(parts)


def _axes(height: int) -> dict[str, Any]:
    axis = {"visible": False, "constrain": "domain"}
    return {"xaxis": axis, "yaxis": {**axis, "scaleanchor": "x", "autorange": "reversed"}, "height": height,
            "margin": {"l": 4, "r": 4, "t": 6, "b": 6}}


def _rollout(e: Explanation, grid: tuple[int, int]) -> dict[str, Any] | None:
    roll = np.asarray((e.extras or {}).get("patch_rollout"))
    if roll.shape != grid:
        return None
    h, w = np.shape(e.scores)
    box = _box(e)
    x0, y0, x1, y1 = (float(v) for v in box) if box is not None else (0.0, 0.0, float(w), float(h))
    ph, pw = (y1 - y0) / grid[0], (x1 - x0) / grid[1]  # the patches tile the model's window
    heat = {"type": "heatmap", "zp": pack_quantized(roll), "x0": x0 + pw / 2 - 0.5, "dx": pw, "y0": y0 + ph / 2 - 0.5, "dy": ph,
            "colorscale": ATTENTION_SCALE, "zmin": float(roll.min()), "zmax": float(roll.max()), "opacity": 0.75,
            "hovertemplate": "rollout %{z:.3g}<extra></extra>", "colorbar": {"thickness": 10, "len": 0.9, "outlinewidth": 0}}
    image = {"type": "image", "source": "input", "hoverinfo": "skip", "opacity": 0.45}
    layout = {**_axes(min(420, int(300 * h / max(w, 1)) + 12)), "shapes": patch_grid_shapes(grid, (h, w), _box(e))}
    note = ("Attention rollout (Abnar & Zuidema 2020): what the head's rows receive from each patch through every layer "
            f"(head means mixed with the residual path); the same for every class. Colours run from its smallest to its largest "
            f"patch value ({fmt(float(roll.min()), 3)} to {fmt(float(roll.max()), 3)})")
    return {"note": note, "data": [image, heat], "layout": layout}


def _heads(e: Explanation, grid: tuple[int, int]) -> dict[str, Any] | None:
    att = np.asarray((e.extras or {}).get("patch_attention"))
    if att.ndim != 4 or att.shape[2:] != grid:
        return None
    n_layers, n_heads = att.shape[:2]
    tiles = att if n_heads == 1 else np.concatenate([att, att.mean(1, keepdims=True)], 1)  # (L, H + 1, rows, cols)
    k = tiles.shape[1]
    step_x, step_y = grid[1] + 1, grid[0] + 1  # one empty cell between tiles
    labels_x = [f"head {i + 1}" for i in range(n_heads)] + ["mean"] if n_heads > 1 else ["mean over heads"]
    layout = {
        "height": min(900, 60 + n_layers * max(40, 8 * step_y)),
        "margin": {"l": 60, "r": 10, "t": 24, "b": 10},
        "xaxis": {"tickvals": [i * step_x + (grid[1] - 1) / 2 for i in range(k)], "ticktext": labels_x, "side": "top",
                  "showgrid": False, "zeroline": False},
        "yaxis": {"tickvals": [i * step_y + (grid[0] - 1) / 2 for i in range(n_layers)], "ticktext": [f"layer {i + 1}" for i in range(n_layers)],
                  "autorange": "reversed", "scaleanchor": "x", "showgrid": False, "zeroline": False},
    }
    heat = {"type": "heatmap", "zp": pack_quantized(tiles), "tiles": True, "colorscale": ATTENTION_SCALE, "zmin": 0,
            "zmax": float(tiles.max()) or 1.0, "hoverongaps": False, "hovertemplate": "attention %{z:.3g}<extra></extra>",
            "colorbar": {"thickness": 10, "len": 0.9, "outlinewidth": 0}}
    rows = "the mean over patch queries" if "mean of the patch tokens" in str((e.extras or {}).get("answer_rule", "")) else "the head's rows"
    return {"note": f"Every layer and head: the attention {rows} pay each patch, one tile per head on one scale (0 to its largest "
                    f"value, {fmt(float(tiles.max()), 3)}); the last column is the mean over heads", "data": [heat], "layout": layout}


def image_doc(e: Explanation) -> dict[str, Any] | None:
    """Return the patch-grid view of an image explanation on patch tokens (attention, token Grad-CAM), else None."""
    if e.family != "image-classifier" or np.ndim(e.scores) != 2:
        return None
    grid = _grid(e)
    if grid is None:
        return None
    h, w = np.shape(e.scores)
    doc: dict[str, Any] = {"note": _note(e), "lay": {"shapes": patch_grid_shapes(grid, (int(h), int(w)), _box(e))}, "figs": []}
    if e.method == "attention":
        doc["figs"] = [f for f in (_rollout(e, grid), _heads(e, grid)) if f is not None]
    return doc
