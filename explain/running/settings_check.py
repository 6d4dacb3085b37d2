"""Check method settings against what the model's family allows, before any model call.

`Method.settings` already rejects unknown options and strings that are not numbers; this adds
the values: names such as a baseline or an output must be ones the adapter knows, counts must
be positive, a Grad-CAM layer must exist. Each error lists what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import typing
from typing import Any, Mapping, Sequence

from ..adapters import removal
from ..adapters.base import OUTPUTS, Adapter
from ..errors import MethodError

GRADIENT_METHODS = ("ig",)  # methods whose baseline is a point on a gradient path, not a removal
# Named options: (the adapter module's constant of allowed names, the adapter attribute adding more).
_NAMES = {"baseline": ("BASELINES", "baselines"), "mask": ("MASKS", "baselines"), "segmentation": ("SEGMENTATIONS", None)}


def allowed_names(model: Adapter, option: str) -> tuple[str, ...] | None:
    """Return the values the adapter accepts for a named option (baseline, mask...), None if unknown."""
    if option == "output":
        return OUTPUTS
    if option not in _NAMES:
        return None
    constant, attribute = _NAMES[option]
    module = sys.modules.get(type(model).__module__)
    found: list[str] = list(getattr(module, constant, ()) or ())
    if attribute:  # the run-level counterfactuals an adapter offers are accepted per method too
        found += [b for b in getattr(model, attribute, ()) or () if b not in found]
    return tuple(found) or None


def check_settings(model: Adapter, parsed: Mapping[str, Any]) -> None:
    """Raise MethodError for the first setting value the model cannot use, listing what it can."""
    for method, settings in parsed.items():
        hints = typing.get_type_hints(type(settings))
        for f in dataclasses.fields(settings):
            value = getattr(settings, f.name)
            if value is None:
                continue
            where = f"{method}.{f.name}={value!r}"
            _check_type(where, value, hints.get(f.name))
            if f.name in ("baseline", "mask") and hasattr(model, "check_baseline"):
                try:  # the adapter knows its removals, and which only a gradient path can use
                    model.check_baseline(value, gradient=method in GRADIENT_METHODS)
                except MethodError as e:
                    raise MethodError(f"{where}: {e}") from None
                continue
            names = allowed_names(model, f.name)
            if names is not None and value not in names:
                raise MethodError(f"{where} is not available for {model.family} models; use one of: {', '.join(names)}")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                # Counts must be >= 1; 0 only where the default is 0 (e.g. IG's nt_samples: off).
                low = 0 if f.default == 0 or isinstance(value, float) else 1
                if not math.isfinite(value) or value < low:
                    raise MethodError(f"{where} must be a number >= {low}")
        if method == "gradcam" and getattr(settings, "layer", None):
            layers = dict(model.model.named_modules())
            if settings.layer.removesuffix(":input") not in layers:  # NAME:input reads what NAME reads
                convs = [n for n, m in layers.items() if type(m).__name__.startswith("Conv")][-8:]
                raise MethodError(f"gradcam.layer={settings.layer!r}: the model has no such module; its last conv layers: {', '.join(convs)}")


def _check_type(where: str, value: Any, hint: Any) -> None:
    if hint is None:
        return
    allowed = tuple(t for t in (typing.get_args(hint) or (hint,)) if isinstance(t, type) and t is not type(None))
    if not allowed:
        return
    ok = isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed)
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        names = " or ".join(t.__name__ for t in allowed)
        raise MethodError(f"{where} must be {names}, not {type(value).__name__}")


def check_baseline(model: Adapter, baseline: str | None, methods: Sequence[Any] = ()) -> None:
    """Raise MethodError when the run-level baseline is not one the adapter offers (when it says)
    to the chosen methods that take a baseline: a gradient-only one (text's `zero`) is fine when
    IG is the only such method. The error says why: IG only, or a token this tokenizer lacks."""
    offered: Sequence[str] | None = getattr(model, "baselines", None)
    if baseline is None or offered is None or baseline in offered:
        return
    takers = [m.name for m in methods if "baseline" in getattr(m.Settings, "__dataclass_fields__", {})]
    if takers and all(n in GRADIENT_METHODS for n in takers) and hasattr(model, "check_baseline"):
        model.check_baseline(baseline, gradient=True)  # raises with IG's own reason when IG cannot either
        return
    others = [n for n in takers if n not in GRADIENT_METHODS]
    if model.family != "image-classifier" and baseline in removal.GRADIENT_ONLY:
        raise MethodError(f"baseline {baseline!r} is a point in embedding space that only IG can use, and this run also has "
                          f"{', '.join(others) or 'other methods'}: give it to IG alone (--set ig.baseline={baseline}) or use one of: {', '.join(offered)}")
    if baseline in removal.DESCRIPTIONS.get(model.family, {}):
        raise MethodError(f"baseline {baseline!r} needs a {baseline} token, which this model's tokenizer does not have; use one of: {', '.join(offered)}")
    raise MethodError(f"baseline {baseline!r} is not available for {model.family} models; use one of: {', '.join(offered)}")
