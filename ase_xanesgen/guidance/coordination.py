"""Guide towards target coordination fractions with a smooth (differentiable) coordination number."""

from __future__ import annotations

import torch
from torch_geometric.nn import global_mean_pool

from ..data.datasets import CC_BOND_CUTOFF
from ..diffusion.samplers import System
from ..graph.neighbours import edge_vectors
from .base import Guide, check_t_min, check_weight, guide_graph


def soft_bonds(pos: torch.Tensor, system: System, cutoff: float = CC_BOND_CUTOFF, width: float = 0.05,
               by_centre: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Centre atom ``[E]``, vector ``[E, 3]``, length ``d [E]`` and Fermi-switch weight
    ``1 / (1 + exp((d - cutoff) / width)) [E]`` of every directed edge within the switch's reach (10 widths past
    ``cutoff``); differentiable in ``pos``. ``by_centre`` groups the edges by centre atom (for pairs of bonds).
    """
    edge_index, shifts = guide_graph(pos, system, cutoff + 10 * width)
    if by_centre:
        order = torch.argsort(edge_index[0])
        edge_index, shifts = edge_index[:, order], shifts[order]
    vec = edge_vectors(pos, system.cell, system.batch, edge_index, shifts)
    dist = vec.norm(dim=-1)
    return edge_index[0], vec, dist, torch.sigmoid((cutoff - dist) / width)


def soft_coordination(pos: torch.Tensor, system: System, cutoff: float = CC_BOND_CUTOFF, width: float = 0.05
                      ) -> torch.Tensor:
    """``[N]`` sum over neighbours of the Fermi switch of :func:`soft_bonds`."""
    centre, _, _, bond = soft_bonds(pos, system, cutoff, width)
    return torch.zeros(pos.shape[0], device=pos.device, dtype=pos.dtype).index_add_(0, centre, bond)


class CoordinationGuide(Guide):
    """L2 distance between soft CN2/CN3/CN4 fractions and ``fractions`` (dict with keys ``CN2``, ``CN3``, ``CN4``)."""

    KEYS = ("CN2", "CN3", "CN4")

    def __init__(self, fractions: dict[str, float], weight: float = 1.0, spread: float = 0.35, t_min: float = 0.0):
        unknown = set(fractions) - set(self.KEYS)
        if unknown:
            raise ValueError(f"unknown coordination keys {sorted(unknown)}; use {self.KEYS}")
        values = [float(fractions.get(k, 0.0)) for k in self.KEYS]
        if not all(0 <= v <= 1 for v in values) or sum(values) > 1 + 1e-6:  # NaN fails the range too
            raise ValueError(f"fractions must lie in [0, 1] and sum to <= 1, got {fractions}")
        self.target = torch.tensor(values)
        self.weight, self.spread, self.t_min = check_weight(weight), spread, check_t_min(t_min)

    def __repr__(self) -> str:
        return (f"CoordinationGuide({dict(zip(self.KEYS, self.target.tolist()))}, weight={self.weight}, "
                f"t_min={self.t_min})")

    def fractions(self, pos: torch.Tensor, system: System) -> torch.Tensor:
        """Soft fractions ``[B, 3]``: Gaussian memberships of the soft CN around 2, 3 and 4."""
        cn = soft_coordination(pos, system)
        centres = torch.tensor([2.0, 3.0, 4.0], device=pos.device, dtype=pos.dtype)
        member = torch.exp(-0.5 * ((cn[:, None] - centres) / self.spread) ** 2)
        return global_mean_pool(member, system.batch, size=system.num_graphs)

    def residual(self, x0: torch.Tensor, system: System) -> torch.Tensor:
        return (self.fractions(x0, system) - self.target.to(x0)).norm(dim=1)
