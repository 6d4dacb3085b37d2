"""Image classifiers: each method against its library called directly, its axiom, image reading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import explain
from explain.adapters.image import ImageClassifierAdapter, grid_segments
from explain.errors import InputError, MethodError
from explain.images import read_image

from conftest import MODELS

FAST = {  # cheap settings: these tests check agreement and shapes, not quality
    "ig": {"n_steps": 16},
    "shap": {"max_evals": 150},
    "lime": {"num_samples": 150},
    "occlusion": {"window": 12, "stride": 6},
}


# ---- fixtures ---------------------------------------------------------------------------
def save_hf_image_model(folder: Path, kind: str = "resnet") -> Path:
    """Save a random tiny HF ResNet (or ConvNeXt) classifier with a 64 px image processor."""
    import transformers

    torch.manual_seed(0)
    labels = {"id2label": {0: "cat", 1: "dog", 2: "bird"}, "label2id": {"cat": 0, "dog": 1, "bird": 2}}
    if kind == "resnet":
        cfg = transformers.ResNetConfig(num_channels=3, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic", **labels)
        model = transformers.ResNetForImageClassification(cfg)
    else:
        cfg = transformers.ConvNextConfig(num_channels=3, num_stages=2, hidden_sizes=[8, 16], depths=[1, 1], **labels)
        model = transformers.ConvNextForImageClassification(cfg)
    # The PIL-backed class is what ConvNextImageProcessor falls back to without torchvision.
    processor_cls = getattr(transformers, "ConvNextImageProcessorPil", transformers.ConvNextImageProcessor)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor_cls(size={"shortest_edge": 64}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def resnet(tmp_path_factory: pytest.TempPathFactory) -> ImageClassifierAdapter:
    m = explain.load(save_hf_image_model(tmp_path_factory.mktemp("tiny-resnet")), device="cpu")
    assert isinstance(m, ImageClassifierAdapter)
    return m


@pytest.fixture(scope="module")
def digits() -> ImageClassifierAdapter:
    path = MODELS / "digits-cnn"
    if not (path / "model.safetensors").exists():
        pytest.skip("bundled model examples/models/digits-cnn is missing (run examples/train_cnn.py)")
    m = explain.load(path, device="cpu")
    assert isinstance(m, ImageClassifierAdapter)
    return m


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An odd-sized RGB PNG, a grayscale PNG and an RGBA PNG with transparent pixels."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    rgb = (rng.random((37, 53, 3)) * 255).astype(np.uint8)
    rgb[10:25, 20:35] = (250, 30, 30)  # a red square, so segmentations have an object to find
    grey = (rng.random((29, 41)) * 255).astype(np.uint8)
    rgba = np.dstack([(rng.random((33, 31, 3)) * 255).astype(np.uint8), np.full((33, 31), 255, np.uint8)])
    rgba[:5, :, 3] = 0  # a transparent band
    paths = {"rgb": folder / "rgb.png", "grey": folder / "grey.png", "rgba": folder / "rgba.png"}
    Image.fromarray(rgb).save(paths["rgb"])
    Image.fromarray(grey, "L").save(paths["grey"])
    Image.fromarray(rgba, "RGBA").save(paths["rgba"])
    return paths


def digit(index: int = 0) -> np.ndarray:
    from planted_data import digit_images

    return digit_images(index + 1, 3, split="heldout")[index][0]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


# ---- every method, every kind of image ---------------------------------------------------
@pytest.mark.parametrize("name", ["rgb", "grey", "rgba"])
def test_every_method_scores_at_input_resolution(resnet: ImageClassifierAdapter, images: dict[str, Path], name: str) -> None:
    path = images[name]
    w, h = Image.open(path).size
    res = explain.explain(resnet, [str(path)], methods="all", **FAST)
    assert not res.failures
    assert {"ig", "gradcam", "shap", "lime", "occlusion"} <= {e.method for e in res}
    for e in res:
        assert e.scores.shape == (h, w), e.method
        assert e.scores.dtype == np.float32 and np.isfinite(e.scores).all(), e.method
        assert e.granularity == "pixel" and e.rows > 0, e.method
    rec = res.inputs[0]
    assert (rec.width, rec.height, rec.path) == (w, h, str(path))
    import base64
    import io

    shown = Image.open(io.BytesIO(base64.b64decode(rec.image_png)))
    assert shown.size == (w, h) and shown.mode == "RGB"  # converted to the model's channels
    if name == "rgba":
        assert "white" in (rec.note or "")
        assert np.asarray(shown)[:5].min() == 255  # transparent pixels composited on white


def test_hf_processor_size_is_used(resnet: ImageClassifierAdapter) -> None:
    assert resnet.prep.size == (64, 64) and resnet.prep.channels == 3


def test_convnext_gradcam_and_ig(tmp_path: Path) -> None:
    m = explain.load(save_hf_image_model(tmp_path / "convnext", "convnext"), device="cpu")
    img = (np.random.default_rng(1).random((40, 30, 3)) * 255).astype(np.uint8)
    res = explain.explain(m, [img], methods=["gradcam", "ig"], ig={"n_steps": 8})
    assert not res.failures and all(e.scores.shape == (40, 30) for e in res)
    assert res.by_method("gradcam")[0].settings["layer"] == "convnext.encoder.stages.1"  # the last feature map, not a mid-block dwconv


def test_prediction_matches_the_training_preprocessing(digits: ImageClassifierAdapter) -> None:
    from train_cnn import preprocess

    img = np.asarray(Image.fromarray(digit()).resize((45, 40), Image.BILINEAR))  # not the model's size
    ex = digits.prepare(img, 0)
    with torch.no_grad():
        ref = torch.softmax(digits.model(preprocess([img])), -1)[0].numpy()
    # PIL resizes uint8 and rounds; our differentiable resize does not: ~1/255 apart per pixel
    np.testing.assert_allclose(ex.probs, ref, atol=2e-2)
    assert ex.record.prediction.index == int(np.argmax(ref))


# ---- agreement with the libraries called directly ----------------------------------------
def test_ig_equals_captum_on_an_independent_forward(resnet: ImageClassifierAdapter, images: dict[str, Path]) -> None:
    from captum.attr import IntegratedGradients

    [e] = explain.explain(resnet, [str(images["rgb"])], methods=["ig"], ig={"n_steps": 32, "baseline": "black", "adaptive": False})
    x = torch.from_numpy(np.array(Image.open(images["rgb"]).convert("RGB"))).permute(2, 0, 1)[None].float() / 255
    t = e.target.index

    def forward(p: torch.Tensor) -> torch.Tensor:  # the processor's steps, written out here
        # ConvNeXt's processor at shortest_edge 64, crop_pct 0.875: the shorter side (37) to
        # int(64 / 0.875) = 73 keeping the aspect ratio (53 -> int(73 * 53 / 37) = 104), bicubic
        # (resample=3) as PIL does it (the width pass, clipped, then the height pass, clipped),
        # then the centre 64 x 64: rows 4..67, columns 20..83
        p = F.interpolate(p, size=(37, 104), mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
        p = F.interpolate(p, size=(73, 104), mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
        p = p[:, :, 4:68, 20:84]
        return torch.softmax(resnet.model(pixel_values=(p - 0.5) / 0.5).logits, -1)[:, t]

    attr, delta = IntegratedGradients(forward).attribute(
        x, baselines=torch.zeros_like(x), n_steps=32, method="gausslegendre", return_convergence_delta=True
    )
    ref = attr.sum(1)[0].detach().numpy()
    assert cosine(e.scores, ref) >= 0.99
    np.testing.assert_allclose(e.scores, ref, atol=1e-5 + 1e-3 * np.abs(ref).max())
    assert e.checks["convergence_delta"] == pytest.approx(abs(float(delta)), abs=1e-5)


def test_ig_completeness_is_reported(digits: ImageClassifierAdapter) -> None:
    [e] = explain.explain(digits, [digit()], methods=["ig"], ig={"baseline": "blur"})
    assert e.settings["baseline"] == "blur" and e.settings["output"] == "probability"
    ex = digits.prepare(digit(), 0)
    view = digits.gradient_view(ex, e.target, baseline="blur")
    with torch.no_grad():
        change = float(view.forward(view.inputs) - view.forward(view.baselines))
    assert e.checks["output_change"] == pytest.approx(change, abs=1e-5)
    # completeness: the scores sum to f(x) - f(baseline) up to the reported delta
    assert abs(float(e.scores.sum()) - change) == pytest.approx(e.checks["convergence_delta"], abs=1e-4)
    assert e.checks["delta_relative"] < 0.05


@pytest.mark.parametrize("model_name, mask", [("digits", "blur"), ("resnet", "black"), ("resnet", "grey")])
def test_lime_equals_lime_image(request: pytest.FixtureRequest, images: dict[str, Path], model_name: str, mask: str) -> None:
    from lime.lime_image import LimeImageExplainer

    model: ImageClassifierAdapter = request.getfixturevalue(model_name)
    raw = digit() if model_name == "digits" else str(images["rgb"])
    seed, n = 7, 300
    [e] = explain.explain(model, [raw], methods=["lime"], seed=seed, lime={"num_samples": n, "mask": mask, "adaptive": False})
    ex = model.prepare(raw, 0)
    segments = e.extras["segments"]
    image = ex.state.image.pixels.astype(np.float64) / 255  # (H, W, C) in [0, 1]
    grey = image.shape[-1] == 1
    blurred = model.fill(ex, "blur")[0].permute(1, 2, 0).numpy().astype(np.float64)
    # lime fills removed segments with hide_color; for blur a sentinel marks pixels to swap in
    hide = {"black": 0.0, "grey": 0.5, "blur": -1.0}[mask]

    def classifier_fn(batch: np.ndarray) -> np.ndarray:  # (N, H, W, 3) as lime hands them over
        if mask == "blur":
            batch = np.where(batch == -1.0, (blurred if not grey else np.repeat(blurred, 3, -1)), batch)
        x = torch.from_numpy(batch[..., :1] if grey else batch).permute(0, 3, 1, 2).float()
        with torch.no_grad():
            return torch.softmax(model.logits(x), -1).numpy()

    out = LimeImageExplainer(random_state=seed).explain_instance(
        image[..., 0] if grey else image,
        classifier_fn,
        labels=(e.target.index,),
        top_labels=None,
        hide_color=hide,
        num_samples=n,
        segmentation_fn=lambda _: segments,
    )
    theirs = np.zeros(segments.max() + 1)
    for i, w in out.local_exp[e.target.index]:
        theirs[i] = w
    ours = np.array([e.scores[segments == s][0] for s in range(segments.max() + 1)])
    np.testing.assert_allclose(ours, theirs, atol=1e-4 * np.abs(theirs).max())
    assert e.checks["score"] == pytest.approx(out.score, abs=1e-4)


@pytest.mark.parametrize("model_name", ["digits", "resnet"])
def test_shap_efficiency(request: pytest.FixtureRequest, images: dict[str, Path], model_name: str) -> None:
    model: ImageClassifierAdapter = request.getfixturevalue(model_name)
    raw = digit() if model_name == "digits" else str(images["rgb"])
    [e] = explain.explain(model, [raw], methods=["shap"], shap={"max_evals": 300, "adaptive": False})
    segments = e.extras["segments"]
    values = np.array([e.scores[segments == s][0] for s in range(segments.max() + 1)])
    ex = model.prepare(raw, 0)
    view = model.perturbation_view(ex, e.target)
    full, empty = view.evaluate(np.array([[True] * len(view.features), [False] * len(view.features)]))
    assert e.checks["output"] == pytest.approx(full, abs=1e-5)
    assert e.checks["base_value"] == pytest.approx(empty, abs=1e-5)  # everything blurred
    assert abs(values.sum() - (full - empty)) < 1e-3  # shap's accounting, as stored
    # 300 evaluations do not expand every region: the check compared with the 150-evaluation values
    [check, found] = e.self_checks
    assert found.name == "evidence" and found.passed
    assert check.name == "stability" and not check.sentence.startswith("exact") and "150" in check.sentence


def test_gradcam_equals_captum(digits: ImageClassifierAdapter) -> None:
    from captum.attr import LayerAttribution, LayerGradCam

    [e] = explain.explain(digits, [digit()], methods=["gradcam"])
    assert e.settings["layer"] == "features" and e.settings["output"] == "logit"
    x = digits.prepare(digit(), 0).state.pixels
    layer = digits.model.features
    cam = LayerGradCam(lambda p: digits.logits(p), layer).attribute(x, target=e.target.index, relu_attributions=True)
    ref = LayerAttribution.interpolate(cam, (32, 32), "bilinear")[0, 0].detach().numpy()
    np.testing.assert_allclose(e.scores, ref, atol=1e-5)
    assert not layer._forward_hooks and not layer._backward_hooks  # captum removed its hooks


def test_no_hook_survives_an_error(digits: ImageClassifierAdapter) -> None:
    def fail(*_: object) -> None:
        if torch.is_grad_enabled():  # only in Grad-CAM's pass, after captum hooked the conv layer
            raise RuntimeError("planted failure")

    from explain.methods import get

    ex = digits.prepare(digit(), 0)
    method = get("gradcam")
    handle = digits.model.classifier.register_forward_hook(fail)
    try:
        with pytest.raises(RuntimeError, match="planted failure"):
            method.explain(digits, ex, digits.targets(ex)[0], method.settings(), granularity="pixel", seed=0)
    finally:
        handle.remove()
    assert all(not m._forward_hooks and not m._backward_hooks and not m._forward_pre_hooks for m in digits.model.modules())
    [e] = explain.explain(digits, [digit()], methods=["gradcam"])  # and the model still works
    assert np.isfinite(e.scores).all()


def test_gradcam_layer_setting(digits: ImageClassifierAdapter) -> None:
    [e] = explain.explain(digits, [digit()], methods=["gradcam"], gradcam={"layer": "features.4"})
    assert e.settings["layer"] == "features.4" and e.extras["layer_map_size"] == [16, 16]
    with pytest.raises(MethodError, match="no such module"):  # refused before any model call
        explain.explain(digits, [digit()], methods=["gradcam"], gradcam={"layer": "features.99"})
    res = explain.explain(digits, [digit()], methods=["gradcam"], gradcam={"layer": "classifier"}, errors="record")
    assert "convolutional feature map" in res.failures[0].error


def test_occlusion_equals_captum_and_counts_rows(digits: ImageClassifierAdapter) -> None:
    from captum.attr import Occlusion

    [e] = explain.explain(digits, [digit()], methods=["occlusion"])
    assert (e.settings["window"], e.settings["stride"], e.settings["baseline"]) == (5, 2, "blur")
    ex = digits.prepare(digit(), 0)
    t = e.target.index
    calls: list[int] = []

    def forward(p: torch.Tensor) -> torch.Tensor:
        calls.append(p.shape[0])
        return torch.softmax(digits.logits(p), -1)[:, t]

    with torch.no_grad():
        ref = Occlusion(forward).attribute(
            ex.state.pixels, sliding_window_shapes=(1, 5, 5), strides=(1, 2, 2), baselines=digits.fill(ex, "blur")
        )
    np.testing.assert_allclose(e.scores, ref[0, 0].numpy(), atol=1e-5)
    assert e.rows == sum(calls)  # 1 + one row per window position, all counted by the runner


# ---- segmentation ------------------------------------------------------------------------
def test_segments_are_visible_and_expand_to_pixels(digits: ImageClassifierAdapter) -> None:
    ex = digits.prepare(digit(), 0)
    t = digits.targets(ex)[0]
    view = digits.perturbation_view(ex, t)
    seg = view.extras["segments"]
    d = len(view.features)
    assert seg.shape == (32, 32) and seg.dtype == np.int32 and set(np.unique(seg)) == set(range(d))
    assert view.extras["n_segments"] == d and 20 <= d <= 50  # not lime's 1-3 quickshift segments
    assert view.clustering.shape == (d - 1, 4) and view.sampling == "lime-image" and view.mask == "blur"
    np.testing.assert_array_equal(view.expand(np.arange(d)), seg)
    grid = digits.perturbation_view(ex, t, segmentation="grid", n_segments=16)
    assert len(grid.features) == 16
    np.testing.assert_array_equal(grid.extras["segments"], grid_segments(32, 32, 16))
    assert digits.perturbation_view(ex, t, segmentation="quickshift").extras["segmentation"] == "quickshift"
    # pure noise: colour-driven SLIC segments fragment and merge into one; compactness is raised
    noise = digits.prepare((np.random.default_rng(0).random((120, 80)) * 255).astype(np.uint8), 1)
    seg, used = digits.segment(noise)
    assert seg.max() + 1 >= 25 and used.startswith("slic, compactness 3")
    with pytest.raises(MethodError, match="unknown segmentation"):
        digits.perturbation_view(ex, t, segmentation="watershed")
    with pytest.raises(MethodError, match="unknown image mask"):
        digits.perturbation_view(ex, t, mask="mask")


def test_evaluate_batches_through_the_runner(digits: ImageClassifierAdapter) -> None:
    ex = digits.prepare(digit(), 0)
    view = digits.perturbation_view(ex, digits.targets(ex)[0])
    keep = np.random.default_rng(0).random((130, len(view.features))) > 0.5
    before = digits.runner.rows
    out = view.evaluate(keep)
    assert out.shape == (130,) and digits.runner.rows - before == 130
    one = view.evaluate(keep[5:6])
    assert out[5] == pytest.approx(float(one[0]), abs=1e-6)


def test_noise_baseline_follows_the_seed(digits: ImageClassifierAdapter) -> None:
    a = explain.explain(digits, [digit()], methods=["ig"], seed=1, ig={"baseline": "noise", "n_steps": 8})
    b = explain.explain(digits, [digit()], methods=["ig"], seed=1, ig={"baseline": "noise", "n_steps": 8})
    c = explain.explain(digits, [digit()], methods=["ig"], seed=2, ig={"baseline": "noise", "n_steps": 8})
    assert np.array_equal(a[0].scores, b[0].scores) and not np.array_equal(a[0].scores, c[0].scores)
    with pytest.raises(MethodError, match="pad"):  # refused before any model call
        explain.explain(digits, [digit()], methods=["ig"], ig={"baseline": "pad"})


def test_results_file_round_trip(digits: ImageClassifierAdapter, tmp_path: Path) -> None:
    res = explain.explain(digits, [digit(), digit(1)], methods=["gradcam", "lime"], lime={"num_samples": 100})
    back = explain.open_results(explain.save(res, tmp_path / "r.json"))
    assert back == res
    assert back[1].extras["segments"].dtype == np.int32


# ---- reading images ----------------------------------------------------------------------
def test_bad_images_are_input_errors(digits: ImageClassifierAdapter, tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("this is not a picture\n")
    good = tmp_path / "good.png"
    Image.fromarray(digit()).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:200])
    huge = tmp_path / "huge.png"
    Image.new("L", (8000, 6000)).save(huge)  # 48 megapixels of black compress to a small file
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    cases = {
        text: "not an image",
        truncated: "truncated",
        huge: "too large (8000x6000 = 48.0 megapixels; the limit is 40)",
        empty: "empty",
        tmp_path / "missing.png": "no such file",
    }
    for path, message in cases.items():
        with pytest.raises(InputError, match=None) as err:
            digits.prepare(str(path), 3)
        assert message in str(err.value) and str(path) in str(err.value) and "input 3" in str(err.value)
        assert "\n" not in str(err.value)
    # one bad image fails alone; the others are explained
    res = explain.explain(digits, [str(text), str(good)], methods=["gradcam"], errors="record")
    assert len(res) == 1 and res.failures[0].input == 0 and "not an image" in res.failures[0].error
    assert res.inputs[0].path == str(text)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((4, 4, 2), np.uint8), "(H, W, C)"),
        (np.full((8, 8), 1.5), "values in [0, 1]"),
        (np.full((8, 8), np.nan), "NaN"),
        (np.zeros((0, 8), np.uint8), "empty"),
        (np.zeros((8, 8), np.int64) - 3, "uint8"),
    ],
)
def test_bad_arrays_are_input_errors(array: np.ndarray, message: str) -> None:
    with pytest.raises(InputError, match=None) as err:
        read_image(array, 1, "input 0")
    assert message in str(err.value)


def test_every_mode_converts_to_the_model_channels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rgb = Image.fromarray((rng.random((9, 7, 3)) * 255).astype(np.uint8))
    palette = rgb.convert("P")
    palette.info["transparency"] = 0
    wide = Image.fromarray(np.full((9, 7), 65535, np.uint16))  # I;16, full scale -> white
    sources = {
        "1": rgb.convert("1"), "L": rgb.convert("L"), "P": palette, "LA": rgb.convert("LA"),
        "RGBA": rgb.convert("RGBA"), "CMYK": rgb.convert("CMYK"), "I;16": wide, "F": rgb.convert("F"),
    }
    for mode, im in sources.items():
        for channels in (1, 3):
            got = read_image(im, channels, f"mode {mode}")
            assert got.pixels.shape == (9, 7, channels) and got.pixels.dtype == np.uint8, (mode, channels)
    assert read_image(wide, 1, "x").pixels.min() == 255  # scaled, not clipped to 255 from 65535
    # a dark 16-bit scan (values 0..200 of 65535) stays dark, as the same uint16 array does
    dark = (np.arange(63).reshape(9, 7) * 3).astype(np.uint16)
    Image.fromarray(dark).save(tmp_path / "dark16.png")
    from_file = read_image(str(tmp_path / "dark16.png"), 1, "x").pixels
    assert np.array_equal(from_file, read_image(dark, 1, "x").pixels) and from_file.max() == 1
    assert read_image(np.full((9, 7), 0.5), 3, "x").pixels.max() == 128
    frames = [Image.new("L", (6, 5), v) for v in (10, 200)]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    first = read_image(str(gif), 1, "input 0")
    assert first.note == "first of 2 frames" and int(first.pixels.mean()) == 10
    webp = tmp_path / "pic.webp"
    rgb.save(webp, lossless=True)
    assert read_image(str(webp), 3, "x").pixels.shape == (9, 7, 3)
