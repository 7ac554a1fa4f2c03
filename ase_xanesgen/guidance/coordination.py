"""Guide towards target coordination fractions with a smooth (differentiable) coordination number."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch.autograd.function import once_differentiable

from ..data.datasets import CC_BOND_CUTOFF
from ..diffusion.samplers import System
from ..graph.neighbours import edge_vectors
from .base import Guide, check_t_min, check_weight, guide_graph, step_cached

#: coordination numbers the soft fractions are centred on
CN_CENTRES = (2.0, 3.0, 4.0)


class SoftBonds(NamedTuple):
    """Every directed edge within a Fermi switch's reach, grouped by centre atom."""

    centre: torch.Tensor  #: ``[E]`` centre atom
    vec: torch.Tensor  #: ``[E, 3]`` vector to the neighbour
    dist: torch.Tensor  #: ``[E]`` its length
    bond: torch.Tensor  #: ``[E]`` switch weight ``1 / (1 + exp((dist - cutoff) / width))``


def soft_bonds(pos: torch.Tensor, system: System, cutoff: float = CC_BOND_CUTOFF, width: float = 0.05
               ) -> SoftBonds:
    """The :class:`SoftBonds` of ``pos`` (edges up to 10 widths past ``cutoff``), differentiable in ``pos``.

    Inside ``shared_graphs`` (one posterior step) built once per positions, cut-off and width, so the coordination
    and ring-strain terms of a sum share the edge vectors, and their gradients meet in one scatter onto ``pos``.
    """
    def build() -> SoftBonds:
        edge_index, shifts = guide_graph(pos, system, cutoff + 10 * width)
        order = torch.argsort(edge_index[0])
        edge_index, shifts = edge_index[:, order], shifts[order]
        vec = edge_vectors(pos, system.cell, system.batch, edge_index, shifts)
        dist = vec.norm(dim=-1)
        return SoftBonds(edge_index[0], vec, dist, torch.sigmoid((cutoff - dist) / width))

    return step_cached(("soft_bonds", cutoff, width), pos, system, build)


def bond_vector_grad(bonds: SoftBonds, width: float, grad_bond: torch.Tensor) -> torch.Tensor:
    """``[E, 3]`` gradient on the bond vectors from one on the switch weights ``[E]`` (the chain rule through the
    Fermi switch of the length), for guides with a hand-written backward."""
    bond, dist = bonds.bond.detach(), bonds.dist.detach().clamp_min(1e-9)
    return (grad_bond * bond * (bond - 1) / (width * dist))[:, None] * bonds.vec.detach()


def cell_mean(values: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of ``values [N, k]`` per graph ``[B, k]``, and the atoms per graph ``[B, 1]`` (for a backward)."""
    count = torch.bincount(batch, minlength=num_graphs).clamp_min(1).to(values.dtype)[:, None]
    return values.new_zeros(num_graphs, values.shape[1]).index_add_(0, batch, values) / count, count


def soft_fractions(bonds: SoftBonds, system: System, spread: float
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Soft CN fractions ``[B, 3]``: cell means of Gaussian memberships ``[N, 3]`` of the soft CN (the summed
    switch weights) around 2, 3 and 4; also the memberships, their scaled offsets ``(cn - centre) / spread`` and
    the atoms per graph (what a backward needs)."""
    cn = bonds.bond.new_zeros(system.z.shape[0]).index_add_(0, bonds.centre, bonds.bond)
    offset = (cn[:, None] - cn.new_tensor(CN_CENTRES)) / spread
    member = torch.exp(-0.5 * offset**2)
    fractions, count = cell_mean(member, system.batch, system.num_graphs)
    return fractions, member, offset, count


class _FractionMisfit(torch.autograd.Function):
    """``|soft fractions - target| [B]`` from the bond vectors, with a hand-written backward.

    Autograd took ~50 tensor operations (kernel launches on a GPU) for this term's tail, this ~25: at small GPU
    batches a guided evaluation waits on launches, not arithmetic (docs/guidance.md, cost).
    """

    @staticmethod
    def forward(ctx, vec: torch.Tensor, bonds: SoftBonds, system: System, target: torch.Tensor, mask: torch.Tensor,
                spread: float, width: float) -> torch.Tensor:
        fractions, member, offset, count = soft_fractions(bonds, system, spread)
        diff = (fractions - target) * mask
        misfit = diff.norm(dim=1)
        ctx.bonds, ctx.system, ctx.spread, ctx.width = bonds, system, spread, width
        ctx.save_for_backward(member, offset, count, diff, misfit)
        return misfit

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None, None, None, None]:
        member, offset, count, diff, misfit = ctx.saved_tensors
        grad_fractions = diff * (grad / misfit.clamp_min(1e-12))[:, None] / count  # [B, 3], mean included
        grad_cn = (grad_fractions.index_select(0, ctx.system.batch) * member * offset).sum(1) / -ctx.spread
        grad_bond = grad_cn.index_select(0, ctx.bonds.centre)
        return bond_vector_grad(ctx.bonds, ctx.width, grad_bond), None, None, None, None, None, None


class CoordinationGuide(Guide):
    """L2 distance between soft CN2/CN3/CN4 fractions and ``fractions`` (dict with keys ``CN2``, ``CN3``, ``CN4``).

    A key left out is free, unless the given fractions already sum to 1 and so leave it none: ``{"CN4": 0.4}`` asks
    for 40 % four-fold atoms and leaves the sp / sp2 balance to the prior (as a target of 0 for both, it doubled
    the two-fold atoms), ``{"CN3": 0.6, "CN4": 0.4}`` also asks for no two-fold ones.
    """

    KEYS = ("CN2", "CN3", "CN4")
    #: width (A) of the bonds' Fermi switch at ``CC_BOND_CUTOFF``
    WIDTH = 0.05

    def __init__(self, fractions: dict[str, float], weight: float = 1.0, spread: float = 0.35, t_min: float = 0.0):
        unknown = set(fractions) - set(self.KEYS)
        if unknown or not fractions:
            raise ValueError(f"unknown coordination keys {sorted(unknown)}; use some of {self.KEYS}" if unknown else
                             f"no target fractions: give some of {self.KEYS}")
        values = [float(fractions.get(k, 0.0)) for k in self.KEYS]
        if not all(0 <= v <= 1 for v in values) or sum(values) > 1 + 1e-6:  # NaN fails the range too
            raise ValueError(f"fractions must lie in [0, 1] and sum to <= 1, got {fractions}")
        self.target = torch.tensor(values)
        self.mask = torch.tensor([k in fractions or sum(values) > 1 - 1e-6 for k in self.KEYS], dtype=torch.float32)
        self.weight, self.spread, self.t_min = check_weight(weight), spread, check_t_min(t_min)

    def __repr__(self) -> str:
        fractions = {k: round(v, 4) for k, v, on in zip(self.KEYS, self.target.tolist(), self.mask) if on}
        return f"CoordinationGuide({fractions}, weight={self.weight}, t_min={self.t_min})"

    def fractions(self, pos: torch.Tensor, system: System) -> torch.Tensor:
        """Soft fractions ``[B, 3]`` (autograd-differentiable; ``residual`` takes a leaner backward)."""
        return soft_fractions(soft_bonds(pos, system, width=self.WIDTH), system, self.spread)[0]

    def residual(self, x0: torch.Tensor, system: System) -> torch.Tensor:
        bonds = soft_bonds(x0, system, width=self.WIDTH)
        return _FractionMisfit.apply(bonds.vec, bonds, system, self.target.to(x0), self.mask.to(x0), self.spread,
                                     self.WIDTH)
