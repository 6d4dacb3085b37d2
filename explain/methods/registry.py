"""The method registry: every method is found here by name.

Method modules import `register` from here, not from the package: the package's __init__
imports them (discovery), and they must not need a name from a package still being imported.
"""

from __future__ import annotations

from typing import Sequence

from ..adapters.base import Adapter
from ..errors import MethodError
from .base import Method

REGISTRY: dict[str, Method] = {}


def register(cls: type[Method]) -> type[Method]:
    """Add a Method class to the registry under its name (used as a class decorator)."""
    REGISTRY[cls.name] = cls()
    return cls


def get(name: str) -> Method:
    """Return the registered method called `name`, or raise MethodError listing the known ones."""
    key = name.strip().lower()
    if key not in REGISTRY:
        raise MethodError(f"unknown method {name!r}; available methods: {', '.join(REGISTRY)}")
    return REGISTRY[key]


def for_family(family: str) -> list[str]:
    """Return the names of the methods that serve `family`, in registry order."""
    return [n for n, m in REGISTRY.items() if family in m.families]


def for_model(adapter: Adapter) -> list[str]:
    """Return the names of the methods that can explain this model: its family's, less those that refuse it (attention on a CNN)."""
    return [n for n in for_family(adapter.family) if REGISTRY[n].refusal(adapter) is None]


def _all(names: Sequence[str] | str | None) -> bool:
    return names is None or names == "all" or names == ["all"]


def _named(names: Sequence[str] | str | None) -> list[Method]:
    """Return the registered methods of a name list or a comma-separated string."""
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    return [get(n) for n in names or ()]


def resolve(names: Sequence[str] | str | None, adapter: Adapter) -> list[Method]:
    """Return the methods to run: 'all' (or None) means every method that can explain the model (`for_model`)."""
    methods = _named(for_model(adapter) if _all(names) else names)
    for m in methods:
        if not m.supports(adapter):
            raise MethodError(
                f"method {m.name!r} does not serve {adapter.family} models; "
                f"for them use: {', '.join(for_model(adapter))}"
            )
        refusal = m.refusal(adapter)
        if refusal is not None:
            raise MethodError(f"{refusal}; it can run: {', '.join(for_model(adapter))}")
    if not methods:
        raise MethodError(f"no method given; available for {adapter.family}: {', '.join(for_family(adapter.family))}")
    return methods


def resolve_for_family(names: Sequence[str] | str | None, family: str) -> list[Method]:
    """Return the named methods, checked against the family only ('all' is the family's every method).

    For a caller that has no model loaded (a Ray run's head reads config.json only): a model's
    own refusals (`Method.refusal`, e.g. attention on a CNN) are checked where it is loaded.
    """
    methods = _named(for_family(family) if _all(names) else names)
    for m in methods:
        if family not in m.families:
            raise MethodError(f"method {m.name!r} does not serve {family} models; for them use: {', '.join(for_family(family))}")
    if not methods:
        raise MethodError(f"no method given; available for {family}: {', '.join(for_family(family))}")
    return methods


def discover(package: str, path: Sequence[str]) -> None:
    """Import every module of the methods package once, so each method registers itself."""
    import importlib
    import pkgutil

    for info in sorted(pkgutil.iter_modules(list(path)), key=lambda i: i.name):
        if info.name not in ("base", "registry"):
            importlib.import_module(f"{package}.{info.name}")
    ordered = sorted(REGISTRY.items(), key=lambda kv: (_ORDER.index(kv[0]) if kv[0] in _ORDER else len(_ORDER), kv[0]))
    REGISTRY.clear()
    REGISTRY.update(ordered)


# The order methods are listed and run in: cheap and exact first, then perturbation methods.
_ORDER = ["ig", "attention", "gradcam", "shap", "lime", "ablation", "occlusion"]

