"""The zoo, images: classifiers written as tutorials write them, each through the Python API
(`from_model`) and through `explain pack` + `explain run` as subprocesses. Each answers with the
model's own probabilities (called directly, its head read as written) and its IG equals
captum's on the same model, or it is refused in one line that names the cause.

One logit, a sigmoid output and softmax outputs were silently wrong before issue 24 (a softmax
over one class gave p = 1.0 and every score 0; probabilities were softmaxed again); `x.view(-1,
n)` failed SHAP and LIME; tuple and dict outputs were refused; fp16 / bf16 models failed.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import explain
from explain.errors import CheckpointError, ExplainWarning, MethodError

from zoo_kit import (CLI_IG, GREY, IG_SETTINGS, RGB, Style, assert_close, build, direct_image, float_copy, image, image_file,
                     image_ig, one_line, packed, pixels, run_folder)

IMAGES = [
    Style("cifar-view", "images.py", "CifarNet", "image-classifier", prep=RGB),
    Style("size-view", "images.py", "SizeView", "image-classifier", prep=RGB),
    Style("torch-flatten", "images.py", "TorchFlatten", "image-classifier", prep=RGB),
    Style("lenet-log-softmax", "images.py", "LeNet", "image-classifier", prep=GREY, kind="logprobs"),
    Style("sequential-bn-inplace-flatten", "images.py", "SequentialBN", "image-classifier", prep=RGB),
    Style("resnet-residual", "images.py", "TinyResNet", "image-classifier", prep=RGB),
    Style("one-logit", "images.py", "CatsDogs", "image-classifier", prep=RGB, kind="binary"),
    Style("sigmoid-output", "images.py", "SigmoidOut", "image-classifier", prep=RGB, kind="sigmoid-prob"),
    Style("softmax-output", "images.py", "SoftmaxOut", "image-classifier", prep=RGB, kind="probs"),
    Style("tuple-output", "images.py", "TupleOut", "image-classifier", prep=RGB),
    Style("dict-output", "images.py", "DictOut", "image-classifier", prep=RGB),
    Style("fp16-weights", "images.py", "CifarNet", "image-classifier", prep=RGB, dtype="float16"),
    Style("bf16-weights", "images.py", "TorchFlatten", "image-classifier", prep=RGB, dtype="bfloat16"),
]
BATCH_OF_ONE = Style("batch-of-one", "images.py", "BatchOfOne", "image-classifier", prep=RGB)
NO_GRAD = Style("no-grad", "images.py", "NoGrad", "image-classifier", prep=RGB)


def _img(style: Style) -> np.ndarray:
    assert style.prep is not None
    return image(style.prep["channels"], style.prep["size"][0])


def _img_file(style: Style) -> str:
    assert style.prep is not None
    return str(image_file(style.prep["channels"], style.prep["size"][0]))


def _rel(style: Style) -> float:
    return 2e-2 if style.dtype else 1e-4  # fp16 / bf16: the same ops, rounded in another order


@pytest.mark.parametrize("style", IMAGES, ids=lambda s: s.name)
def test_api_answers_as_the_model_and_ig_equals_captum(style: Style) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExplainWarning)  # what was assumed is checked in its own tests
        model = explain.from_model(build(style), preprocessing=style.prep, device="cpu", **({"head": style.head} if style.head else {}))
    res = explain.explain(model, [_img(style)], methods=["ig", "occlusion"], baseline="black", ig=IG_SETTINGS)
    want = direct_image(style, pixels(style))[0].detach().numpy()
    assert_close(res.inputs[0].probabilities, want, rel=1e-5 if not style.dtype else 1e-3)
    ig = res.by_method("ig")[0]
    assert ig.target.index == int(np.argmax(want)) and ig.target.probability == pytest.approx(float(want.max()), abs=1e-3)
    assert_close(ig.scores, image_ig(style, ig.target.index), rel=_rel(style))
    occ = res.by_method("occlusion")[0]
    assert np.isfinite(occ.scores).all() and float(np.abs(occ.scores).max()) > 0


@pytest.mark.slow  # about 6 s a style on an idle 2-core machine: two processes that import torch
@pytest.mark.parametrize("style", IMAGES, ids=lambda s: s.name)
def test_cli_pack_and_run_answer_as_the_model(style: Style, tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder, proc = packed(style)
    assert proc.returncode == 0, proc.stderr
    run = run_folder(folder, tmp_path / "out", "--image", _img_file(style), "--methods", "ig,shap", "--baseline", "black",
                     "--shap-max-evals", "60", *CLI_IG)
    # --quiet: what the probe assumed, and nothing else (never torch.fx's printed traceback)
    assert run.returncode == 0 and all(line.startswith("explain: warning: ") for line in run.stderr.splitlines()), run.stderr
    assert bool(run.stderr) == (style.kind in ("binary", "sigmoid-prob", "probs")), run.stderr
    res = explain.open_results(tmp_path / "out" / "results.json")
    # a packed fp16 / bf16 state dict loads into the class's float32 weights: that model answers
    ref = float_copy(style) if style.dtype else None
    want = direct_image(style, pixels(style), ref)[0].detach().numpy()
    assert_close(res.inputs[0].probabilities, want, rel=1e-5)
    ig = res.by_method("ig")[0]
    assert_close(ig.scores, image_ig(style, ig.target.index, ref), rel=1e-4)
    shap = res.by_method("shap")[0]
    assert np.isfinite(shap.scores).all() and float(np.abs(shap.scores).max()) > 0


def test_one_logit_is_a_binary_classifier_and_says_so() -> None:
    style = next(s for s in IMAGES if s.name == "one-logit")
    with pytest.warns(ExplainWarning, match="one output: read as the logit of a binary classifier"):
        model = explain.from_model(build(style), preprocessing=style.prep, device="cpu")
    assert model.labels == ("negative", "positive")
    named = explain.from_model(build(style), preprocessing=style.prep, device="cpu", labels=["cat", "dog"], head="sigmoid")
    assert named.labels == ("cat", "dog")
    with pytest.raises(CheckpointError, match="3 labels given but the model has one output"):
        explain.from_model(build(style), preprocessing=style.prep, device="cpu", labels=["a", "b", "c"])
    with pytest.raises(CheckpointError, match="head is softmax but the model has one output"):
        explain.from_model(build(style), preprocessing=style.prep, device="cpu", head="softmax")
    value = explain.from_model(build(style), preprocessing=style.prep, device="cpu", head="regression")
    [e] = explain.explain(value, [_img(style)], methods=["ig"], baseline="black", ig=IG_SETTINGS)
    z = float(direct_image(style, pixels(style)).logit()[0, 1])  # the model's own output value
    assert e.target.probability == pytest.approx(z, abs=1e-5)
    _, proc = packed(style)
    assert "read as the logit of a binary classifier" in proc.stderr  # pack says what it assumed


def test_softmax_output_is_not_softmaxed_again() -> None:
    style = next(s for s in IMAGES if s.name == "softmax-output")
    with pytest.warns(ExplainWarning, match="its outputs are probabilities"):
        model = explain.from_model(build(style), preprocessing=style.prep, device="cpu")
    want = direct_image(style, pixels(style))[0].detach().numpy()
    assert float(want.max()) > 0.6  # a confident model: softmaxed again it would flatten
    ex = model.prepare(_img(style), 0)
    assert_close(ex.probs, want, rel=1e-5)


def test_batch_of_one_is_refused_in_one_line_and_runs_with_batch_size_1() -> None:
    with pytest.raises(CheckpointError, match=r"fails on a batch of 2 images.*x\.view\(1, -1\).*--batch-size 1"):
        explain.from_model(build(BATCH_OF_ONE), preprocessing=RGB, device="cpu")
    with pytest.warns(ExplainWarning, match="one image at a time"):
        model = explain.from_model(build(BATCH_OF_ONE), preprocessing=RGB, device="cpu", batch_size=1)
    res = explain.explain(model, [_img(BATCH_OF_ONE)], methods=["ig", "occlusion", "lime"], baseline="black", ig=IG_SETTINGS,
                          lime={"num_samples": 40})
    assert not res.failures and len(res) == 3
    want = direct_image(BATCH_OF_ONE, pixels(BATCH_OF_ONE))[0].detach().numpy()
    assert_close(res.inputs[0].probabilities, want, rel=1e-5)
    ig = res.by_method("ig")[0]
    assert_close(ig.scores, image_ig(BATCH_OF_ONE, ig.target.index, rows=1), rel=1e-4)


@pytest.mark.slow
def test_batch_of_one_through_the_cli(tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder, proc = packed(BATCH_OF_ONE)
    assert proc.returncode == 0 and "--batch-size 1" in proc.stderr, proc.stderr
    refused = run_folder(folder, tmp_path / "a", "--image", _img_file(BATCH_OF_ONE), "--methods", "ig")
    assert refused.returncode == 2 and "--batch-size 1" in one_line(refused)
    rescued = run_folder(folder, tmp_path / "b", "--image", _img_file(BATCH_OF_ONE), "--methods", "ig,occlusion", "--batch-size", "1")
    assert rescued.returncode == 0, rescued.stderr


def test_a_forward_without_gradients_refuses_ig_in_one_line() -> None:
    with pytest.warns(ExplainWarning, match="cuts the gradient"):
        model = explain.from_model(build(NO_GRAD), preprocessing=RGB, device="cpu")
    with pytest.raises(MethodError, match=r"'ig' cannot run on this model: .*forward cuts it \(torch\.no_grad\(\).*it can run: .*shap"):
        explain.explain(model, [_img(NO_GRAD)], methods=["ig"])
    res = explain.explain(model, [_img(NO_GRAD)], methods=["occlusion", "gradcam"], errors="record")
    assert len(res.by_method("occlusion")) == 1
    assert [f.method for f in res.failures] == ["gradcam"] and "cuts the gradient" in res.failures[0].error
    every = explain.explain(model, [_img(NO_GRAD)], methods="all", errors="record", shap={"max_evals": 30}, lime={"num_samples": 30})
    assert "ig" not in {e.method for e in every} and "shap" in {e.method for e in every}  # "all": what can run


@pytest.mark.slow
def test_a_forward_without_gradients_through_the_cli(tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder, proc = packed(NO_GRAD)
    assert proc.returncode == 0, proc.stderr
    refused = run_folder(folder, tmp_path / "a", "--image", _img_file(NO_GRAD), "--methods", "ig")
    assert refused.returncode == 2 and "'ig' cannot run on this model" in one_line(refused)
    works = run_folder(folder, tmp_path / "b", "--image", _img_file(NO_GRAD), "--methods", "shap", "--shap-max-evals", "40")
    assert works.returncode == 0, works.stderr
