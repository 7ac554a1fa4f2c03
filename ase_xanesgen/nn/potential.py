"""A small machine-learned interatomic potential: periodic structure -> per-atom energies (eV).

Atom-centred symmetry functions in the spirit of Behler and Parrinello (Phys. Rev. Lett. 98, 146401 (2007)) feed
one MLP per atom:

- radial: ``G_k(i) = sum_j exp(-eta (r_ij - mu_k)^2) f_c(r_ij)`` over neighbours within ``cutoff`` (smooth
  cosine envelope), ``n_radial`` centres from 0.8 A to the cut-off;
- angular: ``A_lm(i) = sum_{j != k} cos^l(theta_jik) g_m(r_ij) g_m(r_ik)`` over bonded neighbours within
  ``angular_cutoff``, powers ``l = 0..n_powers-1`` and ``len(angular_shells)`` Gaussian bond-length shells
  ``g_m`` (3-rings at 60 deg, 4-rings at 90, sp3 at 109.5, sp2 at 120 and sp at 180 deg are told apart).

With ``interactions > 0`` the symmetry functions are the start of a message-passing network (SchNet-style
continuous filters, Schütt et al., J. Chem. Phys. 148, 241722 (2018)): each interaction adds to every atom's latent
state the sum over neighbours within ``cutoff`` of their state filtered by the radial Gaussians, so the energy
sees the bonding beyond the first shell (ring strain, the neighbours' hybridisation) that single-atom descriptors
average away.

Every operation is plain torch, so forces ``-dE/dx`` and their own gradients (for training on forces) come from
autograd; the energy is invariant under translation, rotation and permutation by construction. Cheaper than
the score network (energy and forces of the two-interaction model: about half a score evaluation), so the
sampler's energy term can evaluate its forces at every late step.
"""

from __future__ import annotations

import torch
from torch import nn

from ..graph.neighbours import edge_vectors, radius_graph_pbc
from .blocks import MLP, cosine_cutoff


def angle_triplets(centre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All ordered pairs ``(e1, e2)``, ``e1 != e2``, of edges that share their centre: ``[T]`` each.

    ``centre [E]`` must be sorted (edges grouped by centre).
    """
    n = centre.shape[0]
    if n == 0:
        empty = centre.new_zeros(0)
        return empty, empty
    counts = torch.bincount(centre)
    start = torch.cumsum(counts, 0) - counts  # first edge of each centre
    reps = counts[centre]  # each edge pairs with every edge of its centre
    e1 = torch.repeat_interleave(torch.arange(n, device=centre.device), reps)
    offset = torch.arange(e1.shape[0], device=centre.device) - torch.repeat_interleave(torch.cumsum(reps, 0) - reps,
                                                                                      reps)
    e2 = start[centre[e1]] + offset
    keep = e1 != e2
    return e1[keep], e2[keep]


class AtomicPotential(nn.Module):
    """Per-atom energies ``[N]`` (eV) from positions; one element per model (``species``), a per-species offset.

    Args:
        species: atomic numbers the model knows.
        cutoff: radial cut-off (A). angular_cutoff: bonded-neighbour cut-off of the angular terms (A).
        n_radial: radial centres. n_powers: powers of cos(theta). angular_shells: bond-length centres (A).
        width: hidden width of the per-atom MLP (and the latent size of the interactions).
        interactions: message-passing layers on top of the symmetry functions (0: the descriptor MLP alone).
    """

    def __init__(self, species: list[int] = (6,), cutoff: float = 4.5, angular_cutoff: float = 2.1,
                 n_radial: int = 20, n_powers: int = 8, angular_shells: tuple[float, ...] = (1.25, 1.4, 1.55, 1.75),
                 width: int = 64, interactions: int = 0):
        super().__init__()
        if interactions < 0:
            raise ValueError(f"interactions must be >= 0, got {interactions}")
        self.model_args = dict(species=list(species), cutoff=cutoff, angular_cutoff=angular_cutoff,
                               n_radial=n_radial, n_powers=n_powers, angular_shells=list(angular_shells),
                               width=width, interactions=interactions)
        self.cutoff, self.angular_cutoff = cutoff, angular_cutoff
        table = torch.full((119,), -1, dtype=torch.long)
        table[torch.tensor(list(species))] = torch.arange(len(species))
        self.register_buffer("species_index", table)
        self.register_buffer("mu", torch.linspace(0.8, cutoff, n_radial))
        self.eta = (n_radial / (cutoff - 0.8)) ** 2
        self.register_buffer("shells", torch.tensor(list(angular_shells)))
        self.shell_eta = 1.0 / 0.12**2
        self.register_buffer("powers", torch.arange(n_powers, dtype=torch.float32))
        n_features = n_radial + n_powers * len(angular_shells)
        #: feature scaling, set from training structures by :meth:`fit_scaling` (saved with the weights)
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_std", torch.ones(n_features))
        if interactions:
            self.embed = MLP(n_features + len(species), width, width, layer_norm=False)
            self.filters = nn.ModuleList([MLP(n_radial, width, width, layer_norm=False)
                                          for _ in range(interactions)])
            self.updates = nn.ModuleList([MLP(2 * width, width, width, layer_norm=False)
                                          for _ in range(interactions)])
        n_readout = n_features + (width if interactions else 0)
        self.mlp = nn.ModuleList([MLP(n_readout, width, 1, n_layers=3, layer_norm=False) for _ in species])
        self.offset = nn.Parameter(torch.zeros(len(species)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model_args})"

    def features(self, pos: torch.Tensor, cell: torch.Tensor, batch: torch.Tensor, edge_index: torch.Tensor,
                 unit_shifts: torch.Tensor) -> torch.Tensor:
        """Unscaled symmetry functions ``[N, n_features]`` on a periodic graph within ``cutoff``."""
        return self._features(pos, cell, batch, edge_index, unit_shifts)[0]

    def _features(self, pos: torch.Tensor, cell: torch.Tensor, batch: torch.Tensor, edge_index: torch.Tensor,
                  unit_shifts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The symmetry functions, the enveloped radial Gaussians of every edge ``[E, n_radial]`` and the envelope
        ``[E, 1]``."""
        vec = edge_vectors(pos, cell, batch, edge_index, unit_shifts)  # [E, 3] from centre to neighbour
        dist = vec.norm(dim=-1)
        n = pos.shape[0]
        env = cosine_cutoff(dist, self.cutoff)[:, None]
        radial = torch.exp(-self.eta * (dist[:, None] - self.mu) ** 2) * env
        g_rad = pos.new_zeros(n, radial.shape[1]).index_add(0, edge_index[0], radial)
        short = torch.nonzero(dist < self.angular_cutoff).squeeze(-1)
        short = short[torch.argsort(edge_index[0, short], stable=True)]  # bonds grouped by centre
        centre, v, d = edge_index[0, short], vec[short], dist[short]
        e1, e2 = angle_triplets(centre)
        cos = (v[e1] * v[e2]).sum(-1) / (d[e1] * d[e2])  # [T]
        shell = torch.exp(-self.shell_eta * (d[:, None] - self.shells) ** 2) * cosine_cutoff(
            d, self.angular_cutoff)[:, None]  # [E_short, M]
        radial_pair = shell[e1] * shell[e2]  # [T, M]
        cos_pow = cos.clamp(-1.0, 1.0)[:, None] ** self.powers  # [T, L]
        ang = (cos_pow[:, :, None] * radial_pair[:, None, :]).flatten(1)  # [T, L * M]
        g_ang = pos.new_zeros(n, ang.shape[1]).index_add(0, centre[e1], ang)
        return torch.cat([g_rad, g_ang], dim=-1), radial, env

    @torch.no_grad()
    def fit_scaling(self, features: torch.Tensor) -> None:
        """Set the feature scaling from ``features [N, n_features]`` of training structures."""
        self.feature_mean.copy_(features.mean(0))
        self.feature_std.copy_(features.std(0).clamp_min(1e-3))

    def forward(self, pos: torch.Tensor, z: torch.Tensor, cell: torch.Tensor, batch: torch.Tensor,
                edge_index: torch.Tensor, unit_shifts: torch.Tensor) -> torch.Tensor:
        """Per-atom energies ``[N]`` (eV); differentiable (twice) in ``pos``."""
        g, radial, env = self._features(pos, cell, batch, edge_index, unit_shifts)
        x = (g - self.feature_mean) / self.feature_std
        kind = self.species_index[z]
        if self.model_args["interactions"]:
            h = self.embed(torch.cat([x, nn.functional.one_hot(kind, len(self.mlp)).to(x)], dim=-1))
            centre, neighbour = edge_index
            for filt, update in zip(self.filters, self.updates):
                message = pos.new_zeros(h.shape).index_add(0, centre, filt(radial) * env * h[neighbour])
                h = h + update(torch.cat([h, message], dim=-1))
            x = torch.cat([x, h], dim=-1)
        out = pos.new_zeros(pos.shape[0])
        for k, mlp in enumerate(self.mlp):
            mask = kind == k
            out = out.index_put((mask,), mlp(x[mask]).squeeze(-1) + self.offset[k])
        return out


def energy_and_forces(model: AtomicPotential, pos: torch.Tensor, z: torch.Tensor, cell: torch.Tensor,
                      batch: torch.Tensor, num_graphs: int, create_graph: bool = False,
                      graph: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Total energy per graph ``[B]`` (eV) and forces ``[N, 3]`` (eV/A) from positions.

    ``graph``: ``(edge_index, unit_shifts)`` within ``model.cutoff`` (default: built by the torch cell list).
    ``create_graph``: keep the forces differentiable (training on forces).
    """
    edge_index, shifts = radius_graph_pbc(pos.detach(), cell, batch, model.cutoff) if graph is None else graph
    with torch.enable_grad():
        x = pos if pos.requires_grad else pos.detach().requires_grad_(True)
        local = model(x, z, cell, batch, edge_index, shifts)
        energy = pos.new_zeros(num_graphs).index_add(0, batch, local)
        (grad,) = torch.autograd.grad(energy.sum(), x, create_graph=create_graph)
    return energy, -grad
