"""Hugging Face image checkpoints are fed what their own image processor would feed them.

The reference is the checkpoint's processor called directly: the tensor our adapter hands the
model (resize + scale + normalise) must equal the processor's `pixel_values` up to the 8-bit
rounding PIL does inside its resize. Each case is a processor shape that read the wrong way
gives another tensor: a crop size the processor does not crop to (EfficientNet), a second
division by the std (EfficientNet's include_top), a bicubic filter, a rectangular size, one
channel. Without a processor the model config's size is used and the assumption is said; a
processor file that cannot be read is an error, never silently replaced by defaults.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
import transformers
from PIL import Image

import explain
from explain.adapters.image import ImageClassifierAdapter
from explain.adapters.preprocessing import Preprocessing, measured_affine

LABELS = {"id2label": {0: "cat", 1: "dog", 2: "bird"}, "label2id": {"cat": 0, "dog": 1, "bird": 2}}


def _processor(name: str) -> Any:
    """The PIL-backed processor class (what transformers uses without torchvision), else the plain one."""
    return getattr(transformers, f"{name}Pil", None) or getattr(transformers, name)


def _vit(channels: int = 3, size: int = 32) -> Any:
    cfg = transformers.ViTConfig(image_size=size, patch_size=8, num_channels=channels, hidden_size=16, num_hidden_layers=1,
                                 num_attention_heads=2, intermediate_size=32, **LABELS)
    return transformers.ViTForImageClassification(cfg)


def _resnet(channels: int = 3) -> Any:
    cfg = transformers.ResNetConfig(num_channels=channels, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic", **LABELS)
    return transformers.ResNetForImageClassification(cfg)


def _efficientnet() -> Any:
    cfg = transformers.EfficientNetConfig(image_size=32, width_coefficient=0.25, depth_coefficient=0.1, hidden_dim=320, **LABELS)
    return transformers.EfficientNetForImageClassification(cfg)


# name: (model builder, processor factory, the size the model must see)
CASES: dict[str, tuple[Callable[[], Any], Callable[[], Any], tuple[int, int]]] = {
    # ViT: bilinear, 0.5 / 0.5
    "vit-bilinear": (_vit, lambda: _processor("ViTImageProcessor")(size={"height": 32, "width": 32}), (32, 32)),
    # DeiT: bicubic, resized to 40 then centre-cropped to 32: the crop size is what the model sees
    "deit-bicubic-crop": (_vit, lambda: _processor("DeiTImageProcessor")(size={"height": 40, "width": 40},
                                                                         crop_size={"height": 32, "width": 32}), (32, 32)),
    # EfficientNet: crop_size 289 but do_center_crop off (the model sees 32), and include_top
    # divides by the std a second time
    "efficientnet-no-crop-include-top": (_efficientnet, lambda: _processor("EfficientNetImageProcessor")(
        size={"height": 32, "width": 32}, crop_size={"height": 289, "width": 289}, do_center_crop=False, include_top=True), (32, 32)),
    # a rectangular size, ImageNet mean and std
    "resnet-rectangular": (_resnet, lambda: _processor("ViTImageProcessor")(size={"height": 24, "width": 40},
                                                                             image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]), (24, 40)),
    # one channel: a grey image in, one mean and std
    "resnet-grey": (lambda: _resnet(1), lambda: _processor("ViTImageProcessor")(size={"height": 32, "width": 32}, image_mean=[0.4],
                                                                                 image_std=[0.3]), (32, 32)),
}


def _save(folder: Path, model: Any, processor: Any | None) -> Path:
    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    model.eval().save_pretrained(folder)
    if processor is not None:
        processor.save_pretrained(folder)
    return folder


def _photo(channels: int, h: int = 45, w: int = 70) -> Image.Image:
    """A smooth colour image with an edge (not a flat one: resizing must matter)."""
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 / w, y * 255 / h, ((x + y) % 23) * 11.0], -1)
    rgb[h // 3 : h // 2, w // 4 : w // 2] = (250, 20, 40)
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    return image if channels == 3 else image.convert("L")


def _model_input(adapter: ImageClassifierAdapter, image: Image.Image) -> torch.Tensor:
    """Return the tensor the adapter hands the model when it prepares `image`."""
    seen: list[torch.Tensor] = []
    hook = adapter.model.register_forward_pre_hook(lambda _m, args, kwargs: seen.append((args or (kwargs["pixel_values"],))[0].detach().clone()),
                                                  with_kwargs=True)
    try:
        adapter.prepare(image, 0)
    finally:
        hook.remove()
    return seen[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_model_sees_what_its_processor_would_give_it(case: str, tmp_path: Path) -> None:
    build, make_processor, size = CASES[case]
    processor = make_processor()
    folder = _save(tmp_path / case, build(), processor)
    adapter = explain.load(folder, device="cpu")
    assert isinstance(adapter, ImageClassifierAdapter)
    assert adapter.prep.size == size
    image = _photo(adapter.prep.channels)
    ours = _model_input(adapter, image)
    crop: dict[str, Any] = {}
    if getattr(processor, "do_center_crop", False):  # we resize the whole image to the crop size (documented)
        crop = {"do_center_crop": False, "size": dict(processor.crop_size)}
    theirs = processor(images=image, return_tensors="pt", **crop)["pixel_values"]
    assert ours.shape == theirs.shape
    # PIL resizes 8-bit pixels (rounding between its passes); we resize floats, differentiably
    steps = 2.5 if adapter.prep.resample == "bilinear" else 4.5
    tolerance = steps / 255 / min(adapter.prep.std)
    assert float((ours - theirs).abs().max()) <= tolerance, case
    assert float((ours - theirs).abs().mean()) <= tolerance / 5, case


def test_reading_only_the_attributes_would_miss_include_top() -> None:
    """The measured map differs from the attributes' where the processor does more (the check can fail)."""
    processor = CASES["efficientnet-no-crop-include-top"][1]()
    mean, std = measured_affine(processor, (32, 32), 3) or ((), ())
    assert np.allclose(mean, 0.5) and np.allclose(std, 0.25)  # (u - 0.5) / 0.5 / 0.5
    plain = _processor("ViTImageProcessor")(size={"height": 32, "width": 32})
    mean, std = measured_affine(plain, (32, 32), 3) or ((), ())
    assert np.allclose(mean, 0.5) and np.allclose(std, 0.5)


def test_a_processor_that_swaps_channels_is_not_measured_as_a_per_channel_map() -> None:
    class Swapping:
        def __call__(self, images: Image.Image, return_tensors: str) -> dict[str, torch.Tensor]:
            x = torch.from_numpy(np.asarray(images, dtype=np.float32) / 255).permute(2, 0, 1)
            return {"pixel_values": x.flip(0)[None]}  # BGR

    assert measured_affine(Swapping(), (8, 8), 3) is None


def test_the_resampling_filter_is_the_processors() -> None:
    assert Preprocessing.from_hf(_processor("DeiTImageProcessor")()).resample == "bicubic"
    assert Preprocessing.from_hf(_processor("ViTImageProcessor")()).resample == "bilinear"
    assert Preprocessing.from_hf(_processor("ViTImageProcessor")(resample=0)).resample == "nearest"


def test_without_a_processor_the_config_size_is_used_and_said(tmp_path: Path) -> None:
    folder = _save(tmp_path / "vit48", _vit(size=48), None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        adapter = explain.load(folder, device="cpu")
    assert adapter.prep.size == (48, 48) and adapter.prep.channels == 3
    said = [str(w.message) for w in caught if issubclass(w.category, explain.ExplainWarning)]
    assert len(said) == 1 and "no image processor" in said[0] and "48x48" in said[0]
    image = tmp_path / "wide.png"
    _photo(3, 60, 100).save(image)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "explain.cli.main", "run", str(folder), "--image", str(image), "--methods", "gradcam,occlusion",
                           "--out", str(out), "--no-report", "--quiet", "--device", "cpu"], capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 1), proc.stderr  # (a ViT has no conv layer for Grad-CAM: that method fails alone)
    assert "explain: warning:" in proc.stderr and "no image processor" in proc.stderr
    assert json.loads((out / "results.json").read_text())["inputs"][0]["prediction"]
    inspect = subprocess.run([sys.executable, "-m", "explain.cli.main", "inspect", str(folder), "--device", "cpu"],
                             capture_output=True, text=True, timeout=300)
    assert inspect.returncode == 0 and "48x48, 3 channels, bilinear resize" in inspect.stdout and "assumed" in inspect.stdout


def _one_line_load_error(folder: Path, tmp_path: Path) -> list[str]:
    """Run the CLI on one image with `folder`; check it exits 2 with one line on stderr; return the lines."""
    image = tmp_path / "x.png"
    _photo(3).save(image)
    proc = subprocess.run([sys.executable, "-m", "explain.cli.main", "run", str(folder), "--image", str(image), "--out", str(tmp_path / "out"),
                           "--device", "cpu"], capture_output=True, text=True, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    return lines


def test_an_unreadable_processor_file_is_a_one_line_error(tmp_path: Path) -> None:
    folder = _save(tmp_path / "broken", _resnet(), _processor("ViTImageProcessor")(size={"height": 32, "width": 32}))
    (folder / "preprocessor_config.json").write_text("{not json")
    lines = _one_line_load_error(folder, tmp_path)
    assert lines[0].startswith("explain: error:") and "preprocessor_config.json cannot be read" in lines[0]
    assert not (tmp_path / "out" / "results.json").exists()


def test_from_model_takes_the_image_processor_as_its_second_argument() -> None:
    torch.manual_seed(0)
    model, processor = _resnet().eval(), _processor("ViTImageProcessor")(size={"height": 24, "width": 24})
    positional = explain.from_model(model, processor, device="cpu")
    keyword = explain.from_model(model, preprocessing=processor, device="cpu")
    assert isinstance(positional, ImageClassifierAdapter) and positional.prep == keyword.prep
    results = explain.explain((model, processor), [_photo(3)], methods=["gradcam"])
    assert results[0].method == "gradcam" and np.isfinite(results[0].scores).all()


def test_a_model_that_cannot_take_its_processors_size_fails_at_load_in_one_line(tmp_path: Path) -> None:
    folder = _save(tmp_path / "vit32-proc64", _vit(size=32), _processor("ViTImageProcessor")(size={"height": 64, "width": 64}))
    lines = _one_line_load_error(folder, tmp_path)
    assert "does not run on the input its preprocessing gives (64x64, 3 channels" in lines[0]
