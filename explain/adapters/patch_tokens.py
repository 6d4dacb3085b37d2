"""Image transformers' tokens: the patch grid, the tokens before it, and which rows the head reads.

A ViT-style model cuts its input into patches (a Conv2d with kernel = stride, or any module
that returns a (B, D, rows, cols) map that then becomes a token sequence), may put special
tokens before them, and runs blocks over the sequence. One traced forward (cached per model
and input size) finds:

- the patch grid: the last (B, D, rows, cols) map whose pixels later come back as a token
  sequence (B, rows x cols + k, D), k special tokens before them;
- the token blocks: the outermost numbered modules (a ModuleList's or Sequential's members)
  that map (B, T, D) tokens to tokens of the same shape, in the order they finished. Swin's
  stages shrink the grid (patch merging); a block of T < rows x cols tokens sees the grid cut
  by the integer factor that gives T;
- the last block (a stage of blocks, as Swin's: its last block), and the normalisation it
  applies to its own input first (pre-norm blocks: ViT's layernorm_before, Dinov2's norm1),
  pytorch-grad-cam's `blocks[-1].norm1` for ViTs.

Special tokens are the T - rows x cols tokens before the patches. What they are and which rows
the classifier reads is the architecture's (Hugging Face) or the config's (own models) say:

- ViT: the class token ([CLS]); DeiT: [CLS] and the distillation token [DIST], both read by
  DeiTForImageClassificationWithTeacher (the mean of their two heads), [CLS] alone otherwise;
- BEiT (and data2vec-vision) with mean pooling (its default): the mean of the patch tokens,
  its [CLS] unread; without: [CLS];
- Dinov2 (with registers [REG1]...): [CLS] and the mean of the patch tokens, concatenated into
  one linear head: read half each (registers are in neither);
- own models: `answer_row` "first" (a class token before the patches) or "mean" (the mean of
  the patch tokens); unstated: "first (assumed)" when special tokens exist, else "mean (assumed)".

How methods read these models (attention maps in the graph of the output, patch tokens as a
grid) is explain.adapters.patch_views.
"""

from __future__ import annotations

import math
import re
import weakref
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from ..errors import MethodError
from .answer_row import ASSUMED, check_rule

WINDOWED = ("swin", "swinv2", "donut-swin", "maskformer-swin")  # HF model types attending within windows
_NUMBERED = re.compile(r"\.\d+$")
MAX_SPECIAL = 64  # at most this many tokens before the patches (class, distillation, registers)


@dataclass(frozen=True)
class BlockRecord:
    """A token block seen in the traced forward."""

    name: str
    tokens: int  # T of its (B, T, D) input and output
    width: int  # D


@dataclass(frozen=True)
class TokenTrace:
    """What one traced forward says about a model's tokens."""

    grid: tuple[int, int] | None  # the patch embedding's (rows, cols); None: no map became tokens
    blocks: tuple[BlockRecord, ...]  # outermost token blocks, in the order they finished
    last: BlockRecord | None = None  # the last block (Swin: the last block of the last stage)
    norm: str | None = None  # the normalisation the last block applies to its input first (pre-norm blocks), if any


@dataclass(frozen=True)
class PatchLayout:
    """How T tokens of one block (or one attention map) sit on the image."""

    tokens: int  # T
    grid: tuple[int, int]  # (rows, cols) of the patch tokens
    size: tuple[int, int]  # the model's input (height, width) in pixels
    special: tuple[str, ...]  # names of the tokens before the patches ("[CLS]", "[DIST]", "[REG1]", ...)
    rows: tuple[int, ...]  # the token rows the head reads
    weights: tuple[float, ...]  # how much of the answer each row is (sum 1)
    rule: str  # how the head reads them, one phrase

    @property
    def patch(self) -> tuple[float, float]:
        """Return a patch's (height, width) in the model's input pixels."""
        return self.size[0] / self.grid[0], self.size[1] / self.grid[1]

    @property
    def reads_special(self) -> bool:
        """Return True when the head reads a special token (a class or distillation token)."""
        return any(r < len(self.special) for r in self.rows)

    def names(self) -> tuple[str, ...]:
        """Return the T token names: the special ones, then "patch r,c" row by row."""
        return self.special + tuple(f"patch {r},{c}" for r in range(self.grid[0]) for c in range(self.grid[1]))

    def answer(self) -> torch.Tensor:
        """Return (T,) float32 weights of the rows the head reads (0 elsewhere)."""
        w = torch.zeros(self.tokens, dtype=torch.float32)
        for r, v in zip(self.rows, self.weights):
            w[r] += v
        return w

    def to_grid(self, v: torch.Tensor) -> torch.Tensor:
        """Return (..., rows, cols) from (..., T): the patch tokens' values, special tokens dropped."""
        return v[..., len(self.special) :].reshape(*v.shape[:-1], *self.grid)

    def dropped(self) -> str:
        """Return one sentence on the special tokens left out of the patch maps."""
        if not self.special:
            return "no special tokens: every token is a patch"
        return f"{', '.join(self.special)} dropped from the patch maps (not image patches)"


_CACHE: "weakref.WeakKeyDictionary[nn.Module, dict[Any, TokenTrace]]" = weakref.WeakKeyDictionary()


def _first_tensor(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
    for a in (*args, kwargs.get("hidden_states"), *kwargs.values()):
        if isinstance(a, torch.Tensor):
            return a
    return None


def _output_tensor(out: Any) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    return getattr(out, "last_hidden_state", None)


def trace(model: nn.Module, run: Callable[[], Any], key: Any = ()) -> TokenTrace:
    """Return the patch grid and token blocks of `model` from one forward of `run` (cached per model and key)."""
    per_model = _CACHE.setdefault(model, {})
    if key in per_model:
        return per_model[key]
    events: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = []  # (name, input shape, output shape), finishing order
    calls: dict[str, int] = {}
    inputs: dict[str, tuple[int, ...]] = {}
    read: dict[str, int] = {}  # id of the tensor each module read (alive during the forward, so ids do not repeat)
    kinds = {name: type(m).__name__ for name, m in model.named_modules()}

    def hooks(name: str) -> tuple[Callable[..., None], Callable[..., None]]:
        def pre(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            t = _first_tensor(args, kwargs)
            inputs[name] = tuple(t.shape) if t is not None else ()
            read[name] = id(t)

        def post(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
            calls[name] = calls.get(name, 0) + 1
            t = _output_tensor(out)
            events.append((name, inputs.get(name, ()), tuple(t.shape) if t is not None else ()))

        return pre, post

    handles = []
    for name, module in model.named_modules():
        if name:
            pre, post = hooks(name)
            handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
            handles.append(module.register_forward_hook(post, with_kwargs=True))
    try:
        with torch.no_grad():
            run()
    finally:
        for h in handles:
            h.remove()
    grid: tuple[int, int] | None = None
    for i, (name, _, out) in enumerate(events):
        if len(out) == 4 and out[2] > 1 and out[3] > 1 and calls[name] == 1:
            # its pixels become tokens: a later (B, rows x cols + k, D) sequence, k < MAX_SPECIAL
            n, d = out[2] * out[3], out[1]
            if any(len(o) == 3 and o[2] == d and 0 <= o[1] - n < MAX_SPECIAL for _, _, o in events[i + 1 :]):
                grid = (out[2], out[3])  # the last such map (a hybrid's conv stem comes earlier)
    blocks = [
        BlockRecord(name, inp[1], inp[2])
        for name, inp, out in events
        if _NUMBERED.search(name) and calls[name] == 1 and len(inp) == 3 and inp == out
    ]
    outer = tuple(b for b in blocks if not any(b.name.startswith(o.name + ".") for o in blocks))
    last, norm = None, None
    if outer:
        last = outer[-1]
        inner = [b for b in blocks if b.name.startswith(last.name + ".") and (b.tokens, b.width) == (last.tokens, last.width)]
        inner = [b for b in inner if not any(b.name.startswith(o.name + ".") for o in inner)]
        last = inner[-1] if inner else last  # a stage of blocks (Swin): its last block
        # pre-norm: a normalisation inside the block that reads the block's own input tensor
        norms = [n for n, _, _ in events if n.startswith(last.name + ".") and "Norm" in kinds[n] and read.get(n) == read.get(last.name)]
        norm = norms[0] if norms else None
    per_model[key] = TokenTrace(grid, outer, last, norm)
    return per_model[key]


def is_traced(model: nn.Module, key: Any) -> bool:
    """Return True when `trace` has this model and key already (no forward to pay)."""
    return key in _CACHE.get(model, {})


def grid_of(trace_: TokenTrace, tokens: int, arch: str) -> tuple[tuple[int, int], int]:
    """Return ((rows, cols), number of special tokens) for a block of `tokens` tokens.

    T >= rows x cols: the patch grid with T - rows x cols tokens before it. Fewer tokens: the
    grid cut by the integer factor s with ceil(rows / s) x ceil(cols / s) = T (Swin's merged
    patches), no special tokens.
    """
    if trace_.grid is None:
        raise MethodError(f"{arch} has no patch grid: no (batch, channels, rows, cols) map becomes a token sequence")
    gh, gw = trace_.grid
    if tokens >= gh * gw:
        return (gh, gw), tokens - gh * gw
    for s in range(2, max(gh, gw) + 1):
        if math.ceil(gh / s) * math.ceil(gw / s) == tokens:
            return (math.ceil(gh / s), math.ceil(gw / s)), 0
    raise MethodError(f"{arch}: {tokens} tokens fit no cut of its {gh} x {gw} patch grid")


def head_rule(model: Any, n_special: int, n_patches: int, stated: str | None) -> tuple[tuple[str, ...], tuple[int, ...], tuple[float, ...], str]:
    """Return (special token names, rows the head reads, their weights, the rule) (see the module docstring)."""
    config = getattr(model, "config", None)
    kind = str(getattr(config, "model_type", "") or "")
    cls = type(model).__name__
    patches = tuple(range(n_special, n_special + n_patches))
    mean = (patches, (1.0 / n_patches,) * n_patches)

    def expect(names: tuple[str, ...]) -> tuple[str, ...]:
        if len(names) != n_special:
            raise MethodError(f"{cls} should put {len(names)} token(s) before its patches, but its attention has {n_special}")
        return names

    if kind in WINDOWED:
        return (), *mean, "mean of the patch tokens (Swin's pooling)"
    if kind == "deit":
        names = expect(("[CLS]", "[DIST]"))
        if "WithTeacher" in cls:
            return names, (0, 1), (0.5, 0.5), "class and distillation tokens, averaged (DeiT's two heads)"
        return names, (0,), (1.0,), "class token"
    if kind in ("beit", "data2vec-vision"):
        names = expect(("[CLS]",))
        if getattr(config, "use_mean_pooling", True):
            return names, *mean, "mean of the patch tokens (BEiT's mean pooling; its class token is not read)"
        return names, (0,), (1.0,), "class token"
    if kind in ("dinov2", "dinov2_with_registers"):
        names = expect(("[CLS]",) + tuple(f"[REG{i + 1}]" for i in range(int(getattr(config, "num_register_tokens", 0) or 0))))
        half = 0.5 / n_patches
        return names, (0, *patches), (0.5, *([half] * n_patches)), "class token and the mean of the patch tokens, half each (Dinov2's head reads both)"
    if config is not None and kind:  # ViT, ViT-MSN, ... and other class-token models
        names = ("[CLS]",) + tuple(f"[extra {i}]" for i in range(1, n_special))
        if n_special == 0:
            return (), *mean, "mean of the patch tokens (assumed: no token before the patches)"
        return names, (0,), (1.0,), "class token" if kind.startswith("vit") else "class token (assumed: the first token)"
    rule = check_rule(stated)
    if rule == "last":
        raise MethodError("answer_row 'last' is not one an image model can state: use 'first' (a class token before the patches) or 'mean' (the mean of the patch tokens)")
    names = ("[CLS]",) + tuple(f"[extra {i}]" for i in range(1, n_special)) if n_special else ()
    if rule is None:
        rule = ("first" if n_special else "mean") + ASSUMED
    if rule.startswith("first"):
        if not n_special:
            raise MethodError("answer_row is 'first' (a class token) but no token comes before the patches: state 'mean'")
        return names, (0,), (1.0,), "class token" + (" (assumed: the first token)" if rule.endswith(ASSUMED) else "")
    return names, *mean, "mean of the patch tokens" + (" (assumed: no token before the patches)" if rule.endswith(ASSUMED) else "")


def _traced(adapter: Any) -> TokenTrace:
    """Return the trace of the adapter's model at its input size: one blank image's forward, counted once per model."""
    size = tuple(adapter.prep.size)
    key = ("tokens", size, int(adapter.prep.channels))
    if not is_traced(adapter.model, key):
        adapter.runner.count(1)
    x = torch.zeros(1, adapter.prep.channels, *size, device=adapter.device)
    return trace(adapter.model, lambda: adapter.logits(x), key)


def layout(adapter: Any, tokens: int) -> PatchLayout:
    """Return the layout of `tokens` tokens of the adapter's model at its input size (one traced forward, cached)."""
    model = adapter.model
    grid, n_special = grid_of(_traced(adapter), tokens, adapter.info.architecture or type(model).__name__)
    names, rows, weights, rule = head_rule(model, n_special, grid[0] * grid[1], getattr(adapter, "answer_row", None))
    h, w = adapter.prep.size
    return PatchLayout(tokens, grid, (int(h), int(w)), names, rows, weights, rule)


def last_block(adapter: Any) -> tuple[BlockRecord, str | None]:
    """Return (the last token block of the adapter's model, its pre-norm module or None); MethodError when it has none."""
    tr = _traced(adapter)
    if tr.grid is None or tr.last is None:
        raise MethodError(
            "Grad-CAM needs a spatial feature map (batch, channels, height, width) that the head pools or a transformer's "
            "patch tokens, and this model computes neither; use ig, shap or lime, or name a layer with gradcam.layer"
        )
    return tr.last, tr.norm
