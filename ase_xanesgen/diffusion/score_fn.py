"""The prior score of a trained ``ScoreNet`` as a sampler's ``score_fn(pos, t, system)``, and an energy term."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..checks import check_positive
from ..graph.neighbours import radius_graph_pbc
from ..nn.potential import energy_and_forces
from ..nn.score import ScoreNet
from .samplers import System
from .sde import VESDE


class PriorScore:
    """Builds the periodic graph of the current positions and evaluates the score network."""

    def __init__(self, model: ScoreNet, sde: VESDE):
        self.model, self.sde = model, sde

    def __call__(self, pos: torch.Tensor, t: float, system: System) -> torch.Tensor:
        tt = torch.full((system.num_graphs,), t, device=pos.device, dtype=pos.dtype)
        edge_index, shifts = radius_graph_pbc(pos.detach(), system.cell, system.batch, self.model.cutoff)
        return self.model(pos, system.z, system.cell, system.batch, edge_index, shifts, tt, self.sde.sigma(tt))


class ScoreWrapper:
    """Base of the ``score_fn`` wrappers: keeps the wrapped ``score_fn`` and exposes its attributes (a guided
    score's guide, history, ...)."""

    def __init__(self, score_fn):
        self.score_fn = score_fn

    def __getattr__(self, name: str):
        if name == "score_fn":  # not set yet (a copy under construction): no recursion
            raise AttributeError(name)
        return getattr(self.score_fn, name)


class EnergyTerm(ScoreWrapper):
    """A score with an annealed energy term: ``s'(x, t) = s(x, t) + step / sigma(t)^2 * F(x0)`` for
    ``t_low <= t <= t_high``.

    ``F = forces(x0, system)`` (``[N, 3]`` eV/A) are the forces of an atomic potential on the denoised estimate
    ``x0 = x + sigma(t)^2 s(x, t)`` (:func:`potential_forces` for an ``AtomicPotential``, a
    ``guidance.ValenceField`` itself; the front ends also wrap any ASE calculator).
    ``exp(-E / kT)`` has the score ``F / kT``, so the sampler draws from the learned density times a Boltzmann
    factor whose temperature ``kT(t) = sigma(t)^2 / step`` anneals with the noise (at ``step`` 0.02 A^2/eV: 2.9 eV
    at t = 0.3, 0.08 eV at t = 0.05): hot while the bonding forms, so it steers away from high-energy motifs
    (strained rings and angles) instead of only relaxing them, and cooling with the quench. Each Tweedie iteration
    of the refinement moves the atoms by ``step * F`` on top of the prior's jump: a relaxation step inside the
    quench, stable for bond stiffnesses below ``2 / step``. ``max_force`` (eV/A, > 0) caps each atom's force (its
    direction kept): on the blurred estimates of the early steps a steep repulsive potential gives forces of hundreds
    of eV/A. Wraps any ``score_fn`` (the prior or a guided score) and exposes its attributes.
    """

    def __init__(self, score_fn, forces: Callable[[torch.Tensor, System], torch.Tensor], sde: VESDE, step: float,
                 t_low: float, t_high: float, max_force: float | None = None):
        super().__init__(score_fn)
        self.forces, self.sde = forces, sde
        self.step, self.t_low, self.t_high = step, t_low, t_high
        self.max_force = None if max_force is None else check_positive(max_force, "max_force", "eV/A")

    def __call__(self, pos: torch.Tensor, t: float, system: System) -> torch.Tensor:
        score = self.score_fn(pos, t, system)
        if not self.t_low <= t <= self.t_high:
            return score
        sigma2 = self.sde.sigma(t) ** 2
        x0 = pos + sigma2 * score
        forces = self.forces(x0, system)
        if self.max_force is not None:
            forces = forces * (self.max_force / forces.norm(dim=-1, keepdim=True).clamp_min(1e-12)).clamp(max=1.0)
        return score + (self.step / sigma2) * forces


class CountedScore(ScoreWrapper):
    """A ``score_fn`` that counts its evaluations per cell: ``counts [B]`` (long), indexed by the cells'
    ``System.graph_ids`` in the batch it was made for, so restart cycles on a subset count for those cells only.
    Exposes the wrapped score's attributes."""

    def __init__(self, score_fn, num_graphs: int, device: torch.device | str = "cpu"):
        super().__init__(score_fn)
        self.counts = torch.zeros(num_graphs, dtype=torch.long, device=device)

    def __call__(self, pos: torch.Tensor, t: float, system: System) -> torch.Tensor:
        self.counts[system.graph_ids] += 1
        return self.score_fn(pos, t, system)


def potential_forces(potential: nn.Module) -> Callable[[torch.Tensor, System], torch.Tensor]:
    """``forces(pos, system) -> [N, 3]`` (eV/A) of an ``AtomicPotential``, for :class:`EnergyTerm`."""

    def forces(pos: torch.Tensor, system: System) -> torch.Tensor:
        return energy_and_forces(potential, pos, system.z, system.cell, system.batch, system.num_graphs)[1]

    return forces
