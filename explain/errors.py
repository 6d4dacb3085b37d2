"""Exceptions a user can cause: each carries a message saying what was wrong and how to fix it."""

from __future__ import annotations


class ExplainError(Exception):
    """Base class of every error the toolkit raises on purpose (the CLI maps it to exit code 2)."""


class CheckpointError(ExplainError):
    """The checkpoint is missing, unreadable, of an unknown kind, or inconsistent."""


class InputError(ExplainError):
    """One input (text, prompt, image, input file line) cannot be explained."""


class MethodError(ExplainError):
    """Unknown method, a method that does not serve the model's family, or a bad method setting."""


class TargetError(ExplainError):
    """A target label or index that the model does not have."""


class DeviceError(ExplainError):
    """The requested device does not exist on this machine."""


class ExplainWarning(UserWarning):
    """A run finished with something to know: failed inputs, truncated texts, failed self-checks."""
