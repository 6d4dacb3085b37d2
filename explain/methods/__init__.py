"""The methods: one module each, found by name through the registry (explain/methods/registry.py)."""

from __future__ import annotations

from .registry import REGISTRY, discover, for_family, for_model, get, register, resolve, resolve_for_family

discover(__name__, __path__)

__all__ = ["REGISTRY", "for_family", "for_model", "get", "register", "resolve", "resolve_for_family"]
