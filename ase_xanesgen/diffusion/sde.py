"""Variance-exploding SDE over periodic coordinates: ``dx = sqrt(d sigma^2/dt) dW``, sigma(t) = k t."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..checks import check_fraction, check_positive
from ..graph.neighbours import wrap_positions


@dataclass(frozen=True)
class VESDE:
    """``sigma(t) = sigma_max * t`` (Angstrom) on ``t in [t_min, 1]``; positions live on the torus of the cell."""

    sigma_max: float = 0.8
    t_min: float = 1e-3

    def __post_init__(self) -> None:
        check_positive(self.sigma_max, "sigma_max", "Angstrom")
        check_fraction(self.t_min, "t_min")

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        """Noise scale ``sigma(t)`` in Angstrom, the shape of ``t``."""
        return self.sigma_max * t

    def g2(self, t: torch.Tensor) -> torch.Tensor:
        """Squared diffusion coefficient ``d sigma^2 / dt``."""
        return 2 * self.sigma_max**2 * t

    def prior_sample(self, cell: torch.Tensor, batch: torch.Tensor, generator: torch.Generator | None = None
                     ) -> torch.Tensor:
        """Positions drawn uniformly in each cell ``[B, 3, 3]``: the sampler's start at t = 1."""
        frac = torch.rand((batch.shape[0], 3), generator=generator, device=cell.device, dtype=cell.dtype)
        return torch.einsum("ni,nij->nj", frac, cell[batch])

    def perturb(self, pos: torch.Tensor, cell: torch.Tensor, batch: torch.Tensor, sigma: torch.Tensor,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x + sigma z wrapped into the cell, z)``; ``sigma [B]`` per graph."""
        noise = torch.randn(pos.shape, generator=generator, device=pos.device, dtype=pos.dtype)
        return wrap_positions(pos + sigma[batch, None] * noise, cell, batch), noise
