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

        The whole image is resized to the processor's size so that attributions map back to
        every input pixel; processors that centre-crop (ConvNeXt's crop_pct) see slightly more
        border here than in their own pipeline.
        """
        size = getattr(processor, "crop_size", None) or getattr(processor, "size", None) or {}
        size = dict(size) if not isinstance(size, int) else {"height": size, "width": size}
        if "height" in size and "width" in size:
            hw = (int(size["height"]), int(size["width"]))
        elif "shortest_edge" in size:
            hw = (int(size["shortest_edge"]),) * 2
        else:
            hw = (224, 224)
        mean = tuple(float(x) for x in (getattr(processor, "image_mean", None) or IMAGENET_MEAN))
        std = tuple(float(x) for x in (getattr(processor, "image_std", None) or IMAGENET_STD))
        if not getattr(processor, "do_normalize", True):
            mean, std = (0.0,) * len(mean), (1.0,) * len(std)
        rescale = float(getattr(processor, "rescale_factor", 1 / 255)) if getattr(processor, "do_rescale", True) else 1.0
        return cls(size=hw, channels=len(mean), mean=mean, std=std, rescale=rescale)
