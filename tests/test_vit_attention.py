"""Attention for vision transformers against references written here, on tiny random models.

For each model (HF ViT, DeiT with teacher, BEiT, Dinov2, Dinov2 with registers; the hand-written
TinyViT with nn.MultiheadAttention, with F.scaled_dot_product_attention and registers, and
mean-pooled) the maps come from the model called directly (HF: output_attentions under eager
attention; own: its forward written out again in tests/vit_models.py), and:

- relevance is the rule of Chefer, Gur & Wolf 2021 (arXiv 2103.15679, eqs. 5-6: R = I, then
  R += mean_h((dy/dA * A)^+) R per layer), y the target's logit, in float64, read at the rows
  each head reads (stated in vit_models.answer_weights): within 1e-4 of its largest value;
- rollout is Abnar & Zuidema's, in numpy: within 1e-5;
- the per-layer, per-head maps are those rows' attention to each patch: within 1e-6;
- the scores are the relevance patch map drawn at the image's own resolution (bilinear from
  patch centres): within 1e-5.

Swin (windowed attention) and CNNs are refused in one line naming what to use instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import explain
from explain.errors import MethodError

from vit_models import GRID, HF, OWN, SPECIAL, adapter, answer_weights, hf_model, image, reference_maps, PREP

KINDS = HF + OWN


@pytest.fixture(scope="module", params=KINDS)
def case(request: pytest.FixtureRequest) -> tuple[str, Any, Any]:
    """(kind, adapter, attention explanation of the predicted class)."""
    m = adapter(request.param)
    [e] = explain.explain(m, [image()], methods=["attention"])
    return request.param, m, e


def reference(kind: str, m: Any, e: Any, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Return the maps, rollout and relevance of the explained target, computed here (read at `rows`' weights if given)."""
    x = torch.from_numpy(image()).permute(2, 0, 1)[None].float() / 255.0
    logits, maps = reference_maps(kind, m, x)
    y = logits[0, e.target.index]
    grads = torch.autograd.grad(y, maps)
    att = np.stack([a.detach()[0].double().numpy() for a in maps])  # (L, H, T, T)
    g = np.stack([a.detach()[0].double().numpy() for a in grads])
    n_layers, n_heads, t, _ = att.shape
    n_special = len(SPECIAL[kind])
    w = answer_weights(kind, n_special, t - n_special) if rows is None else rows
    eye = np.eye(t)
    r = eye.copy()
    for layer in range(n_layers):
        cam = np.clip(g[layer] * att[layer], 0, None).mean(0)
        r = r + cam @ r
    roll = eye.copy()
    for layer in range(n_layers):
        a = 0.5 * att[layer].mean(0) + 0.5 * eye
        a = a / a.sum(-1, keepdims=True)
        roll = a @ roll
    grid = GRID[kind]
    rel = (w @ (r - eye))[n_special:].reshape(grid)
    return {
        "relevance": rel,
        "rollout": (w @ roll)[n_special:].reshape(grid),
        "attention": np.einsum("t,lhts->lhs", w, att)[..., n_special:].reshape(n_layers, n_heads, *grid),
        "logit": np.array(float(y.detach())),
    }


def close(actual: np.ndarray, expected: np.ndarray, rel: float) -> None:
    scale = float(np.abs(expected).max())
    assert scale > 0
    np.testing.assert_allclose(actual, expected, atol=rel * scale, rtol=0)


def test_relevance_is_the_papers_rule(case: tuple[str, Any, Any]) -> None:
    kind, m, e = case
    ref = reference(kind, m, e)
    close(e.extras["patch_relevance"], ref["relevance"], 1e-4)
    assert e.extras["output"] == "logit" and abs(e.extras["output_value"] - float(ref["logit"])) < 1e-4


def test_rollout_matches_numpy(case: tuple[str, Any, Any]) -> None:
    kind, m, e = case
    close(e.extras["patch_rollout"], reference(kind, m, e)["rollout"], 1e-5)


def test_each_heads_map_is_the_answer_rows_attention(case: tuple[str, Any, Any]) -> None:
    kind, m, e = case
    assert e.extras["heads"] == "all"
    close(e.extras["patch_attention"], reference(kind, m, e)["attention"], 1e-6)


def test_scores_are_the_relevance_map_at_the_images_resolution(case: tuple[str, Any, Any]) -> None:
    kind, _, e = case
    h, w = image().shape[:2]
    assert e.scores.shape == (h, w) and e.granularity == "pixel"
    up = F.interpolate(torch.from_numpy(e.extras["patch_relevance"])[None, None], size=(h, w), mode="bilinear", align_corners=False)
    close(e.scores, up[0, 0].numpy(), 1e-5)


def test_layout_is_stated(case: tuple[str, Any, Any]) -> None:
    kind, _, e = case
    x = e.extras
    assert x["grid"] == list(GRID[kind])
    assert x["patch_size"] == [32 / GRID[kind][0]] * 2 and x["model_input"] == [32, 32]
    assert x["special_tokens"] == SPECIAL[kind]
    assert x["tokens"][: len(SPECIAL[kind])] == SPECIAL[kind] and x["tokens"][len(SPECIAL[kind])] == "patch 0,0"
    if SPECIAL[kind]:
        assert "dropped" in x["dropped"] and all(s in x["dropped"] for s in SPECIAL[kind])
    assert x["special_attention"].shape[-1] == len(SPECIAL[kind])
    words = {"deit": "distillation", "beit": "mean of the patch tokens", "dinov2": "Dinov2", "own-mean": "assumed"}
    assert words.get(kind.removesuffix("-registers"), "class token") in x["answer_rule"]


def test_heads_fold_to_their_mean_above_max_values() -> None:
    m = adapter("vit")
    [e] = explain.explain(m, [image()], methods=["attention"], attention={"max_values": 10})
    [full] = explain.explain(m, [image()], methods=["attention"])
    assert e.extras["heads"] == "mean" and e.extras["patch_attention"].shape == (2, 1, 4, 4)
    np.testing.assert_allclose(e.extras["patch_attention"][:, 0], full.extras["patch_attention"].mean(1), atol=1e-7)


def test_a_planted_wrong_row_is_caught() -> None:
    """The reference must be able to fail: DeiT read at its class token alone is not its head's answer."""
    m = adapter("deit")
    [e] = explain.explain(m, [image()], methods=["attention"])
    cls_only = np.eye(4 * 4 + 2)[0]
    ref = reference("deit", m, e, rows=cls_only)
    with pytest.raises(AssertionError):
        close(e.extras["patch_relevance"], ref["relevance"], 1e-4)


@pytest.mark.parametrize("kind", ["swin", "cnn"])
def test_refused_in_one_line(kind: str) -> None:
    if kind == "swin":
        m = explain.from_model(hf_model("swin"), preprocessing=PREP, device="cpu")
        words = ("shifted windows", "gradcam")
    else:
        import transformers as tf

        cfg = tf.ResNetConfig(num_channels=3, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic")
        m = explain.from_model(tf.ResNetForImageClassification(cfg).eval(), preprocessing=PREP, device="cpu")
        words = ("computes no attention", "gradcam")
    with pytest.raises(MethodError) as err:
        explain.explain(m, [image()], methods=["attention"])
    assert "\n" not in str(err.value) and all(w in str(err.value) for w in words)


def test_no_hook_survives() -> None:
    """The capture's hooks and the SDPA swap are gone after the pass, error or not."""
    for kind in ("own-mha", "own-sdpa-registers"):
        m = adapter(kind)
        explain.explain(m, [image()], methods=["attention"])
        assert F.scaled_dot_product_attention is torch._C._nn.scaled_dot_product_attention
        assert all(not mod._forward_hooks and not mod._forward_pre_hooks for mod in m.model.modules())


def test_no_hook_swap_or_frozen_weight_survives_an_error() -> None:
    """A forward that fails inside the attention pass (or token Grad-CAM) leaves the model as it was."""

    def fail_with_grad(module: Any, args: Any, out: Any) -> None:
        if torch.is_grad_enabled():  # prepare's forward runs without gradients and passes
            raise RuntimeError("planted failure")

    def hooks(model: Any) -> list[tuple[str, list[int], list[int]]]:  # transformers installs hooks of its own
        return [(n, list(mod._forward_hooks), list(mod._forward_pre_hooks)) for n, mod in model.named_modules()]

    for kind in ("own-mha", "own-sdpa-registers", "vit"):
        m = adapter(kind)
        head = m.model.head if kind != "vit" else m.model.classifier
        explain.explain(m, [image()], methods=["attention", "gradcam"])  # transformers adds its capture hooks on first use
        before = hooks(m.model)
        planted_hook = head.register_forward_hook(fail_with_grad)
        res = explain.explain(m, [image()], methods=["attention", "gradcam"], errors="record")
        planted_hook.remove()
        assert [f.method for f in res.failures] == ["attention", "gradcam"] and all("planted failure" in f.error for f in res.failures)
        assert F.scaled_dot_product_attention is torch._C._nn.scaled_dot_product_attention
        assert hooks(m.model) == before
        assert all(p.requires_grad for p in m.model.parameters())


def test_a_cropping_processor_puts_the_patch_maps_in_its_window() -> None:
    # DeiT's processor squashes to 40 x 40, then centre-crops 32 x 32: the patches tile that
    # window, so the maps sit inside it and are 0 where the model saw nothing (they were drawn
    # over the whole image, shifted and stretched, before the window was taken into account).
    import transformers as tf

    from explain.reports.image_attention import image_doc

    proc = tf.DeiTImageProcessor(size={"height": 40, "width": 40}, crop_size={"height": 32, "width": 32},
                                 do_center_crop=True, image_mean=[0.5] * 3, image_std=[0.25] * 3)
    m = explain.from_model(hf_model("vit"), proc, device="cpu")
    img = image(40, 48)
    att, cam = explain.explain(m, [img], methods=["attention", "gradcam"])
    x0, y0, x1, y1 = att.extras["model_view"]["box"]
    assert (x0, y0, x1, y1) == pytest.approx((4.8, 4.0, 43.2, 36.0))
    h, w = img.shape[:2]
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    outside = (cols < x0) | (cols > x1) | (rows < y0) | (rows > y1)
    for e in (att, cam):
        assert np.all(e.scores[outside] == 0) and np.abs(e.scores[~outside]).max() > 0, e.method
    # the relevance at each patch's centre in the image is that patch's value
    pr = att.extras["patch_relevance"]
    for r, c in [(0, 0), (1, 2), (3, 3)]:
        cx, cy = x0 + (c + 0.5) * (x1 - x0) / 4, y0 + (r + 0.5) * (y1 - y0) / 4
        assert abs(att.scores[int(cy), int(cx)] - pr[r, c]) <= 0.35 * np.abs(pr).max()
    lines = image_doc(att)["lay"]["shapes"]
    assert all(x0 - 0.5 <= s["x0"] <= x1 - 0.5 and y0 - 0.5 <= s["y0"] <= y1 - 0.5 for s in lines)
