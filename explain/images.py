"""Read and validate images: files, PIL images or numpy arrays, converted to a model's channels.

Every problem a user can cause (not an image, truncated, empty, too large, an array of the
wrong shape or range) becomes an InputError whose one line names the input and the problem.
"""

from __future__ import annotations

import base64
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError

# 40 megapixels: above any camera photo people explain, below the size where one float32 copy
# per channel (and the many perturbed copies methods make) stops fitting in memory.
MAX_PIXELS = 40_000_000
_MODES = {1: "L", 3: "RGB"}
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


@dataclass(frozen=True)
class LoadedImage:
    """An image converted to the model's channels: uint8 (H, W, C) pixels and where it came from."""

    pixels: np.ndarray  # (H, W, C) uint8, C = the model's channels
    path: str | None  # the file it was read from, None for arrays and PIL images
    note: str | None  # what conversion changed, e.g. "first of 12 frames"

    @property
    def height(self) -> int:
        """Return the image height in pixels."""
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        """Return the image width in pixels."""
        return int(self.pixels.shape[1])

    def png_base64(self) -> str:
        """Return the image as a base64-encoded PNG (at its own resolution)."""
        from PIL import Image

        arr = self.pixels[..., 0] if self.pixels.shape[-1] == 1 else self.pixels
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG", optimize=False)
        return base64.b64encode(buf.getvalue()).decode("ascii")


def read_image(raw: Any, channels: int, name: str, max_pixels: int = MAX_PIXELS) -> LoadedImage:
    """Return `raw` (a path, a PIL image or a numpy array) as a LoadedImage with `channels` channels.

    `name` says which input this is in error messages (e.g. "input 3").
    """
    if channels not in _MODES:
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    from PIL import Image

    if isinstance(raw, (str, os.PathLike)):
        path = Path(raw)
        image, notes = _open_file(path, f"{name} ({raw})", max_pixels)
        return _finish(image, channels, str(raw), notes)
    if isinstance(raw, Image.Image):
        _check_size(raw.width, raw.height, name, max_pixels)
        return _finish(raw, channels, None, [])
    if isinstance(raw, np.ndarray):
        return _finish(_from_array(raw, name, max_pixels), channels, None, [])
    if isinstance(raw, bytes):
        raise InputError(f"{name}: got raw bytes; give a file path, a PIL image or a numpy array")
    raise InputError(f"{name}: expected an image path, a PIL image or a numpy array, got {type(raw).__name__}")


def _open_file(path: Path, label: str, max_pixels: int) -> tuple[Any, list[str]]:
    """Open, size-check and fully decode an image file; return (PIL image, notes)."""
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        raise InputError(f"{label}: no such file")
    if path.is_dir():
        raise InputError(f"{label}: is a folder, not an image file")
    try:
        size = path.stat().st_size
    except OSError as e:
        raise InputError(f"{label}: cannot read the file ({e.strerror})") from e
    if size == 0:
        raise InputError(f"{label}: the file is empty (0 bytes)")
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            # PIL warns (and above twice the limit raises) on "decompression bombs"; our own
            # cap, checked from the header before decoding, gives the user a clearer message.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
            _check_size(image.width, image.height, label, max_pixels)
            frames = int(getattr(image, "n_frames", 1) or 1)
            if frames > 1:
                image.seek(0)  # animated GIF/WebP/APNG or multi-page TIFF: explain the first frame
                notes.append(f"first of {frames} frames")
            image.load()  # decode now, so a truncated file fails here with a clear message
    except InputError:
        raise
    except UnidentifiedImageError as e:
        raise InputError(f"{label}: not an image (cannot identify the image format)") from e
    except Image.DecompressionBombError as e:
        raise InputError(f"{label}: image is too large ({e})") from e
    except (OSError, SyntaxError, ValueError) as e:
        # PIL reports truncation as OSError ("image file is truncated", "broken data stream").
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        kind = "truncated or corrupt image" if "truncat" in text.lower() or "broken" in text.lower() else "cannot decode the image"
        raise InputError(f"{label}: {kind} ({text})") from e
    return image, notes


def _check_size(width: int, height: int, label: str, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise InputError(f"{label}: the image is empty ({width}x{height} pixels)")
    if width * height > max_pixels:
        raise InputError(
            f"{label}: the image is too large ({width}x{height} = {width * height / 1e6:.1f} megapixels; "
            f"the limit is {max_pixels / 1e6:.0f}); downscale it first"
        )


def _from_array(arr: np.ndarray, name: str, max_pixels: int) -> Any:
    """Return a PIL image for an (H, W) or (H, W, C) uint8 array or float array in [0, 1]."""
    from PIL import Image

    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
        raise InputError(
            f"{name}: an image array must be (H, W) or (H, W, C) with C = 1, 3 or 4 channels last; got shape {arr.shape}"
        )
    _check_size(arr.shape[1], arr.shape[0], name, max_pixels)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise InputError(f"{name}: the image array holds NaN or infinite values")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0.0 or hi > 1.0:
            raise InputError(f"{name}: a float image array must hold values in [0, 1]; got [{lo:.4g}, {hi:.4g}]")
        arr = np.round(arr * 255.0).astype(np.uint8)
    elif arr.dtype == np.uint16:
        arr = np.round(arr.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)
    elif arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.integer) and arr.min() >= 0 and arr.max() <= 255:
            arr = arr.astype(np.uint8)
        else:
            raise InputError(f"{name}: image arrays must be uint8 (0..255) or float in [0, 1]; got {arr.dtype}")
    return Image.fromarray(np.ascontiguousarray(arr))


def _finish(image: Any, channels: int, path: str | None, notes: list[str]) -> LoadedImage:
    """Convert any PIL mode to the model's channels and return the LoadedImage."""
    from PIL import Image

    mode = image.mode
    if mode == "P" and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in _ALPHA_MODES:
        # As transformers' convert_to_rgb does: composite on white, so transparent pixels
        # show the background a viewer would show instead of whatever colour they hold.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba).convert("RGB")
        notes.append("transparency composited on white")
    elif mode in ("I;16", "I;16B", "I;16L", "I;16N"):  # 16-bit: its own range, as an array's uint16 is
        image = Image.fromarray(np.round(np.asarray(image, dtype=np.float64) * (255.0 / 65535.0)).astype(np.uint8))
    elif mode in ("I", "F"):
        image = Image.fromarray(_scale_wide(np.asarray(image)))
    pixels = np.array(image.convert(_MODES[channels]), dtype=np.uint8)  # a writable copy
    if pixels.ndim == 2:
        pixels = pixels[..., None]  # (H, W, 1)
    return LoadedImage(pixels=np.ascontiguousarray(pixels), path=path, note="; ".join(notes) or None)


def _scale_wide(arr: np.ndarray) -> np.ndarray:
    """Return 32-bit integer or float pixels scaled to uint8 (PIL's convert would clip); these
    modes do not say their range, so it is read from the values: [0, 1], 8-bit or 16-bit."""
    a = arr.astype(np.float64)
    if np.issubdtype(arr.dtype, np.floating):
        a = np.nan_to_num(a)
        top = 1.0 if a.max() <= 1.0 else (255.0 if a.max() <= 255.0 else float(a.max()))
    else:
        top = 255.0 if a.max() <= 255 else (65535.0 if a.max() <= 65535 else float(a.max()))
    return np.round(np.clip(a, 0, None) / top * 255.0).clip(0, 255).astype(np.uint8)


# ---- what `inputs` means for an image model ---------------------------------------------
_CHANNELS = (1, 3, 4)
ACCEPTED = (
    "an image path, a PIL image, an array or tensor (H, W), (H, W, C) or (C, H, W) with C = 1, 3 or 4, "
    "a batch (N, H, W, C) or (N, C, H, W), or a list of these single images"
)


def image_inputs(inputs: Any) -> list[Any]:
    """Return `inputs` as a list of single images: paths, PIL images or (H, W) / (H, W, C) arrays.

    A 2-D or 3-D array (or tensor) is one image, a 4-D one a batch; channels-first layouts are
    moved last. A layout that could be either (both the first and the last axis hold 1, 3 or 4,
    e.g. (3, 4, 3)) is an InputError naming the shape.
    """
    from PIL import Image

    if isinstance(inputs, (str, os.PathLike, Image.Image)):
        return [inputs]
    if _is_array(inputs):
        arr = _numpy(inputs)
        if arr.ndim == 4:
            return [_channels_last(a, f"input {i}", batch=arr.shape) for i, a in enumerate(_batch_last(arr))]
        if arr.ndim in (2, 3):
            return [_channels_last(arr, "input 0")]
        raise InputError(f"an image array of shape {tuple(arr.shape)} is not understood; accepted: {ACCEPTED}")
    items = list(inputs)
    out: list[Any] = []
    for i, item in enumerate(items):
        if _is_array(item):
            arr = _numpy(item)
            if arr.ndim == 4 and arr.shape[0] == 1:
                arr = arr[0]  # a batch of one, as a model's pre-processing returns it
            if arr.ndim not in (2, 3):
                raise InputError(
                    f"input {i}: an image array of shape {tuple(arr.shape)} in a list is not one image; "
                    f"pass a batch as the inputs themselves; accepted: {ACCEPTED}"
                )
            out.append(_channels_last(arr, f"input {i}"))
        else:
            out.append(item)
    return out


def _is_array(x: Any) -> bool:
    return isinstance(x, np.ndarray) or type(x).__module__.startswith("torch") and hasattr(x, "detach")


def _numpy(x: Any) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    t = x.detach().cpu()
    if str(t.dtype) == "torch.bfloat16":
        t = t.float()
    return np.asarray(t.numpy())


def _batch_last(arr: np.ndarray) -> np.ndarray:
    """Return an (N, H, W, C) view of an NHWC or NCHW batch."""
    last, first = arr.shape[-1] in _CHANNELS, arr.shape[1] in _CHANNELS
    if not last and not first:
        raise InputError(f"a batch of shape {tuple(arr.shape)} has no channel axis of 1, 3 or 4; accepted: {ACCEPTED}")
    if last and first:
        raise InputError(
            f"a batch of shape {tuple(arr.shape)} is ambiguous: channels could be axis 1 ({arr.shape[1]}) or "
            f"the last axis ({arr.shape[-1]}); transpose it to (N, H, W, C)"
        )
    return arr if last else arr.transpose(0, 2, 3, 1)


def _channels_last(arr: np.ndarray, name: str, batch: tuple[int, ...] | None = None) -> np.ndarray:
    """Return an (H, W) or (H, W, C) array from (H, W), (H, W, C) or (C, H, W)."""
    if arr.ndim == 2 or batch is not None:
        return arr
    last, first = arr.shape[-1] in _CHANNELS, arr.shape[0] in _CHANNELS
    if last and first:
        raise InputError(
            f"{name}: an image array of shape {tuple(arr.shape)} is ambiguous: (C, H, W) or (H, W, C)? "
            "transpose it to (H, W, C)"
        )
    if last:
        return arr
    if first:
        return arr.transpose(1, 2, 0)
    raise InputError(f"{name}: an image array of shape {tuple(arr.shape)} has no channel axis of 1, 3 or 4; accepted: {ACCEPTED}")
