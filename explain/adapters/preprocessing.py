"""Image preprocessing taken from the checkpoint: channels, size, scale, mean and std."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import CheckpointError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the model's input tensor: convert, resize to (H, W), scale, normalise."""

    size: tuple[int, int]  # (height, width) the model sees
    channels: int  # 1 = grayscale, 3 = RGB
    mean: tuple[float, ...]
    std: tuple[float, ...]
    rescale: float = 1 / 255
    resample: str = "bilinear"  # bilinear | bicubic | nearest: how the image is resized to `size`
    assumed: str | None = None  # set when the checkpoint did not say: what was assumed, for a warning

    def describe(self) -> str:
        """Return one line: size, channels, resize rule, scale and normalisation."""
        h, w = self.size
        norm = ", ".join(f"{m:.3g}/{s:.3g}" for m, s in zip(self.mean, self.std))
        return (f"{h}x{w}, {self.channels} channel{'s' if self.channels > 1 else ''}, {self.resample} resize (no crop), "
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
        """Return the preprocessing of a Hugging Face image processor (resize without crop).

        The whole image is resized to the size the model sees (the crop size when the processor
        centre-crops, else its resize size), with the processor's resampling filter, so that
        attributions map back to every input pixel; processors that centre-crop (ConvNeXt's
        crop_pct) see slightly more border here than in their own pipeline.
        """
        crops = getattr(processor, "do_center_crop", False) and getattr(processor, "crop_size", None)
        size = crops or getattr(processor, "size", None) or {}
        size = dict(size) if not isinstance(size, int) else {"height": size, "width": size}
        if "height" in size and "width" in size:
            hw = (int(size["height"]), int(size["width"]))
        elif "shortest_edge" in size:
            hw = (int(size["shortest_edge"]),) * 2
        else:
            hw = (224, 224)
        mean = tuple(float(x) for x in _floats(getattr(processor, "image_mean", None), IMAGENET_MEAN))
        std = tuple(float(x) for x in _floats(getattr(processor, "image_std", None), IMAGENET_STD))
        if not getattr(processor, "do_normalize", True):
            mean, std = (0.0,) * len(mean), (1.0,) * len(std)
        rescale = float(getattr(processor, "rescale_factor", 1 / 255)) if getattr(processor, "do_rescale", True) else 1.0
        measured = measured_affine(processor, hw, len(mean))
        if measured is not None:  # what the processor really does to a pixel value, quirks included
            (mean, std), rescale = measured, 1 / 255
        return cls(size=hw, channels=len(mean), mean=mean, std=std, rescale=rescale, resample=_resample(processor))

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
