"""Score network: noisy periodic structure and noise level -> per-atom score (1/Angstrom)."""

from __future__ import annotations

import torch
from ase.data import atomic_masses
from torch import nn
from torch_geometric.nn import global_add_pool

from ..graph.neighbours import edge_vectors
from .blocks import MLP, GaussianFourierEmbedding
from .meshgraphnet import MeshGraphNet


#: density (g/cm3) at which the density input is zero: the middle of the a-C training range
DENSITY_CENTRE = 2.5
#: g/cm3 per amu/A^3
AMU_PER_A3 = 1.66053907


def cell_density(z: torch.Tensor, cell: torch.Tensor, batch: torch.Tensor, masses: torch.Tensor) -> torch.Tensor:
    """Mass density (g/cm3) of each graph ``[B]`` from its species, ``masses [119]`` (amu) and ``cell [B, 3, 3]``."""
    mass = global_add_pool(masses[z][:, None], batch, size=cell.shape[0])[:, 0]
    return AMU_PER_A3 * mass / torch.linalg.det(cell).abs()


class ScoreNet(nn.Module):
    """MeshGraphNet conditioned on diffusion time by a Gaussian random Fourier embedding.

    The decoder output ``eps [N, 3]`` estimates ``-z`` of ``x_t = x_0 + sigma z``; the score is
    ``eps / sigma`` so the network output stays O(1) at every noise level. With ``density=True`` every node
    also sees its cell's mass density (``cell_density`` - 2.5 g/cm3), which the cell and the species already
    fix: the network need not infer it from noisy neighbour counts.
    """

    def __init__(self, species: list[int] = (6,), width: int = 128, layers: int = 4, cutoff: float = 3.0,
                 n_rbf: int = 16, time_dim: int = 32, fourier_scale: float = 16.0, density: bool = False):
        super().__init__()
        self.model_args = dict(species=list(species), width=width, layers=layers, cutoff=cutoff, n_rbf=n_rbf,
                               time_dim=time_dim, fourier_scale=fourier_scale)
        if density:  # only when on: older checkpoints' model_args stay as they were
            self.model_args["density"] = True
        self.cutoff, self.density = cutoff, density
        self.register_buffer("masses", torch.tensor(atomic_masses, dtype=torch.float32), persistent=False)
        self.time_embed = nn.Sequential(GaussianFourierEmbedding(time_dim, fourier_scale),
                                        nn.Linear(time_dim, time_dim), nn.SiLU())
        self.mgn = MeshGraphNet(list(species), width, layers, cutoff, n_rbf, cond_dim=time_dim + density)
        self.decoder = MLP(width, width, 3, layer_norm=False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model_args})"

    def forward(self, pos: torch.Tensor, z: torch.Tensor, cell: torch.Tensor, batch: torch.Tensor,
                edge_index: torch.Tensor, unit_shifts: torch.Tensor, t: torch.Tensor,
                sigma: torch.Tensor) -> torch.Tensor:
        """Score ``[N, 3]`` (1/Angstrom). ``t``, ``sigma``: ``[B]`` per graph; ``cell [B, 3, 3]``."""
        vec = edge_vectors(pos, cell, batch, edge_index, unit_shifts)
        cond = self.time_embed(t)
        if self.density:
            rho = cell_density(z, cell, batch, self.masses).to(cond) - DENSITY_CENTRE
            cond = torch.cat([cond, rho[:, None]], dim=-1)
        h = self.mgn(z, vec, edge_index, cond[batch])
        return self.decoder(h) / sigma[batch, None]
