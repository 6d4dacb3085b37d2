"""Run explanations without touching the caller's global state (RNGs, threads, logging, the model).

Methods need seeded randomness (SHAP's masks, LIME's neighbours, noise baselines): the engine
seeds every method inside `isolated(...)`, whose exit puts back the caller's torch, CUDA, numpy
and Python RNG states, torch's thread count and grad mode, every logger's level and the model's
train/eval flags, requires_grad flags and device - also when the run raises.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from typing import Any, Iterator

import numpy as np
import torch


@contextlib.contextmanager
def isolated(module: torch.nn.Module | None = None) -> Iterator[None]:
    """Restore global RNGs, threads, grad mode, logger levels and `module`'s mode and device on exit."""
    py_state = random.getstate()
    np_state = np.random.get_state()
    threads = torch.get_num_threads()
    grad = torch.is_grad_enabled()
    levels = _logger_levels()
    model_state = _module_state(module) if module is not None else None
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        torch.set_grad_enabled(grad)
        _restore_levels(levels)
        if module is not None and model_state is not None:
            _restore_module(module, model_state)


def seed_all(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and Python's RNGs; call inside `isolated()` only."""
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    random.seed(seed)


def _logger_levels() -> dict[str, int]:
    manager = logging.Logger.manager
    levels = {name: lg.level for name, lg in manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    levels[""] = logging.getLogger().level
    return levels


def _restore_levels(levels: dict[str, int]) -> None:
    for name, level in levels.items():
        lg = logging.getLogger(name) if name else logging.getLogger()
        if lg.level != level:
            lg.setLevel(level)


def _module_state(module: torch.nn.Module) -> dict[str, Any]:
    params = list(module.parameters())
    devices = {p.device for p in params}
    return {
        "training": [m.training for m in module.modules()],
        "requires_grad": [p.requires_grad for p in params],
        "device": devices.pop() if len(devices) == 1 else None,  # a model spread over devices stays put
    }


def _restore_module(module: torch.nn.Module, state: dict[str, Any]) -> None:
    for m, flag in zip(module.modules(), state["training"]):
        if m.training != flag:
            m.training = flag
    params = list(module.parameters())
    for p, flag in zip(params, state["requires_grad"]):
        if p.requires_grad != flag:
            p.requires_grad_(flag)
    device = state["device"]
    if device is not None and any(p.device != device for p in params):
        module.to(device)


_quiet_lock = threading.Lock()
_quiet: list[Any] = []  # [loads in flight, transformers' verbosity, its progress bars] while any load runs


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' logging and progress bars while any load runs; the last load to end restores them.

    Counted, so that loads in several threads at once cannot save each other's silence as the
    caller's setting and leave transformers silenced after they return.
    """
    from transformers.utils import logging as hf_logging

    with _quiet_lock:
        if not _quiet:
            _quiet[:] = [0, hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()]
            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
        _quiet[0] += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet[0] -= 1
            if _quiet[0] == 0:
                _, verbosity, bars = _quiet
                _quiet.clear()
                hf_logging.set_verbosity(verbosity)
                if bars:
                    hf_logging.enable_progress_bar()
