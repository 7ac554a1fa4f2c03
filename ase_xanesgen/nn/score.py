"""Score network: noisy periodic structure and noise level -> per-atom score (1/Angstrom)."""

from __future__ import annotations

import torch
from torch import nn

from ..graph.neighbours import edge_vectors
from .blocks import MLP, GaussianFourierEmbedding
from .meshgraphnet import MeshGraphNet


class ScoreNet(nn.Module):
    """MeshGraphNet conditioned on diffusion time by a Gaussian random Fourier embedding.

    The decoder output ``eps [N, 3]`` estimates ``-z`` of ``x_t = x_0 + sigma z``; the score is
    ``eps / sigma`` so the network output stays O(1) at every noise level.
    """

    def __init__(self, species: list[int] = (6,), width: int = 128, layers: int = 4, cutoff: float = 3.0,
                 n_rbf: int = 16, time_dim: int = 32, fourier_scale: float = 16.0):
        super().__init__()
        self.model_args = dict(species=list(species), width=width, layers=layers, cutoff=cutoff, n_rbf=n_rbf,
                               time_dim=time_dim, fourier_scale=fourier_scale)
        self.cutoff = cutoff
        self.time_embed = nn.Sequential(GaussianFourierEmbedding(time_dim, fourier_scale),
                                        nn.Linear(time_dim, time_dim), nn.SiLU())
        self.mgn = MeshGraphNet(list(species), width, layers, cutoff, n_rbf, cond_dim=time_dim)
        self.decoder = MLP(width, width, 3, layer_norm=False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model_args})"

    def forward(self, pos: torch.Tensor, z: torch.Tensor, cell: torch.Tensor, batch: torch.Tensor,
                edge_index: torch.Tensor, unit_shifts: torch.Tensor, t: torch.Tensor,
                sigma: torch.Tensor) -> torch.Tensor:
        """Score ``[N, 3]`` (1/Angstrom). ``t``, ``sigma``: ``[B]`` per graph; ``cell [B, 3, 3]``."""
        vec = edge_vectors(pos, cell, batch, edge_index, unit_shifts)
        cond = self.time_embed(t)[batch]
        h = self.mgn(z, vec, edge_index, cond)
        return self.decoder(h) / sigma[batch, None]
