"""Denoising score matching for the structure prior (Song et al. 2021, VE SDE, sigma^2 weighting)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from ase import Atoms
from torch_geometric.nn import global_mean_pool
from torch import nn
from torch_geometric.data import Batch

from ..checks import check_positive
from ..data.datasets import load_dataset, split_by_topology
from ..diffusion.sde import VESDE
from ..geometry import density_of
from ..graph.convert import atoms_to_data
from ..graph.neighbours import radius_graph_pbc, wrap_positions
from ..nn.score import ScoreNet
from .loop import Trainer, TrainConfig, augment, seeded_init, start_process_group


def sample_t(n: int, sde: VESDE, generator: torch.Generator, power: float = 1.0) -> torch.Tensor:
    """Diffusion times in ``[t_min, 1]``; ``power > 1`` puts more of them at low noise."""
    u = torch.rand(n, generator=generator)
    return sde.t_min + (1 - sde.t_min) * u**power


def dsm_loss(model: nn.Module, batch: Batch, sde: VESDE, t: torch.Tensor, generator: torch.Generator,
             cutoff: float) -> torch.Tensor:
    """Per-graph ``mean_atoms |sigma s(x_t) + z|^2 / 3`` with ``x_t = x_0 + sigma z`` wrapped into the cell."""
    t = t.to(batch.pos)
    sigma = sde.sigma(t)
    noise = torch.randn(batch.pos.shape, generator=generator).to(batch.pos)
    pos_t = wrap_positions(batch.pos + sigma[batch.batch, None] * noise, batch.cell, batch.batch)
    edge_index, shifts = radius_graph_pbc(pos_t, batch.cell, batch.batch, cutoff)
    score = model(pos_t, batch.z, batch.cell, batch.batch, edge_index, shifts, t, sigma)
    err = (sigma[batch.batch, None] * score + noise).square().mean(-1)
    return global_mean_pool(err[:, None], batch.batch, size=batch.num_graphs)[:, 0]


def make_loss(sde: VESDE, cutoff: float, t_power: float):
    """The ``Trainer`` loss: denoising score matching on randomly rotated and translated cells at
    ``t = t_min + (1 - t_min) u**t_power``; returns ``{"loss", "loss_t<0.3"}`` (the latter when such t were drawn)."""

    def loss_fn(model: nn.Module, batch: Batch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        batch = augment(batch, generator)
        t = sample_t(batch.num_graphs, sde, generator, t_power)
        per_graph = dsm_loss(model, batch, sde, t, generator, cutoff)
        out = {"loss": per_graph.mean()}
        low = t.to(per_graph.device) < 0.3
        if low.any():
            out["loss_t<0.3"] = per_graph[low].mean().detach()
        return out

    return loss_fn


def make_validation(graphs, sde: VESDE, cutoff: float, device: torch.device):
    """Seeded DSM loss on held-out cells at fixed noise levels (t = 0.05 ... 0.95)."""
    batch = Batch.from_data_list(graphs).to(device)
    levels = [0.05, 0.15, 0.3, 0.5, 0.75, 0.95]

    @torch.no_grad()
    def val_fn(model: nn.Module) -> dict[str, float]:
        model.eval()
        g = torch.Generator().manual_seed(1234)
        out = {}
        for level in levels:
            t = torch.full((batch.num_graphs,), level)
            out[f"loss_t{level}"] = float(dsm_loss(model, batch, sde, t, g, cutoff).mean())
        out["loss"] = sum(out.values()) / len(levels)
        return out

    return val_fn


def density_weights(cells: list[Atoms], bin_width: float = 0.5) -> list[float]:
    """Per-cell sampling weights ``1 / (cells in the same density bin)``: every density bin drawn equally."""
    bins = [math.floor(density_of(a) / bin_width + 0.5) for a in cells]
    return [1.0 / bins.count(b) for b in bins]


def density_range(cells: list[Atoms]) -> list[float]:
    """``[low, high]`` g/cm3 of the training cells, to 0.1 (the MD cells sit within 0.01 of their nominal
    density): ``DiffusionGenerator.from_checkpoint`` warns outside it."""
    densities = [density_of(a) for a in cells]
    return [round(min(densities), 1), round(max(densities), 1)]


def train_prior(data_dir: str | Path | None, out: str | Path, config: TrainConfig, *, width: int = 128,
                layers: int = 4, sigma_max: float = 0.8, t_power: float = 1.0, device: str | None = None,
                use_validation_split: bool = True, init: str | Path | None = None,
                balance_densities: bool = True) -> nn.Module:
    """Train (or resume) the score model on the shared a-C cells; writes ``out/model.pt`` (EMA weights).

    ``balance_densities`` draws every density equally often: the training split holds 11 cells at
    1.5 g/cm3 but 2 at 3.5, and an unbalanced prior learns the sp3-rich end least.
    """
    check_positive(t_power, "t_power", "(t = t_min + (1 - t_min) u**t_power)")
    start_process_group()
    cells = load_dataset(data_dir, with_spectra=False)
    train, val = split_by_topology(cells) if use_validation_split else (cells, [])
    sde = VESDE(sigma_max=sigma_max)
    model = seeded_init(lambda: ScoreNet(species=[6], width=width, layers=layers), config.seed)
    graphs = [atoms_to_data(a) for a in train]
    meta = {"sde": {"sigma_max": sigma_max, "t_min": sde.t_min}, "train_cells": [a.info["name"] for a in train],
            "val_cells": [a.info["name"] for a in val], "t_power": t_power, "balance_densities": balance_densities,
            "density_range": density_range(train)}
    trainer = Trainer(model, graphs, make_loss(sde, model.cutoff, t_power), out, config, meta=meta, device=device,
                      init=init, weights=density_weights(train) if balance_densities else None)
    if val:
        trainer.val_fn = make_validation([atoms_to_data(a) for a in val], sde, model.cutoff, trainer.device)
    return trainer.fit()
