"""Hugging Face image checkpoints are fed what their own image processor would feed them.

The reference is the checkpoint's processor called directly, its `pixel_values` untouched: the
tensor our adapter hands the model (resize, centre crop, scale, normalise) must equal them up to
the 8-bit rounding PIL does inside its resize, on wide and tall images. Each case is a processor
shape that read the wrong way gives another tensor: the shorter side resized keeping the aspect
ratio and the centre cropped (ConvNeXt's crop_pct, ResNet, CLIP/BiT, MobileNet), a fixed resize
then a crop (DeiT, EfficientNet with its crop on), a crop size the processor does not crop to
(EfficientNet), a second division by the std (EfficientNet's include_top), a bicubic filter, a
rectangular size, one channel. The model's answer is its answer to those pixel values, and the
part of the image a crop leaves out is marked and scores 0. Without a processor the model
config's size is used and the assumption is said; a processor file that cannot be read is an
error, never silently replaced by defaults.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
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


def _convnext(channels: int = 3) -> Any:
    cfg = transformers.ConvNextConfig(num_channels=channels, hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, **LABELS)
    return transformers.ConvNextForImageClassification(cfg)


# name: (model builder, processor factory, the size the model must see)
CASES: dict[str, tuple[Callable[[], Any], Callable[[], Any], tuple[int, int]]] = {
    # ViT: the whole image squashed to a square, bilinear, 0.5 / 0.5
    "vit-bilinear": (_vit, lambda: _processor("ViTImageProcessor")(size={"height": 32, "width": 32}), (32, 32)),
    # DeiT: bicubic, resized to 40 x 40 then centre-cropped to 32: the crop size is what the model sees
    "deit-bicubic-crop": (_vit, lambda: _processor("DeiTImageProcessor")(size={"height": 40, "width": 40},
                                                                         crop_size={"height": 32, "width": 32}), (32, 32)),
    # ConvNeXt: the shorter side to int(32 / 0.875) = 36 keeping the aspect ratio, then the centre 32 x 32
    "convnext-shortest-edge-crop-pct": (_convnext, lambda: _processor("ConvNextImageProcessor")(size={"shortest_edge": 32}, crop_pct=0.875), (32, 32)),
    # ResNet checkpoints ship ConvNeXt's processor: the same resize and crop in front of a ResNet
    "resnet-shortest-edge-crop-pct": (_resnet, lambda: _processor("ConvNextImageProcessor")(size={"shortest_edge": 32}, crop_pct=0.875,
                                                                                            image_mean=[0.485, 0.456, 0.406],
                                                                                            image_std=[0.229, 0.224, 0.225]), (32, 32)),
    # CLIP / BiT style: the shorter side to 36, then a 32 x 32 centre crop (crop_size), bicubic
    "bit-shortest-edge-then-crop": (_resnet, lambda: _processor("BitImageProcessor")(size={"shortest_edge": 36},
                                                                                     crop_size={"height": 32, "width": 32}), (32, 32)),
    # EfficientNet with its crop on: squash to 40 x 40, then the centre 32 x 32
    "efficientnet-resize-then-crop": (_efficientnet, lambda: _processor("EfficientNetImageProcessor")(
        size={"height": 40, "width": 40}, crop_size={"height": 32, "width": 32}, do_center_crop=True), (32, 32)),
    # EfficientNet: crop_size 289 but do_center_crop off (the model sees 32), and include_top
    # divides by the std a second time
    "efficientnet-no-crop-include-top": (_efficientnet, lambda: _processor("EfficientNetImageProcessor")(
        size={"height": 32, "width": 32}, crop_size={"height": 289, "width": 289}, do_center_crop=False, include_top=True), (32, 32)),
    # a rectangular size, ImageNet mean and std
    "resnet-rectangular": (_resnet, lambda: _processor("ViTImageProcessor")(size={"height": 24, "width": 40},
                                                                             image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]), (24, 40)),
    # one channel: a grey image in, one mean and std, shortest edge and crop
    "resnet-grey-crop": (lambda: _resnet(1), lambda: _processor("BitImageProcessor")(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32},
                                                                                     image_mean=[0.4], image_std=[0.3], do_convert_rgb=False), (32, 32)),
}
CROPPING = {"deit-bicubic-crop", "convnext-shortest-edge-crop-pct", "resnet-shortest-edge-crop-pct", "bit-shortest-edge-then-crop",
            "efficientnet-resize-then-crop", "resnet-grey-crop"}
SHAPES = [(45, 70), (81, 52), (33, 33)]  # wide, tall (each downscaled), square (upscaled)


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


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[ImageClassifierAdapter, Any]]:
    """Every case saved as a checkpoint folder and loaded: (adapter, the processor itself)."""
    out = {}
    for case, (build, make_processor, _) in CASES.items():
        processor = make_processor()
        folder = _save(tmp_path_factory.mktemp(case), build(), processor)
        adapter = explain.load(folder, device="cpu")
        assert isinstance(adapter, ImageClassifierAdapter)
        out[case] = (adapter, processor)
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_model_sees_what_its_processor_would_give_it(case: str, loaded: dict[str, Any]) -> None:
    adapter, processor = loaded[case]
    assert adapter.prep.size == CASES[case][2]
    assert adapter.prep.assumed is None, adapter.prep.assumed  # the processor's own output was reproduced
    for h, w in SHAPES:
        image = _photo(adapter.prep.channels, h, w)
        ours = _model_input(adapter, image)
        theirs = processor(images=image, return_tensors="pt")["pixel_values"]  # untouched
        assert ours.shape == theirs.shape, (case, h, w)
        # PIL resizes 8-bit pixels (rounding between its passes); we resize floats, differentiably
        step = 1 / 255 / min(adapter.prep.std)
        assert float((ours - theirs).abs().max()) <= 1.5 * step, (case, h, w)
        assert float((ours - theirs).abs().mean()) <= 0.5 * step, (case, h, w)


@pytest.mark.parametrize("case", sorted(CROPPING))
def test_the_answer_is_the_model_answer_to_its_processor_output(case: str, loaded: dict[str, Any]) -> None:
    """The prediction explained is the model's answer to the processor's pixel_values, not to a squashed image."""
    adapter, processor = loaded[case]
    image = _photo(adapter.prep.channels, 45, 70)
    with torch.inference_mode():
        direct = torch.softmax(adapter.model(processor(images=image, return_tensors="pt")["pixel_values"]).logits, -1)[0]
    record = adapter.prepare(image, 0).record
    np.testing.assert_allclose(record.probabilities, direct.numpy(), atol=2e-3)
    assert record.note and "never seen" in record.note  # the crop is said beside the input


def test_attributions_stay_on_the_whole_image_and_what_the_model_never_saw_scores_zero(loaded: dict[str, Any]) -> None:
    """On a processor that crops, every method scores the user's full image; its explanations
    carry the window's box (in the image's pixels); outside it (beyond the resize filter's reach)
    Grad-CAM, IG and SHAP are exactly 0 and occlusion is 0 beyond one window; a squash has no box."""
    adapter, _ = loaded["convnext-shortest-edge-crop-pct"]
    h, w = 45, 100  # shorter side 45 -> 36, so 36 x 80; its centre 32 x 32 is x 24..56 of 80, y 2..34 of 36
    image = _photo(3, h, w)
    results = explain.explain(adapter, [image], methods=["gradcam", "ig", "shap", "lime", "occlusion"],
                              ig={"n_steps": 8, "adaptive": False}, shap={"max_evals": 120}, lime={"num_samples": 120})
    assert not results.failures, results.failures
    x0, y0, x1, y1 = 24 * 100 / 80, 2 * 45 / 36, 56 * 100 / 80, 34 * 45 / 36
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    for e in results:
        assert e.scores.shape == (h, w), e.method
        np.testing.assert_allclose(e.extras["model_view"]["box"], [x0, y0, x1, y1], atol=1e-3)
        assert e.extras["model_view"]["resized"] == [36, 80] and e.extras["model_view"]["size"] == [32, 32]
        reach = 6 + (e.settings.get("window") or 0 if e.method == "occlusion" else 0)  # past the bicubic filter's reach
        far = (xs < x0 - reach) | (xs > x1 + reach) | (ys < y0 - reach) | (ys > y1 + reach)
        assert far.sum() > 1000  # the left and right sixths of the image at least
        inside = ~((xs < x0) | (xs > x1) | (ys < y0) | (ys > y1))
        assert np.abs(e.scores[inside]).max() > 0, e.method
        if e.method in ("shap", "lime"):  # one feature for all of it: Owen values and LIME's fit give it one number
            assert len(np.unique(e.scores[far])) == 1 and len(np.unique(e.extras["segments"][far])) == 1, e.method
        else:
            assert np.abs(e.scores[far]).max() == 0, e.method
    saved = explain.open_results(explain.save(results, Path(tempfile.mkdtemp()) / "results.json"))
    assert saved[0].extras["model_view"] == results[0].extras["model_view"]  # kept in the results file
    from explain.reports.data import input_doc

    assert input_doc(saved.inputs[0], list(saved))["view"] == pytest.approx([x0, y0, x1, y1], abs=1e-3)  # the report shades the rest
    squash, _ = loaded["vit-bilinear"]
    assert "model_view" not in explain.explain(squash, [image], methods=["occlusion"])[0].extras


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


def test_a_processor_whose_geometry_cannot_be_reproduced_is_said() -> None:
    """A processor that mirrors the image matches none of the readings: the closest is used and said."""
    class Mirroring:
        size = {"height": 16, "width": 16}
        image_mean, image_std = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]

        def __call__(self, images: Image.Image, return_tensors: str) -> dict[str, torch.Tensor]:
            x = torch.from_numpy(np.asarray(images.resize((16, 16), Image.Resampling.BILINEAR), dtype=np.float32) / 255).permute(2, 0, 1)
            return {"pixel_values": ((x - 0.5) / 0.5).flip(-1)[None]}

    prep = Preprocessing.from_hf(Mirroring())
    assert prep.size == (16, 16) and prep.assumed and "not reproduced exactly" in prep.assumed


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
