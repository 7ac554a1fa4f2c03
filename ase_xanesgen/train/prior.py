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
from ..data.bonding import learn_bond_rules
from ..data.datasets import load_dataset, split_by_topology
from ..data.structures import composition_of, load_structures, species_of, split_by_trajectory
from ..diffusion.sde import VESDE
from ..geometry import density_of
from ..graph.convert import atoms_to_data
from ..graph.neighbours import radius_graph_pbc, wrap_positions
from ..nn.score import ScoreNet
from .loop import Trainer, TrainConfig, augment, seeded_init, start_process_group


def sample_t(n: int, sde: VESDE, generator: torch.Generator, power: float = 1.0,
             t_range: tuple[float, float] | None = None) -> torch.Tensor:
    """``[n]`` diffusion times in ``t_range`` (default ``[t_min, 1]``); ``power > 1`` puts more of them at low
    noise."""
    low, high = t_range or (sde.t_min, 1.0)
    u = torch.rand(n, generator=generator)
    return low + (high - low) * u**power


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


def make_loss(sde: VESDE, cutoff: float, t_power: float, t_range: tuple[float, float] | None = None):
    """The ``Trainer`` loss: denoising score matching on randomly rotated and translated cells at
    ``t = low + (high - low) u**t_power`` (``t_range``, default ``[t_min, 1]``); returns ``{"loss", "loss_t<0.3"}``
    (the latter when such t were drawn)."""

    def loss_fn(model: nn.Module, batch: Batch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        batch = augment(batch, generator)
        t = sample_t(batch.num_graphs, sde, generator, t_power, t_range)
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


def is_md_data(data: str | Path | None) -> bool:
    """Whether ``data`` is MD snapshots of any material (a structure file, or a folder without the a-C data's
    ``train/structures`` layout) rather than the a-C data set."""
    if data is None:
        return False
    path = Path(data)
    return path.is_file() or (path.is_dir() and not (path / "train" / "structures").is_dir())


def md_split(data: str | Path, species: list[str] | None, held_out: float | list[str], use_validation_split: bool
             ) -> tuple[list[Atoms], list[Atoms], dict]:
    """(train, held-out, meta) of MD snapshots: split by trajectory, with the species, composition and bond rules
    of the training frames recorded for the generator."""
    frames = load_structures(data, species)
    train, val = split_by_trajectory(frames, held_out) if use_validation_split else (frames, [])
    if not train:
        raise ValueError(f"{data}: every trajectory is held out; hold out fewer")
    meta = {"species": species_of(frames), "composition": composition_of(train),
            "bond_rules": learn_bond_rules(train).to_dict(),
            "train_trajectories": sorted({a.info["trajectory"] for a in train}),
            "val_trajectories": sorted({a.info["trajectory"] for a in val}),
            "density_range": density_bounds(train)}
    return train, val, meta


def density_bounds(cells: list[Atoms]) -> list[float]:
    """``[low, high]`` g/cm3 of MD cells widened by 0.05 and rounded outward to 0.1 (MD boxes at 2.2 g/cm3 hold
    2.1997-2.2003 by rounding): 2.2 g/cm3 data gives ``[2.1, 2.3]``."""
    densities = [density_of(a) for a in cells]
    return [round(math.floor((min(densities) - 0.05) * 10) / 10, 1),
            round(math.ceil((max(densities) + 0.05) * 10) / 10, 1)]


def train_prior(data_dir: str | Path | None, out: str | Path, config: TrainConfig, *, width: int = 128,
                layers: int = 4, sigma_max: float = 0.8, t_power: float = 1.0, device: str | None = None,
                use_validation_split: bool = True, init: str | Path | None = None,
                balance_densities: bool = True, cutoff: float = 3.0, species: list[str] | None = None,
                held_out: float | list[str] = 0.2, t_range: tuple[float, float] | None = None) -> nn.Module:
    """Train (or resume) the score model; writes ``out/model.pt`` (EMA weights).

    ``data_dir``: the a-C data folder (default), or MD snapshots of any material (:func:`is_md_data`: an extxyz /
    LAMMPS dump / LAMMPS data / POSCAR file or a folder of them, read by ``data.structures.load_structures``;
    ``species`` names LAMMPS types 1, 2, ...). MD data is split by trajectory (``held_out``: a fraction of the
    trajectories or their ids) and the model learns every element present; its meta records the composition and
    the bond rules learned from the training frames (``data.bonding.learn_bond_rules``), which the generator's
    restart cycles use. ``cutoff``: the graph radius (A). ``t_range``: ``(low, high)`` the diffusion times drawn
    (default ``[t_min, 1]``): a fine-tune (``init``) on a band of noise levels, e.g. ``(0.15, 0.7)`` where the
    sampler's anneal cycles decide the bonding topology. ``ValueError`` unless ``t_min <= low < high <= 1``.

    ``balance_densities`` draws every density equally often: the a-C training split holds 11 cells at
    1.5 g/cm3 but 2 at 3.5, and an unbalanced prior learns the sp3-rich end least.
    """
    check_positive(t_power, "t_power", "(t = low + (high - low) u**t_power over t_range)")
    check_positive(cutoff, "cutoff", "A")
    sde = VESDE(sigma_max=sigma_max)
    if t_range is not None and not sde.t_min <= t_range[0] < t_range[1] <= 1.0:
        raise ValueError(f"t_range must satisfy {sde.t_min} <= low < high <= 1, got {tuple(t_range)}")
    start_process_group()
    if is_md_data(data_dir):
        train, val, extra = md_split(data_dir, species, held_out, use_validation_split)
    else:
        cells = load_dataset(data_dir, with_spectra=False)
        train, val = split_by_topology(cells) if use_validation_split else (cells, [])
        extra = {"species": [6]}
    model = seeded_init(lambda: ScoreNet(species=extra["species"], width=width, layers=layers, cutoff=cutoff),
                        config.seed)
    graphs = [atoms_to_data(a) for a in train]
    meta = {"sde": {"sigma_max": sigma_max, "t_min": sde.t_min}, "train_cells": [a.info["name"] for a in train],
            "val_cells": [a.info["name"] for a in val], "t_power": t_power,
            "t_range": list(t_range or (sde.t_min, 1.0)), "balance_densities": balance_densities,
            "density_range": density_range(train), **{k: v for k, v in extra.items() if k != "species"}}
    trainer = Trainer(model, graphs, make_loss(sde, model.cutoff, t_power, t_range), out, config, meta=meta,
                      device=device, init=init, weights=density_weights(train) if balance_densities else None)
    if val:
        trainer.val_fn = make_validation([atoms_to_data(a) for a in val], sde, model.cutoff, trainer.device)
    return trainer.fit()
