"""Which part of an image the model sees, and at what size: a Hugging Face image processor's
resize (squash to a size, or the shorter side to a length keeping the aspect ratio) and centre
crop, reproduced differentiably on pixels in [0, 1] at the image's own resolution.

An image processor that resizes the shorter side and centre-crops (ConvNeXt, ResNet, CLIP, BiT,
MobileNet, DeiT, LeViT, PoolFormer) shows the model the middle of the image: the rest is never
seen. Squashing the whole image to the model's size instead would explain a distorted image the
checkpoint's own pipeline never makes, with an answer that can differ from it. So the model gets
exactly the processor's window (up to PIL's 8-bit rounding), attributions stay on the user's
full image, and `Geometry.box` says where the window lies in it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.nn.functional as F

RESIZES = ("size", "fixed", "shortest_edge", "none")


@dataclass(frozen=True)
class Geometry:
    """Where the model's (h, w) window lies for one image of (H, W) pixels.

    The whole image is resized to `resized` (h', w'); the window is rows top..top+h and columns
    left..left+w of that (negative or past the edge: the processor pads with black there).
    """

    image: tuple[int, int]  # (H, W) of the user's image
    resized: tuple[int, int]  # (h', w') the whole image is resized to
    top: int
    left: int
    size: tuple[int, int]  # (h, w) the model sees

    def box(self) -> tuple[float, float, float, float]:
        """Return the window as (x0, y0, x1, y1) in the image's pixels (pixel i spans [i, i+1)), clipped to the image."""
        (hh, ww), (rh, rw), (h, w) = self.image, self.resized, self.size
        sy, sx = hh / rh, ww / rw
        return (max(0.0, self.left * sx), max(0.0, self.top * sy), min(float(ww), (self.left + w) * sx), min(float(hh), (self.top + h) * sy))

    @property
    def whole(self) -> bool:
        """True when the model sees every pixel of the image (a squash, or a crop that cuts nothing)."""
        x0, y0, x1, y1 = self.box()
        hh, ww = self.image
        return x0 <= 0 and y0 <= 0 and x1 >= ww and y1 >= hh

    def pixel_box(self, resample: str | None = None) -> tuple[int, int, int, int]:
        """Return (y0, y1, x0, x1): the image's rows y0..y1-1 and columns x0..x1-1 whose centres
        the window covers; with `resample`, widened by that filter's reach (its support, scaled
        when downscaling), so every pixel outside cannot change a single value the model sees."""
        x0, y0, x1, y1 = self.box()
        (hh, ww), (rh, rw) = self.image, self.resized
        support = {"nearest": 0.5, "bilinear": 1.0, "bicubic": 2.0}.get(resample or "", 0.0)
        margin = math.ceil(support * max(1.0, hh / rh, ww / rw)) + 1 if resample else 0
        ys = (max(0, math.ceil(y0 - 0.5) - margin), min(hh, math.floor(y1 - 0.5) + 1 + margin))
        xs = (max(0, math.ceil(x0 - 0.5) - margin), min(ww, math.floor(x1 - 0.5) + 1 + margin))
        return ys[0], max(ys[0] + 1, ys[1]), xs[0], max(xs[0] + 1, xs[1])

    def describe(self) -> str:
        """Return one line saying what part of the image the model sees."""
        x0, y0, x1, y1 = self.box()
        hh, ww = self.image
        seen = (x1 - x0) * (y1 - y0) / (hh * ww)
        return (f"the model sees the {self.size[0]}x{self.size[1]} centre of this {hh}x{ww} image resized to "
                f"{self.resized[0]}x{self.resized[1]} (its processor's resize and centre crop): {100 * (1 - seen):.0f}% of "
                f"the image, outside x {x0:.0f}-{x1:.0f}, y {y0:.0f}-{y1:.0f}, is never seen and scores 0 there")

    def record(self) -> dict[str, Any]:
        """Return the window as results files store it (extras["model_view"])."""
        return {"box": [round(v, 3) for v in self.box()], "resized": list(self.resized), "size": list(self.size)}


@dataclass(frozen=True)
class Framing:
    """How an image becomes the model's window: a resize, then (optionally) a centre crop.

    resize: "size" squashes to the model's size (no crop); "fixed" squashes to `to`; "shortest_edge"
    scales the shorter side to `edge`, keeping the aspect ratio (as transformers'
    get_resize_output_image_size: the longer side is int(edge * long / short)); "none" keeps the
    image's size. `crop`: then centre-crop to the model's size, padding with black where the
    resized image is smaller, as transformers' center_crop does.
    """

    resize: str = "size"
    to: tuple[int, int] | None = None
    edge: int | None = None
    crop: bool = False

    def geometry(self, height: int, width: int, size: tuple[int, int]) -> Geometry:
        """Return the window of an image of height x width for a model that sees `size`."""
        if self.resize == "fixed" and self.to is not None:
            resized = self.to
        elif self.resize == "shortest_edge" and self.edge is not None:
            short, long = (width, height) if width <= height else (height, width)
            new_long = int(self.edge * long / short)
            resized = (new_long, self.edge) if width <= height else (self.edge, new_long)
        elif self.resize == "none":
            resized = (height, width)
        else:
            resized = size
        if not self.crop:
            return Geometry((height, width), resized, 0, 0, resized)
        return Geometry((height, width), resized, _offset(resized[0], size[0]), _offset(resized[1], size[1]), size)

    def describe(self, size: tuple[int, int]) -> str:
        """Return the rule in a few words, e.g. "shortest edge to 256, centre crop 224x224"."""
        if self.resize == "size":
            first = "resize (no crop)"
        elif self.resize == "fixed" and self.to is not None:
            first = f"resize to {self.to[0]}x{self.to[1]}"
        elif self.resize == "shortest_edge":
            first = f"resize (shortest edge to {self.edge}, aspect ratio kept)"
        else:
            first = "no resize"
        return first + (f", centre crop {size[0]}x{size[1]}" if self.crop else "")


def _offset(resized: int, window: int) -> int:
    """Return where a centred window starts (transformers' center_crop: pad (window - n) // 2 first when smaller)."""
    return (resized - window) // 2 if resized >= window else -((window - resized) // 2)


def resize(x: torch.Tensor, size: tuple[int, int], resample: str, passes: str = "pil") -> torch.Tensor:
    """Return (B, C, H, W) pixels in [0, 1] resized to `size` with the processor's filter:
    antialiased bilinear, bicubic, or nearest, as its backend (`passes`) resizes.

    Antialiased interpolation is PIL's filter. Bicubic overshoots at sharp edges: PIL keeps 8
    bits between its two passes, so the overshoot is clipped in between, and which pass comes
    first depends on the sizes (and the Pillow version: asked of PIL itself, once per pair of
    sizes). Done the same way the result is within about one 8-bit step of PIL's; in one pass it
    was up to 20 steps off at sharp edges. `passes="torch"`: one pass, as torchvision-backed
    ("fast") processors resize.
    """
    if resample == "nearest":
        return F.interpolate(x, size=size, mode="nearest-exact")
    if resample != "bicubic":
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    h, w = x.shape[-2:]
    if passes == "torch" or h == size[0] or w == size[1]:
        return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0.0, 1.0)
    first = (size[0], w) if _pil_vertical_first(h, w, *size) else (h, size[1])
    x = F.interpolate(x, size=first, mode="bicubic", align_corners=False, antialias=True).clamp(0.0, 1.0)
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0.0, 1.0)


@functools.lru_cache(maxsize=256)
def _pil_vertical_first(height: int, width: int, out_height: int, out_width: int) -> bool:
    """Return True when PIL resizes (height, width) to (out_height, out_width) bicubically with
    its vertical pass first (Pillow 13 does when the height shrinks much more than the width),
    measured on a sharp-edged pattern of that size: the order whose clipped overshoot matches."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:height, 0:width]
    pattern = (((x // 3 + y // 2) % 5) * 60).astype(np.uint8)  # sharp steps in both directions
    pil = torch.from_numpy(np.asarray(Image.fromarray(pattern).resize((out_width, out_height), Image.Resampling.BICUBIC), np.float32))
    t = torch.from_numpy(pattern.astype(np.float32) / 255.0)[None, None]
    errors = []
    for first in ((height, out_width), (out_height, width)):
        a = F.interpolate(t, size=first, mode="bicubic", align_corners=False, antialias=True).clamp(0.0, 1.0)
        a = F.interpolate(a, size=(out_height, out_width), mode="bicubic", align_corners=False, antialias=True).clamp(0.0, 1.0)
        errors.append(float((a[0, 0] * 255.0 - pil).abs().mean()))
    return errors[1] < errors[0]


def window(x: torch.Tensor, g: Geometry, resample: str, passes: str = "pil") -> torch.Tensor:
    """Return the model's (B, C, h, w) window of (B, C, H, W) pixels in [0, 1]: resized, then cropped or padded with 0."""
    if tuple(x.shape[-2:]) != g.resized:
        x = resize(x, g.resized, resample, passes)
    (rh, rw), (h, w) = g.resized, g.size
    if (g.top, g.left) != (0, 0) or (rh, rw) != (h, w):
        # negative padding crops: (left, right, top, bottom) of the resized image
        x = F.pad(x, (-g.left, g.left + w - rw, -g.top, g.top + h - rh), value=0.0)
    return x


def to_image(window_map: torch.Tensor, g: Geometry) -> torch.Tensor:
    """Return an (H, W) map of the image from a 2-d map over the model's window (any resolution):
    sampled bilinearly at each image pixel's centre (edges held, as F.interpolate does), 0 where
    the window does not reach. Without a crop this is F.interpolate of the map to (H, W)."""
    m = window_map.reshape(1, 1, *window_map.shape[-2:]).float()
    (hh, ww), (rh, rw), (h, w) = g.image, g.resized, g.size
    # an image pixel's centre in the window's units (0..h, 0..w), then in grid_sample's -1..1
    u = ((torch.arange(hh, dtype=torch.float64) + 0.5) * rh / hh - g.top) / h
    v = ((torch.arange(ww, dtype=torch.float64) + 0.5) * rw / ww - g.left) / w
    grid = torch.stack(torch.meshgrid(2 * v - 1, 2 * u - 1, indexing="xy"), -1).float()  # (H, W, 2): x, y
    out = F.grid_sample(m, grid[None].to(m.device), mode="bilinear", padding_mode="border", align_corners=False)[0, 0]
    inside = ((u >= 0) & (u <= 1))[:, None] & ((v >= 0) & (v <= 1))[None, :]
    return torch.where(inside.to(out.device), out, torch.zeros((), dtype=out.dtype, device=out.device))


def candidates(processor: Any) -> Iterator[tuple[Framing, tuple[int, int]]]:
    """Yield (framing, model size) readings of a processor's resize and crop, its plain reading first.

    Processors whose own `resize` does more than their attributes say are among the later ones:
    ConvNeXt's and PoolFormer's `crop_pct` (shorter side to int(edge / crop_pct), then a crop),
    LeViT's shorter side to int(edge * 256 / 224), ConvNeXt's warp at 384 and above. Which one
    the processor really is gets measured (`choose`), not assumed from its class.
    """
    size = _size(getattr(processor, "size", None))
    crop_size = _size(getattr(processor, "crop_size", None))
    crops = bool(getattr(processor, "do_center_crop", False)) and crop_size is not None and "height" in crop_size
    crop_hw = (int(crop_size["height"]), int(crop_size["width"])) if crop_size and "height" in crop_size else None
    resizes = getattr(processor, "do_resize", True) is not False
    pct = getattr(processor, "crop_pct", None)
    pct = float(pct) if isinstance(pct, (int, float)) and 0 < pct <= 1 else None
    edge = int(size["shortest_edge"]) if size and size.get("shortest_edge") else None
    fixed = (int(size["height"]), int(size["width"])) if size and size.get("height") and size.get("width") else None
    rules: list[tuple[Framing, tuple[int, int] | None]] = []
    first = Framing("fixed", to=fixed) if fixed else Framing("shortest_edge", edge=edge) if edge else Framing("none")
    if not resizes:
        first = Framing("none")
    window_hw = crop_hw if crops else fixed if first.resize == "fixed" else (edge, edge) if edge else None
    rules.append((Framing(first.resize, first.to, first.edge, crop=crops), window_hw))
    square = [(edge, edge)] if edge else []
    if fixed and fixed[0] == fixed[1]:
        square.append(fixed)
    for (s, _) in square:
        for scaled in ([int(s / pct)] if pct else []) + [int(s * 256 / 224), s]:
            rules.append((Framing("shortest_edge", edge=scaled, crop=True), crop_hw if crops and crop_hw else (s, s)))
            rules.append((Framing("shortest_edge", edge=scaled, crop=True), (s, s)))
        rules.append((Framing("fixed", to=(s, s)), (s, s)))
    if fixed and pct:
        rules.append((Framing("fixed", to=(int(fixed[0] / pct), int(fixed[1] / pct)), crop=True), crop_hw if crops and crop_hw else fixed))
    if crop_hw:
        rules.append((Framing(first.resize, first.to, first.edge, crop=True), crop_hw))
    seen: set[tuple[Framing, tuple[int, int]]] = set()
    for framing, hw in rules:
        if hw is None or (framing, hw) in seen:
            continue
        seen.add((framing, hw))
        yield (Framing("size") if framing == Framing("fixed", to=hw) else framing), hw


def _size(value: Any) -> dict[str, int] | None:
    """Return a processor's size or crop_size as a dict of its set keys (an int means a square)."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return {"height": int(value), "width": int(value)}
    try:
        return {k: v for k, v in dict(value).items() if v is not None}
    except (TypeError, ValueError):
        return None
