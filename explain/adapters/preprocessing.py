"""Image preprocessing taken from the checkpoint: channels, size, resize and crop, scale, mean and std."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import CheckpointError
from .framing import Framing, Geometry, candidates

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the model's input tensor: convert, resize (and crop) to (H, W), scale, normalise."""

    size: tuple[int, int]  # (height, width) the model sees
    channels: int  # 1 = grayscale, 3 = RGB
    mean: tuple[float, ...]
    std: tuple[float, ...]
    rescale: float = 1 / 255
    resample: str = "bilinear"  # bilinear | bicubic | nearest: how the image is resized
    assumed: str | None = None  # set when the checkpoint did not say: what was assumed, for a warning
    framing: Framing = field(default_factory=Framing)  # the processor's resize and centre crop (default: squash to size)
    passes: str = "pil"  # bicubic as PIL does it (two clipped passes) or "torch" (one pass, torchvision-backed processors)

    def geometry(self, height: int, width: int) -> Geometry:
        """Return where the model's window lies in an image of height x width pixels."""
        return self.framing.geometry(height, width, self.size)

    def describe(self) -> str:
        """Return one line: size, channels, resize and crop rule, scale and normalisation."""
        h, w = self.size
        norm = ", ".join(f"{m:.3g}/{s:.3g}" for m, s in zip(self.mean, self.std))
        return (f"{h}x{w}, {self.channels} channel{'s' if self.channels > 1 else ''}, {self.resample} {self.framing.describe(self.size)}, "
                f"x {self.rescale:.4g}, mean/std {norm}" + (f" (assumed: {self.assumed})" if self.assumed else ""))

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "Preprocessing":
        """Return the preprocessing of a plain CNN's config.json 'preprocessing' entry."""
        try:
            size = cfg["size"]
            h, w = (int(size), int(size)) if isinstance(size, (int, float)) else (int(size[0]), int(size[1]))
            channels = int(cfg.get("channels", 3))
            mean = tuple(float(x) for x in cfg.get("mean", [0.0] * channels))
            std = tuple(float(x) for x in cfg.get("std", [1.0] * channels))
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise CheckpointError(f"config.json 'preprocessing' is malformed ({e}); expected size, channels, mean, std") from e
        if channels not in (1, 3) or len(mean) != channels or len(std) != channels or min(h, w) < 1:
            raise CheckpointError(
                f"config.json 'preprocessing' is inconsistent: channels={channels}, "
                f"{len(mean)} means, {len(std)} stds, size {h}x{w}"
            )
        return cls(size=(h, w), channels=channels, mean=mean, std=std)

    @classmethod
    def from_hf(cls, processor: Any) -> "Preprocessing":
        """Return the preprocessing of a Hugging Face image processor: its resize and centre crop,
        scale and normalisation, each measured on the processor itself where it can run.

        The model sees what the processor would give it: the shorter side resized and the centre
        cropped where the processor does that (ConvNeXt, ResNet, CLIP, DeiT...), the whole image
        squashed where it does that (ViT). Attributions stay at the input image's resolution; the
        part a crop leaves out is never seen by the model (see framing.Geometry).
        """
        mean = tuple(float(x) for x in _floats(getattr(processor, "image_mean", None), IMAGENET_MEAN))
        std = tuple(float(x) for x in _floats(getattr(processor, "image_std", None), IMAGENET_STD))
        if not getattr(processor, "do_normalize", True):
            mean, std = (0.0,) * len(mean), (1.0,) * len(std)
        rescale = float(getattr(processor, "rescale_factor", 1 / 255)) if getattr(processor, "do_rescale", True) else 1.0
        readings = list(candidates(processor)) or [(Framing(), (224, 224))]
        framing, hw = readings[0]
        measured = measured_affine(processor, hw, len(mean))
        if measured is not None:  # what the processor really does to a pixel value, quirks included
            (mean, std), rescale = measured, 1 / 255
        prep = cls(size=hw, channels=len(mean), mean=mean, std=std, rescale=rescale, resample=_resample(processor), framing=framing)
        chosen, note = choose_framing(processor, prep, readings)
        return chosen if note is None else dataclasses.replace(chosen, assumed=note)

    @classmethod
    def from_model_config(cls, config: Any) -> "Preprocessing":
        """Return what a Hugging Face image model without an image processor is assumed to take:
        its config's image_size and num_channels (224 and 3 when absent), ImageNet mean and std."""
        size = getattr(config, "image_size", None) or 224
        hw = (int(size), int(size)) if isinstance(size, (int, float)) else (int(size[0]), int(size[-1]))
        channels = int(getattr(config, "num_channels", 3) or 3)
        mean: tuple[float, ...] = IMAGENET_MEAN
        std: tuple[float, ...] = IMAGENET_STD
        norm = "ImageNet mean and std"
        if channels != 3:
            mean, std, norm = (0.5,) * channels, (0.5,) * channels, "mean and std 0.5"
        return cls(size=hw, channels=channels, mean=mean, std=std,
                   assumed=f"no image processor in the checkpoint: {hw[0]}x{hw[1]} from its config, {norm}, bilinear resize")


def measured_affine(processor: Any, size: tuple[int, int], channels: int) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """Return (mean, std) such that the processor maps a pixel u in [0, 1] to (u - mean) / std,
    measured by running it on flat images; None when it cannot run or is not such a map.

    Reading rescale_factor, image_mean and image_std is not enough: some processors do more
    (EfficientNet's include_top divides by the std twice, rescale_offset maps to [-1, 1]).
    Three flat images of the model's size (black, white, and a different level per channel,
    which also catches channels swapped or mixed) give each channel's map and check it.
    """
    try:
        from PIL import Image

        h, w = size
        levels = [(0, 0, 0), (255, 255, 255), (30, 120, 210)]
        outs = []
        for level in levels:
            image = Image.new("RGB", (w, h), level) if channels == 3 else Image.new("L", (w, h), level[1])
            pixels = processor(images=image, return_tensors="pt")["pixel_values"][0]
            outs.append(pixels.reshape(pixels.shape[0], -1).double().mean(1).tolist())
    except Exception:  # a processor that needs more than an image: its attributes are all we have
        return None
    if any(len(o) != channels for o in outs):
        return None
    low, high, probe = outs
    wanted = [levels[2][c] / 255 if channels == 3 else levels[2][1] / 255 for c in range(channels)]
    slopes = [hi - lo for lo, hi in zip(low, high)]
    if any(abs(a) < 1e-12 for a in slopes):
        return None
    predicted = [lo + a * u for lo, a, u in zip(low, slopes, wanted)]
    if any(abs(p - q) > 1e-3 * max(1.0, abs(a)) for p, q, a in zip(predicted, probe, slopes)):
        return None
    return tuple(-lo / a for lo, a in zip(low, slopes)), tuple(1 / a for a in slopes)


def choose_framing(processor: Any, prep: Preprocessing, readings: list[tuple[Framing, tuple[int, int]]]) -> tuple[Preprocessing, str | None]:
    """Return (prep with the reading of the processor's resize and crop that reproduces its
    `pixel_values` on two probe images, None), or (the closest reading, a note saying how far
    it is) when none does within PIL's 8-bit rounding; prep unchanged when the processor cannot run.

    The probes are a wide and a tall textured image larger than the model's input: a squash
    where the processor crops, or a crop one pixel off, differs from it by many rounding steps.
    """
    import numpy as np
    import torch

    from .framing import window

    big = max(max(prep.size), *(max(r[1]) for r in readings), *(f.edge or 0 for f, _ in readings))
    # smaller than the model's input (cheaper; resizing up is compared as exactly as down)
    probes = [_probe(round(0.55 * big) + 7, round(0.8 * big) + 3, prep.channels), _probe(round(0.75 * big) + 5, round(0.55 * big) + 1, prep.channels)]
    try:
        theirs = [processor(images=p, return_tensors="pt")["pixel_values"][0].float() for p in probes]
    except Exception:  # a processor that needs more than an image: its attributes are all we have
        return prep, None
    mean = torch.tensor(prep.mean).view(-1, 1, 1)
    std = torch.tensor(prep.std).view(-1, 1, 1)
    steps = {"bilinear": 2.5, "bicubic": 4.5}.get(prep.resample, 1.5)  # PIL rounds to 8 bits between its passes
    tolerance = steps / 255 / min(prep.std) if min(prep.std) > 0 else float("inf")
    best: tuple[float, Preprocessing] | None = None
    arrays = [torch.from_numpy(np.asarray(p, dtype=np.float32).reshape(p.size[1], p.size[0], -1) / 255.0).permute(2, 0, 1)[None]
              for p in probes]
    passes = ("pil", "torch") if prep.resample == "bicubic" else ("pil",)  # only bicubic's overshoot tells them apart
    for way in passes:  # PIL-backed processors first (transformers' default without torchvision)
        for framing, hw in readings:
            candidate = dataclasses.replace(prep, framing=framing, size=hw, passes=way)
            worst = mean_err = 0.0
            for x, ref in zip(arrays, theirs):  # the second probe only when the first agrees
                g = candidate.geometry(*x.shape[-2:])
                ours = (window(x, g, prep.resample, way)[0] * 255.0 * prep.rescale - mean) / std
                if tuple(ours.shape) != tuple(ref.shape):
                    worst = mean_err = float("inf")
                    break
                diff = (ours - ref).abs()
                worst, mean_err = max(worst, float(diff.max())), max(mean_err, float(diff.mean()))
                if worst > tolerance or mean_err > tolerance / 5:
                    break
            if worst <= tolerance and mean_err <= tolerance / 5:
                return candidate, None
            if best is None or mean_err < best[0]:
                best = (mean_err, candidate)
    if best is None or not np.isfinite(best[0]):
        return prep, f"the image processor's output size was not reproduced; {prep.framing.describe(prep.size)} as its attributes say"
    return best[1], (f"the image processor's resize and crop were not reproduced exactly (mean difference {best[0]:.3g} "
                     f"in its normalised units): {best[1].framing.describe(best[1].size)}, the closest reading")


def _probe(height: int, width: int, channels: int) -> Any:
    """Return a textured PIL image: ramps, a sawtooth and a block with sharp edges (resizing and cropping must show)."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 / width, y * 255 / height, ((x + 2 * y) % 29) * 8.0], -1)
    rgb[height // 3 : height // 2, width // 5 : width // 2] = (250, 20, 40)
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    return image if channels == 3 else image.convert("L")


# PIL's resampling filters by number, as image processors store them; torch resizes with the
# nearest of these it has (antialiased bilinear and bicubic match PIL's when downscaling).
_RESAMPLE = {0: "nearest", 1: "bicubic", 2: "bilinear", 3: "bicubic", 4: "bilinear", 5: "bilinear"}


def _resample(processor: Any) -> str:
    value = getattr(processor, "resample", None)
    value = getattr(value, "value", value)  # a PIL.Image.Resampling enum
    return _RESAMPLE.get(int(value), "bilinear") if isinstance(value, (int, float)) else "bilinear"


def _floats(value: Any, default: tuple[float, ...]) -> Any:
    """Return `value` as a sequence (a processor may hold one float for every channel), or default."""
    if value is None:
        return default
    return [value] if isinstance(value, (int, float)) else value
