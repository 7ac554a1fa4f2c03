"""The torch device a front end or a training run uses, resolved once from the user's choice."""

from __future__ import annotations

import os

import torch


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The device to run on: ``device`` if given, else ``$XANESGEN_DEVICE``, else ``"cuda"`` when available, else
    ``"cpu"``.

    Raises:
        ValueError: ``device`` is no torch device name, or names CUDA on a machine or torch build without it.
    """
    device = device or os.environ.get("XANESGEN_DEVICE")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"unknown device {device!r} (use 'cpu', 'cuda', 'cuda:1', ...): {err}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} asked for, but this torch build or machine has no CUDA: use 'cpu'")
    return device
