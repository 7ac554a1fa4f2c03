"""Guide against strained small rings: a smooth fraction of acute bond angles (three-membered rings)."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch.autograd.function import once_differentiable

from ..diffusion.samplers import System
from .base import Guide, check_t_min, check_weight
from .coordination import SoftBonds, bond_vector_grad, soft_bonds


def bond_pairs(centre: torch.Tensor, n_atoms: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every pair ``a < b`` of edges ``[P]`` sharing a centre atom, for edges sorted by ``centre [E]``."""
    # edge a pairs with every edge b of its centre: b = first edge of the centre + k
    counts = torch.bincount(centre, minlength=n_atoms)
    degree = counts[centre]
    a = torch.repeat_interleave(torch.arange(len(centre), device=centre.device), degree)
    k = torch.arange(len(a), device=centre.device) - torch.repeat_interleave(torch.cumsum(degree, 0) - degree, degree)
    b = (torch.cumsum(counts, 0) - counts)[centre[a]] + k
    keep = a < b
    return a[keep], b[keep]


def pair_geometry(bonds: SoftBonds, a: torch.Tensor, b: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Soft weight ``s_a s_b``, ``cos(angle)`` and the clamped product of lengths of the bond pairs ``(a, b)``."""
    lengths = (bonds.dist[a] * bonds.dist[b]).clamp_min(1e-6)  # two atoms on one spot: no NaN
    return bonds.bond[a] * bonds.bond[b], (bonds.vec[a] * bonds.vec[b]).sum(-1) / lengths, lengths


def bond_angle_pairs(pos: torch.Tensor, system: System) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every pair of bonds sharing an atom: soft bond weight ``s_ij s_ik [P]``, ``cos(angle jik) [P]`` and the
    graph of each pair ``[P]``; differentiable in ``pos``. Bonds are the Fermi switches of ``soft_bonds``."""
    bonds = soft_bonds(pos, system, width=RingStrainGuide.WIDTH)
    a, b = bond_pairs(bonds.centre, pos.shape[0])
    weight, cos, _ = pair_geometry(bonds, a, b)
    return weight, cos, system.batch[bonds.centre[a]]


class AcuteParts(NamedTuple):
    """Bond pairs ``(a, b) [P]``, their weights, cosines, length products, acute memberships and graphs ``[P]``;
    per cell ``[B]`` the summed weight and the acute fraction."""

    a: torch.Tensor
    b: torch.Tensor
    weight: torch.Tensor
    cos: torch.Tensor
    lengths: torch.Tensor
    acute: torch.Tensor
    graph: torch.Tensor
    total: torch.Tensor
    fraction: torch.Tensor


def graph_sum(values: torch.Tensor, graph: torch.Tensor, num_graphs: int) -> torch.Tensor:
    return values.new_zeros(num_graphs).index_add_(0, graph, values)


class _AcuteExcess(torch.autograd.Function):
    """``relu(acute fraction - max_fraction) [B]`` from the bond vectors, with a hand-written backward.

    Autograd took ~115 tensor operations (GPU kernel launches) for this term, this ~60 (docs/guidance.md, cost).
    """

    @staticmethod
    def forward(ctx, vec: torch.Tensor, bonds: SoftBonds, system: System, guide: "RingStrainGuide") -> torch.Tensor:
        parts = guide.acute_parts(bonds, system)
        ctx.bonds, ctx.guide = bonds, guide
        ctx.save_for_backward(*parts)
        return torch.relu(parts.fraction - guide.max_fraction)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        a, b, weight, cos, lengths, acute, graph, total, fraction = ctx.saved_tensors
        bonds, guide = ctx.bonds, ctx.guide
        grad_acute_sum = grad * (fraction > guide.max_fraction) / total  # d/d sum(w * acute), per graph
        per_pair = grad_acute_sum.index_select(0, graph)
        grad_weight = per_pair * (acute - fraction.index_select(0, graph))  # the total's share included
        grad_cos = per_pair * weight * acute * (1 - acute) / guide.cos_width
        vec, dist2 = bonds.vec.detach(), bonds.dist.detach().square().clamp_min(1e-12)
        va, vb = vec.index_select(0, a), vec.index_select(0, b)
        # d cos / d v_a = v_b / (|a||b|) - cos v_a / |a|^2, and the same with a and b swapped
        along, across = (grad_cos * cos)[:, None], (grad_cos / lengths)[:, None]
        per_edge = torch.cat([
            torch.cat([(grad_weight * bonds.bond.detach()[b])[:, None], across * vb - along * va / dist2[a, None]], 1),
            torch.cat([(grad_weight * bonds.bond.detach()[a])[:, None], across * va - along * vb / dist2[b, None]], 1),
        ])
        grad_edge = vec.new_zeros(vec.shape[0], 4).index_add_(0, torch.cat([a, b]), per_edge)
        return bond_vector_grad(bonds, guide.WIDTH, grad_edge[:, 0]) + grad_edge[:, 1:], None, None, None


class RingStrainGuide(Guide):
    """Smooth fraction of bond angles below ``angle`` (degrees) per cell, penalised above ``max_fraction``.

    A coordination push can close three-membered rings (60 degree angles) as the cheapest way to raise CN:
    spectrum-guided sp3-rich cells at 2.0 g/cm3 had 32 % of their atoms in three-rings against 10-11 % in the MD
    cells, and four-fold atoms in small rings sat at -6.27 eV in GAP against -6.93 outside them
    (docs/guidance.md). This term opens such angles so the push completes proper four-fold sites; it adds to any
    guide. Each bond pair counts with its soft bond weights, an angle below ``angle`` by a sigmoid of width
    ``cos_width`` in cos(angle); the gradient also reaches the denominator (all pairs), weakly (by the fraction).
    """

    #: width (A) of the bonds' Fermi switch at ``CC_BOND_CUTOFF``
    WIDTH = 0.05

    def __init__(self, max_fraction: float = 0.0, angle: float = 75.0, weight: float = 1.0, t_min: float = 0.0,
                 cos_width: float = 0.05):
        if not 0.0 <= max_fraction < 1.0:
            raise ValueError(f"max_fraction must lie in [0, 1), got {max_fraction}")
        if not 0.0 < angle < 180.0:
            raise ValueError(f"angle must lie in (0, 180) degrees, got {angle}")
        if not cos_width > 0:
            raise ValueError(f"cos_width must be > 0, got {cos_width}")
        self.max_fraction, self.cos_max = float(max_fraction), math.cos(math.radians(angle))
        self.angle, self.cos_width = float(angle), cos_width
        self.weight, self.t_min = check_weight(weight), check_t_min(t_min)

    def __repr__(self) -> str:
        return (f"RingStrainGuide(max_fraction={self.max_fraction}, angle={self.angle}, weight={self.weight}, "
                f"t_min={self.t_min})")

    def acute_parts(self, bonds: SoftBonds, system: System) -> AcuteParts:
        """The bond pairs of ``bonds`` and the acute fraction per cell made of them."""
        a, b = bond_pairs(bonds.centre, system.z.shape[0])
        weight, cos, lengths = pair_geometry(bonds, a, b)
        acute = torch.sigmoid((cos - self.cos_max) / self.cos_width)
        graph = system.batch.index_select(0, bonds.centre.index_select(0, a))
        total = graph_sum(weight, graph, system.num_graphs).clamp_min(1e-6)
        fraction = graph_sum(weight * acute, graph, system.num_graphs) / total
        return AcuteParts(a, b, weight, cos, lengths, acute, graph, total, fraction)

    def acute_fraction(self, pos: torch.Tensor, system: System) -> torch.Tensor:
        """``[B]`` bond-weighted fraction of bond angles below ``angle`` (autograd-differentiable; ``residual``
        takes a leaner backward)."""
        return self.acute_parts(soft_bonds(pos, system, width=self.WIDTH), system).fraction

    def residual(self, x0: torch.Tensor, system: System) -> torch.Tensor:
        bonds = soft_bonds(x0, system, width=self.WIDTH)
        return _AcuteExcess.apply(bonds.vec, bonds, system, self)
