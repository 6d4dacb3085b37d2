"""Turn a user's device string into a torch.device that exists on this machine."""

from __future__ import annotations

import torch

from ..errors import DeviceError


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Return the torch.device for 'auto' (CUDA when present), 'cpu', 'cuda' or 'cuda:N'."""
    if isinstance(device, torch.device):
        device = str(device)
    name = (device or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {device!r} was asked for but CUDA is not available on this machine "
                f"(torch {torch.__version__}); use --device cpu or --device auto"
            )
        dev = torch.device(name)
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise DeviceError(f"device {device!r} does not exist: this machine has {count} CUDA device(s)")
        return dev
    raise DeviceError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N")
