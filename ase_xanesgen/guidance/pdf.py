"""Guide towards a target radial distribution function with a Gaussian-smoothed, differentiable g(r)."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..diffusion.samplers import System
from ..graph.neighbours import edge_vectors
from .base import Guide, check_weight, guide_graph


class RDFGuide(Guide):
    """Relative L2 distance between the smoothed g(r) of each cell and a target ``g`` on ``r`` (Angstrom).

    The target is interpolated onto ``bins`` points in ``[r_min, r_max]``; pairs contribute Gaussians of
    width ``smear`` (Angstrom), normalised like ``ase_xanesgen.analysis.rdf`` (ideal gas -> 1).
    """

    def __init__(self, r: np.ndarray, g: np.ndarray, *, r_min: float = 1.0, r_max: float = 4.0, bins: int = 60,
                 smear: float = 0.05, weight: float = 1.0):
        r, g = np.asarray(r, dtype=float), np.asarray(g, dtype=float)
        if r.ndim != 1 or r.shape != g.shape or len(r) < 2:
            raise ValueError(f"RDFGuide: r and g must be 1-D arrays of one length, got {r.shape} and {g.shape}")
        if not (np.all(np.isfinite(g)) and np.all(np.isfinite(r))):
            raise ValueError("RDFGuide: target contains NaN or inf")
        if np.any(np.diff(r) <= 0) or r[0] > r_min or r[-1] < r_max:
            raise ValueError(f"RDFGuide: r must increase and cover [{r_min}, {r_max}] A")
        if np.any(g < 0):
            raise ValueError("RDFGuide: g(r) has negative values")
        self.centres = torch.linspace(r_min, r_max, bins)
        self.target = torch.tensor(np.interp(self.centres.numpy(), r, g), dtype=torch.float32)
        self.r_max, self.smear, self.weight = r_max, smear, check_weight(weight)

    def __repr__(self) -> str:
        return f"RDFGuide(r_max={self.r_max}, weight={self.weight})"

    def rdf(self, pos: torch.Tensor, system: System) -> torch.Tensor:
        """Smoothed g(r) ``[B, bins]`` of each cell, differentiable in ``pos``."""
        edge_index, shifts = guide_graph(pos, system, self.r_max + 4 * self.smear)
        d = edge_vectors(pos, system.cell, system.batch, edge_index, shifts).norm(dim=-1)
        centres = self.centres.to(pos)
        kernel = torch.exp(-0.5 * ((d[:, None] - centres) / self.smear) ** 2) / (self.smear * math.sqrt(2 * math.pi))
        per_graph = pos.new_zeros(system.num_graphs, len(centres)).index_add_(0, system.batch[edge_index[0]], kernel)
        n = torch.bincount(system.batch, minlength=system.num_graphs).to(pos)
        volume = torch.linalg.det(system.cell).abs().to(pos)
        return per_graph / (n * n / volume)[:, None] / (4 * math.pi * centres**2)

    def residual(self, x0: torch.Tensor, system: System) -> torch.Tensor:
        target = self.target.to(x0)
        return (self.rdf(x0, system) - target).norm(dim=1) / target.norm()
