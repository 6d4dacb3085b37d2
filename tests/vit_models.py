"""Tiny vision transformers built here (random weights, no download) and references written for the tests.

HF: ViT, DeiT with teacher (class + distillation token), BEiT (relative position bias, mean
pooling), Dinov2, Dinov2 with registers, Swin; own: examples/own_models/vit.py's TinyViT with
nn.MultiheadAttention or F.scaled_dot_product_attention, with registers, or mean-pooled.

`own_forward` is TinyViT's forward written out again from its weights (attention from the
projections, softmax by hand), so the own models' maps come from outside the capture code.
`answer_weights` is what each head reads, stated here from the models' source, not taken
from explain.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "own_models"))

import planted  # noqa: E402

PREP = {"size": 32, "channels": 3, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
LABELS = {"id2label": {0: "cat", 1: "dog", 2: "bird"}, "label2id": {"cat": 0, "dog": 1, "bird": 2}}
COMMON = dict(image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
HF = ("vit", "deit", "beit", "dinov2", "dinov2-registers")
OWN = ("own-mha", "own-sdpa-registers", "own-mean")
SPECIAL = {  # tokens before the patches, by name
    "vit": ["[CLS]"], "deit": ["[CLS]", "[DIST]"], "beit": ["[CLS]"], "dinov2": ["[CLS]"],
    "dinov2-registers": ["[CLS]", "[REG1]", "[REG2]", "[REG3]"], "own-mha": ["[CLS]"],
    "own-sdpa-registers": ["[CLS]", "[extra 1]", "[extra 2]"], "own-mean": [],
}
GRID = {k: (4, 4) for k in HF} | {k: (8, 8) for k in OWN}


def hf_model(kind: str, seed: int = 0) -> Any:
    """Return a tiny random Hugging Face image classifier of `kind` (HF, or "swin"), in eval mode."""
    import transformers as tf

    torch.manual_seed(seed)
    if kind == "vit":
        return tf.ViTForImageClassification(tf.ViTConfig(**COMMON, **LABELS)).eval()
    if kind == "deit":
        return tf.DeiTForImageClassificationWithTeacher(tf.DeiTConfig(**COMMON, **LABELS)).eval()
    if kind == "beit":
        return tf.BeitForImageClassification(tf.BeitConfig(**COMMON, **LABELS, use_relative_position_bias=True)).eval()
    if kind == "dinov2":
        return tf.Dinov2ForImageClassification(tf.Dinov2Config(**COMMON, **LABELS)).eval()
    if kind == "dinov2-registers":
        return tf.Dinov2WithRegistersForImageClassification(tf.Dinov2WithRegistersConfig(**COMMON, **LABELS, num_register_tokens=3)).eval()
    if kind == "swin":
        cfg = tf.SwinConfig(image_size=32, patch_size=2, embed_dim=16, depths=[1, 2], num_heads=[2, 4], window_size=4, **LABELS)
        return tf.SwinForImageClassification(cfg).eval()
    raise KeyError(kind)


def own_vit(kind: str, seed: int = 0) -> Any:
    """Return a random hand-written TinyViT (3 channels, 3 classes, 32 x 32, 4 x 4 patches)."""
    torch.manual_seed(seed)
    vit = planted._import("vit")
    args: dict[str, Any] = {"in_channels": 3, "num_classes": 3}
    if kind == "own-sdpa-registers":
        args.update(attention="sdpa", registers=2)
    elif kind == "own-mean":
        args.update(attention="sdpa", pool="mean")
    model = vit.TinyViT(**args)
    with torch.no_grad():  # a class token and registers of zeros would make their rows alike
        for p in (model.cls_token, model.registers):
            if p is not None:
                p.normal_(0, 1)
    return model.eval()


def adapter(kind: str) -> Any:
    """Return explain's adapter of a model of `kind` (HF or own, see the module docstring)."""
    import explain

    model = hf_model(kind) if kind in HF or kind == "swin" else own_vit(kind)
    labels = None if kind in HF or kind == "swin" else ["cat", "dog", "bird"]
    return explain.from_model(model, preprocessing=PREP, device="cpu", **({"labels": labels} if labels else {}))


def image(h: int = 40, w: int = 48, seed: int = 3) -> np.ndarray:
    """Return an RGB uint8 image (not the model's size) with a bright block, so maps are not flat."""
    img = (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)
    img[8:24, 10:26] = 245
    return img


def answer_weights(kind: str, n_special: int, n_patches: int) -> np.ndarray:
    """Return (T,) weights of the rows each model's head reads, from its source code."""
    w = np.zeros(n_special + n_patches)
    if kind in ("vit", "own-mha", "own-sdpa-registers"):
        w[0] = 1.0  # the class token
    elif kind == "deit":
        w[0] = w[1] = 0.5  # (cls_classifier(cls) + distillation_classifier(dist)) / 2
    elif kind in ("beit", "own-mean"):
        w[n_special:] = 1.0 / n_patches  # mean of the patch tokens
    elif kind.startswith("dinov2"):
        w[0] = 0.5  # classifier(cat[cls, mean(patches)]): half each
        w[n_special:] = 0.5 / n_patches
    else:
        raise KeyError(kind)
    return w


def own_forward(model: Any, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Return (logits, per-layer attention (B, H, T, T)) of TinyViT on normalised x, written out from its weights."""
    b = x.shape[0]
    t = F.conv2d(x, model.patch_embed.weight, model.patch_embed.bias, stride=model.patch_embed.stride).flatten(2).transpose(1, 2)
    first = [p.expand(b, -1, -1) for p in (model.cls_token, model.registers) if p is not None]
    t = torch.cat([*first, t], 1) + model.pos_embed
    maps = []
    for blk in model.blocks:
        h = F.layer_norm(t, (t.shape[-1],), blk.norm1.weight, blk.norm1.bias, blk.norm1.eps)
        n, d = h.shape[1], h.shape[2]
        if isinstance(blk.attn, torch.nn.MultiheadAttention):
            heads = blk.attn.num_heads
            q, k, v = (h @ blk.attn.in_proj_weight.T + blk.attn.in_proj_bias).split(d, -1)
            w_o, b_o = blk.attn.out_proj.weight, blk.attn.out_proj.bias
        else:
            heads = blk.attn.heads
            q, k, v = (h @ blk.attn.qkv.weight.T + blk.attn.qkv.bias).view(b, n, 3, d).unbind(2)
            w_o, b_o = blk.attn.proj.weight, blk.attn.proj.bias
        q, k, v = (z.view(b, n, heads, d // heads).transpose(1, 2) for z in (q, k, v))  # (B, nh, T, hs)
        a = torch.softmax(q @ k.transpose(-1, -2) / np.sqrt(d // heads), -1)
        maps.append(a)
        t = t + ((a @ v).transpose(1, 2).reshape(b, n, d) @ w_o.T + b_o)
        t = t + blk.mlp(F.layer_norm(t, (d,), blk.norm2.weight, blk.norm2.bias, blk.norm2.eps))
    t = F.layer_norm(t, (t.shape[-1],), model.norm.weight, model.norm.bias, model.norm.eps)
    pooled = t[:, 0] if model.pool == "cls" else t[:, model.n_extra :].mean(1)
    return pooled @ model.head.weight.T + model.head.bias, maps


def reference_maps(kind: str, adapter_: Any, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Return (logits, attention maps) of pixels x, in the graph of x (weights frozen), without explain's capture."""
    model = adapter_.model
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        inputs = adapter_.model_input(x.detach().requires_grad_(True))
        with torch.enable_grad():
            if kind in HF:
                before = model.config._attn_implementation
                model.set_attn_implementation("eager")
                try:
                    out = model(pixel_values=inputs, output_attentions=True)
                finally:
                    model.set_attn_implementation(before)
                return out.logits, list(out.attentions)
            return own_forward(model, inputs)
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
