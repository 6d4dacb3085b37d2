"""An inference-only copy of a CNN for the perturbation methods' many forwards.

Perturbation methods (SHAP, LIME, occlusion, ablation, the metrics' curves) run thousands of
gradient-free forwards of one image's variants, so most of their time is convolution. For
those rows alone we use a copy of the model with each BatchNorm folded into the convolution
before it (torch.fx's `fuse`, exact up to float rounding in eval mode) and weights and inputs in
channels-last layout, which oneDNN's CPU convolutions and cuDNN run faster (benchmarks/speed.py
measures the gain on the bundled CNN; the README quotes its figure). Gradient methods always
use the model itself.

The copy must never turn a working model into a failure or a different answer (issue 24): a
model that flattens with `x.view(-1, 16 * 5 * 5)` cannot take channels-last activations, and
one written for a batch of one cannot take a batch at all. So `FastPath` uses the copy at a
batch shape only after it agreed with the model at that very shape (the first call at a
shape runs both and answers with the model's own output), tries channels-last and then the
standard layout, drops the copy on any error, and keeps torch.fx's printed tracebacks of a
failed try off stderr.
"""

from __future__ import annotations

import contextlib
import copy
import io
import warnings
from typing import Any, Callable, Iterator

import torch

MAX_PARAMETERS = 200_000_000  # above this a second copy costs too much memory: use the model
RTOL = 1e-3


def fast_copy(
    model: torch.nn.Module, probe: torch.Tensor, read: Callable[[Any], torch.Tensor] | None = None, channels_last: bool = True
) -> torch.nn.Module | None:
    """Return an eval-mode, BatchNorm-folded (channels-last) copy of `model` that agrees with it
    on `probe` (a (B, C, H, W) batch it will see), or None when that cannot be had.

    `read` takes a forward's return value to its logits (default: `.logits` or the value).
    """
    read = read or _logits
    if sum(p.numel() for p in model.parameters()) > MAX_PARAMETERS or model.training:
        return None
    if not any(isinstance(m, torch.nn.modules.conv._ConvNd) for m in model.modules()):
        return None
    fast: torch.nn.Module
    try:
        from torch.fx.experimental.optimization import fuse

        with warnings.catch_warnings(), _quiet():
            warnings.simplefilter("ignore")
            fast = fuse(model, inplace=False)
        _relu_in_place(fast)
    except Exception:  # not symbolically traceable (data-dependent control flow, HF wrappers)
        fast = copy.deepcopy(model)
    try:
        if channels_last:
            fast = fast.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        fast = fast.eval()
        with torch.inference_mode():
            want = read(model(probe))
            got = _run(fast, probe, channels_last, read)
    except Exception:
        return None
    return fast if _agree(got, want) else None


class FastPath:
    """The inference copy of a model, used at a batch shape only once it agreed with the model there."""

    def __init__(self, model: torch.nn.Module, read: Callable[[Any], torch.Tensor] | None = None) -> None:
        self.model = model
        self.read = read or _logits
        self.copy: torch.nn.Module | None = None
        self.channels_last = True
        self.built = False
        self.shapes: dict[tuple[int, ...], bool] = {}  # batch shape -> the copy agreed there

    def __call__(self, x: torch.Tensor) -> torch.Tensor | None:
        """Return the logits of gradient-free rows `x` through the copy, or None where the copy
        is not to be used (the caller then runs the model; a first call at a shape returns the
        model's own output after checking the copy against it)."""
        shape = tuple(x.shape)
        if self.shapes.get(shape) is False or (self.built and self.copy is None):
            return None
        if shape in self.shapes and self.copy is not None:
            try:
                return _run(self.copy, x, self.channels_last, self.read, quiet=False)
            except Exception:  # never a failure the plain model would not have: drop the copy here
                self.shapes[shape] = False
                return None
        want = self.read(self.model(x))
        self.shapes[shape] = self._agrees(x, want)
        return want

    def _agrees(self, x: torch.Tensor, want: torch.Tensor) -> bool:
        """Build the copy on the first batch (channels-last, else the standard layout); check it at x's shape."""
        if not self.built:
            self.built = True
            for layout in (True, False):
                self.copy = fast_copy(self.model, x, self.read, channels_last=layout)
                if self.copy is not None:
                    self.channels_last = layout
                    return True
            return False
        assert self.copy is not None
        try:
            return _agree(_run(self.copy, x, self.channels_last, self.read), want)
        except Exception:
            return False


def _run(fast: torch.nn.Module, x: torch.Tensor, channels_last: bool, read: Callable[[Any], torch.Tensor], quiet: bool = True) -> torch.Tensor:
    """Return the copy's logits for x (in its layout); a try (`quiet`) keeps the traceback torch.fx prints off stderr.

    Only tries are quiet: stderr is process-wide, and a verified shape's calls may run beside a
    progress line from another thread.
    """
    with _quiet() if quiet else contextlib.nullcontext():
        return read(fast(x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()))


def _agree(got: torch.Tensor, want: torch.Tensor) -> bool:
    return got.shape == want.shape and torch.allclose(got.float(), want.float(), rtol=RTOL, atol=RTOL * float(want.float().abs().max()) + 1e-6)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Within the block, what is written to sys.stderr is dropped: a traced module that raises
    prints its generated code there (torch.fx's GraphModule), even under --quiet."""
    with contextlib.redirect_stderr(io.StringIO()):
        yield


def _relu_in_place(graph_module: torch.nn.Module) -> None:
    """Let each ReLU of the traced copy overwrite its input where nothing else reads that input."""
    graph = getattr(graph_module, "graph", None)
    if graph is None:
        return
    modules = dict(graph_module.named_modules())
    safe: dict[str, bool] = {}  # a ReLU module called in several places must be safe in all
    for node in graph.nodes:
        if node.op == "call_module" and isinstance(modules.get(node.target), torch.nn.ReLU):
            source = node.args[0] if node.args else None
            ok = isinstance(source, torch.fx.Node) and len(source.users) == 1 and source.op != "placeholder"
            safe[node.target] = safe.get(node.target, True) and ok
    for name, ok in safe.items():
        if ok:
            modules[name].inplace = True


def weights_key(model: torch.nn.Module) -> tuple[tuple[int, int], ...]:
    """Return what identifies the model's current weights: each parameter's and buffer's
    identity and in-place version counter (any change to a weight changes the key)."""
    return tuple((id(t), t._version) for t in (*model.parameters(), *model.buffers()))


def _logits(out: Any) -> torch.Tensor:
    return getattr(out, "logits", out)
