"""Training of the atomic potential (``nn.potential.AtomicPotential``) on labelled energies and forces.

Labels come as extended-XYZ frames with the total energy in ``info['REF_energy']`` (eV) and forces in
``arrays['REF_forces']`` (eV/A), as ``benchmarks/fit_gap.py`` writes them (CHGNet labels). The loss is
``energy_weight * MSE(energy per atom) + MSE(force components)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.io import read
from torch import nn
from torch_geometric.data import Batch

from ..graph.convert import atoms_to_data
from ..nn.potential import AtomicPotential, energy_and_forces
from .loop import Trainer, TrainConfig, seeded_init

#: weight of the energy-per-atom MSE ((eV/atom)^2) against the force-component MSE ((eV/A)^2)
ENERGY_WEIGHT = 300.0


def labelled_graphs(frames: list[Atoms], cutoff: float) -> list:
    """PyG graphs with ``energy [1]`` (eV) and ``forces [N, 3]`` (eV/A) from labelled frames.

    Raises:
        ValueError: a frame without ``REF_energy`` / ``REF_forces``.
    """
    graphs = []
    for k, atoms in enumerate(frames):
        if "REF_energy" not in atoms.info or "REF_forces" not in atoms.arrays:
            raise ValueError(f"frame {k} has no REF_energy / REF_forces labels")
        data = atoms_to_data(atoms, cutoff=cutoff)
        data.energy = torch.tensor([atoms.info["REF_energy"]], dtype=torch.float32)
        data.forces = torch.tensor(atoms.arrays["REF_forces"], dtype=torch.float32)
        graphs.append(data)
    return graphs


def predict(model: nn.Module, batch: Batch, create_graph: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Energy per graph ``[B]`` (eV) and forces ``[N, 3]`` (eV/A) of a batch carrying its graph."""
    return energy_and_forces(model, batch.pos.detach(), batch.z, batch.cell, batch.batch, batch.num_graphs,
                             create_graph=create_graph, graph=(batch.edge_index, batch.unit_shifts))


def potential_loss(model: nn.Module, batch: Batch, generator: torch.Generator) -> dict[str, torch.Tensor]:
    energy, forces = predict(model, batch, create_graph=True)
    n_atoms = torch.bincount(batch.batch, minlength=batch.num_graphs).to(energy)
    e_mse = ((energy - batch.energy) / n_atoms).square().mean()
    f_mse = (forces - batch.forces).square().mean()
    return {"loss": ENERGY_WEIGHT * e_mse + f_mse, "energy_rmse": e_mse.detach().sqrt(),
            "force_rmse": f_mse.detach().sqrt()}


def make_validation(graphs: list, device: torch.device):
    batch = Batch.from_data_list(graphs).to(device)
    n_atoms = torch.bincount(batch.batch, minlength=batch.num_graphs).float()

    def val_fn(model: nn.Module) -> dict[str, float]:
        model.eval()
        energy, forces = (x.detach() for x in predict(model, batch, create_graph=False))
        return {"energy_rmse": float(((energy - batch.energy) / n_atoms).square().mean().sqrt()),
                "force_rmse": float((forces - batch.forces).square().mean().sqrt())}

    return val_fn


def train_potential(train_file: str | Path, out: str | Path, config: TrainConfig, *,
                    val_file: str | Path | None = None, width: int = 64, cutoff: float = 3.0,
                    interactions: int = 2, device: str | None = None) -> nn.Module:
    """Train (or resume) an :class:`AtomicPotential` on labelled frames; writes ``out/model.pt`` (EMA weights).

    ``interactions``: message-passing layers of the model (:class:`AtomicPotential`). The feature scaling and the
    per-species energy offset are set from the training frames before the first step.
    """
    frames = read(str(train_file), ":")
    species = sorted({int(z) for a in frames for z in a.numbers})
    model = seeded_init(lambda: AtomicPotential(species=species, width=width, cutoff=cutoff,
                                                 interactions=interactions), config.seed)
    graphs = labelled_graphs(frames, model.cutoff)
    with torch.no_grad():
        feats = torch.cat([model.features(g.pos, g.cell, torch.zeros(g.num_nodes, dtype=torch.long), g.edge_index,
                                          g.unit_shifts) for g in graphs[:: max(1, len(graphs) // 40)]])
        model.fit_scaling(feats)
        per_atom = np.mean([a.info["REF_energy"] / len(a) for a in frames])
        model.offset.fill_(float(per_atom))
    meta = {"train_file": str(train_file), "val_file": None if val_file is None else str(val_file),
            "labels": "REF_energy / REF_forces"}
    trainer = Trainer(model, graphs, potential_loss, out, config, meta=meta, device=device)
    if val_file is not None:
        trainer.val_fn = make_validation(labelled_graphs(read(str(val_file), ":"), model.cutoff), trainer.device)
    return trainer.fit()
