"""Checkpoints as data: ``{format, model_name, model_args, state_dict, meta}``, read with ``weights_only``."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import nn

from .score import ScoreNet
from .spectrum import SpectrumNet

FORMAT = "ase_xanesgen/1"
MODELS: dict[str, type[nn.Module]] = {"ScoreNet": ScoreNet, "SpectrumNet": SpectrumNet}


def to_dict(model: nn.Module, meta: dict | None = None) -> dict:
    return {"format": FORMAT, "model_name": type(model).__name__, "model_args": model.model_args,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "meta": meta or {}}


def from_dict(d: dict) -> nn.Module:
    if d.get("format") != FORMAT or d.get("model_name") not in MODELS:
        raise ValueError(f"not an ase_xanesgen checkpoint (format={d.get('format')!r}, model={d.get('model_name')!r})")
    model = MODELS[d["model_name"]](**d["model_args"])
    model.load_state_dict(d["state_dict"])
    return model


def save_atomic(obj: dict, path: str | Path) -> None:
    """``torch.save`` to a temporary file then rename: a crash never leaves a half-written checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load(path: str | Path, sha256: str | None = None) -> dict:
    """Load a checkpoint dict safely (``weights_only=True``), verifying ``sha256`` when given."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if sha256 is not None:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != sha256:
            raise ValueError(f"checksum mismatch for {path}: {digest} != {sha256}")
    return torch.load(path, map_location="cpu", weights_only=True)
