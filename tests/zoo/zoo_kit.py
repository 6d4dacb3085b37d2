"""The zoo's shared pieces: model styles, a word-level tokenizer, packing through the CLI (once per
style and session), and references computed on the model called directly (captum's IG, the
model's own probabilities).

No conftest.py here: a second `conftest` module would shadow tests/conftest.py for the tests
that import from it. Whatever is built once per session is cached in this module instead.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
MODELS = Path(__file__).resolve().parent / "models"
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = "the a film movie plot story was is very good great fine bad awful dull and it not but cast".split()
VOCAB = SPECIALS + WORDS + [f"w{i}" for i in range(32 - len(SPECIALS) - len(WORDS))]  # 32 ids
MASK_ID = VOCAB.index("[MASK]")
UNK_ID = VOCAB.index("[UNK]")
TEXTS = ("the film was very good", "a dull plot but the cast was great")
PROMPT = "the film was very"
STEPS = 8  # IG points (Gauss-Legendre, fixed): explain's and captum's rules agree exactly
IG_SETTINGS = {"adaptive": False, "n_steps": STEPS, "method": "gausslegendre"}
CLI_IG = ["--set", "ig.adaptive=false", "--set", f"ig.n_steps={STEPS}", "--set", "ig.method=gausslegendre"]
RGB = {"size": [32, 32], "channels": 3, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
GREY = {"size": [28, 28], "channels": 1, "mean": [0.1307], "std": [0.3081]}
_TMP = Path(tempfile.mkdtemp(prefix="explain-zoo-"))  # the session's models, weights and packed folders
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)


@dataclass(frozen=True)
class Style:
    """One way people write a model: its class, family, constructor arguments and head."""

    name: str
    file: str  # under tests/zoo/models
    cls: str
    family: str
    args: dict[str, Any] = field(default_factory=dict)
    kind: str = "logits"  # how the model's own outputs read: logits | binary | probs | logprobs
    prep: dict[str, Any] | None = None
    head: str | None = None  # stated to pack / from_model
    answer_row: str | None = None
    sequence_first: bool = False  # the model reads (T, B) ids (for the direct call)
    embedding: str = "embedding"  # the module LayerIntegratedGradients attributes at
    dtype: str | None = None  # "float16" | "bfloat16": weights cast before saving

    def __hash__(self) -> int:
        return hash(self.name)


def load_file(file: str) -> Any:
    """Import tests/zoo/models/<file> (once)."""
    return _module(str(MODELS / file))


@functools.cache
def _module(path: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"zoo_{Path(path).stem}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@functools.cache
def build(style: Style) -> torch.nn.Module:
    """Return the style's model, random and seeded, in eval mode (one object per session: do not change it)."""
    torch.manual_seed(sum(map(ord, style.name)))
    factory = getattr(load_file(style.file), style.cls)
    model = factory(**style.args) if style.args or style.cls != "GPT" else factory(load_file(style.file).GPTConfig())
    if style.dtype:
        model = model.to(getattr(torch, style.dtype))
    return model.eval()


@functools.cache
def tokenizer_path() -> Path:
    """Return a word-level `tokenizers` JSON file of VOCAB (whitespace split, [UNK] for unknown words)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    path = _TMP / "tokenizer.json"
    tok.save(str(path))
    return path


def ids_of(text: str) -> list[int]:
    """Return the token ids of a text (one per word)."""
    return [VOCAB.index(w) if w in VOCAB else VOCAB.index("[UNK]") for w in text.split()]


@functools.cache
def image(channels: int, size: int) -> np.ndarray:
    """Return a seeded test image, (H, W, 3) or (H, W) uint8, with a bright square on noise."""
    rng = np.random.RandomState(7)
    img = rng.randint(0, 120, size=(size, size, channels)).astype(np.uint8)
    img[size // 4 : size // 2, size // 3 : size // 3 + 8] = 230
    return img[..., 0] if channels == 1 else img


@functools.cache
def image_file(channels: int, size: int) -> Path:
    """Return image(channels, size) saved as a PNG."""
    from PIL import Image

    path = _TMP / f"image_{channels}_{size}.png"
    Image.fromarray(image(channels, size)).save(path)
    return path


def pixels(style: Style) -> torch.Tensor:
    """Return the style's test image as (1, C, H, W) float32 in [0, 1], as explain reads it."""
    assert style.prep is not None
    img = image(style.prep["channels"], style.prep["size"][0])
    arr = img[..., None] if img.ndim == 2 else img
    return (torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).float() / 255.0).contiguous()


def normalised(style: Style, x: torch.Tensor) -> torch.Tensor:
    """Return pixels in [0, 1] normalised as the style's preprocessing says (what the model reads)."""
    assert style.prep is not None
    mean = torch.tensor(style.prep["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(style.prep["std"]).view(1, -1, 1, 1)
    return (x - mean) / std  # explain: x * 255 * rescale (1/255 unless stated), then (x - mean) / std


def own_output(raw: Any) -> torch.Tensor:
    """Return the tensor a model's forward gives (first of a tuple, or a dict's 'logits'), as float32."""
    if isinstance(raw, dict):
        raw = raw["logits"]
    if isinstance(raw, (tuple, list)):
        raw = raw[0]
    return raw.float()


def probabilities(style: Style, out: torch.Tensor) -> torch.Tensor:
    """Return (B, classes) probabilities from a classifier's own output, read as its style says."""
    if style.kind == "binary":
        p = torch.sigmoid(out.reshape(-1, 1))
        return torch.cat([1 - p, p], dim=-1)
    if style.kind == "sigmoid-prob":
        p = out.reshape(-1, 1)
        return torch.cat([1 - p, p], dim=-1)
    if style.kind == "probs":
        return out
    if style.kind == "logprobs":
        return out.exp()
    return torch.softmax(out, dim=-1)


def float_copy(style: Style) -> torch.nn.Module:
    """Return the style's model in float32: what a packed fp16 / bf16 state dict loads into."""
    import copy

    return copy.deepcopy(build(style)).float()


def direct_image(style: Style, x01: torch.Tensor, model: torch.nn.Module | None = None) -> torch.Tensor:
    """Return the model's class probabilities for pixels in [0, 1], the model called directly."""
    model = model or build(style)
    x = normalised(style, x01)
    dtype = next(model.parameters()).dtype
    return probabilities(style, own_output(model(x.to(dtype))))


def direct_text(style: Style, ids: torch.Tensor) -> torch.Tensor:
    """Return a classifier's probabilities, or a causal LM's (B, T, V) log-probabilities, for ids (B, T)."""
    model = build(style)
    out = own_output(model(ids.t() if style.sequence_first else ids))
    if style.family == "causal-lm":
        if style.sequence_first:
            out = out.transpose(0, 1)
        return torch.log_softmax(out, dim=-1)
    return probabilities(style, out)


def image_ig(style: Style, target: int, model: torch.nn.Module | None = None, rows: int | None = None) -> np.ndarray:
    """Return captum's IG of the target's probability over the pixels from a black image, summed over channels (H, W).

    `rows`: captum's internal batch size (1 for a model that runs one image at a time).
    """
    from captum.attr import IntegratedGradients

    x = pixels(style)
    ig = IntegratedGradients(lambda t: direct_image(style, t, model)[:, target])
    attr = ig.attribute(x, baselines=torch.zeros_like(x), n_steps=STEPS, method="gausslegendre", internal_batch_size=rows)
    return attr.sum(1)[0].detach().numpy()


def text_ig(style: Style, text: str, target: int) -> np.ndarray:
    """Return captum's LayerIntegratedGradients at the token embedding, summed per token (T,).

    Classifiers: the target's probability, every word [MASK] as baseline (explain's default
    removal for a tokenizer with a mask token); causal LMs: the log-probability of token
    `target` after the text, every word [UNK] as baseline (their default without an eos token).
    """
    from captum.attr import LayerIntegratedGradients

    model = build(style)
    layer = dict(model.named_modules())[style.embedding]
    ids = torch.tensor([ids_of(text)])

    def f(batch: torch.Tensor) -> torch.Tensor:
        out = direct_text(style, batch)
        return out[:, -1, target] if style.family == "causal-lm" else out[:, target]

    fill = UNK_ID if style.family == "causal-lm" else MASK_ID
    if style.sequence_first:
        return _time_major_ig(style, layer, ids, target, fill)
    lig = LayerIntegratedGradients(f, layer)
    attr = lig.attribute(ids, baselines=torch.full_like(ids, fill), n_steps=STEPS, method="gausslegendre")
    return attr.float().sum(-1)[0].detach().numpy()


def _time_major_ig(style: Style, layer: torch.nn.Module, ids: torch.Tensor, target: int, fill: int) -> np.ndarray:
    """Return captum's IG over the (B, T, D) token embeddings of a model that reads (T, B) ids (T,).

    LayerIntegratedGradients stacks its steps on the layer output's first axis, which here is
    T: so the embeddings are given as IG's input and put in place of the layer's (T, B, D)
    output by a forward hook, on the model called with (T, B) ids.
    """
    from captum.attr import IntegratedGradients

    with torch.no_grad():
        emb, base = layer(ids), layer(torch.full_like(ids, fill))  # (1, T, D): the lookup is per id

    def f(e: torch.Tensor) -> torch.Tensor:
        handle = layer.register_forward_hook(lambda m, a, out: e.transpose(0, 1))
        try:
            out = direct_text(style, torch.full((e.shape[0], e.shape[1]), MASK_ID))
        finally:
            handle.remove()
        return out[:, -1, target] if style.family == "causal-lm" else out[:, target]

    attr = IntegratedGradients(f).attribute(emb, baselines=base, n_steps=STEPS, method="gausslegendre")
    return attr.float().sum(-1)[0].detach().numpy()


def bag_ig(style: Style, text: str, target: int) -> np.ndarray:
    """Return captum's IG over per-token embeddings of an nn.EmbeddingBag model (mean bag written out), [MASK] baseline (T,)."""
    from captum.attr import IntegratedGradients

    model = build(style)
    weight = model.embedding.weight
    ids = torch.tensor([ids_of(text)])
    emb, base = weight[ids].detach(), weight[torch.full_like(ids, MASK_ID)].detach()
    ig = IntegratedGradients(lambda e: probabilities(style, model.fc(e.mean(1)) * 4.0)[:, target])
    return ig.attribute(emb, baselines=base, n_steps=STEPS, method="gausslegendre").sum(-1)[0].detach().numpy()


def assert_close(got: Any, want: Any, rel: float = 1e-4) -> None:
    """Assert two arrays agree within `rel` of the reference's largest magnitude."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    scale = float(np.abs(want).max()) if want.size else 0.0
    assert scale > 0, "the reference is all zero: the check could not fail"
    np.testing.assert_allclose(got, want, rtol=0, atol=rel * scale + 1e-7)


# ---- the CLI ---------------------------------------------------------------------------------------
def cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Run `explain ARGS...` as a subprocess, as a user would."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "explain.cli.main", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@functools.cache
def weights(style: Style) -> Path:
    """Return the style's state dict saved as a .pt file (as torch.save(model.state_dict()) writes it)."""
    path = _TMP / f"{style.name}.pt"
    torch.save(build(style).state_dict(), path)
    return path


def pack_args(style: Style, out: Path) -> list[str]:
    """Return the `explain pack` arguments for a style."""
    args = ["pack", "--architecture", f"{MODELS / style.file}:{style.cls}", "--weights", str(weights(style)),
            "--family", style.family, "--out", str(out)]
    if style.args:
        args += ["--arch-args", json.dumps(style.args)]
    if style.prep is not None:
        args += ["--preprocessing", json.dumps(style.prep)]
    else:
        args += ["--tokenizer", str(tokenizer_path())]
    if style.head:
        args += ["--head", style.head]
    if style.answer_row:
        args += ["--answer-row", style.answer_row]
    return args


@functools.cache
def packed(style: Style) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """Return (folder, the finished `explain pack` process) for a style, packed once per session."""
    out = _TMP / "packed" / style.name
    if out.exists():
        shutil.rmtree(out)
    proc = cli(*pack_args(style, out))
    return out, proc


def run_folder(folder: Path, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `explain run FOLDER ARGS... --out OUT` quietly on the CPU (no report)."""
    return cli("run", str(folder), *args, "--trust-remote-code", "--device", "cpu", "--threads", "1", "--out", str(out),
               "--no-report", "--quiet")


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    """Return the one error line a failed command printed (fail the test on a traceback, or on any line but
    that error and the load's `explain: warning:` lines)."""
    lines = proc.stderr.strip().splitlines()
    errors = [x for x in lines if x.startswith("explain: error: ")]
    assert len(errors) == 1 and all(x.startswith("explain: warning: ") for x in lines if x not in errors), proc.stderr
    return errors[0]
