"""Adapter for image classifiers: Hugging Face ResNet/ConvNeXt-style models, plain CNNs, vision transformers.

A vision transformer's patch grid, special tokens and head rows are patch_tokens'; how its
attention and tokens are read, patch_views'.

Pixels stay at the input image's own resolution: the processor's resize and centre crop (see
framing: antialiased like PIL, differentiable) and the normalisation are part of the forward. So
every method attributes to the pixels the user gave, IG's completeness holds at that resolution,
and the part of the image a crop leaves out scores 0 (the model never saw it; extras["model_view"]
says where its window lies).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import MethodError
from ..results.explanation import InputRecord, ModelInfo, Target
from ..images import LoadedImage, read_image
from ..execution.runner import Runner
from . import removal
from .base import Adapter, Example, GradientView, PerturbationView, check_gradient, select_output, transform
from .framing import Geometry, to_image, window
from .preprocessing import Preprocessing

# Removals: what a removed pixel becomes, the same for IG's baseline image and every fill
# (see removal.IMAGE). "grey" is the mid-grey fill of earlier versions, kept for old settings.
BASELINES = ("blur", "black", "mean", "noise", "grey")
DEFAULT_BASELINE = "blur"
NOISE_SEED = 0x5EED  # mixed with the run seed and the input index: one noise image per input
SEGMENTATIONS = ("slic", "grid", "quickshift")
# A "strong" blur: sigma is this fraction of the shorter side (3.2 px on a 32 x 32 image, like
# the 2.5-4 px blur the bundled digits model learnt means "removed"; 22 px at 224 x 224).
BLUR_FRACTION = 0.1
MAX_SEGMENTS = 50  # about 50 superpixels: ~20 pixels each on 32 x 32, fine enough for small objects
PIXEL_BUDGET = 1 << 26  # float32 elements of perturbed pixels built per batch (256 MiB)


@dataclass
class ImageState:
    """An image prepared for explaining: its pixels and cached fills."""

    image: LoadedImage
    pixels: torch.Tensor  # (1, C, H, W) float32 in [0, 1], input resolution, on the device
    fills: dict[Any, torch.Tensor] = field(default_factory=dict)  # cached fills by name (noise: by name and seed)


class ImageClassifierAdapter(Adapter):
    """Image reading, resize + normalisation, fills, superpixels and batched forwards."""

    family = "image-classifier"

    def __init__(self, model: torch.nn.Module, prep: Preprocessing, info: ModelInfo, runner: Runner) -> None:
        super().__init__(model, info, runner)
        self.prep = prep
        # Pixels in [0, 1] -> the model's input: x * 255 * rescale (the processor's own scale), then
        # (x - mean) / std, as the checkpoint's processor or config says.
        self._scale = 255.0 * prep.rescale
        self._mean = torch.tensor(prep.mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self._std = torch.tensor(prep.std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self._fast: Any = False  # a FastPath; False: not built yet; None: none to be had (the model itself)
        # How a forward's return value becomes (B, classes) logits: `.logits` or the value for
        # Hugging Face and plain CNNs; an own model's head (tuple/dict outputs, one logit,
        # probabilities: explain/adapters/heads.py) when the loader sets it.
        self.read: Callable[[Any], torch.Tensor] = _logits
        # The dtype pixels are handed over in: the model's own (fp16 / bf16 weights), set by the loader.
        self.dtype: torch.dtype | None = None
        # Own (non-HF) vision transformers: a module glob whose outputs are attention
        # probabilities, and which tokens the head reads ("first" | "mean"); see patch_tokens.
        self.attention_probs: str | None = None
        self.answer_row: str | None = None

    # ---- inputs -------------------------------------------------------------------------
    def prepare(self, raw: Any, index: int, **_: Any) -> Example:
        """Read one image (path, PIL image or array), convert it, and compute its class probabilities once."""
        image = read_image(raw, self.prep.channels, f"input {index}")
        # (H, W, C) -> (1, C, H, W), copied into the standard layout: permuted strides would be
        # channels-last, which every conv keeps and a model's `x.view(-1, n)` cannot flatten.
        pixels = (torch.from_numpy(image.pixels).to(self.device).permute(2, 0, 1).unsqueeze(0).float() / 255.0).contiguous()
        probs = transform(self.runner.map([pixels], lambda b: self.logits(torch.cat(b))), "probability", self.head)[0].numpy()
        pred = int(np.argmax(probs))
        seen = self.prep.geometry(image.height, image.width)
        note = image.note if seen.whole else "; ".join(n for n in (image.note, seen.describe()) if n)
        record = InputRecord(
            index=index,
            kind="image",
            path=image.path,
            image_png=image.png_base64(),
            width=image.width,
            height=image.height,
            prediction=Target(index=pred, label=self.labels[pred], probability=float(probs[pred])),
            note=note,
            probabilities=tuple(float(p) for p in probs),  # every class, in label order
        )
        return Example(index=index, record=record, probs=probs, state=ImageState(image, pixels))

    # ---- forwards -----------------------------------------------------------------------
    def logits(self, x: torch.Tensor, fast: bool = False) -> torch.Tensor:
        """Return (B, classes) logits for (B, C, H, W) pixels in [0, 1] at any resolution.

        The model gets a standard contiguous tensor of its own dtype. Differentiable unless
        `fast`, which runs gradient-free rows through an inference-only copy of the model
        (BatchNorm folded, channels-last; see fast_inference) at batch shapes where the copy
        agreed with the model.
        """
        x = self.model_input(x)
        if fast and not torch.is_grad_enabled():
            path = self._fast_path()
            out = path(x) if path is not None else None
            if out is not None:
                return out
        return self.read(self.model(x))

    def model_input(self, x: torch.Tensor) -> torch.Tensor:
        """Return what the model takes for (B, C, H, W) pixels in [0, 1]: its processor's resize and
        crop, normalised, as a standard contiguous tensor of the model's own dtype."""
        x = window(x, self.prep.geometry(*x.shape[-2:]), self.prep.resample, self.prep.passes)
        x = ((x * self._scale - self._mean) / self._std).contiguous()
        return x.to(self.dtype) if self.dtype is not None else x

    def _fast_path(self) -> Any:
        from ..execution.fast_inference import FastPath, weights_key

        if self._fast is None:
            return None
        # Rebuilt whenever the model's weights change (in place, or replaced, as the sanity
        # check's randomised copies do): the copy must never answer for old weights.
        key = weights_key(self.model)
        if self._fast is False or key != getattr(self, "_fast_key", None):
            self._fast = FastPath(self.model, self.read)
            self._fast_key = key
        return self._fast

    def target_forward(self, target: Target, output: str, fast: bool = False) -> Callable[[torch.Tensor], torch.Tensor]:
        """Return pixels (B, C, H, W) -> (B,) target output, counting rows on the runner."""

        def forward(x: torch.Tensor) -> torch.Tensor:
            self.runner.count(x.shape[0])
            return select_output(check_gradient(self.logits(x, fast=fast), x, self.model), target.index, output, self.head)

        return forward

    def geometry(self, example: Example) -> Geometry:
        """Return where the model's window lies in the example's image (the processor's resize and crop)."""
        return self.prep.geometry(*example.state.pixels.shape[-2:])

    def input_extras(self, example: Example) -> dict[str, Any]:
        """Return {"model_view": the window's box in the image's pixels, ...} when a crop leaves part of the image unseen."""
        seen = self.geometry(example)
        return {} if seen.whole else {"model_view": seen.record()}

    def window_to_image(self, example: Example, window_map: torch.Tensor) -> np.ndarray:
        """Return an (H, W) float32 map of the image from a map over the model's window (e.g. a
        Grad-CAM or patch map): placed where the window lies, 0 where the model saw nothing."""
        return to_image(window_map.detach().float().cpu(), self.geometry(example)).numpy().astype(np.float32)

    def pixels(self, example: Example) -> torch.Tensor:
        """Return the example's (1, C, H, W) pixels in [0, 1] at its own resolution."""
        return example.state.pixels

    def batch_rows(self, example: Example) -> int:
        """Return how many perturbed copies of this image one batch may hold (large images: fewer)."""
        return max(1, min(self.runner.batch_size, PIXEL_BUDGET // example.state.pixels[0].numel()))

    # ---- removals -----------------------------------------------------------------------
    baselines: tuple[str, ...] = BASELINES

    @property
    def default_baseline(self) -> str:
        """Return the removal every method uses when none is set: "blur".

        A blurred region keeps the image's colours and brightness but loses the shapes a
        classifier reads, so "removed" looks like "nothing here" rather than a black or grey
        patch the model may read as an object of its own (Sturmfels et al. 2020,
        https://distill.pub/2020/attribution-baselines/). The bundled digits model was trained
        with grey, black and blurred covers as "none", and IG with a blurred baseline is the
        "blur IG" of that article: the path removes detail, not light.
        """
        return DEFAULT_BASELINE

    def check_baseline(self, name: str, gradient: bool = False) -> str:
        """Return `name` if it is an image removal; else raise MethodError naming the choices."""
        return removal.check(self.family, name, self.baselines, gradient=gradient)

    def resolve_baseline(self, options: dict[str, Any], gradient: bool) -> str:
        """Return the removal the view options ask for (`baseline`, or its old name `mask`), checked."""
        name, option = removal.requested(options)
        return removal.check(self.family, name or self.default_baseline, self.baselines, gradient=gradient, option=option)

    def fill(self, example: Example, kind: str, seed: int | None = None) -> torch.Tensor:
        """Return the (1, C, H, W) image removed pixels take under removal `kind` (see removal.IMAGE).

        "noise" is one uniform-noise image per input and seed (default: the seed torch was last
        seeded with, as the engine seeds each method with the run seed), so IG's baseline and
        every perturbation of one run share it.
        """
        state: ImageState = example.state
        x = state.pixels
        self.check_baseline(kind)
        run_seed = torch.initial_seed() if seed is None else int(seed)
        key: Any = (kind, run_seed) if kind == "noise" else kind
        if key not in state.fills:
            if kind == "black":
                state.fills[key] = torch.zeros_like(x)
            elif kind == "grey":
                state.fills[key] = torch.full_like(x, 0.5)
            elif kind == "mean":
                state.fills[key] = x.mean(dim=(2, 3), keepdim=True).expand_as(x).contiguous()
            elif kind == "blur":
                state.fills[key] = _blur(x, BLUR_FRACTION * min(x.shape[-2:]))
            else:  # noise, drawn on the CPU so that a seed means one image on every device
                g = torch.Generator().manual_seed((NOISE_SEED * 1_000_003 + run_seed * 7919 + example.index) % (1 << 63))
                state.fills[key] = torch.rand(x.shape, generator=g, dtype=x.dtype).to(x.device)
        return state.fills[key]

    # ---- views --------------------------------------------------------------------------
    def gradient_view(
        self,
        example: Example,
        target: Target,
        granularity: str = "pixel",
        output: str | None = None,
        **options: Any,
    ) -> GradientView:
        """Return the input-resolution pixels, the all-removed image as baseline and the forward to the target."""
        name = self.resolve_baseline(options, gradient=True)
        output = output or "probability"
        inputs = self.pixels(example)

        def reduce(attr: torch.Tensor) -> np.ndarray:
            return attr.detach().float().sum(1)[0].cpu().numpy().astype(np.float32)  # (H, W)

        return GradientView(
            inputs=inputs,
            baselines=self.fill(example, name, options.get("seed")),
            forward=self.target_forward(target, output),
            reduce=reduce,
            features=(),
            granularity="pixel",
            baseline=name,
            output=output,
        )

    def perturbation_view(
        self,
        example: Example,
        target: Target,
        granularity: str = "pixel",
        output: str | None = None,
        segmentation: str | None = None,
        n_segments: int | None = None,
        **options: Any,
    ) -> PerturbationView:
        """Return superpixels as features; a removed one takes the removal's pixels (default: a blurred copy)."""
        name = self.resolve_baseline(options, gradient=False)
        output = output or "probability"
        segments, used = self.segment(example, segmentation, n_segments)
        d = int(segments.max()) + 1
        x, fill = self.pixels(example), self.fill(example, name, options.get("seed"))
        seg_t = torch.from_numpy(segments).long().to(self.device)  # (H, W) segment of each pixel

        def run(rows: list[np.ndarray]) -> torch.Tensor:
            keep = torch.as_tensor(np.stack(rows), dtype=torch.bool, device=self.device)  # (b, d)
            keep_px = keep[:, seg_t].unsqueeze(1)  # (b, 1, H, W): is this pixel's segment kept?
            return select_output(self.logits(torch.where(keep_px, x, fill), fast=True), target.index, output, self.head)

        def evaluate(keep: np.ndarray) -> np.ndarray:
            # identical perturbations (common with few superpixels) are evaluated once
            distinct, inverse = np.unique(np.asarray(keep, dtype=bool).reshape(-1, d), axis=0, return_inverse=True)
            out = self.runner.map(list(distinct), run, batch_size=self.batch_rows(example)).numpy()
            return out[inverse.reshape(-1)]

        def expand(values: np.ndarray) -> np.ndarray:
            return np.asarray(values, dtype=np.float32)[segments]  # (H, W): each pixel its segment's value

        return PerturbationView(
            features=tuple(f"segment {i}" for i in range(d)),
            evaluate=evaluate,
            clustering=segment_linkage(segments),
            expand=expand,
            granularity="pixel",
            mask=name,
            output=output,
            sampling="lime-image",
            extras={"segments": segments, "n_segments": d, "segmentation": used},
        )

    def segment(self, example: Example, method: str | None = None, n_segments: int | None = None) -> tuple[np.ndarray, str]:
        """Return ((H, W) int32 superpixel ids 0..d-1, the segmentation used) for the example.

        When the processor's crop leaves part of the image unseen, the superpixels cover the
        model's window (and the few pixels its resize filter reaches beyond it), and everything
        outside is one last segment: it cannot change the answer, so it scores 0 (SHAP: exactly).
        """
        method = method or "slic"
        img = example.state.image.pixels.astype(np.float64) / 255.0  # (H, W, C)
        full_h, full_w = img.shape[:2]
        seen = self.geometry(example)
        y0, y1, x0, x1 = (0, full_h, 0, full_w) if seen.whole else seen.pixel_box(self.prep.resample)
        img = img[y0:y1, x0:x1]
        h, w = img.shape[:2]
        n = int(n_segments) if n_segments else default_segments(h, w)
        if n < 1:
            raise MethodError(f"n_segments must be at least 1, got {n}")
        if method == "grid":
            seg = grid_segments(h, w, n)
        elif method == "slic":
            seg, method = _slic(img, n)
        elif method == "quickshift":
            from skimage.color import gray2rgb
            from skimage.segmentation import quickshift

            # lime_image's own default parameters; few segments on small images (see extras)
            rgb = img if img.shape[-1] == 3 else gray2rgb(img[..., 0])
            seg = quickshift(rgb, kernel_size=4, max_dist=200, ratio=0.2, rng=0)
            n = 0
        else:
            raise MethodError(f"unknown segmentation {method!r}: use one of {', '.join(SEGMENTATIONS)}")
        _, ids = np.unique(seg, return_inverse=True)  # renumber 0..d-1 (lime indexes by segment id)
        used = f"{method}; {n} requested" if n else method
        ids = ids.reshape(h, w).astype(np.int32)
        if (h, w) != (full_h, full_w):
            full = np.full((full_h, full_w), int(ids.max()) + 1, dtype=np.int32)  # outside the window: one segment
            full[y0:y1, x0:x1] = ids
            ids, used = full, used + "; in the model's window, the rest one segment"
        return ids, used


def default_segments(height: int, width: int) -> int:
    """Return MAX_SEGMENTS, fewer on images too small to give each segment 4 pixels."""
    return int(np.clip(height * width // 4, 1, MAX_SEGMENTS))


def _slic(img: np.ndarray, n: int) -> tuple[np.ndarray, str]:
    """Return (SLIC superpixels of (H, W, C) pixels in [0, 1], how they were made)."""
    from skimage.segmentation import slic

    rgb = img.shape[-1] == 3
    # skimage advises compactness 10 for Lab colour (L in 0..100). Grey levels are in 0..1 here:
    # 0.3 (30 on the Lab scale) keeps segments compact enough that one rarely joins a digit's
    # stroke to the background beside it (measured on the bundled digits model).
    compactness = 10.0 if rgb else 0.3
    for _ in range(3):
        seg = slic(
            img if rgb else img[..., 0],
            n_segments=n,
            compactness=compactness,
            channel_axis=-1 if rgb else None,
            start_label=0,
        )
        # On noise or fine texture, colour-driven segments fragment and the connectivity pass
        # merges the fragments into a handful; more compact (more grid-like) segments survive.
        if len(np.unique(seg)) * 2 >= n:
            return seg, f"slic, compactness {compactness:g}"
        compactness *= 10.0
    height, width = img.shape[:2]
    return grid_segments(height, width, n), "grid (slic found too few segments)"


def grid_segments(height: int, width: int, n: int) -> np.ndarray:
    """Return an (H, W) map of about n near-square grid cells, numbered row by row."""
    rows = int(np.clip(round(np.sqrt(n * height / width)), 1, height))
    cols = int(np.clip(round(n / rows), 1, width))
    r = np.arange(height) * rows // height
    c = np.arange(width) * cols // width
    return (r[:, None] * cols + c[None, :]).astype(np.int32)


def segment_linkage(segments: np.ndarray) -> np.ndarray:
    """Return a scipy linkage (d-1, 4) over segments by centroid proximity (ward), for shap's Partition."""
    from scipy.cluster.hierarchy import linkage

    d = int(segments.max()) + 1
    if d < 2:
        return np.zeros((0, 4))
    h, w = segments.shape
    ys, xs = np.mgrid[0:h, 0:w]
    counts = np.bincount(segments.ravel(), minlength=d)
    centroids = np.stack(
        [np.bincount(segments.ravel(), ys.ravel(), d) / counts, np.bincount(segments.ravel(), xs.ravel(), d) / counts], 1
    )
    return linkage(centroids, method="ward")


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Return a Gaussian blur of (1, C, H, W) pixels; large sigmas are applied at a lower resolution."""
    from scipy.ndimage import gaussian_filter

    h, w = x.shape[-2:]
    # Blurring at full resolution costs ~8 sigma per pixel; a strong blur looks the same when
    # done at a scale where sigma is 4 pixels and upsampled bilinearly.
    factor = max(1.0, sigma / 4.0)
    small = x if factor == 1.0 else F.interpolate(
        x, size=(max(1, round(h / factor)), max(1, round(w / factor))), mode="bilinear", antialias=True, align_corners=False
    )
    arr = small[0].detach().cpu().numpy().astype(np.float64)  # (C, h, w)
    blurred = gaussian_filter(arr, sigma=(0, sigma / factor, sigma / factor), mode="nearest")
    out = torch.from_numpy(blurred).float().unsqueeze(0).to(x.device)
    if factor != 1.0:
        out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
    return out.clamp(0.0, 1.0)


def _logits(out: Any) -> torch.Tensor:
    """Return a Hugging Face output's `.logits`, or the output itself."""
    return getattr(out, "logits", out)
