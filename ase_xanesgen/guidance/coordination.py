"""Guide towards target coordination fractions with a smooth (differentiable) coordination number."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch_geometric.nn import global_mean_pool

from ..checks import check_fraction, check_non_negative, check_positive
from ..data.datasets import CC_BOND_CUTOFF
from ..diffusion.samplers import System
from ..graph.neighbours import edge_vectors
from ..nn.potential import angle_triplets
from .base import Guide, guide_graph, step_cached

#: coordination numbers the soft fractions are centred on
CN_CENTRES = (2.0, 3.0, 4.0)
#: width (A) of the bonds' Fermi switch at ``CC_BOND_CUTOFF``
BOND_WIDTH = 0.05


class SoftBonds(NamedTuple):
    """Every directed edge within a Fermi switch's reach, grouped by centre atom."""

    centre: torch.Tensor  #: ``[E]`` centre atom
    vec: torch.Tensor  #: ``[E, 3]`` vector to the neighbour
    dist: torch.Tensor  #: ``[E]`` its length
    bond: torch.Tensor  #: ``[E]`` switch weight ``1 / (1 + exp((dist - cutoff) / width))``


def soft_bonds(pos: torch.Tensor, system: System, cutoff: float = CC_BOND_CUTOFF, width: float = BOND_WIDTH
               ) -> SoftBonds:
    """The :class:`SoftBonds` of ``pos`` (edges up to 10 widths past ``cutoff``), differentiable in ``pos``.

    Inside ``shared_graphs`` (one posterior step) built once per positions, cut-off and width, so the coordination
    and ring-strain terms of a sum share the edge vectors and their gradients meet in one scatter onto ``pos``.
    """
    def build() -> SoftBonds:
        edge_index, shifts = guide_graph(pos, system, cutoff + 10 * width)
        order = torch.argsort(edge_index[0])
        edge_index, shifts = edge_index[:, order], shifts[order]
        vec = edge_vectors(pos, system.cell, system.batch, edge_index, shifts)
        dist = vec.norm(dim=-1)
        return SoftBonds(edge_index[0], vec, dist, torch.sigmoid((cutoff - dist) / width))

    return step_cached(("soft_bonds", cutoff, width), pos, system, build)


def bond_pairs(centre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every pair ``(a, b)`` (``a < b``, ``[P]`` each) of edges sharing a centre atom, for edges sorted by
    ``centre [E]``: the bond angles of a graph, each once (``nn.potential.angle_triplets`` gives both orders)."""
    a, b = angle_triplets(centre)
    keep = a < b
    return a[keep], b[keep]


def soft_coordination(pos: torch.Tensor, system: System, cutoff: float = CC_BOND_CUTOFF,
                      width: float = BOND_WIDTH) -> torch.Tensor:
    """``[N]`` sum over neighbours of the Fermi switch of :func:`soft_bonds`."""
    centre, _, _, bond = soft_bonds(pos, system, cutoff, width)
    return torch.zeros(pos.shape[0], device=pos.device, dtype=pos.dtype).index_add_(0, centre, bond)


class CoordinationGuide(Guide):
    """Distance between soft CN2/CN3/CN4 fractions and ``fractions`` (dict with keys ``CN2``, ``CN3``, ``CN4``).

    ``tolerance > 0`` makes the residual the pseudo-Huber norm ``sqrt(d^2 + tolerance^2) - tolerance`` of the L2
    distance ``d``: far from the target it pulls like ``d`` (one unit per step, as the DPS step size gives every
    term), within ``tolerance`` the pull fades like ``d / tolerance``, for fractions known only that well (unmixed
    ones: about 0.05). At 0.05 guided cells come out 0.02-0.04 eV/atom lower in GAP energy and move CN less far
    (docs/guidance.md); the default is the plain L2 distance (0). The residual a guided run records
    (``guide_history``, ``guide_residual``) is then the pseudo-Huber value, not the distance.

    A key left out is free, unless the given fractions already sum to 1 and so leave it none: ``{"CN4": 0.4}`` asks
    for 40 % four-fold atoms and leaves the sp / sp2 balance to the prior, ``{"CN3": 0.6, "CN4": 0.4}`` also asks
    for no two-fold ones.
    """

    KEYS = ("CN2", "CN3", "CN4")

    def __init__(self, fractions: dict[str, float], weight: float = 1.0, spread: float = 0.35, t_min: float = 0.0,
                 tolerance: float = 0.0):
        unknown = set(fractions) - set(self.KEYS)
        if unknown or not fractions:
            raise ValueError(f"unknown coordination keys {sorted(unknown)}; use some of {self.KEYS}" if unknown else
                             f"no target fractions: give some of {self.KEYS}")
        values = [float(fractions.get(k, 0.0)) for k in self.KEYS]
        if not all(0 <= v <= 1 for v in values) or sum(values) > 1 + 1e-6:  # NaN fails the range too
            raise ValueError(f"fractions must lie in [0, 1] and sum to <= 1, got {fractions}")
        self.target = torch.tensor(values)
        self.mask = torch.tensor([k in fractions or sum(values) > 1 - 1e-6 for k in self.KEYS], dtype=torch.float32)
        self.weight, self.spread = check_non_negative(weight, "weight"), check_positive(spread, "spread")
        self.t_min = check_fraction(t_min, "t_min", low_closed=True)
        self.tolerance = check_non_negative(tolerance, "tolerance")

    def __repr__(self) -> str:
        fractions = {k: round(v, 4) for k, v, on in zip(self.KEYS, self.target.tolist(), self.mask) if on}
        return f"CoordinationGuide({fractions}, weight={self.weight}, t_min={self.t_min}, tolerance={self.tolerance})"

    def fractions(self, pos: torch.Tensor, system: System) -> torch.Tensor:
        """Soft fractions ``[B, 3]``: Gaussian memberships of the soft CN around 2, 3 and 4."""
        cn = soft_coordination(pos, system)
        member = torch.exp(-0.5 * ((cn[:, None] - cn.new_tensor(CN_CENTRES)) / self.spread) ** 2)
        return global_mean_pool(member, system.batch, size=system.num_graphs)

    def residual(self, x0: torch.Tensor, system: System) -> torch.Tensor:
        diff = (self.fractions(x0, system) - self.target.to(x0)) * self.mask.to(x0)
        if self.tolerance == 0:
            return diff.norm(dim=1)
        return torch.sqrt(diff.square().sum(dim=1) + self.tolerance**2) - self.tolerance  # smooth at d = 0 too
