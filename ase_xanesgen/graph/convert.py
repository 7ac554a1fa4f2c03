"""``Atoms`` -> PyG ``Data`` with positions, species, cell ``[1, 3, 3]`` and the periodic graph."""

from __future__ import annotations

import numpy as np
import torch
from ase import Atoms
from torch_geometric.data import Batch, Data

from ..checks import check_structure
from .neighbours import neighbour_graph


def atoms_to_data(atoms: Atoms, cutoff: float | None = None, dtype: torch.dtype = torch.float32) -> Data:
    """One graph. With ``cutoff`` the edges come from matscipy (numpy); without, they are left to the model."""
    check_structure(atoms, empty_ok=True)
    data = Data(
        pos=torch.tensor(atoms.positions, dtype=dtype),
        z=torch.tensor(atoms.numbers, dtype=torch.long),
        cell=torch.tensor(np.asarray(atoms.cell), dtype=dtype).unsqueeze(0),
        num_nodes=len(atoms),
    )
    if cutoff is not None:
        edge_index, shifts = neighbour_graph(atoms, cutoff)
        data.edge_index = torch.from_numpy(edge_index)
        data.unit_shifts = torch.from_numpy(shifts)
    if "xanes" in atoms.arrays:
        data.xanes = torch.tensor(atoms.arrays["xanes"], dtype=dtype)
    return data


def batch_atoms(images: list[Atoms], cutoff: float | None = None, dtype: torch.dtype = torch.float32) -> Batch:
    """Several ``Atoms`` as one batched graph (PyG ``Batch``)."""
    return Batch.from_data_list([atoms_to_data(a, cutoff, dtype) for a in images])
