"""No module of shap, captum, lime, transformers, torch or numba is changed by a call: not after it
returns, not after it raises, and not while it runs (when a user's thread could be looking).

Every attribute that a library module held before a call must be the same object during it
(checked from inside the model's forward, and from inside an attention capture) and after it.
New attributes are allowed (a lazy import adds a submodule to its package); a changed one is a
swap some code forgot, or a swap another thread would have seen.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import explain
from explain.adapters.attention_capture import AttentionCapture
from explain.errors import InputError

LIBRARIES = ("shap", "captum", "lime", "transformers", "torch", "numba")
METHODS = ["ig", "shap", "lime", "attention", "ablation"]
FAST = {"ig": {"n_steps": 8, "adaptive": False}, "shap": {"max_evals": 40}, "lime": {"num_samples": 60}}


def snapshot() -> dict[str, dict[str, Any]]:
    """Return every loaded library module's attributes as they are now."""
    return {name: dict(vars(mod)) for name, mod in list(sys.modules.items())
            if mod is not None and name.split(".")[0] in LIBRARIES}


def changed(before: dict[str, dict[str, Any]]) -> list[str]:
    """Return 'module.attribute' for each attribute in `before` that is gone or another object now."""
    now = snapshot()
    return sorted(f"{m}.{k}" for m, attrs in before.items() if m in now for k, v in attrs.items()
                  if k not in now[m] or now[m][k] is not v)


def test_the_comparison_sees_a_swap() -> None:
    """The check can fail: a library function swapped (and put back) is seen while it is swapped."""
    before = snapshot()
    original = F.scaled_dot_product_attention
    F.scaled_dot_product_attention = lambda *a, **k: original(*a, **k)  # what attention_capture used to do
    try:
        assert changed(before) == ["torch.nn.functional.scaled_dot_product_attention"]
    finally:
        F.scaled_dot_product_attention = original
    assert changed(before) == []


@pytest.fixture(scope="module")
def model(tiny_bert: Path) -> Any:
    m = explain.load(tiny_bert, device="cpu")
    explain.explain(m, ["a good film"], methods=METHODS, **FAST)  # first calls import what they import
    return m


def test_no_library_module_changes_during_or_after_a_run(model: Any) -> None:
    before = snapshot()
    during: list[list[str]] = []

    def look(*_: Any) -> None:
        if len(during) < 40:  # a few looks per method are enough, and cheap
            during.append(changed(before))

    handle = model.model.register_forward_hook(look)
    try:
        for method in METHODS:
            explain.explain(model, ["a great film with a bad plot"], methods=[method], batch_inputs=1, **FAST)
        explain.explain(model, ["a great film", "awful plot"], methods=["shap", "lime"], batch_inputs=2, **FAST)  # side by side
    finally:
        handle.remove()
    assert during and all(c == [] for c in during), next(c for c in during if c)
    assert changed(before) == []


def test_no_library_module_changes_after_a_run_that_raises(model: Any) -> None:
    before = snapshot()
    for method in METHODS:
        with pytest.raises(InputError):
            explain.explain(model, ["a great film", 5], methods=[method], **FAST)
    calls: list[int] = []

    def fail_midway(*_: Any) -> None:  # the model itself fails inside the method, after a few forwards
        calls.append(1)
        if len(calls) > 1:  # the first forward is the input's own prediction
            raise RuntimeError("the model broke")

    for method in METHODS:
        calls.clear()
        handle = model.model.register_forward_hook(fail_midway)
        try:
            with pytest.raises(Exception, match="the model broke"):
                explain.explain(model, ["a great film with a bad plot"], methods=[method], **FAST)
        finally:
            handle.remove()
    assert changed(before) == []


def test_loading_leaves_transformers_as_it_was(tiny_bert: Path) -> None:
    """Loads in two threads at once: transformers' log level and progress bars come back as the caller set them."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_info()
    try:
        before = (hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled())
        threads = [threading.Thread(target=explain.load, args=(tiny_bert,), kwargs={"device": "cpu"}) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert (hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()) == before
    finally:
        hf_logging.set_verbosity_warning()


class _SdpaNet(torch.nn.Module):
    """One attention layer through torch's scaled_dot_product_attention, as a hand-written model writes it."""

    def __init__(self, probe: Any = None) -> None:
        super().__init__()
        self.qkv = torch.nn.Linear(8, 24)
        self.probe = probe

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.probe:
            self.probe()
        q, k, v = self.qkv(x).view(x.shape[0], x.shape[1], 3, 2, 4).permute(2, 0, 3, 1, 4)  # 3 x (B, heads, T, 4)
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def test_attention_capture_leaves_torch_alone_and_other_threads_uncaptured() -> None:
    """The capture answers SDPA in its own thread only; torch's function is never replaced."""
    torch.manual_seed(0)
    before = snapshot()
    x = torch.randn(1, 5, 8)
    other = _SdpaNet()
    expected = other(x)
    elsewhere: list[torch.Tensor] = []

    def in_another_thread() -> None:
        assert changed(before) == []
        t = threading.Thread(target=lambda: elsewhere.append(other(x)))
        t.start()
        t.join()

    net = _SdpaNet(probe=in_another_thread)
    capture = AttentionCapture(net, None)
    with capture.recording() as maps:
        out = net(x)
    assert capture.source == "sdpa" and len(maps) == 1 and maps[0].shape == (1, 2, 5, 5)  # ours was captured
    net.probe = None
    torch.testing.assert_close(out, net(x), rtol=1e-5, atol=1e-6)  # the reference maths gives torch's answer
    torch.testing.assert_close(maps[0].sum(-1), torch.ones(1, 2, 5))
    assert len(elsewhere) == 1 and len(maps) == 1  # the other thread's attention was not recorded
    torch.testing.assert_close(elsewhere[0], expected)
    assert changed(before) == []
