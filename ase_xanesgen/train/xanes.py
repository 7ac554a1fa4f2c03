"""Supervised training of the spectrum network: MSE on per-atom DFT spectra, random rotations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch_geometric.nn import global_mean_pool
from torch import nn
from torch_geometric.data import Batch

from ..data.datasets import load_dataset, load_reference, split_by_topology
from ..geometry import density_of
from ..graph.convert import atoms_to_data
from ..nn.spectrum import SpectrumNet
from .loop import Trainer, TrainConfig, augment, seeded_init, start_process_group


def predict_batch(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Per-atom spectra ``[N, n_E]`` of a batch carrying ``edge_index`` and ``unit_shifts``."""
    return model(batch.pos, batch.z, batch.cell, batch.batch, batch.edge_index, batch.unit_shifts)


def xanes_loss(model: nn.Module, batch: Batch, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The ``Trainer`` loss: MSE of per-atom spectra on randomly rotated and translated cells, ``{"loss"}``."""
    batch = augment(batch, generator)
    return {"loss": (predict_batch(model, batch) - batch.xanes).square().mean()}


def make_validation(graphs, device: torch.device):
    """Per-atom MSE and cell-mean relative L2 error on held-out cells."""
    batch = Batch.from_data_list(graphs).to(device)

    @torch.no_grad()
    def val_fn(model: nn.Module) -> dict[str, float]:
        model.eval()
        pred = predict_batch(model, batch)
        mean_p = global_mean_pool(pred, batch.batch, size=batch.num_graphs)
        mean_t = global_mean_pool(batch.xanes, batch.batch, size=batch.num_graphs)
        rel = ((mean_p - mean_t).norm(dim=1) / mean_t.norm(dim=1)).mean()
        return {"loss": float((pred - batch.xanes).square().mean()), "mean_rel_l2": float(rel)}

    return val_fn


def crystal_references(data_dir: str | Path | None, cells) -> list:
    """Diamond and graphite with their DFT spectra brought onto the a-C intensity scale of ``cells``: each atom's
    spectrum scaled to the mean area per atom of the a-C spectra (the reference files use another scale)."""
    area = float(np.mean([a.arrays["xanes"].sum(axis=1).mean() for a in cells]))
    crystals = []
    for name in ("diamond", "graphite"):
        ref = load_reference(name, data_dir)
        ref.arrays["xanes"] = ref.arrays["xanes"] * (area / ref.arrays["xanes"].sum(axis=1, keepdims=True))
        crystals.append(ref)
    return crystals


def train_xanes(data_dir: str | Path | None, out: str | Path, config: TrainConfig, *, width: int = 64,
                layers: int = 3, exclude_density: float | None = None, device: str | None = None,
                init: str | Path | None = None, crystals: bool = False) -> nn.Module:
    """Train (or resume) the spectrum model; ``exclude_density`` leaves that density out entirely; ``crystals``
    adds the diamond and graphite references to the training cells."""
    start_process_group()
    cells = load_dataset(data_dir)
    missing = [a.info["name"] for a in cells if "xanes" not in a.arrays]
    if missing:
        raise FileNotFoundError(f"{len(missing)} cells have no spectra file (train/xanes/NAME.txt): {missing[:5]}")

    def kept(atoms) -> bool:  # outside the left-out density (the a-C cells and the crystals alike)
        return exclude_density is None or abs(density_of(atoms) - exclude_density) > 0.1

    if exclude_density is not None:
        left = [a for a in cells if kept(a)]
        if len(left) == len(cells):
            densities = sorted({round(density_of(a), 1) for a in cells})
            raise ValueError(f"no cell within 0.1 g/cm3 of {exclude_density} to leave out (densities: {densities})")
        cells = left
    train, val = split_by_topology(cells)
    if crystals:  # a density left out leaves its crystal out too (diamond 3.5, graphite 2.3 g/cm3)
        train = train + [c for c in crystal_references(data_dir, train) if kept(c)]
    model = seeded_init(lambda: SpectrumNet(species=[6], width=width, layers=layers), config.seed)
    graphs = [atoms_to_data(a, cutoff=model.cutoff) for a in train]
    meta = {"train_cells": [a.info["name"] for a in train], "val_cells": [a.info["name"] for a in val],
            "exclude_density": exclude_density, **({"crystals": True} if crystals else {})}  # runs before it resume
    trainer = Trainer(model, graphs, xanes_loss, out, config, meta=meta, device=device, init=init)
    if val:
        trainer.val_fn = make_validation([atoms_to_data(a, cutoff=model.cutoff) for a in val], trainer.device)
    return trainer.fit()
