"""Fit a state dict to the model it was saved from, as training code names its keys.

Wrappers add a prefix to every key: DistributedDataParallel `module.`, torch.compile
`_orig_mod.` (also inside, when one submodule was compiled), a Lightning module's attribute
(`model.`, `net.`), or several (`module.model.`). A prefix the class does not have is stripped
when what remains is exactly the class's keys; when the checkpoint holds more than the model
(a loss's weights, an EMA copy) the one prefix under which exactly the model's keys lie is read,
and two such prefixes are refused rather than guessed between. Anything else is one line naming
the first mismatched key and the first keys on both sides.
"""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Mapping

import torch
from torch import nn

from ..errors import CheckpointError, ExplainWarning

COMPILED = "_orig_mod."  # torch.compile's wrapper attribute


def fit_state(model: nn.Module, state: Mapping[str, torch.Tensor], source: str, arch: str, prefix: str | None = None) -> dict[str, torch.Tensor]:
    """Return `state` with its keys fitted to `model`'s; raise CheckpointError naming the first key that does not fit.

    `prefix` (a stated key prefix, e.g. "ema_model.") is read instead of the one found.
    """
    own = model.state_dict()
    keys = set(own)
    if prefix is not None:
        fitted = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not fitted:
            raise CheckpointError(f"no key of the weights {source} starts with {prefix!r}; they begin with {_first(state)}")
    else:
        fitted = _match(keys, dict(state), source)
    missing = [k for k in own if k not in fitted]
    extra = [k for k in fitted if k not in keys]
    shapes = [k for k in own if k in fitted and tuple(own[k].shape) != tuple(fitted[k].shape)]
    bad = len(missing) + len(extra) + len(shapes)
    if bad:
        more = f" ({bad} keys differ)" if bad > 1 else ""
        if shapes:
            k = shapes[0]
            why = f"{k!r} is {tuple(fitted[k].shape)} in the weights but {tuple(own[k].shape)} in the model"
        elif missing:
            why = f"{missing[0]!r} is missing from the weights"
        else:
            why = f"{extra[0]!r} is in the weights but not in the model"
        sides = f"; the weights' keys begin with {_first(fitted)}, the model's with {_first(own)}" if missing or extra else ""
        raise CheckpointError(f"the weights {source} do not fit {arch}: first mismatched key {why}{more}{sides}")
    return fitted


def _match(keys: set[str], state: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """Return the state with the prefix stripped under which exactly `keys` lie, or the state unchanged when none does."""
    if set(state) == keys:
        return state
    if any(COMPILED in k for k in state) and not any(COMPILED in k for k in keys):
        state = {_uncompiled(k): v for k, v in state.items()}
        if set(state) == keys:
            return state
    counts = Counter(p for k in state for p in _prefixes(k))
    found = [p for p, n in counts.items() if n == len(keys) and {k[len(p):] for k in state if k.startswith(p)} == keys]
    if len(found) > 1:
        raise CheckpointError(
            f"the weights {source} hold the model's keys under {len(found)} prefixes ({', '.join(map(repr, sorted(found)))}): "
            "say which to read with weights_key / --weights-key (e.g. 'model.')"
        )
    if not found:
        return state
    prefix = found[0]
    left = sorted(k for k in state if not k.startswith(prefix))
    if left:  # the state holds more than the model: say what was not read
        warnings.warn(f"{source}: read the model's weights under {prefix!r}; {len(left)} other keys left out ({_first(left)})",
                      ExplainWarning, stacklevel=4)
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _prefixes(key: str) -> list[str]:
    """Return every dotted prefix of a key: 'a.b.c' -> ['a.', 'a.b.']."""
    parts = key.split(".")
    return [".".join(parts[:i]) + "." for i in range(1, len(parts))]


def _uncompiled(key: str) -> str:
    return key.replace("." + COMPILED, ".").removeprefix(COMPILED)


def _first(keys: Mapping[str, object] | list[str], n: int = 3) -> str:
    names = list(keys)
    return ", ".join(repr(k) for k in names[:n]) + (f" (and {len(names) - n} more)" if len(names) > n else "")
