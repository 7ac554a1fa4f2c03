"""A valence force field on bond angles: the cheap physics term of the sampler's energy term (``EnergyTerm``)."""

from __future__ import annotations

import torch
from torch_geometric.nn import global_add_pool

from ..checks import check_positive
from ..data.datasets import CARBON, CC_BOND_CUTOFF
from ..diffusion.samplers import System
from .coordination import BOND_WIDTH, bond_pairs, soft_bonds


class ValenceField:
    """Bond-angle energy ``E = k/2 sum_i sum_{j<k} s_ij s_ik (cos(angle jik) - c_i)^2`` (eV) of covalent carbon, whose
    ideal angle follows each atom's coordination ``n_i`` (soft count within the C-C bond cut-off):
    ``c_i = -1 / (n_i - 1)``, the sp3 tetrahedral angle at four bonds (109.5 deg), the planar sp2 one at three
    (120 deg), linear at two (``n_i`` clamped to [2, 4]).

    Generated a-C carries its excess energy over MD in distorted bond angles (wide angle spread, non-planar
    three-fold atoms), which a score model trained on 21 cells resolves poorly; these forces straighten them for the
    cost of one bond graph per step. The forces act at fixed bonding: the bond weights ``s`` and ideal angles
    ``c_i`` are those of the current positions and carry no gradient, so the term bends bonds but neither makes nor
    breaks them (with their gradient the Fermi switches are far too stiff for the sampler's step).

    Args:
        stiffness: ``k`` in eV per squared cosine (default 1.0; only ``k`` times the energy step matters).
        cutoff, width: the bond switch (A), as the coordination guide's.
    """

    species = frozenset({CARBON})

    def __init__(self, stiffness: float = 1.0, cutoff: float = CC_BOND_CUTOFF, width: float = BOND_WIDTH):
        self.stiffness = check_positive(stiffness, "stiffness", "eV per squared cosine")
        self.cutoff = check_positive(cutoff, "cutoff", "A")
        self.width = check_positive(width, "width", "A")

    def __repr__(self) -> str:
        return f"ValenceField(stiffness={self.stiffness}, cutoff={self.cutoff}, width={self.width})"

    def energy(self, pos: torch.Tensor, system: System) -> torch.Tensor:
        """``[B]`` bond-angle energy per cell (eV), differentiable in ``pos [N, 3]`` at fixed bonding."""
        centre, vec, dist, bond = soft_bonds(pos, system, self.cutoff, self.width)
        bond = bond.detach()
        n = torch.zeros(pos.shape[0], device=pos.device, dtype=pos.dtype).index_add_(0, centre, bond)
        ideal = -1.0 / (n.clamp(2.0, 4.0) - 1.0)
        a, b = bond_pairs(centre)
        cos = (vec[a] * vec[b]).sum(-1) / (dist[a] * dist[b]).clamp_min(1e-6)
        terms = 0.5 * self.stiffness * bond[a] * bond[b] * (cos - ideal[centre[a]]) ** 2
        return global_add_pool(terms[:, None], system.batch[centre[a]], size=system.num_graphs)[:, 0]

    def __call__(self, pos: torch.Tensor, system: System) -> torch.Tensor:
        """``[N, 3]`` forces (eV/A) at ``pos``: ``forces(pos, system)`` for ``diffusion.score_fn.EnergyTerm``."""
        with torch.enable_grad():
            x = pos.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.energy(x, system).sum(), x)
        return -grad
