"""Guide against strained small rings: a smooth fraction of acute bond angles (three-membered rings)."""

from __future__ import annotations

import math

import torch
from torch_geometric.nn import global_add_pool

from ..checks import check_fraction, check_non_negative, check_positive
from ..data.datasets import CC_BOND_CUTOFF
from ..diffusion.samplers import System
from .base import Guide
from .coordination import BOND_WIDTH, bond_pairs, soft_bonds


def bond_angle_pairs(pos: torch.Tensor, system: System, cutoff: float = CC_BOND_CUTOFF, width: float = BOND_WIDTH
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every pair of bonds sharing an atom: soft bond weight ``s_ij s_ik [P]``, ``cos(angle jik) [P]`` and the
    graph of each pair ``[P]``; differentiable in ``pos``. Bonds are the Fermi switches of ``soft_bonds`` (grouped
    by centre atom)."""
    centre, vec, dist, bond = soft_bonds(pos, system, cutoff, width)
    a, b = bond_pairs(centre)
    cos = (vec[a] * vec[b]).sum(-1) / (dist[a] * dist[b]).clamp_min(1e-6)  # two atoms on one spot: no NaN
    return bond[a] * bond[b], cos, system.batch[centre[a]]


class RingStrainGuide(Guide):
    """Smooth fraction of bond angles below ``angle`` (degrees) per cell, penalised above ``max_fraction``.

    A coordination push can close three-membered rings (60 degree angles) as the cheapest way to raise CN:
    without this term, spectrum-guided sp3-rich cells at 2.0 g/cm3 hold 32 % of their atoms in three-rings against
    10-11 % in the MD cells, and four-fold atoms in small rings sit at -6.27 eV in GAP against -6.93 outside them.
    This term opens such angles so the push completes proper four-fold sites; it adds to any
    guide. Each bond pair counts with its soft bond weights, an angle below ``angle`` by a sigmoid of width
    ``cos_width`` in cos(angle); the gradient also reaches the denominator (all pairs), weakly (by the fraction).
    """

    def __init__(self, max_fraction: float = 0.0, angle: float = 75.0, weight: float = 1.0, t_min: float = 0.0,
                 cos_width: float = 0.05):
        if not 0.0 < angle < 180.0:
            raise ValueError(f"angle must lie in (0, 180) degrees, got {angle}")
        check_positive(cos_width, "cos_width")
        self.max_fraction = check_fraction(max_fraction, "max_fraction", low_closed=True)
        self.cos_max = math.cos(math.radians(angle))
        self.angle, self.cos_width = float(angle), cos_width
        self.weight = check_non_negative(weight, "weight")
        self.t_min = check_fraction(t_min, "t_min", low_closed=True)

    def __repr__(self) -> str:
        return (f"RingStrainGuide(max_fraction={self.max_fraction}, angle={self.angle}, weight={self.weight}, "
                f"t_min={self.t_min})")

    def acute_fraction(self, pos: torch.Tensor, system: System) -> torch.Tensor:
        """``[B]`` bond-weighted fraction of bond angles below ``angle``."""
        w, cos, graph = bond_angle_pairs(pos, system)
        acute = torch.sigmoid((cos - self.cos_max) / self.cos_width)
        n = system.num_graphs
        return (global_add_pool((w * acute)[:, None], graph, size=n)[:, 0]
                / global_add_pool(w[:, None], graph, size=n)[:, 0].clamp_min(1e-6))

    def residual(self, x0: torch.Tensor, system: System) -> torch.Tensor:
        return torch.relu(self.acute_fraction(x0, system) - self.max_fraction)
