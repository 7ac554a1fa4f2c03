"""Spectrum network: periodic structure -> per-atom carbon K-edge spectra ``[N, n_energy]``."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..graph.neighbours import edge_vectors, radius_graph_pbc
from .blocks import MLP
from .meshgraphnet import MeshGraphNet


class SpectrumNet(nn.Module):
    """MeshGraphNet with a softplus read-out of ``n_energy`` non-negative intensities per atom."""

    def __init__(self, species: list[int] = (6,), width: int = 64, layers: int = 3, cutoff: float = 3.0,
                 n_rbf: int = 16, n_energy: int = 100):
        super().__init__()
        self.model_args = dict(species=list(species), width=width, layers=layers, cutoff=cutoff, n_rbf=n_rbf,
                               n_energy=n_energy)
        self.cutoff = cutoff
        self.mgn = MeshGraphNet(list(species), width, layers, cutoff, n_rbf)
        self.decoder = MLP(width, 2 * width, n_energy, layer_norm=False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model_args})"

    def forward(self, pos: torch.Tensor, z: torch.Tensor, cell: torch.Tensor, batch: torch.Tensor,
                edge_index: torch.Tensor, unit_shifts: torch.Tensor) -> torch.Tensor:
        """Per-atom spectra ``[N, n_energy]``; differentiable in ``pos``."""
        vec = edge_vectors(pos, cell, batch, edge_index, unit_shifts)
        return F.softplus(self.decoder(self.mgn(z, vec, edge_index)))


def spectra_of(model: SpectrumNet, pos: torch.Tensor, z: torch.Tensor, cell: torch.Tensor,
               batch: torch.Tensor, graph: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Per-atom spectra ``[N, n_E]`` from positions alone (graph by the torch cell list, unless ``graph`` gives
    ``(edge_index, unit_shifts)`` within ``model.cutoff``).

    The one differentiable path positions -> spectra, shared by ``XANESCalculator`` and ``XANESGuide``.
    """
    edge_index, shifts = radius_graph_pbc(pos.detach(), cell, batch, model.cutoff) if graph is None else graph
    return model(pos, z, cell, batch, edge_index, shifts)
