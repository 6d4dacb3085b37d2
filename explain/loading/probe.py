"""The load-time probe of a hand-written model: two different rows, each also run alone.

A model can pass a one-row check and still be read wrongly (issue 24): a sequence-first model
given (B, T) ids returns a (B, T, V) output that fits the contract while every token is scored
without its context; a model with `x.view(1, -1)` runs one image and fails on every batch;
a model returning probabilities is softmaxed again. So at load a batch of two different rows
runs, and each row runs alone; the rows must agree, and then:

- the head is read from the batch (explain/adapters/heads.py);
- a text model whose rows change in a batch, or which fails its shape check, is tried with
  its ids transposed: if it then keeps the contract and its rows, it reads (T, B) (the loader
  says so); otherwise one line names the cause ("does it expect (T, B) input?");
- a model that runs one row but not two is refused in one line, or with a batch size of 1
  set (`--batch-size 1`) run one row at a time;
- a text model's `attention_mask` is tried as PyTorch models read one (1 = token, True =
  token, True = padding): the first reading under which a padded row answers as the row
  alone does is kept; with none, rows run unpadded, grouped by length;
- the gradient of the output with respect to the input (pixels, token embeddings) must exist,
  else gradient methods are refused up front (explain/adapters/base.py NO_GRADIENT).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from ..adapters.heads import Head, logits_of, read_head
from ..adapters.preprocessing import Preprocessing
from ..adapters.torch_shim import MASK_MODES, OwnTextModel
from ..errors import CheckpointError
from ..execution.runner import Runner

LENGTH = 3  # tokens per probe row (not 2, the number of rows: a (T, B) reading must show)
PADDING = 2  # positions of padding in the attention-mask check
SEED = 0
RTOL = 1e-4  # a row alone and in a batch differ by float rounding (other kernels) only


class OneRowError(CheckpointError):
    """The model runs one row but not a batch of two, and the batch size is not 1."""


@dataclass
class Probe:
    """What the probe found: the head, how rows must run, and what to warn of."""

    head: Head
    one_row: bool = False  # runs one row at a time only (its batch size is written into forward)
    gradient_cut: bool = False  # no gradient reaches the input
    notes: list[str] = field(default_factory=list)  # what was assumed or changed, for warnings


@dataclass
class _Verdict:
    kind: str  # "ok" | "alone" (one row fails) | "batch" (two rows fail) | "rows" (rows change in a batch)
    message: str = ""
    out: torch.Tensor | None = None  # ok: the batch's output; batch: the rows alone, stacked


def agree(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Return True when two outputs are equal up to float rounding (NaN never agrees)."""
    a, b = a.detach().float(), b.detach().float()
    if a.shape != b.shape or not bool(torch.isfinite(a).all() and torch.isfinite(b).all()):
        return False
    scale = float(b.abs().max()) if b.numel() else 0.0
    return bool(torch.allclose(a, b, rtol=RTOL, atol=RTOL * scale + 1e-6))


def _rows(
    run: Callable[[torch.Tensor], torch.Tensor], rows: torch.Tensor, shape_error: Callable[[torch.Tensor, int], str | None], what: str
) -> _Verdict:
    """Run each row alone, then both together; return what happened."""
    alone = []
    for i in range(rows.shape[0]):
        one = rows[i : i + 1]
        try:
            with torch.no_grad():
                out = run(one)
        except CheckpointError as e:
            return _Verdict("alone", str(e))
        except Exception as e:  # the user's forward may raise anything on a contract mismatch
            return _Verdict("alone", f"the model's forward fails on {what} of shape {tuple(one.shape)}: {first_line(e)}")
        msg = shape_error(out, 1)
        if msg:
            return _Verdict("alone", msg)
        alone.append(out.reshape(1, *out.shape[1:]) if out.dim() else out.reshape(1))
    stacked = torch.cat(alone)
    try:
        with torch.no_grad():
            both = run(rows)
    except CheckpointError:
        raise
    except Exception as e:  # the user's forward may raise anything on a contract mismatch
        return _Verdict("batch", f"the model's forward fails on a batch of 2 {what} of shape {tuple(rows.shape)}: {first_line(e)}", stacked)
    msg = shape_error(both, rows.shape[0])
    if msg:
        return _Verdict("batch", msg, stacked)
    if not agree(both, stacked):
        return _Verdict("rows", f"the model's output rows change when another row is in the batch ({what} {tuple(rows.shape)})")
    return _Verdict("ok", out=both)


def _one_row_or_refuse(verdict: _Verdict, runner: Runner, what: str) -> None:
    """Accept a model that runs one row only when the batch size is 1; else raise CheckpointError saying so."""
    if runner.fixed and runner.batch_size == 1:
        return
    raise OneRowError(
        f"{verdict.message}; one {what[:-1]} at a time runs: the batch size of one seems written into forward "
        "(e.g. x.view(1, -1): write x.view(x.size(0), -1)); to run it one row at a time, pass --batch-size 1 (batch_size=1)"
    )


# ---- text ------------------------------------------------------------------------------------------
def probe_text(
    model: OwnTextModel,
    family: str,
    n_vocab: int | None,
    n_ids: int,
    runner: Runner,
    *,
    head: str | None = None,
    labels: Sequence[str] | None = None,
    sequence_first: bool | None = None,
) -> Probe:
    """Probe a wrapped text model (see the module docstring); set its layout and mask reading; return what was found."""
    g = torch.Generator().manual_seed(SEED)
    rows = torch.randint(0, max(1, n_ids), (2, LENGTH), generator=g).to(runner.device)
    if torch.equal(rows[0], rows[1]):
        rows[1] = (rows[1] + 1) % max(1, n_ids)

    def shape_error(out: torch.Tensor, b: int) -> str | None:
        return _text_shape(out, b, family, n_vocab)

    layouts = [sequence_first] if sequence_first is not None else [False, True]
    verdicts: dict[bool, _Verdict] = {}
    for layout in layouts:
        model.sequence_first = layout
        verdicts[layout] = _rows(lambda ids: model.raw(ids), rows, shape_error, "input_ids")
        if verdicts[layout].kind == "ok":
            break
    chosen = next((k for k, v in verdicts.items() if v.kind == "ok"), None)
    notes: list[str] = []
    one_row = False
    first = verdicts[layouts[0]]
    if chosen is None:
        model.sequence_first = layouts[0]
        if first.kind == "batch":
            _one_row_or_refuse(first, runner, "rows")
            one_row = True
        elif first.kind == "rows":
            tried = "" if sequence_first is not None else " (given (T, B) it does not keep the contract either)"
            raise CheckpointError(f"{first.message}: does it expect (T, B) input, sequence first?{tried}")
        else:
            raise CheckpointError(first.message)
    elif chosen and sequence_first is None:
        why = ("its output rows changed when another row was in the batch" if first.kind == "rows"
               else f"it broke the contract ({first.message})")
        notes.append(f"read as sequence-first, input (T, B): given (B, T) ids {why}; given (T, B) it keeps the contract and "
                     "every row its own answer; state \"sequence_first\" (true or false) to skip this check")
    if model.takes_mask:
        _mask_reading(model, rows, family, notes)
    with torch.enable_grad():  # the head is read from the output's last operation too
        raw = torch.cat([model.raw(rows[i : i + 1]) for i in range(2)]) if one_row else model.raw(rows)
    found = read_head(raw, family, head, labels)
    model.head = found
    if found.assumed:
        notes.append(found.assumed)
    if one_row:
        notes.append("runs one row at a time (batch size 1): a batch of two fails")
    return Probe(found, one_row, _text_gradient_cut(model, rows[:1]), notes)


def _text_shape(out: torch.Tensor, b: int, family: str, n_vocab: int | None) -> str | None:
    """Return what is wrong with a raw text output for b rows of LENGTH ids, or None."""
    t = LENGTH
    if family == "text-classifier":
        if (out.dim() == 2 and out.shape[0] == b) or (out.dim() == 1 and out.shape[0] == b) or (out.dim() == 0 and b == 1):
            return None
        hint = " (its first axis is T: does it expect (T, B) input, sequence first?)" if out.dim() == 2 and out.shape[0] == t else ""
        return f"a text classifier must return logits (batch, classes) = ({b}, C); got {tuple(out.shape)} for input_ids {(b, t)}{hint}"
    if out.dim() != 3 or out.shape[0] != b or out.shape[1] not in (t, 1):
        return (f"a causal LM must return logits (batch, T, vocab) or (batch, 1, vocab) = ({b}, {t} or 1, V); "
                f"got {tuple(out.shape)} for input_ids {(b, t)}")
    if n_vocab is not None and out.shape[-1] < n_vocab:
        return f"the model scores {out.shape[-1]} tokens but the tokenizer has {n_vocab}"
    return None


def _mask_reading(model: OwnTextModel, rows: torch.Tensor, family: str, notes: list[str]) -> None:
    """Set model.mask_mode to the first reading under which padding changes no answer (None: no padding shown)."""
    row = rows[:1]
    pad = row.new_full((1, PADDING), int(row[0, 0]))
    ones, zeros = torch.ones_like(row), torch.zeros_like(pad)
    left = family == "causal-lm"  # causal LMs are padded on the left, classifiers on the right
    padded = torch.cat([pad, row], 1) if left else torch.cat([row, pad], 1)
    mask = torch.cat([zeros, ones], 1) if left else torch.cat([ones, zeros], 1)
    model.mask_mode = None
    try:
        with torch.no_grad():
            alone = model.raw(row)  # no mask given: the forward's own default
    except Exception:  # its attention_mask has no default: the readings answer for themselves
        alone = None
    for mode in MASK_MODES:
        model.mask_mode = mode
        try:
            with torch.no_grad():
                unpadded = model.raw(row, mask=ones)
                out = model.raw(padded, mask=mask)
        except Exception:  # a reading the model refuses (e.g. a long mask where it wants bool)
            continue
        if alone is not None and not agree(unpadded, alone):
            continue
        if out.dim() == 3 and out.shape[1] == padded.shape[1]:
            out = out[:, PADDING:] if left else out[:, : row.shape[1]]
        if agree(out, unpadded):
            if mode == "inverted":
                notes.append("its attention_mask reads True as padding (PyTorch's src_key_padding_mask): given so")
            return
    model.mask_mode = None
    notes.append("its attention_mask does not keep padding out (a padded row's answer changed under every reading: 1 = token, "
                 "True = token, True = padding): rows run unpadded, grouped by length (correct, slower)")


def _text_gradient_cut(model: OwnTextModel, row: torch.Tensor) -> bool:
    """Return True when no gradient reaches the token embeddings from the output."""
    try:
        with torch.enable_grad():
            x = model.get_input_embeddings()(row).detach().float().requires_grad_(True)
            out = model(inputs_embeds=x).logits
            if not out.requires_grad:
                return True
            return torch.autograd.grad(out.float().sum(), x, allow_unused=True)[0] is None
    except Exception:  # the methods then say what fails, input by input
        return False


# ---- images ----------------------------------------------------------------------------------------
def probe_image(
    module: nn.Module, prep: Preprocessing, runner: Runner, dtype: torch.dtype | None, *, head: str | None = None, labels: Sequence[str] | None = None
) -> Probe:
    """Probe an image classifier with two different images (normalised as the adapter does); return what was found."""
    g = torch.Generator().manual_seed(SEED)
    pixels = torch.rand(2, prep.channels, *prep.size, generator=g)
    mean = torch.tensor(prep.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(prep.std, dtype=torch.float32).view(1, -1, 1, 1)
    x = ((pixels * 255.0 * prep.rescale - mean) / std).to(runner.device)
    if dtype is not None:
        x = x.to(dtype)

    def run(t: torch.Tensor) -> torch.Tensor:
        return logits_of(module(t.contiguous()))

    def shape_error(out: torch.Tensor, b: int) -> str | None:
        if (out.dim() in (1, 2) and out.shape[0] == b) or (out.dim() == 0 and b == 1):
            return None
        return f"an image classifier must return logits (batch, classes); got {tuple(out.shape)} for images {(b, *x.shape[1:])}"

    verdict = _rows(run, x, shape_error, "images")
    notes: list[str] = []
    one_row = False
    if verdict.kind == "batch":
        _one_row_or_refuse(verdict, runner, "images")
        one_row = True
        notes.append("runs one image at a time (batch size 1): a batch of two fails")
    elif verdict.kind == "rows":
        raise CheckpointError(f"{verdict.message}: a row's answer must not depend on the other images of its batch")
    elif verdict.kind != "ok":
        raise CheckpointError(verdict.message)
    with torch.enable_grad():
        raw = torch.cat([run(x[i : i + 1]).reshape(1, -1) for i in range(2)]) if one_row else run(x)
    found = read_head(raw, "image-classifier", head, labels)
    if found.assumed:
        notes.insert(0, found.assumed)
    cut = False
    try:
        with torch.enable_grad():
            one = x[:1].float().clone().requires_grad_(True)
            out = run(one.to(x.dtype))
            cut = not out.requires_grad or torch.autograd.grad(out.float().sum(), one, allow_unused=True)[0] is None
    except Exception:  # the methods then say what fails, input by input
        cut = False
    return Probe(found, one_row, cut, notes)


def model_dtype(module: nn.Module) -> torch.dtype | None:
    """Return the dtype of the module's floating weights when it is not float32 (fp16, bf16, float64), else None."""
    for p in module.parameters():
        if p.is_floating_point():
            return None if p.dtype == torch.float32 else p.dtype
    return None


def first_line(e: BaseException) -> str:
    """Return the first line of an exception's message, at most 300 characters."""
    text = " ".join(str(e).strip().splitlines()[:1]) or type(e).__name__
    return text if len(text) < 300 else text[:300] + "..."
