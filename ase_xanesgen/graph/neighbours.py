"""Periodic neighbour graphs in O(N).

Two builders with one convention, matscipy's: an edge (i, j, S) means the vector from atom i to the
image of atom j is ``D = pos[j] - pos[i] + S @ cell`` with integer unit shifts ``S``.

- :func:`neighbour_graph` wraps ``matscipy.neighbours.neighbour_list`` for ``Atoms`` / numpy input.
- :func:`radius_graph_pbc` is a torch cell list for position tensors on any device (used during
  training and sampling, where positions change every step). It handles triclinic cells and cells
  thinner than the cut-off (several periodic images), and batches of cells in one call.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from ase import Atoms
from matscipy.neighbours import neighbour_list


def neighbour_graph(atoms: Atoms, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """``edge_index [2, E]`` (int64) and ``unit_shifts [E, 3]`` (int64) of a periodic ``Atoms``."""
    i, j, shifts = neighbour_list("ijS", atoms, cutoff)
    return np.stack([i, j]).astype(np.int64), shifts.astype(np.int64)


def wrap_positions(pos: torch.Tensor, cell: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
    """Positions ``[N, 3]`` wrapped into their cells ``[B, 3, 3]`` (rows are lattice vectors)."""
    frac = torch.linalg.solve(cell[batch].transpose(1, 2), pos.unsqueeze(-1)).squeeze(-1)
    frac = frac - torch.floor(frac)
    return torch.einsum("ni,nij->nj", frac, cell[batch])


def edge_vectors(
    pos: torch.Tensor,
    cell: torch.Tensor,
    batch: torch.Tensor,
    edge_index: torch.Tensor,
    unit_shifts: torch.Tensor,
) -> torch.Tensor:
    """``D [E, 3]`` from i to the shifted image of j; differentiable in ``pos`` and ``cell``."""
    i, j = edge_index
    shift = torch.einsum("ei,eij->ej", unit_shifts.to(pos.dtype), cell[batch[i]])
    return pos.index_select(0, j) - pos.index_select(0, i) + shift


@torch.no_grad()
def radius_graph_pbc(
    pos: torch.Tensor,
    cell: torch.Tensor,
    batch: torch.Tensor | None,
    cutoff: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell-list radius graph for a batch of periodic cells, on the device of ``pos``.

    Args:
        pos: ``[N, 3]`` Cartesian positions (Angstrom), wrapped or not.
        cell: ``[B, 3, 3]`` lattice vectors as rows.
        batch: ``[N]`` graph index of each atom (``None``: one graph).
        cutoff: radius (Angstrom).

    Returns:
        ``edge_index [2, E]`` and ``unit_shifts [E, 3]`` (int64) relative to the *given* positions.
    """
    device = pos.device
    n = pos.shape[0]
    if batch is None:
        batch = torch.zeros(n, dtype=torch.long, device=device)
    cell = cell.to(pos.dtype)
    if n == 0:
        empty = torch.zeros((2, 0), dtype=torch.long, device=device)
        return empty, torch.zeros((0, 3), dtype=torch.long, device=device)
    inv = torch.linalg.inv(cell)  # [B, 3, 3]
    cell_n = cell.index_select(0, batch)  # [N, 3, 3]
    frac = torch.einsum("ni,nij->nj", pos, inv.index_select(0, batch))
    wrap_shift = torch.floor(frac)  # pos = wrapped + wrap_shift @ cell
    frac = frac - wrap_shift
    wrapped = torch.einsum("ni,nij->nj", frac, cell_n)

    # Bins in fractional space: nb_a = floor(h_a / cutoff) >= 1 bins along axis a, where h_a is the
    # distance between the lattice planes spanned by the two other vectors.
    volume = torch.abs(torch.linalg.det(cell))  # [B]
    cross = torch.stack(
        [torch.linalg.cross(cell[:, 1], cell[:, 2]), torch.linalg.cross(cell[:, 2], cell[:, 0]),
         torch.linalg.cross(cell[:, 0], cell[:, 1])], dim=1
    )  # [B, 3, 3]
    heights = volume[:, None] / torch.linalg.norm(cross, dim=-1)  # [B, 3]
    nbins = torch.clamp(torch.floor(heights / cutoff), min=1).long()  # [B, 3]
    reach = torch.ceil(cutoff / (heights / nbins) - 1e-9).long().amax(0)  # [3] bins to search each side
    nb = nbins.index_select(0, batch)
    bin3 = torch.minimum((frac * nb).long(), nb - 1)  # [N, 3]

    def flat(b3: torch.Tensor, nbg: torch.Tensor) -> torch.Tensor:
        return (b3[..., 0] * nbg[..., 1] + b3[..., 1]) * nbg[..., 2] + b3[..., 2]

    bins_per_graph = nbins.prod(1)
    graph_offset = torch.cumsum(bins_per_graph, 0) - bins_per_graph
    base = graph_offset.index_select(0, batch)  # [N]
    gbin = base + flat(bin3, nb)
    order = torch.argsort(gbin)
    counts = torch.bincount(gbin, minlength=int(bins_per_graph.sum()))
    starts = torch.cumsum(counts, 0) - counts
    max_occ = int(counts.max())
    offsets = torch.tensor(list(itertools.product(*[range(-r, r + 1) for r in reach.tolist()])), device=device)
    # candidate pairs (offset k, atom i, slot m) in groups of offsets: one set of tensor ops per group
    # instead of per offset, with at most ~CANDIDATE_BLOCK candidates alive at a time
    group = max(1, CANDIDATE_BLOCK // max(1, n * max_occ))
    edges_i, edges_j, edges_s = [], [], []
    for off in offsets.split(group):
        nb3 = bin3[None] + off[:, None, :]  # [K, N, 3]
        shift = torch.div(nb3, nb[None], rounding_mode="floor")  # image of the neighbour bin
        target = (base[None] + flat(nb3 - shift * nb[None], nb[None])).view(-1)  # [K * N]
        # the shifted image of the centre atom, so a candidate needs one gather per side
        centre = (wrapped[None] - torch.einsum("kni,nij->knj", shift.to(pos.dtype), cell_n)).reshape(-1, 3)
        cnt = counts.index_select(0, target)
        kn = torch.repeat_interleave(cnt)  # candidate -> (offset, atom) row, offset-major
        # candidate c of row r is atom order[starts[target[r]] + c - first[r]], first[r] = its first candidate
        jump = starts.index_select(0, target) - (torch.cumsum(cnt, 0) - cnt)
        jj = order.index_select(0, torch.arange(kn.shape[0], device=device) + jump.index_select(0, kn))
        # (w_j - (w_i - S C) is not bit-for-bit antisymmetric: a pair within ~1e-7 A of the cut-off could
        # be kept one way only, where the envelope is zero anyway)
        d2 = (wrapped.index_select(0, jj) - centre.index_select(0, kn)).square().sum(-1)
        # an atom's own zero-shift image is at exactly zero distance; its other images are not
        keep = (d2 < cutoff * cutoff) & ((jj != kn % n) | (d2 > 0))
        kept = keep.nonzero().squeeze(1)
        kn = kn.index_select(0, kept)
        edges_i.append(kn % n)
        edges_j.append(jj.index_select(0, kept))
        edges_s.append(shift.view(-1, 3).index_select(0, kn))
    ei = torch.cat(edges_i)
    ej = torch.cat(edges_j)
    # shifts relative to the unwrapped input positions
    es = torch.cat(edges_s) + (wrap_shift.index_select(0, ei) - wrap_shift.index_select(0, ej)).long()
    return torch.stack([ei, ej]), es


#: candidate pairs examined per vectorised block of :func:`radius_graph_pbc` (bounds its temporary memory)
CANDIDATE_BLOCK = 1 << 22
