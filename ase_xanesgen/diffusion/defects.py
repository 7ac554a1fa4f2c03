"""Coordination defects of a batch of cells under per-species bond rules (``data.bonding.BondRules``)."""

from __future__ import annotations

import torch

from ..data.bonding import BondRules
from ..graph.neighbours import edge_vectors, radius_graph_pbc


def rule_tables(rules: BondRules, device: torch.device) -> dict[str, torch.Tensor]:
    """``cutoff [119, 119]`` (0: no bond), ``clash [119, 119]`` (A), ``low``/``high [119]`` coordination bounds
    (0 / a large number for species without a rule)."""
    cutoff = torch.zeros(119, 119)
    clash = torch.full((119, 119), rules.default_min_distance)
    for (a, b), r in rules.bond_cutoffs.items():
        cutoff[a, b] = cutoff[b, a] = r
    for (a, b), r in rules.min_distances.items():
        clash[a, b] = clash[b, a] = r
    low = torch.zeros(119, dtype=torch.long)
    high = torch.full((119,), 1 << 20, dtype=torch.long)
    for z, (lo, hi) in rules.coordination.items():
        low[z], high[z] = lo, hi
    return {k: v.to(device) for k, v in dict(cutoff=cutoff, clash=clash, low=low, high=high).items()}


def rule_coordination(pos: torch.Tensor, z: torch.Tensor, cell: torch.Tensor, batch: torch.Tensor,
                      rules: BondRules) -> tuple[torch.Tensor, torch.Tensor]:
    """Bonds per atom ``[N]`` under ``rules``, and the defect mask ``[N]``: atoms whose bond count lies outside
    their species' range, and atoms in a pair closer than the pair's clash distance. ``pos [N, 3]`` (A),
    ``z [N]``, ``cell [B, 3, 3]``, ``batch [N]``."""
    tables = rule_tables(rules, pos.device)
    edge_index, shifts = radius_graph_pbc(pos, cell, batch, rules.radius)
    dist = edge_vectors(pos, cell, batch, edge_index, shifts).norm(dim=-1)
    zi, zj = z[edge_index[0]], z[edge_index[1]]
    bonded = dist < tables["cutoff"][zi, zj]
    cn = torch.bincount(edge_index[0, bonded], minlength=pos.shape[0])
    bad = (cn < tables["low"][z]) | (cn > tables["high"][z])
    bad[edge_index[0, dist < tables["clash"][zi, zj]]] = True
    return cn, bad
