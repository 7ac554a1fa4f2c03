"""The prior score of a trained ``ScoreNet`` as a sampler's ``score_fn(pos, t, system)``."""

from __future__ import annotations

import torch

from ..graph.neighbours import radius_graph_pbc
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
