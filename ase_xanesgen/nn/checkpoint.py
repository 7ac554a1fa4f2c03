"""Checkpoints as data: ``{format, model_name, model_args, state_dict, meta}``, read with ``weights_only``."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import nn

from .potential import AtomicPotential
from ..weights import weight_path
from .score import ScoreNet
from .spectrum import SpectrumNet

FORMAT = "ase_xanesgen/1"
MODELS: dict[str, type[nn.Module]] = {"ScoreNet": ScoreNet, "SpectrumNet": SpectrumNet,
                                      "AtomicPotential": AtomicPotential}


def to_dict(model: nn.Module, meta: dict | None = None) -> dict:
    """The checkpoint dict of ``model``: ``{format, model_name, model_args, state_dict (CPU tensors), meta}``."""
    return {"format": FORMAT, "model_name": type(model).__name__, "model_args": model.model_args,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "meta": meta or {}}


#: what each model is, for errors that name the wrong kind of checkpoint
KINDS = {"ScoreNet": "a structure prior (DiffusionGenerator)", "SpectrumNet": "a XANES model (XANESCalculator)",
         "AtomicPotential": "an atomic potential (the sampler's energy term)"}


def from_dict(d: dict, expect: str | None = None) -> nn.Module:
    """The model of a checkpoint dict; ``expect`` (a ``MODELS`` name) refuses another kind of model."""
    if d.get("format") != FORMAT or d.get("model_name") not in MODELS:
        raise ValueError(f"not an ase_xanesgen checkpoint (format={d.get('format')!r}, model={d.get('model_name')!r})")
    check_kind(d, expect)
    model = MODELS[d["model_name"]](**d["model_args"])
    model.load_state_dict(d["state_dict"])
    return model


def check_kind(d: dict, expect: str | None) -> None:
    """``ValueError`` unless checkpoint ``d`` holds the model named ``expect`` (a ``MODELS`` key; ``None``: any)."""
    if expect is not None and d.get("model_name") != expect:
        raise ValueError(f"this checkpoint holds {KINDS.get(d.get('model_name'), d.get('model_name'))}, "
                         f"not {KINDS[expect]}")


def check_fits(d: dict, model: nn.Module) -> None:
    """Refuse a checkpoint dict whose model is not ``model``'s kind and shape, naming the difference."""
    check_kind(d, type(model).__name__)
    theirs, ours = d.get("model_args", {}), model.model_args
    diff = {k: (theirs.get(k), ours.get(k)) for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k)}
    if diff:
        said = ", ".join(f"{k} {a} (asked {b})" for k, (a, b) in sorted(diff.items()))
        raise ValueError(f"the checkpoint's model has {said}: pass the checkpoint's settings (e.g. --width, --layers)")


def save_atomic(obj: dict, path: str | Path) -> None:
    """``torch.save`` to a temporary file then rename: a crash never leaves a half-written checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load(path: str | Path, sha256: str | None = None) -> dict:
    """Load a checkpoint dict safely (``weights_only=True``), verifying ``sha256`` when given; a run folder
    means its ``model.pt`` (the EMA weights)."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if sha256 is not None:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != sha256:
            raise ValueError(f"checksum mismatch for {path}: {digest} != {sha256}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:  # the file itself cannot be read (permissions, ...): said as such
        raise
    except Exception as exc:  # a text file, a truncated or foreign archive: torch raises many types (struct.error)
        kind = type(exc).__qualname__
        kind = kind if type(exc).__module__ == "builtins" else f"{type(exc).__module__}.{kind}"
        raise ValueError(f"{path} is not a checkpoint of this package ({kind}: "
                         f"{str(exc).splitlines()[0] if str(exc) else 'empty'})") from None
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path} is not a checkpoint of this package (it holds a {type(ckpt).__name__})")
    return ckpt


def load_spectrum_model(model: SpectrumNet | str | Path | None = None) -> SpectrumNet:
    """A spectrum network on the CPU: the shipped weights (``None``, checksum verified), the EMA weights of a
    checkpoint file or run folder (a path), or ``model`` itself when it is a ``SpectrumNet``.

    Raises:
        FileNotFoundError: no checkpoint at the path.
        ValueError: the file is no checkpoint of this package, or holds another kind of model.
    """
    if isinstance(model, SpectrumNet):
        return model
    ckpt = load(*weight_path("xanes")) if model is None else load(model)
    return from_dict(ckpt.get("ema", ckpt), expect="SpectrumNet")


def average(checkpoints: list[dict], weights: list[float] | None = None) -> dict:
    """Weight-space average of checkpoints of one architecture (a "model soup", Wortsman et al. 2022).

    Meaningful for runs that share a lineage (one fine-tuned from the other), where the loss is close to
    convex between them. The meta is the first checkpoint's without its own ``step`` and ``train_config``; each
    ingredient's are kept in ``meta["average_of"]``.
    """
    if not checkpoints:
        raise ValueError("average needs at least one checkpoint")
    weights = [1.0 / len(checkpoints)] * len(checkpoints) if weights is None else list(weights)
    if len(weights) != len(checkpoints) or abs(sum(weights) - 1) > 1e-6 or min(weights) < 0:
        raise ValueError(f"weights must be one per checkpoint, >= 0 and sum to 1, got {weights}")
    first = checkpoints[0]
    for other in checkpoints[1:]:
        if other["model_name"] != first["model_name"] or other["model_args"] != first["model_args"]:
            raise ValueError("checkpoints to average must share model_name and model_args")
        if other["meta"].get("sde") != first["meta"].get("sde"):
            raise ValueError(f"checkpoints to average must share the SDE: {first['meta'].get('sde')} "
                             f"!= {other['meta'].get('sde')}")
    state = {k: sum(w * c["state_dict"][k] for w, c in zip(weights, checkpoints)) if v.is_floating_point() else v
             for k, v in first["state_dict"].items()}
    meta = {k: v for k, v in first["meta"].items() if k not in ("step", "train_config")}
    meta["average_of"] = [{"step": c["meta"].get("step"), "weight": w, "train_config": c["meta"].get("train_config")}
                          for c, w in zip(checkpoints, weights)]
    return dict(first, state_dict=state, meta=meta)
